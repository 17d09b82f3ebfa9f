//! The commands that talk to a running server's admin API (Graph) with a client credential:
//! `users`, `groups`, `mfa`, `invite`, `redemption`, `policy`, `idp`, `whatif`, `signins`,
//! `guests`.
use super::*;

pub(super) enum AdminOp {
    Users(UsersAction),
    Groups(GroupsAction),
    Mfa(MfaAction),
    Invite { email: String, redirect: String, app: Option<String>, display_name: Option<String>, send: bool },
    Redemption(RedemptionAction),
    Policy(PolicyAction),
    Idp(IdpAction),
    Whatif { user: String, app: String, ip: Option<std::net::IpAddr>, device: Option<String>, methods: Vec<String> },
    Signins { user: Option<String>, app: Option<String>, top: usize },
    Guests(GuestsAction),
}

pub(super) fn admin_command(config: Option<&std::path::Path>, conn: ConnArgs, op: AdminOp) -> Result<(), String> {
    let file = match &conn.credentials {
        Some(f) => f.clone(),
        None => {
            let cfg = load(config, Overrides { data_dir: conn.data_dir.clone(), ..Default::default() })?;
            cfg.data_dir.join(crate::demo::seed::CREDENTIALS_FILE)
        }
    };
    let creds = crate::admin::client::Credentials {
        server: conn.server.clone(),
        tenant: conn.tenant.clone(),
        client_id: conn.client_id.clone(),
        client_secret: conn.client_secret.clone(),
    }
    .with_file(&file)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let c = crate::admin::client::connect(&creds).await?;
        let out = run_admin(&c, op, conn.json).await?;
        println!("{}", out.trim_end());
        Ok(())
    })
}

/// How a value prints in a table: its JSON form, strings unquoted, `null` as `-` (an enum by
/// its wire name, so tables and `--json` agree).
pub(super) fn s(v: &impl serde::Serialize) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(x)) => x,
        Ok(serde_json::Value::Null) => "-".into(),
        Ok(other) => other.to_string(),
        Err(_) => "-".into(),
    }
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// `--json` output: through `serde_json::Value`, so the keys print sorted as they always have.
pub(super) fn pretty(v: &impl serde::Serialize) -> String {
    serde_json::to_value(v).and_then(|v| serde_json::to_string_pretty(&v)).unwrap_or_default()
}

/// What `mfa reset --json` prints.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Removed<'a> {
    user_principal_name: &'a str,
    removed: &'a [String],
}

/// What `users list --with-methods --json` prints: the Graph user and its MFA methods.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct UserWithMethods {
    #[serde(flatten)]
    user: crate::admin::wire::User,
    mfa_methods: Vec<crate::admin::wire::AuthenticationMethod>,
}

/// The kinds of MFA methods held, for a table cell: `totp`, `passkey`, `totp+passkey` or `-`.
fn mfa_kinds(methods: &[crate::admin::wire::AuthenticationMethod]) -> String {
    use crate::admin::wire::AuthenticationMethod;
    let totp = methods.iter().any(|m| matches!(m, AuthenticationMethod::SoftwareOath(_)));
    let passkey = methods.iter().any(|m| matches!(m, AuthenticationMethod::Fido2(_)));
    match (totp, passkey) {
        (true, true) => "totp+passkey",
        (true, false) => "totp",
        (false, true) => "passkey",
        (false, false) => "-",
    }
    .into()
}

