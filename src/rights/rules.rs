//! Pure rules of the rights ledger. No I/O; unit-tested here.
//!
//! R3, the years a lot has left: an emission right is priced per ton and year (元/吨·年) and is
//! sold, disposed of and valued for whole years of its remaining term. One function,
//! [`years_left`], decides them, and every sale (listing, auction award, bilateral or registered
//! transfer, pledge disposal), every valuation and every loan-to-value check reads it through
//! [`years_traded`] or [`crate::rights::store::LotRow::years_left`].

use chrono::{Datelike, Days, Months, NaiveDate};

use super::store::Acquired;
use super::Bucket;
use crate::error::{ApiError, FieldError};

/// Whole years of a lot's term left on `on`: counted from `on` (or from `valid_from` when the term
/// has not begun) to the end of `valid_to` (the last day is included). A partly elapsed year does
/// not count: on 2026-11-27 a term ending 2030-12-31 has 4 whole years left (2026-11-27 to
/// 2030-11-27), not 5. Zero once less than a year is left or the lot expired.
pub fn years_left(valid_from: NaiveDate, valid_to: NaiveDate, on: NaiveDate) -> i32 {
    let start = on.max(valid_from);
    let Some(end) = valid_to.checked_add_days(Days::new(1)) else {
        return 0;
    };
    if start >= end {
        return 0;
    }
    let mut n = end.year() - start.year();
    while n > 0 {
        match start.checked_add_months(Months::new(12 * n as u32)) {
            Some(d) if d <= end => return n,
            _ => n -= 1,
        }
    }
    0
}

/// The years a priced sale of a lot covers (R3), checked against the years it has left on the
/// day of the sale. Rights priced per year (EM) must state 1 to [`years_left`] years; other rights
/// state none (`Ok(None)`). Asking for more years than remain is a 422 `years_beyond_term`; a lot
/// in the last, partly elapsed year of its term has no whole year left and cannot be sold for a
/// price at all (it can still be given away until it expires).
pub fn years_traded(
    priced_per_year: bool,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    asked: Option<i32>,
    on: NaiveDate,
) -> Result<Option<i32>, ApiError> {
    match (priced_per_year, asked) {
        (true, Some(y)) if y < 1 => Err(ApiError::invalid_field(
            "years",
            "at least one whole year of the term (R3)",
        )),
        (true, Some(y)) => {
            let left = years_left(valid_from, valid_to, on);
            if y <= left {
                Ok(Some(y))
            } else {
                let message = if left == 0 {
                    format!(
                        "no whole year of the term is left on {on} (it ends {valid_to}): an emission right in the last part of its term cannot be sold for a price"
                    )
                } else {
                    format!(
                        "{y} years asked, but only {left} whole years of the term are left on {on} (it ends {valid_to})"
                    )
                };
                Err(years_beyond_term(message))
            }
        }
        (true, None) => Err(ApiError::invalid_field(
            "years",
            "an emission-right sale states the whole years of the term sold (R3)",
        )),
        (false, Some(_)) => Err(ApiError::invalid_field(
            "years",
            "only emission rights are priced per year",
        )),
        (false, None) => Ok(None),
    }
}

/// R6: what may still move on an expired lot. Expired quantity stays visible with its history, so
/// it may only go back where it can do no harm: into its holder's `available` (an ended listing,
/// a cancelled or rejected transfer, an expired trade, a released or lapsed pledge), back under
/// the pledge it was being disposed of, into a judicial freeze (and out of it to its holder), or
/// out of circulation by the registry's cancellation; and a lot registered after its term ended
/// is issued to its holder, as history. Nothing changes holder, and nothing is newly listed, put
/// in transfer, pledged or retired.
pub fn moves_after_expiry(
    from_party: Option<i64>,
    from: Bucket,
    to_party: Option<i64>,
    to: Bucket,
) -> bool {
    use Bucket as B;
    if to_party.is_none() {
        return to == B::Cancelled;
    }
    // Registering a lot whose term already ended records history (an import of past lots).
    if from_party.is_none() && from == B::Issued {
        return to == B::Available;
    }
    if from_party != to_party {
        return false;
    }
    matches!(
        (from, to),
        (_, B::Available | B::Frozen) | (B::Frozen, _) | (B::Listed | B::InTransfer, B::Pledged)
    )
}

