//! From a parsed file and the store to a plan: every object checked and built in memory
//! (secrets read, passwords hashed, policies validated) before anything is written.
use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use uuid::Uuid;

use super::format::{AppDecl, File, GroupDecl, LocationDecl, TenantDecl, UserDecl};
use crate::config::Argon2Params;
use crate::model::{Application, ClientType, DISPLAY_NAME_MAX, Group, Tenant, TenantId, User, UserId, UserType};
use crate::policy::{self, NamedLocation, Policy};
use crate::storage::{Store, Versioned};

/// One write of the plan, in the order it is done.
pub enum Write {
    Tenant(Box<Tenant>),
    InsertUser(Box<User>),
    ReplaceUser(Box<Versioned<User>>, Box<User>, u32),
    App(Box<Application>),
    Location(TenantId, NamedLocation),
    Policy(TenantId, Box<Policy>),
}

#[derive(Default)]
pub struct Plan {
    pub lines: Vec<String>,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub writes: Vec<Write>,
}

impl Plan {
    fn create(&mut self, what: String, write: Option<Write>) {
        self.lines.push(format!("+ create {what}"));
        self.created += 1;
        self.writes.extend(write);
    }
    fn update(&mut self, what: String, fields: &[&str], write: Option<Write>) {
        if fields.is_empty() {
            self.unchanged += 1;
            return;
        }
        self.lines.push(format!("~ update {what}: {}", fields.join(", ")));
        self.updated += 1;
        self.writes.extend(write);
    }
    pub fn summary(&self) -> String {
        format!("plan: {} to create, {} to update, = {} unchanged", self.created, self.updated, self.unchanged)
    }
}

pub struct Ctx<'a> {
    pub store: &'a Store,
    pub argon2: &'a Argon2Params,
    pub now: i64,
    /// Where relative `secret_file` / `password_file` paths start (the file's directory).
    pub base: &'a Path,
}

fn text(path: &str, field: &'static str, s: &str) -> Result<String, String> {
    crate::model::display_text(field, s, DISPLAY_NAME_MAX).map_err(|e| format!("{path}.{field}: {e}"))
}

fn dup<'a>(path: &str, what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, n) in names.enumerate() {
        if !seen.insert(n.to_lowercase()) {
            return Err(format!("{path}[{i}]: {what} {n:?} is declared twice"));
        }
    }
    Ok(())
}

