//! The market's configuration, kept in the database so that every server process applies the same
//! fees and windows: `GET/PUT /v1/market/settings`.

use actix_web::http::StatusCode;
use actix_web::{get, put, web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Command, Principal, Role};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::Dec;
use crate::kernel::idempotency::{KeyPolicy, Outcome};
use crate::kernel::state::AppState;
use crate::schema::settings as st;

const NAME: &str = "market";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get_settings).service(put_settings);
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"buyer_fee_rate": "0.003", "seller_fee_rate": "0.003", "payment_window_hours": 72,
    "vwap_days": 30, "vwap_min_trades": 3, "benchmark_floor": true, "non_attainment_check": true}))]
pub struct MarketSettings {
    /// Exchange fee charged to the buyer, as a fraction of the trade amount (0.003 = 0.3 %).
    pub buyer_fee_rate: Dec,
    /// Exchange fee charged to the seller.
    pub seller_fee_rate: Dec,
    /// Hours a buyer has to pay before the trade expires and the quantity returns to the seller.
    pub payment_window_hours: i64,
    /// Valuation: the VWAP window in days …
    pub vwap_days: i64,
    /// … used only when it holds at least this many settled trades; else the benchmark.
    pub vwap_min_trades: i64,
    /// R4: refuse emission-right trades below the benchmark in force.
    pub benchmark_floor: bool,
    /// R4: refuse trades moving a pollutant's load into a non-attainment region.
    pub non_attainment_check: bool,
}

impl Default for MarketSettings {
    fn default() -> Self {
        MarketSettings {
            buyer_fee_rate: Dec(Decimal::new(3, 3)),
            seller_fee_rate: Dec(Decimal::new(3, 3)),
            payment_window_hours: 72,
            vwap_days: 30,
            vwap_min_trades: 3,
            benchmark_floor: true,
            non_attainment_check: true,
        }
    }
}

impl MarketSettings {
    fn validate(&self) -> ApiResult<()> {
        for (field, rate) in [
            ("buyer_fee_rate", self.buyer_fee_rate.0),
            ("seller_fee_rate", self.seller_fee_rate.0),
        ] {
            if rate < Decimal::ZERO || rate > Decimal::new(1, 1) || rate.scale() > 6 {
                return Err(ApiError::invalid_field(
                    field,
                    "a fraction between 0 and 0.1 with at most 6 places",
                ));
            }
        }
        let ranges = [
            (
                "payment_window_hours",
                self.payment_window_hours,
                1,
                24 * 90,
            ),
            ("vwap_days", self.vwap_days, 1, 366),
            ("vwap_min_trades", self.vwap_min_trades, 1, 10_000),
        ];
        for (field, v, lo, hi) in ranges {
            if !(lo..=hi).contains(&v) {
                return Err(ApiError::invalid_field(
                    field,
                    format!("between {lo} and {hi}"),
                ));
            }
        }
        Ok(())
    }
}

/// The settings in force (the defaults until a change is approved).
pub fn load(conn: &mut DbConn) -> ApiResult<MarketSettings> {
    let stored: Option<String> = st::table
        .find(NAME)
        .select(st::value)
        .first(conn)
        .optional()?;
    Ok(stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

#[utoipa::path(get, path = "/v1/market/settings", tag = "market", operation_id = "getMarketSettings",
    summary = "Fees, payment window, valuation window and the R4 switches in force",
    responses((status = 200, description = "The settings", body = MarketSettings)))]
#[get("/v1/market/settings")]
async fn get_settings(state: web::Data<AppState>, _who: Principal) -> ApiResult<HttpResponse> {
    let s = state.db(load).await?;
    Ok(HttpResponse::Ok().json(s))
}

#[utoipa::path(put, path = "/v1/market/settings", tag = "market", operation_id = "putMarketSettings",
    summary = "An operator proposes new fees, windows or R4 switches; they take effect when another person approves",
    description = "The settings bind every sale (the R4 floor and non-attainment check among them), so a change takes two persons: the request is validated and proposed (202, kind `market_settings`) and takes effect, audited, when another person approves it (`POST /v1/proposals/{id}/approve`).",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = MarketSettings, responses((status = 202, description = "The change proposed", body = crate::proposals::ProposalView)))]
#[put("/v1/market/settings")]
async fn put_settings(cmd: Command<MarketSettings>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator])?;
    let s = body;
    s.validate()?;
    let (now, w) = (cx.now, who.clone());
    cx.run(KeyPolicy::Optional, StatusCode::ACCEPTED, move |conn| {
        let row = crate::proposals::propose(
            conn,
            crate::proposals::ProposalKind::MarketSettings,
            &s,
            None,
            &w,
            now,
        )?;
        Outcome::of(&crate::proposals::ProposalView::from(row))
    })
    .await
}

/// An approved change of the settings takes effect, in the approval's transaction.
pub fn execute(
    conn: &mut DbConn,
    s: &MarketSettings,
    proposer: &str,
    actor: &str,
    now: NaiveDateTime,
) -> ApiResult<serde_json::Value> {
    s.validate()?;
    let text = serde_json::to_string(s).map_err(|e| ApiError::internal(e.to_string()))?;
    crate::insert_or_ignore!(conn, st::table, (st::name.eq(NAME), st::value.eq(&text)))?;
    diesel::update(st::table.find(NAME))
        .set(st::value.eq(&text))
        .execute(conn)?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: "market:settings".into(),
            actor,
            action: "market.settings_changed",
            object_type: "settings",
            object_id: NAME.into(),
            payload: json!({"settings": s, "proposed_by": proposer}),
            at: now,
        },
    )?;
    Ok(json!(s))
}
