//! Terms of use in the sign-in (DESIGN §12): conditional access names agreements the user
//! has not accepted (or must accept again); the page shows them after MFA. Accepting
//! records the time per agreement on the user and goes on; declining ends the sign-in.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::model::{AgreementAcceptance, SignIn, Step, Tenant};
use crate::secrets::digest;
use crate::signin::flow::after_primary;
use crate::signin::posted;
use crate::web::Data;
use crate::web::error::PageError;
use crate::web::pages::{SignInContext, TermsPage, TermsView, render};

/// The page for `Step::Terms`: the agreements still to accept, as the tenant holds them now.
pub fn page(tenant: &Tenant, ctx: SignInContext, ids: &[String]) -> Result<HttpResponse, PageError> {
    let agreements: Vec<TermsView> = tenant
        .agreements
        .iter()
        .filter(|a| ids.contains(&a.id.to_string()))
        .map(|a| TermsView {
            id: a.id.to_string(),
            name: a.display_name.clone(),
            paragraphs: a.text.split("\n\n").map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect(),
        })
        .collect();
    // An agreement deleted meanwhile cannot be shown (and policies naming it were refused).
    if agreements.is_empty() {
        return Err(PageError::signin_expired());
    }
    render(&TermsPage { ctx, agreements }, vec![])
}

/// `POST /{tenant}/login/terms`: `decision` is `accept` or `decline`.
pub async fn answer(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::Terms { .. })).await?;
    let Step::Terms { auth, agreements } = signin.step.clone() else { return Err(PageError::signin_expired()) };
    match f.get("decision") {
        Some("accept") => {}
        Some("decline") => return declined(&state, &req, &tenant, &tx, &signin, &auth, &agreements).await,
        _ => return Err(PageError::bad_request("invalid_request", "Choose Accept or Decline.")),
    }
    let now = state.now();
    let accepted = crate::storage::modify_user(&state.store, &tenant.id, &auth.user_id, |u| {
        for id in tenant.agreements.iter().map(|a| a.id).filter(|id| agreements.contains(&id.to_string())) {
            u.agreement_acceptances.retain(|a| a.agreement_id != id);
            u.agreement_acceptances.push(AgreementAcceptance { agreement_id: id, accepted_at: now });
        }
    })
    .await?;
    if accepted.is_none() {
        state.store.delete_signin(&digest(&tx)).await?;
        return Err(PageError::signin_expired());
    }
    state.store.flush().await?;
    tracing::info!(tenant = %tenant.slug, user = %auth.user_id, agreements = ?agreements, "terms of use accepted");
    // Conditional access decides again: other controls may be left, or nothing.
    after_primary(&state, &req, &tenant, &tx, signin, auth, None).await
}

async fn declined(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    tx: &str,
    signin: &SignIn,
    auth: &crate::model::Authentication,
    agreements: &[String],
) -> Result<HttpResponse, PageError> {
    state.store.delete_signin(&digest(tx)).await?;
    let user = state.store.user(&tenant.id, &auth.user_id).await?;
    let app_id = signin.client_id().unwrap_or(crate::access::PORTAL_APP).to_string();
    let facts = crate::audit::LogFacts {
        tenant,
        user: user.as_ref(),
        app_id: &app_id,
        ip: crate::web::net::client_ip(req, &state.config.trusted_proxies),
        device: None,
        idp: auth.idp.clone(),
        amr: auth.amr.clone(),
        interactive: true,
    };
    let reason = format!("the user declined the terms of use ({})", agreements.join(", "));
    crate::audit::log(state, facts, None, Some(("terms_declined", reason))).await;
    Err(PageError::new(
        StatusCode::FORBIDDEN,
        "terms_declined",
        format!(
            "You declined {}'s terms of use, so you cannot sign in. To use the application, sign in again and accept them.",
            tenant.display_name
        ),
    ))
}
