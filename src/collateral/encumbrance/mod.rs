//! What every encumbrance of the registry shares — a pledge of rights (质押) and a forest-rights
//! mortgage (林权抵押) alike: finding one and hiding it from strangers, the state and lender
//! checks, the append-only entries (R8) with their webhooks and audit events, the default a lender
//! declares, the list page and the proceeds waterfall. Each kind implements [`Encumbrance`] with
//! its table bits (mostly through [`encumbrance_table!`]) and keeps only what differs: what is
//! encumbered (a quantity of a holding, or parcels), and its own registration checks (R11, R12).

pub mod court;
pub mod entries;
pub mod listing;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::json;

use crate::auth::{Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{money_to_fen, Dec};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::state::AppState;
use crate::proposals::{self, ProposalKind, ProposalView};

pub use entries::{add_entry, entry_views, Entry, EntryView, NewEntry};

/// One kind of encumbrance: the row of its table, and the few facts the shared behaviour needs.
pub trait Encumbrance: Sized + Send + 'static {
    /// Its name in webhook events, audit events and references (`pledge:12`).
    const OBJECT: &'static str;
    /// Its name in a 404 ("no such pledge").
    const NOUN: &'static str;
    /// The code of a 409 for an action its status does not allow, and the word in its detail.
    const STATUS_CODE: &'static str;
    const STATUS_NOUN: &'static str;
    /// The view its parties see.
    type View: Serialize + Send + 'static;
    /// A further list filter of the kind (none: `()`).
    type Filter: Send + 'static;
    /// What locking what it encumbers yields (a pledge: its lot).
    type Locked;

    fn id(&self) -> i64;
    fn status(&self) -> &str;
    /// Who gave the collateral (pledgor, mortgagor) and who lent on it.
    fn holder_id(&self) -> i64;
    fn lender_id(&self) -> i64;
    fn registration_no(&self) -> Option<&str>;
    /// The audit chain its entries join.
    fn chain(&self) -> String;

    fn find(conn: &mut DbConn, id: i64) -> diesel::QueryResult<Option<Self>>;
    /// Locks what it encumbers (a pledge its lot, a mortgage its parcels): changes of it, and of
    /// what else encumbers the same collateral, queue there.
    fn lock_collateral(&self, conn: &mut DbConn, now: NaiveDateTime) -> ApiResult<Self::Locked>;
    fn view(conn: &mut DbConn, row: Self) -> ApiResult<Self::View>;
    fn view_id(view: &Self::View) -> i64;

    fn last_seq(conn: &mut DbConn, id: i64) -> diesel::QueryResult<Option<i32>>;
    fn insert_entry(conn: &mut DbConn, id: i64, e: &NewEntry) -> diesel::QueryResult<usize>;
    fn entries(conn: &mut DbConn, id: i64) -> diesel::QueryResult<Vec<Entry>>;

    fn set_status(
        conn: &mut DbConn,
        id: i64,
        status: &str,
        at: NaiveDateTime,
    ) -> diesel::QueryResult<usize>;
    /// Enters default: status `enforcing` with the declared claim and its parts.
    fn set_claim(
        conn: &mut DbConn,
        id: i64,
        claim: i64,
        detail: &str,
        at: NaiveDateTime,
    ) -> diesel::QueryResult<usize>;
    /// A page of rows after id `after`, `party`'s only when given (as holder or lender).
    fn page(
        conn: &mut DbConn,
        after: i64,
        limit: i64,
        party: Option<i64>,
        status: Option<String>,
        filter: Self::Filter,
    ) -> diesel::QueryResult<Vec<Self>>;
}

/// The encumbrance, or a 404.
pub fn found<E: Encumbrance>(conn: &mut DbConn, id: i64) -> ApiResult<E> {
    E::find(conn, id)?.ok_or_else(|| ApiError::not_found(E::NOUN))
}

