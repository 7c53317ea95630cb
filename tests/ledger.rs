//! The rights ledger: issuance under maker-checker, transfers through their lifecycle,
//! retirement, serial ranges, expiry, exactly-once POSTs, concurrency and the audit trail.
//! Every test that moves quantity checks conservation afterwards.

mod common;

use std::io::{Read, Write};
use std::str::FromStr;

use common::ledger::{
    assert_all_conserved, assert_conserved, available, dec, holding, issue, key, lot_request,
};
use common::{party, user, Api, Backend, Server};
use rust_decimal::Decimal;
use serde_json::json;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// An admin, a second operator, and two enterprises with users.
struct World {
    srv: Server,
    admin: Api,
    checker: Api,
    a: i64,
    b: i64,
    ent_a: Api,
    ent_b: Api,
}

fn world(b: Backend) -> World {
    let srv = Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let pa = party(&admin, "enterprise", 1);
    let pb = party(&admin, "enterprise", 2);
    let ent_a = user(&admin, "enterprise", Some(pa), "ent-a");
    let ent_b = user(&admin, "enterprise", Some(pb), "ent-b");
    World {
        srv,
        admin,
        checker,
        a: pa,
        b: pb,
        ent_a,
        ent_b,
    }
}

fn issue_transfer_and_settle(b: Backend) {
    let w = world(b);
    let types = w.ent_a.get("/v1/right-types").expect(200);
    let codes: Vec<&str> = types
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CA", "CS", "EM", "EU"]);

    // Maker-checker: the proposer cannot approve its own issuance.
    let p = w
        .admin
        .post(
            "/v1/lots",
            &lot_request("EM", w.a, "485.2", "南环有偿〔2026〕15号"),
        )
        .expect(202);
    let pid = p.body["id"].as_i64().unwrap();
    let r = w
        .admin
        .post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
        .expect(403);
    assert_eq!(r.code(), "maker_checker");
    assert!(
        w.admin.get("/v1/lots").expect(200).body["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing issued yet"
    );
    let approved = w
        .checker
        .post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
        .expect(200);
    let em = approved.body["result"].clone();
    let em_id = em["id"].as_i64().unwrap();
    assert_eq!(em["issued"], "485.2");
    assert!(
        em["certificate_no"]
            .as_str()
            .unwrap()
            .starts_with("EM-SO2-350702-2026-"),
        "{em}"
    );
    // Approving twice does not issue twice.
    assert_eq!(
        w.checker
            .post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
            .expect(409)
            .code(),
        "proposal_decided"
    );
    // R2: the same source document cannot be issued again.
    let dup = w
        .admin
        .post(
            "/v1/lots",
            &lot_request("EM", w.a, "1", "南环有偿〔2026〕15号"),
        )
        .expect(409);
    assert_eq!(dup.code(), "duplicate_source");

    let eu = issue(
        &w.admin,
        &w.checker,
        lot_request("EU", w.a, "1200.5", "用能权-2026-001"),
    );
    let ca = issue(
        &w.admin,
        &w.checker,
        lot_request("CA", w.a, "50000", "FJEA-2026-分配-88"),
    );
    let cs = issue(
        &w.admin,
        &w.checker,
        lot_request("CS", w.a, "1000", "FFCER-顺昌-2026-01"),
    );
    for lot in [&em, &eu, &ca, &cs] {
        assert_conserved(&w.admin, lot["id"].as_i64().unwrap());
    }
    assert_eq!(holding(&w.admin, w.a, em_id)["acquired"]["paid"], "485.2");

    // EM: request (frozen at once) → receiver confirms → operator approves → settled.
    let t = w.ent_a.post_key("/v1/transfers", &key(), &json!({"lot_id": em_id, "to_party_id": w.b, "quantity": "20.5", "unit_price": "6300", "years": 2})).expect(201);
    assert_eq!(t.body["status"], "requested");
    // R3: 20.5 t × 6,300 yuan per ton-year × 2 years.
    assert_eq!(t.body["amount"], "258300.00");
    let tid = t.body["id"].as_i64().unwrap();
    let ha = holding(&w.admin, w.a, em_id);
    assert_eq!(
        (dec(&ha["available"]), dec(&ha["in_transfer"])),
        (d("464.7"), d("20.5"))
    );
    assert_conserved(&w.admin, em_id);
    // Only the receiver confirms; only an operator approves.
    w.ent_a
        .post_key(&format!("/v1/transfers/{tid}/confirm"), &key(), &json!({}))
        .expect(403);
    w.ent_b
        .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
        .expect(403);
    let c = w
        .ent_b
        .post_key(&format!("/v1/transfers/{tid}/confirm"), &key(), &json!({}))
        .expect(200);
    assert_eq!(c.body["status"], "confirmed");
    let s = w
        .checker
        .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
        .expect(200);
    assert_eq!(s.body["status"], "settled");
    let (ha, hb) = (holding(&w.admin, w.a, em_id), holding(&w.admin, w.b, em_id));
    assert_eq!(
        (
            dec(&ha["available"]),
            dec(&ha["in_transfer"]),
            dec(&hb["available"])
        ),
        (d("464.7"), d("0"), d("20.5"))
    );
    // No benchmark price is in force: a priced transfer is no proof of a market purchase (R11).
    assert_eq!(hb["acquired"]["other"], "20.5");
    assert_eq!(hb["acquired"]["market"], "0");
    assert_conserved(&w.admin, em_id);
    w.ent_a
        .post_key(&format!("/v1/transfers/{tid}/cancel"), &key(), &json!({}))
        .expect(409);

    // CA needs no approval: confirmation settles it.
    let ca_id = ca["id"].as_i64().unwrap();
    let t = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": ca_id, "to_party_id": w.b, "quantity": "1000"}),
        )
        .expect(201);
    let c = w
        .ent_b
        .post_key(
            &format!("/v1/transfers/{}/confirm", t.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_eq!(c.body["status"], "settled");
    assert_eq!(available(&w.admin, w.b, ca_id), d("1000"));

    // Rejection and cancellation return the quantity.
    let t1 = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": ca_id, "to_party_id": w.b, "quantity": "300"}),
        )
        .expect(201);
    let t2 = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": ca_id, "to_party_id": w.b, "quantity": "200"}),
        )
        .expect(201);
    assert_eq!(available(&w.admin, w.a, ca_id), d("48500"));
    w.ent_b
        .post_key(
            &format!("/v1/transfers/{}/reject", t1.body["id"]),
            &key(),
            &json!({"reason": "price"}),
        )
        .expect(200);
    w.ent_a
        .post_key(
            &format!("/v1/transfers/{}/cancel", t2.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_eq!(available(&w.admin, w.a, ca_id), d("49000"));
    assert_conserved(&w.admin, ca_id);

    // Another party's transfer is invisible.
    let c_party = party(&w.admin, "enterprise", 3);
    let ent_c = user(&w.admin, "enterprise", Some(c_party), "ent-c");
    ent_c.get(&format!("/v1/transfers/{tid}")).expect(404);
    ent_c
        .post_key(&format!("/v1/transfers/{tid}/cancel"), &key(), &json!({}))
        .expect(404);
    ent_c.get(&format!("/v1/lots/{em_id}")).expect(404);
    assert!(ent_c.get("/v1/holdings").expect(200).body["items"]
        .as_array()
        .unwrap()
        .is_empty());
    w.ent_a
        .get(&format!("/v1/parties/{}/holdings", w.b))
        .expect(404);

    // Retirement: a reason always; carbon names the beneficiary; CA its compliance year.
    w.ent_a
        .post_key(
            "/v1/retirements",
            &key(),
            &json!({"lot_id": ca_id, "quantity": "10", "reason": " "}),
        )
        .expect(422);
    let r = w
        .ent_a
        .post_key(
            "/v1/retirements",
            &key(),
            &json!({"lot_id": ca_id, "quantity": "10", "reason": "履约", "compliance_year": 2026}),
        )
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "beneficiary");
    w.ent_a.post_key("/v1/retirements", &key(), &json!({"lot_id": ca_id, "quantity": "10000", "reason": "2026年度履约清缴", "beneficiary": "测试enterprise1", "compliance_year": 2026})).expect(201);
    let em_ret = w
        .ent_a
        .post_key(
            "/v1/retirements",
            &key(),
            &json!({"lot_id": em_id, "quantity": "4.7", "reason": "关停减排"}),
        )
        .expect(201);
    assert_eq!(em_ret.body["kind"], "retirement");
    let lot = w.admin.get(&format!("/v1/lots/{ca_id}")).expect(200);
    assert_eq!(lot.body["retired"], "10000");

    // Registry cancellation and a court-ordered transfer, each under maker-checker.
    let pc = w
        .admin
        .post(
            &format!("/v1/lots/{em_id}/cancellations"),
            &json!({"holder_party_id": w.a, "quantity": "10", "reason": "许可证注销"}),
        )
        .expect(202);
    w.checker
        .post_key(
            &format!("/v1/proposals/{}/approve", pc.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    let pf = w.admin.post_key("/v1/transfers/forced", &key(), &json!({"lot_id": em_id, "from_party_id": w.a, "to_party_id": c_party, "quantity": "50", "kind": "court_order", "document_ref": "(2026)闽0702执123号"})).expect(202);
    let fid = pf.body["id"].clone();
    w.admin
        .post_key(&format!("/v1/proposals/{fid}/approve"), &key(), &json!({}))
        .expect(403);
    let f = w
        .checker
        .post_key(&format!("/v1/proposals/{fid}/approve"), &key(), &json!({}))
        .expect(200);
    assert_eq!(f.body["result"]["kind"], "court_order");
    assert_eq!(holding(&w.admin, c_party, em_id)["acquired"]["other"], "50");
    assert_eq!(available(&w.admin, w.a, em_id), d("400"));
    assert_eq!(
        w.admin.get(&format!("/v1/lots/{em_id}")).expect(200).body["cancelled"],
        "10"
    );

    // The journal shows every movement; a party only its own.
    let h = w
        .admin
        .get(&format!("/v1/lots/{em_id}/history"))
        .expect(200);
    let causes: Vec<&str> = h
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cause"].as_str().unwrap())
        .collect();
    assert_eq!(
        causes,
        [
            "issuance",
            "transfer_request",
            "transfer_settle",
            "retirement",
            "cancellation",
            "forced_transfer"
        ]
    );
    let hc = ent_c.get(&format!("/v1/lots/{em_id}/history")).expect(200);
    assert_eq!(hc.body.as_array().unwrap().len(), 1);
    assert_all_conserved(&w.admin);
    assert_eq!(w.admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}

fn quantity_errors(b: Backend) {
    let w = world(b);
    let ca = issue(
        &w.admin,
        &w.checker,
        lot_request("CA", w.a, "100", "CA-src-1"),
    )["id"]
        .as_i64()
        .unwrap();
    let em = issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.a, "10", "EM-src-1"),
    )["id"]
        .as_i64()
        .unwrap();
    let cases = [
        (ca, json!("1.5"), "quantity"),
        (em, json!("1.00001"), "quantity"),
        (em, json!("0"), "quantity"),
        (em, json!("-1"), "quantity"),
        (em, json!(1.5), "quantity"),
        (em, json!("1e2"), "quantity"),
    ];
    for (lot, q, field) in cases {
        let r = w.ent_a.post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": lot, "to_party_id": w.b, "quantity": q}),
        );
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (422, "validation_failed"),
            "{q}: {}",
            r.body
        );
        assert_eq!(r.body["errors"][0]["field"], field, "{q}");
    }
    // An issuance with more places than the type allows is refused, never rounded.
    let r = w
        .admin
        .post("/v1/lots", &lot_request("CA", w.a, "10.5", "CA-src-2"))
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "quantity");
    let r = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": em, "to_party_id": w.b, "quantity": "11"}),
        )
        .expect(409);
    assert_eq!(r.code(), "insufficient_quantity");
    let r = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": em, "to_party_id": w.b, "quantity": "1", "unit_price": "6300"}),
        )
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "years");
    assert_eq!(available(&w.admin, w.a, em), d("10"));
    assert_all_conserved(&w.admin);
}

