//! Price data from settled trades: daily OHLC and volume, last price, VWAP over a window, the
//! benchmark beside them, an SVG chart; and valuation of a quantity from those prices (R3), which
//! the collateral LTV monitoring uses.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::rules::{self, Candle, Tick};
use super::{benchmarks, settings};
use crate::auth::Principal;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{qty_to_stored, trade_amount_fen, Dec};
use crate::kernel::state::AppState;
use crate::rights::store::{self as rights, LotRow};
use crate::schema::{lots, trades as tr};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(ohlc)
        .service(summary)
        .service(chart)
        .service(valuation);
}

/// Which market: a right type, its sub-kind (pollutant) and a region (a county, or an aggregate
/// such as 350700 for all of Nanping).
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MarketKey {
    pub right_type: String,
    pub sub_kind: Option<String>,
    /// Default 350700 (Nanping).
    pub region: Option<String>,
    /// First day (default: 90 days before `to`).
    pub from: Option<NaiveDate>,
    /// Last day (default: today).
    pub to: Option<NaiveDate>,
}

/// A market's region (default 350700, Nanping); a code that names no division of Fujian is a 422.
fn market_region(region: Option<&str>) -> ApiResult<String> {
    let r = region.unwrap_or("350700");
    if !crate::kernel::regions::fujian_exists(r) {
        return Err(ApiError::invalid_field(
            "region",
            crate::kernel::regions::refusal(r),
        ));
    }
    Ok(r.to_string())
}

impl MarketKey {
    fn region(&self) -> ApiResult<String> {
        market_region(self.region.as_deref())
    }
    fn window(&self, today: NaiveDate) -> ApiResult<(NaiveDate, NaiveDate)> {
        let to = self.to.unwrap_or(today);
        let from = self.from.unwrap_or(to - Days::new(90));
        if from > to || (to - from).num_days() > 7_320 {
            return Err(ApiError::invalid_field(
                "from",
                "on or before `to`, at most twenty years before it",
            ));
        }
        Ok((from, to))
    }
}

/// The newest settled trade of a market traded on or before `to` (by settlement time, then id).
fn last_tick(
    conn: &mut DbConn,
    right_type: &str,
    sub_kind: Option<&str>,
    region: &str,
    to: NaiveDate,
) -> ApiResult<Option<Tick>> {
    let mut q = tr::table
        .inner_join(lots::table)
        .filter(tr::status.eq("settled"))
        .filter(lots::right_type.eq(right_type))
        .filter(lots::region_code.like(format!("{}%", rules::region_prefix(region))))
        .filter(tr::trade_date.le(to))
        .order((tr::created_at.desc(), tr::id.desc()))
        .limit(1)
        .select((
            tr::id,
            tr::trade_date,
            tr::created_at,
            tr::unit_price,
            tr::quantity,
        ))
        .into_boxed();
    if let Some(s) = sub_kind {
        q = q.filter(lots::sub_kind.eq(s));
    }
    let row: Option<(i64, NaiveDate, NaiveDateTime, i64, i64)> = q.first(conn).optional()?;
    Ok(row.map(|(id, date, at, price, quantity)| Tick {
        id,
        date,
        at,
        price,
        quantity,
    }))
}

/// Settled trades of a market between two dates.
fn ticks(
    conn: &mut DbConn,
    right_type: &str,
    sub_kind: Option<&str>,
    region: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Vec<Tick>> {
    if region.len() != 6 || !region.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid_field(
            "region",
            "a 6-digit administrative division code",
        ));
    }
    let mut q = tr::table
        .inner_join(lots::table)
        .filter(tr::status.eq("settled"))
        .filter(lots::right_type.eq(right_type))
        .filter(lots::region_code.like(format!("{}%", rules::region_prefix(region))))
        .filter(tr::trade_date.ge(from))
        .filter(tr::trade_date.le(to))
        .select((
            tr::id,
            tr::trade_date,
            tr::created_at,
            tr::unit_price,
            tr::quantity,
        ))
        .into_boxed();
    if let Some(s) = sub_kind {
        q = q.filter(lots::sub_kind.eq(s));
    }
    let rows: Vec<(i64, NaiveDate, NaiveDateTime, i64, i64)> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, date, at, price, quantity)| Tick {
            id,
            date,
            at,
            price,
            quantity,
        })
        .collect())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandleView {
    pub date: NaiveDate,
    pub open: Dec,
    pub high: Dec,
    pub low: Dec,
    pub close: Dec,
    /// Quantity traded.
    pub volume: Dec,
    pub trades: i64,
    /// Σ(price × quantity) ÷ Σ quantity, rounded half-up to 4 places.
    pub vwap: Dec,
}