/// A secret or password given by reference: `Some(value)`, or `None` when none is given.
fn reference(ctx: &Ctx, path: &str, env: &Option<String>, file: &Option<String>) -> Result<Option<String>, String> {
    let value = match (env, file) {
        (Some(_), Some(_)) => return Err(format!("{path}: give either an environment variable or a file, not both")),
        (Some(var), None) => {
            std::env::var(var).map_err(|_| format!("{path}: environment variable {var} is not set"))?
        }
        (None, Some(f)) => {
            let p = ctx.base.join(f);
            let s = std::fs::read_to_string(&p).map_err(|e| format!("{path}: {}: {e}", p.display()))?;
            s.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Err(format!("{path}: the referenced value is empty"));
    }
    Ok(Some(value))
}

pub async fn plan(ctx: &Ctx<'_>, file: &File) -> Result<Plan, String> {
    let mut plan = Plan::default();
    dup("tenants", "tenant", file.tenants.iter().map(|t| t.slug.as_str()))?;
    for (i, t) in file.tenants.iter().enumerate() {
        plan_tenant(ctx, &mut plan, &format!("tenants[{i}]"), t).await?;
    }
    Ok(plan)
}

fn se(e: crate::storage::StoreError) -> String {
    e.to_string()
}

async fn plan_tenant(ctx: &Ctx<'_>, plan: &mut Plan, p: &str, d: &TenantDecl) -> Result<(), String> {
    let slug = d.slug.trim();
    if slug.is_empty()
        || slug.len() > 63
        || !slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(format!("{p}.slug: lowercase letters, digits and '-' only (1 to 63)"));
    }
    let display_name = text(p, "display_name", &d.display_name)?;
    let mut domains = Vec::new();
    for (j, dom) in d.domains.iter().enumerate() {
        let dom = dom.trim().to_ascii_lowercase();
        let ok = dom.contains('.')
            && dom.len() <= 253
            && dom.split('.').all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if !ok {
            return Err(format!("{p}.domains[{j}]: {dom:?} is not a domain name"));
        }
        if let Some(other) = ctx.store.tenant_by_domain(&dom).await.map_err(se)?
            && other.slug != slug
        {
            return Err(format!("{p}.domains[{j}]: {dom} is already a domain of tenant {}", other.slug));
        }
        domains.push(dom);
    }
    if domains.is_empty() {
        return Err(format!("{p}.domains: at least one domain (the first is the initial domain)"));
    }
    dup(&format!("{p}.domains"), "domain", domains.iter().map(String::as_str))?;
    let existing = ctx.store.tenant_by_slug(slug).await.map_err(se)?;
    let mut tenant = match &existing {
        Some(t) => {
            if !domains.contains(&t.initial_domain) {
                return Err(format!("{p}.domains: the initial domain {} cannot be removed", t.initial_domain));
            }
            t.clone()
        }
        None => serde_json::from_value::<Tenant>(json!({
            "id": TenantId::new(), "slug": slug, "display_name": display_name, "initial_domain": domains[0],
            "domains": [], "premium_seats": 0, "members_can_invite": true,
        }))
        .map_err(|e| e.to_string())?,
    };
    tenant.display_name = display_name;
    tenant.domains = domains;
    tenant.premium_seats = d.premium_seats;
    tenant.members_can_invite = d.members_can_invite;
    let at = plan.lines.len();
    plan_groups(ctx, plan, p, d, &mut tenant)?;
    let before = plan.lines.len();
    let label = format!("tenant {slug}");
    match &existing {
        None => plan.create(label, Some(Write::Tenant(Box::new(tenant.clone())))),
        Some(old) => {
            let mut f = vec![];
            if old.display_name != tenant.display_name {
                f.push("display_name");
            }
            if old.domains != tenant.domains {
                f.push("domains");
            }
            if old.premium_seats != tenant.premium_seats {
                f.push("premium_seats");
            }
            if old.members_can_invite != tenant.members_can_invite {
                f.push("members_can_invite");
            }
            if old.groups != tenant.groups {
                f.push("groups");
            }
            plan.update(label, &f, Some(Write::Tenant(Box::new(tenant.clone()))));
        }
    }
    // The tenant's line before its groups'.
    if plan.lines.len() > before
        && let Some(line) = plan.lines.pop()
    {
        plan.lines.insert(at, line);
    }
    plan_users(ctx, plan, p, d, &tenant, existing.is_some()).await?;
    plan_apps(ctx, plan, p, &d.apps, &tenant, existing.is_some()).await?;
    let locations = plan_locations(ctx, plan, p, &d.locations, &tenant, existing.is_some()).await?;
    plan_policies(ctx, plan, p, d, &tenant, &locations, existing.is_some()).await
}

fn plan_groups(ctx: &Ctx, plan: &mut Plan, p: &str, d: &TenantDecl, tenant: &mut Tenant) -> Result<(), String> {
    dup(&format!("{p}.groups"), "group", d.groups.iter().map(|g| g.name.as_str()))?;
    for (j, g) in d.groups.iter().enumerate() {
        let gp = format!("{p}.groups[{j}]");
        let name = text(&gp, "name", &g.name)?;
        let description = g.description.as_deref().map(|s| text(&gp, "description", s)).transpose()?;
        let label = format!("group {}/{name}", tenant.slug);
        match tenant.groups.iter_mut().find(|x| x.display_name.eq_ignore_ascii_case(&name)) {
            Some(old) => {
                let f: &[&str] = if old.description != description { &["description"] } else { &[] };
                old.description = description;
                plan.update(label, f, None);
            }
            None => {
                let nick: String = name
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                    .collect();
                tenant.groups.push(Group {
                    id: Uuid::new_v4(),
                    display_name: name,
                    description,
                    mail_nickname: nick,
                    security_enabled: true,
                    created_date_time: crate::clock::rfc3339(ctx.now),
                });
                plan.create(label, None);
            }
        }
    }
    Ok(())
}

