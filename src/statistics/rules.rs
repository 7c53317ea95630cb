//! The monthly green-finance statistics (绿色融资统计月报) over what the registry holds: loans
//! secured by registered pledges of rights and forest mortgages. Pure: the figures of a month
//! from the loans' facts.
//!
//! - outstanding (余额): loans registered on or before the month's last day and not yet ended
//!   (released, lapsed, disposed) on that day, counted with their secured amount;
//! - new (新增): loans registered within the month;
//! - borrowers (户数): distinct borrowers with an outstanding loan;
//! - coverage (覆盖面): of the enterprises registered by the month's end, the share with an
//!   outstanding registered loan;
//! - credit enhancement: of the outstanding loans, those carrying a guarantee or insurance.
//!
//! Breakdowns by county (the borrower's registered county), bank (the lender) and right type
//! (EM, EU, CA, CS for pledges; FOREST for forest mortgages).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

/// What one secured loan contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loan {
    pub borrower: i64,
    pub borrower_is_enterprise: bool,
    pub county: String,
    pub bank: i64,
    pub right_type: String,
    /// Secured amount, fen.
    pub amount: i64,
    pub registered_on: NaiveDate,
    /// The day it was released, lapsed or disposed of.
    pub ended_on: Option<NaiveDate>,
    pub enhanced: bool,
}

impl Loan {
    pub fn outstanding_on(&self, day: NaiveDate) -> bool {
        self.registered_on <= day && self.ended_on.is_none_or(|e| e > day)
    }
}

/// A registered enterprise: its county and the day it was registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enterprise {
    pub id: i64,
    pub county: String,
    pub registered_on: NaiveDate,
}

/// The figures of one cell (the whole, one county, one bank or one right type).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub outstanding_count: i64,
    /// fen
    pub outstanding_amount: i64,
    pub new_count: i64,
    /// fen
    pub new_amount: i64,
    pub borrowers: i64,
    pub enhanced_count: i64,
    /// fen
    pub enhanced_amount: i64,
    /// Enterprises registered by the month's end (whole and by county only).
    pub enterprises: Option<i64>,
    /// Of those, with an outstanding loan.
    pub covered_enterprises: Option<i64>,
}

impl Figures {
    /// covered ÷ enterprises in basis points, when there are enterprises.
    pub fn coverage_bp(&self) -> Option<i64> {
        match (self.enterprises, self.covered_enterprises) {
            (Some(e), Some(c)) if e > 0 => Some(c * 10_000 / e),
            _ => None,
        }
    }

    /// Share of outstanding loans (by count) with credit enhancement, in basis points.
    pub fn enhanced_share_bp(&self) -> Option<i64> {
        (self.outstanding_count > 0).then(|| self.enhanced_count * 10_000 / self.outstanding_count)
    }
}

/// A month's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Month {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub total: Figures,
    pub by_county: BTreeMap<String, Figures>,
    pub by_bank: BTreeMap<i64, Figures>,
    pub by_right_type: BTreeMap<String, Figures>,
}

/// The first and last day of `YYYY-MM`.
pub fn month_bounds(month: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let first = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)?
    };
    Some((first, next.pred_opt()?))
}

#[derive(Default)]
struct Acc {
    f: Figures,
    borrowers: BTreeSet<i64>,
}

impl Acc {
    fn add(&mut self, l: &Loan, first: NaiveDate, last: NaiveDate) {
        if l.outstanding_on(last) {
            self.f.outstanding_count += 1;
            self.f.outstanding_amount += l.amount;
            self.borrowers.insert(l.borrower);
            if l.enhanced {
                self.f.enhanced_count += 1;
                self.f.enhanced_amount += l.amount;
            }
        }
        if first <= l.registered_on && l.registered_on <= last {
            self.f.new_count += 1;
            self.f.new_amount += l.amount;
        }
    }

    fn done(mut self) -> Figures {
        self.f.borrowers = self.borrowers.len() as i64;
        self.f
    }
}

