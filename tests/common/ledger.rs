//! Ledger helpers: issue lots through maker-checker, and the conservation checker
//! (docs/design.md §3.1).
#![allow(dead_code)]

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use super::{Api, Reply};

pub fn dec(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("not a decimal string: {v}")),
    )
    .expect("decimal")
}

/// Proposes with `maker` and approves with `checker`; returns the lot.
pub fn issue(maker: &Api, checker: &Api, body: Value) -> Value {
    let p = maker.post("/v1/lots", &body).expect(202);
    let id = p.body["id"].as_i64().unwrap();
    let r = checker
        .post_key(
            &format!("/v1/proposals/{id}/approve"),
            &format!("approve-{id}"),
            &json!({}),
        )
        .expect(200);
    r.body["result"].clone()
}

/// An issuance request of a right type to a holder with a unique source document.
pub fn lot_request(right_type: &str, holder: i64, quantity: &str, source: &str) -> Value {
    let mut b = json!({"right_type": right_type, "vintage": 2026, "valid_from": "2026-01-01", "valid_to": "2030-12-31",
        "region_code": "350702", "origin": "paid_use", "quantity": quantity, "holder_party_id": holder, "source_document": source});
    match right_type {
        "EM" => b["sub_kind"] = json!("SO2"),
        "CA" => b["compliance_year"] = json!(2026),
        "CS" => {
            b["sub_kind"] = json!("FFCER");
            b["project"] = json!("顺昌县林业碳汇项目");
            b["origin"] = json!("offset_project");
        }
        _ => {}
    }
    b
}

/// Every holding of a lot (all pages), as an operator or regulator sees them.
pub fn holdings(op: &Api, lot_id: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/holdings?lot_id={lot_id}&limit=500&cursor={c}"),
            None => format!("/v1/holdings?lot_id={lot_id}&limit=500"),
        };
        let page = op.get(&path).expect(200);
        out.extend(page.body["items"].as_array().unwrap().iter().cloned());
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

/// Asserts conservation (docs/design.md §3.1) for one lot: the buckets of every holder plus
/// retired and cancelled add up to the issued quantity, and no bucket is negative. For serialized
/// lots, also that the serial ranges tile the lot and match the buckets.
pub fn assert_conserved(op: &Api, lot_id: i64) {
    let lot = op.get(&format!("/v1/lots/{lot_id}")).expect(200).body;
    let mut sum = dec(&lot["retired"]) + dec(&lot["cancelled"]);
    for h in holdings(op, lot_id) {
        for bucket in [
            "available",
            "listed",
            "in_transfer",
            "pledged",
            "frozen",
            "reserved",
        ] {
            let q = dec(&h[bucket]);
            assert!(q >= Decimal::ZERO, "negative {bucket} in holding {h}");
            sum += q;
        }
    }
    assert_eq!(
        sum,
        dec(&lot["issued"]),
        "conservation broken on lot {lot_id}: {lot}"
    );
    if lot["right_type"] == "CS" {
        let s = op
            .get(&format!("/v1/lots/{lot_id}/serials"))
            .expect(200)
            .body;
        assert_eq!(s["tiles_issued"], true, "{s}");
        assert_eq!(s["matches_buckets"], true, "{s}");
    }
}

/// Conservation on every lot of the registry.
pub fn assert_all_conserved(op: &Api) {
    let lots = op.get("/v1/lots?limit=500").expect(200);
    for l in lots.body["items"].as_array().unwrap() {
        assert_conserved(op, l["id"].as_i64().unwrap());
    }
}

/// The holding of `party` in `lot` (as the operator sees it).
pub fn holding(op: &Api, party: i64, lot: i64) -> Value {
    let page = op
        .get(&format!("/v1/holdings?lot_id={lot}&party_id={party}"))
        .expect(200);
    page.body["items"][0].clone()
}

pub fn available(op: &Api, party: i64, lot: i64) -> Decimal {
    let h = holding(op, party, lot);
    if h.is_null() {
        Decimal::ZERO
    } else {
        dec(&h["available"])
    }
}

/// A key unique to this process and call, for requests that need one.
pub fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn ok(r: &Reply) -> bool {
    r.status.is_success()
}
