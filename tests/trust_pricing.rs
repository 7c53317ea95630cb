//! Trust in prices, terms and acquisitions (years of the term,
//! R4 on every path, expiry on every movement, how quantity was acquired follows the quantity).

mod common;

use std::str::FromStr;

use common::ledger::{assert_all_conserved, available, dec, holding, issue, key, lot_request};
use common::{uscc, user, Api, Backend, Reply, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// 2026-12-01: a term ending 2030-12-31 has 4 whole years left (the fifth is partly elapsed).
const START: &str = "2026-12-01T02:00:00Z";

struct World {
    _srv: Server,
    admin: Api,
    checker: Api,
    a: i64,
    ent_a: Api,
    b: i64,
    ent_b: Api,
    bank: i64,
    banker: Api,
    /// 485.2 t of SO2, paid-use, held by `a`, valid 2026-01-01 to 2030-12-31, county 350702.
    em: i64,
}

fn enterprise(admin: &Api, n: u32, region: &str) -> (i64, Api) {
    let id = admin
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": format!("企业{n}"), "uscc": uscc(n), "region_code": region}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    (id, user(admin, "enterprise", Some(id), &format!("ent-{n}")))
}

fn world(backend: Backend) -> World {
    // The webhooks here point at loopback port 9 (nobody listens), which the operator allowlists.
    let srv = Server::on_with(
        common::Db::fresh(backend),
        &["--webhook-allow-http", "127.0.0.1:9"],
    );
    let admin = srv.admin();
    admin.set_clock(START);
    let checker = user(&admin, "operator", None, "checker");
    let (a, ent_a) = enterprise(&admin, 1, "350702");
    let (b, ent_b) = enterprise(&admin, 2, "350702");
    let bank = admin
        .post(
            "/v1/parties",
            &json!({"kind": "bank", "name_zh": "兴业银行南平分行", "uscc": uscc(3), "region_code": "350702"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let banker = user(&admin, "bank", Some(bank), "banker");
    let em = issue(
        &admin,
        &checker,
        lot_request("EM", a, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    World {
        _srv: srv,
        admin,
        checker,
        a,
        ent_a,
        b,
        ent_b,
        bank,
        banker,
        em,
    }
}

fn id(r: &Reply) -> i64 {
    r.body["id"].as_i64().unwrap()
}

/// Sets a benchmark price for SO2 in Nanping (maker-checker).
fn benchmark(w: &World, price: &str) {
    let p = w
        .admin
        .post(
            "/v1/benchmark-prices",
            &json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350700", "unit_price": price,
                "valid_from": "2026-01-01", "document_ref": "闽发改价格〔2026〕7号"}),
        )
        .expect(202);
    w.checker
        .post_key(
            &format!("/v1/proposals/{}/approve", id(&p)),
            &key(),
            &json!({}),
        )
        .expect(200);
}

fn transfer(w: &World, body: Value) -> Reply {
    let mut b = json!({"lot_id": w.em, "to_party_id": w.b});
    if let (Some(o), Some(e)) = (b.as_object_mut(), body.as_object()) {
        o.extend(e.clone());
    }
    w.ent_a.post_key("/v1/transfers", &key(), &b)
}

fn registered(w: &World, body: Value) -> Reply {
    let mut b = json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.b,
        "document_ref": "南平转让合同〔2026〕88号"});
    if let (Some(o), Some(e)) = (b.as_object_mut(), body.as_object()) {
        o.extend(e.clone());
    }
    common::two_person_reply(&w.admin, "/v1/transfers/registered", &key(), &b)
}

fn list(ent: &Api, lot: i64, quantity: &str, price: &str, years: i32) -> Reply {
    ent.post_key(
        "/v1/listings",
        &key(),
        &json!({"lot_id": lot, "quantity": quantity, "unit_price": price, "years": years, "min_lot": "1",
            "ends_at": "2030-12-30T08:00:00Z"}),
    )
}

fn buy(ent: &Api, listing: i64, quantity: &str) -> Reply {
    ent.post_key(
        &format!("/v1/listings/{listing}/purchases"),
        &key(),
        &json!({ "quantity": quantity }),
    )
}

/// An operator's confirmation of payment: proposed by `op`, approved by the second operator (the
/// approval's reply carries the settled trade).
fn pay(op: &Api, trade: i64) -> Reply {
    common::two_person_reply(
        op,
        &format!("/v1/trades/{trade}/payment"),
        &key(),
        &json!({"payment_ref": format!("CIB-PAY-{trade}")}),
    )
}

/// Applies (by `ent`, pledgor `lot`'s holder) and registers a pledge; returns (id, amendment code).
fn pledge(
    w: &World,
    ent: &Api,
    lot: i64,
    quantity: &str,
    secured: &str,
    appraisal: &str,
) -> (i64, String) {
    let p = ent
        .post_key(
            "/v1/pledges",
            &key(),
            &json!({"lot_id": lot, "quantity": quantity, "lender_party_id": w.bank}),
        )
        .expect(201);
    let pid = id(&p);
    let r = w
        .banker
        .post_key(
            &format!("/v1/pledges/{pid}/accept"),
            &key(),
            &json!({"secured_amount": secured, "loan_maturity": "2028-12-31", "period_end": "2029-06-30",
                "loan_reference": "CIB-NP-2026-0815", "appraisal_value": appraisal, "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    (pid, r.body["amendment_code"].as_str().unwrap().to_string())
}

fn enforce(w: &World, pid: i64, code: &str) {
    w.banker
        .post_key(
            &format!("/v1/pledges/{pid}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "500000.00", "interest": "0.00", "costs": "0.00"}),
        )
        .expect(200);
}

fn dispose(w: &World, pid: i64, buyer: i64, price: &str, years: i32) -> Reply {
    common::two_person_reply(
        &w.admin,
        &format!("/v1/pledges/{pid}/dispose"),
        &key(),
        &json!({"buyer_party_id": buyer, "unit_price": price, "years": years}),
    )
}

// ---------------------------------------------------------------------------------------------
// #3 One function decides the years a lot has left: whole years, on every path.

/// On 2026-12-01 a term ending 2030-12-31 has 4 whole years left: every sale of 5 (or 30) is a
/// 422 `years_beyond_term` and changes nothing; 4 is accepted.
fn sales_beyond_the_whole_years_left_are_refused(backend: Backend) {
    let w = world(backend);
    for y in [5, 30] {
        let r = transfer(
            &w,
            json!({"quantity": "1", "unit_price": "6300", "years": y}),
        )
        .expect(422);
        assert_eq!(r.code(), "years_beyond_term", "{}", r.body);
        assert_eq!(r.body["errors"][0]["field"], "years");
        let r = registered(
            &w,
            json!({"quantity": "1", "unit_price": "6300", "years": y}),
        )
        .expect(422);
        assert_eq!(r.code(), "years_beyond_term");
        assert_eq!(
            list(&w.ent_a, w.em, "1", "6300", y).expect(422).code(),
            "years_beyond_term"
        );
    }
    assert_eq!(available(&w.admin, w.a, w.em), d("485.2"));
    let t = transfer(
        &w,
        json!({"quantity": "1", "unit_price": "6300", "years": 4}),
    )
    .expect(201);
    assert_eq!(t.body["amount"], "25200.00");
    registered(
        &w,
        json!({"quantity": "1", "unit_price": "6300", "years": 4}),
    )
    .expect(200);

    // A listing of 4 years sells only while 4 whole years are left.
    let l = id(&list(&w.ent_a, w.em, "10", "6300", 4).expect(201));
    let t = id(&buy(&w.ent_b, l, "1").expect(201));
    pay(&w.admin, t).expect(200);
    w.admin.set_clock("2027-01-02T02:00:00Z");
    assert_eq!(
        buy(&w.ent_b, l, "1").expect(422).code(),
        "years_beyond_term"
    );

    // A disposal of 30 years on a lot with 3 whole years left books nothing.
    let (pid, code) = pledge(&w, &w.ent_a, w.em, "100", "1000000.00", "3000000.00");
    enforce(&w, pid, &code);
    let r = dispose(&w, pid, w.b, "6300", 30).expect(422);
    assert_eq!(r.code(), "years_beyond_term");
    let p = w.admin.get(&format!("/v1/pledges/{pid}")).expect(200).body;
    assert_eq!(
        (p["status"].as_str(), &p["proceeds"]),
        (Some("enforcing"), &Value::Null)
    );
    let r = dispose(&w, pid, w.b, "6300", 3).expect(200);
    // 100 t × 6,300 × 3 years.
    assert_eq!(r.body["proceeds"], "1890000.00");
    assert_all_conserved(&w.admin);
}

/// 100 t × 6,300 is valued for the 4 whole years left (2,520,000), not 5: a loan of 2,000,000 is
/// 79.37 % of it, above the 70 % alert. In the last, partly elapsed year nothing is left to value
/// and no priced sale is possible; a gift still is.
fn valuation_counts_whole_years_only(backend: Backend) {
    let w = world(backend);
    benchmark(&w, "6300");
    let v = w
        .ent_a
        .get(&format!("/v1/valuations?lot_id={}&quantity=100", w.em))
        .expect(200)
        .body;
    assert_eq!(
        (v["years"].as_i64(), v["value"].as_str()),
        (Some(4), Some("2520000.00"))
    );
    let (pid, _) = pledge(&w, &w.ent_a, w.em, "100", "2000000.00", "3000000.00");
    let v = w
        .banker
        .get(&format!("/v1/pledges/{pid}/valuation"))
        .expect(200)
        .body;
    assert_eq!(
        (
            v["method"].as_str(),
            v["years"].as_i64(),
            v["value"].as_str(),
            v["loan_to_value_percent"].as_str()
        ),
        (
            Some("benchmark"),
            Some(4),
            Some("2520000.00"),
            Some("79.37")
        )
    );
    // The alert went to the lender at registration: the sweep finds nothing new to tell.
    let s = w
        .admin
        .post("/v1/collateral/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(s["ltv_alerts"], json!([]));

    // The last year of the term: 0 whole years.
    w.admin.set_clock("2030-06-01T02:00:00Z");
    let v = w
        .ent_a
        .get(&format!("/v1/valuations?lot_id={}&quantity=100", w.em))
        .expect(200)
        .body;
    assert_eq!(
        (v["years"].as_i64(), v["value"].as_str()),
        (Some(0), Some("0.00"))
    );
    let r = transfer(
        &w,
        json!({"quantity": "1", "unit_price": "6300", "years": 1}),
    )
    .expect(422);
    assert_eq!(r.code(), "years_beyond_term");
    assert_eq!(
        list(&w.ent_a, w.em, "1", "6300", 1).expect(422).code(),
        "years_beyond_term"
    );
    let gift = transfer(&w, json!({"quantity": "1"})).expect(201);
    w.ent_b
        .post_key(
            &format!("/v1/transfers/{}/confirm", id(&gift)),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_all_conserved(&w.admin);
}

/// The LTV alert reads the same whole years: a loan that was 63 % of 5 years is 79 % of the 4
/// whole years left, and the lender is told when the loan is registered.
fn ltv_alert_reads_whole_years(backend: Backend) {
    let w = world(backend);
    benchmark(&w, "6300");
    let hook = w
        .banker
        .post(
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/nobody-listens"}),
        )
        .expect(201);
    let hook_id = id(&hook);
    pledge(&w, &w.ent_a, w.em, "100", "2000000.00", "3000000.00");
    let log = w
        .banker
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
        .expect(200)
        .body["items"]
        .clone();
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|d| d["event"] == "pledge.ltv_above_threshold"),
        "{log}"
    );
    assert_all_conserved(&w.admin);
}

both_backends!(
    sales_beyond_the_whole_years_left_are_refused,
    valuation_counts_whole_years_only,
    ltv_alert_reads_whole_years,
);

// ---------------------------------------------------------------------------------------------
// #1 R4 guards every priced emission-right transfer, whatever its path, through one check.

fn flag(w: &World, region: &str, on: bool) {
    common::region_flag(
        &w.admin,
        &w.checker,
        &json!({"region_code": region, "pollutant": "SO2", "non_attainment": on, "document_ref": "南环〔2026〕12号"}),
    );
}

fn switch(w: &World, field: &str, on: bool) {
    let mut s = w.admin.get("/v1/market/settings").expect(200).body;
    s[field] = json!(on);
    common::market_settings(&w.admin, &s);
}

fn r4_guards_every_path(backend: Backend) {
    let w = world(backend);
    benchmark(&w, "6300");
    let (c, _) = enterprise(&w.admin, 4, "350781");
    flag(&w, "350781", true);
    let token = json!({"quantity": "10", "unit_price": "0.0001", "years": 1});
    let fair = json!({"quantity": "10", "unit_price": "6300", "years": 1});
    let to_c = json!({"quantity": "10", "unit_price": "6300", "years": 1, "to_party_id": c});
    assert_eq!(
        transfer(&w, token.clone()).expect(422).code(),
        "price_below_benchmark"
    );
    assert_eq!(
        registered(&w, token.clone()).expect(422).code(),
        "price_below_benchmark"
    );
    assert_eq!(
        transfer(&w, to_c.clone()).expect(422).code(),
        "region_non_attainment"
    );
    assert_eq!(
        registered(&w, to_c.clone()).expect(422).code(),
        "region_non_attainment"
    );
    // A gift moves the load all the same.
    let gift_to_c = json!({"quantity": "1", "to_party_id": c});
    assert_eq!(
        transfer(&w, gift_to_c.clone()).expect(422).code(),
        "region_non_attainment"
    );
    assert_eq!(available(&w.admin, w.a, w.em), d("485.2"));
    transfer(&w, fair.clone()).expect(201);
    registered(&w, fair).expect(200);

    // A disposal obeys the same rules: directly, and through a listing or an auction.
    let (pid, code) = pledge(&w, &w.ent_a, w.em, "100", "1000000.00", "3000000.00");
    enforce(&w, pid, &code);
    assert_eq!(
        dispose(&w, pid, w.b, "1", 1).expect(422).code(),
        "price_below_benchmark"
    );
    assert_eq!(
        dispose(&w, pid, c, "6300", 1).expect(422).code(),
        "region_non_attainment"
    );
    let low = w.admin.post_key(
        "/v1/listings",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": pid, "quantity": "100", "unit_price": "1", "years": 1,
            "min_lot": "1", "ends_at": "2026-12-30T08:00:00Z"}),
    );
    assert_eq!(low.expect(422).code(), "price_below_benchmark");
    let low = w.admin.post_key(
        "/v1/auctions",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": pid, "quantity": "100", "reserve_price": "1", "increment": "1",
            "min_bid": "1", "max_bid": "100", "years": 1, "opens_at": START,
            "closes_at": "2026-12-02T02:00:00Z", "sealed": false, "deposit": "0"}),
    );
    assert_eq!(low.expect(422).code(), "price_below_benchmark");
    let p = w.admin.get(&format!("/v1/pledges/{pid}")).expect(200).body;
    assert_eq!(p["status"], "enforcing");
    assert_eq!(dec(&holding(&w.admin, w.a, w.em)["pledged"]), d("100"));

    // The settings switches still apply, to every path alike.
    switch(&w, "benchmark_floor", false);
    transfer(&w, token.clone()).expect(201);
    switch(&w, "non_attainment_check", false);
    transfer(&w, to_c).expect(201);
    dispose(&w, pid, c, "1", 1).expect(200);
    assert_all_conserved(&w.admin);
}

/// A market purchase and an auction award are refused or pass over a bid when the floor rose or the
/// buyer's region was flagged after the offer was made.
fn r4_is_checked_when_the_sale_happens(backend: Backend) {
    let w = world(backend);
    benchmark(&w, "6300");
    let l = id(&list(&w.ent_a, w.em, "10", "6300", 1).expect(201));
    let (c, ent_c) = enterprise(&w.admin, 4, "350781");
    let _ = c;
    flag(&w, "350781", true);
    assert_eq!(
        buy(&ent_c, l, "1").expect(422).code(),
        "region_non_attainment"
    );
    // The floor rises to 7,000 from tomorrow: the listing at 6,300 no longer sells.
    let p = w
        .admin
        .post(
            "/v1/benchmark-prices",
            &json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350700", "unit_price": "7000",
                "valid_from": "2026-12-02", "document_ref": "闽发改价格〔2026〕9号"}),
        )
        .expect(202);
    w.checker
        .post_key(
            &format!("/v1/proposals/{}/approve", id(&p)),
            &key(),
            &json!({}),
        )
        .expect(200);
    buy(&w.ent_b, l, "1").expect(201);
    w.admin.set_clock("2026-12-02T02:00:00Z");
    assert_eq!(
        buy(&w.ent_b, l, "1").expect(422).code(),
        "price_below_benchmark"
    );
    assert_all_conserved(&w.admin);
}