/// The statistics of the month `first..=last`.
pub fn month(
    loans: &[Loan],
    enterprises: &[Enterprise],
    first: NaiveDate,
    last: NaiveDate,
) -> Month {
    let mut total = Acc::default();
    let mut county: BTreeMap<String, Acc> = BTreeMap::new();
    let mut bank: BTreeMap<i64, Acc> = BTreeMap::new();
    let mut right: BTreeMap<String, Acc> = BTreeMap::new();
    for l in loans {
        total.add(l, first, last);
        county
            .entry(l.county.clone())
            .or_default()
            .add(l, first, last);
        bank.entry(l.bank).or_default().add(l, first, last);
        right
            .entry(l.right_type.clone())
            .or_default()
            .add(l, first, last);
    }
    // Coverage: enterprises registered by the month's end, and those of them with a loan then.
    let covered: BTreeSet<i64> = loans
        .iter()
        .filter(|l| l.borrower_is_enterprise && l.outstanding_on(last))
        .map(|l| l.borrower)
        .collect();
    let mut ent_total = (0i64, 0i64);
    let mut ent_county: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for e in enterprises.iter().filter(|e| e.registered_on <= last) {
        let c = i64::from(covered.contains(&e.id));
        ent_total.0 += 1;
        ent_total.1 += c;
        let cell = ent_county.entry(e.county.clone()).or_default();
        cell.0 += 1;
        cell.1 += c;
    }
    let mut total = total.done();
    total.enterprises = Some(ent_total.0);
    total.covered_enterprises = Some(ent_total.1);
    let mut by_county: BTreeMap<String, Figures> =
        county.into_iter().map(|(k, a)| (k, a.done())).collect();
    for (k, (n, c)) in ent_county {
        let f = by_county.entry(k).or_default();
        f.enterprises = Some(n);
        f.covered_enterprises = Some(c);
    }
    Month {
        first,
        last,
        total,
        by_county,
        by_bank: bank.into_iter().map(|(k, a)| (k, a.done())).collect(),
        by_right_type: right.into_iter().map(|(k, a)| (k, a.done())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    // A loan's facts in one line per loan keep the hand-computed table readable.
    #[allow(clippy::too_many_arguments)]
    fn loan(
        borrower: i64,
        county: &str,
        bank: i64,
        rt: &str,
        amount: i64,
        reg: &str,
        end: Option<&str>,
        enhanced: bool,
    ) -> Loan {
        Loan {
            borrower,
            borrower_is_enterprise: borrower < 100,
            county: county.into(),
            bank,
            right_type: rt.into(),
            amount,
            registered_on: d(reg),
            ended_on: end.map(d),
            enhanced,
        }
    }

    #[test]
    fn month_bounds_know_the_calendar() {
        assert_eq!(
            month_bounds("2026-02"),
            Some((d("2026-02-01"), d("2026-02-28")))
        );
        assert_eq!(
            month_bounds("2028-02"),
            Some((d("2028-02-01"), d("2028-02-29")))
        );
        assert_eq!(
            month_bounds("2026-12"),
            Some((d("2026-12-01"), d("2026-12-31")))
        );
        for bad in ["2026-13", "2026-1", "26-01", "2026/01", ""] {
            assert!(month_bounds(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_month_by_hand() {
        let loans = [
            // Outstanding, registered before the month, with a guarantee.
            loan(1, "350702", 10, "EM", 2_000_000, "2026-10-05", None, true),
            // New in the month, same borrower, another bank.
            loan(1, "350702", 11, "EU", 500_000, "2026-11-10", None, false),
            // New in the month, ended in it: new but not outstanding.
            loan(
                2,
                "350721",
                10,
                "EM",
                300_000,
                "2026-11-02",
                Some("2026-11-20"),
                false,
            ),
            // A farmer's forest mortgage: outstanding, not an enterprise.
            loan(
                200,
                "350721",
                10,
                "FOREST",
                100_000,
                "2026-09-01",
                None,
                true,
            ),
            // Registered after the month.
            loan(3, "350702", 10, "EM", 900_000, "2026-12-01", None, false),
            // Ended on the last day: no longer outstanding that day.
            loan(
                4,
                "350702",
                11,
                "CA",
                700_000,
                "2026-01-01",
                Some("2026-11-30"),
                false,
            ),
        ];
        let enterprises = [
            Enterprise {
                id: 1,
                county: "350702".into(),
                registered_on: d("2026-01-01"),
            },
            Enterprise {
                id: 2,
                county: "350721".into(),
                registered_on: d("2026-01-01"),
            },
            Enterprise {
                id: 3,
                county: "350702".into(),
                registered_on: d("2026-01-01"),
            },
            Enterprise {
                id: 4,
                county: "350702".into(),
                registered_on: d("2026-01-01"),
            },
            // Registered after the month: not counted.
            Enterprise {
                id: 5,
                county: "350702".into(),
                registered_on: d("2026-12-02"),
            },
        ];
        let (first, last) = month_bounds("2026-11").unwrap();
        let m = month(&loans, &enterprises, first, last);
        let t = &m.total;
        assert_eq!((t.outstanding_count, t.outstanding_amount), (3, 2_600_000));
        assert_eq!((t.new_count, t.new_amount), (2, 800_000));
        assert_eq!(t.borrowers, 2);
        assert_eq!((t.enhanced_count, t.enhanced_amount), (2, 2_100_000));
        assert_eq!((t.enterprises, t.covered_enterprises), (Some(4), Some(1)));
        assert_eq!(t.coverage_bp(), Some(2_500));
        assert_eq!(t.enhanced_share_bp(), Some(6_666));
        let yp = &m.by_county["350702"];
        assert_eq!(
            (yp.outstanding_count, yp.outstanding_amount, yp.borrowers),
            (2, 2_500_000, 1)
        );
        assert_eq!((yp.enterprises, yp.covered_enterprises), (Some(3), Some(1)));
        let sc = &m.by_county["350721"];
        assert_eq!(
            (sc.outstanding_count, sc.new_count, sc.borrowers),
            (1, 1, 1)
        );
        assert_eq!(sc.coverage_bp(), Some(0));
        assert_eq!(m.by_bank[&10].outstanding_amount, 2_100_000);
        assert_eq!(m.by_bank[&11].outstanding_amount, 500_000);
        assert_eq!(m.by_right_type["EM"].new_count, 1);
        assert_eq!(m.by_right_type["FOREST"].outstanding_count, 1);
        assert_eq!(m.by_right_type["CA"].outstanding_count, 0);
    }
}