impl From<Candle> for CandleView {
    fn from(c: Candle) -> Self {
        CandleView {
            date: c.date,
            open: Dec::price(c.open),
            high: Dec::price(c.high),
            low: Dec::price(c.low),
            close: Dec::price(c.close),
            volume: Dec::qty(c.volume),
            trades: c.trades,
            vwap: Dec::price(c.vwap),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OhlcSeries {
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub region: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Days with settled trades, in date order.
    pub candles: Vec<CandleView>,
    /// The benchmark in force on `to`, if any.
    pub benchmark: Option<Dec>,
}

fn series(
    conn: &mut DbConn,
    k: &MarketKey,
    today: NaiveDate,
) -> ApiResult<(OhlcSeries, Vec<Candle>)> {
    let (from, to) = k.window(today)?;
    let region = k.region()?;
    let t = ticks(
        conn,
        &k.right_type,
        k.sub_kind.as_deref(),
        &region,
        from,
        to,
    )?;
    let candles = rules::daily_candles(&t);
    let benchmark = benchmarks::in_force(conn, &k.right_type, k.sub_kind.as_deref(), &region, to)?
        .map(|b| Dec::price(b.unit_price));
    Ok((
        OhlcSeries {
            right_type: k.right_type.clone(),
            sub_kind: k.sub_kind.clone(),
            region,
            from,
            to,
            candles: candles.iter().copied().map(CandleView::from).collect(),
            benchmark,
        },
        candles,
    ))
}

#[utoipa::path(get, path = "/v1/market/ohlc", tag = "market", operation_id = "marketOhlc",
    summary = "Daily open/high/low/close, volume and VWAP of settled trades, with the benchmark",
    params(MarketKey), responses((status = 200, description = "The series", body = OhlcSeries)))]
#[get("/v1/market/ohlc")]
async fn ohlc(
    state: web::Data<AppState>,
    _who: Principal,
    k: web::Query<MarketKey>,
) -> ApiResult<HttpResponse> {
    let (k, today) = (k.into_inner(), state.clock.today());
    let (s, _) = state.db(move |conn| series(conn, &k, today)).await?;
    Ok(HttpResponse::Ok().json(s))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    pub right_type: String,
    pub sub_kind: Option<String>,
    /// Default 350700 (Nanping).
    pub region: Option<String>,
    /// VWAP window in days (default: the market settings' `vwap_days`).
    pub days: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MarketSummary {
    pub right_type: String,
    pub sub_kind: Option<String>,
    pub region: String,
    pub last_price: Option<Dec>,
    pub last_trade_at: Option<DateTime<Utc>>,
    pub vwap_days: i64,
    pub vwap: Option<Dec>,
    pub vwap_trades: i64,
    pub vwap_volume: Dec,
    pub benchmark: Option<Dec>,
    pub as_of: NaiveDate,
}

#[utoipa::path(get, path = "/v1/market/summary", tag = "market", operation_id = "marketSummary",
    summary = "Last price, VWAP over a window and the benchmark in force",
    params(SummaryQuery), responses((status = 200, description = "The summary", body = MarketSummary)))]
