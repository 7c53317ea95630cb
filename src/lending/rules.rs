//! Rules of financing requests (融资需求) and of banks taking them (抢单), without I/O.

use chrono::{Datelike, NaiveDateTime, TimeDelta, Weekday};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Nanping's seven green industries, the tag a request carries for green-finance statistics and
/// for banks' green credit products; `none` when the purpose is in none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GreenTag {
    /// 现代绿色农业
    ModernGreenAgriculture,
    /// 旅游
    Tourism,
    /// 健康养生
    HealthWellness,
    /// 生物
    Biology,
    /// 数字信息
    DigitalInformation,
    /// 先进制造
    AdvancedManufacturing,
    /// 文化创意
    CulturalCreative,
    None,
}

impl GreenTag {
    pub const ALL: [GreenTag; 8] = [
        GreenTag::ModernGreenAgriculture,
        GreenTag::Tourism,
        GreenTag::HealthWellness,
        GreenTag::Biology,
        GreenTag::DigitalInformation,
        GreenTag::AdvancedManufacturing,
        GreenTag::CulturalCreative,
        GreenTag::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GreenTag::ModernGreenAgriculture => "modern_green_agriculture",
            GreenTag::Tourism => "tourism",
            GreenTag::HealthWellness => "health_wellness",
            GreenTag::Biology => "biology",
            GreenTag::DigitalInformation => "digital_information",
            GreenTag::AdvancedManufacturing => "advanced_manufacturing",
            GreenTag::CulturalCreative => "cultural_creative",
            GreenTag::None => "none",
        }
    }

    /// The Chinese name used in the pilot plan; empty for `none`.
    pub fn name_zh(self) -> &'static str {
        match self {
            GreenTag::ModernGreenAgriculture => "现代绿色农业",
            GreenTag::Tourism => "旅游",
            GreenTag::HealthWellness => "健康养生",
            GreenTag::Biology => "生物",
            GreenTag::DigitalInformation => "数字信息",
            GreenTag::AdvancedManufacturing => "先进制造",
            GreenTag::CulturalCreative => "文化创意",
            GreenTag::None => "",
        }
    }

    pub fn parse(s: &str) -> Option<GreenTag> {
        GreenTag::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Where a request stands. `open` → `taken` (one bank, within the response window) → `funded`
/// when that bank registers the pledge; a decline or a lapsed window reopens it; the applicant
/// may withdraw it while it is open or taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Open,
    Taken,
    Funded,
    Withdrawn,
}

