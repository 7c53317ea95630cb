//! Credit enhancement of pledges and forest mortgages: guarantees (银担分险) and loan-guarantee or
//! forest insurance, recorded by the lender or an operator, shown to the parties with the
//! encumbrance, and, once the lender has declared its claim, who owes what of the shortfall
//! ([`rules::split_shortfall`]).

pub mod routes;
pub mod rules;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::collateral::PledgeRow;
use crate::db::DbConn;
use crate::error::ApiResult;
use crate::forest::MortgageRow;
use crate::kernel::amount::Dec;
use crate::schema::{
    credit_enhancements as ce, forest_mortgage_entries as fe, pledge_entries as pe,
};
use rules::{Cover, Kind};

/// What an enhancement is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encumbrance {
    Pledge,
    ForestMortgage,
}

impl Encumbrance {
    pub fn as_str(self) -> &'static str {
        match self {
            Encumbrance::Pledge => "pledge",
            Encumbrance::ForestMortgage => "forest_mortgage",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ce)]
pub struct EnhancementRow {
    pub id: i64,
    pub encumbrance_kind: String,
    pub encumbrance_id: i64,
    pub kind: String,
    pub guarantor_id: Option<i64>,
    pub guaranteed_share_bp: Option<i32>,
    pub insurer: Option<String>,
    pub policy_no: Option<String>,
    pub amount: i64,
    pub beneficiary_id: Option<i64>,
    pub term_from: NaiveDate,
    pub term_to: NaiveDate,
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

/// One guarantee or insurance policy on a pledge or forest mortgage.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EnhancementView {
    pub id: i64,
    /// `pledge` or `forest_mortgage`.
    pub encumbrance: String,
    pub encumbrance_id: i64,
    pub kind: Kind,
    /// Guarantees: the guarantor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantor_party_id: Option<i64>,
    /// Guarantees: the guarantor's share of a loss, in percent (80.00 for an 80/20 split).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guaranteed_share_percent: Option<Dec>,
    /// Insurance: the insurer and the policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insurer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_no: Option<String>,
    /// The guaranteed or insured amount: the most it pays.
    pub amount: Dec,
    /// Insurance: the beneficiary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beneficiary_party_id: Option<i64>,
    pub term_from: NaiveDate,
    pub term_to: NaiveDate,
    pub recorded_by: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

impl EnhancementView {
    pub fn of(r: EnhancementRow) -> EnhancementView {
        EnhancementView {
            id: r.id,
            encumbrance: r.encumbrance_kind,
            encumbrance_id: r.encumbrance_id,
            kind: Kind::parse(&r.kind).unwrap_or(Kind::Guarantee),
            guarantor_party_id: r.guarantor_id,
            guaranteed_share_percent: r.guaranteed_share_bp.map(|bp| Dec::money(i64::from(bp))),
            insurer: r.insurer,
            policy_no: r.policy_no,
            amount: Dec::money(r.amount),
            beneficiary_party_id: r.beneficiary_id,
            term_from: r.term_from,
            term_to: r.term_to,
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at.and_utc(),
        }
    }
}

/// What one guarantor or insurer owes of the shortfall.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwedView {
    pub enhancement_id: i64,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantor_party_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insurer: Option<String>,
    pub owes: Dec,
}

/// Who owes what once the lender has declared its claim: the shortfall of the claim after what
/// the collateral's sale paid the lender (before the sale, the whole claim: the most each would
/// owe), met by insurance naming the lender first, then shared by guarantors, the rest borne by
/// the bank.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ShortfallView {
    /// The day the lender declared default: covers in force on it count.
    pub default_on: NaiveDate,
    pub claim_amount: Dec,
    /// What the collateral's proceeds paid the lender (0 before the sale).
    pub recovered: Dec,
    pub shortfall: Dec,
    pub owed: Vec<OwedView>,
    pub lender_bears: Dec,
}

/// The credit enhancement of one encumbrance, as its parties and operators see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreditEnhancement {
    pub items: Vec<EnhancementView>,
    /// Once enforcement began.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortfall: Option<ShortfallView>,
}

pub fn list(conn: &mut DbConn, on: Encumbrance, id: i64) -> QueryResult<Vec<EnhancementRow>> {
    ce::table
        .filter(ce::encumbrance_kind.eq(on.as_str()))
        .filter(ce::encumbrance_id.eq(id))
        .order(ce::id)
        .select(EnhancementRow::as_select())
        .load(conn)
}

fn cover(r: &EnhancementRow, lender: i64) -> Cover {
    let kind = Kind::parse(&r.kind).unwrap_or(Kind::Guarantee);
    Cover {
        id: r.id,
        kind,
        share_bp: r.guaranteed_share_bp.unwrap_or(0),
        amount: r.amount,
        term_from: r.term_from,
        term_to: r.term_to,
        pays_lender: r.beneficiary_id == Some(lender),
    }
}

fn summary(
    rows: Vec<EnhancementRow>,
    lender: i64,
    claim: Option<i64>,
    recovered: Option<i64>,
    default_on: Option<NaiveDate>,
) -> Option<CreditEnhancement> {
    if rows.is_empty() {
        return None;
    }
    let shortfall = match (claim, default_on) {
        (Some(claim), Some(day)) => {
            let covers: Vec<Cover> = rows.iter().map(|r| cover(r, lender)).collect();
            let recovered = recovered.unwrap_or(0);
            let s = rules::split_shortfall(claim, recovered, &covers, day);
            Some(ShortfallView {
                default_on: day,
                claim_amount: Dec::money(claim),
                recovered: Dec::money(recovered),
                shortfall: Dec::money(s.shortfall),
                owed: s
                    .owed
                    .iter()
                    .zip(&rows)
                    .map(|(o, r)| OwedView {
                        enhancement_id: o.id,
                        kind: o.kind,
                        guarantor_party_id: r.guarantor_id,
                        insurer: r.insurer.clone(),
                        owes: Dec::money(o.owes),
                    })
                    .collect(),
                lender_bears: Dec::money(s.lender_bears),
            })
        }
        _ => None,
    };
    Some(CreditEnhancement {
        items: rows.into_iter().map(EnhancementView::of).collect(),
        shortfall,
    })
}

/// The pledge's credit enhancement (None when it has none): the hook of the pledge views.
pub fn for_pledge(conn: &mut DbConn, p: &PledgeRow) -> ApiResult<Option<CreditEnhancement>> {
    let rows = list(conn, Encumbrance::Pledge, p.id)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let default_on: Option<NaiveDateTime> = pe::table
        .filter(pe::pledge_id.eq(p.id))
        .filter(pe::kind.eq("enforcement"))
        .select(diesel::dsl::min(pe::at))
        .first(conn)?;
    Ok(summary(
        rows,
        p.lender_id,
        p.claim_amount,
        p.paid_to_lender,
        default_on.map(|t| t.date()),
    ))
}

/// The forest mortgage's credit enhancement (None when it has none): the hook of its views.
pub fn for_mortgage(conn: &mut DbConn, m: &MortgageRow) -> ApiResult<Option<CreditEnhancement>> {
    let rows = list(conn, Encumbrance::ForestMortgage, m.id)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let default_on: Option<NaiveDateTime> = fe::table
        .filter(fe::mortgage_id.eq(m.id))
        .filter(fe::kind.eq("enforcement"))
        .select(diesel::dsl::min(fe::at))
        .first(conn)?;
    Ok(summary(
        rows,
        m.lender_id,
        m.claim_amount,
        m.paid_to_lender,
        default_on.map(|t| t.date()),
    ))
}
