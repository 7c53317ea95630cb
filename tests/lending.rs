//! Financing requests (融资需求) and banks taking them (抢单): the collateral is valued (R3) and
//! reserved when posted, exactly one bank takes a request even across server processes, the
//! taking bank registers the pledge on the request's terms or the request reopens when it
//! declines or its response window ends, and the 金服云 feed gives every step.

mod common;

use std::str::FromStr;

use common::ledger::{assert_all_conserved, dec, holding, issue, key, lot_request};
use common::{party, user, Api, Backend, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

struct World {
    srv: Server,
    admin: Api,
    a: i64,
    b: i64,
    ent_a: Api,
    ent_b: Api,
    bank1: i64,
    banker1: Api,
    banker2: Api,
    em: i64,
}

/// Wednesday 2026-12-02, 10:00 in Fujian.
const POSTED_AT: &str = "2026-12-02T02:00:00Z";

fn world(backend: Backend) -> World {
    let srv = Server::start(backend);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let b = party(&admin, "enterprise", 2);
    let bank1 = party(&admin, "bank", 3);
    let bank2 = party(&admin, "bank", 4);
    let ent_a = user(&admin, "enterprise", Some(a), "ent-a");
    let ent_b = user(&admin, "enterprise", Some(b), "ent-b");
    let banker1 = user(&admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&admin, "bank", Some(bank2), "banker-2");
    admin.set_clock(POSTED_AT);
    // SO2 benchmark of 6,300 yuan per ton-year in Nanping (maker-checker).
    let p = admin
        .post(
            "/v1/benchmark-prices",
            &json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350700", "unit_price": "6300",
                "valid_from": "2026-01-01", "document_ref": "闽发改价格〔2026〕7号"}),
        )
        .expect(202);
    checker
        .post_key(
            &format!("/v1/proposals/{}/approve", p.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    // A paid-use allocation: pledgeable (R11).
    let em = issue(
        &admin,
        &checker,
        lot_request("EM", a, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    World {
        srv,
        admin,
        a,
        b,
        ent_a,
        ent_b,
        bank1,
        banker1,
        banker2,
        em,
    }
}

fn request_body(lot: i64, quantity: &str) -> Value {
    json!({"amount": "2000000.00", "term_months": 24, "purpose": "扩建武夷岩茶加工厂的清洁能源烘焙线",
        "green_tag": "modern_green_agriculture", "collateral": {"lot_id": lot, "quantity": quantity}})
}

fn post(w: &World, quantity: &str) -> Value {
    w.ent_a
        .post_key(
            "/v1/financing-requests",
            &key(),
            &request_body(w.em, quantity),
        )
        .expect(201)
        .body
}

fn accept_body(secured: &str) -> Value {
    json!({"secured_amount": secured, "loan_maturity": "2028-12-31", "period_end": "2029-06-30",
        "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
        "appraisal_date": "2026-11-20"})
}

fn buckets(w: &World) -> (Decimal, Decimal, Decimal) {
    let h = holding(&w.admin, w.a, w.em);
    (
        dec(&h["available"]),
        dec(&h["reserved"]),
        dec(&h["pledged"]),
    )
}

/// The response window's end (the test clock runs on from where it is set, so to the second).
fn due(v: &Value) -> &str {
    v["response_due"].as_str().unwrap()
}

fn events(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}

fn full_flow(b: Backend) {
    let w = world(b);
    let r = post(&w, "100");
    let id = r["id"].as_i64().unwrap();
    assert_eq!(r["status"], "open");
    assert_eq!(r["green_tag"], "modern_green_agriculture");
    // R3: 100 t × 6,300 yuan per ton-year × 4 whole years left (2026-12-02 to 2030-12-31).
    assert_eq!(r["collateral"]["value"], "2520000.00");
    assert_eq!(r["collateral"]["valuation_method"], "benchmark");
    assert_eq!(buckets(&w), (d("385.2"), d("100"), d("0")));
    assert_all_conserved(&w.admin);

    // A bank sees the open request with the collateral's value, not who asks.
    let seen = w.banker2.get("/v1/financing-requests").expect(200).body;
    let item = &seen["items"][0];
    assert_eq!(item["id"], id);
    assert!(item.get("applicant_id").is_none(), "{item}");
    assert_eq!(item["applicant_kind"], "enterprise");
    assert_eq!(item["collateral"]["value"], "2520000.00");
    assert_eq!(item["collateral"]["holding_pledged"], "0");
    let one = w
        .banker2
        .get(&format!("/v1/financing-requests/{id}"))
        .expect(200)
        .body;
    assert!(
        one.get("applicant_id").is_none() && one.get("events").is_none(),
        "{one}"
    );
    // Another enterprise does not see it at all.
    w.ent_b
        .get(&format!("/v1/financing-requests/{id}"))
        .expect(404);

    // Bank 1 takes it; bank 2 is too late.
    let taken = w
        .banker1
        .post_key(
            &format!("/v1/financing-requests/{id}/take"),
            &key(),
            &json!({}),
        )
        .expect(200)
        .body;
    assert_eq!(taken["status"], "taken");
    assert_eq!(taken["bank_id"], w.bank1);
    assert_eq!(taken["applicant_id"], w.a);
    // Three working days from Wednesday: Monday, same time.
    assert!(due(&taken).starts_with("2026-12-07T02:00:00"), "{taken}");
    let pledge = taken["pledge_id"].as_i64().unwrap();
    let late = w
        .banker2
        .post_key(
            &format!("/v1/financing-requests/{id}/take"),
            &key(),
            &json!({}),
        )
        .expect(409);
    assert_eq!(late.code(), "request_taken");
    assert_eq!(
        late.header("content-type"),
        Some("application/problem+json")
    );
    // Bank 2 no longer sees the request.
    w.banker2
        .get(&format!("/v1/financing-requests/{id}"))
        .expect(404);
    // The application is open to bank 1 on the request's terms.
    let p = w
        .banker1
        .get(&format!("/v1/pledges/{pledge}"))
        .expect(200)
        .body;
    assert_eq!(p["status"], "applied");
    assert_eq!(dec(&p["quantity"]), d("100"));

    // A bank lends no more than was asked.
    let too_much = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{pledge}/accept"),
            &key(),
            &accept_body("2000000.01"),
        )
        .expect(422);
    assert_eq!(too_much.code(), "exceeds_request");
    assert_eq!(buckets(&w), (d("385.2"), d("100"), d("0")));

    // Accepting registers the pledge through its own registration and funds the request.
    let acc = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{pledge}/accept"),
            &key(),
            &accept_body("2000000.00"),
        )
        .expect(200)
        .body;
    assert_eq!(acc["status"], "registered", "{acc}");
    assert_eq!(buckets(&w), (d("385.2"), d("0"), d("100")));
    assert_all_conserved(&w.admin);
    let mine = w
        .ent_a
        .get(&format!("/v1/financing-requests/{id}"))
        .expect(200)
        .body;
    assert_eq!(mine["status"], "funded");
    assert_eq!(events(&mine), ["posted", "taken", "funded"]);
    // A funded request is no longer withdrawn or taken.
    w.ent_a
        .post_key(
            &format!("/v1/financing-requests/{id}/withdraw"),
            &key(),
            &json!({}),
        )
        .expect(409);

    // The feed for 金服云: every step in order, then nothing new after the cursor.
    let feed = w.admin.get("/v1/financing-requests/feed").expect(200).body;
    let steps: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["posted", "taken", "funded"]);
    assert_eq!(feed["items"][2]["status"], "funded");
    assert_eq!(feed["items"][2]["bank_id"], w.bank1);
    let next = feed["next_since"].as_str().unwrap();
    let rest = w
        .admin
        .get(&format!("/v1/financing-requests/feed?since={next}"))
        .expect(200)
        .body;
    assert_eq!(rest["items"].as_array().unwrap().len(), 0);
    assert_eq!(rest["next_since"], next);
    // By time: events after the moment of posting (all of them happened at that moment).
    let by_time = w
        .admin
        .get("/v1/financing-requests/feed?since=2026-12-01T00:00:00Z")
        .expect(200)
        .body;
    assert_eq!(by_time["items"].as_array().unwrap().len(), 3);
    // CSV, by `Accept` and by `format`.
    for (path, accept) in [
        ("/v1/financing-requests/feed", "text/csv"),
        ("/v1/financing-requests/feed?format=csv", "*/*"),
    ] {
        let resp = reqwest::blocking::Client::new()
            .get(format!("{}{path}", w.srv.base))
            .bearer_auth(w.admin.token.as_deref().unwrap())
            .header("Accept", accept)
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let text = resp.text().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("event_id,request_id,event,"), "{text}");
        assert!(lines[3].contains(",funded,"), "{text}");
        assert!(
            lines[3].contains(",2000000.00,24,modern_green_agriculture,EM,100,2520000.00,"),
            "{text}"
        );
    }
    // Banks and enterprises do not read the feed.
    w.banker1.get("/v1/financing-requests/feed").expect(403);
    w.ent_a.get("/v1/financing-requests/feed").expect(403);
}

