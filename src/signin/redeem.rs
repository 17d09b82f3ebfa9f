//! `GET /redeem?ticket=…`: check the ticket, then home realm discovery on the invited
//! email, and the home sign-in. The ticket is only consumed at consent.
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::model::TicketState;
use crate::model::{Purpose, SignIn, Step};
use crate::secrets::{digest, new_token};
use crate::web::error::PageError;
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
    };
    let mut resp = crate::signin::begin_home(&state, &homes, &tenant, &tx, signin, home).await?;
    if let Some(c) = new_cookie {
        resp.add_cookie(&c).map_err(PageError::internal)?;
    }
    Ok(resp)
}
