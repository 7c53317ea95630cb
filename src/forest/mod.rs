//! Forest rights (林权) as collateral: the parcel registry and forest-rights mortgages (林权抵押),
//! which share the lender API (search, verification, certificates, webhooks) with pledges.

pub mod freezes;
pub mod mortgages;
pub mod parcels;
pub mod products;
pub mod rules;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::error::ApiResult;
use crate::schema::{
    forest_mortgage_entries as fe, forest_mortgage_parcels as fmp, forest_mortgages as fm,
    forest_parcels as fp,
};

/// Mortgage statuses that burden a parcel and show in searches. `pending_confirmation`: the
/// official registration is entered but not yet confirmed by an operator, so it has no rank.
pub const LIVE: [&str; 4] = [
    "pending_official_registration",
    "pending_confirmation",
    "registered",
    "enforcing",
];
/// Statuses that hold a rank (officially registered).
pub const RANKED: [&str; 2] = ["registered", "enforcing"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = fp)]
pub struct ParcelRow {
    pub id: i64,
    pub certificate_no: String,
    pub holder_id: i64,
    pub rights: String,
    pub county_code: String,
    pub township: String,
    pub village: String,
    pub compartment: String,
    pub sub_compartment: String,
    pub place_name: Option<String>,
    pub area_mu: i64,
    pub forest_category: String,
    pub commercial_kind: Option<String>,
    pub origin: String,
    pub dominant_species: String,
    pub age_group: Option<String>,
    pub stock_volume: i64,
    pub woodland_term_end: NaiveDate,
    pub ownership: String,
    pub management_form: String,
    pub registered: bool,
    pub disputed: bool,
    pub boundary: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `active`, or `split` once divided into new parcels.
    pub status: String,
    pub split_from: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = fm)]
pub struct MortgageRow {
    pub id: i64,
    pub registration_no: Option<String>,
    pub mortgagor_id: i64,
    pub lender_id: i64,
    pub status: String,
    pub secured_amount: Option<i64>,
    pub loan_start: Option<NaiveDate>,
    pub loan_end: Option<NaiveDate>,
    pub appraisal_value: Option<i64>,
    pub appraiser: Option<String>,
    pub appraisal_kind: Option<String>,
    pub appraisal_date: Option<NaiveDate>,
    pub appraisal_report_no: Option<String>,
    pub insurance_policy_no: Option<String>,
    pub insurer: Option<String>,
    pub insured_amount: Option<i64>,
    pub insurance_beneficiary_id: Option<i64>,
    pub consent: Option<String>,
    pub transfer_ban: bool,
    pub official_certificate_no: Option<String>,
    pub official_registered_at: Option<NaiveDateTime>,
    pub claim_amount: Option<i64>,
    pub claim_detail: Option<String>,
    pub proceeds: Option<i64>,
    pub paid_to_lender: Option<i64>,
    pub paid_to_mortgagor: Option<i64>,
    pub verification_code: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// When the lender completed the terms: an official registration cannot be earlier (R14).
    pub completed_at: Option<NaiveDateTime>,
    /// Who entered the official registration (when: its entry).
    pub official_entered_by: Option<String>,
    /// The operator who confirmed it (never the one who entered it); only then does it rank.
    pub official_confirmed_by: Option<String>,
}

pub fn parcel(conn: &mut DbConn, id: i64) -> QueryResult<Option<ParcelRow>> {
    fp::table
        .find(id)
        .select(ParcelRow::as_select())
        .first(conn)
        .optional()
}

pub fn mortgage(conn: &mut DbConn, id: i64) -> QueryResult<Option<MortgageRow>> {
    <MortgageRow as crate::collateral::encumbrance::Encumbrance>::find(conn, id)
}

pub fn mortgage_by_registration(conn: &mut DbConn, no: &str) -> QueryResult<Option<MortgageRow>> {
    fm::table
        .filter(fm::registration_no.eq(no))
        .select(MortgageRow::as_select())
        .first(conn)
        .optional()
}

/// The parcels a mortgage burdens, with the rank each had when it was registered.
pub fn mortgage_parcels(
    conn: &mut DbConn,
    mortgage_id: i64,
) -> QueryResult<Vec<(ParcelRow, Option<i32>)>> {
    fmp::table
        .inner_join(fp::table)
        .filter(fmp::mortgage_id.eq(mortgage_id))
        .order(fp::id)
        .select((ParcelRow::as_select(), fmp::rank_at_registration))
        .load(conn)
}

/// Mortgages on a parcel with the given statuses, in rank order: official registration time, then id (R9, R14).
pub fn mortgages_on(
    conn: &mut DbConn,
    parcel_id: i64,
    statuses: &[&str],
) -> QueryResult<Vec<MortgageRow>> {
    fm::table
        .filter(
            fm::id.eq_any(
                fmp::table
                    .filter(fmp::parcel_id.eq(parcel_id))
                    .select(fmp::mortgage_id),
            ),
        )
        .filter(fm::status.eq_any(statuses.iter().map(|s| s.to_string()).collect::<Vec<_>>()))
        .order((fm::official_registered_at.asc(), fm::id.asc()))
        .select(MortgageRow::as_select())
        .load(conn)
}

/// The current rank of a mortgage on a parcel: its place among the registered mortgages still
/// burdening it. A released earlier mortgage moves the later ones up.
pub fn current_rank(
    conn: &mut DbConn,
    parcel_id: i64,
    mortgage_id: i64,
) -> QueryResult<Option<i32>> {
    let ranked = mortgages_on(conn, parcel_id, &RANKED)?;
    Ok(ranked
        .iter()
        .position(|m| m.id == mortgage_id)
        .map(|i| i as i32 + 1))
}