both_backends!(r4_guards_every_path, r4_is_checked_when_the_sale_happens);

// ---------------------------------------------------------------------------------------------
// #8 Expired lots do not settle (R6): every movement rechecks expiry, at the ledger.

/// A lot of `right_type` held by `a` whose term ends 2026-12-31.
fn short_lot(w: &World, right_type: &str, source: &str) -> i64 {
    let mut body = lot_request(right_type, w.a, "100", source);
    body["valid_to"] = json!("2026-12-31");
    issue(&w.admin, &w.checker, body)["id"].as_i64().unwrap()
}

fn requested_before_expiry_never_settles_after_it(backend: Backend) {
    let w = world(backend);
    let em = short_lot(&w, "EM", "南环有偿〔2026〕31号");
    w.admin.set_clock("2026-12-30T02:00:00Z");
    // EM needs the operator's approval; the receiver confirms before the term ends.
    let t = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": em, "to_party_id": w.b, "quantity": "40"}),
        )
        .expect(201);
    let tid = id(&t);
    w.ent_b
        .post_key(&format!("/v1/transfers/{tid}/confirm"), &key(), &json!({}))
        .expect(200);
    w.admin.set_clock("2027-01-01T02:00:00Z");
    let r = w
        .admin
        .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
        .expect(409);
    assert_eq!(r.code(), "lot_expired");
    // The request can never settle: rejected by the registry, the quantity back with the sender.
    let tr = w
        .ent_a
        .get(&format!("/v1/transfers/{tid}"))
        .expect(200)
        .body;
    assert_eq!(
        (tr["status"].as_str(), tr["decided_by"].as_str()),
        (Some("rejected"), Some("registry"))
    );
    assert_eq!(available(&w.admin, w.a, em), d("100"));
    assert_eq!(available(&w.admin, w.b, em), d("0"));
    let h = holding(&w.admin, w.a, em);
    assert_eq!(dec(&h["in_transfer"]), d("0"));

    // A right type without approval: the receiver's confirmation after the term does not settle.
    let ca = short_lot(&w, "CA", "闽环配额〔2026〕31号");
    w.admin.set_clock("2026-12-30T02:00:00Z");
    let t = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": ca, "to_party_id": w.b, "quantity": "40"}),
        )
        .expect(201);
    w.admin.set_clock("2027-01-01T02:00:00Z");
    let r = w
        .ent_b
        .post_key(
            &format!("/v1/transfers/{}/confirm", id(&t)),
            &key(),
            &json!({}),
        )
        .expect(409);
    assert_eq!(r.code(), "lot_expired");
    assert_eq!(available(&w.admin, w.a, ca), d("100"));
    assert_eq!(available(&w.admin, w.b, ca), d("0"));
    assert_all_conserved(&w.admin);
}

