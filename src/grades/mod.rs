//! Environmental credit grades of parties (环保信用等级), recorded by regulators with their source
//! document and validity, append-only. Banks see the grade of the parties that applied to them
//! (pledgors, mortgagors), are told by webhook when a borrower is graded anew, and a red grade
//! bars pledging (see [`rules`]).

pub mod routes;
pub mod rules;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::schema::{environmental_credit_grades as ecg, forest_mortgages as fm, pledges as pl};
use rules::{Grade, PledgeStanding, Recorded};

/// The webhook event a bank receives when a party it lends to (or that applied to it) is graded.
pub const GRADE_EVENT: &str = "party.environmental_credit_graded";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ecg)]
pub struct GradeRow {
    pub id: i64,
    pub party_id: i64,
    pub grade: String,
    pub source_document: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub recorded_by: String,
    pub recorded_at: NaiveDateTime,
}

impl GradeRow {
    fn recorded(&self) -> Option<Recorded> {
        Grade::parse(&self.grade).map(|grade| Recorded {
            seq: self.id,
            grade,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
        })
    }
}

/// One recorded grade.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GradeView {
    pub id: i64,
    pub party_id: i64,
    pub grade: Grade,
    /// 环保诚信, 良好, 警示 or 不良.
    pub grade_zh: String,
    /// The grading decision or list it comes from.
    pub source_document: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub recorded_by: String,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

impl GradeView {
    pub fn of(r: GradeRow) -> Option<GradeView> {
        let grade = Grade::parse(&r.grade)?;
        Some(GradeView {
            id: r.id,
            party_id: r.party_id,
            grade,
            grade_zh: grade.name_zh().to_string(),
            source_document: r.source_document,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at.and_utc(),
        })
    }
}

/// A party's grade as a lender sees it beside a pledge or mortgage: the grade in force and, for a
/// yellow grade, the warning.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreditStanding {
    pub grade: Grade,
    pub grade_zh: String,
    pub source_document: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    /// Present for a yellow (警示) or red (不良) grade.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Every grade recorded for the party, oldest first.
pub fn history(conn: &mut DbConn, party: i64) -> QueryResult<Vec<GradeRow>> {
    ecg::table
        .filter(ecg::party_id.eq(party))
        .order(ecg::id)
        .select(GradeRow::as_select())
        .load(conn)
}

/// The grade in force on `day`, if any.
pub fn in_force(conn: &mut DbConn, party: i64, day: NaiveDate) -> QueryResult<Option<GradeRow>> {
    let rows = history(conn, party)?;
    let recs: Vec<Recorded> = rows.iter().filter_map(GradeRow::recorded).collect();
    let Some(current) = rules::in_force(&recs, day) else {
        return Ok(None);
    };
    Ok(rows.into_iter().find(|r| r.id == current.seq))
}

/// The standing shown to lenders beside an encumbrance; None for an ungraded party.
pub fn standing(
    conn: &mut DbConn,
    party: i64,
    day: NaiveDate,
) -> QueryResult<Option<CreditStanding>> {
    Ok(in_force(conn, party, day)?.and_then(|r| {
        let grade = Grade::parse(&r.grade)?;
        let warning = match rules::pledge_standing(Some(grade)) {
            PledgeStanding::Allowed => None,
            PledgeStanding::Warn => Some(format!(
                "environmental credit grade yellow (警示) since {}: weigh it in approval and post-loan management",
                r.valid_from
            )),
            PledgeStanding::Refused => Some(format!(
                "environmental credit grade red (不良) since {}: the party cannot pledge",
                r.valid_from
            )),
        };
        Some(CreditStanding {
            grade,
            grade_zh: grade.name_zh().to_string(),
            source_document: r.source_document,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            warning,
        })
    }))
}

/// The pledge rules' poor-environmental-credit bar: a party whose grade in force is red cannot
/// pledge (409 `pledgor_credit_red`).
pub fn check_may_pledge(conn: &mut DbConn, party: i64, day: NaiveDate) -> ApiResult<()> {
    let grade = in_force(conn, party, day)?.and_then(|r| Grade::parse(&r.grade));
    if rules::pledge_standing(grade) == PledgeStanding::Refused {
        return Err(ApiError::conflict(
            "pledgor_credit_red",
            "the pledgor's environmental credit grade is red (不良): it cannot pledge",
        ));
    }
    Ok(())
}

