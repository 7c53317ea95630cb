//! Pledges and the lender API: a bank's whole flow, privacy between banks, the amendment code,
//! double-pledge races, lapse, judicial freezes, and certificates verified offline.

mod common;

use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::ledger::{assert_conserved, available, dec, holding, issue, key, lot_request};
use common::{party, uscc, user, verify_offline, Api, Backend, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

struct World {
    srv: Server,
    admin: Api,
    checker: Api,
    a: i64,
    b: i64,
    ent_a: Api,
    ent_b: Api,
    bank1: i64,
    banker1: Api,
    banker2: Api,
    em: i64,
}

fn world(backend: Backend) -> World {
    // Loopback port 9, where nobody listens, is where these tests' webhooks point: the
    // operator allowlists it (plain HTTP to a loopback address is refused otherwise).
    world_on(Server::on_with(
        common::Db::fresh(backend),
        &["--webhook-allow-http", "127.0.0.1:9"],
    ))
}

fn world_on(srv: Server) -> World {
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
        checker,
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

fn accept_body(secured: &str, period_end: &str) -> Value {
    json!({"secured_amount": secured, "loan_maturity": "2028-12-31", "period_end": period_end,
        "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
        "appraisal_date": "2026-11-20"})
}

/// Applies and registers a pledge; returns (pledge id, registration no, verification code, amendment code).
fn pledge(w: &World, lot: i64, quantity: &str, period_end: &str) -> (i64, String, String, String) {
    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": quantity, "lender_party_id": w.bank1}),
        )
        .expect(201);
    let id = p.body["id"].as_i64().unwrap();
    let r = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &accept_body("2000000.00", period_end),
        )
        .expect(200);
    let s = |f: &str| r.body[f].as_str().unwrap().to_string();
    (
        id,
        s("registration_no"),
        s("verification_code"),
        s("amendment_code"),
    )
}

