//! Login rules without I/O: how failed logins turn into a growing delay, how a credential check
//! spends the same work on every kind of failure, and what a new password must satisfy.

use std::net::IpAddr;

use chrono::{NaiveDateTime, TimeDelta};

pub use crate::config::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};

/// How failures turn into a delay: the first `free` failures cost nothing; from then on each
/// failure makes the caller wait `base`, doubling per further failure, up to `max`. Failures are
/// forgotten after `forget` without one (and, for an account, at its next successful login).
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    pub free: i64,
    pub base_secs: i64,
    pub max_secs: i64,
    pub forget_secs: i64,
}

/// Per account (login name): ten tries, then 30 s, 1 min, 2 min … up to 15 min between tries.
/// Shared by every process through the database.
pub const ACCOUNT: Throttle = Throttle {
    free: 10,
    base_secs: 30,
    max_secs: 15 * 60,
    forget_secs: 24 * 3600,
};

/// Per client address: more room than one account (several users behind one bank's gateway), then
/// the same growing delay. Kept in each process's memory.
pub const ADDRESS: Throttle = Throttle {
    free: 30,
    base_secs: 30,
    max_secs: 15 * 60,
    forget_secs: 15 * 60,
};

impl Throttle {
    /// Until when the caller must wait after its `failures`-th consecutive failure at `at`, or None
    /// while failures are still free.
    pub fn locked_until(&self, failures: i64, at: NaiveDateTime) -> Option<NaiveDateTime> {
        if failures < self.free {
            return None;
        }
        let doublings = (failures - self.free).min(20) as u32;
        let secs = self
            .base_secs
            .saturating_mul(1i64 << doublings)
            .min(self.max_secs);
        Some(at + TimeDelta::seconds(secs))
    }

    /// The failure count that a new failure at `now` continues from: old failures are forgotten.
    pub fn carried(&self, failures: i64, last_failed_at: NaiveDateTime, now: NaiveDateTime) -> i64 {
        if now - last_failed_at > TimeDelta::seconds(self.forget_secs) {
            0
        } else {
            failures
        }
    }
}

/// While a login name is locked by the failures of all addresses together, an address that has
/// failed on it fewer times than this may still try: a stranger's wrong passwords from elsewhere
/// must not lock the real user out, and a distributed guesser gains only this many tries per
/// address (each address's own count is limited by [`ACCOUNT`] in any case).
pub const TRIES_DURING_NAME_LOCK: i64 = 3;

/// Until when a login attempt on a name from one client address must wait, or None when it may
/// go ahead: `name_lock` is the lock of the name's failures from all addresses together,
/// `address` this address's own failures on the name (count, last failure, its lock).
pub fn login_wait(
    name_lock: Option<NaiveDateTime>,
    address: Option<(i64, NaiveDateTime, Option<NaiveDateTime>)>,
    now: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let (failures, own_lock) = match address {
        Some((n, last, lock)) => (ACCOUNT.carried(n, last, now), lock.filter(|u| *u > now)),
        None => (0, None),
    };
    if own_lock.is_some() {
        return own_lock;
    }
    name_lock
        .filter(|u| *u > now)
        .filter(|_| failures >= TRIES_DURING_NAME_LOCK)
}