fn race_two_processes(b: Backend) {
    let w = world(b);
    let second = Server::on(w.srv.db.clone());
    let bases = [w.srv.base.clone(), second.base.clone()];
    // Six banks, three on each process.
    let mut bankers = Vec::new();
    for i in 0..6u32 {
        let p = party(&w.admin, "bank", 200 + i);
        let api = user(&w.admin, "bank", Some(p), &format!("racer-{i}"));
        let api = Api::new(&bases[i as usize % 2]).with_token(api.token.as_deref().unwrap());
        bankers.push((p, api));
    }
    for round in 0..3 {
        let id = post(&w, "50")["id"].as_i64().unwrap();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(bankers.len()));
        let threads: Vec<_> = bankers
            .iter()
            .cloned()
            .map(|(p, api)| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    let r = api.post_key(
                        &format!("/v1/financing-requests/{id}/take"),
                        &key(),
                        &json!({}),
                    );
                    (p, r.status.as_u16(), r.code().to_string())
                })
            })
            .collect();
        let results: Vec<(i64, u16, String)> =
            threads.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter(|r| r.1 == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in results.iter().filter(|r| r.1 != 200) {
            assert_eq!((r.1, r.2.as_str()), (409, "request_taken"), "{results:?}");
        }
        let now = w
            .admin
            .get(&format!("/v1/financing-requests/{id}"))
            .expect(200)
            .body;
        assert_eq!(now["bank_id"], winners[0].0);
        assert_eq!(events(&now), ["posted", "taken"]);
        // Exactly one application was opened.
        let pledges = w
            .admin
            .get(&format!("/v1/pledges?lot_id={}&status=applied", w.em))
            .expect(200)
            .body;
        assert_eq!(pledges["items"].as_array().unwrap().len(), round + 1);
    }
    // Reserved: three requests of 50 each, nothing lost or doubled.
    assert_eq!(buckets(&w), (d("335.2"), d("150"), d("0")));
    assert_all_conserved(&w.admin);
}