fn bank_flow(backend: Backend) {
    let w = world(backend);
    let borrower = uscc(1);
    // Before lending: nothing on the borrower, and the bank sees none of its holdings.
    let s = w
        .banker1
        .get(&format!("/v1/encumbrances?grantor_uscc={borrower}"))
        .expect(200);
    assert!(s.body["encumbrances"].as_array().unwrap().is_empty());
    assert!(w.banker1.get("/v1/holdings").expect(200).body["items"]
        .as_array()
        .unwrap()
        .is_empty());

    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "100", "lender_party_id": w.bank1}),
        )
        .expect(201);
    let id = p.body["id"].as_i64().unwrap();
    assert_eq!(p.body["status"], "applied");
    // Having applied, the pledgor's holding is visible to that lender, not to another.
    assert_eq!(
        w.banker1.get("/v1/holdings").expect(200).body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(w.banker2.get("/v1/holdings").expect(200).body["items"]
        .as_array()
        .unwrap()
        .is_empty());

    // R11 refusals change nothing.
    let r = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &accept_body("2520000.01", "2028-12-31"),
        )
        .expect(422);
    assert_eq!(r.code(), "ltv_exceeded");
    let mut late = accept_body("2000000.00", "2028-12-31");
    late["loan_maturity"] = json!("2031-01-01");
    assert_eq!(
        w.banker1
            .post_key(&format!("/v1/pledges/{id}/accept"), &key(), &late)
            .expect(422)
            .code(),
        "maturity_after_validity"
    );
    w.banker2
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &accept_body("1.00", "2028-12-31"),
        )
        .expect(404);
    assert_eq!(available(&w.admin, w.a, w.em), d("485.2"));

    let accepted = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            "accept-1",
            &accept_body("2000000.00", "2028-12-31"),
        )
        .expect(200);
    let reg = accepted.body["registration_no"]
        .as_str()
        .unwrap()
        .to_string();
    let code = accepted.body["amendment_code"]
        .as_str()
        .unwrap()
        .to_string();
    let h = holding(&w.admin, w.a, w.em);
    assert_eq!(
        (dec(&h["available"]), dec(&h["pledged"])),
        (d("385.2"), d("100"))
    );
    assert_conserved(&w.admin, w.em);

    // Search: one live pledge with its rank; a signed certificate that verifies offline.
    let s = w
        .banker1
        .get(&format!("/v1/encumbrances?grantor_uscc={borrower}"))
        .expect(200);
    let found = &s.body["encumbrances"][0];
    assert_eq!(
        (found["registration_no"].as_str(), found["rank"].as_i64()),
        (Some(reg.as_str()), Some(1))
    );
    assert_eq!(found["secured_amount"], "2000000.00");
    let cert = w
        .banker1
        .post(
            "/v1/search-certificates",
            &json!({"grantor_uscc": borrower}),
        )
        .expect(201)
        .body;
    let keys = w.srv.api().get("/v1/registry-keys").expect(200).body;
    assert!(
        verify_offline(&cert, &keys),
        "a fresh certificate verifies offline"
    );
    let mut forged = cert.clone();
    forged["statement"]["encumbrances"][0]["secured_amount"] = json!("1.00");
    assert!(
        !verify_offline(&forged, &keys),
        "an edited body is detected"
    );
    let mut forged = cert.clone();
    let mut sig = B64.decode(cert["signature"].as_str().unwrap()).unwrap();
    sig[0] ^= 1;
    forged["signature"] = json!(B64.encode(sig));
    assert!(
        !verify_offline(&forged, &keys),
        "an edited signature is detected"
    );
    let again = w
        .banker2
        .get(&format!(
            "/v1/search-certificates/{}",
            cert["statement"]["certificate_no"].as_str().unwrap()
        ))
        .expect(200);
    assert_eq!(again.body, cert);

    // The pledged quantity cannot move; a wrong amendment code changes nothing.
    let r = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "400"}),
        )
        .expect(409);
    assert_eq!(r.code(), "insufficient_quantity");
    let r = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{id}/release"),
            &key(),
            &json!({"amendment_code": "WRONG", "quantity": "40"}),
        )
        .expect(403);
    assert_eq!(r.code(), "amendment_code_invalid");
    assert_eq!(available(&w.admin, w.a, w.em), d("385.2"));
    // Partial release, then the released part moves.
    let r = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{id}/release"),
            &key(),
            &json!({"amendment_code": code, "quantity": "40"}),
        )
        .expect(200);
    assert_eq!(
        (r.body["status"].as_str(), r.body["quantity"].as_str()),
        (Some("registered"), Some("60"))
    );
    let t = w.ent_a.post_key("/v1/transfers", &key(), &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "425.2", "unit_price": "6300", "years": 2})).expect(201);
    w.ent_b
        .post_key(
            &format!("/v1/transfers/{}/confirm", t.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    w.checker
        .post_key(
            &format!("/v1/transfers/{}/approve", t.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_conserved(&w.admin, w.em);

    // Renewal: refused outside the 90 days before the period ends, accepted inside.
    let renew = json!({"amendment_code": code, "period_end": "2029-06-30"});
    assert_eq!(
        w.banker1
            .post_key(&format!("/v1/pledges/{id}/renew"), &key(), &renew)
            .expect(409)
            .code(),
        "renewal_window"
    );
    w.admin.set_clock("2028-11-15T09:00:00Z");
    w.banker1
        .post_key(&format!("/v1/pledges/{id}/renew"), &key(), &renew)
        .expect(200);

    // Default and disposal: proceeds pay the claim first, the rest to the pledgor, to the fen.
    let e = json!({"amendment_code": code, "principal": "500000.00", "interest": "12345.67", "costs": "1000.00"});
    let r = w
        .banker1
        .post_key(&format!("/v1/pledges/{id}/enforce"), &key(), &e)
        .expect(200);
    assert_eq!(
        (r.body["status"].as_str(), r.body["claim_amount"].as_str()),
        (Some("enforcing"), Some("513345.67"))
    );
    // Another bank sees that enforcement began, not the claim or who recorded it.
    let seen = w
        .banker2
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    assert_eq!(seen["notice"]["status"], "enforcing");
    assert!(seen["private_terms"].is_null());
    assert!(seen["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e.get("details").is_none() && e.get("actor").is_none()));
    assert!(
        !seen.to_string().contains("51334567"),
        "the claim leaked to another bank"
    );
    let buyer = party(&w.admin, "enterprise", 9);
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/pledges/{id}/dispose"),
        &key(),
        &json!({"buyer_party_id": buyer, "unit_price": "6300.1234", "years": 2}),
    )
    .expect(200);
    // 60 t × 6,300.1234 × 2 years = 756,014.808 → 756,014.81.
    assert_eq!(r.body["proceeds"], "756014.81");
    assert_eq!(r.body["paid_to_lender"], "513345.67");
    assert_eq!(r.body["paid_to_pledgor"], "242669.14");
    assert_eq!(r.body["status"], "disposed");
    assert_eq!(available(&w.admin, buyer, w.em), d("60"));
    assert_eq!(dec(&holding(&w.admin, w.a, w.em)["pledged"]), d("0"));
    let kinds: Vec<String> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "applied",
            "registered",
            "released",
            "renewed",
            "enforcement",
            "disposal"
        ]
    );
    let seqs: Vec<i64> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    // No longer live: the borrower's search is empty again.
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_uscc={borrower}"))
        .expect(200);
    assert!(s.body["encumbrances"].as_array().unwrap().is_empty());
    assert_conserved(&w.admin, w.em);
    assert_eq!(w.admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}

fn privacy_and_amendment_code(backend: Backend) {
    let w = world(backend);
    let (id, reg, verification, code) = pledge(&w, w.em, "100", "2028-12-31");
    // Another bank sees the notice, not the private terms; the lender sees both.
    let other = w
        .banker2
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200);
    assert_eq!(other.body["notice"]["status"], "registered");
    assert!(other.body["private_terms"].is_null());
    let own = w
        .banker1
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200);
    assert_eq!(
        own.body["private_terms"]["loan_reference"],
        "CIB-NP-2026-0815"
    );
    // Another enterprise sees nothing of it.
    w.ent_b.get(&format!("/v1/pledges/{id}")).expect(404);
    w.ent_b.get(&format!("/v1/encumbrances/{reg}")).expect(404);
    assert!(w.ent_b.get("/v1/pledges").expect(200).body["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let r = w
        .ent_b
        .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(1)));
    assert_eq!(r.status.as_u16(), 403);
    // With the verification code, no login is needed and only the notice shows.
    let anon = w.srv.api();
    let v = anon
        .get(&format!(
            "/v1/encumbrances/{reg}?verification_code={verification}"
        ))
        .expect(200);
    assert_eq!(v.body["notice"]["registration_no"], reg.as_str());
    assert!(v.body["private_terms"].is_null());
    anon.get(&format!("/v1/encumbrances/{reg}?verification_code=WRONG"))
        .expect(404);
    anon.get(&format!("/v1/encumbrances/{reg}")).expect(404);

    // The amendment code appears only in the acceptance response: not on a replay, a read,
    // a search, a certificate, or in the logs.
    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "10", "lender_party_id": w.bank1}),
        )
        .expect(201);
    let pid = p.body["id"].as_i64().unwrap();
    let first = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{pid}/accept"),
            "acc",
            &accept_body("1000.00", "2028-12-31"),
        )
        .expect(200);
    let second_code = first.body["amendment_code"].as_str().unwrap().to_string();
    let replay = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{pid}/accept"),
            "acc",
            &accept_body("1000.00", "2028-12-31"),
        )
        .expect(200);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert!(replay.body.get("amendment_code").is_none());
    let everything = [
        w.banker1.get(&format!("/v1/pledges/{pid}")).body,
        w.banker1.get("/v1/pledges").body,
        w.admin.get(&format!("/v1/pledges/{pid}")).body,
        w.banker1
            .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(1)))
            .body,
        w.banker1
            .post("/v1/search-certificates", &json!({"grantor_uscc": uscc(1)}))
            .body,
        w.admin.get(&format!("/v1/lots/{}/history", w.em)).body,
    ]
    .map(|b| b.to_string())
    .join("\n");
    for c in [&code, &second_code] {
        assert!(!everything.contains(c.as_str()), "an amendment code leaked");
        let log = std::fs::read_to_string(&w.srv.log).unwrap();
        assert!(!log.contains(c.as_str()), "an amendment code is in the log");
    }
    // The lender can rotate it; the old one stops working.
    let rotated = w
        .banker1
        .post(
            &format!("/v1/pledges/{id}/amendment-code"),
            &json!({"current_code": code}),
        )
        .expect(200);
    let fresh = rotated.body["amendment_code"].as_str().unwrap().to_string();
    w.banker1
        .post_key(
            &format!("/v1/pledges/{id}/release"),
            &key(),
            &json!({"amendment_code": code, "quantity": "1"}),
        )
        .expect(403);
    w.banker1
        .post_key(
            &format!("/v1/pledges/{id}/release"),
            &key(),
            &json!({"amendment_code": fresh, "quantity": "1"}),
        )
        .expect(200);
    assert_conserved(&w.admin, w.em);
}

