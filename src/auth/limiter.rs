//! Failed logins per client address, in this process's memory, in a table of bounded size.
//!
//! Each process keeps its own table: with several processes behind one address an attacker gets
//! the free tries once per process, never more. The per-account lockout, which is what protects a
//! given password, is in the database and holds across processes. The address is the TCP peer,
//! or behind a reverse proxy configured with `--trusted-proxy` the client that proxy names in
//! `X-Forwarded-For` (see `login::client_address`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use chrono::NaiveDateTime;

use super::rules::{Throttle, ADDRESS};

/// The most addresses remembered; beyond it the longest-quiet one is forgotten first.
pub const MAX_ADDRESSES: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: i64,
    last_failed_at: NaiveDateTime,
    locked_until: Option<NaiveDateTime>,
}

/// The failures of each client address (IPv6 by /64: one host holds a whole /64).
pub struct AddressLimiter {
    rule: Throttle,
    capacity: usize,
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

/// The key an address is counted under.
fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut s = v6.segments();
                s[4..].iter_mut().for_each(|x| *x = 0);
                IpAddr::V6(s.into())
            }
        },
    }
}

impl AddressLimiter {
    pub fn new(rule: Throttle, capacity: usize) -> AddressLimiter {
        AddressLimiter {
            rule,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Until when `addr` must wait, if it must.
    pub fn locked_until(&self, addr: IpAddr, now: NaiveDateTime) -> Option<NaiveDateTime> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&key(addr))
            .and_then(|e| e.locked_until)
            .filter(|until| *until > now)
    }

    /// Counts a failed login from `addr` at `now`.
    pub fn record_failure(&self, addr: IpAddr, now: NaiveDateTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let k = key(addr);
        if !entries.contains_key(&k) && entries.len() >= self.capacity {
            self.make_room(&mut entries, now);
        }
        let rule = self.rule;
        let e = entries.entry(k).or_insert(Entry {
            failures: 0,
            last_failed_at: now,
            locked_until: None,
        });
        let failures = rule.carried(e.failures, e.last_failed_at, now) + 1;
        *e = Entry {
            failures,
            last_failed_at: now,
            locked_until: rule.locked_until(failures, now),
        };
    }

    /// Forgets what has expired; if nothing has, the address quiet for longest.
    fn make_room(&self, entries: &mut HashMap<IpAddr, Entry>, now: NaiveDateTime) {
        let rule = self.rule;
        entries.retain(|_, e| {
            rule.carried(e.failures, e.last_failed_at, now) > 0
                || e.locked_until.is_some_and(|u| u > now)
        });
        if entries.len() >= self.capacity {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_failed_at)
                .map(|(k, _)| *k)
            {
                entries.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// This process's table.
pub fn addresses() -> &'static AddressLimiter {
    static TABLE: OnceLock<AddressLimiter> = OnceLock::new();
    TABLE.get_or_init(|| AddressLimiter::new(ADDRESS, MAX_ADDRESSES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn now() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("2026-12-01 08:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn an_address_is_locked_after_its_free_failures() {
        let l = AddressLimiter::new(ADDRESS, 10);
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        for _ in 0..ADDRESS.free - 1 {
            l.record_failure(a, now());
        }
        assert_eq!(l.locked_until(a, now()), None);
        l.record_failure(a, now());
        assert!(l.locked_until(a, now()).is_some());
        assert_eq!(l.locked_until("10.1.2.4".parse().unwrap(), now()), None);
        // The lock ends.
        assert_eq!(l.locked_until(a, now() + TimeDelta::hours(1)), None);
    }

    #[test]
    fn an_ipv6_host_counts_as_its_slash_64() {
        let l = AddressLimiter::new(ADDRESS, 10);
        for i in 0..ADDRESS.free {
            l.record_failure(format!("2001:db8::{i:x}").parse().unwrap(), now());
        }
        assert!(l
            .locked_until("2001:db8::ffff".parse().unwrap(), now())
            .is_some());
        assert!(l
            .locked_until("2001:db8:0:1::1".parse().unwrap(), now())
            .is_none());
    }

    #[test]
    fn the_table_never_outgrows_its_capacity() {
        let l = AddressLimiter::new(ADDRESS, 100);
        for i in 0..10_000u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            l.record_failure(a, now() + TimeDelta::milliseconds(i as i64));
        }
        assert!(l.len() <= 100);
    }
}
