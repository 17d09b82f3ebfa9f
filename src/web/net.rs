//! The client's IP: the TCP peer, or `X-Forwarded-For` when the peer is a trusted proxy;
//! and the deadline for reading a request body.
use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(resolve(peer, req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()), trusted))
}

/// Walks `X-Forwarded-For` from the right while the hop is trusted: the first untrusted
/// address is the client. A header from an untrusted peer is ignored entirely.
pub fn resolve(peer: IpAddr, xff: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(xff) = xff else { return peer };
    let mut client = peer;
    for hop in xff.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// A request body that must arrive whole before a deadline: a client trickling bytes (one a
/// second) would otherwise hold a worker's connection open for as long as it likes.
pub struct BodyDeadline {
    inner: actix_web::dev::Payload,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl BodyDeadline {
    /// Wraps the body of `req` (when it has one) so reading it fails after `secs`.
    pub fn apply(req: &mut actix_web::dev::ServiceRequest, secs: u64) {
        use actix_web::HttpMessage;
        use actix_web::http::header;
        let has_body =
            req.headers().contains_key(header::CONTENT_LENGTH) || req.headers().contains_key(header::TRANSFER_ENCODING);
        if !has_body {
            return;
        }
        let inner = req.take_payload();
        let deadline = Box::pin(tokio::time::sleep(std::time::Duration::from_secs(secs)));
        req.set_payload(actix_web::dev::Payload::Stream {
            payload: Box::pin(Self { inner, deadline, expired: false }),
        });
    }
}

impl futures_util::Stream for BodyDeadline {
    type Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        if self.expired {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired = true;
            let late = std::io::Error::new(std::io::ErrorKind::TimedOut, "the request body arrived too slowly");
            return Poll::Ready(Some(Err(actix_web::error::PayloadError::Io(late))));
        }
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_only_believed_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(resolve(ip("198.51.100.7"), Some("203.0.113.9"), &trusted), ip("198.51.100.7"));
        assert_eq!(resolve(ip("10.0.0.1"), Some("203.0.113.9"), &trusted), ip("203.0.113.9"));
        assert_eq!(resolve(ip("10.0.0.1"), Some("1.2.3.4, 203.0.113.9, 10.0.0.2"), &trusted), ip("203.0.113.9"));
        assert_eq!(resolve(ip("10.0.0.1"), Some("garbage"), &trusted), ip("10.0.0.1"));
        assert_eq!(resolve(ip("10.0.0.1"), None, &trusted), ip("10.0.0.1"));
    }
}
