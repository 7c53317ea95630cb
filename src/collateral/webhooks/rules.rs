//! Pure rules of webhook deliveries: which destinations a delivery may reach, what a bank is
//! told about an attempt, retry timing and the endpoint secret. No I/O here.
//!
//! A delivery is a POST made by the registry from inside its own network. Left open it would be
//! a way for anyone with a bank login to make the registry call its database, a cloud metadata
//! service or an internal admin page (SSRF), and the error text would map internal ports. So a
//! destination is HTTPS to a public address, unless the operator named its HOST:PORT.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::TimeDelta;
use hmac::{Hmac, Mac};
use reqwest::Url;
use sha2::Sha256;

/// Active endpoints a bank may have: each one gets every event, so more would multiply the
/// registry's outbound work for a single bank.
pub const MAX_ENDPOINTS_PER_BANK: i64 = 5;
pub const MAX_URL_LEN: usize = 500;

/// HOST:PORT pairs an operator lets deliveries reach over plain HTTP and on internal addresses
/// (a bank's receiver on a closed network). Kept normalised as `host:port`, IPv6 in brackets.
#[derive(Debug, Clone, Default)]
pub struct Allowlist(HashSet<String>);

impl Allowlist {
    pub fn parse(entries: &[String]) -> Result<Allowlist, String> {
        let mut set = HashSet::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let url = Url::parse(&format!("http://{entry}/"))
                .map_err(|_| format!("--webhook-allow-http {entry}: not HOST:PORT"))?;
            // The port must be written out (the parser drops a default :80).
            let port_written = entry
                .rsplit_once(':')
                .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            let (Some(host), Some(port), true) =
                (url.host_str(), url.port_or_known_default(), port_written)
            else {
                return Err(format!(
                    "--webhook-allow-http {entry}: not HOST:PORT (the port is required)"
                ));
            };
            if url.path() != "/" || !url.username().is_empty() {
                return Err(format!("--webhook-allow-http {entry}: not HOST:PORT"));
            }
            set.insert(format!("{host}:{port}"));
        }
        Ok(Allowlist(set))
    }

    fn contains(&self, host: &str, port: u16) -> bool {
        self.0.contains(&format!("{host}:{port}"))
    }
}

/// Where a delivery goes, as far as the URL alone tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The host as the URL names it (IPv6 in brackets).
    pub host: String,
    pub port: u16,
    /// The operator allowlisted this HOST:PORT: plain HTTP and any address are allowed.
    pub allowlisted: bool,
}

/// Why a URL is no webhook destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    NotAUrl,
    TooLong,
    /// Only https, or http to an allowlisted HOST:PORT.
    Scheme,
    Credentials,
    /// The host is an address (or `localhost`) that deliveries never reach.
    Address(AddressClass),
}

impl UrlRefusal {
    pub fn message(&self) -> String {
        match self {
            UrlRefusal::NotAUrl => "not an absolute URL".into(),
            UrlRefusal::TooLong => format!("longer than {MAX_URL_LEN} characters"),
            UrlRefusal::Scheme => {
                "must be https:// (plain http only to a receiver the registry operator allowlists)"
                    .into()
            }
            UrlRefusal::Credentials => "must not carry a user name or password".into(),
            UrlRefusal::Address(c) => format!(
                "a {} address is never a webhook destination",
                c.as_str().replace('_', " ")
            ),
        }
    }
}

/// Checks a URL as a webhook destination: at registration, and again before each attempt (the
/// allowlist may have changed since). Names are checked again once resolved, at delivery time.
pub fn destination(url: &str, allow: &Allowlist) -> Result<Destination, UrlRefusal> {
    if url.len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong);
    }
    let parsed = Url::parse(url).map_err(|_| UrlRefusal::NotAUrl)?;
    let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
        return Err(UrlRefusal::NotAUrl);
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlRefusal::Credentials);
    }
    let allowlisted = allow.contains(host, port);
    match parsed.scheme() {
        "https" => {}
        "http" if allowlisted => {}
        _ => return Err(UrlRefusal::Scheme),
    }
    if !allowlisted {
        // The URL parser has already normalised address forms (`0x7f.1` is 127.0.0.1).
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        if let Some(class) = literal.and_then(refused_address) {
            return Err(UrlRefusal::Address(class));
        }
        let name = host.trim_end_matches('.');
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(UrlRefusal::Address(AddressClass::Loopback));
        }
    }
    Ok(Destination {
        host: host.to_string(),
        port,
        allowlisted,
    })
}