fn a_trade_paid_after_expiry_does_not_deliver(backend: Backend) {
    let w = world(backend);
    let ca = short_lot(&w, "CA", "闽环配额〔2026〕32号");
    w.admin.set_clock("2026-12-30T02:00:00Z");
    let l = w
        .ent_a
        .post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": ca, "quantity": "10", "unit_price": "33", "min_lot": "1",
                "ends_at": "2026-12-31T08:00:00Z"}),
        )
        .expect(201);
    let t = id(&buy(&w.ent_b, id(&l), "10").expect(201));
    w.admin.set_clock("2027-01-01T02:00:00Z");
    assert_eq!(pay(&w.admin, t).expect(409).code(), "lot_expired");
    let tr = w.admin.get(&format!("/v1/trades/{t}")).expect(200).body;
    assert_eq!(tr["status"], "expired");
    assert_eq!(available(&w.admin, w.b, ca), d("0"));
    let h = holding(&w.admin, w.a, ca);
    assert_eq!(dec(&h["in_transfer"]), d("0"));
    assert_all_conserved(&w.admin);
}

both_backends!(
    requested_before_expiry_never_settles_after_it,
    a_trade_paid_after_expiry_does_not_deliver
);

// ---------------------------------------------------------------------------------------------
// #2 How quantity was acquired follows the quantity (R11).