fn double_pledge_race(backend: Backend) {
    let w = world(backend);
    let lot = issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.a, "100", "南环有偿〔2026〕99号"),
    )["id"]
        .as_i64()
        .unwrap();
    let bank2 = w.banker2.get("/v1/parties").expect(200).body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let p1 = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "80", "lender_party_id": w.bank1}),
        )
        .expect(201);
    let p2 = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "80", "lender_party_id": bank2}),
        )
        .expect(201);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let second = Server::on(w.srv.db.clone());
    let banker2 = Api::new(&second.base).with_token(w.banker2.token.as_deref().unwrap());
    let jobs = [
        (w.banker1.clone(), p1.body["id"].as_i64().unwrap()),
        (banker2, p2.body["id"].as_i64().unwrap()),
    ];
    let handles: Vec<_> = jobs
        .into_iter()
        .map(|(api, id)| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                api.post_key(
                    &format!("/v1/pledges/{id}/accept"),
                    &format!("race-{id}"),
                    &accept_body("1000.00", "2028-12-31"),
                )
            })
        })
        .collect();
    let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wins = replies.iter().filter(|r| r.status.as_u16() == 200).count();
    let refused = replies
        .iter()
        .filter(|r| r.status.as_u16() == 409 && r.code() == "insufficient_quantity")
        .count();
    assert_eq!(
        (wins, refused),
        (1, 1),
        "exactly one of two pledges on the same quantity registers"
    );
    assert_eq!(dec(&holding(&w.admin, w.a, lot)["pledged"]), d("80"));
    assert_conserved(&w.admin, lot);
}