/// Kinds of addresses a delivery never reaches (unless allowlisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    /// RFC 1918 and IPv6 unique local (fc00::/7).
    Private,
    /// Cloud instance metadata: 169.254.169.254, fd00:ec2::254.
    Metadata,
    LinkLocal,
    /// Carrier-grade NAT, 100.64.0.0/10.
    SharedAddressSpace,
    Multicast,
    /// Broadcast, documentation, benchmarking, protocol assignments and other special ranges.
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::Metadata => "metadata",
            AddressClass::LinkLocal => "link_local",
            AddressClass::SharedAddressSpace => "shared_address_space",
            AddressClass::Multicast => "multicast",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// The class of an address a delivery must not reach, or `None` for a public address.
pub fn refused_address(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(a) => refused_v4(a),
        IpAddr::V6(a) => refused_v6(a),
    }
}

fn refused_v4(a: Ipv4Addr) -> Option<AddressClass> {
    let o = a.octets();
    let class = match o {
        [169, 254, 169, 254] => AddressClass::Metadata,
        [0, ..] => AddressClass::Unspecified,
        [127, ..] => AddressClass::Loopback,
        [10, ..] | [192, 168, ..] => AddressClass::Private,
        [172, b, ..] if (16..=31).contains(&b) => AddressClass::Private,
        [169, 254, ..] => AddressClass::LinkLocal,
        [100, b, ..] if (64..=127).contains(&b) => AddressClass::SharedAddressSpace,
        [a0, ..] if (224..=239).contains(&a0) => AddressClass::Multicast,
        [a0, ..] if a0 >= 240 => AddressClass::Reserved, // 240/4 and broadcast
        [192, 0, 0, _] | [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => {
            AddressClass::Reserved
        }
        [198, b, ..] if b == 18 || b == 19 => AddressClass::Reserved,
        _ => return None,
    };
    Some(class)
}

fn refused_v6(a: Ipv6Addr) -> Option<AddressClass> {
    let s = a.segments();
    // Forms that carry an IPv4 address reach that address: judge it.
    if let Some(v4) = a.to_ipv4_mapped() {
        return refused_v4(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        // IPv4-translated (::ffff:0:0:0/96, SIIT) also carries it in the last 32 bits.
        return refused_v4(Ipv4Addr::from(embedded_v4(s[6], s[7])));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // NAT64 (64:ff9b::/96)
        return refused_v4(Ipv4Addr::from(embedded_v4(s[6], s[7])));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        // Local-use NAT64 (64:ff9b:1::/48): a translator inside some network, with the IPv4
        // address at a position its operator chose; a lender's endpoint is never behind one.
        return Some(AddressClass::Reserved);
    }
    if s[0] == 0x2002 {
        // 6to4 (2002::/16) carries the IPv4 address in the next 32 bits.
        return refused_v4(Ipv4Addr::from(embedded_v4(s[1], s[2])));
    }
    let class = if a.is_unspecified() {
        AddressClass::Unspecified
    } else if a.is_loopback() {
        AddressClass::Loopback
    } else if a == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        AddressClass::Metadata
    } else if s[0] & 0xfe00 == 0xfc00 {
        AddressClass::Private
    } else if s[0] & 0xffc0 == 0xfe80 || s[0] & 0xffc0 == 0xfec0 {
        AddressClass::LinkLocal
    } else if s[0] & 0xff00 == 0xff00 {
        AddressClass::Multicast
    } else if s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
    // discard-only
    {
        AddressClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

fn embedded_v4(hi: u16, lo: u16) -> [u8; 4] {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    [a, b, c, d]
}

/// What happened to one attempt, as far as the registry knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered with this HTTP status.
    Answered(u16),
    /// No answer: no connection, a TLS failure, a timeout. The cause is logged, never shown: the
    /// difference between "refused" and "timed out" would map the receiver's network.
    Unreachable,
    /// The destination (or what its name resolved to) is an address deliveries never reach.
    AddressNotAllowed,
}

impl Attempt {
    pub fn delivered(self) -> bool {
        matches!(self, Attempt::Answered(s) if (200..300).contains(&s))
    }

    /// The coarse result a bank and operators see: `delivered`, `http_3xx`, `http_4xx`,
    /// `http_5xx`, `unreachable` or `address_not_allowed`. A redirect is a failure: deliveries
    /// go to the registered URL and nowhere else.
    pub fn shown(self) -> &'static str {
        match self {
            Attempt::Answered(s) if (200..300).contains(&s) => "delivered",
            Attempt::Answered(s) if (300..400).contains(&s) => "http_3xx",
            Attempt::Answered(s) if (400..500).contains(&s) => "http_4xx",
            Attempt::Answered(s) if (500..600).contains(&s) => "http_5xx",
            Attempt::Answered(_) => "http_other",
            Attempt::Unreachable => "unreachable",
            Attempt::AddressNotAllowed => "address_not_allowed",
        }
    }
}

/// The status of a delivery after a failed attempt: retried until `max_attempts` attempts have
/// failed, then dead (left for an operator), so one bank's broken endpoint does not take the
/// worker's time for ever.
pub fn status_after_failure(attempts_made: i32, max_attempts: i32) -> &'static str {
    if attempts_made >= max_attempts.max(1) {
        "dead"
    } else {
        "pending"
    }
}

