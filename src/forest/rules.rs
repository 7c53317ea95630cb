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

/// One parcel of a disposal: what it sold for and the registered mortgages on it, in that
/// parcel's rank order (R9, R14).
#[derive(Debug, Clone)]
pub struct ParcelSale {
    pub parcel_id: i64,
    pub proceeds: i64,
    pub ranked: Vec<i64>,
}

/// A payment to a mortgagee out of one parcel's proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    pub mortgage_id: i64,
    pub parcel_id: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waterfall {
    pub payments: Vec<Payment>,
    /// What is left of each parcel's proceeds, due to that parcel's holder: (parcel, amount).
    pub to_holders: Vec<(i64, i64)>,
}

impl Waterfall {
    /// Everything paid to one mortgagee, over all parcels.
    pub fn paid_to(&self, mortgage_id: i64) -> i64 {
        self.payments
            .iter()
            .filter(|p| p.mortgage_id == mortgage_id)
            .map(|p| p.amount)
            .sum()
    }
}

/// R13 for forest parcels. Proceeds are never pooled: each parcel's proceeds pay the mortgages on
/// that parcel, by their ranks on that parcel, each up to what is still owed on its claim (a
/// mortgage on several parcels is paid from them in the order given, here by parcel id, until
/// its claim is met); what is left of each parcel is due to that parcel's holder. A mortgage that
/// does not burden a parcel is never paid from it, whatever it ranks elsewhere. `claims` are
/// (mortgage, outstanding claim with its registered secured amount); a mortgage without one is
/// owed nothing, and none is owed more than its registration secures (the rule pledges share,
/// [`SecuredClaim::payable`]): the excess is unsecured and goes after every registered mortgage,
/// so what is left is the holder's.
pub fn waterfall(parcels: &[ParcelSale], claims: &[(i64, SecuredClaim)]) -> Waterfall {
    let mut owed: Vec<(i64, i64)> = claims.iter().map(|(m, c)| (*m, c.payable())).collect();
    let mut payments = Vec::new();
    let mut to_holders = Vec::new();
    for sale in parcels {
        let mut left = sale.proceeds.max(0);
        for m in &sale.ranked {
            let Some(entry) = owed.iter_mut().find(|(id, _)| id == m) else {
                continue;
            };
            let amount = entry.1.min(left);
            if amount > 0 {
                entry.1 -= amount;
                left -= amount;
                payments.push(Payment {
                    mortgage_id: *m,
                    parcel_id: sale.parcel_id,
                    amount,
                });
            }
        }
        to_holders.push((sale.parcel_id, left));
    }
    Waterfall {
        payments,
        to_holders,
    }
}

/// The 不动产登记证明号 as compared and stored (R14: one number, one mortgage). Clerks and banks
/// type it with full-width or half-width brackets and digits, with or without spaces; all of these
/// are the same certificate. Full-width ASCII forms (U+FF01–U+FF5E) become their ASCII letters,
/// and every space (the ideographic space U+3000 included) is removed; Chinese characters stay.
pub fn certificate_number(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// Whether two certificate numbers name one certificate: the same in the registry's comparison
/// form of document identifiers (`kernel::text::document_key`: full-width forms, bracket variants,
/// spaces and invisible characters such as a zero-width space folded away) once every run of
/// digits loses its leading zeros (the official form pads the serial to seven digits,
/// `第0002871号`, which clerks also type as `第2871号`).
pub fn same_certificate(a: &str, b: &str) -> bool {
    certificate_key(a) == certificate_key(b)
}

/// The form in which a parcel's certificate number is kept unique: [`same_certificate`] holds
/// exactly when two numbers have one key.
pub fn certificate_key(raw: &str) -> String {
    crate::kernel::text::document_key(raw)
}

/// What a sale of some parcels leaves of a mortgage that burdened them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSale {
    /// Disposed: no parcel under it remains, or its claim is paid in full.
    Ends,
    /// Still registered on the parcels not sold, securing what is still unpaid.
    Remains,
}