/// A token-price round trip does not turn free allocation into a market purchase.
fn token_round_trip_does_not_launder_free_allocation(backend: Backend) {
    let w = world(backend);
    benchmark(&w, "6300");
    switch(&w, "benchmark_floor", false);
    let mut body = lot_request("EM", w.a, "100", "南环初始〔2026〕5号");
    body["origin"] = json!("initial_allocation");
    let free = issue(&w.admin, &w.checker, body)["id"].as_i64().unwrap();
    let token = |from: i64, to: i64| {
        common::two_person_reply(
            &w.admin,
            "/v1/transfers/registered",
            &key(),
            &json!({"lot_id": free, "from_party_id": from, "to_party_id": to, "quantity": "100",
                    "unit_price": "0.0001", "years": 1, "document_ref": "往返"}),
        )
        .expect(200)
    };
    token(w.a, w.b);
    token(w.b, w.a);
    let h = holding(&w.admin, w.a, free);
    assert_eq!(h["acquired"]["market"], "0");
    assert_eq!(h["acquired"]["other"], "100");
    let r = w.ent_a.post_key(
        "/v1/pledges",
        &key(),
        &json!({"lot_id": free, "quantity": "1", "lender_party_id": w.bank}),
    );
    assert_eq!(r.expect(422).code(), "right_not_eligible");
    assert_all_conserved(&w.admin);
}