#[get("/v1/market/summary")]
async fn summary(
    state: web::Data<AppState>,
    _who: Principal,
    q: web::Query<SummaryQuery>,
) -> ApiResult<HttpResponse> {
    let (q, today) = (q.into_inner(), state.clock.today());
    let s = state
        .db(move |conn| {
            let days = match q.days {
                Some(d) if (1..=3_660).contains(&d) => d,
                Some(_) => return Err(ApiError::invalid_field("days", "between 1 and 3660")),
                None => settings::load(conn)?.vwap_days,
            };
            let region = market_region(q.region.as_deref())?;
            let sub = q.sub_kind.as_deref();
            let window = ticks(
                conn,
                &q.right_type,
                sub,
                &region,
                today - Days::new(days as u64 - 1),
                today,
            )?;
            // Only the newest settled trade, not every one since the market opened.
            let last = last_tick(conn, &q.right_type, sub, &region, today)?;
            let last = last.as_ref();
            let benchmark = benchmarks::in_force(conn, &q.right_type, sub, &region, today)?;
            Ok(MarketSummary {
                right_type: q.right_type.clone(),
                sub_kind: q.sub_kind.clone(),
                region,
                last_price: last.map(|t| Dec::price(t.price)),
                last_trade_at: last.map(|t| t.at.and_utc()),
                vwap_days: days,
                vwap: rules::vwap(&window).map(Dec::price),
                vwap_trades: window.len() as i64,
                vwap_volume: Dec::qty(window.iter().map(|t| t.quantity).sum()),
                benchmark: benchmark.map(|b| Dec::price(b.unit_price)),
                as_of: today,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(s))
}

#[utoipa::path(get, path = "/v1/market/chart.svg", tag = "market", operation_id = "marketChart",
    summary = "The OHLC series and the benchmark line as an SVG chart",
    params(MarketKey), responses((status = 200, description = "An SVG image", content_type = "image/svg+xml", body = String)))]
#[get("/v1/market/chart.svg")]
async fn chart(
    state: web::Data<AppState>,
    _who: Principal,
    k: web::Query<MarketKey>,
) -> ApiResult<HttpResponse> {
    let (k, today) = (k.into_inner(), state.clock.today());
    let (s, candles) = state.db(move |conn| series(conn, &k, today)).await?;
    let svg = super::chart::render(&s, &candles)
        .map_err(|e| ApiError::internal(format!("chart: {e}")))?;
    Ok(HttpResponse::Ok().content_type("image/svg+xml").body(svg))
}

/// A value with the method that produced it.
pub struct Valued {
    /// `vwap_30d` (settled trades over the window), `benchmark`, …
    pub method: String,
    pub unit_price: i64,
    /// EM: whole years of the term left on the valuation day (R3; a partly elapsed year does
    /// not count); 1 otherwise.
    pub years: i32,
    pub value: i64,
}

/// Values `quantity` of a lot on `today` (R3): VWAP over the configured window of the lot's
/// market (its right type, sub-kind and prefecture) when it holds enough settled trades, else the
/// benchmark in force; `None` when the market shows neither.
pub fn value_of(
    conn: &mut DbConn,
    lot: &LotRow,
    quantity: i64,
    today: NaiveDate,
) -> ApiResult<Option<Valued>> {
    let s = settings::load(conn)?;
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let market = format!("{}00", lot.region_code.chars().take(4).collect::<String>());
    let from = today - Days::new(s.vwap_days as u64 - 1);
    let window = ticks(
        conn,
        &lot.right_type,
        lot.sub_kind.as_deref(),
        &market,
        from,
        today,
    )?;
    let reference = match rules::vwap(&window) {
        Some(p) if window.len() as i64 >= s.vwap_min_trades => {
            Some((format!("vwap_{}d", s.vwap_days), p))
        }
        _ => benchmarks::in_force(
            conn,
            &lot.right_type,
            lot.sub_kind.as_deref(),
            &lot.region_code,
            today,
        )?
        .map(|b| ("benchmark".to_string(), b.unit_price)),
    };
    let Some((method, unit_price)) = reference else {
        return Ok(None);
    };
    // R3: only whole years of the term left count; a lot in the last, partly elapsed year of its
    // term is worth nothing as collateral.
    let years = if rt.priced_per_year {
        lot.years_left(today)
    } else {
        1
    };
    let value = trade_amount_fen(quantity, unit_price, years.max(0) as u32)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Some(Valued {
        method,
        unit_price,
        years,
        value,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ValuationQuery {
    pub lot_id: i64,
    pub quantity: Dec,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValuationView {
    pub lot_id: i64,
    pub quantity: Dec,
    /// `vwap_<N>d` (settled trades over N days, at least the configured number), else `benchmark`.
    pub method: String,
    pub unit_price: Dec,
    /// EM: whole years of the term left on `as_of`, counted from that day to `valid_to`; a partly
    /// elapsed year does not count (R3). 0 in the last year of the term. 1 for other rights.
    pub years: i32,
    /// quantity × unit price × years, rounded half-up to the fen.
    pub value: Dec,
    pub as_of: NaiveDate,
}

#[utoipa::path(get, path = "/v1/valuations", tag = "market", operation_id = "valuation",
    summary = "Value a quantity of a lot from market prices (R3), stating the method",
    params(ValuationQuery),
    responses((status = 200, description = "The valuation", body = ValuationView),
        (status = 409, description = "no_market_price: neither trades nor a benchmark", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/v1/valuations")]
async fn valuation(
    state: web::Data<AppState>,
    _who: Principal,
    q: web::Query<ValuationQuery>,
) -> ApiResult<HttpResponse> {
    let (q, today) = (q.into_inner(), state.clock.today());
    let v = state
        .db(move |conn| {
            let lot = rights::lot(conn, q.lot_id)?.ok_or_else(|| ApiError::not_found("lot"))?;
            let quantity = qty_to_stored(q.quantity.0, 4)
                .map_err(|e| ApiError::invalid_field("quantity", e.to_string()))?;
            let v = value_of(conn, &lot, quantity, today)?.ok_or_else(|| {
                ApiError::conflict(
                    "no_market_price",
                    "no settled trades nor a benchmark price for this lot's market",
                )
            })?;
            Ok(ValuationView {
                lot_id: lot.id,
                quantity: Dec::qty(quantity),
                method: v.method,
                unit_price: Dec::price(v.unit_price),
                years: v.years,
                value: Dec::money(v.value),
                as_of: today,
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