/// R13 with R9: a sale ends a mortgage only on the parcels sold. A mortgage that also burdens
/// other parcels lives on there (at its rank on each) until its claim is paid in full, since
/// selling one parcel must not free another of its senior mortgage. `parcels_left`: parcels it
/// still burdens after the sale; `claim`: what it was owed before; `paid`: what the sale paid it.
pub fn after_sale(parcels_left: usize, claim: i64, paid: i64) -> AfterSale {
    if parcels_left == 0 || paid >= claim {
        AfterSale::Ends
    } else {
        AfterSale::Remains
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_product_cap_stays_below_the_whole_value() {
        assert!(ltv_cap_allowed(DEFAULT_LTV_CAP_BP));
        assert!(ltv_cap_allowed(7_000));
        assert!(!ltv_cap_allowed(7_001));
        assert!(!ltv_cap_allowed(10_000));
        assert!(!ltv_cap_allowed(0));
    }

    #[test]
    fn padded_and_unpadded_serials_are_one_certificate() {
        let official = "闽(2026)顺昌县不动产证明第0002871号";
        assert!(same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第2871号"
        ));
        assert!(same_certificate(
            official,
            "闽（2026）顺昌县 不动产证明第０２８７１号"
        ));
        assert!(!same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第2872号"
        ));
        assert!(!same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第28710号"
        ));
        assert!(same_certificate(
            official,
            "闽(2026)顺昌县不动产证明第000\u{200B}2871号"
        ));
        assert!(same_certificate(
            official,
            "\u{FEFF}闽〔2026〕顺昌县不动产证明第2871\u{00AD}号"
        ));
        assert!(same_certificate("A-0", "A-000"));
        assert!(!same_certificate("A-0", "A-"));
        assert!(!same_certificate("A-10", "A-1"));
    }

    #[test]
    fn proceeds_stay_with_their_parcel() {
        // M1 ranks first on parcel B only; M2 covers A and B (second on B). A sells for 400k, B
        // for 100k: M1 is paid out of B alone (100k, never 200k of A's money), M2 its 300k out
        // of A, and A's holder the rest of A.
        let (a, b, m1, m2) = (1, 2, 11, 12);
        let sales = [
            ParcelSale {
                parcel_id: a,
                proceeds: 40_000_000,
                ranked: vec![m2],
            },
            ParcelSale {
                parcel_id: b,
                proceeds: 10_000_000,
                ranked: vec![m1, m2],
            },
        ];
        let w = waterfall(
            &sales,
            &[(m1, secured(20_000_000)), (m2, secured(30_000_000))],
        );
        assert_eq!(w.paid_to(m1), 10_000_000);
        assert_eq!(w.paid_to(m2), 30_000_000);
        assert_eq!(w.to_holders, vec![(a, 10_000_000), (b, 0)]);
    }

    fn secured(claim: i64) -> SecuredClaim {
        SecuredClaim {
            claim,
            secured: claim,
        }
    }

    #[test]
    fn a_senior_takes_no_more_than_its_registered_secured_amount() {
        // M1, secured for 80,000 yuan, declares 9,000,000 yuan; the parcel sells for 200,000:
        // M1 takes 80,000, the junior M2 its 50,000 and the holder the 70,000 left.
        let (a, m1, m2) = (1, 11, 12);
        let sales = [ParcelSale {
            parcel_id: a,
            proceeds: 20_000_000,
            ranked: vec![m1, m2],
        }];
        let over = SecuredClaim {
            claim: 900_000_000,
            secured: 8_000_000,
        };
        let w = waterfall(&sales, &[(m1, over), (m2, secured(5_000_000))]);
        assert_eq!(w.paid_to(m1), 8_000_000);
        assert_eq!(w.paid_to(m2), 5_000_000);
        assert_eq!(w.to_holders, vec![(a, 7_000_000)]);
    }

    fn sales_and_claims() -> impl Strategy<Value = (Vec<ParcelSale>, Vec<(i64, SecuredClaim)>)> {
        // Up to 4 parcels and 4 mortgages; each mortgage burdens a non-empty subset of parcels;
        // ranks follow one registration order, restricted to each parcel.
        (1usize..=4, 1usize..=4).prop_flat_map(|(np, nm)| {
            (
                proptest::collection::vec(0i64..1_000_000, np),
                proptest::collection::vec((1u32..(1 << np), 0i64..1_000_000, 0i64..1_000_000), nm),
                Just((0..nm as i64).collect::<Vec<_>>()).prop_shuffle(),
            )
                .prop_map(move |(proceeds, mortgages, order)| {
                    let sales = (0..np)
                        .map(|p| ParcelSale {
                            parcel_id: p as i64,
                            proceeds: proceeds[p],
                            ranked: order
                                .iter()
                                .copied()
                                .filter(|m| mortgages[*m as usize].0 & (1 << p) != 0)
                                .collect(),
                        })
                        .collect();
                    let claims = mortgages
                        .iter()
                        .enumerate()
                        .map(|(m, (_, claim, secured))| {
                            (
                                m as i64,
                                SecuredClaim {
                                    claim: *claim,
                                    secured: *secured,
                                },
                            )
                        })
                        .collect();
                    (sales, claims)
                })
        })
    }

    proptest! {
        #[test]
        fn each_parcel_pays_only_its_own_by_its_ranks((sales, claims) in sales_and_claims()) {
            let w = waterfall(&sales, &claims);
            for s in &sales {
                let paid: i64 = w.payments.iter().filter(|p| p.parcel_id == s.parcel_id).map(|p| p.amount).sum();
                let rest = w.to_holders.iter().find(|(p, _)| *p == s.parcel_id).map(|(_, r)| *r).unwrap();
                // Nothing paid exceeds the parcel's proceeds; the rest goes to its holder.
                prop_assert_eq!(paid + rest, s.proceeds);
                prop_assert!(rest >= 0);
                // Only mortgages on the parcel are paid from it.
                prop_assert!(w.payments.iter().filter(|p| p.parcel_id == s.parcel_id).all(|p| s.ranked.contains(&p.mortgage_id)));
                // Ranks: a junior is paid from a parcel only once every senior on it is paid in full,
                // and the holder only once every mortgage on it is.
                for (i, m) in s.ranked.iter().enumerate() {
                    let from_here = w.payments.iter().any(|p| p.parcel_id == s.parcel_id && p.mortgage_id == *m);
                    if from_here || rest > 0 {
                        for senior in &s.ranked[..i] {
                            let claim = claims.iter().find(|(id, _)| id == senior).unwrap().1.payable();
                            prop_assert_eq!(w.paid_to(*senior), claim);
                        }
                    }
                }
                if rest > 0 {
                    for m in &s.ranked {
                        let claim = claims.iter().find(|(id, _)| id == m).unwrap().1.payable();
                        prop_assert_eq!(w.paid_to(*m), claim);
                    }
                }
            }
            // No claim is overpaid, and none is paid beyond its registered secured amount.
            for (m, c) in &claims {
                prop_assert!(w.paid_to(*m) <= c.claim.max(0));
                prop_assert!(w.paid_to(*m) <= c.secured.max(0));
            }
        }
    }

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

    #[test]
    fn certificate_numbers_in_full_width_or_with_spaces_are_the_same() {
        let ascii = "闽(2026)顺昌县不动产证明第0002871号";
        assert_eq!(
            certificate_number("闽（２０２６）顺昌县不动产证明第０００２８７１号"),
            ascii
        );
        assert_eq!(
            certificate_number(" 闽（2026）顺昌县\u{3000}不动产证明 第0002871号\t"),
            ascii
        );
        assert_eq!(certificate_number(ascii), ascii);
        // Other full-width punctuation maps too; Chinese characters and 〔〕 are not ASCII forms.
        assert_eq!(certificate_number("闽〔2026〕Ａ－１"), "闽〔2026〕A-1");
    }

    #[test]
    fn a_sale_ends_a_mortgage_only_where_it_sold_or_once_paid() {
        // Senior on parcels 1 and 2 (claim 250k); parcel 1 sells and pays it 200k: it stays on 2.
        assert_eq!(after_sale(1, 25_000_000, 20_000_000), AfterSale::Remains);
        // Paid in full: it ends although parcel 2 remains.
        assert_eq!(after_sale(1, 25_000_000, 25_000_000), AfterSale::Ends);
        // Every parcel sold: it ends, however little it received.
        assert_eq!(after_sale(0, 25_000_000, 0), AfterSale::Ends);
        // Nothing owed (no claim): nothing keeps it alive.
        assert_eq!(after_sale(1, 0, 0), AfterSale::Ends);
    }
}