/// An encumbrance the caller is party to (or sees as operator/regulator); anyone else gets 404.
pub fn visible<E: Encumbrance>(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<E> {
    let e: E = found(conn, id)?;
    if who.sees_party(e.holder_id()) || who.sees_party(e.lender_id()) {
        Ok(e)
    } else {
        Err(ApiError::not_found(E::NOUN))
    }
}

/// Locks what encumbrance `id` encumbers, then re-reads it: every change of an encumbrance
/// queues there. With `who`, only one the caller may see (404 otherwise); without, for an approved
/// proposal's effect.
pub fn lock<E: Encumbrance>(
    conn: &mut DbConn,
    who: Option<&Principal>,
    id: i64,
    now: NaiveDateTime,
) -> ApiResult<(E, E::Locked)> {
    let e: E = match who {
        Some(who) => visible(conn, who, id)?,
        None => found(conn, id)?,
    };
    let locked = e.lock_collateral(conn, now)?;
    Ok((found(conn, id)?, locked))
}

/// Its view as the body of a write's answer.
pub fn outcome<E: Encumbrance>(conn: &mut DbConn, id: i64) -> ApiResult<Outcome> {
    let e: E = found(conn, id)?;
    Outcome::of(&E::view(conn, e)?)
}

pub fn require_status<E: Encumbrance>(e: &E, allowed: &[&str]) -> ApiResult<()> {
    if allowed.contains(&e.status()) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            E::STATUS_CODE,
            format!("the {} is {}", E::STATUS_NOUN, e.status()),
        ))
    }
}

pub fn require_lender<E: Encumbrance>(who: &Principal, e: &E) -> ApiResult<()> {
    if who.role == Role::Bank && who.party_id == Some(e.lender_id()) {
        Ok(())
    } else {
        Err(ApiError::forbidden("only the lender may do this"))
    }
}

pub fn set_status<E: Encumbrance>(
    conn: &mut DbConn,
    id: i64,
    status: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    E::set_status(conn, id, status, at)?;
    Ok(())
}