/// Disposing of pledged (paid) units leaves the free units free: they cannot be pledged.
fn disposal_of_paid_units_leaves_free_units_free(backend: Backend) {
    let w = world(backend);
    benchmark(&w, "6300");
    // B holds a paid-use lot; A buys 100 of it at the benchmark and is given 100 more.
    let lot = issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.b, "300", "南环有偿〔2026〕77号"),
    )["id"]
        .as_i64()
        .unwrap();
    let reg = |q: &str, price: Option<&str>| {
        let mut b = json!({"lot_id": lot, "from_party_id": w.b, "to_party_id": w.a, "quantity": q,
            "document_ref": "南平转让合同〔2026〕90号"});
        if let Some(p) = price {
            b["unit_price"] = json!(p);
            b["years"] = json!(1);
        }
        common::two_person_reply(&w.admin, "/v1/transfers/registered", &key(), &b).expect(200)
    };
    reg("100", Some("6300"));
    reg("100", None);
    let h = holding(&w.admin, w.a, lot);
    assert_eq!(
        (
            h["acquired"]["market"].as_str(),
            h["acquired"]["other"].as_str()
        ),
        (Some("100"), Some("100"))
    );
    let (pid, code) = pledge(&w, &w.ent_a, lot, "100", "300000.00", "600000.00");
    enforce(&w, pid, &code);
    let (c, _) = enterprise(&w.admin, 5, "350702");
    dispose(&w, pid, c, "6300", 1).expect(200);
    let h = holding(&w.admin, w.a, lot);
    assert_eq!(
        (
            h["acquired"]["market"].as_str(),
            h["acquired"]["other"].as_str()
        ),
        (Some("0"), Some("100"))
    );
    let r = w.ent_a.post_key(
        "/v1/pledges",
        &key(),
        &json!({"lot_id": lot, "quantity": "1", "lender_party_id": w.bank}),
    );
    assert_eq!(r.expect(422).code(), "right_not_eligible");
    // The buyer at the benchmark bought paid units.
    assert_eq!(holding(&w.admin, c, lot)["acquired"]["market"], "100");
    assert_all_conserved(&w.admin);
}