fn window_reopens(b: Backend) {
    let w = world(b);
    let id = post(&w, "100")["id"].as_i64().unwrap();
    let taken = w
        .banker1
        .post_key(
            &format!("/v1/financing-requests/{id}/take"),
            &key(),
            &json!({}),
        )
        .expect(200)
        .body;
    let pledge = taken["pledge_id"].as_i64().unwrap();
    // Just before the window ends: nothing reopens.
    w.admin.set_clock("2026-12-07T01:59:59Z");
    let s = w
        .admin
        .post("/v1/financing-requests/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(s["reopened"], json!([]));
    // Just after (taken less than a second after 10:00 on Wednesday): the bank can no longer
    // accept, and the sweep reopens the request.
    w.admin.set_clock("2026-12-07T02:00:01Z");
    let late = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{pledge}/accept"),
            &key(),
            &accept_body("1500000.00"),
        )
        .expect(409);
    assert_eq!(late.code(), "response_window_closed");
    let s = w
        .admin
        .post("/v1/financing-requests/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(s["reopened"], json!([id]));
    let again = w
        .admin
        .post("/v1/financing-requests/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(again["reopened"], json!([]));
    let r = w
        .ent_a
        .get(&format!("/v1/financing-requests/{id}"))
        .expect(200)
        .body;
    assert_eq!(r["status"], "open");
    assert!(r.get("bank_id").is_none());
    assert_eq!(events(&r), ["posted", "taken", "window_lapsed"]);
    let p = w
        .admin
        .get(&format!("/v1/pledges/{pledge}"))
        .expect(200)
        .body;
    assert_eq!(p["status"], "withdrawn");
    // Still reserved, and open to every bank again: bank 2 takes it, then declines.
    assert_eq!(buckets(&w), (d("385.2"), d("100"), d("0")));
    let t2 = w
        .banker2
        .post_key(
            &format!("/v1/financing-requests/{id}/take"),
            &key(),
            &json!({}),
        )
        .expect(200)
        .body;
    // Taken on Monday: Tuesday, Wednesday, Thursday.
    assert!(due(&t2).starts_with("2026-12-10T02:00:01"), "{t2}");
    // Only the taking bank declines.
    w.banker1
        .post_key(
            &format!("/v1/financing-requests/{id}/decline"),
            &key(),
            &json!({}),
        )
        .expect(404);
    let dec_reply = w
        .banker2
        .post_key(
            &format!("/v1/financing-requests/{id}/decline"),
            &key(),
            &json!({"reason": "抵押率不足"}),
        )
        .expect(200)
        .body;
    assert_eq!(dec_reply["status"], "open");
    let r = w
        .ent_a
        .get(&format!("/v1/financing-requests/{id}"))
        .expect(200)
        .body;
    assert_eq!(
        events(&r),
        ["posted", "taken", "window_lapsed", "taken", "declined"]
    );
    // A bank that declines through the pledge itself: the sweep reopens the request too.
    let t3 = w
        .banker1
        .post_key(
            &format!("/v1/financing-requests/{id}/take"),
            &key(),
            &json!({}),
        )
        .expect(200)
        .body;
    let p3 = t3["pledge_id"].as_i64().unwrap();
    w.banker1
        .post_key(&format!("/v1/pledges/{p3}/withdraw"), &key(), &json!({}))
        .expect(200);
    let s = w
        .admin
        .post("/v1/financing-requests/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(s["reopened"], json!([id]));
    // A shorter configured window applies to requests taken from then on.
    w.admin
        .put(
            "/v1/financing-requests/settings",
            &json!({"response_working_days": 1}),
        )
        .expect(200);
    let t4 = w
        .banker2
        .post_key(
            &format!("/v1/financing-requests/{id}/take"),
            &key(),
            &json!({}),
        )
        .expect(200)
        .body;
    assert!(due(&t4).starts_with("2026-12-08T02:00:01"), "{t4}");
    w.admin
        .put(
            "/v1/financing-requests/settings",
            &json!({"response_working_days": 0}),
        )
        .expect(422);
    assert_eq!(buckets(&w), (d("385.2"), d("100"), d("0")));
    assert_all_conserved(&w.admin);
}

fn withdrawal_releases(b: Backend) {
    let w = world(b);
    let id = post(&w, "100")["id"].as_i64().unwrap();
    assert_eq!(buckets(&w), (d("385.2"), d("100"), d("0")));
    // Only the applicant withdraws.
    w.ent_b
        .post_key(
            &format!("/v1/financing-requests/{id}/withdraw"),
            &key(),
            &json!({}),
        )
        .expect(404);
    w.banker1
        .post_key(
            &format!("/v1/financing-requests/{id}/withdraw"),
            &key(),
            &json!({}),
        )
        .expect(403);
    let k = key();
    let body = json!({"reason": "已获其他融资"});
    let r = w
        .ent_a
        .post_key(&format!("/v1/financing-requests/{id}/withdraw"), &k, &body)
        .expect(200)
        .body;
    assert_eq!(r["status"], "withdrawn");
    assert_eq!(buckets(&w), (d("485.2"), d("0"), d("0")));
    // A retry with the same key replays; a new one is refused; nothing moves twice.
    w.ent_a
        .post_key(&format!("/v1/financing-requests/{id}/withdraw"), &k, &body)
        .expect(200);
    let again = w
        .ent_a
        .post_key(
            &format!("/v1/financing-requests/{id}/withdraw"),
            &key(),
            &body,
        )
        .expect(409);
    assert_eq!(again.code(), "request_status");
    assert_eq!(buckets(&w), (d("485.2"), d("0"), d("0")));
    // A withdrawn request cannot be taken.
    w.banker1
        .post_key(
            &format!("/v1/financing-requests/{id}/take"),
            &key(),
            &json!({}),
        )
        .expect(404);

    // Withdrawing a taken request also ends the application opened to the bank.
    let id2 = post(&w, "60")["id"].as_i64().unwrap();
    let t = w
        .banker1
        .post_key(
            &format!("/v1/financing-requests/{id2}/take"),
            &key(),
            &json!({}),
        )
        .expect(200)
        .body;
    let pledge = t["pledge_id"].as_i64().unwrap();
    w.ent_a
        .post_key(
            &format!("/v1/financing-requests/{id2}/withdraw"),
            &key(),
            &json!({}),
        )
        .expect(200);
    let p = w
        .banker1
        .get(&format!("/v1/pledges/{pledge}"))
        .expect(200)
        .body;
    assert_eq!(p["status"], "withdrawn");
    w.banker1
        .post_key(
            &format!("/v1/pledges/{pledge}/accept"),
            &key(),
            &accept_body("1000000.00"),
        )
        .expect(409);
    assert_eq!(buckets(&w), (d("485.2"), d("0"), d("0")));
    assert_all_conserved(&w.admin);
}

fn reserved_does_not_move(b: Backend) {
    let w = world(b);
    post(&w, "485.2");
    assert_eq!(buckets(&w), (d("0"), d("485.2"), d("0")));
    // Not offered twice.
    let twice = w
        .ent_a
        .post_key("/v1/financing-requests", &key(), &request_body(w.em, "1"))
        .expect(409);
    assert_eq!(twice.code(), "insufficient_quantity");
    // Not transferred.
    let t = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "1", "unit_price": "6300", "years": 1}),
        );
    assert_eq!(t.status.as_u16(), 409, "{}", t.body);
    // Not pledged elsewhere: the application is refused, or at the latest its acceptance.
    let p = w.ent_a.post_key(
        "/v1/pledges",
        &key(),
        &json!({"lot_id": w.em, "quantity": "1", "lender_party_id": w.bank1}),
    );
    if p.status.as_u16() == 201 {
        let pid = p.body["id"].as_i64().unwrap();
        let a = w
            .banker1
            .post_key(
                &format!("/v1/pledges/{pid}/accept"),
                &key(),
                &accept_body("1000.00"),
            )
            .expect(409);
        assert_eq!(a.code(), "insufficient_quantity");
    } else {
        assert_eq!(p.status.as_u16(), 409, "{}", p.body);
    }
    assert_eq!(buckets(&w), (d("0"), d("485.2"), d("0")));
    assert_all_conserved(&w.admin);
}

