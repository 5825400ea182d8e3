//! The allow-list of `builtin://http-client` and the addresses no request reaches
//! unless the list names them.
//!
//! A request is checked twice: its host name against the entries
//! ([`AllowList::allows_name`]), then every address that name resolves to
//! ([`AllowList::check_addr`]). Loopback, link-local (cloud metadata services),
//! private, unspecified, broadcast and multicast addresses are refused unless an
//! entry names that address as an IP literal (`127.0.0.1`, `127.0.0.1:8080`,
//! `[::1]:8080`) or an IP range in CIDR (`10.0.0.0/8`, `fd00::/8`). A host name,
//! or `*`, never opens them: `allowed_hosts: *` reaches the internet, not the
//! host's own NATS or `169.254.169.254`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// One entry of `allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `*`: any host name, any public address.
    Any,
    /// `example.com` or `example.com:8443`: that name (public addresses only).
    Name { host: String, port: Option<u16> },
    /// `10.1.2.3`, `10.1.2.3:8080`, `[::1]:80`: that address, even a private one.
    Ip { ip: IpAddr, port: Option<u16> },
    /// `10.0.0.0/8`: every address in the range, any port.
    Range(IpRange),
}

/// An IP range in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    net: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parse `a.b.c.d/n` or `v6::/n`.
    pub fn parse(s: &str) -> Option<Self> {
        let (net, prefix) = s.split_once('/')?;
        let net: IpAddr = net.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Self { net, prefix })
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (bytes, bits) = ((prefix / 8) as usize, prefix % 8);
    if a[..bytes] != b[..bytes] {
        return false;
    }
    bits == 0 || (a[bytes] ^ b[bytes]) >> (8 - bits) == 0
}

/// The addresses refused unless listed, with the name of each rule.
const SPECIAL: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("10.0.0.0/8", "private"),
    ("172.16.0.0/12", "private"),
    ("192.168.0.0/16", "private"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fe80::/10", "link-local"),
    ("fc00::/7", "private (unique local)"),
    ("ff00::/8", "multicast"),
];

/// Why `ip` is not a public address (the rule and its range), or `None` when it is.
pub fn special(ip: IpAddr) -> Option<String> {
    let ip = ip.to_canonical();
    SPECIAL.iter().find_map(|(range, rule)| {
        let range = IpRange::parse(range).expect("the table's ranges parse");
        range.contains(ip).then(|| format!("{rule} {range}"))
    })
}

/// A component's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(pub Vec<Entry>);

/// Why a resolved address is refused: the rule it falls under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub addr: SocketAddr,
    pub rule: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "address {} is {} and not listed in allowed_hosts (list it as an IP or a CIDR range to allow it)",
            self.addr, self.rule
        )
    }
}

impl AllowList {
    /// Parse the `allowed_hosts` config value: comma-separated entries. An entry
    /// that is none of the forms above is an error naming it.
    pub fn parse(value: &str) -> Result<Self, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_entry)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether a request to `host` on `port` may go out, by name. `host` may be an
    /// IP literal (IPv6 with or without brackets).
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        let literal = parse_ip(host);
        self.0.iter().any(|entry| match entry {
            Entry::Any => true,
            Entry::Name { host: h, port: p } => {
                h.eq_ignore_ascii_case(host) && p.is_none_or(|p| p == port)
            }
            Entry::Ip { ip, port: p } => {
                literal.is_some_and(|l| l.to_canonical() == ip.to_canonical())
                    && p.is_none_or(|p| p == port)
            }
            Entry::Range(range) => literal.is_some_and(|l| range.contains(l)),
        })
    }

    /// Whether a connection to `addr` (an address the name resolved to) may be
    /// opened: public addresses always, the others only when an entry names them.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), Refused> {
        let Some(rule) = special(addr.ip()) else {
            return Ok(());
        };
        let ip = addr.ip().to_canonical();
        let listed = self.0.iter().any(|entry| match entry {
            Entry::Ip { ip: i, port } => {
                i.to_canonical() == ip && port.is_none_or(|p| p == addr.port())
            }
            Entry::Range(range) => range.contains(ip),
            Entry::Any | Entry::Name { .. } => false,
        });
        if listed {
            Ok(())
        } else {
            Err(Refused { addr, rule })
        }
    }
}

/// An IP literal, IPv6 with or without brackets.
fn parse_ip(host: &str) -> Option<IpAddr> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse().ok()
}

