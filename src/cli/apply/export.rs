//! `gatehouse export`: the store as the file `apply` reads, without secrets or password
//! hashes; ids are written as the natural keys `apply` resolves (UPNs, group and location names).
use std::collections::HashMap;

use serde_json::Value;

use super::format::{AppDecl, File, GroupDecl, LocationDecl, TenantDecl, UserDecl};
use crate::model::Tenant;
use crate::storage::Store;

pub const HEADER: &str = "# gatehouse export: no client secrets and no passwords or password hashes are exported;\n\
# add secret_env / secret_file to confidential apps and password_env / password_file to users\n\
# before applying this file to another store.\n";

fn se(e: crate::storage::StoreError) -> String {
    e.to_string()
}

pub async fn export(store: &Store, only: Option<&str>) -> Result<String, String> {
    let mut tenants = store.tenants().await.map_err(se)?;
    if let Some(slug) = only {
        tenants.retain(|t| t.slug == slug);
        if tenants.is_empty() {
            return Err(format!("no tenant {slug}"));
        }
    }
    tenants.sort_by(|a, b| a.slug.cmp(&b.slug));
    let mut file = File::default();
    for t in tenants {
        file.tenants.push(tenant(store, &t).await?);
    }
    let body = toml::to_string_pretty(&file).map_err(|e| e.to_string())?;
    Ok(format!("{HEADER}\n{body}"))
}

async fn tenant(store: &Store, t: &Tenant) -> Result<TenantDecl, String> {
    let mut domains = vec![t.initial_domain.clone()];
    domains.extend(t.domains.iter().filter(|d| **d != t.initial_domain).cloned());
    let mut apps: Vec<AppDecl> = store
        .apps(&t.id)
        .await
        .map_err(se)?
        .into_iter()
        .map(|a| AppDecl {
            client_id: a.client_id.to_string(),
            name: a.display_name,
            client_type: a.client_type,
            redirect_uris: a.redirect_uris,
            post_logout_redirect_uris: a.post_logout_redirect_uris,
            app_roles: a.app_roles,
            secret_env: None,
            secret_file: None,
            secret: None,
        })
        .collect();
    apps.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let mut members: Vec<crate::model::User> =
        store.users(&t.id).await.map_err(se)?.into_iter().filter(|u| !u.is_guest()).collect();
    members.sort_by(|a, b| a.user_principal_name.cmp(&b.user_principal_name));
    let users = members
        .iter()
        .map(|u| UserDecl {
            upn: u.user_principal_name.clone(),
            mail: (!u.mail.eq_ignore_ascii_case(&u.user_principal_name)).then(|| u.mail.clone()),
            display_name: u.display_name.clone(),
            per_user_mfa: u.per_user_mfa,
            password_env: None,
            password_file: None,
            password: None,
        })
        .collect();
    let mut groups: Vec<GroupDecl> = t
        .groups
        .iter()
        .map(|g| GroupDecl {
            name: g.display_name.clone(),
            description: g.description.clone(),
            members: members
                .iter()
                .filter(|u| u.member_of.contains(&g.id))
                .map(|u| u.user_principal_name.clone())
                .collect(),
        })
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let stored_locations = store.named_locations(&t.id).await.map_err(se)?;
    let mut locations: Vec<LocationDecl> = stored_locations
        .iter()
        .map(|l| LocationDecl {
            name: l.display_name.clone(),
            cidrs: l.ip_ranges.iter().map(|r| r.cidr_address.to_string()).collect(),
            trusted: l.is_trusted,
        })
        .collect();
    locations.sort_by(|a, b| a.name.cmp(&b.name));
    // Ids back to the names the file uses.
    let mut names: HashMap<String, String> = HashMap::new();
    for u in store.users(&t.id).await.map_err(se)? {
        names.insert(u.id.to_string(), u.user_principal_name);
    }
    for g in &t.groups {
        names.insert(g.id.to_string(), g.display_name.clone());
    }
    for l in &stored_locations {
        names.insert(l.id.clone(), l.display_name.clone());
    }
    let mut policies = store.policies(&t.id).await.map_err(se)?;
    policies.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    let mut tables = vec![];
    for p in policies {
        let mut v = serde_json::to_value(&p).map_err(|e| e.to_string())?;
        if let Value::Object(m) = &mut v {
            m.remove("id");
        }
        for (a, b) in [
            ("users", "includeUsers"),
            ("users", "excludeUsers"),
            ("users", "includeGroups"),
            ("users", "excludeGroups"),
            ("locations", "includeLocations"),
            ("locations", "excludeLocations"),
        ] {
            if let Some(Value::Array(items)) =
                v.get_mut("conditions").and_then(|c| c.get_mut(a)).and_then(|c| c.get_mut(b))
            {
                for item in items.iter_mut() {
                    if let Some(n) = item.as_str().and_then(|s| names.get(s)) {
                        *item = Value::String(n.clone());
                    }
                }
            }
        }
        strip_nulls(&mut v);
        let table: toml::Table = serde_json::from_value(v).map_err(|e| format!("policy {}: {e}", p.display_name))?;
        tables.push(table);
    }
    Ok(TenantDecl {
        slug: t.slug.clone(),
        display_name: t.display_name.clone(),
        domains,
        premium_seats: t.premium_seats,
        members_can_invite: t.members_can_invite,
        apps,
        users,
        groups,
        locations,
        policies: tables,
    })
}

/// TOML has no null: an absent key means the same to the policy parser.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}