fn eligibility(backend: Backend) {
    let w = world(backend);
    // R11: an emission right obtained free of charge cannot be pledged.
    let mut free = lot_request("EM", w.a, "50", "初始分配-2026-7");
    free["origin"] = json!("initial_allocation");
    let lot = issue(&w.admin, &w.checker, free)["id"].as_i64().unwrap();
    let r = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "10", "lender_party_id": w.bank1}),
        )
        .expect(422);
    assert_eq!(r.code(), "right_not_eligible");
    // A flagged pledgor cannot pledge, until the flag is cleared.
    let f = w
        .admin
        .post(
            &format!("/v1/parties/{}/compliance-flags", w.a),
            &json!({"flag": "unpaid_fees", "reason": "2026 有偿使用费未缴"}),
        )
        .expect(201);
    let r = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "10", "lender_party_id": w.bank1}),
        )
        .expect(409);
    assert_eq!(r.code(), "pledgor_flagged");
    w.admin
        .post(
            &format!(
                "/v1/parties/{}/compliance-flags/{}/clear",
                w.a, f.body["id"]
            ),
            &json!({"reason": "paid"}),
        )
        .expect(200);
    w.ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "10", "lender_party_id": w.bank1}),
        )
        .expect(201);
    // The lender must be a bank.
    w.ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "10", "lender_party_id": w.b}),
        )
        .expect(422);
}

/// Moves EM quantity from one enterprise to another through request, confirm and approval.
fn em_transfer(
    w: &World,
    from: &Api,
    to: &Api,
    to_party: i64,
    lot: i64,
    quantity: &str,
    price: Option<&str>,
) {
    let mut body = json!({"lot_id": lot, "to_party_id": to_party, "quantity": quantity});
    if let Some(p) = price {
        body["unit_price"] = json!(p);
        body["years"] = json!(1);
    }
    let t = from.post_key("/v1/transfers", &key(), &body).expect(201);
    to.post_key(
        &format!("/v1/transfers/{}/confirm", t.body["id"]),
        &key(),
        &json!({}),
    )
    .expect(200);
    w.checker
        .post_key(
            &format!("/v1/transfers/{}/approve", t.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
}

fn eligibility_follows_what_is_held(backend: Backend) {
    let w = world(backend);
    let c = party(&w.admin, "enterprise", 8);
    let ent_c = user(&w.admin, "enterprise", Some(c), "ent-c");
    let lot = issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.b, "200", "南环有偿〔2026〕77号"),
    )["id"]
        .as_i64()
        .unwrap();
    // A purchase is a market acquisition at or above the benchmark price in force (R11).
    let p = w
        .admin
        .post(
            "/v1/benchmark-prices",
            &json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350700", "unit_price": "6300",
                "valid_from": "2026-01-01", "document_ref": "闽发改价格〔2026〕7号"}),
        )
        .expect(202);
    w.checker
        .post_key(
            &format!("/v1/proposals/{}/approve", p.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    // A buys 50 and sells them on: what it bought has left with them.
    em_transfer(&w, &w.ent_b, &w.ent_a, w.a, lot, "50", Some("6300"));
    assert_eq!(holding(&w.admin, w.a, lot)["acquired"]["market"], "50");
    em_transfer(&w, &w.ent_a, &ent_c, c, lot, "50", Some("6400"));
    assert_eq!(holding(&w.admin, w.a, lot)["acquired"]["market"], "0");
    // Then it receives 50 free of charge: those cannot be pledged (R11).
    em_transfer(&w, &w.ent_b, &w.ent_a, w.a, lot, "50", None);
    let r = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "50", "lender_party_id": w.bank1}),
        )
        .expect(422);
    assert_eq!(r.code(), "right_not_eligible");
    // C bought its 50: it may pledge them.
    ent_c
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "50", "lender_party_id": w.bank1}),
        )
        .expect(201);
    assert_conserved(&w.admin, lot);
}