fn group_id(tenant: &Tenant, g: &GroupDecl) -> Uuid {
    tenant.groups.iter().find(|x| x.display_name.eq_ignore_ascii_case(g.name.trim())).map(|x| x.id).unwrap_or_default()
}

async fn plan_users(
    ctx: &Ctx<'_>,
    plan: &mut Plan,
    p: &str,
    d: &TenantDecl,
    tenant: &Tenant,
    exists: bool,
) -> Result<(), String> {
    dup(&format!("{p}.users"), "user", d.users.iter().map(|u| u.upn.as_str()))?;
    let stored: Vec<User> = if exists { ctx.store.users(&tenant.id).await.map_err(se)? } else { vec![] };
    // Every member of the tenant after the apply: (stored version, desired, password changed).
    let mut members: Vec<(Option<Versioned<User>>, User, bool)> = Vec::new();
    for u in stored.iter().filter(|u| !u.is_guest()) {
        let v = ctx.store.user_versioned(&tenant.id, &u.id).await.map_err(se)?;
        if let Some(v) = v {
            members.push((Some(v.clone()), v.value, false));
        }
    }
    for (j, u) in d.users.iter().enumerate() {
        let up = format!("{p}.users[{j}]");
        let (desired, pw_changed) = user_decl(ctx, &up, u, tenant, &stored)?;
        match members.iter_mut().find(|m| m.1.user_principal_name.eq_ignore_ascii_case(&desired.user_principal_name)) {
            Some(m) => {
                m.1.display_name = desired.display_name;
                m.1.per_user_mfa = desired.per_user_mfa;
                if pw_changed {
                    m.1.password_hash = desired.password_hash;
                    m.2 = true;
                }
            }
            None => members.push((None, desired, pw_changed)),
        }
    }
    // Group membership as declared, for the tenant's members.
    for (j, g) in d.groups.iter().enumerate() {
        let gid = group_id(tenant, g);
        for (k, upn) in g.members.iter().enumerate() {
            if !members.iter().any(|m| m.1.user_principal_name.eq_ignore_ascii_case(upn.trim())) {
                return Err(format!("{p}.groups[{j}].members[{k}]: {upn} is not a member of tenant {}", tenant.slug));
            }
        }
        for m in members.iter_mut() {
            let listed = g.members.iter().any(|x| x.trim().eq_ignore_ascii_case(&m.1.user_principal_name));
            let has = m.1.member_of.contains(&gid);
            if listed && !has {
                m.1.member_of.push(gid);
            } else if !listed && has {
                m.1.member_of.retain(|x| *x != gid);
            }
        }
    }
    let seats_now = if exists { ctx.store.seats_used(&tenant.id).await.map_err(se)? } else { 0 } as i64;
    let mut seats = seats_now;
    for (old, new, pw) in members {
        let label = format!("user {}/{}", tenant.slug, new.user_principal_name);
        seats += new.holds_seat() as i64 - old.as_ref().is_some_and(|o| o.value.holds_seat()) as i64;
        match old {
            None => plan.create(label, Some(Write::InsertUser(Box::new(new)))),
            Some(old) => {
                let mut f = vec![];
                if old.value.display_name != new.display_name {
                    f.push("display_name");
                }
                if old.value.per_user_mfa != new.per_user_mfa {
                    f.push("per_user_mfa");
                }
                if pw {
                    f.push("password");
                }
                if old.value.member_of != new.member_of {
                    f.push("groups");
                }
                let limit = tenant.premium_seats;
                plan.update(label, &f, Some(Write::ReplaceUser(Box::new(old), Box::new(new), limit)));
            }
        }
    }
    if seats > seats_now && seats > tenant.premium_seats as i64 {
        return Err(format!(
            "{p}.premium_seats: {} seats would be held (per-user MFA members and redeemed guests), more than {}",
            seats, tenant.premium_seats
        ));
    }
    Ok(())
}