both_backends!(
    token_round_trip_does_not_launder_free_allocation,
    disposal_of_paid_units_leaves_free_units_free
);

// ---------------------------------------------------------------------------------------------
// R4 at settlement: a benchmark approved or a region flagged after the request binds the
// transfer or trade when it settles (as expiry does), through the same check.

/// A transfer at 0.01 requested before any benchmark was approved does not settle once one is in
/// force; a transfer into a region flagged non-attainment after the request does not settle either.
/// Refused settlement changes nothing: the transfer stays confirmed, the quantity in transfer.
fn r4_is_rechecked_when_a_transfer_settles(backend: Backend) {
    let w = world(backend);
    let (c, ent_c) = enterprise(&w.admin, 4, "350781");
    let t = id(&transfer(
        &w,
        json!({"quantity": "10", "unit_price": "0.01", "years": 1}),
    )
    .expect(201));
    let t2 = id(&transfer(
        &w,
        json!({"quantity": "5", "unit_price": "6300", "years": 1, "to_party_id": c}),
    )
    .expect(201));
    w.ent_b
        .post_key(&format!("/v1/transfers/{t}/confirm"), &key(), &json!({}))
        .expect(200);
    ent_c
        .post_key(&format!("/v1/transfers/{t2}/confirm"), &key(), &json!({}))
        .expect(200);
    benchmark(&w, "6300");
    flag(&w, "350781", true);
    for (tid, code) in [(t, "price_below_benchmark"), (t2, "region_non_attainment")] {
        let r = w
            .admin
            .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
            .expect(422);
        assert_eq!(r.code(), code);
        let tr = w
            .admin
            .get(&format!("/v1/transfers/{tid}"))
            .expect(200)
            .body;
        assert_eq!(tr["status"], "confirmed");
    }
    assert_eq!(available(&w.admin, w.b, w.em), d("0"));
    assert_eq!(available(&w.admin, c, w.em), d("0"));
    assert_eq!(dec(&holding(&w.admin, w.a, w.em)["in_transfer"]), d("15"));
    assert_all_conserved(&w.admin);
}

