//! HTTP: right types, lots (issuance proposals, history, serials, cancellations) and holdings.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::issuance::{self, CancelQuantity, IssueLot, LotView};
use super::serials;
use super::store::{self, HoldingFilter, HoldingRow, LotRow};
use crate::auth::{Command, Principal, Role};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{KeyPolicy, Outcome};
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;
use crate::proposals::{self, ProposalKind, ProposalView};
use crate::schema::{lots, movements as mv};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(right_types)
        .service(propose_issuance)
        .service(list_lots)
        .service(get_lot)
        .service(lot_history)
        .service(lot_serials)
        .service(propose_cancellation)
        .service(list_holdings)
        .service(party_holdings);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RightTypeView {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    /// Decimal places a quantity may carry.
    pub max_places: i32,
    /// Whether transfers need an operator's approval.
    pub requires_approval: bool,
    /// What `sub_kind` means for this type (pollutant, standard), if anything.
    pub sub_kind_label: Option<String>,
    pub sub_kinds: Vec<String>,
    /// Whether each unit carries a serial number.
    pub serialized: bool,
    /// Priced per unit per year of remaining term (R3).
    pub priced_per_year: bool,
}

#[utoipa::path(get, path = "/v1/right-types", tag = "rights", operation_id = "listRightTypes",
    summary = "The right types the registry knows",
    responses((status = 200, description = "Every right type", body = Vec<RightTypeView>)))]
#[get("/v1/right-types")]
async fn right_types(state: web::Data<AppState>, _who: Principal) -> ApiResult<HttpResponse> {
    let rows = state.db(|conn| Ok(store::right_types(conn)?)).await?;
    let out: Vec<RightTypeView> = rows
        .into_iter()
        .map(|t| RightTypeView {
            sub_kinds: t.sub_kinds(),
            code: t.code,
            name_zh: t.name_zh,
            name_en: t.name_en,
            unit: t.unit,
            max_places: t.max_places,
            requires_approval: t.requires_approval,
            sub_kind_label: t.sub_kind_label,
            serialized: t.serialized,
            priced_per_year: t.priced_per_year,
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

#[utoipa::path(post, path = "/v1/lots", tag = "rights", operation_id = "proposeIssuance",
    summary = "Propose issuing a lot (a second operator approves)",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = IssueLot,
    responses((status = 202, description = "Proposed; approve with POST /v1/proposals/{id}/approve", body = ProposalView),
        (status = 409, description = "duplicate_source (R2)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/lots")]
async fn propose_issuance(cmd: Command<IssueLot>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator])?;
    let now = cx.now;
    let request = body;
    let w = who.clone();
    cx.run(KeyPolicy::Optional, StatusCode::ACCEPTED, move |conn| {
        let plan = issuance::plan(conn, request)?;
        let row = proposals::propose(
            conn,
            ProposalKind::Issuance,
            &plan,
            Some(&plan.source_document),
            &w,
            now,
        )?;
        Outcome::of(&ProposalView::from(row))
    })
    .await
}

#[utoipa::path(post, path = "/v1/lots/{id}/cancellations", tag = "rights", operation_id = "proposeCancellation",
    summary = "Propose cancelling quantity of a holding (a second operator approves)",
    params(("id" = i64, Path, description = "Lot id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CancelQuantity,
    responses((status = 202, description = "Proposed", body = ProposalView)))]
#[post("/v1/lots/{id}/cancellations")]
async fn propose_cancellation(
    cmd: Command<CancelQuantity>,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator])?;
    let (lot_id, now) = (id.into_inner(), cx.now);
    let request = body;
    let w = who.clone();
    cx.run(KeyPolicy::Optional, StatusCode::ACCEPTED, move |conn| {
        let plan = issuance::plan_cancellation(conn, lot_id, request)?;
        let row = proposals::propose(conn, ProposalKind::Cancellation, &plan, None, &w, now)?;
        Outcome::of(&ProposalView::from(row))
    })
    .await
}

