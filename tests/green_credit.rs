//! Green lending around the pledge: environmental credit grades (a red grade cannot pledge, a
//! yellow one warns the lender, lenders are told by webhook when a borrower is graded), credit
//! enhancement (who pays what of a shortfall), and the monthly green-finance statistics.

mod common;

use common::ledger::{assert_conserved, issue, key, lot_request};
use common::{party, user, Api, Backend, Server};
use serde_json::{json, Value};

struct World {
    _srv: Server,
    admin: Api,
    reg: Api,
    a: i64,
    ent_a: Api,
    bank1: i64,
    bank2: i64,
    banker1: Api,
    banker2: Api,
    em: i64,
}

fn world_on(srv: Server) -> World {
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let reg = user(&admin, "regulator", None, "reg");
    let a = party(&admin, "enterprise", 1);
    let bank1 = party(&admin, "bank", 3);
    let bank2 = party(&admin, "bank", 4);
    let ent_a = user(&admin, "enterprise", Some(a), "ent-a");
    let banker1 = user(&admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&admin, "bank", Some(bank2), "banker-2");
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
        reg,
        a,
        ent_a,
        bank1,
        bank2,
        banker1,
        banker2,
        em,
    }
}

fn accept_body() -> Value {
    json!({"secured_amount": "2000000.00", "loan_maturity": "2028-12-31", "period_end": "2029-06-30",
        "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
        "appraisal_date": "2026-11-20"})
}