fn lapse_and_judicial_freeze(backend: Backend) {
    let w = world(backend);
    let (id, _, _, _) = pledge(&w, w.em, "100", "2027-01-31");
    w.admin.set_clock("2026-12-01T00:00:00Z");
    let s = w.admin.post("/v1/collateral/sweep", &json!({})).expect(200);
    assert_eq!(s.body["warned"], json!([id]));
    w.admin.set_clock("2027-02-01T00:00:00Z");
    let s = w.admin.post("/v1/collateral/sweep", &json!({})).expect(200);
    assert_eq!(s.body["lapsed"], json!([id]));
    let p = w.banker1.get(&format!("/v1/pledges/{id}")).expect(200);
    assert_eq!(p.body["status"], "lapsed");
    let kinds: Vec<&str> = p.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["applied", "registered", "lapse_warning", "lapsed"]);
    assert_eq!(available(&w.admin, w.a, w.em), d("485.2"));
    assert_conserved(&w.admin, w.em);

    // A judicial freeze blocks transfer and pledge, and shows in search; a later order lifts it.
    let f = w.admin.post_key("/v1/judicial-freezes", &key(), &json!({"lot_id": w.em, "party_id": w.a, "quantity": "85.2",
        "court": "南平市延平区人民法院", "case_no": "(2027)闽0702执保12号", "document_ref": "协助执行通知书"})).expect(201);
    assert_eq!(available(&w.admin, w.a, w.em), d("400"));
    assert_eq!(
        w.ent_a
            .post_key(
                "/v1/transfers",
                &key(),
                &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "400.1"})
            )
            .expect(409)
            .code(),
        "insufficient_quantity"
    );
    w.ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "400.1", "lender_party_id": w.bank1}),
        )
        .expect(409);
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(1)))
        .expect(200);
    assert_eq!(s.body["encumbrances"][0]["kind"], "judicial_freeze");
    assert_eq!(s.body["encumbrances"][0]["court"], "南平市延平区人民法院");
    let by_asset = w
        .banker2
        .get(&format!("/v1/encumbrances?lot_id={}", w.em))
        .expect(200);
    assert_eq!(by_asset.body["encumbrances"].as_array().unwrap().len(), 1);
    assert_conserved(&w.admin, w.em);
    common::two_person(
        &w.admin,
        &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    );
    assert_eq!(available(&w.admin, w.a, w.em), d("485.2"));
    assert!(w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(1)))
        .expect(200)
        .body["encumbrances"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_conserved(&w.admin, w.em);
}

/// A tiny HTTP receiver: answers 200 to every request and hands over (headers, body).
fn receiver(listener: std::net::TcpListener, tx: std::sync::mpsc::Sender<(String, String)>) {
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
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx
                .send((
                    head.to_ascii_lowercase(),
                    String::from_utf8_lossy(&body).into_owned(),
                ))
                .is_err()
            {
                return;
            }
        }
    });
}