async fn run_admin(c: &crate::admin::client::Connection, op: AdminOp, json: bool) -> Result<String, String> {
    use crate::admin::client::table;
    use crate::admin::wire::{self, AuthenticationMethod, Collection};
    match op {
        AdminOp::Guests(GuestsAction::Inactive { days, disable, delete }) => {
            let act = match (disable, delete) {
                (true, _) => guests::Act::Disable,
                (false, true) => guests::Act::Delete,
                (false, false) => guests::Act::DryRun,
            };
            guests::inactive(c, days, act, SystemClock.now(), json).await
        }
        AdminOp::Users(UsersAction::List { guests, with_methods }) => {
            let path = if guests { format!("users?$filter={}", enc("userType eq 'Guest'")) } else { "users".into() };
            let mut users: Vec<wire::User> = c.list(&path).await?;
            let row = |u: &wire::User| {
                let methods: Vec<String> = u.strong_authentication_methods.iter().map(|m| s(&m.method_type)).collect();
                vec![s(&u.user_principal_name), s(&u.user_type), s(&u.external_user_state), methods.join(",")]
            };
            let headers = ["UserPrincipalName", "UserType", "State", "Methods"];
            if !with_methods {
                if json {
                    return Ok(pretty(&users));
                }
                return Ok(table(&headers, &users.iter().map(row).collect::<Vec<_>>()));
            }
            users.retain(|u| !u.strong_authentication_methods.is_empty());
            // One request per listed user: the methods themselves, not the summary on the user.
            let mut listed = Vec::with_capacity(users.len());
            for user in users {
                let methods: Collection<AuthenticationMethod> =
                    c.get(&format!("users/{}/authentication/methods", user.id)).await?;
                let mfa_methods =
                    methods.value.into_iter().filter(|m| !matches!(m, AuthenticationMethod::Password(_))).collect();
                listed.push(UserWithMethods { user, mfa_methods });
            }
            if json {
                return Ok(pretty(&listed));
            }
            let rows: Vec<Vec<String>> = listed
                .iter()
                .map(|l| {
                    let mut r = row(&l.user);
                    r.push(mfa_kinds(&l.mfa_methods));
                    r
                })
                .collect();
            Ok(table(&[&headers[..], &["MfaMethods"]].concat(), &rows))
        }
        AdminOp::Groups(GroupsAction::List) => {
            let groups: Vec<wire::Group> = c.list("groups").await?;
            let mut rows = Vec::with_capacity(groups.len());
            for g in &groups {
                let members: Vec<serde_json::Value> = c.list(&format!("groups/{}/members", g.id)).await?;
                rows.push(vec![s(&g.id), s(&g.display_name), members.len().to_string()]);
            }
            if json {
                return Ok(pretty(&groups));
            }
            Ok(table(&["Id", "DisplayName", "Members"], &rows))
        }
        AdminOp::Groups(GroupsAction::AddMember { group, upn }) => {
            let groups: Vec<wire::Group> = c.list("groups").await?;
            let g = groups
                .iter()
                .find(|g| g.id.to_string().eq_ignore_ascii_case(&group))
                .or_else(|| groups.iter().find(|g| g.display_name.eq_ignore_ascii_case(&group)))
                .ok_or_else(|| format!("no group {group:?}"))?;
            let user: wire::User = c.get(&format!("users/{}", enc(&upn))).await?;
            let body = wire::ObjectRef { odata_id: format!("{}/graph/v1.0/directoryObjects/{}", c.base, user.id) };
            c.post_no_content(&format!("groups/{}/members/$ref", g.id), &body).await?;
            Ok(format!("added {} to {}", user.user_principal_name, g.display_name))
        }
        AdminOp::Mfa(MfaAction::Reset { upn }) => {
            let methods: Collection<AuthenticationMethod> =
                c.get(&format!("users/{}/authentication/softwareOathMethods", enc(&upn))).await?;
            let mut ids: Vec<String> = methods.value.iter().map(|m| m.id().to_string()).collect();
            for id in &ids {
                c.delete(&format!("users/{}/authentication/softwareOathMethods/{id}", enc(&upn))).await?;
            }
            // Passkeys too: the next MFA sign-in proofs up again.
            let passkeys: Collection<AuthenticationMethod> =
                c.get(&format!("users/{}/authentication/fido2Methods", enc(&upn))).await?;
            for m in &passkeys.value {
                c.delete(&format!("users/{}/authentication/fido2Methods/{}", enc(&upn), m.id())).await?;
                ids.push(m.id().to_string());
            }
            Ok(if json {
                pretty(&Removed { user_principal_name: &upn, removed: &ids })
            } else {
                format!("removed {} method(s) of {upn}; the next MFA sign-in proofs up again", ids.len())
            })
        }
        AdminOp::Invite { email, redirect, app, display_name, send } => {
            let body = wire::InvitationRequest {
                invited_user_email_address: Some(email),
                invite_redirect_url: Some(redirect),
                send_invitation_message: send,
                app_id: app,
                invited_user_display_name: display_name,
                ..Default::default()
            };
            let inv: wire::Invitation = c.post("invitations", &body).await?;
            Ok(if json {
                pretty(&inv)
            } else {
                format!(
                    "invited {} ({})\nredeem: {}",
                    inv.invited_user_email_address, inv.invited_user.user_principal_name, inv.invite_redeem_url
                )
            })
        }
        AdminOp::Redemption(RedemptionAction::Reset { email, redirect }) => {
            let body = wire::InvitationRequest {
                invited_user_email_address: Some(email.clone()),
                invite_redirect_url: Some(redirect),
                reset_redemption: true,
                send_invitation_message: true,
                ..Default::default()
            };
            let inv: wire::Invitation = c.post("invitations", &body).await?;
            Ok(if json {
                pretty(&inv)
            } else {
                format!("redemption reset for {email}; new link: {}", inv.invite_redeem_url)
            })
        }
        AdminOp::Policy(PolicyAction::List) => {
            let ps: Vec<wire::Policy> = c.list("identity/conditionalAccess/policies").await?;
            if json {
                return Ok(pretty(&ps));
            }
            let rows: Vec<Vec<String>> = ps
                .iter()
                .map(|p| {
                    let controls: Vec<String> =
                        p.grant_controls.iter().flat_map(|g| g.built_in_controls.iter().map(s)).collect();
                    vec![s(&p.id), s(&p.display_name), s(&p.state), controls.join(",")]
                })
                .collect();
            Ok(table(&["Id", "DisplayName", "State", "Grant"], &rows))
        }
        AdminOp::Policy(PolicyAction::Apply { file }) => {
            use serde_json::Value;
            // The file holds merge patches (any part of a policy), so it stays JSON here.
            let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let items = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            let existing: Vec<wire::Policy> = c.list("identity/conditionalAccess/policies").await?;
            let mut lines = Vec::new();
            for mut p in items {
                let named = |key: &str| p.get(key).and_then(Value::as_str).map(str::to_owned);
                let (id, display_name) = (named("id"), named("displayName"));
                let found = existing.iter().find(|e| {
                    id.as_deref() == Some(e.id.as_str()) || display_name.as_deref() == Some(e.display_name.as_str())
                });
                if let Value::Object(m) = &mut p {
                    m.remove("id");
                }
                match found {
                    Some(e) => {
                        c.patch(&format!("identity/conditionalAccess/policies/{}", e.id), &p).await?;
                        lines.push(format!("updated {} {}", e.id, e.display_name));
                    }
                    None => {
                        let created: wire::Policy = c.post("identity/conditionalAccess/policies", &p).await?;
                        lines.push(format!("created {} {}", created.id, created.display_name));
                    }
                }
            }
            Ok(lines.join("\n"))
        }
        AdminOp::Whatif { user, app, ip, device, methods } => {
            let (user_id, user_principal_name) =
                if user.contains('@') { (None, Some(user)) } else { (Some(user), None) };
            let body = wire::WhatIfRequest {
                user_id,
                user_principal_name,
                app_id: app,
                ip_address: ip,
                device_id: device,
                authentication_methods: methods,
                ..Default::default()
            };
            let r: wire::WhatIfResult = c.post("identity/conditionalAccess/evaluate", &body).await?;
            if json {
                return Ok(pretty(&r));
            }
            let rows: Vec<Vec<String>> = r
                .applied_conditional_access_policies
                .iter()
                .map(|p| {
                    let g: Vec<String> = p.enforced_grant_controls.iter().map(s).collect();
                    vec![s(&p.display_name), s(&p.result), g.join(",")]
                })
                .collect();
            Ok(format!("outcome: {}\n{}", s(&r.outcome), table(&["Policy", "Result", "Grant"], &rows)))
        }
        AdminOp::Idp(action) => idp_command(c, action, json).await,
        AdminOp::Signins { user, app, top } => {
            let mut filters = Vec::new();
            if let Some(u) = user {
                filters.push(format!("userPrincipalName eq '{}'", u.replace('\'', "''")));
            }
            if let Some(a) = app {
                filters.push(format!("appId eq '{}'", a.replace('\'', "''")));
            }
            let mut path = format!("auditLogs/signIns?$top={top}");
            if !filters.is_empty() {
                path.push_str(&format!("&$filter={}", enc(&filters.join(" and "))));
            }
            let page: Collection<wire::SignIn> = c.get(&path).await?;
            let entries = page.value;
            if json {
                return Ok(pretty(&entries));
            }
            let rows: Vec<Vec<String>> = entries
                .iter()
                .map(|e| {
                    let result = if e.status.error_code == 0 { "success".to_string() } else { s(&e.status.error) };
                    vec![
                        s(&e.created_date_time),
                        s(&e.user_principal_name),
                        s(&e.app_id),
                        s(&e.ip_address),
                        result,
                        e.amr.join(","),
                        s(&e.conditional_access_status),
                    ]
                })
                .collect();
            Ok(table(&["Time", "User", "App", "IP", "Result", "AMR", "CA"], &rows))
        }
    }
}