/// R11: a holding's acquisition records after `quantity` leaves it (see
/// [`crate::rights::ledger`] for why this order): from the pledged bucket, market then paid first;
/// from any other bucket, the paid units beyond `pledged` (what stays pledged after the movement)
/// first, then other, then free, then the pledged paid units.
pub fn release_acquired(a: Acquired, from_pledged: bool, pledged: i64, quantity: i64) -> Acquired {
    let mut left = quantity.max(0);
    let mut take = |have: &mut i64, at_most: i64| {
        let t = (*have).min(at_most.max(0)).min(left).max(0);
        *have -= t;
        left -= t;
    };
    let mut a = a;
    if from_pledged {
        take(&mut a.market, i64::MAX);
        take(&mut a.paid, i64::MAX);
        take(&mut a.other, i64::MAX);
        take(&mut a.free, i64::MAX);
    } else {
        // The paid units no pledge holds: a pledge holds market purchases last.
        let reserved = pledged.max(0);
        let free_paid = (a.paid + a.market - reserved).max(0);
        let from_market = a.market.min(free_paid);
        take(&mut a.market, from_market);
        take(&mut a.paid, free_paid - from_market);
        take(&mut a.other, i64::MAX);
        take(&mut a.free, i64::MAX);
        take(&mut a.market, i64::MAX);
        take(&mut a.paid, i64::MAX);
    }
    a
}