/// The member a declaration describes, and whether its password is new.
fn user_decl(ctx: &Ctx, up: &str, u: &UserDecl, tenant: &Tenant, stored: &[User]) -> Result<(User, bool), String> {
    if u.password.is_some() {
        return Err(format!("{up}.password: passwords are never inline; use password_env or password_file"));
    }
    let upn = u.upn.trim().to_ascii_lowercase();
    let Some((local, domain)) = upn.split_once('@') else {
        return Err(format!("{up}.upn: {upn:?} is not user@domain"));
    };
    if local.is_empty() || upn.chars().any(|c| c.is_whitespace() || crate::model::forbidden_in_text(c)) {
        return Err(format!("{up}.upn: {upn:?} is not user@domain"));
    }
    if !tenant.domains.iter().any(|d| d == domain) {
        return Err(format!("{up}.upn: {domain} is not a domain of tenant {}", tenant.slug));
    }
    let mail = u.mail.as_deref().map(|m| m.trim().to_ascii_lowercase()).unwrap_or_else(|| upn.clone());
    if !mail.contains('@') || mail.chars().any(|c| c.is_whitespace() || crate::model::forbidden_in_text(c)) {
        return Err(format!("{up}.mail: {mail:?} is not an email address"));
    }
    let display_name = text(up, "display_name", &u.display_name)?;
    let old = stored.iter().find(|s| s.user_principal_name.eq_ignore_ascii_case(&upn));
    if let Some(old) = old {
        if old.is_guest() {
            return Err(format!("{up}.upn: {upn} is a guest; only members are declared"));
        }
        if !old.mail.eq_ignore_ascii_case(&mail) {
            return Err(format!("{up}.mail: the mail of an existing user does not change (is {})", old.mail));
        }
    }
    if let Some(other) =
        stored.iter().find(|s| s.mail.eq_ignore_ascii_case(&mail) && !s.user_principal_name.eq_ignore_ascii_case(&upn))
    {
        return Err(format!("{up}.mail: {mail} is already the mail of {}", other.user_principal_name));
    }
    let secret = reference(ctx, up, &u.password_env, &u.password_file)?;
    let mut changed = false;
    let hash = match secret {
        Some(pw)
            if old.is_some_and(|o| {
                o.password_hash.as_deref().is_some_and(|h| crate::password::verify(&pw, Some(h), h))
            }) =>
        {
            old.and_then(|o| o.password_hash.clone())
        }
        Some(pw) => {
            changed = true;
            Some(crate::password::hash(&pw, ctx.argon2).map_err(|e| format!("{up}: hashing the password: {e}"))?)
        }
        None => old.and_then(|o| o.password_hash.clone()),
    };
    let user = User {
        id: old.map(|o| o.id).unwrap_or_else(UserId::new),
        tenant_id: tenant.id,
        user_type: UserType::Member,
        user_principal_name: upn,
        mail,
        display_name,
        account_enabled: true,
        per_user_mfa: u.per_user_mfa,
        password_hash: hash,
        created_at: ctx.now,
        ..Default::default()
    };
    Ok((user, changed))
}

fn check_uri(path: String, uri: &str) -> Result<String, String> {
    match url::Url::parse(uri) {
        Ok(u) if u.fragment().is_none() && !u.cannot_be_a_base() => Ok(uri.to_string()),
        _ => Err(format!("{path}: {uri:?} is not an absolute URI without a fragment")),
    }
}

