//! The caller's address for audit records and limits: the connection's peer, or the
//! right-most untrusted hop of `X-Forwarded-For` when the peer is a configured trusted proxy.
//!
//! `X-Forwarded-For` is written by the client first and appended to by each proxy, so only the
//! hops added by proxies we trust can be believed; walking from the right and stopping at the
//! first address that is not a trusted proxy gives the address the outermost trusted proxy saw
//! (MDN, "X-Forwarded-For: Selecting an IP address").

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// Parses the `trusted_proxies` setting: CIDR blocks (`10.0.0.0/8`, `fd00::/8`) or single
/// addresses (`127.0.0.1`).
///
/// # Errors
///
/// The first entry that is neither, in a message naming it.
pub fn parse_trusted_proxies<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.as_ref().trim();
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("trusted_proxies: `{entry}` is not an IP address or CIDR block")
                })
        })
        .collect()
}

/// The client address of a request that arrived from `peer` with `headers`.
///
/// Without a trusted peer the header is ignored (anyone can write it). Behind trusted proxies,
/// the right-most `X-Forwarded-For` hop that is not itself a trusted proxy is the client; if a
/// hop does not parse, the last hop that did (a trusted proxy) is returned, so garbage cannot
/// choose the address.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |addr: IpAddr| trusted.iter().any(|net| net.contains(&addr));
    if !is_trusted(peer) {
        return peer;
    }
    let mut current = peer;
    // Several X-Forwarded-For lines are one list, in order (RFC 9110 §5.3).
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.iter().rev() {
        let Some(addr) = parse_hop(hop) else {
            return current;
        };
        current = addr;
        if !is_trusted(addr) {
            return addr;
        }
    }
    current
}

/// One hop: an address, possibly `[v6]:port` or `v4:port` as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(addr) = hop.parse::<IpAddr>() {
        return Some(canonical(addr));
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(socket.ip()));
    }
    None
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports) as plain IPv4, so
/// IPv4 CIDR blocks match it.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_for() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8"]).unwrap();
        let h = headers(&["1.2.3.4"]);
        assert_eq!(
            client_addr(ip("203.0.113.9"), &h, &trusted),
            ip("203.0.113.9")
        );
        // Positive control: the same header from a trusted peer is believed.
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &trusted), ip("1.2.3.4"));
    }

    #[test]
    fn right_most_untrusted_hop_wins_over_spoofed_left_entries() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8", "192.168.1.1"]).unwrap();
        // The client wrote "6.6.6.6" itself; the edge proxy appended the real 198.51.100.7;
        // an inner proxy (trusted) appended 192.168.1.1.
        let h = headers(&["6.6.6.6, 198.51.100.7", "192.168.1.1"]);
        assert_eq!(
            client_addr(ip("10.1.2.3"), &h, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn garbage_hop_stops_at_the_last_trusted_address() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8"]).unwrap();
        let h = headers(&["1.2.3.4, not-an-ip, 10.0.0.5"]);
        assert_eq!(client_addr(ip("10.0.0.9"), &h, &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn all_hops_trusted_returns_left_most() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8"]).unwrap();
        let h = headers(&["10.0.0.7, 10.0.0.8"]);
        assert_eq!(client_addr(ip("10.0.0.9"), &h, &trusted), ip("10.0.0.7"));
    }

    #[test]
    fn missing_header_from_trusted_peer_is_the_peer() {
        let trusted = parse_trusted_proxies(&["10.0.0.0/8"]).unwrap();
        assert_eq!(
            client_addr(ip("10.0.0.9"), &HeaderMap::new(), &trusted),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn mapped_ipv6_peer_matches_ipv4_block_and_ports_are_stripped() {
        let trusted = parse_trusted_proxies(&["127.0.0.1"]).unwrap();
        let h = headers(&["[2001:db8::1]:4711", "198.51.100.1:80"]);
        assert_eq!(
            client_addr(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("198.51.100.1")
        );
        let h = headers(&["[2001:db8::1]:4711"]);
        assert_eq!(
            client_addr(ip("127.0.0.1"), &h, &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn bad_trusted_proxy_entry_is_named() {
        let error = parse_trusted_proxies(&["10.0.0.0/8", "example.com"]).unwrap_err();
        assert!(error.contains("example.com"), "{error}");
    }
}