/// 422 `years_beyond_term`, naming the field `years`.
fn years_beyond_term(message: String) -> ApiError {
    let mut e = ApiError::unprocessable("years_beyond_term", format!("years: {message}"));
    e.errors = vec![FieldError {
        field: "years".into(),
        message,
    }];
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).expect("date")
    }

    #[test]
    fn whole_years_only() {
        let (from, to) = (d(2026, 1, 1), d(2030, 12, 31));
        // The whole term on its first day: five years (Fujian 2014: 485.2 t × 1,419 × 5 years).
        assert_eq!(years_left(from, to, d(2026, 1, 1)), 5);
        // A day later the first year is partly elapsed and no longer counts.
        assert_eq!(years_left(from, to, d(2026, 1, 2)), 4);
        assert_eq!(years_left(from, to, d(2026, 11, 27)), 4);
        assert_eq!(years_left(from, to, d(2027, 1, 1)), 4);
        assert_eq!(years_left(from, to, d(2029, 12, 31)), 1);
        assert_eq!(years_left(from, to, d(2030, 1, 1)), 1);
        assert_eq!(years_left(from, to, d(2030, 1, 2)), 0);
        assert_eq!(years_left(from, to, d(2030, 12, 31)), 0);
        assert_eq!(years_left(from, to, d(2031, 1, 1)), 0);
        assert_eq!(
            years_left(d(2020, 1, 1), d(2025, 12, 31), d(2026, 11, 27)),
            0
        );
    }

    #[test]
    fn a_term_not_yet_begun_counts_from_its_start() {
        assert_eq!(
            years_left(d(2028, 1, 1), d(2030, 12, 31), d(2026, 11, 27)),
            3
        );
        assert_eq!(
            years_left(d(2028, 7, 1), d(2030, 12, 31), d(2026, 11, 27)),
            2
        );
    }

    #[test]
    fn leap_days() {
        // A year from 29 February runs to the end of 27 February (its anniversary is the 28th).
        assert_eq!(
            years_left(d(2024, 2, 29), d(2025, 2, 26), d(2024, 2, 29)),
            0
        );
        assert_eq!(
            years_left(d(2024, 2, 29), d(2025, 2, 27), d(2024, 2, 29)),
            1
        );
        assert_eq!(years_left(d(2020, 1, 1), d(2028, 2, 28), d(2024, 2, 29)), 4);
    }

    #[test]
    fn outgoing_quantity_never_upgrades_free_into_paid() {
        let a = |free, paid, market, other| Acquired {
            free,
            paid,
            market,
            other,
        };
        // A sale of 100 from 100 paid + 100 free, nothing pledged: the 100 left count as free.
        assert_eq!(
            release_acquired(a(100, 100, 0, 0), false, 0, 100),
            a(100, 0, 0, 0)
        );
        // 100 paid pledged, 100 free available: selling the available 100 spends the free ones.
        assert_eq!(
            release_acquired(a(100, 100, 0, 0), false, 100, 100),
            a(0, 100, 0, 0)
        );
        // Disposing of the pledged 100 spends paid units; the free 100 stay free.
        assert_eq!(
            release_acquired(a(100, 100, 0, 0), true, 0, 100),
            a(100, 0, 0, 0)
        );
        // 50 pledged of 60 market + 40 paid; 30 leave from available: 30 of the 50 unpledged
        // paid units (market first).
        assert_eq!(
            release_acquired(a(0, 40, 60, 10), false, 50, 30),
            a(0, 40, 30, 10)
        );
        // Never below zero, whatever is asked.
        assert_eq!(release_acquired(a(1, 1, 1, 1), false, 0, 10), a(0, 0, 0, 0));
    }

    #[test]
    fn after_expiry_quantity_only_returns() {
        use Bucket as B;
        let me = Some(1);
        assert!(moves_after_expiry(me, B::InTransfer, me, B::Available));
        assert!(moves_after_expiry(me, B::Listed, me, B::Available));
        assert!(moves_after_expiry(me, B::Pledged, me, B::Available));
        assert!(moves_after_expiry(me, B::Listed, me, B::Pledged));
        assert!(moves_after_expiry(me, B::Available, me, B::Frozen));
        assert!(moves_after_expiry(me, B::Available, None, B::Cancelled));
        // Settling a transfer or a trade, a court's transfer, a new listing, pledge or retirement.
        assert!(!moves_after_expiry(
            me,
            B::InTransfer,
            Some(2),
            B::Available
        ));
        assert!(!moves_after_expiry(me, B::Available, Some(2), B::Available));
        assert!(!moves_after_expiry(me, B::Frozen, Some(2), B::Available));
        assert!(!moves_after_expiry(me, B::Available, me, B::Listed));
        assert!(!moves_after_expiry(me, B::Available, me, B::InTransfer));
        assert!(!moves_after_expiry(me, B::Available, me, B::Pledged));
        assert!(!moves_after_expiry(me, B::Pledged, me, B::Listed));
        assert!(!moves_after_expiry(me, B::Available, None, B::Retired));
        assert!(moves_after_expiry(None, B::Issued, me, B::Available));
    }

    #[test]
    fn sales_state_whole_years_within_the_term() {
        let (from, to, on) = (d(2026, 1, 1), d(2030, 12, 31), d(2026, 12, 1));
        assert_eq!(
            years_traded(true, from, to, Some(4), on).ok(),
            Some(Some(4))
        );
        let e = years_traded(true, from, to, Some(5), on).expect_err("5 > 4");
        assert_eq!((e.status.as_u16(), e.code), (422, "years_beyond_term"));
        assert_eq!(e.errors[0].field, "years");
        let e = years_traded(true, from, to, Some(30), on).expect_err("30 > 4");
        assert_eq!(e.code, "years_beyond_term");
        assert_eq!(
            years_traded(true, from, to, Some(0), on).map_err(|e| e.code),
            Err("validation_failed")
        );
        assert_eq!(
            years_traded(true, from, to, None, on).map_err(|e| e.code),
            Err("validation_failed")
        );
        assert_eq!(years_traded(false, from, to, None, on).ok(), Some(None));
        assert!(years_traded(false, from, to, Some(1), on).is_err());
        // The last, partly elapsed year: nothing can be sold for a price.
        let e = years_traded(true, from, to, Some(1), d(2030, 6, 1)).expect_err("no year left");
        assert_eq!(e.code, "years_beyond_term");
    }
}