fn exactly_once(b: Backend) {
    let w = world(b);
    let ca = issue(
        &w.admin,
        &w.checker,
        lot_request("CA", w.a, "100", "CA-src-1"),
    )["id"]
        .as_i64()
        .unwrap();
    let body = json!({"lot_id": ca, "to_party_id": w.b, "quantity": "10"});
    let r = w.ent_a.post("/v1/transfers", &body).expect(400);
    assert_eq!(r.code(), "idempotency_key_required");
    let first = w.ent_a.post_key("/v1/transfers", "k-1", &body).expect(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = w.ent_a.post_key("/v1/transfers", "k-1", &body).expect(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let other = w
        .ent_a
        .post_key(
            "/v1/transfers",
            "k-1",
            &json!({"lot_id": ca, "to_party_id": w.b, "quantity": "11"}),
        )
        .expect(422);
    assert_eq!(other.code(), "idempotency_key_reused");
    // Keys are scoped to the principal: B may use the same key for its own request.
    w.ent_b.post_key("/v1/transfers", "k-1", &body).expect(404);
    assert_eq!(available(&w.admin, w.a, ca), d("90"));
    // A failed request frees its key: after the cause is fixed, the retry runs.
    w.ent_a
        .post_key(
            "/v1/transfers",
            "k-2",
            &json!({"lot_id": ca, "to_party_id": w.b, "quantity": "1000"}),
        )
        .expect(409);
    w.ent_a
        .post_key(
            "/v1/transfers",
            "k-2",
            &json!({"lot_id": ca, "to_party_id": w.b, "quantity": "1000"}),
        )
        .expect(409);

    // A retry after the first request's connection was dropped takes effect exactly once.
    let payload = json!({"lot_id": ca, "to_party_id": w.b, "quantity": "7"}).to_string();
    let addr = w.srv.base.trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&addr).unwrap();
    let req = format!(
        "POST /v1/transfers HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nIdempotency-Key: k-drop\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        w.ent_a.token.as_deref().unwrap(),
        payload.len()
    );
    sock.write_all(req.as_bytes()).unwrap();
    drop(sock); // gone before reading the answer
                // The key's record commits with the effect, so nothing of the first attempt can hold the
                // key: the retry waits for the first to end (if it still runs) and replays it, or runs itself.
    let r = w.ent_a.post_key(
        "/v1/transfers",
        "k-drop",
        &serde_json::from_str(&payload).unwrap(),
    );
    assert_eq!(r.status.as_u16(), 201, "{}", r.body);
    assert_eq!(
        available(&w.admin, w.a, ca),
        d("83"),
        "the dropped request and its retry moved 7 once"
    );
    let mut buf = Vec::new();
    let _ = std::net::TcpStream::connect(&addr).map(|mut s| s.read_to_end(&mut buf));
    assert_all_conserved(&w.admin);
}

/// Duplicates sent at once (a client retrying before the first answer came) never see a 409: each
/// waits until the first has committed and gets its response replayed. The effect happens once.
fn concurrent_duplicates_replay(b: Backend) {
    let w = world(b);
    let ca = issue(
        &w.admin,
        &w.checker,
        lot_request("CA", w.a, "100", "CA-src-1"),
    )["id"]
        .as_i64()
        .unwrap();
    for round in 0..3 {
        let body = json!({"lot_id": ca, "to_party_id": w.b, "quantity": "1"});
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (api, body, barrier) = (w.ent_a.clone(), body.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    api.post_key("/v1/transfers", &format!("dup-{round}"), &body)
                })
            })
            .collect();
        let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for r in &replies {
            assert_eq!(r.status.as_u16(), 201, "{}", r.body);
            assert_eq!(
                r.body["id"], replies[0].body["id"],
                "one transfer for one key"
            );
        }
        let fresh = replies
            .iter()
            .filter(|r| r.header("idempotent-replayed").is_none())
            .count();
        assert_eq!(fresh, 1, "one ran, the others replayed");
    }
    assert_eq!(available(&w.admin, w.a, ca), d("97"));
    assert_all_conserved(&w.admin);
}

