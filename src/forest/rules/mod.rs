//! R12: what forest may be mortgaged and on what terms. Pure: the handler gathers the facts, this
//! answers the first refusal with its stable code.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use crate::collateral::rules::SecuredClaim;
use utoipa::ToSchema;

/// R12: a forest-rights loan may be at most 50 % of the appraised value by default.
pub const DEFAULT_LTV_CAP_BP: i64 = 5_000;
/// The highest cap a lender product may set. R12 makes 50 % the default and lets a product
/// differ, but names no ceiling; the pilot plan names none either. Standing timber's appraised
/// value falls with fire, pests and the timber price, and the registry's figure is what a bank's
/// credit committee relies on, so a product may go above the default only with a margin left:
/// 70 %, never "the whole value" (which one operator could set before this limit existed).
pub const MAX_LTV_CAP_BP: i64 = 7_000;

/// True when a lender product's LTV cap (basis points) is one the registry accepts: above zero
/// and at most [`MAX_LTV_CAP_BP`].
pub fn ltv_cap_allowed(cap_bp: i64) -> bool {
    cap_bp > 0 && cap_bp <= MAX_LTV_CAP_BP
}
/// R12: from 300,000 yuan (30,000,000 fen) a loan needs a professional appraisal.
pub const PROFESSIONAL_APPRAISAL_FROM_FEN: i64 = 30_000_000;

/// The consent a mortgage of collectively managed or company forest needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Consent {
    /// Village assembly or its representatives (集体统一经营): at least two thirds in favour.
    VillageAssembly {
        meeting_date: NaiveDate,
        votes_for: i32,
        /// Votes cast (for, against and abstaining), when the minutes state it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        votes_cast: Option<i32>,
        /// Members (or representatives) entitled to vote; two thirds of them must be for.
        votes_eligible: i32,
        document_ref: String,
    },
    /// A company's board or shareholders' resolution.
    CompanyResolution {
        date: NaiveDate,
        document_ref: String,
    },
}

/// What R12 looks at in one parcel.
pub struct ParcelFacts<'a> {
    pub certificate_no: &'a str,
    pub public_welfare: bool,
    pub registered: bool,
    pub disputed: bool,
    /// collective, household or company.
    pub management_form: &'a str,
    pub has_woodland_use: bool,
    pub woodland_term_end: NaiveDate,
}

pub struct Terms<'a> {
    pub loan_end: NaiveDate,
    pub secured_fen: i64,
    pub appraisal_fen: i64,
    pub cap_bp: i64,
    pub professional_appraisal: bool,
    pub insurance_names_lender: bool,
    pub consent: Option<&'a Consent>,
}

/// A refusal: HTTP status, stable code, message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

fn refuse(status: u16, code: &'static str, message: String) -> Result<(), Refusal> {
    Err(Refusal {
        status,
        code,
        message,
    })
}

impl Consent {
    /// A count that cannot be true of one meeting: no part may exceed its whole (votes for ≤
    /// votes cast ≤ eligible), none is negative, and a meeting has someone entitled to vote.
    /// Minutes that state 55 for out of 40 are a typo or worse, never two thirds.
    pub fn impossible(&self) -> Option<String> {
        let Consent::VillageAssembly {
            votes_for,
            votes_cast,
            votes_eligible,
            ..
        } = self
        else {
            return None;
        };
        let cast = votes_cast.unwrap_or(*votes_for);
        if *votes_for < 0 || cast < 0 {
            Some("votes cannot be negative".into())
        } else if *votes_eligible <= 0 {
            Some("votes_eligible: a village assembly has members entitled to vote".into())
        } else if *votes_for > cast {
            Some(format!(
                "votes_for ({votes_for}) is more than the votes cast ({cast})"
            ))
        } else if cast > *votes_eligible {
            Some(format!(
                "{} ({cast}) is more than the members entitled to vote ({votes_eligible})",
                if votes_cast.is_some() {
                    "votes_cast"
                } else {
                    "votes_for"
                }
            ))
        } else {
            None
        }
    }
}

