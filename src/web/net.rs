//! The client's IP: the TCP peer, or `X-Forwarded-For` when the peer is a trusted proxy.
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
