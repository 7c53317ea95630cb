//! Pure rules of encumbrances (R7–R9, R11, R13): registration periods, the renewal window, the
//! loan-to-value cap, and how disposal proceeds are split.

use chrono::{Months, NaiveDate};

/// R11: by default a loan may be at most 80 % of the appraised value of pledged rights.
pub const LTV_CAP_BP: i64 = 8_000;
/// Lenders are told (webhook `pledge.ltv_above_threshold`) when a pledge's loan-to-value rises
/// above this, so they can act before it reaches the cap.
pub const LTV_ALERT_BP: i64 = 7_000;
/// R8: renewal is accepted only in the 90 days before the registration period ends; the lender
/// is warned of a coming lapse as many days ahead.
pub const RENEWAL_WINDOW_DAYS: i64 = 90;

/// R8: a registration runs for one month to thirty years.
pub fn period_ok(start: NaiveDate, end: NaiveDate) -> bool {
    let min = start.checked_add_months(Months::new(1));
    let max = start.checked_add_months(Months::new(30 * 12));
    matches!((min, max), (Some(min), Some(max)) if end >= min && end <= max)
}

/// R8: renewal only in the window before the period ends (and not after it).
pub fn in_renewal_window(today: NaiveDate, period_end: NaiveDate) -> bool {
    let days_left = (period_end - today).num_days();
    (0..=RENEWAL_WINDOW_DAYS).contains(&days_left)
}

/// R11: whether a secured amount is within the cap of the appraised value (both in fen).
pub fn ltv_ok(secured_fen: i64, appraisal_fen: i64, cap_bp: i64) -> bool {
    (secured_fen as i128) * 10_000 <= (appraisal_fen as i128) * (cap_bp as i128)
}

/// Loan-to-value in basis points, rounded half-up; None without a value.
pub fn ltv_bp(secured_fen: i64, value_fen: i64) -> Option<i64> {
    if value_fen <= 0 {
        return None;
    }
    let num = secured_fen as i128 * 10_000;
    let den = value_fen as i128;
    Some(((num * 2 + den) / (den * 2)) as i64)
}

/// The part of a claim not yet paid: `claim` less what parts of the same pledge already paid
/// the lender, never below zero.
pub fn claim_left(claim: i64, already_paid: impl IntoIterator<Item = i64>) -> i64 {
    already_paid
        .into_iter()
        .fold(claim, |left, paid| left.saturating_sub(paid))
        .max(0)
}

/// A creditor's claim on disposal proceeds under one registration: what it declared on
/// enforcement (principal, interest and costs together) and the secured amount its registration
/// records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecuredClaim {
    pub claim: i64,
    pub secured: i64,
}

impl SecuredClaim {
    /// What the registration entitles its creditor to take from the proceeds, in its rank: the
    /// claim, but never more than the registered secured amount, because the secured amount on the
    /// registration is what those ranking after it (and the holder) could rely on. The claim is
    /// capped here rather than refused at enforcement: interest and costs keep accruing after
    /// registration, so a declared claim above the secured amount is a true debt. The part above
    /// the cap is unsecured: it ranks after every registered creditor, and the registry pays no
    /// unsecured creditor, so the proceeds left after the registered claims go to the holder and
    /// the lender pursues the rest against its debtor.
    pub fn payable(self) -> i64 {
        self.claim.max(0).min(self.secured.max(0))
    }
}

/// R13: proceeds pay the claims in rank order, each up to what its registration secures
/// ([`SecuredClaim::payable`]); the rest is the pledgor's. `claims` are in rank order; returns
/// what each claimant gets and the remainder.
pub fn split_proceeds(proceeds: i64, claims: &[SecuredClaim]) -> (Vec<i64>, i64) {
    let mut left = proceeds.max(0);
    let paid = claims
        .iter()
        .map(|c| {
            let p = c.payable().min(left);
            left -= p;
            p
        })
        .collect();
    (paid, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn registration_period_is_one_month_to_thirty_years() {
        let start = date("2026-01-31");
        assert!(!period_ok(start, date("2026-02-27")));
        assert!(period_ok(start, date("2026-02-28")));
        assert!(period_ok(start, date("2056-01-31")));
        assert!(!period_ok(start, date("2056-02-01")));
    }

    #[test]
    fn renewal_window() {
        let end = date("2027-06-30");
        assert!(!in_renewal_window(date("2027-03-31"), end)); // 91 days before
        assert!(in_renewal_window(date("2027-04-01"), end)); // 90 days before
        assert!(in_renewal_window(end, end));
        assert!(!in_renewal_window(date("2027-07-01"), end));
    }

    #[test]
    fn ltv() {
        assert!(ltv_ok(80_000, 100_000, LTV_CAP_BP));
        assert!(!ltv_ok(80_001, 100_000, LTV_CAP_BP));
        assert_eq!(ltv_bp(2, 3), Some(6667));
        assert_eq!(ltv_bp(1, 0), None);
    }

    fn fully_secured(claims: &[i64]) -> Vec<SecuredClaim> {
        claims
            .iter()
            .map(|c| SecuredClaim {
                claim: *c,
                secured: *c,
            })
            .collect()
    }

    #[test]
    fn proceeds_pay_claims_in_rank_order() {
        assert_eq!(
            split_proceeds(1_000, &fully_secured(&[600, 300])),
            (vec![600, 300], 100)
        );
        assert_eq!(
            split_proceeds(700, &fully_secured(&[600, 300])),
            (vec![600, 100], 0)
        );
        assert_eq!(split_proceeds(500, &fully_secured(&[600])), (vec![500], 0));
        assert_eq!(split_proceeds(500, &[]), (vec![], 500));
        assert_eq!(claim_left(600, []), 600);
        assert_eq!(claim_left(600, [450]), 150);
        assert_eq!(claim_left(600, [450, 300]), 0);
    }

    #[test]
    fn a_claim_above_its_registered_secured_amount_takes_no_more_than_that_amount() {
        // A senior secured for 80,000 declaring 900,000,000 takes 80,000; the junior comes next
        // and the rest is the holder's: the excess is unsecured and paid nothing here.
        let senior = SecuredClaim {
            claim: 900_000_000,
            secured: 80_000,
        };
        let junior = SecuredClaim {
            claim: 50_000,
            secured: 60_000,
        };
        assert_eq!(senior.payable(), 80_000);
        assert_eq!(junior.payable(), 50_000);
        assert_eq!(
            split_proceeds(200_000, &[senior, junior]),
            (vec![80_000, 50_000], 70_000)
        );
        assert_eq!(
            split_proceeds(100_000, &[senior, junior]),
            (vec![80_000, 20_000], 0)
        );
        assert_eq!(
            SecuredClaim {
                claim: -5,
                secured: 10
            }
            .payable(),
            0
        );
    }
}