fn over_spend_race(b: Backend) {
    let w = world(b);
    let ca = issue(
        &w.admin,
        &w.checker,
        lot_request("CA", w.a, "100", "CA-src-1"),
    )["id"]
        .as_i64()
        .unwrap();
    for round in 0..5 {
        let avail = available(&w.admin, w.a, ca);
        let q = (avail / d("2")).floor() + d("1");
        let body = json!({"lot_id": ca, "to_party_id": w.b, "quantity": q.to_string()});
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let (api, body, barrier) = (w.ent_a.clone(), body.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    api.post_key("/v1/transfers", &format!("race-{round}-{i}"), &body)
                })
            })
            .collect();
        let replies: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = replies.iter().filter(|r| r.status.as_u16() == 201).count();
        let losses = replies
            .iter()
            .filter(|r| r.status.as_u16() == 409 && r.code() == "insufficient_quantity")
            .count();
        assert_eq!(
            (wins, losses),
            (1, 1),
            "exactly one of two over-spending transfers wins"
        );
        assert_eq!(available(&w.admin, w.a, ca), avail - q);
        // Return the quantity for the next round.
        let won = replies.iter().find(|r| r.status.as_u16() == 201).unwrap();
        w.ent_a
            .post_key(
                &format!("/v1/transfers/{}/cancel", won.body["id"]),
                &key(),
                &json!({}),
            )
            .expect(200);
        assert_conserved(&w.admin, ca);
    }
}