async fn plan_apps(
    ctx: &Ctx<'_>,
    plan: &mut Plan,
    p: &str,
    apps: &[AppDecl],
    tenant: &Tenant,
    exists: bool,
) -> Result<(), String> {
    dup(&format!("{p}.apps"), "app", apps.iter().map(|a| a.client_id.as_str()))?;
    for (j, a) in apps.iter().enumerate() {
        let ap = format!("{p}.apps[{j}]");
        if a.secret.is_some() {
            return Err(format!("{ap}.secret: secrets are never inline; use secret_env or secret_file"));
        }
        let id = a.client_id.trim();
        if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
            return Err(format!("{ap}.client_id: letters, digits, '-', '.' and '_' only (1 to 128)"));
        }
        let name = text(&ap, "name", &a.name)?;
        let redirect: Vec<String> = a
            .redirect_uris
            .iter()
            .enumerate()
            .map(|(k, u)| check_uri(format!("{ap}.redirect_uris[{k}]"), u))
            .collect::<Result<_, _>>()?;
        let logout: Vec<String> = a
            .post_logout_redirect_uris
            .iter()
            .enumerate()
            .map(|(k, u)| check_uri(format!("{ap}.post_logout_redirect_uris[{k}]"), u))
            .collect::<Result<_, _>>()?;
        let secret = reference(ctx, &ap, &a.secret_env, &a.secret_file)?;
        if a.client_type == ClientType::Public && secret.is_some() {
            return Err(format!("{ap}: a public client has no secret (remove secret_env / secret_file)"));
        }
        let old = if exists { ctx.store.app(&tenant.id, id).await.map_err(se)? } else { None };
        let mut app = match &old {
            Some(o) => o.clone(),
            None => serde_json::from_value::<Application>(json!({
                "tenant_id": tenant.id, "client_id": id, "display_name": name, "redirect_uris": [],
                "client_type": a.client_type,
            }))
            .map_err(|e| e.to_string())?,
        };
        app.display_name = name;
        app.client_type = a.client_type;
        app.redirect_uris = redirect;
        app.post_logout_redirect_uris = logout;
        app.app_roles = a.app_roles.clone();
        let mut secret_changed = false;
        if a.client_type == ClientType::Public {
            secret_changed = !app.secret_hashes.is_empty();
            app.secret_hashes.clear();
        } else if let Some(s) = secret {
            let h = crate::secrets::digest_hex(&s);
            if !app.secret_hashes.contains(&h) {
                app.secret_hashes = vec![h];
                secret_changed = true;
            }
        }
        let label = format!("app {}/{id}", tenant.slug);
        match &old {
            None => {
                let note = if app.client_type == ClientType::Confidential && app.secret_hashes.is_empty() {
                    " (no secret yet: give secret_env or secret_file)"
                } else {
                    ""
                };
                plan.create(format!("{label}{note}"), Some(Write::App(Box::new(app))))
            }
            Some(o) => {
                let mut f = vec![];
                for (changed, name) in [
                    (o.display_name != app.display_name, "name"),
                    (o.client_type != app.client_type, "client_type"),
                    (o.redirect_uris != app.redirect_uris, "redirect_uris"),
                    (o.post_logout_redirect_uris != app.post_logout_redirect_uris, "post_logout_redirect_uris"),
                    (o.app_roles != app.app_roles, "app_roles"),
                    (secret_changed, "secret"),
                ] {
                    if changed {
                        f.push(name);
                    }
                }
                plan.update(label, &f, Some(Write::App(Box::new(app))));
            }
        }
    }
    Ok(())
}

/// Plans the declared named locations; returns every location of the tenant after the apply.
async fn plan_locations(
    ctx: &Ctx<'_>,
    plan: &mut Plan,
    p: &str,
    decls: &[LocationDecl],
    tenant: &Tenant,
    exists: bool,
) -> Result<Vec<NamedLocation>, String> {
    dup(&format!("{p}.locations"), "location", decls.iter().map(|l| l.name.as_str()))?;
    let mut all = if exists { ctx.store.named_locations(&tenant.id).await.map_err(se)? } else { vec![] };
    for (j, l) in decls.iter().enumerate() {
        let lp = format!("{p}.locations[{j}]");
        let name = text(&lp, "name", &l.name)?;
        if l.cidrs.is_empty() {
            return Err(format!("{lp}.cidrs: at least one range"));
        }
        let mut ranges = vec![];
        for (k, c) in l.cidrs.iter().enumerate() {
            let net: ipnet::IpNet =
                c.trim().parse().map_err(|_| format!("{lp}.cidrs[{k}]: {c:?} is not a CIDR range"))?;
            let odata =
                if net.addr().is_ipv4() { "#microsoft.graph.iPv4CidrRange" } else { "#microsoft.graph.iPv6CidrRange" };
            ranges.push(json!({"@odata.type": odata, "cidrAddress": net.to_string()}));
        }
        let pos = all.iter().position(|x| x.display_name.eq_ignore_ascii_case(&name));
        let id = pos.map(|i| all[i].id.clone()).unwrap_or_else(|| Uuid::new_v4().to_string());
        let loc: NamedLocation = serde_json::from_value(json!({
            "id": id, "displayName": name, "isTrusted": l.trusted, "ipRanges": ranges,
        }))
        .map_err(|e| format!("{lp}: {e}"))?;
        let label = format!("location {}/{name}", tenant.slug);
        match pos {
            None => {
                all.push(loc.clone());
                plan.create(label, Some(Write::Location(tenant.id, loc)));
            }
            Some(i) => {
                let o = &all[i];
                let mut f = vec![];
                if o.ip_ranges != loc.ip_ranges {
                    f.push("cidrs");
                }
                if o.is_trusted != loc.is_trusted {
                    f.push("trusted");
                }
                if o.display_name != loc.display_name {
                    f.push("name");
                }
                plan.update(label, &f, Some(Write::Location(tenant.id, loc.clone())));
                all[i] = loc;
            }
        }
    }
    Ok(all)
}

