//! The client address a request is counted against. Forwarded headers are believed only from
//! configured proxies: anyone else could write any address there and get a fresh budget.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use poem::http::HeaderMap;

use crate::config::ForwardedHeader;

/// The client's IP address, as `client_ip` finds it; a handler parameter (`client: ClientIp`,
/// extracted in `api::origin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The peer, unless it is a trusted proxy: then the rightmost address of `header` that is not a
/// trusted proxy (the one the outermost trusted proxy saw), or the leftmost when all are.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet], header: ForwardedHeader) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops = match header {
        ForwardedHeader::XForwardedFor => list(headers, "x-forwarded-for").collect::<Vec<_>>(),
        ForwardedHeader::Forwarded => list(headers, "forwarded").filter_map(forwarded_for).collect(),
    };
    for hop in hops.iter().rev() {
        // A hop we cannot read was not written by a proxy we trust: stop at the last one we can.
        let Some(ip) = parse_addr(hop) else { break };
        client = ip;
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// The comma-separated items of every instance of a header.
fn list<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The `for=` parameter of one `Forwarded` element (RFC 7239 4).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`; IPv4-mapped IPv6 as IPv4.
fn parse_addr(s: &str) -> Option<IpAddr> {
    let ip = s
        .parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| s.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")]);
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &nets(&["10.0.0.0/8"]), XFF),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_ip(ip("198.51.100.7"), &h, &[], ForwardedHeader::Forwarded),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_trusted_chain_yields_the_rightmost_untrusted_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client wrote 1.1.1.1 itself; the first proxy appended what it saw.
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted, XFF), ip("203.0.113.9"));
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &all_trusted, &trusted, XFF), ip("10.0.0.3"));
        let none = headers(&[]);
        assert_eq!(client_ip(ip("10.0.0.1"), &none, &trusted, XFF), ip("10.0.0.1"));
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, nonsense")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &garbage, &trusted, XFF), ip("10.0.0.1"));
    }

    #[test]
    fn the_forwarded_header_is_read_only_when_configured() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711""#,
            ),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        let forwarded = client_ip(ip("127.0.0.1"), &h, &trusted, ForwardedHeader::Forwarded);
        assert_eq!(forwarded, ip("2001:db8:cafe::17"));
        assert_eq!(client_ip(ip("127.0.0.1"), &h, &trusted, XFF), ip("203.0.113.9"));
    }

    #[test]
    fn ipv4_mapped_and_ported_addresses_are_plain_ipv4() {
        let trusted = nets(&["127.0.0.1/32"]);
        let h = headers(&[("x-forwarded-for", "203.0.113.9:5555")]);
        assert_eq!(client_ip(ip("::ffff:127.0.0.1"), &h, &trusted, XFF), ip("203.0.113.9"));
    }
}