/// A change of status only: from one of `from` to `to`, recorded as entry `kind`.
pub fn transition<E: Encumbrance>(
    conn: &mut DbConn,
    e: &E,
    from: &[&str],
    to: &str,
    entry: (&str, serde_json::Value),
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<Outcome> {
    require_status(e, from)?;
    set_status::<E>(conn, e.id(), to, at)?;
    recorded(conn, e, entry.0, entry.1, actor, at)
}

/// Who may apply for an encumbrance: a lender that is a registered bank, and two parties that
/// still exist (neither merged, split nor otherwise ended).
pub fn require_applying_parties(conn: &mut DbConn, holder: i64, lender: i64) -> ApiResult<()> {
    let bank = crate::parties::store::find(conn, lender)?.filter(|p| p.kind == "bank");
    if bank.is_none() {
        return Err(ApiError::invalid_field(
            "lender_party_id",
            "not a registered bank",
        ));
    }
    crate::parties::store::require_active(conn, holder)?;
    crate::parties::store::require_active(conn, lender)?;
    Ok(())
}

/// A lender's declared claim on default (Civil Code art. 389): principal, interest and costs.
pub struct Claim {
    /// Their sum, in fen.
    pub fen: i64,
    /// The three parts as declared, stored with the claim.
    pub detail: String,
}

impl Claim {
    pub fn declared(principal: Dec, interest: Dec, costs: Dec) -> ApiResult<Claim> {
        let parts = [
            ("principal", principal),
            ("interest", interest),
            ("costs", costs),
        ];
        let mut fen = 0i64;
        for (field, v) in parts {
            fen = fen
                .checked_add(
                    money_to_fen(v.0, true)
                        .map_err(|e| ApiError::invalid_field(field, e.to_string()))?,
                )
                .ok_or_else(|| ApiError::invalid_field(field, "is too large"))?;
        }
        let detail =
            json!({"principal": principal, "interest": interest, "costs": costs}).to_string();
        Ok(Claim { fen, detail })
    }
}

/// Default: a registered encumbrance enters enforcement with the lender's claim (the caller has
/// locked it and checked the lender).
pub fn enter_enforcement<E: Encumbrance>(
    conn: &mut DbConn,
    e: &E,
    claim: &Claim,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<Outcome> {
    require_status(e, &["registered"])?;
    E::set_claim(conn, e.id(), claim.fen, &claim.detail, at)?;
    recorded(
        conn,
        e,
        "enforcement",
        json!({"claim": claim.fen}),
        actor,
        at,
    )
}

/// Appends the entry and answers with the encumbrance as it now is.
pub fn recorded<E: Encumbrance>(
    conn: &mut DbConn,
    e: &E,
    kind: &str,
    details: serde_json::Value,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<Outcome> {
    add_entry(conn, e, kind, details, actor, at)?;
    outcome::<E>(conn, e.id())
}

/// The lender declares default (`POST …/{id}/enforce`): the encumbrance, locked and checked to be
/// the caller's as lender and to pass `check` (a pledge's amendment code, when given), enters
/// enforcement with the claim declared (principal, interest, costs).
pub async fn enforce<E: Encumbrance>(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: i64,
    body_hash: &str,
    [principal, interest, costs]: [Dec; 3],
    check: impl FnOnce(&E) -> ApiResult<()> + Send + 'static,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let claim = Claim::declared(principal, interest, costs)?;
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        body_hash,
        KeyPolicy::Required,
        StatusCode::OK,
        move |conn| {
            let (e, _) = lock::<E>(conn, Some(&w), id, now)?;
            require_lender(&w, &e)?;
            check(&e)?;
            enter_enforcement(conn, &e, &claim, &actor, now)
        },
    )
    .await
}

/// An operator proposes a change that a second operator's approval carries out (a disposal, the
/// lift of a freeze): `asked` checks it now and gives what the proposal stores.
pub async fn propose<T: Serialize>(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body_hash: &str,
    kind: ProposalKind,
    asked: impl FnOnce(&mut DbConn, NaiveDateTime) -> ApiResult<T> + Send + 'static,
) -> ApiResult<HttpResponse> {
    let now = db::now_micros(state.clock.now());
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        body_hash,
        KeyPolicy::Required,
        StatusCode::ACCEPTED,
        move |conn| {
            let asked = asked(conn, now)?;
            let row = proposals::propose(conn, kind, &asked, None, &w, now)?;
            Outcome::of(&ProposalView::from(row))
        },
    )
    .await
}

/// Implements the table bits of [`Encumbrance`] for a kind: its table, its two parties' columns,
/// its entries table and the column there naming it, and an optional further filter column.
#[macro_export]
macro_rules! encumbrance_table {
    (table: $t:ident, holder: $holder:ident, lender: $lender:ident,
     entries: $et:ident . $owner:ident $(, filter: $fcol:ident)?) => {
        fn find(conn: &mut DbConn, id: i64) -> diesel::QueryResult<Option<Self>> {
            $t::table
                .find(id)
                .select(Self::as_select())
                .first(conn)
                .optional()
        }
        fn last_seq(conn: &mut DbConn, id: i64) -> diesel::QueryResult<Option<i32>> {
            $et::table
                .filter($et::$owner.eq(id))
                .select(diesel::dsl::max($et::seq))
                .first(conn)
        }
        fn insert_entry(
            conn: &mut DbConn,
            id: i64,
            e: &$crate::collateral::encumbrance::NewEntry,
        ) -> diesel::QueryResult<usize> {
            diesel::insert_into($et::table)
                .values((
                    $et::$owner.eq(id),
                    $et::seq.eq(e.seq),
                    $et::kind.eq(e.kind),
                    $et::details.eq(&e.details),
                    $et::actor.eq(e.actor),
                    $et::at.eq(e.at),
                ))
                .execute(conn)
        }
        fn entries(
            conn: &mut DbConn,
            id: i64,
        ) -> diesel::QueryResult<Vec<$crate::collateral::encumbrance::Entry>> {
            $et::table
                .filter($et::$owner.eq(id))
                .order($et::seq)
                .select(($et::seq, $et::kind, $et::details, $et::actor, $et::at))
                .load(conn)
        }
        fn set_status(
            conn: &mut DbConn,
            id: i64,
            status: &str,
            at: chrono::NaiveDateTime,
        ) -> diesel::QueryResult<usize> {
            diesel::update($t::table.find(id))
                .set(($t::status.eq(status), $t::updated_at.eq(at)))
                .execute(conn)
        }
        fn set_claim(
            conn: &mut DbConn,
            id: i64,
            claim: i64,
            detail: &str,
            at: chrono::NaiveDateTime,
        ) -> diesel::QueryResult<usize> {
            diesel::update($t::table.find(id))
                .set((
                    $t::status.eq("enforcing"),
                    $t::claim_amount.eq(claim),
                    $t::claim_detail.eq(detail),
                    $t::updated_at.eq(at),
                ))
                .execute(conn)
        }
        fn page(
            conn: &mut DbConn,
            after: i64,
            limit: i64,
            party: Option<i64>,
            status: Option<String>,
            filter: Self::Filter,
        ) -> diesel::QueryResult<Vec<Self>> {
            let mut query = $t::table
                .filter($t::id.gt(after))
                .order($t::id)
                .limit(limit + 1)
                .select(Self::as_select())
                .into_boxed();
            if let Some(me) = party {
                query = query.filter($t::$holder.eq(me).or($t::$lender.eq(me)));
            }
            if let Some(s) = status {
                query = query.filter($t::status.eq(s));
            }
            let _ = &filter;
            $(if let Some(f) = filter {
                query = query.filter($t::$fcol.eq(f));
            })?
            query.load(conn)
        }
    };
}