/// The status of the deliveries still pending when their endpoint is disabled: settled, so that
/// nothing waits for ever on an endpoint that will never be tried again, and the bank sees what
/// was not sent.
pub const CANCELLED: &str = "cancelled";

/// Why a delivery may not be queued again, as (code, reason), or None. Only a dead delivery is
/// requeued (a pending one is still being tried, a delivered one arrived, a cancelled one
/// belongs to an endpoint its bank gave up), and only to an active endpoint.
pub fn requeue_refusal(
    status: &str,
    endpoint_active: bool,
) -> Option<(&'static str, &'static str)> {
    if status != "dead" {
        return Some((
            "delivery_not_dead",
            "only a dead delivery (one that ran out of attempts) is queued again",
        ));
    }
    if !endpoint_active {
        return Some((
            "webhook_disabled",
            "the delivery's endpoint is disabled; nothing is sent to it",
        ));
    }
    None
}

/// Retry delays: `base_ms` doubling per attempt, at most five minutes.
pub fn backoff(base_ms: i64, attempts: i32) -> TimeDelta {
    let ms = base_ms.saturating_mul(1i64 << attempts.clamp(0, 20));
    TimeDelta::milliseconds(ms.min(300_000))
}

/// An endpoint's signing secret. It is derived, not stored: HMAC-SHA256 of the endpoint's
/// random salt under a server key, so a copy of the database alone cannot sign deliveries.
pub fn endpoint_secret(server_key: &[u8], salt: &str) -> String {
    mac_hex(
        server_key,
        format!("registry webhook endpoint secret v1:{salt}").as_bytes(),
    )
}

/// The signature header value for a body sent at `timestamp` (seconds since the epoch).
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!(
        "sha256={}",
        mac_hex(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes())
    )
}

