//! Credit enhancement (增信) of a pledge or forest mortgage, and who owes what of a shortfall.
//!
//! When the sale of the collateral leaves the lender short of its declared claim, the shortfall
//! is met in this order:
//! 1. insurance in force on the day of default whose beneficiary is the lender (loan-guarantee
//!    insurance 贷款保证保险, forest insurance 森林保险) pays first, each policy in the order it was
//!    recorded, up to its insured amount: the policy insures the loan loss itself, so it comes
//!    before anyone shares the loss;
//! 2. what is left is shared between the guarantors and the bank (银担分险): each guarantee in
//!    force bears its share of that rest, up to its guaranteed amount, rounded down to the fen (a
//!    guarantor never owes more than its share);
//! 3. the bank bears the remainder.
//!
//! Amounts are in fen; shares in basis points (8000 = 80 %).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The forms of credit enhancement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A guarantee (担保), typically by a government financing-guarantee institution, bearing an
    /// agreed share of the loss.
    Guarantee,
    /// Loan-guarantee insurance (贷款保证保险).
    LoanGuaranteeInsurance,
    /// Forest insurance (森林保险) on mortgaged forest, naming the lender as beneficiary.
    ForestInsurance,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Guarantee => "guarantee",
            Kind::LoanGuaranteeInsurance => "loan_guarantee_insurance",
            Kind::ForestInsurance => "forest_insurance",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "guarantee" => Some(Kind::Guarantee),
            "loan_guarantee_insurance" => Some(Kind::LoanGuaranteeInsurance),
            "forest_insurance" => Some(Kind::ForestInsurance),
            _ => None,
        }
    }

    pub fn is_insurance(self) -> bool {
        !matches!(self, Kind::Guarantee)
    }
}

/// The whole, in basis points.
pub const WHOLE_BP: i32 = 10_000;

/// One enhancement as the shortfall split needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cover {
    pub id: i64,
    pub kind: Kind,
    /// Guarantees: the guarantor's share of the loss.
    pub share_bp: i32,
    /// The guaranteed or insured amount: the most this cover pays.
    pub amount: i64,
    pub term_from: NaiveDate,
    pub term_to: NaiveDate,
    /// Insurance: whether the lender is the beneficiary (only then does it pay the lender).
    pub pays_lender: bool,
}

impl Cover {
    fn in_force(&self, day: NaiveDate) -> bool {
        self.term_from <= day && day <= self.term_to
    }
}

/// What one cover owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owed {
    pub id: i64,
    pub kind: Kind,
    pub owes: i64,
}

/// The split of a shortfall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Claim less what the lender recovered from the collateral, never below zero.
    pub shortfall: i64,
    /// Every cover, in the order given, with what it owes (0 when out of force or not needed).
    pub owed: Vec<Owed>,
    /// What is left to the bank.
    pub lender_bears: i64,
}

/// Splits the shortfall of `claim` after `recovered` (what the collateral's proceeds paid the
/// lender) among `covers` in force on `default_day` (the day the lender declared default).
pub fn split_shortfall(
    claim: i64,
    recovered: i64,
    covers: &[Cover],
    default_day: NaiveDate,
) -> Split {
    let shortfall = claim.saturating_sub(recovered).max(0);
    let mut owed: Vec<Owed> = covers
        .iter()
        .map(|c| Owed {
            id: c.id,
            kind: c.kind,
            owes: 0,
        })
        .collect();
    let mut rest = shortfall;
    for (i, c) in covers.iter().enumerate() {
        if c.kind.is_insurance() && c.pays_lender && c.in_force(default_day) {
            let pay = rest.min(c.amount.max(0));
            owed[i].owes = pay;
            rest -= pay;
        }
    }
    let shared = rest;
    for (i, c) in covers.iter().enumerate() {
        if c.kind == Kind::Guarantee && c.in_force(default_day) {
            let share = (i128::from(shared) * i128::from(c.share_bp.clamp(0, WHOLE_BP))
                / i128::from(WHOLE_BP)) as i64;
            let pay = share.min(c.amount.max(0)).min(rest);
            owed[i].owes = pay;
            rest -= pay;
        }
    }
    Split {
        shortfall,
        owed,
        lender_bears: rest,
    }
}

