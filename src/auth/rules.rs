//! Login rules without I/O: how failed logins turn into a growing delay, how a credential check
//! spends the same work on every kind of failure, and what a new password must satisfy.

use chrono::{NaiveDateTime, TimeDelta};

/// The fewest characters a password may have (users, the first-start admin, resets excepted:
/// those are generated).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The most: a longer one is no stronger and only costs hashing time.
pub const MAX_PASSWORD_CHARS: usize = 256;

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
