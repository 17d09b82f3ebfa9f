//! The server-side request forgery guard for external identity providers (DESIGN §16): an
//! admin-supplied URL gatehouse fetches must be `https` and must not reach this machine or a
//! private network, unless `federation.allow_insecure_hosts` names its host (or host:port).
//!
//! Known limitation: the name is resolved here and again by the HTTP client when it connects,
//! so a host whose DNS answer changes in between (DNS rebinding) is not caught; the check is
//! made when the provider is configured, not on every sign-in.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a URL may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not a valid URL")]
    NotAUrl(String),
    #[error("{0} must use https")]
    NotHttps(String),
    #[error("{0} carries a user name or password")]
    Credentials(String),
    #[error("the host of {0} does not resolve")]
    Unresolved(String),
    #[error("{url} resolves to {addr}, a loopback, private or link-local address")]
    PrivateAddress { url: String, addr: IpAddr },
}

/// The host of `url` as written in `federation.allow_insecure_hosts`: lowercase, no
/// trailing dot, IPv6 without brackets.
fn host_of(url: &url::Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
        url::Host::Ipv4(a) => Some(a.to_string()),
        url::Host::Ipv6(a) => Some(a.to_string()),
    }
}

/// Whether an entry of `allow_insecure_hosts` (`host`, `host:port`, `[v6]`, `[v6]:port`)
/// names `host` at `port`. An entry without a port names every port of the host.
pub fn entry_matches(entry: &str, host: &str, port: u16) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    let (h, p) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, "")) => (h.to_string(), None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h.to_string(), Some(p.to_string())),
                None => return false,
            },
            None => return false,
        }
    } else if entry.matches(':').count() == 1 {
        let (h, p) = entry.split_once(':').unwrap_or_default();
        (h.to_string(), Some(p.to_string()))
    } else {
        // A bare host, or an IPv6 address without brackets (no port then).
        (entry.clone(), None)
    };
    let same_host = match (h.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => h.trim_end_matches('.') == host,
    };
    same_host && p.is_none_or(|p| p.parse::<u16>().ok() == Some(port))
}

/// Whether `allow` names the host (and port) of `url`.
pub fn insecure_allowed(allow: &[String], url: &url::Url) -> bool {
    let (Some(host), Some(port)) = (host_of(url), url.port_or_known_default()) else { return false };
    allow.iter().any(|e| entry_matches(e, &host, port))
}

/// The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = a.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = a.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // ::a.b.c.d (deprecated compatible form; :: and ::1 are judged as IPv6 below).
    if s[..6] == [0; 6] && u32::from(tail) > 1 {
        return Some(tail);
    }
    // 64:ff9b::/96, the well-known NAT64 prefix.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    // 2002:AABB:CCDD::/48, 6to4.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

fn v4_is_public(a: Ipv4Addr) -> bool {
    let o = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_broadcast()
        || a.is_multicast()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || o[0] >= 240) // reserved
}

/// Whether `ip` is an address on the public internet (not loopback, private, link-local,
/// unique-local, unspecified, CGNAT, multicast, or an IPv6 form of one of those).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => v4_is_public(a),
        IpAddr::V6(a) => {
            if let Some(v4) = embedded_v4(a) {
                return v4_is_public(v4);
            }
            let s0 = a.segments()[0];
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s0 & 0xfe00) == 0xfc00 // unique-local fc00::/7
                || (s0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s0 & 0xffc0) == 0xfec0) // site-local fec0::/10 (deprecated)
        }
    }
}