/// Guarantees on one loan may not together take more than the whole loss.
pub fn shares_fit(existing_bp: &[i32], new_bp: i32) -> bool {
    new_bp > 0
        && new_bp <= WHOLE_BP
        && existing_bp.iter().map(|b| i64::from(*b)).sum::<i64>() + i64::from(new_bp)
            <= i64::from(WHOLE_BP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn guarantee(id: i64, share_bp: i32, amount: i64) -> Cover {
        Cover {
            id,
            kind: Kind::Guarantee,
            share_bp,
            amount,
            term_from: d("2026-01-01"),
            term_to: d("2028-12-31"),
            pays_lender: false,
        }
    }

    fn insurance(id: i64, amount: i64, pays_lender: bool) -> Cover {
        Cover {
            id,
            kind: Kind::LoanGuaranteeInsurance,
            share_bp: 0,
            amount,
            term_from: d("2026-01-01"),
            term_to: d("2028-12-31"),
            pays_lender,
        }
    }

    #[test]
    fn an_80_20_guarantee_bears_80_percent_of_the_shortfall() {
        // Claim 2,000,000.00; the sale paid 1,200,000.00: shortfall 800,000.00. The guarantor
        // bears 80 % = 640,000.00 (within its 1,600,000.00), the bank 160,000.00.
        let s = split_shortfall(
            200_000_000,
            120_000_000,
            &[guarantee(1, 8_000, 160_000_000)],
            d("2027-03-01"),
        );
        assert_eq!(s.shortfall, 80_000_000);
        assert_eq!(s.owed[0].owes, 64_000_000);
        assert_eq!(s.lender_bears, 16_000_000);
    }

    #[test]
    fn a_guarantor_owes_no_more_than_its_guaranteed_amount() {
        let s = split_shortfall(
            200_000_000,
            0,
            &[guarantee(1, 8_000, 100_000_000)],
            d("2027-03-01"),
        );
        assert_eq!(s.owed[0].owes, 100_000_000);
        assert_eq!(s.lender_bears, 100_000_000);
    }

    #[test]
    fn insurance_pays_first_then_guarantors_share_the_rest() {
        // Shortfall 1,000,000.00: the policy pays 300,000.00; of the 700,000.00 left the
        // guarantor bears 80 % = 560,000.00; the bank 140,000.00.
        let s = split_shortfall(
            150_000_000,
            50_000_000,
            &[
                guarantee(1, 8_000, 500_000_000),
                insurance(2, 30_000_000, true),
            ],
            d("2027-03-01"),
        );
        assert_eq!(s.owed[1].owes, 30_000_000);
        assert_eq!(s.owed[0].owes, 56_000_000);
        assert_eq!(s.lender_bears, 14_000_000);
    }

    #[test]
    fn insurance_that_does_not_name_the_lender_pays_it_nothing() {
        let s = split_shortfall(100, 0, &[insurance(1, 100, false)], d("2027-03-01"));
        assert_eq!(s.owed[0].owes, 0);
        assert_eq!(s.lender_bears, 100);
    }

    #[test]
    fn covers_out_of_force_on_the_default_day_pay_nothing() {
        let s = split_shortfall(
            100_000,
            0,
            &[guarantee(1, 8_000, 100_000), insurance(2, 100_000, true)],
            d("2029-01-01"),
        );
        assert!(s.owed.iter().all(|o| o.owes == 0));
        assert_eq!(s.lender_bears, 100_000);
    }

    #[test]
    fn no_shortfall_owes_nothing_and_shares_round_down_to_the_fen() {
        let s = split_shortfall(100, 150, &[guarantee(1, 8_000, 1_000)], d("2027-03-01"));
        assert_eq!((s.shortfall, s.owed[0].owes, s.lender_bears), (0, 0, 0));
        // 0.01 yuan × 33.33 % = 0.3333 fen → 0 fen; the bank bears the fen.
        let s = split_shortfall(1, 0, &[guarantee(1, 3_333, 1_000)], d("2027-03-01"));
        assert_eq!((s.owed[0].owes, s.lender_bears), (0, 1));
    }

    #[test]
    fn guarantee_shares_together_fit_the_whole() {
        assert!(shares_fit(&[], 8_000));
        assert!(shares_fit(&[5_000], 5_000));
        assert!(!shares_fit(&[5_000], 5_001));
        assert!(!shares_fit(&[], 0));
        assert!(!shares_fit(&[], 10_001));
    }
}
