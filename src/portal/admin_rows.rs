//! Rows of the admin page's read-only tables for terms of use and cross-tenant access
//! settings (DESIGN §12, §13), in words.
use crate::app::AppState;
use crate::model::{Tenant, TenantId, User};
use crate::policy::cross_tenant::{AccessType, B2bSetting, InboundTrustSettings, Targets};
use crate::web::pages::{AdminAgreementRow, AdminPartnerRow};

pub fn agreement_rows(tenant: &Tenant, users: &[User]) -> Vec<AdminAgreementRow> {
    tenant
        .agreements
        .iter()
        .map(|a| AdminAgreementRow {
            id: a.id.to_string(),
            name: a.display_name.clone(),
            reaccept: a.user_reaccept_required_frequency.clone().unwrap_or_else(|| "never".into()),
            accepted: users.iter().filter(|u| u.agreement_acceptances.iter().any(|x| x.agreement_id == a.id)).count(),
        })
        .collect()
}

fn targets(t: Option<&Targets>, all: &str) -> String {
    let Some(t) = t else { return format!("{all}: allowed") };
    let access = match t.access_type {
        AccessType::Allowed => "allowed",
        AccessType::Blocked => "blocked",
    };
    let names: Vec<&str> = t
        .targets
        .iter()
        .map(|x| {
            if x.target.eq_ignore_ascii_case("AllUsers") || x.target.eq_ignore_ascii_case("AllApplications") {
                all
            } else {
                x.target.as_str()
            }
        })
        .collect();
    format!("{}: {access}", names.join(", "))
}

/// A B2B setting in words; a partner's `None` inherits the default.
fn b2b(s: Option<&B2bSetting>, inherits: bool) -> String {
    match s {
        None if inherits => "as the default".into(),
        None => "all users and applications allowed".into(),
        Some(b) => format!(
            "{}; {}",
            targets(b.users_and_groups.as_ref(), "all users"),
            targets(b.applications.as_ref(), "all applications")
        ),
    }
}

fn trust(t: Option<&InboundTrustSettings>, inherits: bool) -> String {
    let Some(t) = t else { return if inherits { "as the default".into() } else { "nothing".into() } };
    let accepted: Vec<&str> = [
        (t.is_mfa_accepted, "MFA"),
        (t.is_compliant_device_accepted, "compliant devices"),
        (t.is_hybrid_azure_ad_joined_device_accepted, "hybrid joined devices"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if accepted.is_empty() { "nothing".into() } else { accepted.join(", ") }
}

/// The default first, then each partner with its tenant's name when it is on this instance.
pub async fn partner_rows(
    state: &AppState,
    tenant: &Tenant,
) -> Result<Vec<AdminPartnerRow>, crate::storage::StoreError> {
    let ct = &tenant.cross_tenant;
    let d = &ct.default;
    let mut rows = vec![AdminPartnerRow {
        name: "Default (every other organisation)".into(),
        tenant_id: "-".into(),
        inbound: b2b(d.b2b_collaboration_inbound.as_ref(), false),
        outbound: b2b(d.b2b_collaboration_outbound.as_ref(), false),
        trust: trust(d.inbound_trust.as_ref(), false),
    }];
    for p in &ct.partners {
        let name = state
            .store
            .tenant(&TenantId(p.tenant_id))
            .await?
            .map(|t| t.display_name)
            .unwrap_or_else(|| "(another instance)".into());
        rows.push(AdminPartnerRow {
            name,
            tenant_id: p.tenant_id.to_string(),
            inbound: b2b(p.b2b_collaboration_inbound.as_ref(), true),
            outbound: b2b(p.b2b_collaboration_outbound.as_ref(), true),
            trust: trust(p.inbound_trust.as_ref(), true),
        });
    }
    Ok(rows)
}