fn apply(w: &World, quantity: &str) -> i64 {
    w.ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": quantity, "lender_party_id": w.bank1}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

fn grade(w: &World, party: i64, grade: &str, from: &str, to: Option<&str>) -> Value {
    w.reg
        .post(
            &format!("/v1/parties/{party}/environmental-credit"),
            &json!({"grade": grade, "source_document": format!("闽环信〔2026〕{grade}号"),
                "valid_from": from, "valid_to": to}),
        )
        .expect(201)
        .body
}

/// A tiny HTTP receiver: answers 200 to every request and hands over each body.
fn receiver(listener: std::net::TcpListener, tx: std::sync::mpsc::Sender<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let len = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx
                .send(String::from_utf8_lossy(&body).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
}

/// The next grade event delivered (pledge events of the same bank pass by).
fn next_grade_event(rx: &std::sync::mpsc::Receiver<String>) -> Value {
    loop {
        let body = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the grade event reaches the bank");
        let event: Value = serde_json::from_str(&body).unwrap();
        if event["event"] == "party.environmental_credit_graded" {
            return event;
        }
    }
}

fn grades_reach_the_lender_and_bar_red_pledgors(backend: Backend) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let srv = Server::on_with(
        common::Db::fresh(backend),
        &[
            "--webhook-poll-ms",
            "100",
            "--webhook-allow-http",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let w = world_on(srv);
    let (tx, rx) = std::sync::mpsc::channel();
    receiver(listener, tx);
    w.banker1
        .post(
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/registry-events")}),
        )
        .expect(201);
    let hook2 = w
        .banker2
        .post(
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/other-bank")}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();

    // Only a regulator records grades; a validity that ends before it starts is refused.
    let body = json!({"grade": "yellow", "source_document": "x", "valid_from": "2026-01-01"});
    let path = format!("/v1/parties/{}/environmental-credit", w.a);
    w.admin.post(&path, &body).expect(403);
    w.ent_a.post(&path, &body).expect(403);
    let reversed = json!({"grade": "red", "source_document": "闽环信〔2026〕1号",
        "valid_from": "2026-06-01", "valid_to": "2026-05-31"});
    assert_eq!(
        w.reg.post(&path, &reversed).expect(422).code(),
        "validity_reversed"
    );
    // The old compliance flag for poor environmental credit can no longer be set.
    assert_eq!(
        w.reg
            .post(
                &format!("/v1/parties/{}/compliance-flags", w.a),
                &json!({"flag": "poor_credit_rating", "reason": "环境信用不良"}),
            )
            .expect(422)
            .code(),
        "flag_kind_retired"
    );

    // The enterprise applies to bank 1: bank 1 now deals with it, bank 2 does not.
    let first = apply(&w, "100");
    w.banker2.get(&path).expect(404);
    let seen = w.banker1.get(&path).expect(200).body;
    assert!(seen["in_force"].is_null());
    assert_eq!(seen["history"].as_array().unwrap().len(), 0);

    // A yellow grade: the lender is told by webhook, sees it, may still register, warned.
    let yellow = grade(&w, w.a, "yellow", "2026-01-01", Some("2027-12-31"));
    assert_eq!(yellow["grade_zh"], "警示");
    let event = next_grade_event(&rx);
    assert_eq!(event["event"], "party.environmental_credit_graded");
    assert_eq!(event["data"]["party_id"], w.a);
    assert_eq!(event["data"]["grade"], "yellow");
    assert_eq!(event["data"]["grade_in_force"], "yellow");
    assert!(event["data"]["previous_grade_in_force"].is_null());
    let seen = w.banker1.get(&path).expect(200).body;
    assert_eq!(seen["in_force"]["grade"], "yellow");
    let accepted = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{first}/accept"),
            &key(),
            &accept_body(),
        )
        .expect(200)
        .body;
    assert_eq!(accepted["status"], "registered");
    assert_eq!(accepted["pledgor_credit"]["grade"], "yellow");
    assert!(accepted["pledgor_credit"]["warning"]
        .as_str()
        .unwrap()
        .contains("警示"));
    let one = w
        .banker1
        .get(&format!("/v1/pledges/{first}"))
        .expect(200)
        .body;
    assert_eq!(one["pledgor_credit"]["grade"], "yellow");

    // An application pending before the grade turns red cannot be registered any more.
    let pending = apply(&w, "50");
    let red = grade(&w, w.a, "red", "2026-06-01", None);
    let event = next_grade_event(&rx);
    assert_eq!(event["data"]["grade"], "red");
    assert_eq!(event["data"]["previous_grade_in_force"], "yellow");
    assert_eq!(event["data"]["grade_in_force"], "red");
    assert_eq!(
        w.banker1
            .post_key(
                &format!("/v1/pledges/{pending}/accept"),
                &key(),
                &accept_body()
            )
            .expect(409)
            .code(),
        "pledgor_credit_red"
    );
    let refused = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "10", "lender_party_id": w.bank1}),
        )
        .expect(409);
    assert_eq!(refused.code(), "pledgor_credit_red");
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    // Bank 2 never dealt with the enterprise: no grade event, no grades.
    let log = w
        .banker2
        .get(&format!("/v1/webhooks/{hook2}/deliveries"))
        .expect(200)
        .body;
    assert!(log["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["event"] != "party.environmental_credit_graded"));
    w.banker2.get(&path).expect(404);

    // A later green grade for the same period corrects it; the history keeps all three.
    grade(&w, w.a, "green", "2026-06-01", None);
    let seen = w.ent_a.get(&path).expect(200).body;
    assert_eq!(seen["in_force"]["grade"], "green");
    let kinds: Vec<&str> = seen["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["grade"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["yellow", "red", "green"]);
    assert_eq!(red["grade_zh"], "不良");
    w.banker1
        .post_key(
            &format!("/v1/pledges/{pending}/accept"),
            &key(),
            &accept_body(),
        )
        .expect(200);
    assert_conserved(&w.admin, w.em);
    assert_eq!(w.admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}

fn enforcement_with_a_guarantee(backend: Backend) {
    let w = world_on(Server::on_with(
        common::Db::fresh(backend),
        &["--webhook-allow-http", "127.0.0.1:9"],
    ));
    // 南平市融资担保有限公司, a government financing-guarantee company.
    let guarantor = party(&w.admin, "enterprise", 5);
    let other = party(&w.admin, "enterprise", 6);
    let ent_other = user(&w.admin, "enterprise", Some(other), "ent-other");
    let id = apply(&w, "100");
    let path = format!("/v1/pledges/{id}/credit-enhancements");
    let guarantee = json!({"kind": "guarantee", "guarantor_party_id": guarantor,
        "guaranteed_share_percent": "80", "amount": "1000000.00",
        "term_from": "2026-01-01", "term_to": "2029-12-31"});
    // Only the lender (or an operator) records; another bank does not even see the pledge.
    w.ent_a.post(&path, &guarantee).expect(403);
    w.banker2.post(&path, &guarantee).expect(404);
    let g = w.banker1.post(&path, &guarantee).expect(201).body;
    assert_eq!(g["guaranteed_share_percent"], "80.00");
    // 80 % and another 30 % would bear more than the whole loss.
    let more = json!({"kind": "guarantee", "guarantor_party_id": other,
        "guaranteed_share_percent": "30", "amount": "100000.00",
        "term_from": "2026-01-01", "term_to": "2029-12-31"});
    assert_eq!(
        w.banker1.post(&path, &more).expect(409).code(),
        "guarantee_shares_exceed"
    );
    let forest = json!({"kind": "forest_insurance", "insurer": "人保财险南平市分公司",
        "policy_no": "PICC-NP-2026-001", "amount": "100000.00", "beneficiary_party_id": w.bank1,
        "term_from": "2026-01-01", "term_to": "2029-12-31"});
    w.banker1.post(&path, &forest).expect(422);
    let insurance = json!({"kind": "loan_guarantee_insurance", "insurer": "人保财险南平市分公司",
        "policy_no": "PICC-NP-2026-002", "amount": "100000.00", "beneficiary_party_id": w.bank1,
        "term_from": "2026-01-01", "term_to": "2029-12-31"});
    w.admin.post(&path, &insurance).expect(201);
    let r = w
        .banker1
        .post_key(&format!("/v1/pledges/{id}/accept"), &key(), &accept_body())
        .expect(200)
        .body;
    assert_eq!(
        r["credit_enhancement"]["items"].as_array().unwrap().len(),
        2
    );
    assert!(r["credit_enhancement"]["shortfall"].is_null());
    // The pledgor sees them; an outsider does not.
    let seen = w.ent_a.get(&path).expect(200).body;
    assert_eq!(seen["items"][0]["kind"], "guarantee");
    assert_eq!(seen["items"][1]["policy_no"], "PICC-NP-2026-002");
    ent_other.get(&path).expect(404);

    // Default: claim 500,000.00 + 12,345.67 + 1,000.00 = 513,345.67.
    let e = json!({"principal": "500000.00", "interest": "12345.67", "costs": "1000.00"});
    w.banker1
        .post_key(&format!("/v1/pledges/{id}/enforce"), &key(), &e)
        .expect(200);
    let buyer = party(&w.admin, "enterprise", 9);
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/pledges/{id}/dispose"),
        &key(),
        &json!({"buyer_party_id": buyer, "unit_price": "1000", "years": 2}),
    )
    .expect(200)
    .body;
    // 100 t × 1,000 × 2 years = 200,000.00, all to the lender: 313,345.67 short. The policy
    // pays 100,000.00 first; of the 213,345.67 left the guarantor bears 80 % = 170,676.536 →
    // 170,676.53 (down to the fen); the bank bears 42,669.14.
    assert_eq!(r["paid_to_lender"], "200000.00");
    let s = &r["credit_enhancement"]["shortfall"];
    assert_eq!(s["claim_amount"], "513345.67");
    assert_eq!(s["recovered"], "200000.00");
    assert_eq!(s["shortfall"], "313345.67");
    assert_eq!(s["owed"][0]["guarantor_party_id"], guarantor);
    assert_eq!(s["owed"][0]["owes"], "170676.53");
    assert_eq!(s["owed"][1]["insurer"], "人保财险南平市分公司");
    assert_eq!(s["owed"][1]["owes"], "100000.00");
    assert_eq!(s["lender_bears"], "42669.14");
    let seen = w.banker1.get(&path).expect(200).body;
    assert_eq!(seen["shortfall"], *s);
    // Once disposed, nothing more is recorded on it.
    assert_eq!(
        w.banker1.post(&path, &insurance).expect(409).code(),
        "encumbrance_status"
    );
    assert_conserved(&w.admin, w.em);
}

/// Applies for and registers a pledge of `quantity` of `lot` by `who` to `bank`, secured
/// `secured`; returns (id, amendment code).
fn registered(
    who: &Api,
    banker: &Api,
    bank: i64,
    lot: i64,
    quantity: &str,
    secured: &str,
) -> (i64, String) {
    let id = who
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": quantity, "lender_party_id": bank}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let mut body = accept_body();
    body["secured_amount"] = json!(secured);
    let r = banker
        .post_key(&format!("/v1/pledges/{id}/accept"), &key(), &body)
        .expect(200);
    (id, r.body["amendment_code"].as_str().unwrap().to_string())
}

fn statistics_of_a_month(backend: Backend) {
    let srv = Server::on_with(common::Db::fresh(backend), &[]);
    srv.admin().set_clock("2026-11-01T08:00:00Z");
    let w = world_on(srv);
    let checker = user(&w.admin, "operator", None, "checker-2");
    // An enterprise of 顺昌县 (350721), and one of 延平区 that borrows nothing.
    let b = w
        .admin
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": "顺昌县测试企业", "uscc": common::uscc(21), "region_code": "350721"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    party(&w.admin, "enterprise", 22);
    let ent_b = user(&w.admin, "enterprise", Some(b), "ent-b");
    let bank2 = w.bank2;
    let em_b = issue(
        &w.admin,
        &checker,
        lot_request("EM", b, "200", "顺环有偿〔2026〕3号"),
    )["id"]
        .as_i64()
        .unwrap();

    // 5 Nov: A pledges to bank 1 for 2,000,000.00, with an 80 % guarantee.
    w.admin.set_clock("2026-11-05T08:00:00Z");
    let (first, _) = registered(&w.ent_a, &w.banker1, w.bank1, w.em, "100", "2000000.00");
    let guarantor = party(&w.admin, "enterprise", 23);
    w.banker1
        .post(
            &format!("/v1/pledges/{first}/credit-enhancements"),
            &json!({"kind": "guarantee", "guarantor_party_id": guarantor,
                "guaranteed_share_percent": "80", "amount": "1600000.00",
                "term_from": "2026-11-05", "term_to": "2028-12-31"}),
        )
        .expect(201);
    // 10 Nov: B pledges to bank 2 for 1,000,000.00; released in full on 20 Nov.
    w.admin.set_clock("2026-11-10T08:00:00Z");
    let (second, code) = registered(&ent_b, &w.banker2, bank2, em_b, "50", "1000000.00");
    w.admin.set_clock("2026-11-20T08:00:00Z");
    w.banker2
        .post_key(
            &format!("/v1/pledges/{second}/release"),
            &key(),
            &json!({"amendment_code": code}),
        )
        .expect(200);
    // 3 Dec: A pledges more to bank 2 for 500,000.00.
    w.admin.set_clock("2026-12-03T08:00:00Z");
    registered(&w.ent_a, &w.banker2, bank2, w.em, "20", "500000.00");

    // November, by hand: outstanding at 30 Nov only A's first loan; two new loans (3,000,000.00);
    // one borrower; enterprises registered by then: A, B, the idle one and the guarantor (4),
    // one of them covered (25.00 %); the one outstanding loan is guaranteed (100.00 %).
    let nov = w
        .reg
        .get("/v1/statistics/green-finance?month=2026-11")
        .expect(200)
        .body;
    let t = &nov["total"];
    assert_eq!(t["outstanding_count"], 1);
    assert_eq!(t["outstanding_amount"], "2000000.00");
    assert_eq!(t["new_count"], 2);
    assert_eq!(t["new_amount"], "3000000.00");
    assert_eq!(t["borrowers"], 1);
    assert_eq!(t["enhanced_count"], 1);
    assert_eq!(t["enhanced_share_percent"], "100.00");
    assert_eq!(t["enterprises"], 4);
    assert_eq!(t["covered_enterprises"], 1);
    assert_eq!(t["coverage_percent"], "25.00");
    let cell = |dim: &str, key: &str| -> Value {
        nov[dim]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("{dim} {key}"))
    };
    let yanping = cell("by_county", "350702");
    assert_eq!(yanping["label"], "延平区");
    assert_eq!(yanping["outstanding_amount"], "2000000.00");
    assert_eq!(
        (
            yanping["enterprises"].as_i64(),
            yanping["covered_enterprises"].as_i64()
        ),
        (Some(3), Some(1))
    );
    let shunchang = cell("by_county", "350721");
    assert_eq!(shunchang["outstanding_amount"], "0.00");
    assert_eq!(shunchang["new_count"], 1);
    assert_eq!(shunchang["coverage_percent"], "0.00");
    assert_eq!(
        cell("by_bank", &w.bank1.to_string())["outstanding_amount"],
        "2000000.00"
    );
    let b2 = cell("by_bank", &bank2.to_string());
    assert_eq!(
        (b2["outstanding_count"].as_i64(), b2["new_amount"].as_str()),
        (Some(0), Some("1000000.00"))
    );
    assert_eq!(cell("by_right_type", "EM")["new_count"], 2);
    assert!(nov["financing_requests"].is_null());

    // December: both of A's loans outstanding (2,500,000.00), one new, half guaranteed.
    let dec = w
        .admin
        .get("/v1/statistics/green-finance?month=2026-12")
        .expect(200)
        .body;
    assert_eq!(dec["total"]["outstanding_amount"], "2500000.00");
    assert_eq!(dec["total"]["new_count"], 1);
    assert_eq!(dec["total"]["borrowers"], 1);
    assert_eq!(dec["total"]["enhanced_share_percent"], "50.00");

    // CSV and charts; banks and enterprises see none of it; a bad month is a 422.
    let (ct, text) = raw_get(
        &w.reg,
        "/v1/statistics/green-finance?month=2026-11&format=csv",
    );
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(
        text.lines().nth(1).unwrap().starts_with(
            "2026-11,total,total,南平 Nanping,1,2000000.00,2,3000000.00,1,1,2000000.00,100.00,4,1,25.00"
        ),
        "{text}"
    );
    let (ct, svg) = raw_get(
        &w.reg,
        "/v1/statistics/green-finance/charts/by_county?month=2026-11",
    );
    assert_eq!(ct, "image/svg+xml");
    assert!(svg.contains("<svg") && svg.contains("延平区"));
    w.reg
        .get("/v1/statistics/green-finance/charts/by_weather?month=2026-11")
        .expect(404);
    w.banker1
        .get("/v1/statistics/green-finance?month=2026-11")
        .expect(403);
    w.ent_a
        .get("/v1/statistics/green-finance?month=2026-11")
        .expect(403);
    assert_eq!(
        w.reg
            .get("/v1/statistics/green-finance?month=2026-13")
            .expect(422)
            .code(),
        "validation_failed"
    );
}

/// A GET answered 200 with a body that is not JSON: (content type, text).
fn raw_get(api: &Api, path: &str) -> (String, String) {
    let mut req = reqwest::blocking::Client::new().get(format!("{}{}", api.base, path));
    if let Some(t) = &api.token {
        req = req.bearer_auth(t);
    }
    let r = req.send().unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (ct, r.text().unwrap())
}

both_backends!(
    grades_reach_the_lender_and_bar_red_pledgors,
    enforcement_with_a_guarantee,
    statistics_of_a_month
);