fn parse_entry(s: &str) -> Result<Entry, String> {
    let bad = |why: &str| {
        format!(
            "allowed_hosts entry '{s}' {why} (expected `*`, a host name, host:port, an IP, IP:port or a CIDR range like 10.0.0.0/8)"
        )
    };
    if s == "*" {
        return Ok(Entry::Any);
    }
    if s.contains('/') {
        return IpRange::parse(s)
            .map(Entry::Range)
            .ok_or_else(|| bad("is not a CIDR range"));
    }
    if let Some(ip) = parse_ip(s) {
        return Ok(Entry::Ip { ip, port: None });
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(Entry::Ip {
            ip: addr.ip(),
            port: Some(addr.port()),
        });
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((host, port)) => (
            host,
            Some(
                port.parse::<u16>()
                    .map_err(|_| bad("has a port that is not a number"))?,
            ),
        ),
        None => (s, None),
    };
    if host.is_empty() || host.contains([':', '[', ']', ' ', '*']) {
        return Err(bad("is not a host name"));
    }
    Ok(Entry::Name {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(s: &str) -> AllowList {
        AllowList::parse(s).unwrap()
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_and_ports() {
        let l = list("example.com, 127.0.0.1:8080, api.test:8443");
        assert!(l.allows_name("example.com", 443));
        assert!(l.allows_name("EXAMPLE.com", 80));
        assert!(l.allows_name("127.0.0.1", 8080));
        assert!(!l.allows_name("127.0.0.1", 9090));
        assert!(l.allows_name("api.test", 8443));
        assert!(!l.allows_name("api.test", 443));
        assert!(!l.allows_name("evil.com", 80));
        assert!(!AllowList::default().allows_name("example.com", 80));
        assert!(list("*").allows_name("anything", 80));
        assert!(list("10.0.0.0/8").allows_name("10.1.2.3", 80));
        assert!(list("[::1]:80").allows_name("[::1]", 80));
    }

    #[test]
    fn special_addresses_need_an_ip_entry() {
        let any = list("*");
        for refused in [
            "127.0.0.1:80",
            "127.9.9.9:4222",
            "169.254.169.254:80",
            "10.0.0.1:80",
            "172.16.5.5:80",
            "172.31.255.255:80",
            "192.168.1.1:80",
            "0.0.0.0:80",
            "224.0.0.1:80",
            "[::1]:80",
            "[::]:80",
            "[fe80::1]:80",
            "[fd00::1]:80",
            "[ff02::1]:80",
            "[::ffff:127.0.0.1]:80",
            "[::ffff:169.254.169.254]:80",
        ] {
            let err = any.check_addr(addr(refused)).unwrap_err();
            assert_eq!(err.addr, addr(refused));
        }
        for public in ["93.184.216.34:80", "172.32.0.1:80", "[2606:4700::1]:443"] {
            assert!(any.check_addr(addr(public)).is_ok(), "{public}");
        }
        let rule = any.check_addr(addr("169.254.169.254:80")).unwrap_err();
        assert!(rule.to_string().contains("link-local"), "{rule}");

        let explicit = list("127.0.0.1:8080, 10.0.0.0/8, localhost");
        assert!(explicit.check_addr(addr("127.0.0.1:8080")).is_ok());
        assert!(explicit.check_addr(addr("127.0.0.1:8081")).is_err());
        assert!(explicit.check_addr(addr("10.200.0.1:5432")).is_ok());
        // A name never opens a special address, even the name that resolved to it.
        assert!(explicit.check_addr(addr("[::1]:80")).is_err());
        assert!(list("127.0.0.1").check_addr(addr("127.0.0.1:4222")).is_ok());
    }

    #[test]
    fn ranges() {
        let r = IpRange::parse("172.16.0.0/12").unwrap();
        assert!(r.contains("172.16.0.0".parse().unwrap()));
        assert!(r.contains("172.31.1.1".parse().unwrap()));
        assert!(!r.contains("172.32.0.0".parse().unwrap()));
        assert!(IpRange::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(IpRange::parse("10.0.0.0/33").is_none());
        assert!(IpRange::parse("fd00::/8")
            .unwrap()
            .contains("fdaa::1".parse().unwrap()));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = AllowList::parse("ok.com, 10.0.0.0/99").unwrap_err();
        assert!(err.contains("'10.0.0.0/99'"), "{err}");
        assert!(AllowList::parse("host:port").is_err());
        assert!(AllowList::parse("*.example.com").is_err());
    }
}
