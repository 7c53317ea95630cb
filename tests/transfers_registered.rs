//! Operator-registered transfers (`POST /v1/transfers/registered`): a transfer agreed off-registry
//! is proposed by one operator and settles in the approval's transaction when a second operator
//! (another person) approves, with the same checks as a bilateral transfer, exactly once, and
//! conserves every lot under concurrency.

mod common;

use std::str::FromStr;

use common::ledger::{assert_conserved, available, dec, holding, issue, key, lot_request};
use common::{party, user, Api, Backend};
use rust_decimal::Decimal;
use serde_json::json;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn registers_and_settles(b: Backend) {
    let srv = common::Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let c = party(&admin, "enterprise", 2);
    let bank = party(&admin, "bank", 3);
    let ent_a = user(&admin, "enterprise", Some(a), "ent-a");
    let em = issue(
        &admin,
        &checker,
        lot_request("EM", a, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();

    let body = json!({"lot_id": em, "from_party_id": a, "to_party_id": c, "quantity": "100",
        "unit_price": "6300", "years": 2, "document_ref": "南平转让合同〔2026〕88号"});
    // It moves quantity, so it needs a key; only operators register.
    assert_eq!(
        admin
            .post("/v1/transfers/registered", &body)
            .expect(400)
            .code(),
        "idempotency_key_required"
    );
    ent_a
        .post_key("/v1/transfers/registered", &key(), &body)
        .expect(403);

    let k = key();
    let p = admin
        .post_key("/v1/transfers/registered", &k, &body)
        .expect(202);
    assert_eq!(p.body["kind"], "registered_transfer", "{}", p.body);
    // Proposed only: nothing moved yet, and the proposer cannot approve.
    assert_eq!(available(&admin, a, em), d("485.2"));
    let pid = p.body["id"].as_i64().unwrap();
    admin
        .post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
        .expect(403);
    let approved = checker
        .post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
        .expect(200);
    let t = &approved.body["result"];
    assert_eq!(t["status"], "settled", "{}", approved.body);
    assert_eq!(t["kind"], "registered");
    assert_eq!(t["amount"], "1260000.00");
    assert_eq!(available(&admin, a, em), d("385.2"));
    assert_eq!(available(&admin, c, em), d("100"));
    assert_eq!(dec(&holding(&admin, c, em)["in_transfer"]), Decimal::ZERO);
    // A retry returns the first answer and proposes nothing again.
    let again = admin
        .post_key("/v1/transfers/registered", &k, &body)
        .expect(202);
    assert_eq!(again.body["id"], p.body["id"]);
    assert_eq!(available(&admin, a, em), d("385.2"));

    // The checks of a bilateral transfer.
    let bad = |b: serde_json::Value| admin.post_key("/v1/transfers/registered", &key(), &b);
    let too_much = json!({"lot_id": em, "from_party_id": a, "to_party_id": c, "quantity": "400"});
    assert_eq!(bad(too_much).expect(409).code(), "insufficient_quantity");
    let to_bank = json!({"lot_id": em, "from_party_id": a, "to_party_id": bank, "quantity": "1"});
    bad(to_bank).expect(422);
    let to_self = json!({"lot_id": em, "from_party_id": a, "to_party_id": a, "quantity": "1"});
    bad(to_self).expect(422);
    let no_years = json!({"lot_id": em, "from_party_id": a, "to_party_id": c, "quantity": "1", "unit_price": "10"});
    bad(no_years).expect(422);
    let not_holder =
        json!({"lot_id": em, "from_party_id": bank, "to_party_id": c, "quantity": "1"});
    bad(not_holder).expect(422);
    let places = json!({"lot_id": em, "from_party_id": a, "to_party_id": c, "quantity": "0.00001"});
    bad(places).expect(422);
    assert_eq!(available(&admin, a, em), d("385.2"));

    // One journal row and one audit event; the chain verifies.
    let h = admin.get(&format!("/v1/lots/{em}/history")).expect(200);
    let causes: Vec<&str> = h
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cause"].as_str().unwrap())
        .collect();
    assert_eq!(causes, ["issuance", "transfer_registered"]);
    assert_conserved(&admin, em);
    assert_eq!(admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}

fn concurrent_registrations_conserve(b: Backend) {
    let srv = common::Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let holders: Vec<i64> = (0..6)
        .map(|n| party(&admin, "enterprise", 10 + n))
        .collect();
    let lots: Vec<i64> = (0..2)
        .map(|n| {
            issue(
                &admin,
                &checker,
                lot_request("EU", holders[0], "6000", &format!("用能权-并发-{n}")),
            )["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    // Spread each lot over the holders first.
    for &lot in &lots {
        for &h in &holders[1..] {
            common::two_person(
                &admin,
                "/v1/transfers/registered",
                &key(),
                &json!({"lot_id": lot, "from_party_id": holders[0], "to_party_id": h, "quantity": "1000"}),
            );
        }
    }
    let token = admin.token.clone().unwrap();
    let checker_token = checker.token.clone().unwrap();
    let base = srv.base.clone();
    let threads: Vec<_> = (0..16usize)
        .map(|c| {
            let (holders, lots, token, checker_token, base) = (
                holders.clone(),
                lots.clone(),
                token.clone(),
                checker_token.clone(),
                base.clone(),
            );
            std::thread::spawn(move || {
                let op = Api::new(&base).with_token(&token);
                let second = Api::new(&base).with_token(&checker_token);
                let mut settled = Vec::new();
                for n in 0..8usize {
                    let lot = lots[(c + n) % 2];
                    let from = (c * 5 + n * 3) % 6;
                    let to = (from + 1 + (c + n) % 5) % 6;
                    let q = 1 + ((c * 31 + n * 17) % 700) as i64;
                    let r = op.post_key(
                        "/v1/transfers/registered",
                        &format!("c{c}-n{n}"),
                        &json!({"lot_id": lot, "from_party_id": holders[from], "to_party_id": holders[to], "quantity": q.to_string()}),
                    );
                    match r.status.as_u16() {
                        202 => {}
                        409 => {
                            assert_eq!(r.code(), "insufficient_quantity");
                            continue;
                        }
                        s => panic!("unexpected {s}: {}", r.body),
                    }
                    let id = r.body["id"].as_i64().unwrap();
                    let a = second.post_key(
                        &format!("/v1/proposals/{id}/approve"),
                        &format!("a-c{c}-n{n}"),
                        &json!({}),
                    );
                    match a.status.as_u16() {
                        200 => settled.push((lot, from, to, q)),
                        409 => assert_eq!(a.code(), "insufficient_quantity"),
                        s => panic!("unexpected {s}: {}", a.body),
                    }
                }
                settled
            })
        })
        .collect();
    let mut expected = std::collections::HashMap::new();
    for &lot in &lots {
        for i in 0..6 {
            expected.insert((lot, i), 1000i64);
        }
    }
    for t in threads {
        for (lot, from, to, q) in t.join().unwrap() {
            *expected.get_mut(&(lot, from)).unwrap() -= q;
            *expected.get_mut(&(lot, to)).unwrap() += q;
        }
    }
    for &lot in &lots {
        for (i, &p) in holders.iter().enumerate() {
            assert_eq!(
                available(&admin, p, lot),
                Decimal::from(expected[&(lot, i)]),
                "lot {lot} holder {i}"
            );
        }
        assert_conserved(&admin, lot);
    }
    assert_eq!(admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}

both_backends!(registers_and_settles, concurrent_registrations_conserve);
