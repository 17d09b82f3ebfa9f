//! `GET /graph/v1.0/admin/mailQueue` (a gatehouse extension in Graph's shape): the delivery
//! state of every message the tenant sent over SMTP — recipient, subject, kind, status,
//! attempts, last error, times. Never a body: they carry redeem links and one-time codes.
use actix_web::{HttpRequest, HttpResponse};

use super::odata::Query;
use super::{Caller, GraphError};
use crate::web::Data;

/// The newest messages the view lists.
const LIMIT: usize = 1000;

pub async fn list(req: HttpRequest, state: Data) -> Result<HttpResponse, GraphError> {
    let caller =
        Caller::require(&req, &state, &["AuditLog.Read.All", super::ROLE_DIRECTORY_RW, super::ROLE_GLOBAL_ADMIN])
            .await?;
    let q = Query::parse(req.query_string(), &["status", "kind", "recipient"])?;
    let items = crate::mail::deliveries(&state, &caller.tenant.id, LIMIT).await?;
    let base = format!("{}/graph/v1.0/admin/mailQueue", state.public_url);
    Ok(HttpResponse::Ok().json(q.respond(items, &base, "#admin/mailQueue")?))
}