/// A trade opened before a benchmark was approved, or before the buyer's region was flagged, is
/// not delivered on payment: 422, and the trade stays awaiting payment.
fn r4_is_rechecked_when_a_trade_is_paid(backend: Backend) {
    let w = world(backend);
    let (c, ent_c) = enterprise(&w.admin, 4, "350781");
    let cheap = id(&list(&w.ent_a, w.em, "10", "0.01", 1).expect(201));
    let fair = id(&list(&w.ent_a, w.em, "10", "6300", 1).expect(201));
    let t = id(&buy(&w.ent_b, cheap, "10").expect(201));
    let t2 = id(&buy(&ent_c, fair, "10").expect(201));
    benchmark(&w, "6300");
    flag(&w, "350781", true);
    for (tid, code) in [(t, "price_below_benchmark"), (t2, "region_non_attainment")] {
        assert_eq!(pay(&w.admin, tid).expect(422).code(), code);
        let tr = w.admin.get(&format!("/v1/trades/{tid}")).expect(200).body;
        assert_eq!(tr["status"], "awaiting_payment");
    }
    assert_eq!(available(&w.admin, w.b, w.em), d("0"));
    assert_eq!(available(&w.admin, c, w.em), d("0"));
    assert_eq!(dec(&holding(&w.admin, w.a, w.em)["in_transfer"]), d("20"));
    assert_all_conserved(&w.admin);
}

both_backends!(
    r4_is_rechecked_when_a_transfer_settles,
    r4_is_rechecked_when_a_trade_is_paid
);