pub use crate::collateral::encumbrance::add_entry;
pub use products::execute as execute_lender_product;

impl crate::collateral::encumbrance::Encumbrance for MortgageRow {
    const OBJECT: &'static str = "forest_mortgage";
    const NOUN: &'static str = "forest mortgage";
    const STATUS_CODE: &'static str = "mortgage_status";
    const STATUS_NOUN: &'static str = "mortgage";
    type View = mortgages::MortgageView;
    type Filter = ();
    type Locked = ();

    fn id(&self) -> i64 {
        self.id
    }
    fn status(&self) -> &str {
        &self.status
    }
    fn holder_id(&self) -> i64 {
        self.mortgagor_id
    }
    fn lender_id(&self) -> i64 {
        self.lender_id
    }
    fn registration_no(&self) -> Option<&str> {
        self.registration_no.as_deref()
    }
    /// A mortgage has its own chain (it may burden several parcels).
    fn chain(&self) -> String {
        format!("forest_mortgage:{}", self.id)
    }
    /// Every parcel it burdens, in id order so that two mortgages never deadlock: changes of
    /// mortgages and holders on a parcel queue there.
    fn lock_collateral(&self, conn: &mut DbConn, now: NaiveDateTime) -> ApiResult<()> {
        let mut parcel_ids: Vec<i64> = fmp::table
            .filter(fmp::mortgage_id.eq(self.id))
            .select(fmp::parcel_id)
            .load(conn)?;
        parcel_ids.sort_unstable();
        for p in parcel_ids {
            diesel::update(fp::table.find(p))
                .set(fp::updated_at.eq(now))
                .execute(conn)?;
        }
        Ok(())
    }
    fn view(conn: &mut DbConn, row: Self) -> ApiResult<mortgages::MortgageView> {
        mortgages::view(conn, row)
    }
    fn view_id(view: &mortgages::MortgageView) -> i64 {
        view.id
    }
    crate::encumbrance_table!(table: fm, holder: mortgagor_id, lender: lender_id,
        entries: fe.mortgage_id);
}

/// The holders of a parcel and their shares in basis points (10000 = the whole).
pub fn holders(conn: &mut DbConn, parcel_id: i64) -> QueryResult<Vec<(i64, i32)>> {
    use crate::schema::parcel_holders as ph;
    ph::table
        .filter(ph::parcel_id.eq(parcel_id))
        .order(ph::party_id)
        .select((ph::party_id, ph::share_bp))
        .load(conn)
}

/// Replaces a parcel's holders; the first is its representative holder (`holder_id`).
pub fn set_holders(conn: &mut DbConn, parcel_id: i64, holders: &[(i64, i32)]) -> QueryResult<()> {
    use crate::schema::parcel_holders as ph;
    diesel::delete(ph::table.filter(ph::parcel_id.eq(parcel_id))).execute(conn)?;
    for (party, share) in holders {
        diesel::insert_into(ph::table)
            .values((
                ph::parcel_id.eq(parcel_id),
                ph::party_id.eq(party),
                ph::share_bp.eq(share),
            ))
            .execute(conn)?;
    }
    if let Some((first, _)) = holders.first() {
        diesel::update(fp::table.find(parcel_id))
            .set(fp::holder_id.eq(first))
            .execute(conn)?;
    }
    Ok(())
}

/// Ids of the parcels `party` holds, alone or with others, as a subquery expression (a macro:
/// a boxed subquery cannot be embedded in another query on the multi-backend connection).
#[macro_export]
macro_rules! parcels_held_by {
    ($party:expr) => {
        $crate::schema::parcel_holders::table
            .filter($crate::schema::parcel_holders::party_id.eq($party))
            .select($crate::schema::parcel_holders::parcel_id)
    };
}

/// Ids of the parcels `lender` has a relation to: every parcel of a mortgage (or a mortgage
/// application) naming it as lender, as a subquery expression (a macro for the same reason as
/// [`parcels_held_by`]). A holder's application is how a bank comes to know a parcel.
#[macro_export]
macro_rules! parcels_lent_on_by {
    ($lender:expr) => {
        $crate::schema::forest_mortgage_parcels::table
            .filter(
                $crate::schema::forest_mortgage_parcels::mortgage_id.eq_any(
                    $crate::schema::forest_mortgages::table
                        .filter($crate::schema::forest_mortgages::lender_id.eq($lender))
                        .select($crate::schema::forest_mortgages::id),
                ),
            )
            .select($crate::schema::forest_mortgage_parcels::parcel_id)
    };
}

/// True when `who` may see parcel `parcel_id`: operators and regulators every parcel, a holder
/// (enterprise or individual) the parcels it holds, a bank the parcels of its mortgages and of
/// the applications made to it; nobody else any. Anything else is a 404 to the caller.
pub fn sees_parcel(
    conn: &mut DbConn,
    who: &crate::auth::Principal,
    parcel_id: i64,
) -> QueryResult<bool> {
    use crate::auth::Role;
    let Some(me) = who.party_id else {
        return Ok(who.role.sees_all());
    };
    let n: i64 = match who.role {
        r if r.sees_all() => return Ok(true),
        Role::Enterprise => fp::table
            .filter(fp::id.eq(parcel_id))
            .filter(fp::id.eq_any(parcels_held_by!(me)))
            .count()
            .get_result(conn)?,
        Role::Bank => fp::table
            .filter(fp::id.eq(parcel_id))
            .filter(fp::id.eq_any(parcels_lent_on_by!(me)))
            .count()
            .get_result(conn)?,
        _ => 0,
    };
    Ok(n > 0)
}