fn header_value(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn webhooks_survive_a_receiver_outage(backend: Backend) {
    // The receiver's port, with nobody listening yet: the bank's system is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let srv = Server::on_with(
        common::Db::fresh(backend),
        &[
            "--webhook-poll-ms",
            "100",
            "--webhook-backoff-ms",
            "100",
            "--webhook-allow-http",
            &format!("127.0.0.1:{port}"),
        ],
    );
    let w = world_on(srv);
    let hook = w
        .banker1
        .post(
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/registry-events")}),
        )
        .expect(201);
    let secret = hook.body["secret"].as_str().unwrap().to_string();
    let hook_id = hook.body["id"].as_i64().unwrap();
    w.banker1
        .post(
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{}/hook", port + 1)}),
        )
        .expect(422);
    let (id, _, _, code) = pledge(&w, w.em, "100", "2028-12-31");
    for _ in 0..2 {
        w.banker1
            .post_key(
                &format!("/v1/pledges/{id}/release"),
                &key(),
                &json!({"amendment_code": code, "quantity": "10"}),
            )
            .expect(200);
    }
    // While the receiver is down, deliveries fail and stay queued.
    assert!(common::eventually(
        std::time::Duration::from_secs(20),
        || {
            let log = w
                .banker1
                .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
                .expect(200)
                .body["items"]
                .clone();
            log[0]["attempts"].as_i64().unwrap_or(0) >= 2 && log[0]["last_result"] == "unreachable"
        }
    ));
    let log = w
        .banker1
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
        .expect(200)
        .body["items"]
        .clone();
    assert_eq!(log.as_array().unwrap().len(), 4);
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["status"] == "pending"));
    // Another bank cannot read this delivery log.
    w.banker2
        .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
        .expect(404);

    // The receiver comes back: every event arrives, once, in order, correctly signed.
    let (tx, rx) = std::sync::mpsc::channel();
    receiver(
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(),
        tx,
    );
    let mut got = Vec::new();
    while got.len() < 4 {
        let (head, body) = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a delivery");
        let ts = header_value(&head, "x-registry-timestamp");
        let expected = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(format!("{ts}.{body}").as_bytes());
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        };
        assert_eq!(
            header_value(&head, "x-registry-signature"),
            expected,
            "signature of {body}"
        );
        got.push(
            serde_json::from_str::<Value>(&body).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        got,
        [
            "pledge.applied",
            "pledge.registered",
            "pledge.released",
            "pledge.released"
        ]
    );
    assert!(common::eventually(
        std::time::Duration::from_secs(10),
        || {
            let log = w
                .banker1
                .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
                .expect(200)
                .body["items"]
                .clone();
            log.as_array()
                .unwrap()
                .iter()
                .all(|d| d["status"] == "delivered")
        }
    ));
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "nothing is delivered twice"
    );
}

fn certificates_survive_key_rotation(backend: Backend) {
    let db = common::Db::fresh(backend);
    let first = Server::on(db.clone());
    let w = world_on(first);
    pledge(&w, w.em, "100", "2028-12-31");
    let cert = w
        .banker1
        .post("/v1/search-certificates", &json!({"grantor_uscc": uscc(1)}))
        .expect(201)
        .body;
    drop(w);
    // `registry keys rotate`, then a restart: the old key stays published, retired.
    let rotated = common::command(&db)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    let second = Server::on(db);
    let keys = second.api().get("/v1/registry-keys").expect(200).body;
    let statuses: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["retired", "active"]);
    assert!(
        verify_offline(&cert, &keys),
        "a certificate signed before the rotation still verifies"
    );
}

fn ltv_alert(backend: Backend) {
    let w = world(backend);
    let hook = w
        .banker1
        .post(
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/nobody-listens"}),
        )
        .expect(201);
    let hook_id = hook.body["id"].as_i64().unwrap();
    // 2,000,000 of an appraisal of 3,150,000 is 63 %: below the 70 % alert.
    let (id, _, _, code) = pledge(&w, w.em, "100", "2028-12-31");
    let events = |w: &World| -> Vec<String> {
        let log = w
            .banker1
            .get(&format!("/v1/webhooks/{hook_id}/deliveries"))
            .expect(200)
            .body["items"]
            .clone();
        log.as_array()
            .unwrap()
            .iter()
            .map(|d| d["event"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!events(&w).iter().any(|e| e == "pledge.ltv_above_threshold"));
    // Amended to 2,400,000: 76.19 %, above the alert, still under the 80 % cap.
    w.banker1
        .post(
            &format!("/v1/pledges/{id}/amend"),
            &json!({"amendment_code": code, "secured_amount": "2400000.00"}),
        )
        .expect(200);
    assert_eq!(
        events(&w).last().map(String::as_str),
        Some("pledge.ltv_above_threshold")
    );
    let v = w
        .banker1
        .get(&format!("/v1/pledges/{id}/valuation"))
        .expect(200)
        .body;
    assert_eq!(
        (v["method"].as_str(), v["loan_to_value_percent"].as_str()),
        (Some("appraisal"), Some("76.19"))
    );
}

both_backends!(
    bank_flow,
    privacy_and_amendment_code,
    double_pledge_race,
    eligibility,
    eligibility_follows_what_is_held,
    lapse_and_judicial_freeze,
    webhooks_survive_a_receiver_outage,
    certificates_survive_key_rotation,
    ltv_alert,
);