pub use crate::config::ProxyNet;

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5`, `[::1]:5`).
fn forwarded_addr(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse() {
        return Some(ip);
    }
    if let Some(rest) = e.strip_prefix('[') {
        return rest.split_once(']').and_then(|(a, _)| a.parse().ok());
    }
    e.rsplit_once(':').and_then(|(a, _)| a.parse().ok())
}

/// The client address of a request that came from `peer` with these `X-Forwarded-For` header
/// values (in order). The header is believed only when `peer` is a trusted proxy, and then only
/// as far as trusted proxies appended to it: the rightmost entry that is not a trusted proxy is
/// the client (anything left of it was written by the client and may be forged). An unreadable
/// entry stops the walk at the last hop read.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[ProxyNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let entries = forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for entry in entries.iter().rev() {
        match forwarded_addr(entry) {
            Some(ip) => {
                client = ip;
                if !is_trusted(ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

/// Whole seconds (at least 1) to put in `Retry-After` for a lock lasting until `until`.
pub fn retry_after_secs(until: NaiveDateTime, now: NaiveDateTime) -> u64 {
    let ms = (until - now).num_milliseconds().max(0);
    ((ms + 999) / 1000).max(1) as u64
}

/// Why a credential check failed, as recorded in the audit trail (never shown to the caller, who
/// sees one answer for all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No principal has this name.
    UnknownName,
    /// The password or client secret does not match.
    WrongSecret,
    /// A user's name with client credentials, or a client's id with a password.
    WrongKind,
    /// The principal is disabled.
    Disabled,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::UnknownName => "unknown_name",
            Failure::WrongSecret => "wrong_secret",
            Failure::WrongKind => "wrong_kind",
            Failure::Disabled => "disabled",
        }
    }
}

/// What a credential check needs to know of the principal a login names.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub kind: &'a str,
    pub secret_hash: &'a str,
    pub disabled: bool,
}

/// Checks `secret` for a login as `kind` against the principal the name found (if any). Every
/// path calls `verify` exactly once — against the principal's hash, or against `dummy` when there
/// is none — so an unknown name, the wrong kind, a disabled principal and a wrong secret all take
/// one hash's time and cannot be told apart by it.
pub fn check_secret(
    candidate: Option<Candidate>,
    kind: &str,
    secret: &str,
    dummy: &str,
    mut verify: impl FnMut(&str, &str) -> bool,
) -> Result<(), Failure> {
    match candidate {
        None => {
            let _ = verify(secret, dummy);
            Err(Failure::UnknownName)
        }
        Some(c) => {
            let matches = verify(secret, c.secret_hash);
            if c.kind != kind {
                Err(Failure::WrongKind)
            } else if !matches {
                Err(Failure::WrongSecret)
            } else if c.disabled {
                Err(Failure::Disabled)
            } else {
                Ok(())
            }
        }
    }
}

/// Why a user administrator may not disable an account, as (code, reason), or None. User
/// administration must stay possible: nobody disables their own account (a slip or a stolen
/// session would end their administration), and the last active user administrator is never
/// disabled. `other_active_admins` counts the active user administrators besides the target.
pub fn disable_refusal(
    actor_id: i64,
    target_id: i64,
    target_is_active_user_admin: bool,
    other_active_admins: i64,
) -> Option<(&'static str, &'static str)> {
    if actor_id == target_id {
        return Some((
            "cannot_disable_self",
            "a user administrator cannot disable their own account; another one must",
        ));
    }
    if target_is_active_user_admin && other_active_admins == 0 {
        return Some((
            "last_user_admin",
            "this is the last active user administrator; enable or create another one first",
        ));
    }
    None
}

/// Why `new` may not become `username`'s password (`current` is the one it replaces), or None.
pub fn new_password_problem(new: &str, username: &str, current: &str) -> Option<&'static str> {
    let chars = new.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Some("must be at least 12 characters");
    }
    if chars > MAX_PASSWORD_CHARS {
        return Some("must be at most 256 characters");
    }
    if new == current {
        return Some("must differ from the current password");
    }
    if new.to_lowercase().contains(&username.to_lowercase()) {
        return Some("must not contain the username");
    }
    let mut distinct: Vec<char> = new.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Some("must use at least 4 different characters");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    #[test]
    fn failures_are_free_then_the_delay_doubles_up_to_the_cap() {
        let at = t("2026-12-01 08:00:00");
        for n in 0..ACCOUNT.free {
            assert_eq!(ACCOUNT.locked_until(n, at), None);
        }
        let secs = |n| (ACCOUNT.locked_until(n, at).unwrap() - at).num_seconds();
        assert_eq!(secs(10), 30);
        assert_eq!(secs(11), 60);
        assert_eq!(secs(12), 120);
        assert_eq!(secs(20), 900);
        assert_eq!(secs(i64::MAX), 900);
        assert_eq!(ADDRESS.locked_until(29, at), None);
        assert!(ADDRESS.locked_until(30, at).is_some());
    }

    #[test]
    fn old_failures_are_forgotten() {
        let last = t("2026-12-01 08:00:00");
        assert_eq!(ACCOUNT.carried(12, last, t("2026-12-01 20:00:00")), 12);
        assert_eq!(ACCOUNT.carried(12, last, t("2026-12-02 08:00:01")), 0);
        assert_eq!(ADDRESS.carried(40, last, t("2026-12-01 08:15:01")), 0);
    }

    /// A stranger's failures lock the name only against addresses that keep failing on it; an
    /// address's own count locks it whatever the name's state.
    #[test]
    fn a_name_lock_holds_only_against_failing_addresses() {
        let now = t("2026-12-01 08:00:00");
        let lock = Some(now + TimeDelta::seconds(600));
        assert_eq!(login_wait(lock, None, now), None);
        assert_eq!(login_wait(lock, Some((2, now, None)), now), None);
        assert_eq!(login_wait(lock, Some((3, now, None)), now), lock);
        // Its failures long ago are forgotten.
        let old = now - TimeDelta::days(2);
        assert_eq!(login_wait(lock, Some((9, old, None)), now), None);
        let own = Some(now + TimeDelta::seconds(30));
        assert_eq!(login_wait(None, Some((10, now, own)), now), own);
        assert_eq!(login_wait(lock, Some((10, now, own)), now), own);
        // An expired name lock holds against nobody.
        assert_eq!(login_wait(Some(now), Some((5, now, None)), now), None);
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies_and_only_as_far_as_they_wrote() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxies: Vec<ProxyNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        // No trusted proxy: the header is ignored.
        assert_eq!(
            client_address(ip("10.0.0.1"), &["6.6.6.6"], &[]),
            ip("10.0.0.1")
        );
        // An untrusted peer: ignored.
        assert_eq!(
            client_address(ip("8.8.8.8"), &["6.6.6.6"], &proxies),
            ip("8.8.8.8")
        );
        // The rightmost untrusted entry; a forged entry left of it does not count.
        assert_eq!(
            client_address(ip("10.0.0.1"), &["6.6.6.6, 1.2.3.4", "10.1.1.1"], &proxies),
            ip("1.2.3.4")
        );
        assert_eq!(
            client_address(ip("::1"), &["[2001:db8::7]:443"], &proxies),
            ip("2001:db8::7")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &["1.2.3.4:80"], &proxies),
            ip("1.2.3.4")
        );
        // Only proxies in the header: the leftmost of them; garbage stops the walk.
        assert_eq!(
            client_address(ip("10.0.0.1"), &["10.2.2.2"], &proxies),
            ip("10.2.2.2")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &["1.2.3.4, junk"], &proxies),
            ip("10.0.0.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), &[], &proxies),
            ip("10.0.0.1")
        );
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("proxy".parse::<ProxyNet>().is_err());
        let n: ProxyNet = "0.0.0.0/0".parse().unwrap();
        assert!(n.contains(ip("9.9.9.9")) && !n.contains(ip("2001:db8::1")));
    }

    #[test]
    fn nobody_disables_themselves_or_the_last_user_admin() {
        assert_eq!(
            disable_refusal(1, 1, true, 5).map(|r| r.0),
            Some("cannot_disable_self")
        );
        assert_eq!(
            disable_refusal(1, 1, false, 0).map(|r| r.0),
            Some("cannot_disable_self")
        );
        assert_eq!(
            disable_refusal(1, 2, true, 0).map(|r| r.0),
            Some("last_user_admin")
        );
        assert_eq!(disable_refusal(1, 2, true, 1), None);
        assert_eq!(disable_refusal(1, 2, false, 0), None);
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let now = t("2026-12-01 08:00:00");
        assert_eq!(retry_after_secs(now, now), 1);
        assert_eq!(
            retry_after_secs(now + TimeDelta::milliseconds(30_001), now),
            31
        );
        assert_eq!(retry_after_secs(now - TimeDelta::seconds(5), now), 1);
    }

    /// Every way a login can fail spends exactly one verification, as a success does: timing does
    /// not tell an unknown name, a client's id used as a username, a disabled account or a wrong
    /// password apart.
    #[test]
    fn every_path_verifies_exactly_once() {
        let user = Candidate {
            kind: "user",
            secret_hash: "H",
            disabled: false,
        };
        let disabled = Candidate {
            disabled: true,
            ..user
        };
        type Case<'a> = (Option<Candidate<'a>>, &'a str, &'a str, Result<(), Failure>);
        let cases: [Case; 7] = [
            (None, "user", "good", Err(Failure::UnknownName)),
            (None, "client", "good", Err(Failure::UnknownName)),
            (Some(user), "user", "bad", Err(Failure::WrongSecret)),
            (Some(user), "client", "good", Err(Failure::WrongKind)),
            (Some(user), "client", "bad", Err(Failure::WrongKind)),
            (Some(disabled), "user", "good", Err(Failure::Disabled)),
            (Some(user), "user", "good", Ok(())),
        ];
        for (candidate, kind, secret, expected) in cases {
            let mut calls = Vec::new();
            let got = check_secret(candidate, kind, secret, "DUMMY", |s, h| {
                calls.push(h.to_string());
                s == "good" && h == "H"
            });
            assert_eq!(got, expected, "{candidate:?} {kind} {secret}");
            assert_eq!(calls.len(), 1, "{candidate:?} {kind} {secret}: {calls:?}");
            let against = if candidate.is_some() { "H" } else { "DUMMY" };
            assert_eq!(calls[0], against);
        }
    }

    #[test]
    fn new_passwords_are_long_new_and_not_the_name() {
        let ok = "correct horse battery";
        assert_eq!(new_password_problem(ok, "alice", "old password 1"), None);
        assert!(new_password_problem("short", "alice", "x").is_some());
        assert!(new_password_problem(&"x".repeat(300), "alice", "x").is_some());
        assert!(new_password_problem(ok, "alice", ok).is_some());
        assert!(new_password_problem("my name is ALICE!!", "alice", "x").is_some());
        assert!(new_password_problem("abababababababab", "alice", "x").is_some());
    }
}