fn check_text(v: &Value, path: &str) -> Result<(), String> {
    match v {
        Value::String(s) if s.chars().any(crate::model::forbidden_in_text) => {
            Err(format!("{path}: control characters, line breaks or bidirectional overrides"))
        }
        Value::Array(items) => items.iter().try_for_each(|i| check_text(i, path)),
        Value::Object(map) => map.iter().try_for_each(|(k, i)| check_text(i, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

/// Replaces the names in `v[a][b]` (an array of strings) by what `map` gives.
fn resolve(v: &mut Value, a: &str, b: &str, path: &str, map: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
    let Some(Value::Array(items)) = v.get_mut("conditions").and_then(|c| c.get_mut(a)).and_then(|c| c.get_mut(b))
    else {
        return Ok(());
    };
    for (k, item) in items.iter_mut().enumerate() {
        let Value::String(s) = item else { continue };
        *item = Value::String(map(s).ok_or_else(|| format!("{path}.conditions.{a}.{b}[{k}]: unknown {s:?}"))?);
    }
    Ok(())
}

async fn plan_policies(
    ctx: &Ctx<'_>,
    plan: &mut Plan,
    p: &str,
    d: &TenantDecl,
    tenant: &Tenant,
    locations: &[NamedLocation],
    exists: bool,
) -> Result<(), String> {
    let names: Vec<String> =
        d.policies.iter().map(|t| t.get("displayName").and_then(|v| v.as_str()).unwrap_or("").to_string()).collect();
    dup(&format!("{p}.policies"), "policy", names.iter().map(String::as_str))?;
    let stored = if exists { ctx.store.policies(&tenant.id).await.map_err(se)? } else { vec![] };
    // Users by UPN: the declared members and the stored users (a new user's id is in the plan).
    let mut upns: HashMap<String, String> = HashMap::new();
    if exists {
        for u in ctx.store.users(&tenant.id).await.map_err(se)? {
            upns.insert(u.user_principal_name.to_lowercase(), u.id.to_string());
        }
    }
    for w in &plan.writes {
        if let Write::InsertUser(u) = w
            && u.tenant_id == tenant.id
        {
            upns.insert(u.user_principal_name.to_lowercase(), u.id.to_string());
        }
    }
    let groups: Vec<Uuid> = tenant.groups.iter().map(|g| g.id).collect();
    let agreements: Vec<Uuid> = tenant.agreements.iter().map(|a| a.id).collect();
    for (j, table) in d.policies.iter().enumerate() {
        let pp = format!("{p}.policies[{j}]");
        let mut v = serde_json::to_value(table).map_err(|e| format!("{pp}: {e}"))?;
        if v.get("id").is_some() {
            return Err(format!("{pp}.id: policies are matched by displayName; leave id out"));
        }
        if names[j].trim().is_empty() {
            return Err(format!("{pp}.displayName: required"));
        }
        check_text(&v, &pp)?;
        let special = |s: &str, list: &[&str]| list.iter().find(|x| x.eq_ignore_ascii_case(s)).map(|x| x.to_string());
        let user = |s: &str| {
            special(s, &["All", "None", "GuestsOrExternalUsers"]).or_else(|| upns.get(&s.to_lowercase()).cloned())
        };
        let group =
            |s: &str| tenant.groups.iter().find(|g| g.display_name.eq_ignore_ascii_case(s)).map(|g| g.id.to_string());
        let location = |s: &str| {
            special(s, &["All", "AllTrusted"])
                .or_else(|| locations.iter().find(|l| l.display_name.eq_ignore_ascii_case(s)).map(|l| l.id.clone()))
        };
        resolve(&mut v, "users", "includeUsers", &pp, &user)?;
        resolve(&mut v, "users", "excludeUsers", &pp, &user)?;
        resolve(&mut v, "users", "includeGroups", &pp, &group)?;
        resolve(&mut v, "users", "excludeGroups", &pp, &group)?;
        resolve(&mut v, "locations", "includeLocations", &pp, &location)?;
        resolve(&mut v, "locations", "excludeLocations", &pp, &location)?;
        let old = stored.iter().find(|x| x.display_name.eq_ignore_ascii_case(names[j].trim()));
        let id = old.map(|o| o.id.clone()).unwrap_or_else(|| Uuid::new_v4().to_string());
        v["id"] = Value::String(id);
        let policy: Policy = serde_path_to_error::deserialize(v).map_err(|e| {
            let at = e.path().to_string();
            let at = if at == "." { String::new() } else { format!(".{at}") };
            let msg = e.into_inner().to_string();
            match super::format::unknown_field(&msg) {
                Some((key, known)) => {
                    let hint = super::format::suggest(&key, &known).map(|s| format!(", did you mean {s}?"));
                    format!("{pp}{at}: unknown key{}", hint.unwrap_or_default())
                }
                None => format!("{pp}{at}: {msg}"),
            }
        })?;
        policy::validate(&policy).map_err(|e| format!("{pp}: {e}"))?;
        policy::validate_references(&policy, locations, &tenant.authentication_strengths)
            .map_err(|e| format!("{pp}: {e}"))?;
        policy::validate_group_references(&policy, &groups).map_err(|e| format!("{pp}: {e}"))?;
        policy::validate_terms_references(&policy, &agreements).map_err(|e| format!("{pp}: {e}"))?;
        text(&pp, "displayName", &policy.display_name)?;
        let label = format!("policy {}/{}", tenant.slug, policy.display_name);
        match old {
            None => plan.create(label, Some(Write::Policy(tenant.id, Box::new(policy)))),
            Some(o) => {
                let (a, b) =
                    (serde_json::to_value(o).unwrap_or_default(), serde_json::to_value(&policy).unwrap_or_default());
                let keys = ["displayName", "state", "conditions", "grantControls", "sessionControls"];
                let f: Vec<&str> = keys.into_iter().filter(|k| a.get(k) != b.get(k)).collect();
                plan.update(label, &f, Some(Write::Policy(tenant.id, Box::new(policy))));
            }
        }
    }
    Ok(())
}

/// Writes the plan, in order, then waits until it is durable.
pub async fn write(store: &Store, writes: Vec<Write>) -> Result<(), String> {
    for w in writes {
        match w {
            Write::Tenant(t) => store.put_tenant(&t).await.map_err(se)?,
            Write::InsertUser(u) => store.insert_user(&u).await.map_err(se)?,
            Write::ReplaceUser(old, new, limit) => {
                if !store.replace_user(&old, &new, Some(limit)).await.map_err(se)? {
                    return Err(format!("{} changed while applying: run apply again", new.user_principal_name));
                }
            }
            Write::App(a) => store.put_app(&a).await.map_err(se)?,
            Write::Location(t, l) => store.put_named_location(&t, &l).await.map_err(se)?,
            Write::Policy(t, p) => store.put_policy(&t, &p).await.map_err(se)?,
        }
    }
    store.flush().await.map_err(se)
}