/// Loads a lot the caller may see: operators and regulators all, others the lots they hold.
fn visible_lot(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<LotRow> {
    let lot = store::lot(conn, id)?.ok_or_else(|| ApiError::not_found("lot"))?;
    let visible = who.role.sees_all()
        || who
            .party_id
            .map(|p| store::party_has_holding(conn, p, id))
            .transpose()?
            .unwrap_or(false);
    if visible {
        Ok(lot)
    } else {
        Err(ApiError::not_found("lot"))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LotQuery {
    pub right_type: Option<String>,
}

#[utoipa::path(get, path = "/v1/lots", tag = "rights", operation_id = "listLots",
    summary = "Lots (all for operators and regulators; the ones it holds for a party)",
    params(LotQuery, PageParams), responses((status = 200, description = "A page of lots", body = Page<LotView>)))]
#[get("/v1/lots")]
async fn list_lots(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<LotQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    use crate::schema::holdings as h;
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    let today = state.clock.today();
    let rows = state
        .db(move |conn| {
            let mut query = lots::table
                .filter(lots::id.gt(after))
                .order(lots::id)
                .limit(limit + 1)
                .select(LotRow::as_select())
                .into_boxed();
            if let Some(t) = q.right_type {
                query = query.filter(lots::right_type.eq(t));
            }
            if !who.role.sees_all() {
                let mine = h::table
                    .filter(h::party_id.eq(who.party_id.unwrap_or(-1)))
                    .select(h::lot_id);
                query = query.filter(lots::id.eq_any(mine));
            }
            Ok(query.load(conn)?)
        })
        .await?;
    Ok(Page::respond(
        rows.into_iter().map(|l| LotView::of(l, today)).collect(),
        limit,
        |l| l.id,
    ))
}

#[utoipa::path(get, path = "/v1/lots/{id}", tag = "rights", operation_id = "getLot", summary = "A lot",
    params(("id" = i64, Path, description = "Lot id")), responses((status = 200, description = "The lot", body = LotView)))]
#[get("/v1/lots/{id}")]
async fn get_lot(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let today = state.clock.today();
    let lot = state.db(move |conn| visible_lot(conn, &who, id)).await?;
    Ok(HttpResponse::Ok().json(LotView::of(lot, today)))
}

/// One row of the movement journal.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovementView {
    pub id: i64,
    pub from_party_id: Option<i64>,
    pub from_bucket: String,
    pub to_party_id: Option<i64>,
    pub to_bucket: String,
    pub quantity: Dec,
    pub cause: String,
    pub reference: String,
    pub serials: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

type MovementRow = (
    i64,
    Option<i64>,
    String,
    Option<i64>,
    String,
    i64,
    String,
    String,
    Option<String>,
    String,
    chrono::NaiveDateTime,
);

#[utoipa::path(get, path = "/v1/lots/{id}/history", tag = "rights", operation_id = "lotHistory",
    summary = "The movement journal of a lot (a party sees the movements it took part in)",
    params(("id" = i64, Path, description = "Lot id")), responses((status = 200, description = "Every movement, oldest first", body = Vec<MovementView>)))]
