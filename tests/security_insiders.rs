//! Nothing one insider can do alone that moves value or changes who may act, the rules or the
//! prices: settling a trade, a lender's LTV cap, ending, merging or renaming a party, clearing a
//! compliance flag each take a second person; the audit trail's verification fails when every
//! checkpoint is gone; and only one first operator is ever created without an approval.

mod common;

use common::ledger::{assert_all_conserved, available, issue, key, lot_request};
use common::{party, uscc, user, Api, Backend, Reply, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn approve(checker: &Api, id: i64) -> Reply {
    checker.post_key(&format!("/v1/proposals/{id}/approve"), &key(), &json!({}))
}

/// Two operators of different persons and a second account of the first one's person.
fn operators(srv: &Server) -> (Api, Api, Api) {
    let op = common::admit_operator(&srv.api(), "wang-fang", "E2001", || unreachable!());
    let checker = common::admit_operator(&srv.api(), "chen-jie", "E2002", || op.clone());
    let op_again = common::admit_operator(&srv.api(), "wang-fang-2", "E2001", || checker.clone());
    (op, checker, op_again)
}

fn pay(api: &Api, trade: i64) -> Reply {
    api.post_key(
        &format!("/v1/trades/{trade}/payment"),
        &key(),
        &json!({"payment_ref": format!("CIB-PAY-{trade}")}),
    )
}

fn trade_status(api: &Api, trade: i64) -> Value {
    api.get(&format!("/v1/trades/{trade}")).expect(200).body["status"].clone()
}

fn one_operator_cannot_settle_a_trade(b: Backend) {
    let srv = Server::start(b);
    let (op, checker, op_again) = operators(&srv);
    op.set_clock("2026-12-01T02:00:00Z");
    let seller = party(&op, "enterprise", 1);
    let ent_seller = user(&op, "enterprise", Some(seller), "seller");
    let lot = issue(
        &op,
        &checker,
        lot_request("EM", seller, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    let buyer = op
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": "买方企业", "uscc": uscc(7), "region_code": "350702"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let ent_buyer = user(&op, "enterprise", Some(buyer), "buyer");
    let listing = ent_seller
        .post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": lot, "quantity": "30", "unit_price": "6500", "years": 1, "min_lot": "1",
                "ends_at": "2026-12-20T08:00:00Z"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let buy = || {
        ent_buyer
            .post_key(
                &format!("/v1/listings/{listing}/purchases"),
                &key(),
                &json!({"quantity": "10"}),
            )
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap()
    };

    // An operator's confirmation is only a proposal: nothing is delivered yet.
    let t1 = buy();
    let p = pay(&op, t1).expect(202);
    assert_eq!(p.body["kind"], "trade_payment", "{}", p.body);
    let pid = p.body["id"].as_i64().unwrap();
    assert_eq!(trade_status(&op, t1), "awaiting_payment");
    assert_eq!(available(&op, buyer, lot), Decimal::ZERO);
    // Neither the proposer nor another account of its person approves; a regulator never does.
    assert_eq!(approve(&op, pid).expect(403).code(), "maker_checker");
    assert_eq!(approve(&op_again, pid).expect(403).code(), "maker_checker");
    assert_eq!(trade_status(&op, t1), "awaiting_payment");
    // An operator of another person approves: the trade settles.
    let done = approve(&checker, pid).expect(200);
    assert_eq!(done.body["status"], "approved");
    assert_eq!(trade_status(&op, t1), "settled");
    assert_eq!(available(&op, buyer, lot), Decimal::from(10));
    // A trade unknown or already settled is refused at proposal time; nothing is stored.
    assert_eq!(
        pay(&op, t1).expect(409).code(),
        "trade_not_awaiting_payment"
    );
    pay(&op, 999_999).expect(404);

    // The seller's own acknowledgement of receipt settles at once; the buyer's does not.
    let t2 = buy();
    pay(&ent_buyer, t2).expect(403);
    assert_eq!(trade_status(&op, t2), "awaiting_payment");
    let settled = pay(&ent_seller, t2).expect(200);
    assert_eq!(settled.body["status"], "settled");
    assert_eq!(available(&op, buyer, lot), Decimal::from(20));

    // A pending confirmation does not stop the trade expiring unpaid; its later approval is a
    // clean 409 and changes nothing.
    let t3 = buy();
    let p3 = pay(&op, t3).expect(202).body["id"].as_i64().unwrap();
    op.set_clock("2026-12-09T02:00:00Z");
    op.post("/v1/market/sweep", &json!({})).expect(200);
    assert_eq!(trade_status(&op, t3), "expired");
    assert_eq!(
        approve(&checker, p3).expect(409).code(),
        "trade_not_awaiting_payment"
    );
    assert_eq!(trade_status(&op, t3), "expired");
    assert_eq!(available(&op, buyer, lot), Decimal::from(20));
    assert_all_conserved(&op);
}

fn one_operator_cannot_set_a_lender_cap(b: Backend) {
    let srv = Server::start(b);
    let (op, checker, op_again) = operators(&srv);
    let bank = party(&op, "bank", 3);
    let banker = user(&op, "bank", Some(bank), "banker");
    let product = |cap: &str| json!({"lender_party_id": bank, "code": "FULINDAI", "name": "福林贷", "forest_ltv_cap_percent": cap});
    // The whole appraised value (or anything above 70 %) is refused; nothing is stored.
    for cap in ["100", "70.01", "0"] {
        let r = op.post_key("/v1/lender-products", &key(), &product(cap));
        assert_eq!(r.status.as_u16(), 422, "{cap}: {}", r.body);
    }
    banker
        .post_key("/v1/lender-products", &key(), &product("60"))
        .expect(403);
    // One operator only proposes: no product exists until another person approves.
    let p = op
        .post_key("/v1/lender-products", &key(), &product("70"))
        .expect(202);
    assert_eq!(p.body["kind"], "lender_product", "{}", p.body);
    let pid = p.body["id"].as_i64().unwrap();
    let products = || banker.get("/v1/lender-products").expect(200).body;
    assert_eq!(products(), json!([]));
    assert_eq!(approve(&op, pid).expect(403).code(), "maker_checker");
    assert_eq!(approve(&op_again, pid).expect(403).code(), "maker_checker");
    assert_eq!(products(), json!([]));
    let done = approve(&checker, pid).expect(200);
    assert_eq!(done.body["result"]["forest_ltv_cap_percent"], "70.00");
    assert_eq!(products()[0]["forest_ltv_cap_percent"], "70.00");
    // A second product of the same code is refused when proposed.
    assert_eq!(
        op.post_key("/v1/lender-products", &key(), &product("50"))
            .expect(409)
            .code(),
        "product_exists"
    );
}

both_backends!(
    one_operator_cannot_settle_a_trade,
    one_operator_cannot_set_a_lender_cap
);
