//! What every transfer between holders checks once its lot is locked (receiver, quantity, pricing,
//! a live lot), and its audit record.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::audit;
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::amount::{price_to_stored, trade_amount_fen, Dec};
use crate::market::PriceStanding;
use crate::rights::issuance::parse_quantity;
use crate::rights::store::{self as rights, LotRow};
use crate::transfers::store::TransferRow;

pub(super) fn transfer_audit(
    conn: &mut DbConn,
    tr: &TransferRow,
    action: &str,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    audit::record(
        conn,
        audit::Event {
            chain: format!("lot:{}", tr.lot_id),
            actor,
            action,
            object_type: "transfer",
            object_id: tr.id.to_string(),
            payload: json!({"from": tr.from_party_id, "to": tr.to_party_id, "quantity": tr.quantity,
                "status": tr.status, "amount": tr.amount, "document_ref": tr.document_ref}),
            at,
        },
    )?;
    Ok(())
}

/// Validates the receiving party: registered, not the sender, able to hold rights, not ended.
pub(super) fn check_receiver(
    conn: &mut DbConn,
    from: i64,
    to: i64,
) -> ApiResult<crate::parties::store::PartyRow> {
    let party = crate::parties::store::find(conn, to)?
        .ok_or_else(|| ApiError::invalid_field("to_party_id", "no such party"))?;
    if to == from {
        return Err(ApiError::invalid_field(
            "to_party_id",
            "a transfer goes to another party",
        ));
    }
    if party.kind == "bank" || party.kind == "regulator" {
        return Err(ApiError::invalid_field(
            "to_party_id",
            "banks and regulators do not hold rights",
        ));
    }
    crate::parties::store::require_active(conn, to)
}

/// Price and amount of a trade (R3): EM is priced per ton-year and trades a number of years of
/// its remaining term; other rights quantity × price.
pub(super) fn pricing(
    lot: &LotRow,
    rt: &crate::rights::store::RightTypeRow,
    quantity: i64,
    price: Option<Dec>,
    years: Option<i32>,
    today: chrono::NaiveDate,
) -> ApiResult<(Option<i64>, Option<i32>, Option<i64>)> {
    let Some(price) = price else {
        if years.is_some() {
            return Err(ApiError::invalid_field(
                "years",
                "years go with a unit price",
            ));
        }
        return Ok((None, None, None));
    };
    let price = price_to_stored(price.0)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    let years = lot.years_traded(rt, years, today)?;
    let amount = trade_amount_fen(quantity, price, years.unwrap_or(1) as u32)
        .map_err(|e| ApiError::invalid_field("unit_price", e.to_string()))?;
    Ok((Some(price), years, Some(amount)))
}

/// What a bilateral and a registered transfer ask for, as sent.
pub(super) struct Asked {
    pub(super) to_party_id: i64,
    pub(super) quantity: Dec,
    pub(super) unit_price: Option<Dec>,
    pub(super) years: Option<i32>,
    pub(super) serials: bool,
}

/// The terms of a transfer, checked: its right type, the quantity in that type's places, the
/// price and amount (R3).
pub(super) struct Terms {
    pub(super) rt: crate::rights::store::RightTypeRow,
    pub(super) quantity: i64,
    pub(super) unit_price: Option<i64>,
    pub(super) years: Option<i32>,
    pub(super) amount: Option<i64>,
    /// Where the price stands against the benchmark (R11 reads it at settlement).
    pub(super) standing: PriceStanding,
}

/// The checks every transfer between holders shares, once the lot is locked: quantity, receiver,
/// serials only on serialized types, pricing, and a live lot (R6).
pub(super) fn terms(
    conn: &mut DbConn,
    lot: &LotRow,
    from: i64,
    a: &Asked,
    today: chrono::NaiveDate,
) -> ApiResult<Terms> {
    let rt = rights::right_type(conn, &lot.right_type)?
        .ok_or_else(|| ApiError::internal("right type vanished"))?;
    let quantity = parse_quantity("quantity", a.quantity, &rt)?;
    let receiver = check_receiver(conn, from, a.to_party_id)?;
    if a.serials && !rt.serialized {
        return Err(ApiError::invalid_field(
            "serials",
            "this right type has no serial numbers",
        ));
    }
    lot.require_live(today)?;
    let (unit_price, years, amount) = pricing(lot, &rt, quantity, a.unit_price, a.years, today)?;
    // R4, the same check as every market path: the price against the benchmark floor, and no
    // pollutant's load into a region flagged non-attainment (a transfer without a price moves the
    // load all the same).
    let settings = crate::market::load_settings(conn)?;
    let standing = crate::market::check_r4(
        conn,
        &settings,
        lot,
        Some(&receiver.region_code),
        unit_price,
        today,
    )?;
    Ok(Terms {
        rt,
        quantity,
        unit_price,
        years,
        amount,
        standing,
    })
}