/// Checks R12 for a mortgage of `parcels` on `terms`; the first failing rule answers.
pub fn check(parcels: &[ParcelFacts], terms: &Terms) -> Result<(), Refusal> {
    if let Some(why) = terms.consent.and_then(Consent::impossible) {
        return refuse(422, "impossible_count", format!("consent: {why}"));
    }
    for p in parcels {
        let c = p.certificate_no;
        if p.public_welfare {
            return refuse(
                422,
                "public_welfare_forest",
                format!("{c} is public-welfare forest, which cannot be mortgaged"),
            );
        }
        if !p.registered {
            return refuse(
                422,
                "unregistered_forest",
                format!("{c} is not registered forest"),
            );
        }
        if p.disputed {
            return refuse(409, "disputed_forest", format!("{c} is under dispute"));
        }
        if !p.has_woodland_use {
            return refuse(
                422,
                "woodland_use_not_included",
                format!("{c}: the woodland-use right must go with the trees"),
            );
        }
        if terms.loan_end > p.woodland_term_end {
            return refuse(
                422,
                "term_after_woodland_use",
                format!(
                    "the mortgage ends after the woodland-use term of {c} ({})",
                    p.woodland_term_end
                ),
            );
        }
        match (p.management_form, terms.consent) {
            (
                "collective",
                Some(Consent::VillageAssembly {
                    votes_for,
                    votes_eligible,
                    ..
                }),
            ) if *votes_eligible > 0 && (*votes_for as i64) * 3 >= (*votes_eligible as i64) * 2 => {
            }
            ("collective", _) => {
                return refuse(
                    422,
                    "consent_missing",
                    format!(
                    "{c} is collectively managed: two thirds of the village assembly must consent"
                ),
                )
            }
            ("company", Some(Consent::CompanyResolution { .. })) => {}
            ("company", _) => {
                return refuse(
                    422,
                    "resolution_missing",
                    format!(
                        "{c} is company forest: a board or shareholders' resolution is required"
                    ),
                )
            }
            _ => {}
        }
    }
    if (terms.secured_fen as i128) * 10_000 > (terms.appraisal_fen as i128) * (terms.cap_bp as i128)
    {
        return refuse(
            422,
            "ltv_exceeded",
            format!(
                "the secured amount exceeds {} % of the appraised value",
                terms.cap_bp / 100
            ),
        );
    }
    if terms.secured_fen >= PROFESSIONAL_APPRAISAL_FROM_FEN && !terms.professional_appraisal {
        return refuse(
            422,
            "professional_appraisal_required",
            "a loan of 300,000 yuan or more needs a professional appraisal".into(),
        );
    }
    if !terms.insurance_names_lender {
        return refuse(
            422,
            "fire_insurance_required",
            "forest fire insurance naming the lender as beneficiary is required".into(),
        );
    }
    Ok(())
}

mod certificates;
mod waterfall;

