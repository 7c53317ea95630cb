//! Quantity leaves a pledge: the pledgor withdraws an application, the lender releases, and the
//! serial split both use.

use actix_web::http::StatusCode;
use actix_web::{post, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{check_code, lock, require_lender, require_status, set_status, PledgeView};
use crate::auth::{Principal, Role};
use crate::collateral::encumbrance;
use crate::collateral::PledgeRow;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;
use crate::rights::issuance::parse_quantity;
use crate::rights::ledger::{self, Movement, Side};
use crate::rights::serials::{self, Owner, Range};
use crate::rights::store::{self as rights, LotRow};
use crate::rights::{Acquisition, Bucket};
use crate::schema::pledges as pl;

/// An inclusive range of serial numbers.
type SerialSpan = (i64, i64);

/// Splits `quantity` off a pledge's own serials (lowest first): (the part that moves, the rest).
pub(crate) fn split_serials(
    p: &PledgeRow,
    quantity: i64,
) -> ApiResult<(Option<Vec<SerialSpan>>, Option<String>)> {
    let Some(text) = &p.serials else {
        return Ok((None, None));
    };
    let mine = Owner {
        party: Some(p.pledgor_id),
        state: "pledged".into(),
    };
    let moving = Owner {
        party: None,
        state: "moving".into(),
    };
    let ranges: Vec<Range> = serials::parse_text(text)
        .into_iter()
        .map(|(first, last)| Range {
            first,
            last,
            owner: mine.clone(),
        })
        .collect();
    let (rest, moved) = serials::transfer(&ranges, &mine, &moving, quantity / 10_000)
        .map_err(|e| ApiError::conflict("serials_unavailable", e.to_string()))?;
    let named = moved.iter().map(|r| (r.first, r.last)).collect();
    let remaining: Vec<Range> = rest.into_iter().filter(|r| r.owner == mine).collect();
    Ok((Some(named), serials::to_text(&remaining)))
}

/// Moves `quantity` of a pledge out of the pledgor's pledged bucket.
#[allow(clippy::too_many_arguments)]
pub(crate) fn unpledge(
    conn: &mut DbConn,
    p: &PledgeRow,
    lot: &LotRow,
    quantity: i64,
    to: Side,
    cause: &str,
    acquisition: Option<Acquisition>,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let (named, rest) = split_serials(p, quantity)?;
    ledger::move_quantity(
        conn,
        Movement {
            lot,
            from: Side::holder(p.pledgor_id, Bucket::Pledged),
            to,
            quantity,
            cause,
            reference: format!("pledge:{}", p.id),
            actor,
            at,
            acquisition,
            named_serials: named.as_deref(),
        },
    )?;
    diesel::update(pl::table.find(p.id))
        .set((
            pl::quantity.eq(pl::quantity - quantity),
            pl::serials.eq(rest),
            pl::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdraw {
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/withdraw", tag = "pledges", operation_id = "withdrawPledge",
    summary = "The pledgor withdraws, or the lender declines, an application not yet accepted",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = Withdraw, responses((status = 200, description = "Withdrawn", body = PledgeView),
        (status = 409, description = "pledge_status: the pledge is no longer an open application", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/pledges/{id}/withdraw")]
pub(super) async fn withdraw(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Withdraw>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Enterprise, Role::Bank])?;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let reason = body.value.reason;
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::OK,
        move |conn| {
            let (p, _) = lock(conn, &w, id)?;
            let entry = ("withdrawn", json!({"reason": reason}));
            encumbrance::transition(conn, &p, &["applied"], "withdrawn", entry, &actor, now)
        },
    )
    .await
}

/// A lender change guarded by the amendment code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amendment_code": "K7PQ2M9XW4RT8HZN", "quantity": "40"}))]
pub struct Release {
    pub amendment_code: String,
    /// Part of the pledged quantity to release; all of it when absent.
    pub quantity: Option<Dec>,
}

#[utoipa::path(post, path = "/v1/pledges/{id}/release", tag = "pledges", operation_id = "releasePledge",
    summary = "The lender releases the pledge, wholly or in part",
    params(("id" = i64, Path, description = "Pledge id"), ("Idempotency-Key" = String, Header, description = "Required: this moves quantity")),
    request_body = Release, responses((status = 200, description = "Released (status `released` once nothing is left)", body = PledgeView)))]
#[post("/v1/pledges/{id}/release")]
pub(super) async fn release(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<Release>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Bank])?;
    let r = body.value;
    let (id, actor, now) = (
        id.into_inner(),
        who.actor(),
        db::now_micros(state.clock.now()),
    );
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Required,
        StatusCode::OK,
        move |conn| {
            let (p, lot) = lock(conn, &w, id)?;
            require_lender(&w, &p)?;
            check_code(&p, &r.amendment_code)?;
            require_status(&p, &["registered"])?;
            let t = rights::right_type(conn, &lot.right_type)?
                .ok_or_else(|| ApiError::internal("right type vanished"))?;
            let quantity = match r.quantity {
                Some(q) => parse_quantity("quantity", q, &t)?,
                None => p.quantity,
            };
            if quantity > p.quantity {
                return Err(ApiError::invalid_field("quantity", "more than is pledged"));
            }
            // A release ends the lender's claim, not a court's: what a freeze rests on goes to frozen.
            let frozen = crate::collateral::freezes::unpledge_to_holder(
                conn,
                &p,
                &lot,
                quantity,
                "pledge_release",
                &actor,
                now,
            )?;
            if quantity == p.quantity {
                set_status(conn, id, "released", now)?;
            }
            encumbrance::recorded(
                conn,
                &p,
                "released",
                json!({"quantity": quantity, "remaining": p.quantity - quantity,
                    "kept_frozen_by_court": frozen}),
                &actor,
                now,
            )
        },
    )
    .await
}