/// Checks `url` before gatehouse fetches it: https, and every address its host resolves to
/// public — unless `allow` names the host, which may then use http and any address.
pub async fn check(url: &str, allow: &[String]) -> Result<url::Url, Refused> {
    let parsed = url::Url::parse(url).map_err(|_| Refused::NotAUrl(url.into()))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(Refused::NotAUrl(url.into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Refused::Credentials(url.into()));
    }
    if insecure_allowed(allow, &parsed) {
        return Ok(parsed);
    }
    if parsed.scheme() != "https" {
        return Err(Refused::NotHttps(url.into()));
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(a)) => vec![IpAddr::V4(a)],
        Some(url::Host::Ipv6(a)) => vec![IpAddr::V6(a)],
        Some(url::Host::Domain(d)) => tokio::net::lookup_host((d, port))
            .await
            .map_err(|_| Refused::Unresolved(url.into()))?
            .map(|s| s.ip())
            .collect(),
        None => vec![],
    };
    if addrs.is_empty() {
        return Err(Refused::Unresolved(url.into()));
    }
    if let Some(addr) = addrs.into_iter().find(|a| !is_public(*a)) {
        return Err(Refused::PrivateAddress { url: url.into(), addr });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_private_link_local_and_their_ipv6_forms_are_not_public() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
        ] {
            assert!(!is_public(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(ip(a)), "{a} is public");
        }
    }

    #[test]
    fn an_allowed_host_matches_every_port_and_host_port_only_its_port() {
        assert!(entry_matches("127.0.0.1", "127.0.0.1", 8080));
        assert!(entry_matches("127.0.0.1", "127.0.0.1", 443));
        assert!(entry_matches("127.0.0.1:8080", "127.0.0.1", 8080));
        assert!(!entry_matches("127.0.0.1:8080", "127.0.0.1", 8081));
        assert!(!entry_matches("127.0.0.1", "127.0.0.2", 8080));
        assert!(entry_matches("Partner.Example", "partner.example", 80));
        assert!(entry_matches("partner.example.", "partner.example", 80));
        assert!(!entry_matches("partner.example", "evil-partner.example", 80));
        assert!(!entry_matches("partner.example", "partner.example.evil", 80));
        assert!(entry_matches("[::1]:9000", "::1", 9000));
        assert!(!entry_matches("[::1]:9000", "::1", 9001));
        assert!(entry_matches("[::1]", "::1", 1));
        assert!(entry_matches("::1", "::1", 1));
        assert!(!entry_matches("host:notaport", "host", 80));
        assert!(!entry_matches("[::1", "::1", 80));
    }

    #[test]
    fn url_matching_uses_the_default_port_of_the_scheme() {
        let allow = vec!["partner.example:443".to_string(), "127.0.0.1:8080".to_string()];
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(insecure_allowed(&allow, &u("https://partner.example/x")));
        assert!(!insecure_allowed(&allow, &u("http://partner.example/x")), "port 80");
        assert!(insecure_allowed(&allow, &u("http://127.0.0.1:8080/")));
        assert!(!insecure_allowed(&allow, &u("http://127.0.0.1/")));
        assert!(insecure_allowed(&["::1".into()], &u("http://[::1]:5/")));
    }

    #[tokio::test]
    async fn the_guard_refuses_http_and_private_targets_before_any_connection() {
        let none: Vec<String> = vec![];
        assert!(matches!(check("http://partner.example/", &none).await, Err(Refused::NotHttps(_))));
        assert!(matches!(check("https://127.0.0.1:1/x", &none).await, Err(Refused::PrivateAddress { .. })));
        assert!(matches!(check("https://10.0.0.1/x", &none).await, Err(Refused::PrivateAddress { .. })));
        assert!(matches!(check("https://[::ffff:127.0.0.1]/x", &none).await, Err(Refused::PrivateAddress { .. })));
        assert!(matches!(
            check("https://localhost/x", &none).await,
            Err(Refused::PrivateAddress { .. } | Refused::Unresolved(_))
        ));
        assert!(matches!(check("ftp://partner.example/", &none).await, Err(Refused::NotAUrl(_))));
        assert!(matches!(check("https://u:p@8.8.8.8/", &none).await, Err(Refused::Credentials(_))));
        assert!(check("https://8.8.8.8/x", &none).await.is_ok());
        let allow = vec!["127.0.0.1".to_string()];
        assert!(check("http://127.0.0.1:1/x", &allow).await.is_ok());
    }
}