fn concurrent_transfers_two_processes(b: Backend) {
    let w = world(b);
    let second = Server::on(w.srv.db.clone());
    let bases = [w.srv.base.clone(), second.base.clone()];
    // Ten holders of one lot, each starting with 1000.
    let mut holders = Vec::new();
    for i in 0..10u32 {
        let p = party(&w.admin, "enterprise", 100 + i);
        let api = user(&w.admin, "enterprise", Some(p), &format!("holder-{i}"));
        holders.push((p, api));
    }
    let lot = issue(
        &w.admin,
        &w.checker,
        lot_request("CA", w.a, "10000", "CA-conc-1"),
    )["id"]
        .as_i64()
        .unwrap();
    for (p, _) in &holders {
        let t = w
            .ent_a
            .post_key(
                "/v1/transfers",
                &key(),
                &json!({"lot_id": lot, "to_party_id": p, "quantity": "1000"}),
            )
            .expect(201);
        let receiver = &holders.iter().find(|(q, _)| q == p).unwrap().1;
        receiver
            .post_key(
                &format!("/v1/transfers/{}/confirm", t.body["id"]),
                &key(),
                &json!({}),
            )
            .expect(200);
    }
    // 16 clients across both processes: random transfers among the holders, each confirmed by
    // its receiver. Every acknowledged settlement is recorded to check against the ledger.
    let holders = std::sync::Arc::new(holders);
    let threads: Vec<_> = (0..16)
        .map(|c| {
            let holders = holders.clone();
            let base = bases[c % 2].clone();
            std::thread::spawn(move || {
                let mut settled: Vec<(i64, i64, i64)> = Vec::new();
                let mut five_xx = 0;
                for n in 0..12usize {
                    let from = (c * 7 + n * 3) % 10;
                    let to = (from + 1 + (c + n) % 9) % 10;
                    let qty = 1 + ((c * 31 + n * 17) % 200) as i64;
                    let sender = holders[from].1.clone();
                    let sender = Api::new(&base).with_token(sender.token.as_deref().unwrap());
                    let receiver = Api::new(&base).with_token(holders[to].1.token.as_deref().unwrap());
                    let r = sender.post_key("/v1/transfers", &format!("c{c}-n{n}"), &json!({"lot_id": lot, "to_party_id": holders[to].0, "quantity": qty.to_string()}));
                    if r.status.is_server_error() {
                        five_xx += 1;
                    }
                    if r.status.as_u16() != 201 {
                        assert!(r.status.as_u16() == 409 || r.status.is_server_error(), "{}", r.body);
                        continue;
                    }
                    let c2 = receiver.post_key(&format!("/v1/transfers/{}/confirm", r.body["id"]), &format!("c{c}-n{n}-confirm"), &json!({}));
                    if c2.status.as_u16() == 200 {
                        settled.push((from as i64, to as i64, qty));
                    } else if c2.status.is_server_error() {
                        five_xx += 1;
                    }
                }
                (settled, five_xx)
            })
        })
        .collect();
    let mut expected = [1000i64; 10];
    let mut errors = 0;
    for t in threads {
        let (settled, five_xx) = t.join().unwrap();
        errors += five_xx;
        for (from, to, q) in settled {
            expected[from as usize] -= q;
            expected[to as usize] += q;
        }
    }
    assert_eq!(errors, 0, "no 5xx under concurrency");
    // Every acknowledged effect is present, and nothing else moved.
    for (i, (p, _)) in holders.iter().enumerate() {
        let h = holding(&w.admin, *p, lot);
        assert_eq!(
            dec(&h["available"]) + dec(&h["in_transfer"]),
            Decimal::from(expected[i]),
            "holder {i}"
        );
    }
    assert_conserved(&w.admin, lot);
    assert_eq!(w.admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}

fn serial_ranges(b: Backend) {
    let w = world(b);
    let cs = issue(
        &w.admin,
        &w.checker,
        lot_request("CS", w.a, "1000", "FFCER-src-1"),
    )["id"]
        .as_i64()
        .unwrap();
    let t = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": cs, "to_party_id": w.b, "quantity": "300"}),
        )
        .expect(201);
    assert_eq!(t.body["serials"], "1-300");
    w.ent_b
        .post_key(
            &format!("/v1/transfers/{}/confirm", t.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    // Retire exactly serials 101–150 of B's, splitting its range in the middle.
    let r = w.ent_b.post_key("/v1/retirements", &key(), &json!({"lot_id": cs, "quantity": "50", "reason": "碳中和", "beneficiary": "某会议", "serials": [[101, 150]]})).expect(201);
    assert_eq!(r.body["serials"], "101-150");
    // Serials B does not hold cannot be retired by B.
    let r = w.ent_b.post_key("/v1/retirements", &key(), &json!({"lot_id": cs, "quantity": "10", "reason": "x", "beneficiary": "y", "serials": [[500, 509]]})).expect(409);
    assert_eq!(r.code(), "serials_unavailable");
    let s = w.admin.get(&format!("/v1/lots/{cs}/serials")).expect(200);
    let ranges: Vec<(i64, i64, String)> = s.body["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["first"].as_i64().unwrap(),
                r["last"].as_i64().unwrap(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        ranges,
        vec![
            (1, 100, "available".into()),
            (101, 150, "retired".into()),
            (151, 300, "available".into()),
            (301, 1000, "available".into())
        ]
    );
    assert_eq!(s.body["ranges"][0]["party_id"].as_i64(), Some(w.b));
    assert_eq!(s.body["ranges"][3]["party_id"].as_i64(), Some(w.a));
    assert_conserved(&w.admin, cs);
    // A non-whole quantity of a carbon-sink credit is refused at the edge.
    w.ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": cs, "to_party_id": w.b, "quantity": "0.5"}),
        )
        .expect(422);
}

fn expired_lots(b: Backend) {
    let w = world(b);
    let mut req = lot_request("CA", w.a, "100", "CA-exp-1");
    req["valid_to"] = json!("2027-06-30");
    let lot = issue(&w.admin, &w.checker, req)["id"].as_i64().unwrap();
    let pending = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": lot, "to_party_id": w.b, "quantity": "10"}),
        )
        .expect(201);
    w.ent_a.set_clock("2027-07-01T00:00:01Z");
    assert_eq!(
        w.ent_a.get(&format!("/v1/lots/{lot}")).expect(200).body["status"],
        "expired"
    );
    let r = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": lot, "to_party_id": w.b, "quantity": "10"}),
        )
        .expect(409);
    assert_eq!(r.code(), "lot_expired");
    let r = w.ent_a.post_key("/v1/retirements", &key(), &json!({"lot_id": lot, "quantity": "1", "reason": "x", "beneficiary": "y", "compliance_year": 2027})).expect(409);
    assert_eq!(r.code(), "lot_expired");
    // Unwinding is still allowed, and the history stays.
    w.ent_a
        .post_key(
            &format!("/v1/transfers/{}/cancel", pending.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_eq!(available(&w.admin, w.a, lot), d("100"));
    assert_eq!(
        w.admin
            .get(&format!("/v1/lots/{lot}/history"))
            .expect(200)
            .body
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_conserved(&w.admin, lot);
}

fn audit_detects_tampering(b: Backend) {
    let w = world(b);
    let lot = issue(
        &w.admin,
        &w.checker,
        lot_request("CA", w.a, "100", "CA-aud-1"),
    )["id"]
        .as_i64()
        .unwrap();
    for _ in 0..3 {
        w.ent_a
            .post_key(
                "/v1/transfers",
                &key(),
                &json!({"lot_id": lot, "to_party_id": w.b, "quantity": "1"}),
            )
            .expect(201);
    }
    w.admin
        .post("/v1/audit/checkpoints", &json!({}))
        .expect(201);
    assert_eq!(w.admin.get("/v1/audit/verify").expect(200).body["ok"], true);
    let cli_ok = common::command(&w.srv.db)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    assert!(
        cli_ok.status.success(),
        "{}",
        String::from_utf8_lossy(&cli_ok.stdout)
    );

    let chain = format!("lot:{lot}");
    let tamper = |sql: &str, undo: &str| {
        let mut conn = registry::db::establish(&w.srv.db.url).unwrap();
        use diesel::RunQueryDsl;
        for stmt in sql.split(';') {
            diesel::sql_query(stmt).execute(&mut conn).unwrap();
        }
        let v = w.admin.get("/v1/audit/verify").expect(200);
        assert_eq!(v.body["ok"], false, "not detected: {sql}");
        let cli = common::command(&w.srv.db)
            .args(["audit", "verify"])
            .output()
            .unwrap();
        assert!(
            !cli.status.success(),
            "`registry audit verify` missed: {sql}"
        );
        for stmt in undo.split(';') {
            diesel::sql_query(stmt).execute(&mut conn).unwrap();
        }
        assert_eq!(
            w.admin.get("/v1/audit/verify").expect(200).body["ok"],
            true,
            "undo of {sql}"
        );
    };
    // Edit a payload.
    tamper(
        &format!("UPDATE audit_events SET payload = replace(payload, '\"quantity\":10000', '\"quantity\":90000') WHERE chain = '{chain}' AND seq = 2"),
        &format!("UPDATE audit_events SET payload = replace(payload, '\"quantity\":90000', '\"quantity\":10000') WHERE chain = '{chain}' AND seq = 2"),
    );
    // Swap two events (through a free sequence number: (chain, seq) is unique).
    let swap = format!(
        "UPDATE audit_events SET seq = -1 WHERE chain = '{chain}' AND seq = 2;\
         UPDATE audit_events SET seq = 2 WHERE chain = '{chain}' AND seq = 3;\
         UPDATE audit_events SET seq = 3 WHERE chain = '{chain}' AND seq = -1"
    );
    tamper(&swap, &swap);
    // Delete the newest event and roll the chain head back with it: the checkpoint still catches it.
    let mut conn = registry::db::establish(&w.srv.db.url).unwrap();
    use diesel::RunQueryDsl;
    diesel::sql_query(format!(
        "UPDATE audit_chain_heads SET seq = seq - 1, hash = (SELECT prev_hash FROM audit_events WHERE chain = '{chain}' AND seq = (SELECT max(seq) FROM audit_events WHERE chain = '{chain}')) WHERE chain = '{chain}'"
    ))
    .execute(&mut conn)
    .unwrap();
    diesel::sql_query(format!("DELETE FROM audit_events WHERE chain = '{chain}' AND seq = (SELECT max(seq) FROM (SELECT seq FROM audit_events WHERE chain = '{chain}') AS s)"))
        .execute(&mut conn)
        .unwrap();
    let v = w.admin.get("/v1/audit/verify").expect(200);
    assert_eq!(
        v.body["ok"], false,
        "a deleted event was not detected: {}",
        v.body
    );
    assert_all_conserved(&w.admin);
}

both_backends!(
    issue_transfer_and_settle,
    quantity_errors,
    exactly_once,
    concurrent_duplicates_replay,
    over_spend_race,
    concurrent_transfers_two_processes,
    serial_ranges,
    expired_lots,
    audit_detects_tampering,
);