/// Pledge statuses in which the bank still deals with the pledgor (applied to it or lending).
const PLEDGE_OPEN: [&str; 3] = ["applied", "registered", "enforcing"];
/// Mortgage statuses that are over; every other one still ties the bank to the mortgagor.
const MORTGAGE_CLOSED: [&str; 6] = [
    "released",
    "lapsed",
    "disposed",
    "withdrawn",
    "declined",
    "rejected",
];

/// True when `bank` has ever been asked for or given credit against the party's collateral (a
/// pledge applied to it, a forest mortgage with it): it may then see the party's grades.
pub fn lender_deals_with(conn: &mut DbConn, bank: i64, party: i64) -> QueryResult<bool> {
    let pledges: i64 = pl::table
        .filter(pl::lender_id.eq(bank))
        .filter(pl::pledgor_id.eq(party))
        .count()
        .get_result(conn)?;
    if pledges > 0 {
        return Ok(true);
    }
    let mortgages: i64 = fm::table
        .filter(fm::lender_id.eq(bank))
        .filter(fm::mortgagor_id.eq(party))
        .count()
        .get_result(conn)?;
    // FINANCING REQUESTS: a bank that took the party's financing request (lending's tables) deals
    // with it too; add that look-up here when the financing requests are merged.
    Ok(mortgages > 0)
}

/// The banks that lend to the party or have its application before them now: they are told when
/// it is graded.
pub fn current_lenders(conn: &mut DbConn, party: i64) -> QueryResult<Vec<i64>> {
    let mut banks: Vec<i64> = pl::table
        .filter(pl::pledgor_id.eq(party))
        .filter(pl::status.eq_any(PLEDGE_OPEN))
        .select(pl::lender_id)
        .distinct()
        .load(conn)?;
    let more: Vec<i64> = fm::table
        .filter(fm::mortgagor_id.eq(party))
        .filter(fm::status.ne_all(MORTGAGE_CLOSED))
        .select(fm::lender_id)
        .distinct()
        .load(conn)?;
    banks.extend(more);
    // FINANCING REQUESTS: banks holding a taken financing request of the party belong here too.
    banks.sort_unstable();
    banks.dedup();
    Ok(banks)
}

/// What a regulator records.
pub struct NewGrade {
    pub party_id: i64,
    pub grade: Grade,
    pub source_document: String,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// Appends a grade, audits it and tells the party's current lenders, in the caller's transaction.
pub fn record(
    conn: &mut DbConn,
    g: &NewGrade,
    actor: &str,
    at: NaiveDateTime,
    today: NaiveDate,
) -> ApiResult<GradeRow> {
    let before = in_force(conn, g.party_id, today)?.map(|r| r.grade);
    diesel::insert_into(ecg::table)
        .values((
            ecg::party_id.eq(g.party_id),
            ecg::grade.eq(g.grade.as_str()),
            ecg::source_document.eq(&g.source_document),
            ecg::valid_from.eq(g.valid_from),
            ecg::valid_to.eq(g.valid_to),
            ecg::recorded_by.eq(actor),
            ecg::recorded_at.eq(at),
        ))
        .execute(conn)?;
    let row: GradeRow = ecg::table
        .filter(ecg::party_id.eq(g.party_id))
        .order(ecg::id.desc())
        .select(GradeRow::as_select())
        .first(conn)?;
    let after = in_force(conn, g.party_id, today)?.map(|r| r.grade);
    let payload = json!({
        "party_id": g.party_id, "grade_id": row.id, "grade": g.grade.as_str(),
        "source_document": g.source_document, "valid_from": g.valid_from, "valid_to": g.valid_to,
    });
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("party:{}", g.party_id),
            actor,
            action: "party.environmental_credit_graded",
            object_type: "environmental_credit_grade",
            object_id: row.id.to_string(),
            payload: payload.clone(),
            at,
        },
    )?;
    let data = json!({
        "party_id": g.party_id, "grade_id": row.id, "grade": g.grade.as_str(),
        "grade_zh": g.grade.name_zh(), "source_document": g.source_document,
        "valid_from": g.valid_from, "valid_to": g.valid_to,
        "previous_grade_in_force": before, "grade_in_force": after,
    });
    for bank in current_lenders(conn, g.party_id)? {
        crate::audit::outbox::enqueue(
            conn,
            bank,
            &format!("party:{}", g.party_id),
            GRADE_EVENT,
            data.clone(),
            at,
        )?;
    }
    Ok(row)
}
