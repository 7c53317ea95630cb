//! Two persons where an operator acts for a holder or changes what binds every sale: an operator's
//! auction of a seller's quantity and its cancellation, and changes of the market settings (the R4
//! switches among them). A registration secures at most its registered amount: an enforcing
//! creditor's claim above it takes nothing ahead of juniors or the holder, for pledges of rights
//! and forest mortgages alike.

mod common;

use std::str::FromStr;

use common::ledger::{assert_all_conserved, dec, holding, issue, key, lot_request};
use common::{party, user, Api, Backend, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn approve(checker: &Api, id: i64) -> common::Reply {
    checker.post_key(&format!("/v1/proposals/{id}/approve"), &key(), &json!({}))
}

/// `op` proposes (202) and `checker` approves; the approval's reply, its body the result.
fn two_person(w: &World, path: &str, body: &Value) -> common::Reply {
    let r = w.op.post_key(path, &key(), body).expect(202);
    let mut a = approve(&w.checker, r.body["id"].as_i64().unwrap()).expect(200);
    a.body = a.body["result"].clone();
    a
}

struct World {
    _srv: Server,
    op: Api,
    /// Another account of the same person as `op`.
    op_again: Api,
    /// Another person.
    checker: Api,
    a: i64,
    bank: i64,
    ent_a: Api,
    banker: Api,
    em: i64,
}

fn world(b: Backend) -> World {
    let srv = Server::start(b);
    let op = common::admit_operator(&srv.api(), "wang-fang", "E2001", || unreachable!());
    let checker = common::admit_operator(&srv.api(), "chen-jie", "E2002", || op.clone());
    let op_again = common::admit_operator(&srv.api(), "wang-fang-2", "E2001", || checker.clone());
    op.set_clock("2026-12-01T02:00:00Z");
    let a = party(&op, "enterprise", 1);
    let bank = party(&op, "bank", 3);
    let ent_a = user(&op, "enterprise", Some(a), "ent-a");
    let banker = user(&op, "bank", Some(bank), "banker");
    let em = issue(
        &op,
        &checker,
        lot_request("EM", a, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    World {
        _srv: srv,
        op,
        op_again,
        checker,
        a,
        bank,
        ent_a,
        banker,
        em,
    }
}

fn buckets(w: &World) -> (Decimal, Decimal) {
    let h = holding(&w.op, w.a, w.em);
    (dec(&h["available"]), dec(&h["listed"]))
}

fn auction_body(w: &World, closes_at: &str) -> Value {
    json!({"lot_id": w.em, "seller_party_id": w.a, "quantity": "100", "reserve_price": "1419",
        "increment": "10", "min_bid": "1", "max_bid": "100", "years": 1,
        "opens_at": "2026-12-01T02:00:00Z", "closes_at": closes_at, "sealed": false, "deposit": "5000"})
}

/// An operator auctioning a holder's quantity acts on the holder's behalf: another person approves
/// before anything is frozen; and no auction may close after the lot's validity (R6).
fn operator_auction_for_a_seller_needs_a_second_person(b: Backend) {
    let w = world(b);
    // A close in 2036 on a lot valid to 2030 would freeze the holding for an auction that can
    // only fail: refused, nothing frozen, no proposal.
    let late = w.op.post_key(
        "/v1/auctions",
        &key(),
        &auction_body(&w, "2036-06-01T00:00:00Z"),
    );
    assert_eq!(late.expect(422).code(), "closes_after_validity");
    assert_eq!(buckets(&w), (d("485.2"), d("0")));
    let r =
        w.op.post_key(
            "/v1/auctions",
            &key(),
            &auction_body(&w, "2026-12-01T06:00:00Z"),
        )
        .expect(202);
    assert_eq!(r.body["kind"], "auction");
    let pid = r.body["id"].as_i64().unwrap();
    assert_eq!(
        buckets(&w),
        (d("485.2"), d("0")),
        "nothing frozen before approval"
    );
    assert!(
        w.op.get("/v1/auctions").expect(200).body["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no auction before approval"
    );
    // The proposer, under any of its accounts, cannot approve.
    assert_eq!(approve(&w.op, pid).status.as_u16(), 403);
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    assert_eq!(buckets(&w), (d("485.2"), d("0")));
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["phase"], "open", "{}", r.body);
    assert_eq!(r.body["result"]["disposal"], false);
    assert_eq!(buckets(&w), (d("385.2"), d("100")));
    assert_all_conserved(&w.op);
}

/// An auction that awarded nothing can be called off by two persons: the quantity returns, the
/// bids lose, the deposits are released; an awarded one cannot.
fn an_unawarded_auction_is_cancelled_by_two_persons(b: Backend) {
    let w = world(b);
    let auction = two_person(
        &w,
        "/v1/auctions",
        &auction_body(&w, "2026-12-01T06:00:00Z"),
    )
    .expect(200)
    .body["id"]
        .as_i64()
        .unwrap();
    let c = party(&w.op, "enterprise", 2);
    let ent_c = user(&w.op, "enterprise", Some(c), "ent-c");
    w.op.post(
        &format!("/v1/auctions/{auction}/bidders"),
        &json!({"party_id": c, "deposit": "5000", "deposit_ref": "CIB-DEP-0001"}),
    )
    .expect(201);
    ent_c
        .post_key(
            &format!("/v1/auctions/{auction}/bids"),
            &key(),
            &json!({"unit_price": "1429", "quantity": "40"}),
        )
        .expect(201);
    assert_eq!(buckets(&w), (d("385.2"), d("100")));
    let path = format!("/v1/auctions/{auction}/cancel");
    w.op.post_key(&path, &key(), &json!({"reason": " "}))
        .expect(422);
    let r =
        w.op.post_key(&path, &key(), &json!({"reason": "卖方撤回委托"}))
            .expect(202);
    assert_eq!(r.body["kind"], "auction_cancellation");
    let pid = r.body["id"].as_i64().unwrap();
    assert_eq!(
        buckets(&w),
        (d("385.2"), d("100")),
        "nothing before approval"
    );
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["phase"], "cancelled", "{}", r.body);
    assert_eq!(buckets(&w), (d("485.2"), d("0")));
    let bids = ent_c
        .get(&format!("/v1/auctions/{auction}/bids"))
        .expect(200)
        .body;
    assert_eq!(bids[0]["status"], "lost", "{bids}");
    // No bid or award after the cancellation, and no second cancellation.
    ent_c
        .post_key(
            &format!("/v1/auctions/{auction}/bids"),
            &key(),
            &json!({"unit_price": "1449", "quantity": "40"}),
        )
        .expect(409);
    assert_eq!(
        w.op.post_key(&path, &key(), &json!({"reason": "again"}))
            .expect(409)
            .code(),
        "auction_closed"
    );
    // The return is a movement of the lot's journal, by the approving person.
    let history =
        w.op.get(&format!("/v1/lots/{}/history", w.em))
            .expect(200)
            .body;
    let back = history
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["cause"] == "auction_cancelled")
        .cloned()
        .unwrap_or_default();
    assert_eq!(back["actor"], "operator:chen-jie", "{history}");
    assert_eq!(w.op.get("/v1/audit/verify").expect(200).body["ok"], true);

    // An awarded auction is past cancelling.
    let awarded = two_person(
        &w,
        "/v1/auctions",
        &auction_body(&w, "2026-12-01T03:00:00Z"),
    )
    .expect(200)
    .body["id"]
        .as_i64()
        .unwrap();
    w.op.post(
        &format!("/v1/auctions/{awarded}/bidders"),
        &json!({"party_id": c, "deposit": "5000", "deposit_ref": "CIB-DEP-0002"}),
    )
    .expect(201);
    ent_c
        .post_key(
            &format!("/v1/auctions/{awarded}/bids"),
            &key(),
            &json!({"unit_price": "1419", "quantity": "100"}),
        )
        .expect(201);
    w.op.set_clock("2026-12-01T03:30:00Z");
    let closed =
        w.op.post(&format!("/v1/auctions/{awarded}/close"), &json!({}))
            .expect(200);
    assert_eq!(closed.body["phase"], "awarded");
    assert_eq!(
        w.op.post_key(
            &format!("/v1/auctions/{awarded}/cancel"),
            &key(),
            &json!({"reason": "太晚"})
        )
        .expect(409)
        .code(),
        "auction_closed"
    );
    assert_all_conserved(&w.op);
}

/// The R4 switches (and fees and windows) bind every sale: one operator alone cannot change them.
fn market_settings_change_needs_a_second_person(b: Backend) {
    let w = world(b);
    let before = w.op.get("/v1/market/settings").expect(200).body;
    assert_eq!(before["benchmark_floor"], true);
    let mut off = before.clone();
    off["benchmark_floor"] = json!(false);
    off["non_attainment_check"] = json!(false);
    let r = w.op.put("/v1/market/settings", &off).expect(202);
    assert_eq!(r.body["kind"], "market_settings");
    let pid = r.body["id"].as_i64().unwrap();
    assert_eq!(
        w.op.get("/v1/market/settings").expect(200).body,
        before,
        "in force only once approved"
    );
    assert_eq!(approve(&w.op, pid).status.as_u16(), 403);
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    assert_eq!(w.op.get("/v1/market/settings").expect(200).body, before);
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["benchmark_floor"], false, "{}", r.body);
    let now = w.op.get("/v1/market/settings").expect(200).body;
    assert_eq!(
        (&now["benchmark_floor"], &now["non_attainment_check"]),
        (&json!(false), &json!(false))
    );
    // Invalid settings are refused before any proposal.
    let mut bad = now.clone();
    bad["buyer_fee_rate"] = json!("0.5");
    w.op.put("/v1/market/settings", &bad).expect(422);
    assert_eq!(w.op.get("/v1/audit/verify").expect(200).body["ok"], true);
}

