//! `GET /redeem?ticket=…`: check the ticket, then home realm discovery on the invited
//! email, and the home sign-in. The ticket is only consumed at consent (`consent`, the
//! redemption's last step).
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::model::TicketState;
use crate::model::{Acr, Authentication, Purpose, SignIn, Step};
use crate::oidc::session::{open_session, retire_session, session_cookie};
use crate::secrets::{digest, new_token};
use crate::signin::{posted, seat_exhausted, signin_user};
use crate::storage::Redeemed;
use crate::web::error::PageError;
use crate::web::pages::{MessagePage, render};
use crate::web::{Data, csrf};

pub enum TicketProblem {
    Unknown,
    Expired,
    Redeemed,
    Voided,
}

pub fn ticket_error(p: TicketProblem) -> PageError {
    match p {
        TicketProblem::Unknown => PageError::new(
            StatusCode::NOT_FOUND,
            "ticket_unknown",
            "This invitation link is not valid. Check that you opened the whole link from the email.",
        ),
        TicketProblem::Expired => PageError::new(
            StatusCode::GONE,
            "ticket_expired",
            "This invitation has expired. Ask the person who invited you to send a new one.",
        ),
        TicketProblem::Redeemed => PageError::new(
            StatusCode::GONE,
            "ticket_redeemed",
            "This invitation was already accepted. Sign in to the application directly.",
        ),
        TicketProblem::Voided => PageError::new(
            StatusCode::GONE,
            "ticket_voided",
            "This invitation link was replaced by a newer one. Use the latest invitation email.",
        ),
    }
}

pub async fn redeem(
    req: HttpRequest,
    state: Data,
    homes: crate::signin::guest::Homes,
) -> Result<HttpResponse, PageError> {
    let query = crate::web::form::query(&req)?;
    let raw = query.get("ticket").unwrap_or_default();
    if raw.is_empty() || raw.len() > 128 {
        return Err(ticket_error(TicketProblem::Unknown));
    }
    let ticket_id = digest(raw);
    let ticket = state.store.ticket(&ticket_id).await?.ok_or_else(|| ticket_error(TicketProblem::Unknown))?;
    match ticket.state {
        TicketState::Redeemed => return Err(ticket_error(TicketProblem::Redeemed)),
        TicketState::Voided => return Err(ticket_error(TicketProblem::Voided)),
        TicketState::Active => {}
    }
    if ticket.expires_at <= state.now() {
        return Err(ticket_error(TicketProblem::Expired));
    }
    let tenant = state.store.tenant(&ticket.tenant_id).await?.ok_or_else(|| ticket_error(TicketProblem::Unknown))?;
    let guest =
        state.store.user(&tenant.id, &ticket.user_id).await?.ok_or_else(|| ticket_error(TicketProblem::Unknown))?;
    let home = crate::federation::discover(&state, &tenant, &guest.mail).await?;
    let (browser, new_cookie) = csrf::browser(&req, &state);
    let tx = new_token();
    let signin = SignIn {
        tenant_id: tenant.id,
        browser: digest(&browser),
        purpose: Purpose::Redeem { ticket: ticket_id },
        step: Step::Identify,
        login: Some(guest.mail.clone()),
        user_id: Some(guest.id),
        expires_at: state.now() + state.config.tokens.signin_secs,
        strengths: vec![],
        passwordless: None,
        persistent_browser: None,
    };
    let mut resp = crate::signin::guest::begin_home(&state, &homes, &tenant, &tx, signin, home).await?;
    if let Some(c) = new_cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}

/// Redemption's last step: accept (one transaction: ticket consumed, guest Accepted,
/// invitation Completed) or decline (nothing changes).
pub async fn consent(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    state: Data,
) -> Result<HttpResponse, PageError> {
    let (tenant, f, tx, signin) = posted(&req, &state, &path, &body, |s| matches!(s, Step::Consent { .. })).await?;
    let (Step::Consent { identity, amr, idp, home }, Purpose::Redeem { ticket }) =
        (signin.step.clone(), signin.purpose.clone())
    else {
        return Err(PageError::signin_expired());
    };
    match f.get("decision") {
        Some("accept") => {}
        Some("decline") => {
            state.store.delete_signin(&digest(&tx)).await?;
            let page = MessagePage {
                id: "declined".into(),
                title: "Invitation declined".into(),
                message: format!("You declined the invitation from {}. Nothing was shared.", tenant.display_name),
                link: None,
            };
            return render(&page, vec![]);
        }
        _ => return Err(PageError::bad_request("invalid_request", "Choose Accept or Decline.")),
    }
    let user = signin_user(&state, &tenant, &signin).await?;
    // The settings may have changed while the guest read the consent page.
    if let Some(h) = &home {
        crate::signin::guest::refuse_if_blocked(&state, &req, &tenant, &tx, &user, h, &amr, &idp).await?;
    }
    if !crate::licensing::can_take_seat(&state.store, &tenant, &user).await? {
        return Err(seat_exhausted(&tenant));
    }
    // Where the guest goes afterwards is settled before the ticket is spent: a redirect
    // that cannot be sent must leave the invitation redeemable.
    let invitation = match state.store.ticket(&ticket).await? {
        Some(t) => state.store.invitation(&tenant.id, &t.invitation_id).await?,
        None => None,
    };
    let target = match invitation {
        Some(i) => crate::directory::invite::redirect_url(&i.invite_redirect_url)
            .ok()
            .and_then(|u| header::HeaderValue::from_str(&u).ok())
            .ok_or_else(|| {
                tracing::warn!(invitation = %i.id, "stored inviteRedirectUrl cannot be sent as a redirect");
                PageError::bad_request(
                    "invite_redirect_invalid",
                    "This invitation's return address is not valid, so it was not accepted. Ask the person who invited you to send a new invitation.",
                )
            })?,
        None => header::HeaderValue::from_static("/"),
    };
    let now = state.now();
    let outcome = state.store.redeem(&ticket, &identity, now, tenant.premium_seats).await?;
    crate::telemetry::redemption(&tenant.slug, &outcome);
    let user = match outcome {
        Redeemed::Done(u) => *u,
        // The last seat went to a concurrent redemption since the check above.
        Redeemed::NoSeat => return Err(seat_exhausted(&tenant)),
        Redeemed::AlreadyRedeemed => {
            return Err(crate::signin::redeem::ticket_error(crate::signin::redeem::TicketProblem::Redeemed));
        }
        Redeemed::Voided => {
            return Err(crate::signin::redeem::ticket_error(crate::signin::redeem::TicketProblem::Voided));
        }
        Redeemed::Unknown => {
            return Err(crate::signin::redeem::ticket_error(crate::signin::redeem::TicketProblem::Unknown));
        }
    };
    state.store.flush().await?;
    state.store.delete_signin(&digest(&tx)).await?;
    let acr = Acr::of(&amr);
    let auth = Authentication {
        user_id: user.id,
        auth_time: now,
        amr,
        acr,
        idp: Some(idp),
        epoch: user.session_epoch,
        device_id: None,
        home,
        mfa_time: None,
    };
    let previous = crate::web::cookie_value(&req, crate::oidc::session::SSO_COOKIE);
    let (cookie, _) = open_session(&state, &tenant, auth).await?;
    if let Some(old) = previous {
        retire_session(&state, &tenant, &digest(&old)).await?;
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, target))
        .cookie(session_cookie(&state, &tenant, cookie, false))
        .cookie(csrf::rotate(&state, &signin.browser).await?)
        .finish())
}