#[get("/v1/lots/{id}/history")]
async fn lot_history(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    let rows = state
        .db(move |conn| {
            visible_lot(conn, &who, id)?;
            let mut q = mv::table
                .filter(mv::lot_id.eq(id))
                .order(mv::id)
                .select((
                    mv::id,
                    mv::from_party_id,
                    mv::from_bucket,
                    mv::to_party_id,
                    mv::to_bucket,
                    mv::quantity,
                    mv::cause,
                    mv::reference,
                    mv::serials,
                    mv::actor,
                    mv::at,
                ))
                .into_boxed();
            if !who.role.sees_all() {
                let p = who.party_id.unwrap_or(-1);
                q = q.filter(mv::from_party_id.eq(p).or(mv::to_party_id.eq(p)));
            }
            Ok(q.load::<MovementRow>(conn)?)
        })
        .await?;
    let out: Vec<MovementView> = rows
        .into_iter()
        .map(|r| MovementView {
            id: r.0,
            from_party_id: r.1,
            from_bucket: r.2,
            to_party_id: r.3,
            to_bucket: r.4,
            quantity: Dec::qty(r.5),
            cause: r.6,
            reference: r.7,
            serials: r.8,
            actor: r.9,
            at: r.10.and_utc(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SerialRangeView {
    pub first: i64,
    pub last: i64,
    pub party_id: Option<i64>,
    /// available, listed, in_transfer, pledged, frozen, retired or cancelled.
    pub state: String,
}

/// The serial ranges of a carbon-sink lot and the registry's check of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SerialsView {
    pub lot_id: i64,
    pub ranges: Vec<SerialRangeView>,
    /// True when the ranges never overlap and cover exactly the issued quantity.
    pub tiles_issued: bool,
    /// True when each holder's ranges add up to its buckets, and retired/cancelled to the lot's.
    pub matches_buckets: bool,
    pub problems: Vec<String>,
}

#[utoipa::path(get, path = "/v1/lots/{id}/serials", tag = "rights", operation_id = "lotSerials",
    summary = "Serial ranges of a carbon-sink lot, with the proof that they tile it (operators, regulators)",
    params(("id" = i64, Path, description = "Lot id")), responses((status = 200, description = "The ranges", body = SerialsView)))]
#[get("/v1/lots/{id}/serials")]
async fn lot_serials(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator, Role::Regulator])?;
    let id = id.into_inner();
    let view = state
        .db(move |conn| {
            let lot = store::lot(conn, id)?.ok_or_else(|| ApiError::not_found("lot"))?;
            let ranges = super::ledger::load_ranges(conn, id)?;
            let mut problems = Vec::new();
            let unit = 10_000;
            if let Err(e) = serials::check_tiling(&ranges, lot.issued / unit) {
                problems.push(e.to_string());
            }
            let tiles_issued = problems.is_empty();
            let totals = serials::totals(&ranges);
            let holdings = store::holdings(
                conn,
                &HoldingFilter {
                    lot_id: Some(id),
                    ..Default::default()
                },
                0,
                i64::MAX - 1,
            )?;
            let mut expected: Vec<(serials::Owner, i64)> = vec![
                (
                    serials::Owner {
                        party: None,
                        state: "retired".into(),
                    },
                    lot.retired,
                ),
                (
                    serials::Owner {
                        party: None,
                        state: "cancelled".into(),
                    },
                    lot.cancelled,
                ),
            ];
            for h in &holdings {
                for (state, q) in [
                    ("available", h.available),
                    ("listed", h.listed),
                    ("in_transfer", h.in_transfer),
                    ("pledged", h.pledged),
                    ("frozen", h.frozen),
                    ("reserved", h.reserved),
                ] {
                    expected.push((
                        serials::Owner {
                            party: Some(h.party_id),
                            state: state.into(),
                        },
                        q,
                    ));
                }
            }
            for (owner, q) in &expected {
                let have = totals.get(owner).copied().unwrap_or(0);
                if have * unit != *q {
                    problems.push(format!(
                        "{:?} {}: {} serials for a bucket of {}",
                        owner.party,
                        owner.state,
                        have,
                        Dec::qty(*q).0
                    ));
                }
            }
            let matches_buckets = problems.len() == usize::from(!tiles_issued);
            Ok(SerialsView {
                lot_id: id,
                ranges: ranges
                    .into_iter()
                    .map(|r| SerialRangeView {
                        first: r.first,
                        last: r.last,
                        party_id: r.owner.party,
                        state: r.owner.state,
                    })
                    .collect(),
                tiles_issued,
                matches_buckets,
                problems,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// What one party holds of one lot, by bucket.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldingView {
    pub id: i64,
    pub party_id: i64,
    pub lot_id: i64,
    pub available: Dec,
    /// Frozen for sale.
    pub listed: Dec,
    /// Frozen by a pending transfer.
    pub in_transfer: Dec,
    /// Encumbered by pledges.
    pub pledged: Dec,
    /// Under a judicial freeze.
    pub frozen: Dec,
    /// Offered as collateral by a financing request (融资需求): it moves nowhere else meanwhile.
    pub reserved: Dec,
    /// The sum of the buckets.
    pub total: Dec,
    /// How the quantity still held was acquired (R11 pledges only the paid and market parts).
    /// Quantity leaving the holding uses up these records in an order that never counts free
    /// units as paid: from `pledged` (a disposal), market then paid first; from any other bucket,
    /// the paid units no pledge holds first (market, then paid), then other, then free.
    pub acquired: AcquiredView,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AcquiredView {
    pub free: Dec,
    pub paid: Dec,
    /// Bought at or above the benchmark price in force.
    pub market: Dec,
    /// Court orders, mergers, gifts, sales below the benchmark or without one: not pledgeable.
    pub other: Dec,
}

impl HoldingView {
    fn of(h: HoldingRow, a: store::Acquired) -> Self {
        HoldingView {
            id: h.id,
            party_id: h.party_id,
            lot_id: h.lot_id,
            available: Dec::qty(h.available),
            listed: Dec::qty(h.listed),
            in_transfer: Dec::qty(h.in_transfer),
            pledged: Dec::qty(h.pledged),
            frozen: Dec::qty(h.frozen),
            reserved: Dec::qty(h.reserved),
            total: Dec::qty(
                h.available + h.listed + h.in_transfer + h.pledged + h.frozen + h.reserved,
            ),
            acquired: AcquiredView {
                free: Dec::qty(a.free),
                paid: Dec::qty(a.paid),
                market: Dec::qty(a.market),
                other: Dec::qty(a.other),
            },
            updated_at: h.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HoldingQuery {
    pub lot_id: Option<i64>,
    pub party_id: Option<i64>,
}

async fn holdings_page(
    state: &AppState,
    who: Principal,
    party: Option<i64>,
    q: HoldingQuery,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let (after, limit) = page.resolve()?;
    let filter = match who.role {
        Role::Operator | Role::Regulator => HoldingFilter {
            party_id: party.or(q.party_id),
            lot_id: q.lot_id,
            only_ids: None,
        },
        // A lender sees only the holdings a pledgor applied to it with (docs/design.md §5).
        Role::Bank => HoldingFilter {
            party_id: party.or(q.party_id),
            lot_id: q.lot_id,
            only_ids: Some(Vec::new()),
        },
        Role::Enterprise => match (party.or(q.party_id), who.party_id) {
            (Some(p), Some(own)) if p != own => return Err(ApiError::not_found("party")),
            (_, own) => HoldingFilter {
                party_id: Some(own.unwrap_or(-1)),
                lot_id: q.lot_id,
                only_ids: None,
            },
        },
        // User administration sees no holdings.
        Role::UserAdmin => return Err(ApiError::forbidden("the user_admin role may not do this")),
    };
    let lender = (who.role == Role::Bank).then(|| who.party_id.unwrap_or(-1));
    let rows = state
        .db(move |conn| {
            let mut filter = filter;
            if let Some(bank) = lender {
                filter.only_ids = Some(store::holdings_applied_to(conn, bank)?);
            }
            let rows = store::holdings(conn, &filter, after, limit)?;
            rows.into_iter()
                .map(|h| {
                    let a = store::acquired(conn, h.id)?;
                    Ok(HoldingView::of(h, a))
                })
                .collect::<ApiResult<Vec<_>>>()
        })
        .await?;
    Ok(Page::respond(rows, limit, |h| h.id))
}

#[utoipa::path(get, path = "/v1/holdings", tag = "rights", operation_id = "listHoldings",
    summary = "Holdings by bucket (own for enterprises; all for operators and regulators)",
    params(HoldingQuery, PageParams), responses((status = 200, description = "A page of holdings", body = Page<HoldingView>)))]
#[get("/v1/holdings")]
async fn list_holdings(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<HoldingQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    holdings_page(&state, who, None, q.into_inner(), page).await
}

#[utoipa::path(get, path = "/v1/parties/{id}/holdings", tag = "rights", operation_id = "partyHoldings",
    summary = "A party's holdings by bucket",
    params(("id" = i64, Path, description = "Party id"), HoldingQuery, PageParams), responses((status = 200, description = "A page of holdings", body = Page<HoldingView>)))]
#[get("/v1/parties/{id}/holdings")]
async fn party_holdings(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
    q: web::Query<HoldingQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let id = id.into_inner();
    // A 404 for a party that does not exist, or that the caller may not see: a lender sees only
    // its own party and those that applied a pledge to it (docs/design.md §5), so it learns nothing
    // of other parties, not even that they exist.
    let (role, own) = (who.role, who.party_id);
    let visible = state
        .db(move |conn| {
            if crate::parties::store::find(conn, id)?.is_none() {
                return Ok(false);
            }
            Ok(match role {
                Role::Bank if own != Some(id) => {
                    let applied = store::holdings_applied_to(conn, own.unwrap_or(-1))?;
                    let filter = HoldingFilter {
                        party_id: Some(id),
                        lot_id: None,
                        only_ids: Some(applied),
                    };
                    !store::holdings(conn, &filter, 0, 1)?.is_empty()
                }
                _ => true,
            })
        })
        .await?;
    if !visible {
        return Err(ApiError::not_found("party"));
    }
    holdings_page(&state, who, Some(id), q.into_inner(), page).await
}
