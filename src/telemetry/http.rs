//! Per request: a request id (a sane `X-Request-Id` from a trusted proxy, else a fresh
//! uuid) in the request's tracing span and in the `x-request-id` response header; the
//! request metrics by route template, method and status; one access log line (debug); and
//! the audit line of an admin change (who, what, result; info).
use std::future::Future;

use actix_web::HttpMessage;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use ipnet::IpNet;
use metrics::{counter, histogram};
use tracing::Instrument;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{HTTP_DURATION, HTTP_REQUESTS};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Who made an admin request (a user's object id or an app's client id), put in the
/// request's extensions by whoever authenticated it, for the audit line.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

/// The request id of the request: an incoming `X-Request-Id` only from a trusted proxy and
/// only when it is 1 to 64 characters of `[A-Za-z0-9._-]`; otherwise a new uuid.
pub fn request_id(req: &ServiceRequest, trusted: &[IpNet]) -> String {
    let from_proxy = req.peer_addr().is_some_and(|p| trusted.iter().any(|n| n.contains(&p.ip())));
    let incoming = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok());
    match incoming {
        Some(id) if from_proxy && sane(id) => id.to_string(),
        _ => uuid::Uuid::new_v4().to_string(),
    }
}

fn sane(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The method as a label: the standard ones by name, any other as `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Whether a request to this route template changes something an admin owns: Graph writes
/// and the portal's admin actions.
fn is_admin_change(method: &Method, route: &str) -> bool {
    let write = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    // What If (`…/evaluate`) is a POST that changes nothing.
    write && !route.ends_with("/evaluate") && (route.starts_with("/graph/") || route.starts_with("/{tenant}/admin/"))
}

/// The middleware (`App::wrap_fn`): the span, the header, the metrics and the log lines;
/// once `draining` (a shutdown began) every response closes its connection.
pub fn observe<S, B>(
    req: ServiceRequest,
    srv: &S,
    trusted: &[IpNet],
    draining: &Arc<AtomicBool>,
) -> impl Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let id = request_id(&req, trusted);
    let draining = draining.clone();
    let method = req.method().clone();
    let span = tracing::info_span!("request", request_id = %id);
    let start = std::time::Instant::now();
    let fut = {
        let _entered = span.enter();
        srv.call(req)
    };
    async move {
        let result = fut.await;
        let elapsed = start.elapsed().as_secs_f64();
        let (status, route) = match &result {
            Ok(res) => (res.status(), res.request().match_pattern()),
            Err(e) => (e.as_response_error().status_code(), None),
        };
        let route = route.unwrap_or_else(|| "unmatched".to_string());
        let m = method_label(&method);
        counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => m, "status" => status.as_u16().to_string())
            .increment(1);
        histogram!(HTTP_DURATION, "route" => route.clone(), "method" => m).record(elapsed);
        let ms = (elapsed * 1000.0).round() as u64;
        // At debug: a line per request costs the hot path a write (RUST_LOG turns it on).
        tracing::debug!(method = m, route = %route, status = status.as_u16(), ms, "request");
        let mut res = result?;
        if is_admin_change(&method, &route) {
            let actor = res.request().extensions().get::<Actor>().map(|a| a.0.clone());
            let target = res.request().match_info().get("id").map(|t| t.chars().take(128).collect::<String>());
            let tenant = res.request().match_info().get("tenant").map(|t| t.chars().take(64).collect::<String>());
            tracing::info!(
                actor = actor.as_deref().unwrap_or("unauthenticated"),
                tenant = tenant.as_deref(),
                target = target.as_deref(),
                method = m,
                route = %route,
                status = status.as_u16(),
                "admin change {}",
                if status.is_success() || status.is_redirection() { "done" } else { "refused" }
            );
        }
        if let Ok(v) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(REQUEST_ID, v);
        }
        if draining.load(Ordering::SeqCst) {
            res.response_mut().head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        }
        Ok(res)
    }
    .instrument(span)
}

/// `/metrics` on the metrics listener: the Prometheus text format.
pub async fn metrics(
    handle: actix_web::web::Data<metrics_exporter_prometheus::PrometheusHandle>,
) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(handle.render())
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_short_plain_request_ids_are_taken() {
        assert!(sane("abc-123_X.y"));
        assert!(!sane(""));
        assert!(!sane(&"a".repeat(65)));
        assert!(!sane("a b"));
        assert!(!sane("a\"b"));
    }
}