/// `gatehouse idp add|list|remove`, through `identity/identityProviders`.
async fn idp_command(c: &crate::admin::client::Connection, action: IdpAction, json: bool) -> Result<String, String> {
    use crate::admin::client::table;
    use crate::admin::identity_providers::{IdentityProvider, IdentityProviderIn, ODATA_TYPE};
    const PATH: &str = "identity/identityProviders";
    match action {
        IdpAction::Add { name, metadata_url, partner_client_id, client_secret_env, domains, scope } => {
            let secret = std::env::var(&client_secret_env)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the environment variable {client_secret_env} holds no client secret"))?;
            let body = IdentityProviderIn {
                odata_type: Some(ODATA_TYPE.into()),
                display_name: Some(name),
                client_id: Some(partner_client_id),
                client_secret: Some(secret),
                metadata_url: Some(metadata_url),
                scope,
                domains: Some(domains),
                ..Default::default()
            };
            let idp: IdentityProvider = c.post(PATH, &body).await?;
            Ok(if json {
                pretty(&idp)
            } else {
                format!("added {} ({}): issuer {}", idp.display_name, idp.id, idp.issuer)
            })
        }
        IdpAction::List => {
            let idps: Vec<IdentityProvider> = c.list(PATH).await?;
            if json {
                return Ok(pretty(&idps));
            }
            let rows: Vec<Vec<String>> = idps
                .iter()
                .map(|i| vec![i.id.clone(), i.display_name.clone(), i.issuer.clone(), i.domains.join(",")])
                .collect();
            Ok(table(&["Id", "DisplayName", "Issuer", "Domains"], &rows))
        }
        IdpAction::Remove { id } => {
            c.delete(&format!("{PATH}/{}", enc(&id))).await?;
            Ok(if json { pretty(&serde_json::json!({ "removed": id })) } else { format!("removed {id}") })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::mfa_kinds;
    use crate::admin::wire::AuthenticationMethod;

    #[test]
    fn mfa_kinds_name_each_kind_once_totp_first() {
        let totp = AuthenticationMethod::software_oath("t".into(), "1970-01-01T00:00:00Z".into());
        let key = |id: &str| AuthenticationMethod::fido2(id.into(), "Key".into(), "0".into(), "x".into());
        assert_eq!(mfa_kinds(&[]), "-");
        assert_eq!(mfa_kinds(&[AuthenticationMethod::password()]), "-");
        assert_eq!(mfa_kinds(std::slice::from_ref(&totp)), "totp");
        assert_eq!(mfa_kinds(&[key("a"), key("b")]), "passkey");
        assert_eq!(mfa_kinds(&[key("a"), totp]), "totp+passkey");
    }
}