pub use certificates::*;
pub use waterfall::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn parcel() -> ParcelFacts<'static> {
        ParcelFacts {
            certificate_no: "闽(2026)顺昌县不动产权第0001234号",
            public_welfare: false,
            registered: true,
            disputed: false,
            management_form: "household",
            has_woodland_use: true,
            woodland_term_end: date("2056-12-31"),
        }
    }

    fn terms() -> Terms<'static> {
        Terms {
            loan_end: date("2029-12-31"),
            secured_fen: 20_000_000,
            appraisal_fen: 50_000_000,
            cap_bp: DEFAULT_LTV_CAP_BP,
            professional_appraisal: false,
            insurance_names_lender: true,
            consent: None,
        }
    }

    fn code(parcels: &[ParcelFacts], t: &Terms) -> &'static str {
        check(parcels, t).err().map(|r| r.code).unwrap_or("ok")
    }

    #[test]
    fn a_product_cap_stays_below_the_whole_value() {
        assert!(ltv_cap_allowed(DEFAULT_LTV_CAP_BP));
        assert!(ltv_cap_allowed(7_000));
        assert!(!ltv_cap_allowed(7_001));
        assert!(!ltv_cap_allowed(10_000));
        assert!(!ltv_cap_allowed(0));
    }

    #[test]
    fn every_refusal_has_its_code() {
        assert_eq!(code(&[parcel()], &terms()), "ok");
        assert_eq!(
            code(
                &[ParcelFacts {
                    public_welfare: true,
                    ..parcel()
                }],
                &terms()
            ),
            "public_welfare_forest"
        );
        assert_eq!(
            code(
                &[ParcelFacts {
                    registered: false,
                    ..parcel()
                }],
                &terms()
            ),
            "unregistered_forest"
        );
        assert_eq!(
            code(
                &[ParcelFacts {
                    disputed: true,
                    ..parcel()
                }],
                &terms()
            ),
            "disputed_forest"
        );
        assert_eq!(
            code(
                &[ParcelFacts {
                    has_woodland_use: false,
                    ..parcel()
                }],
                &terms()
            ),
            "woodland_use_not_included"
        );
        assert_eq!(
            code(
                &[ParcelFacts {
                    woodland_term_end: date("2029-06-30"),
                    ..parcel()
                }],
                &terms()
            ),
            "term_after_woodland_use"
        );
        assert_eq!(
            code(
                &[ParcelFacts {
                    management_form: "collective",
                    ..parcel()
                }],
                &terms()
            ),
            "consent_missing"
        );
        assert_eq!(
            code(
                &[ParcelFacts {
                    management_form: "company",
                    ..parcel()
                }],
                &terms()
            ),
            "resolution_missing"
        );
        assert_eq!(
            code(
                &[parcel()],
                &Terms {
                    secured_fen: 25_000_001,
                    ..terms()
                }
            ),
            "ltv_exceeded"
        );
        assert_eq!(
            code(
                &[parcel()],
                &Terms {
                    secured_fen: 30_000_000,
                    appraisal_fen: 70_000_000,
                    ..terms()
                }
            ),
            "professional_appraisal_required"
        );
        assert_eq!(
            code(
                &[parcel()],
                &Terms {
                    insurance_names_lender: false,
                    ..terms()
                }
            ),
            "fire_insurance_required"
        );
    }

    #[test]
    fn two_thirds_of_the_village() {
        let collective = [ParcelFacts {
            management_form: "collective",
            ..parcel()
        }];
        let vote = |f, e| Consent::VillageAssembly {
            meeting_date: date("2026-10-01"),
            votes_for: f,
            votes_cast: None,
            votes_eligible: e,
            document_ref: "x".into(),
        };
        let (yes, no) = (vote(20, 30), vote(19, 30));
        assert_eq!(
            code(
                &collective,
                &Terms {
                    consent: Some(&yes),
                    ..terms()
                }
            ),
            "ok"
        );
        assert_eq!(
            code(
                &collective,
                &Terms {
                    consent: Some(&no),
                    ..terms()
                }
            ),
            "consent_missing"
        );
    }

    #[test]
    fn counts_that_cannot_be_true() {
        let collective = [ParcelFacts {
            management_form: "collective",
            ..parcel()
        }];
        let vote = |f, c, e| Consent::VillageAssembly {
            meeting_date: date("2026-10-01"),
            votes_for: f,
            votes_cast: c,
            votes_eligible: e,
            document_ref: "x".into(),
        };
        for (f, c, e) in [
            (55, None, 40),
            (30, Some(29), 40),
            (30, Some(41), 40),
            (-1, None, 40),
            (0, None, 0),
            (30, Some(-5), 40),
        ] {
            let v = vote(f, c, e);
            assert!(v.impossible().is_some(), "{f} {c:?} {e}");
            assert_eq!(
                code(
                    &collective,
                    &Terms {
                        consent: Some(&v),
                        ..terms()
                    }
                ),
                "impossible_count",
                "{f} {c:?} {e}"
            );
        }
        for (f, c, e) in [(40, None, 40), (27, Some(35), 40), (27, Some(27), 40)] {
            assert_eq!(vote(f, c, e).impossible(), None, "{f} {c:?} {e}");
        }
    }
}