/// A pledgee declaring far more than its registration secures is paid the secured amount; the
/// rest of the proceeds is the pledgor's. Enforcement asks for no 修改码 (that guards amending,
/// renewing and discharging), as for a forest mortgage; a wrong one given is still refused.
fn pledge_claim_is_capped_at_its_secured_amount(b: Backend) {
    let w = world(b);
    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "100", "lender_party_id": w.bank}),
        )
        .expect(201);
    let id = p.body["id"].as_i64().unwrap();
    w.banker
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &json!({"secured_amount": "80000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let enforce = format!("/v1/pledges/{id}/enforce");
    w.banker
        .post_key(
            &enforce,
            &key(),
            &json!({"amendment_code": "WRONGCODE0000000", "principal": "900000000", "interest": "0", "costs": "0"}),
        )
        .expect(403);
    let r = w
        .banker
        .post_key(
            &enforce,
            &key(),
            &json!({"principal": "900000000", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    assert_eq!(
        r.body["claim_amount"], "900000000.00",
        "the claim as declared"
    );
    let c = party(&w.op, "enterprise", 2);
    // 100 t × 6,300 × 2 years = 1,260,000: the lender 80,000, the pledgor 1,180,000.
    let r = two_person(
        &w,
        &format!("/v1/pledges/{id}/dispose"),
        &json!({"buyer_party_id": c, "unit_price": "6300", "years": 2}),
    )
    .expect(200);
    assert_eq!(
        (
            r.body["paid_to_lender"].as_str(),
            r.body["paid_to_pledgor"].as_str()
        ),
        (Some("80000.00"), Some("1180000.00")),
        "{}",
        r.body
    );
    assert_all_conserved(&w.op);
}

const FARMER_ID: &str = "350721198507154516";

/// A senior forest mortgagee declaring 900,000,000 on a mortgage secured for 80,000 takes
/// 80,000; the junior its claim; the farmer the rest.
fn forest_claim_is_capped_at_its_secured_amount(b: Backend) {
    let srv = Server::start(b);
    let op = srv.admin();
    op.set_clock("2026-11-25T00:00:00Z");
    let farmer = op
        .post("/v1/parties", &json!({"kind": "individual", "name_zh": "林木生", "id_number": FARMER_ID, "region_code": "350721"}))
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let farmer_api = user(&op, "enterprise", Some(farmer), "farmer");
    let (bank1, bank2) = (party(&op, "bank", 1), party(&op, "bank", 2));
    let banker1 = user(&op, "bank", Some(bank1), "banker-1");
    let banker2 = user(&op, "bank", Some(bank2), "banker-2");
    // Registering a parcel takes two people.
    let parcel = common::two_person(
        &op,
        "/v1/forest-rights",
        &key(),
        &json!({"certificate_no": "闽(2026)顺昌县不动产权第0000001号", "holder_party_id": farmer,
                "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
                "compartment": "012", "sub_compartment": "01", "area_mu": "126.50", "forest_category": "commercial",
                "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
                "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household"}),
    )["id"]
        .as_i64()
        .unwrap();
    let mortgage = |banker: &Api, lender: i64, secured: &str, at: &str| {
        let id = farmer_api
            .post(
                "/v1/forest-mortgages",
                &json!({"parcel_ids": [parcel], "lender_party_id": lender}),
            )
            .expect(201)
            .body["id"]
            .as_i64()
            .unwrap();
        banker
            .post(
                &format!("/v1/forest-mortgages/{id}/complete"),
                &json!({"secured_amount": secured, "loan_start": "2026-12-01", "loan_end": "2029-11-30",
                    "appraisal": {"value": "520000.00", "appraiser": "南平林业资产评估有限公司", "kind": "professional", "date": "2026-11-20", "report_no": "南林评〔2026〕88号"},
                    "insurance": {"policy_no": "PICC-NP-2026-7781", "insurer": "人保财险南平分公司", "insured_amount": "520000.00", "beneficiary_party_id": lender},
                    "transfer_ban": false}),
            )
            .expect(200);
        op.set_clock(&format!("{}T23:59:59Z", &at[..10]));
        banker
            .post(
                &format!("/v1/forest-mortgages/{id}/official-registration"),
                &json!({"certificate_no": format!("闽(2026)顺昌县不动产证明第{id:07}号"), "registered_at": at}),
            )
            .expect(200);
        op.post(
            &format!("/v1/forest-mortgages/{id}/official-registration/confirm"),
            &json!({}),
        )
        .expect(200);
        id
    };
    let senior = mortgage(&banker1, bank1, "80000.00", "2026-12-03T10:15:00Z");
    let junior = mortgage(&banker2, bank2, "50000.00", "2026-12-10T09:00:00Z");
    let r = banker1
        .post_key(
            &format!("/v1/forest-mortgages/{senior}/enforce"),
            &key(),
            &json!({"principal": "900000000", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    assert_eq!(
        r.body["claim_amount"], "900000000.00",
        "the claim as declared"
    );
    let buyer = party(&op, "enterprise", 9);
    let r = common::two_person_reply(
        &op,
        &format!("/v1/forest-mortgages/{senior}/dispose"),
        &key(),
        &json!({"proceeds": "200000.00", "buyer_party_id": buyer}),
    )
    .expect(200);
    assert_eq!(
        (
            r.body["paid_to_lender"].as_str(),
            r.body["paid_to_mortgagor"].as_str()
        ),
        (Some("80000.00"), Some("70000.00")),
        "{}",
        r.body
    );
    let m2 = banker2
        .get(&format!("/v1/forest-mortgages/{junior}"))
        .expect(200)
        .body;
    assert_eq!(m2["paid_to_lender"], "50000.00", "{m2}");
    assert_eq!(op.get("/v1/audit/verify").expect(200).body["ok"], true);
}

both_backends!(
    operator_auction_for_a_seller_needs_a_second_person,
    an_unawarded_auction_is_cancelled_by_two_persons,
    market_settings_change_needs_a_second_person,
    pledge_claim_is_capped_at_its_secured_amount,
    forest_claim_is_capped_at_its_secured_amount,
);
