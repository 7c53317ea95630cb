//! Environmental credit grades (企业环境信用评价): what a grade means for lending. Fujian grades
//! enterprises in four levels; banks are to use them in credit approval and post-loan
//! management. A red grade (不良, the "poor environmental credit" of the pledge rules) bars the
//! party from pledging; a yellow one (警示) lets it pledge but the lender is warned.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The four levels, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// 环保诚信 (environmentally trustworthy).
    Green,
    /// 良好 (good).
    Blue,
    /// 警示 (warning).
    Yellow,
    /// 不良 (poor).
    Red,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Green => "green",
            Grade::Blue => "blue",
            Grade::Yellow => "yellow",
            Grade::Red => "red",
        }
    }

    pub fn parse(s: &str) -> Option<Grade> {
        match s {
            "green" => Some(Grade::Green),
            "blue" => Some(Grade::Blue),
            "yellow" => Some(Grade::Yellow),
            "red" => Some(Grade::Red),
            _ => None,
        }
    }

    /// The name the grading authority uses.
    pub fn name_zh(self) -> &'static str {
        match self {
            Grade::Green => "环保诚信",
            Grade::Blue => "良好",
            Grade::Yellow => "警示",
            Grade::Red => "不良",
        }
    }
}

/// What a grade means for a new pledge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PledgeStanding {
    Allowed,
    /// Allowed, but the lender is told (a yellow grade).
    Warn,
    /// Refused: a red grade is the poor environmental credit that bars pledging.
    Refused,
}

/// How a party's grade in force bears on its pledging. No grade on record says nothing against
/// it: most enterprises are never graded.
pub fn pledge_standing(grade: Option<Grade>) -> PledgeStanding {
    match grade {
        Some(Grade::Red) => PledgeStanding::Refused,
        Some(Grade::Yellow) => PledgeStanding::Warn,
        _ => PledgeStanding::Allowed,
    }
}

/// One recorded grade, as far as deciding which is in force needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Order of recording (a later record corrects or supersedes an earlier one).
    pub seq: i64,
    pub grade: Grade,
    pub valid_from: NaiveDate,
    /// Open-ended when absent.
    pub valid_to: Option<NaiveDate>,
}

impl Recorded {
    pub fn covers(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|to| day <= to)
    }
}

/// The grade in force on `day`: of the records whose validity covers the day, the one recorded
/// last. Once a grade has run out, an older record that still covers the day is in force again,
/// and with none the party is ungraded.
pub fn in_force(records: &[Recorded], day: NaiveDate) -> Option<Recorded> {
    records
        .iter()
        .filter(|r| r.covers(day))
        .max_by_key(|r| r.seq)
        .copied()
}

/// A validity whose end comes before its start is no validity.
pub fn validity_ok(from: NaiveDate, to: Option<NaiveDate>) -> bool {
    to.is_none_or(|to| from <= to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn rec(seq: i64, grade: Grade, from: &str, to: Option<&str>) -> Recorded {
        Recorded {
            seq,
            grade,
            valid_from: d(from),
            valid_to: to.map(d),
        }
    }

    #[test]
    fn red_refuses_yellow_warns_the_rest_and_ungraded_pass() {
        assert_eq!(pledge_standing(Some(Grade::Red)), PledgeStanding::Refused);
        assert_eq!(pledge_standing(Some(Grade::Yellow)), PledgeStanding::Warn);
        assert_eq!(pledge_standing(Some(Grade::Blue)), PledgeStanding::Allowed);
        assert_eq!(pledge_standing(Some(Grade::Green)), PledgeStanding::Allowed);
        assert_eq!(pledge_standing(None), PledgeStanding::Allowed);
    }

    #[test]
    fn the_latest_record_covering_the_day_is_in_force() {
        let h = [
            rec(1, Grade::Blue, "2025-01-01", Some("2026-12-31")),
            rec(2, Grade::Red, "2026-06-01", Some("2026-12-31")),
            rec(3, Grade::Green, "2027-01-01", None),
        ];
        assert_eq!(in_force(&h, d("2026-05-31")).unwrap().grade, Grade::Blue);
        assert_eq!(in_force(&h, d("2026-06-01")).unwrap().grade, Grade::Red);
        assert_eq!(in_force(&h, d("2026-12-31")).unwrap().grade, Grade::Red);
        assert_eq!(in_force(&h, d("2030-01-01")).unwrap().grade, Grade::Green);
        assert!(in_force(&h, d("2024-12-31")).is_none());
        // A record made later for the same period corrects the earlier one.
        let corrected = [
            rec(1, Grade::Red, "2026-01-01", None),
            rec(2, Grade::Yellow, "2026-01-01", None),
        ];
        assert_eq!(
            in_force(&corrected, d("2026-03-01")).unwrap().grade,
            Grade::Yellow
        );
    }

    #[test]
    fn an_expired_grade_is_no_longer_in_force() {
        let h = [rec(1, Grade::Red, "2025-01-01", Some("2025-12-31"))];
        assert!(in_force(&h, d("2026-01-01")).is_none());
    }

    #[test]
    fn validity_must_not_end_before_it_starts() {
        assert!(validity_ok(d("2026-01-01"), None));
        assert!(validity_ok(d("2026-01-01"), Some(d("2026-01-01"))));
        assert!(!validity_ok(d("2026-01-02"), Some(d("2026-01-01"))));
    }

    #[test]
    fn names_round_trip() {
        for g in [Grade::Green, Grade::Blue, Grade::Yellow, Grade::Red] {
            assert_eq!(Grade::parse(g.as_str()), Some(g));
        }
        assert_eq!(Grade::Red.name_zh(), "不良");
        assert!(Grade::parse("purple").is_none());
    }
}