fn bad_input_changes_nothing(b: Backend) {
    let w = world(b);
    let base = request_body(w.em, "100");
    let mut cases: Vec<(Value, u16, &str)> = Vec::new();
    let mut with = |path: &[&str], v: Value, status: u16, code: &'static str| {
        let mut body = base.clone();
        let mut at = &mut body;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        cases.push((body, status, code));
    };
    with(&["amount"], json!("1.001"), 422, "validation_failed");
    with(&["amount"], json!("0"), 422, "validation_failed");
    with(&["amount"], json!("-5"), 422, "validation_failed");
    with(&["term_months"], json!(0), 422, "validation_failed");
    with(&["term_months"], json!(361), 422, "validation_failed");
    with(&["purpose"], json!("  "), 422, "validation_failed");
    with(&["green_tag"], json!("green"), 422, "");
    with(
        &["collateral", "quantity"],
        json!("1.00001"),
        422,
        "validation_failed",
    );
    with(
        &["collateral", "quantity"],
        json!("0"),
        422,
        "validation_failed",
    );
    with(
        &["collateral", "quantity"],
        json!("485.3"),
        409,
        "insufficient_quantity",
    );
    with(&["collateral", "lot_id"], json!(987654), 404, "");
    for (body, status, code) in cases {
        let r = w.ent_a.post_key("/v1/financing-requests", &key(), &body);
        assert_eq!(r.status.as_u16(), status, "{body} → {}", r.body);
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{body}"
        );
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{body} → {}", r.body);
        }
    }
    // Moving quantity needs an idempotency key; banks do not post requests; a party posts only
    // against its own holdings.
    let r = w.ent_a.post("/v1/financing-requests", &base);
    assert_eq!(r.status.as_u16(), 400);
    assert_eq!(r.code(), "idempotency_key_required");
    w.banker1
        .post_key("/v1/financing-requests", &key(), &base)
        .expect(403);
    w.ent_b
        .post_key("/v1/financing-requests", &key(), &base)
        .expect(404);
    w.admin
        .get("/v1/financing-requests?status=closed")
        .expect(422);
    w.admin
        .get("/v1/financing-requests/feed?since=yesterday")
        .expect(422);
    // Nothing changed.
    let all = w.admin.get("/v1/financing-requests").expect(200).body;
    assert_eq!(all["items"].as_array().unwrap().len(), 0);
    assert_eq!(buckets(&w), (d("485.2"), d("0"), d("0")));
    assert_all_conserved(&w.admin);
}

both_backends!(
    full_flow,
    race_two_processes,
    window_reopens,
    withdrawal_releases,
    reserved_does_not_move,
    bad_input_changes_nothing,
);