impl RequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Taken => "taken",
            RequestStatus::Funded => "funded",
            RequestStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<RequestStatus> {
        [
            RequestStatus::Open,
            RequestStatus::Taken,
            RequestStatus::Funded,
            RequestStatus::Withdrawn,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    /// The collateral stays reserved while a request may still be funded.
    pub fn holds_reservation(self) -> bool {
        matches!(self, RequestStatus::Open | RequestStatus::Taken)
    }

    /// The applicant may withdraw until the request is funded.
    pub fn withdrawable(self) -> bool {
        self.holds_reservation()
    }
}

/// A loan term is whole months; 30 years is the longest registration a pledge may run (R8), so
/// no longer loan can be secured by it.
pub const MAX_TERM_MONTHS: i32 = 360;
/// The purpose is shown to every bank: a sentence, not a document.
pub const MAX_PURPOSE_CHARS: usize = 500;
/// Working days a bank that took a request has to accept or decline, unless configured.
pub const DEFAULT_RESPONSE_WORKING_DAYS: i32 = 3;
/// The response window may be configured within these bounds (working days).
pub const RESPONSE_WORKING_DAYS_RANGE: std::ops::RangeInclusive<i32> = 1..=30;

/// Why a request's terms are refused (the field and the message).
pub fn check_terms(term_months: i32, purpose: &str) -> Result<(), (&'static str, String)> {
    if !(1..=MAX_TERM_MONTHS).contains(&term_months) {
        return Err((
            "term_months",
            format!("between 1 and {MAX_TERM_MONTHS} months"),
        ));
    }
    let purpose = purpose.trim();
    if purpose.is_empty() {
        return Err(("purpose", "required".into()));
    }
    if purpose.chars().count() > MAX_PURPOSE_CHARS {
        return Err(("purpose", format!("at most {MAX_PURPOSE_CHARS} characters")));
    }
    if purpose.chars().any(char::is_control) {
        return Err(("purpose", "no control characters".into()));
    }
    Ok(())
}

/// Saturdays and Sundays are not working days. Public holidays and the make-up working weekends
/// of the State Council's calendar are not known to the registry, so the window may end a little
/// earlier than a holiday-aware count would; banks see the exact `response_due`.
pub fn is_working_day(d: chrono::NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The moment a bank's response window ends: `working_days` working days after `taken`, at the
/// same time of day. Taken on a weekend, the count starts from the next working day.
pub fn response_due(taken: NaiveDateTime, working_days: i32) -> NaiveDateTime {
    let mut at = taken;
    let mut left = working_days.max(0);
    while left > 0 {
        at += TimeDelta::days(1);
        if is_working_day(at.date()) {
            left -= 1;
        }
    }
    at
}

/// Whether the taking bank may still accept at `now`.
pub fn within_window(due: Option<NaiveDateTime>, now: NaiveDateTime) -> bool {
    due.is_some_and(|d| now <= d)
}

/// A bank may lend less than asked but never more than the applicant asked for.
pub fn secured_within_request(secured_fen: i64, requested_fen: i64) -> bool {
    secured_fen > 0 && secured_fen <= requested_fen
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, 0, 0)
            .unwrap()
    }

    #[test]
    fn green_tags_round_trip_and_there_are_seven_industries() {
        for t in GreenTag::ALL {
            assert_eq!(GreenTag::parse(t.as_str()), Some(t));
        }
        let named = GreenTag::ALL
            .iter()
            .filter(|t| !t.name_zh().is_empty())
            .count();
        assert_eq!(named, 7);
        assert_eq!(GreenTag::parse("green"), None);
    }

    #[test]
    fn three_working_days_skip_the_weekend() {
        // 2026-12-02 is a Wednesday: Thu, Fri, Mon.
        assert_eq!(response_due(at(2026, 12, 2, 10), 3), at(2026, 12, 7, 10));
        // Friday: Mon, Tue, Wed.
        assert_eq!(response_due(at(2026, 12, 4, 9), 3), at(2026, 12, 9, 9));
        // Saturday: Mon, Tue, Wed.
        assert_eq!(response_due(at(2026, 12, 5, 9), 3), at(2026, 12, 9, 9));
        // Monday, one day: Tuesday.
        assert_eq!(response_due(at(2026, 12, 7, 9), 1), at(2026, 12, 8, 9));
    }

    #[test]
    fn the_window_includes_its_last_moment() {
        let due = at(2026, 12, 7, 10);
        assert!(within_window(Some(due), due));
        assert!(!within_window(Some(due), due + TimeDelta::microseconds(1)));
        assert!(!within_window(None, due));
    }

    #[test]
    fn terms_are_checked() {
        assert!(check_terms(12, "扩建茶叶加工厂").is_ok());
        assert_eq!(check_terms(0, "x").unwrap_err().0, "term_months");
        assert_eq!(check_terms(361, "x").unwrap_err().0, "term_months");
        assert_eq!(check_terms(12, "  ").unwrap_err().0, "purpose");
        assert_eq!(check_terms(12, &"长".repeat(501)).unwrap_err().0, "purpose");
        assert_eq!(check_terms(12, "a\u{0}b").unwrap_err().0, "purpose");
    }

    #[test]
    fn statuses_and_reservation() {
        assert!(RequestStatus::Open.holds_reservation());
        assert!(RequestStatus::Taken.holds_reservation());
        assert!(!RequestStatus::Funded.holds_reservation());
        assert!(!RequestStatus::Withdrawn.withdrawable());
        assert_eq!(RequestStatus::parse("taken"), Some(RequestStatus::Taken));
        assert_eq!(RequestStatus::parse("closed"), None);
    }

    #[test]
    fn a_bank_lends_at_most_what_was_asked() {
        assert!(secured_within_request(100, 100));
        assert!(secured_within_request(50, 100));
        assert!(!secured_within_request(101, 100));
        assert!(!secured_within_request(0, 100));
    }
}