fn mac_hex(key: &[u8], data: &[u8]) -> String {
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            hex::encode(mac.finalize().into_bytes())
        }
        // HMAC takes keys of any length; this branch cannot happen.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_dead_deliveries_to_active_endpoints_are_requeued() {
        use super::requeue_refusal;
        assert_eq!(requeue_refusal("dead", true), None);
        for s in ["pending", "delivered", "cancelled"] {
            assert_eq!(
                requeue_refusal(s, true).map(|r| r.0),
                Some("delivery_not_dead")
            );
        }
        assert_eq!(
            requeue_refusal("dead", false).map(|r| r.0),
            Some("webhook_disabled")
        );
    }

    use super::*;

    fn allow(entries: &[&str]) -> Allowlist {
        Allowlist::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn internal_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.8.9.1",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::127.0.0.1",
            // Every form that embeds 127.0.0.1.
            "::ffff:0:7f00:1",
            "::7f00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::7f00:1",
            "64:ff9b:1:7f00:1::",
            "2002:7f00:1::1",
            "2001:0:7f00:1::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            // Other refused IPv4 addresses inside them.
            "::ffff:0:a00:5",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert!(refused_address(ip).is_some(), "{a} must be refused");
        }
        assert_eq!(
            refused_address("169.254.169.254".parse().unwrap()),
            Some(AddressClass::Metadata)
        );
        assert_eq!(
            refused_address("fd00:ec2::254".parse().unwrap()),
            Some(AddressClass::Metadata)
        );
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "8.8.8.8",
            "2400:3200::1",
            // A public IPv4 address inside a form that is judged by what it embeds.
            "::ffff:0:808:808",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(refused_address(a.parse().unwrap()), None, "{a}");
        }
    }

    #[test]
    fn only_https_unless_allowlisted() {
        let none = Allowlist::default();
        assert_eq!(
            destination("http://bank.example/hook", &none),
            Err(UrlRefusal::Scheme)
        );
        assert_eq!(
            destination("ftp://bank.example/hook", &none),
            Err(UrlRefusal::Scheme)
        );
        assert!(destination("https://bank.example/hook", &none).is_ok());
        let list = allow(&["127.0.0.1:8080", "Bank-GW.internal:80"]);
        let d = destination("http://127.0.0.1:8080/x", &list).unwrap();
        assert!(d.allowlisted);
        // The port is part of the allowlist entry.
        assert_eq!(
            destination("http://127.0.0.1:8081/x", &list),
            Err(UrlRefusal::Scheme)
        );
        assert!(
            destination("http://bank-gw.internal/x", &list)
                .unwrap()
                .allowlisted
        );
        assert!(Allowlist::parse(&["10.0.0.1".into()]).is_err());
    }

    #[test]
    fn literal_internal_hosts_are_refused_at_registration() {
        let none = Allowlist::default();
        for url in [
            "https://169.254.169.254/latest/meta-data",
            "https://[fd00:ec2::254]/",
            "https://10.0.0.5/",
            "https://0x7f.1/",
            "https://[::ffff:127.0.0.1]:8443/",
            "https://[::ffff:0:7f00:1]/",
            "https://[64:ff9b:1::7f00:1]/",
            "https://localhost/",
            "https://a.localhost./",
        ] {
            assert!(
                matches!(destination(url, &none), Err(UrlRefusal::Address(_))),
                "{url}"
            );
        }
        assert_eq!(
            destination("https://u:p@bank.example/", &none),
            Err(UrlRefusal::Credentials)
        );
        let long = format!("https://bank.example/{}", "a".repeat(500));
        assert_eq!(destination(&long, &none), Err(UrlRefusal::TooLong));
    }

    #[test]
    fn the_bank_sees_classes_only() {
        assert_eq!(Attempt::Answered(204).shown(), "delivered");
        assert_eq!(Attempt::Answered(307).shown(), "http_3xx");
        assert_eq!(Attempt::Answered(418).shown(), "http_4xx");
        assert_eq!(Attempt::Answered(503).shown(), "http_5xx");
        assert!(!Attempt::Answered(307).delivered());
        assert!(Attempt::Answered(200).delivered());
    }

    #[test]
    fn dead_after_the_last_attempt() {
        assert_eq!(status_after_failure(1, 3), "pending");
        assert_eq!(status_after_failure(3, 3), "dead");
        assert_eq!(status_after_failure(1, 0), "dead");
        assert_eq!(backoff(1000, 0), TimeDelta::seconds(1));
        assert_eq!(backoff(1000, 30), TimeDelta::minutes(5));
    }

    #[test]
    fn secrets_differ_per_salt_and_key() {
        let a = endpoint_secret(b"k1", "s1");
        assert_eq!(a.len(), 64);
        assert_eq!(a, endpoint_secret(b"k1", "s1"));
        assert_ne!(a, endpoint_secret(b"k1", "s2"));
        assert_ne!(a, endpoint_secret(b"k2", "s1"));
    }
}
