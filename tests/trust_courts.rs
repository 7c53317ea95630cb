//! Courts come first, and the answers a bank and a court rely on hold: a judicial freeze
//! reaches pledged quantity and blocks every movement of it until lifted, a forced transfer by court
//! order executes against it, a frozen parcel is not disposed of; the forest waterfall pays each
//! parcel's proceeds by that parcel's ranks; an official registration ranks only once an operator
//! confirms it; objections (异议登记) show until withdrawn, resolved or lapsed.

mod common;

use std::str::FromStr;

use common::ledger::{assert_all_conserved, dec, holding, issue, key, lot_request};
use common::{party, uscc, user, Api, Backend, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Rights: pledges and judicial freezes
// ---------------------------------------------------------------------------------------------

struct Rights {
    _srv: Server,
    admin: Api,
    checker: Api,
    a: i64,
    b: i64,
    ent_a: Api,
    bank1: i64,
    bank2: i64,
    banker1: Api,
    banker2: Api,
    em: i64,
}

impl Rights {
    fn bank2_id(&self) -> i64 {
        self.bank2
    }
}

fn rights(backend: Backend) -> Rights {
    let srv = Server::start(backend);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let b = party(&admin, "enterprise", 2);
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
    Rights {
        _srv: srv,
        admin,
        checker,
        a,
        b,
        ent_a,
        bank1,
        bank2,
        banker1,
        banker2,
        em,
    }
}

/// Applies and registers a pledge of `quantity`; returns (id, registration no, amendment code).
fn pledge(w: &Rights, quantity: &str, period_end: &str) -> (i64, String, String) {
    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": quantity, "lender_party_id": w.bank1}),
        )
        .expect(201);
    let id = p.body["id"].as_i64().unwrap();
    let r = w
        .banker1
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &json!({"secured_amount": "1000000.00", "loan_maturity": "2028-12-31", "period_end": period_end,
                "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let s = |f: &str| r.body[f].as_str().unwrap().to_string();
    (id, s("registration_no"), s("amendment_code"))
}

fn freeze(w: &Rights, quantity: &str) -> common::Reply {
    w.admin
        .post_key(
            "/v1/judicial-freezes",
            &key(),
            &json!({"lot_id": w.em, "party_id": w.a, "quantity": quantity, "court": "南平市延平区人民法院",
                "case_no": "(2026)闽0702执保123号", "document_ref": "协助执行通知书 2026-118"}),
        )
}

fn buckets(w: &Rights) -> (Decimal, Decimal, Decimal) {
    let h = holding(&w.admin, w.a, w.em);
    (dec(&h["available"]), dec(&h["pledged"]), dec(&h["frozen"]))
}

/// A forced transfer by court order, proposed by one operator and approved by another.
fn court_transfer(w: &Rights, quantity: &str) -> common::Reply {
    court_order(w, quantity, Some("NPDJ-000001"))
}

/// A forced transfer by court order naming the freeze it executes (or none).
fn court_order(w: &Rights, quantity: &str, freeze_no: Option<&str>) -> common::Reply {
    let mut body = json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.b, "quantity": quantity,
        "kind": "court_order", "document_ref": "(2026)闽0702执123号 执行裁定书"});
    if let Some(no) = freeze_no {
        body["freeze_no"] = json!(no);
    }
    let p = w
        .admin
        .post_key("/v1/transfers/forced", &key(), &body)
        .expect(202);
    w.checker.post_key(
        &format!("/v1/proposals/{}/approve", p.body["id"]),
        &key(),
        &json!({}),
    )
}

/// #4: a court freezes quantity that is wholly pledged (once a 409); the pledgee can then neither
/// release nor dispose of it, the search, the verification and the certificate show the freeze, and
/// only the lifting order frees it.
fn a_freeze_reaches_pledged_quantity(backend: Backend) {
    let w = rights(backend);
    let (id, reg, code) = pledge(&w, "400", "2028-12-31");
    assert_eq!(buckets(&w), (d("85.2"), d("400"), d("0")));

    let f = freeze(&w, "485.2").expect(201);
    assert_eq!(
        (
            f.body["quantity"].as_str(),
            f.body["pledged_quantity"].as_str()
        ),
        (Some("485.2"), Some("400"))
    );
    // The available part is frozen; the pledged part stays pledged and is frozen as well.
    assert_eq!(buckets(&w), (d("0"), d("400"), d("85.2")));
    assert_all_conserved(&w.admin);

    // Nothing of it moves: no disposal after default, no transfer. (A release ends the bank's
    // claim only: what it frees stays frozen, see `a_release_under_a_freeze_stays_frozen`.)
    w.banker1
        .post_key(
            &format!("/v1/pledges/{id}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "1000000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/pledges/{id}/dispose"),
        &key(),
        &json!({"buyer_party_id": w.b, "unit_price": "6300", "years": 4}),
    )
    .expect(409);
    assert_eq!(r.code(), "frozen_by_court");
    w.ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "1"}),
        )
        .expect(409);
    assert_eq!(buckets(&w), (d("0"), d("400"), d("85.2")));
    assert_all_conserved(&w.admin);

    // A second order finds nothing left to freeze, and says what is where.
    assert_eq!(
        freeze(&w, "0.1").expect(409).code(),
        "freeze_exceeds_holding"
    );

    // Lender search, verification and the signed certificate show the freeze.
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(1)))
        .expect(200)
        .body;
    let kinds: Vec<&str> = s["encumbrances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pledge", "judicial_freeze"]);
    let v = w
        .banker2
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    assert_eq!(v["freezes"][0]["court"], "南平市延平区人民法院");
    let cert = w
        .banker2
        .post("/v1/search-certificates", &json!({"lot_id": w.em}))
        .expect(201)
        .body;
    assert!(cert["statement"]["encumbrances"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "judicial_freeze"));

    // The lifting order frees it: the pledge's disposal then proceeds.
    common::two_person_reply(
        &w.admin,
        &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);
    assert_eq!(buckets(&w), (d("85.2"), d("400"), d("0")));
    common::two_person_reply(
        &w.admin,
        &format!("/v1/pledges/{id}/dispose"),
        &key(),
        &json!({"buyer_party_id": w.b, "unit_price": "6300", "years": 4}),
    )
    .expect(200);
    assert_all_conserved(&w.admin);
}

/// #4: a forced transfer by court order executes against the frozen quantity (it once found no
/// available quantity and failed), consuming the freeze.
fn a_court_transfer_takes_the_frozen_quantity(backend: Backend) {
    let w = rights(backend);
    let f = freeze(&w, "485.2").expect(201);
    assert_eq!(buckets(&w), (d("0"), d("0"), d("485.2")));
    let r = court_transfer(&w, "100").expect(200);
    assert_eq!(r.body["result"]["status"], "settled");
    assert_eq!(buckets(&w), (d("0"), d("0"), d("385.2")));
    assert_eq!(dec(&holding(&w.admin, w.b, w.em)["available"]), d("100"));
    let freezes = w.admin.get("/v1/judicial-freezes").expect(200).body["items"].clone();
    assert_eq!(
        (
            freezes[0]["status"].as_str(),
            freezes[0]["executed_quantity"].as_str()
        ),
        (Some("active"), Some("100"))
    );
    assert_all_conserved(&w.admin);
    // The rest: the freeze is wholly executed and no longer shows as live.
    court_transfer(&w, "385.2").expect(200);
    let freezes = w.admin.get("/v1/judicial-freezes").expect(200).body["items"].clone();
    assert_eq!(freezes[0]["status"], "executed");
    assert_eq!(buckets(&w), (d("0"), d("0"), d("0")));
    assert!(w
        .banker1
        .get(&format!("/v1/encumbrances?lot_id={}", w.em))
        .expect(200)
        .body["encumbrances"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        common::two_person_reply(
            &w.admin,
            &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
            &key(),
            &json!({"document_ref": "x"})
        )
        .expect(409)
        .code(),
        "freeze_executed"
    );
    assert_all_conserved(&w.admin);
}

/// Review of #4: a court's order executes only the freeze it names. Court A freezes 100; court B's
/// order without a freeze number takes the free quantity and leaves A's freeze whole; naming a
/// freeze of another holding, or one no longer active, is refused; naming its own, it executes it.
fn a_court_order_executes_only_its_own_freeze(backend: Backend) {
    let w = rights(backend);
    freeze(&w, "100").expect(201);
    assert_eq!(buckets(&w), (d("385.2"), d("0"), d("100")));
    let r = court_order(&w, "50", None).expect(200);
    assert_eq!(r.body["result"]["status"], "settled");
    assert_eq!(buckets(&w), (d("335.2"), d("0"), d("100")));
    let freezes = w.admin.get("/v1/judicial-freezes").expect(200).body["items"].clone();
    assert_eq!(freezes[0]["status"], "active");
    assert_eq!(freezes[0]["executed_quantity"], "0");
    // More than the free quantity, without naming the freeze: the frozen 100 is not touched.
    let p = w
        .admin
        .post_key(
            "/v1/transfers/forced",
            &key(),
            &json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.b, "quantity": "400",
                "kind": "court_order", "document_ref": "(2026)闽0703执9号"}),
        )
        .expect(202);
    let refused = w.checker.post_key(
        &format!("/v1/proposals/{}/approve", p.body["id"]),
        &key(),
        &json!({}),
    );
    assert!(refused.status.is_client_error(), "{:?}", refused.body);
    assert_eq!(buckets(&w), (d("335.2"), d("0"), d("100")));
    // A freeze number of no freeze, a malformed one, one of another holding: refused at proposal.
    let propose = |no: &str, from: i64| {
        w.admin.post_key(
            "/v1/transfers/forced",
            &key(),
            &json!({"lot_id": w.em, "from_party_id": from, "to_party_id": if from == w.a { w.b } else { w.a }, "quantity": "1",
                "kind": "court_order", "document_ref": "(2026)闽0703执9号", "freeze_no": no}),
        )
    };
    assert_eq!(
        propose("NPDJ-000099", w.a).expect(422).code(),
        "validation_failed"
    );
    assert_eq!(
        propose("000001", w.a).expect(422).code(),
        "validation_failed"
    );
    assert_eq!(
        propose("NPDJ-000001", w.b).expect(409).code(),
        "freeze_not_of_holding"
    );
    // Naming its own freeze, the order executes it.
    court_order(&w, "100", Some("NPDJ-000001")).expect(200);
    assert_eq!(buckets(&w), (d("335.2"), d("0"), d("0")));
    let freezes = w.admin.get("/v1/judicial-freezes").expect(200).body["items"].clone();
    assert_eq!(freezes[0]["status"], "executed");
    assert_eq!(
        propose("NPDJ-000001", w.a).expect(409).code(),
        "freeze_not_active"
    );
    assert_eq!(dec(&holding(&w.admin, w.b, w.em)["available"]), d("150"));
    assert_all_conserved(&w.admin);
}

/// Proposes a court order of `quantity` executing NPDJ-000001 with `extra` fields; a second
/// operator approves it.
fn court_order_with(w: &Rights, quantity: &str, extra: Value) -> common::Reply {
    let mut body = json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.b, "quantity": quantity,
        "kind": "court_order", "document_ref": "(2026)闽0702执123号 执行裁定书", "freeze_no": "NPDJ-000001"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let p = w
        .admin
        .post_key("/v1/transfers/forced", &key(), &body)
        .expect(202);
    w.checker.post_key(
        &format!("/v1/proposals/{}/approve", p.body["id"]),
        &key(),
        &json!({}),
    )
}

/// A bucket of a holding; a party that never held the lot holds nothing.
fn bucket_of(w: &Rights, party: i64, bucket: &str) -> Decimal {
    let h = holding(&w.admin, party, w.em);
    if h[bucket].is_null() {
        Decimal::ZERO
    } else {
        dec(&h[bucket])
    }
}

fn pledged_of(w: &Rights, party: i64) -> Decimal {
    bucket_of(w, party, "pledged")
}

/// Courts: a forced transfer by court order executes against pledged frozen quantity (once a 409
/// `frozen_pledged_quantity`). The pledge follows the quantity (Civil Code art. 406): A pledged all
/// 485.2 to bank 1, a court froze 100 of it and orders those 100 to B. B receives them still
/// pledged to bank 1 under a pledge of its own registration number (same lender, rank, loan); A's
/// pledge keeps 385.2; both pledges' entries name the order; the freeze is executed.
fn a_court_order_takes_pledged_frozen_quantity_and_the_pledge_follows(backend: Backend) {
    let w = rights(backend);
    let (id, reg, _) = pledge(&w, "485.2", "2027-12-31");
    let f = freeze(&w, "100").expect(201);
    assert_eq!(f.body["pledged_quantity"], "100");
    let r = court_order_with(&w, "100", json!({})).expect(200);
    assert_eq!(r.body["result"]["status"], "settled");
    assert_eq!(
        (pledged_of(&w, w.a), pledged_of(&w, w.b)),
        (d("385.2"), d("100"))
    );
    assert_eq!(bucket_of(&w, w.b, "available"), d("0"));
    let orig = w.banker1.get(&format!("/v1/pledges/{id}")).expect(200).body;
    assert_eq!(
        (orig["status"].as_str(), dec(&orig["quantity"])),
        (Some("registered"), d("385.2"))
    );
    assert!(
        entry_kinds(&orig).contains(&"court_transfer".to_string()),
        "{orig}"
    );
    let entry = orig["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "court_transfer")
        .unwrap();
    assert_eq!(
        entry["details"]["document_ref"],
        "(2026)闽0702执123号 执行裁定书"
    );
    // B's part: a pledge of its own to the same lender.
    let all = w.banker1.get("/v1/pledges").expect(200).body;
    let list = all
        .as_array()
        .or_else(|| all["items"].as_array())
        .unwrap()
        .clone();
    let part = list
        .iter()
        .find(|p| p["pledgor_id"] == json!(w.b))
        .expect("B's part of the pledge");
    assert_eq!(
        (
            part["status"].as_str(),
            dec(&part["quantity"]),
            part["lender_id"].as_i64(),
            part["rank"].clone()
        ),
        (
            Some("registered"),
            d("100"),
            Some(w.bank1),
            orig["rank"].clone()
        )
    );
    assert_ne!(part["registration_no"].as_str(), Some(reg.as_str()));
    assert!(
        entry_kinds(part).contains(&"court_transfer".to_string()),
        "{part}"
    );
    // The lender finds it under the new holder.
    let s = w
        .banker1
        .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(2)))
        .expect(200)
        .body;
    assert!(
        s.to_string()
            .contains(part["registration_no"].as_str().unwrap()),
        "{s}"
    );
    let freezes = w.admin.get("/v1/judicial-freezes").expect(200).body["items"].clone();
    assert_eq!(
        (
            freezes[0]["status"].as_str(),
            freezes[0]["executed_quantity"].as_str(),
            freezes[0]["pledged_quantity"].as_str()
        ),
        (Some("executed"), Some("100"), Some("0"))
    );
    assert_all_conserved(&w.admin);
}

/// Courts: the parts of a pledge split by a court order secure the one claim. A pledged all
/// 485.2 to bank 1 for a 1,000,000 claim; a court order moved 100 of it, still pledged, to B. Both
/// parts are enforced and sold for far more than the claim: bank 1 is paid 1,000,000 in all (once
/// it was paid the whole claim on each part), and each pledgor gets the rest of its own part.
fn split_parts_of_a_pledge_pay_the_claim_once(backend: Backend) {
    let w = rights(backend);
    let (id, _, code) = pledge(&w, "485.2", "2027-12-31");
    freeze(&w, "100").expect(201);
    court_order_with(&w, "100", json!({})).expect(200);
    let all = w.banker1.get("/v1/pledges").expect(200).body;
    let part = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pledgor_id"] == json!(w.b))
        .expect("B's part of the pledge")["id"]
        .as_i64()
        .unwrap();
    for (pledge, buyer) in [(id, w.b), (part, w.a)] {
        w.banker1
            .post_key(
                &format!("/v1/pledges/{pledge}/enforce"),
                &key(),
                &json!({"amendment_code": code, "principal": "1000000.00", "interest": "0", "costs": "0"}),
            )
            .expect(200);
        common::two_person_reply(
            &w.admin,
            &format!("/v1/pledges/{pledge}/dispose"),
            &key(),
            &json!({"buyer_party_id": buyer, "unit_price": "6300", "years": 4}),
        )
        .expect(200);
    }
    let paid = |pledge: i64| {
        let v = w
            .banker1
            .get(&format!("/v1/pledges/{pledge}"))
            .expect(200)
            .body;
        (dec(&v["paid_to_lender"]), dec(&v["paid_to_pledgor"]))
    };
    let ((lender_a, pledgor_a), (lender_b, pledgor_b)) = (paid(id), paid(part));
    assert_eq!(lender_a + lender_b, d("1000000"), "the claim is paid once");
    // 385.2 t and 100 t at 6,300 yuan a ton-year for 4 years.
    assert_eq!(lender_a + pledgor_a, d("9707040"));
    assert_eq!(lender_b + pledgor_b, d("2520000"));
    assert_all_conserved(&w.admin);
}

/// Courts: a pledge taken whole by a court order follows to the transferee as it is (the same
/// registration number, now with B as the holder of the pledged quantity).
fn a_whole_pledge_follows_the_court_order(backend: Backend) {
    let w = rights(backend);
    let (id, reg, _) = pledge(&w, "485.2", "2027-12-31");
    freeze(&w, "485.2").expect(201);
    court_order_with(&w, "485.2", json!({"pledge_handling": "follows"})).expect(200);
    assert_eq!(
        (pledged_of(&w, w.a), pledged_of(&w, w.b)),
        (d("0"), d("485.2"))
    );
    let p = w.banker1.get(&format!("/v1/pledges/{id}")).expect(200).body;
    assert_eq!(
        (
            p["status"].as_str(),
            p["pledgor_id"].as_i64(),
            dec(&p["quantity"]),
            p["registration_no"].as_str()
        ),
        (
            Some("registered"),
            Some(w.b),
            d("485.2"),
            Some(reg.as_str())
        )
    );
    assert!(
        entry_kinds(&p).contains(&"court_transfer".to_string()),
        "{p}"
    );
    assert_all_conserved(&w.admin);
}

/// Courts: an order that discharges the pledge on the quantity it takes: B receives it free, the
/// pledge keeps the rest and its entry names the order; an unknown handling is a 422.
fn a_court_order_may_discharge_the_pledge(backend: Backend) {
    let w = rights(backend);
    let (id, _, _) = pledge(&w, "485.2", "2027-12-31");
    freeze(&w, "100").expect(201);
    let bad = w.admin.post_key(
        "/v1/transfers/forced",
        &key(),
        &json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.b, "quantity": "100",
            "kind": "court_order", "document_ref": "x", "freeze_no": "NPDJ-000001", "pledge_handling": "ignored"}),
    );
    assert_eq!(bad.expect(422).code(), "validation_failed");
    court_order_with(&w, "100", json!({"pledge_handling": "discharged"})).expect(200);
    assert_eq!(
        (pledged_of(&w, w.a), pledged_of(&w, w.b)),
        (d("385.2"), d("0"))
    );
    assert_eq!(dec(&holding(&w.admin, w.b, w.em)["available"]), d("100"));
    let p = w.banker1.get(&format!("/v1/pledges/{id}")).expect(200).body;
    assert_eq!(
        (p["status"].as_str(), dec(&p["quantity"])),
        (Some("registered"), d("385.2"))
    );
    let entry = p["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "court_discharge")
        .expect("entry");
    assert_eq!(
        entry["details"]["document_ref"],
        "(2026)闽0702执123号 执行裁定书"
    );
    assert_all_conserved(&w.admin);
}

/// Courts: a pledge being disposed of with quantity on offer is not taken by a court order until
/// the offer ends (409 `pledge_on_offer`, nothing moves): the unsold quantity would come back to a
/// holder the pledge no longer names. Once the listing is withdrawn the order executes.
fn a_pledge_on_offer_waits_for_its_offer_to_end(backend: Backend) {
    let w = rights(backend);
    let (id, _, code) = pledge(&w, "485.2", "2027-12-31");
    w.banker1
        .post_key(
            &format!("/v1/pledges/{id}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "1000000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    let l = common::two_person_reply(
        &w.admin,
        "/v1/listings",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": id, "quantity": "100", "unit_price": "6300", "years": 4,
            "min_lot": "1", "ends_at": "2026-12-20T08:00:00Z"}),
    )
    .expect(200);
    freeze(&w, "100").expect(201);
    assert_eq!(buckets(&w), (d("0"), d("385.2"), d("0")));
    let r = court_order_with(&w, "100", json!({})).expect(409);
    assert_eq!(r.code(), "pledge_on_offer");
    assert_eq!(buckets(&w), (d("0"), d("385.2"), d("0")));
    assert_eq!(pledged_of(&w, w.b), d("0"));
    w.admin
        .post_key(
            &format!("/v1/listings/{}/withdraw", l.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_eq!(pledged_of(&w, w.a), d("485.2"));
    court_order_with(&w, "100", json!({})).expect(200);
    assert_eq!(
        (pledged_of(&w, w.a), pledged_of(&w, w.b)),
        (d("385.2"), d("100"))
    );
    assert_all_conserved(&w.admin);
}

fn transfer_status(w: &Rights, id: i64) -> String {
    w.admin.get(&format!("/v1/transfers/{id}")).expect(200).body["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn in_transfer(w: &Rights) -> Decimal {
    dec(&holding(&w.admin, w.a, w.em)["in_transfer"])
}

/// Courts: a freeze reaches quantity in a pending transfer (once 409 `freeze_exceeds_holding`). A
/// sends 300 to B; a freeze of 250 takes the 185.2 available and holds 64.8 in the transfer, which
/// stays where it is: B's confirmation is refused (409 `quantity_frozen`) and nothing changes. A
/// cancels: the 300 come back, 64.8 of them still frozen; the lift frees them.
fn a_freeze_holds_quantity_in_a_pending_transfer(backend: Backend) {
    let w = rights(backend);
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let t = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "300"}),
        )
        .expect(201);
    let tid = t.body["id"].as_i64().unwrap();
    let f = freeze(&w, "250").expect(201);
    assert_eq!(
        (
            f.body["pending_quantity"].as_str(),
            f.body["pledged_quantity"].as_str()
        ),
        (Some("64.8"), Some("0"))
    );
    assert_eq!(buckets(&w), (d("0"), d("0"), d("185.2")));
    assert_eq!(in_transfer(&w), d("300"));
    assert_all_conserved(&w.admin);
    let r = ent_b
        .post_key(&format!("/v1/transfers/{tid}/confirm"), &key(), &json!({}))
        .expect(409);
    assert_eq!(r.code(), "quantity_frozen");
    assert_eq!(transfer_status(&w, tid), "requested");
    assert_eq!(in_transfer(&w), d("300"));
    // The holding has nothing more to freeze.
    assert_eq!(
        freeze(&w, "235.3").expect(409).code(),
        "freeze_exceeds_holding"
    );
    w.ent_a
        .post_key(&format!("/v1/transfers/{tid}/cancel"), &key(), &json!({}))
        .expect(200);
    assert_eq!(buckets(&w), (d("235.2"), d("0"), d("250")));
    assert_eq!(in_transfer(&w), d("0"));
    let freezes = w.admin.get("/v1/judicial-freezes").expect(200).body["items"].clone();
    assert_eq!(freezes[0]["pending_quantity"], "0");
    assert_all_conserved(&w.admin);
    common::two_person_reply(
        &w.admin,
        &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);
    assert_eq!(buckets(&w), (d("485.2"), d("0"), d("0")));
    assert_all_conserved(&w.admin);
}

/// Courts: a confirmed transfer awaiting the operator's approval is held by a freeze: the approval
/// is refused (409 `quantity_frozen`) while it stands; once lifted the transfer settles.
fn a_held_transfer_settles_only_after_the_lift(backend: Backend) {
    let w = rights(backend);
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let t = w
        .ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "100"}),
        )
        .expect(201);
    let tid = t.body["id"].as_i64().unwrap();
    ent_b
        .post_key(&format!("/v1/transfers/{tid}/confirm"), &key(), &json!({}))
        .expect(200);
    assert_eq!(transfer_status(&w, tid), "confirmed");
    let f = freeze(&w, "485.2").expect(201);
    assert_eq!(f.body["pending_quantity"], "100");
    let r = w
        .checker
        .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
        .expect(409);
    assert_eq!(r.code(), "quantity_frozen");
    assert_eq!(transfer_status(&w, tid), "confirmed");
    assert_eq!(bucket_of(&w, w.b, "available"), d("0"));
    assert_all_conserved(&w.admin);
    common::two_person_reply(
        &w.admin,
        &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);
    w.checker
        .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
        .expect(200);
    assert_eq!(transfer_status(&w, tid), "settled");
    assert_eq!(dec(&holding(&w.admin, w.b, w.em)["available"]), d("100"));
    assert_eq!(buckets(&w), (d("385.2"), d("0"), d("0")));
    assert_all_conserved(&w.admin);
}

/// Courts: a freeze reaches quantity in a trade awaiting payment. B buys 300 of A's listing; a
/// freeze of all A holds takes the 185.2 available and holds the trade's 300: the payment is
/// refused (409 `quantity_frozen`) and nothing moves; unpaid at its deadline the trade expires and
/// the 300 return to A still frozen.
fn a_freeze_holds_a_trade_awaiting_payment(backend: Backend) {
    let w = rights(backend);
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let l = w
        .ent_a
        .post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": w.em, "quantity": "300", "unit_price": "6300", "years": 4, "min_lot": "1",
                "ends_at": "2026-12-20T08:00:00Z"}),
        )
        .expect(201);
    let listing = l.body["id"].as_i64().unwrap();
    let t = ent_b
        .post_key(
            &format!("/v1/listings/{listing}/purchases"),
            &key(),
            &json!({"quantity": "300"}),
        )
        .expect(201);
    let trade = t.body["id"].as_i64().unwrap();
    assert_eq!(in_transfer(&w), d("300"));
    let f = freeze(&w, "485.2").expect(201);
    assert_eq!(f.body["pending_quantity"], "300");
    assert_eq!(buckets(&w), (d("0"), d("0"), d("185.2")));
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/trades/{trade}/payment"),
        &key(),
        &json!({"payment_ref": "CIB-PAY-1"}),
    )
    .expect(409);
    assert_eq!(r.code(), "quantity_frozen");
    assert_eq!(
        w.admin.get(&format!("/v1/trades/{trade}")).expect(200).body["status"],
        "awaiting_payment"
    );
    assert_eq!(in_transfer(&w), d("300"));
    assert_eq!(bucket_of(&w, w.b, "available"), d("0"));
    assert_all_conserved(&w.admin);
    w.admin.set_clock("2026-12-31T00:00:00Z");
    w.admin.post("/v1/market/sweep", &json!({})).expect(200);
    assert_eq!(
        w.admin.get(&format!("/v1/trades/{trade}")).expect(200).body["status"],
        "expired"
    );
    assert_eq!(buckets(&w), (d("0"), d("0"), d("485.2")));
    assert_eq!(in_transfer(&w), d("0"));
    assert_all_conserved(&w.admin);
}

/// Review of #4: a freeze reaches listed quantity. A holds 485.2 and lists 300: a freeze of 250
/// takes the 185.2 available and 64.8 of the listing's unsold quantity (once a 409, and the listed
/// quantity was then bought past the court); a second freeze takes the rest of the listing, which is
/// withdrawn, so nothing of it can be bought.
fn a_freeze_reaches_listed_quantity(backend: Backend) {
    let w = rights(backend);
    let l = w
        .ent_a
        .post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": w.em, "quantity": "300", "unit_price": "6300", "years": 4, "min_lot": "1",
                "ends_at": "2026-12-20T08:00:00Z"}),
        )
        .expect(201);
    let listing = l.body["id"].as_i64().unwrap();
    assert_eq!(dec(&holding(&w.admin, w.a, w.em)["listed"]), d("300"));
    freeze(&w, "250").expect(201);
    let h = holding(&w.admin, w.a, w.em);
    assert_eq!(
        (dec(&h["available"]), dec(&h["listed"]), dec(&h["frozen"])),
        (d("0"), d("235.2"), d("250"))
    );
    let v = w
        .admin
        .get(&format!("/v1/listings/{listing}"))
        .expect(200)
        .body;
    assert_eq!(dec(&v["remaining"]), d("235.2"));
    assert_all_conserved(&w.admin);
    freeze(&w, "235.2").expect(201);
    let v = w
        .admin
        .get(&format!("/v1/listings/{listing}"))
        .expect(200)
        .body;
    assert_eq!(v["status"], "withdrawn");
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let r = ent_b.post_key(
        &format!("/v1/listings/{listing}/purchases"),
        &key(),
        &json!({"quantity": "1"}),
    );
    assert!(r.status.is_client_error(), "{:?}", r.body);
    let h = holding(&w.admin, w.a, w.em);
    assert_eq!(
        (dec(&h["available"]), dec(&h["listed"]), dec(&h["frozen"])),
        (d("0"), d("0"), d("485.2"))
    );
    assert_eq!(freeze(&w, "1").expect(409).code(), "freeze_exceeds_holding");
    assert_all_conserved(&w.admin);
}

/// Pledges all 485.2 of A to bank 1 and puts the pledge into enforcement; returns its id.
fn enforced_pledge(w: &Rights) -> i64 {
    let (id, _, code) = pledge(w, "485.2", "2027-12-31");
    w.banker1
        .post_key(
            &format!("/v1/pledges/{id}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "1000000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    id
}

/// A disposal listing of `quantity` of the enforced pledge, proposed and approved.
fn disposal_listing(w: &Rights, pledge_id: i64, quantity: &str) -> common::Reply {
    common::two_person_reply(
        &w.admin,
        "/v1/listings",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": pledge_id, "quantity": quantity, "unit_price": "6300",
            "years": 4, "min_lot": "1", "ends_at": "2026-12-20T08:00:00Z"}),
    )
}

/// (available, listed, pledged, frozen, in transfer) of A's holding.
fn all_buckets(w: &Rights) -> (Decimal, Decimal, Decimal, Decimal, Decimal) {
    let b = |n: &str| bucket_of(w, w.a, n);
    (
        b("available"),
        b("listed"),
        b("pledged"),
        b("frozen"),
        b("in_transfer"),
    )
}

/// The pledge's entries of a kind, as the lender sees them.
fn entries_of(w: &Rights, pledge_id: i64, kind: &str) -> Vec<Value> {
    w.banker1
        .get(&format!("/v1/pledges/{pledge_id}"))
        .expect(200)
        .body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

/// The movements of A's lot with a cause, as an operator sees them.
fn movements(w: &Rights, cause: &str, from: &str, to: &str) -> Vec<Value> {
    w.admin
        .get(&format!("/v1/lots/{}/history", w.em))
        .expect(200)
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["cause"] == cause && m["from_bucket"] == from && m["to_bucket"] == to)
        .cloned()
        .collect()
}

/// Courts: a court order binds the asset whoever is selling it. A pledged all 485.2 to bank 1,
/// which is disposing of 300 through a listing. A freeze of 250 takes the 185.2 still pledged and
/// then 64.8 off the pledgee's listing (once 409 `freeze_exceeds_holding`, and the pledgee could sell
/// the lot off past the court): the listing keeps selling 235.2, the 64.8 return under the pledge
/// (its claim on them survives) and are frozen there; the lender's entry says why.
fn a_freeze_shrinks_a_disposal_listing(backend: Backend) {
    let w = rights(backend);
    let pid = enforced_pledge(&w);
    let l = disposal_listing(&w, pid, "300").expect(200);
    let listing = l.body["id"].as_i64().unwrap();
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("300"), d("185.2"), d("0"), d("0"))
    );
    let f = freeze(&w, "250").expect(201);
    assert_eq!(f.body["pledged_quantity"], "250");
    assert_eq!(f.body["pending_quantity"], "0");
    let v = w
        .admin
        .get(&format!("/v1/listings/{listing}"))
        .expect(200)
        .body;
    assert_eq!(dec(&v["remaining"]), d("235.2"));
    assert_eq!(v["status"], "open");
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("235.2"), d("250"), d("0"), d("0"))
    );
    let p = w
        .banker1
        .get(&format!("/v1/pledges/{pid}"))
        .expect(200)
        .body;
    assert_eq!(dec(&p["quantity"]), d("250"));
    assert_eq!(p["status"], "enforcing");
    let e = entries_of(&w, pid, "disposal_frozen");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["details"]["reason"], "judicial_freeze");
    assert_eq!(e[0]["details"]["freeze"], "NPDJ-000001");
    assert_eq!(e[0]["details"]["offer"], format!("listing:{listing}"));
    assert_eq!(dec(&e[0]["details"]["quantity"]), d("64.8"));
    assert_eq!(e[0]["details"]["offer_ended"], false);
    let back = movements(&w, "judicial_freeze", "listed", "pledged");
    assert_eq!(back.len(), 1);
    assert_eq!(dec(&back[0]["quantity"]), d("64.8"));
    assert_all_conserved(&w.admin);
    // The rest of the listing is not frozen and sells; more than it has left does not.
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let buy = |q: &str| {
        ent_b.post_key(
            &format!("/v1/listings/{listing}/purchases"),
            &key(),
            &json!({"quantity": q}),
        )
    };
    assert_eq!(buy("235.3").expect(409).code(), "insufficient_quantity");
    let t = buy("235.2").expect(201);
    common::two_person_reply(
        &w.admin,
        &format!("/v1/trades/{}/payment", t.body["id"]),
        &key(),
        &json!({"payment_ref": "CIB-PAY-1"}),
    )
    .expect(200);
    assert_eq!(bucket_of(&w, w.b, "available"), d("235.2"));
    // The frozen 250 stay under the pledge: the waterfall waits for them.
    let p = w
        .banker1
        .get(&format!("/v1/pledges/{pid}"))
        .expect(200)
        .body;
    assert_eq!(
        (dec(&p["quantity"]), p["status"].clone()),
        (d("250"), json!("enforcing"))
    );
    assert_eq!(all_buckets(&w), (d("0"), d("0"), d("250"), d("0"), d("0")));
    assert_all_conserved(&w.admin);
}

/// Courts: a freeze of all A holds while the pledgee offers all of it in a disposal listing takes
/// the whole listing: it is withdrawn (nothing of it can be bought), all 485.2 return under the
/// pledge and are frozen there. The pledgee cannot list them again while the freeze stands; lifting
/// it offers nothing again, and the pledgee lists anew through the usual two-person flow.
fn a_freeze_withdraws_a_disposal_listing(backend: Backend) {
    let w = rights(backend);
    let pid = enforced_pledge(&w);
    let l = disposal_listing(&w, pid, "485.2").expect(200);
    let listing = l.body["id"].as_i64().unwrap();
    let f = freeze(&w, "485.2").expect(201);
    assert_eq!(f.body["pledged_quantity"], "485.2");
    let v = w
        .admin
        .get(&format!("/v1/listings/{listing}"))
        .expect(200)
        .body;
    assert_eq!(
        (v["status"].clone(), dec(&v["remaining"])),
        (json!("withdrawn"), d("0"))
    );
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("485.2"), d("0"), d("0"))
    );
    let p = w
        .banker1
        .get(&format!("/v1/pledges/{pid}"))
        .expect(200)
        .body;
    assert_eq!(dec(&p["quantity"]), d("485.2"));
    let e = entries_of(&w, pid, "disposal_frozen");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["details"]["offer_ended"], true);
    assert_eq!(e[0]["details"]["reason"], "judicial_freeze");
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let r = ent_b
        .post_key(
            &format!("/v1/listings/{listing}/purchases"),
            &key(),
            &json!({"quantity": "1"}),
        )
        .expect(409);
    assert_eq!(r.code(), "listing_closed");
    // Frozen under the pledge: no new disposal while the freeze stands.
    assert!(disposal_listing(&w, pid, "10").status.is_client_error());
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("485.2"), d("0"), d("0"))
    );
    assert_all_conserved(&w.admin);
    common::two_person_reply(
        &w.admin,
        &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);
    // Nothing is offered again by the lift; the pledge still holds all of it.
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("485.2"), d("0"), d("0"))
    );
    let v = w
        .admin
        .get(&format!("/v1/listings/{listing}"))
        .expect(200)
        .body;
    assert_eq!(v["status"], "withdrawn");
    disposal_listing(&w, pid, "100").expect(200);
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("100"), d("385.2"), d("0"), d("0"))
    );
    assert_all_conserved(&w.admin);
}

/// Courts: a freeze that needs all of a disposal auction's quantity cancels the auction although
/// bidders bid: its bids are void, nothing is awarded at the close, no trade opens, and the quantity
/// returns under the pledge, frozen. (The bidders' deposits are released; the registry records it
/// in the audit trail, as it holds no money.)
fn a_freeze_cancels_a_disposal_auction_with_bids(backend: Backend) {
    let w = rights(backend);
    w.admin.set_clock("2026-12-01T02:00:00Z");
    let pid = enforced_pledge(&w);
    let a = common::two_person_reply(
        &w.admin,
        "/v1/auctions",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": pid, "quantity": "485.2", "reserve_price": "1419",
            "increment": "10", "min_bid": "10", "max_bid": "485.2", "years": 4,
            "opens_at": "2026-12-01T02:00:00Z", "closes_at": "2026-12-01T04:00:00Z",
            "sealed": false, "deposit": "50000"}),
    )
    .expect(200);
    let auction = a.body["id"].as_i64().unwrap();
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let c = party(&w.admin, "enterprise", 5);
    let ent_c = user(&w.admin, "enterprise", Some(c), "ent-c");
    for p in [w.b, c] {
        w.admin
            .post(
                &format!("/v1/auctions/{auction}/bidders"),
                &json!({"party_id": p, "deposit": "50000", "deposit_ref": format!("DEP-{p}")}),
            )
            .expect(201);
    }
    let bid = |ent: &Api, price: &str, q: &str| {
        ent.post(
            &format!("/v1/auctions/{auction}/bids"),
            &json!({"unit_price": price, "quantity": q}),
        )
    };
    w.admin.set_clock("2026-12-01T02:10:00Z");
    bid(&ent_b, "1419", "200").expect(201);
    bid(&ent_c, "1429", "300").expect(201);
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("485.2"), d("0"), d("0"), d("0"))
    );
    let f = freeze(&w, "485.2").expect(201);
    assert_eq!(f.body["pledged_quantity"], "485.2");
    let v = w
        .admin
        .get(&format!("/v1/auctions/{auction}"))
        .expect(200)
        .body;
    assert_eq!(v["phase"], "cancelled");
    let bids = w
        .admin
        .get(&format!("/v1/auctions/{auction}/bids"))
        .expect(200)
        .body;
    let statuses: Vec<&str> = bids
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["cancelled", "cancelled"]);
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("485.2"), d("0"), d("0"))
    );
    let e = entries_of(&w, pid, "disposal_frozen");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["details"]["offer"], format!("auction:{auction}"));
    assert_eq!(e[0]["details"]["offer_ended"], true);
    assert_eq!(e[0]["details"]["reason"], "judicial_freeze");
    // No more bids, and the close awards nothing.
    assert_eq!(
        bid(&ent_b, "1439", "200").expect(409).code(),
        "auction_closed"
    );
    w.admin.set_clock("2026-12-01T04:00:00Z");
    w.admin
        .post(&format!("/v1/auctions/{auction}/close"), &json!({}))
        .expect(200);
    let trades = w
        .admin
        .get(&format!("/v1/trades?auction_id={auction}"))
        .expect(200)
        .body["items"]
        .clone();
    assert_eq!(trades.as_array().unwrap().len(), 0);
    assert_eq!(
        w.admin
            .get(&format!("/v1/auctions/{auction}"))
            .expect(200)
            .body["phase"],
        "cancelled"
    );
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("485.2"), d("0"), d("0"))
    );
    assert_eq!(bucket_of(&w, w.b, "available"), d("0"));
    assert_all_conserved(&w.admin);
}

/// Courts: a freeze that needs only part of a disposal auction's quantity shrinks it and leaves it
/// running: the bids stand, and the close awards no more than the auction still offers.
fn a_freeze_shrinks_a_disposal_auction(backend: Backend) {
    let w = rights(backend);
    w.admin.set_clock("2026-12-01T02:00:00Z");
    let pid = enforced_pledge(&w);
    let a = common::two_person_reply(
        &w.admin,
        "/v1/auctions",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": pid, "quantity": "300", "reserve_price": "1419",
            "increment": "10", "min_bid": "10", "max_bid": "300", "years": 4,
            "opens_at": "2026-12-01T02:00:00Z", "closes_at": "2026-12-01T04:00:00Z",
            "sealed": false, "deposit": "0"}),
    )
    .expect(200);
    let auction = a.body["id"].as_i64().unwrap();
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let c = party(&w.admin, "enterprise", 5);
    let ent_c = user(&w.admin, "enterprise", Some(c), "ent-c");
    for p in [w.b, c] {
        w.admin
            .post(
                &format!("/v1/auctions/{auction}/bidders"),
                &json!({"party_id": p, "deposit": "0", "deposit_ref": "none"}),
            )
            .expect(201);
    }
    w.admin.set_clock("2026-12-01T02:10:00Z");
    ent_b
        .post(
            &format!("/v1/auctions/{auction}/bids"),
            &json!({"unit_price": "1429", "quantity": "200"}),
        )
        .expect(201);
    ent_c
        .post(
            &format!("/v1/auctions/{auction}/bids"),
            &json!({"unit_price": "1419", "quantity": "200"}),
        )
        .expect(201);
    let f = freeze(&w, "250").expect(201);
    assert_eq!(f.body["pledged_quantity"], "250");
    let v = w
        .admin
        .get(&format!("/v1/auctions/{auction}"))
        .expect(200)
        .body;
    assert_eq!(
        (v["phase"].clone(), dec(&v["quantity"])),
        (json!("open"), d("235.2"))
    );
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("235.2"), d("250"), d("0"), d("0"))
    );
    let e = entries_of(&w, pid, "disposal_frozen");
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["details"]["offer_ended"], false);
    assert_eq!(dec(&e[0]["details"]["quantity"]), d("64.8"));
    assert_all_conserved(&w.admin);
    w.admin.set_clock("2026-12-01T04:00:00Z");
    let v = w
        .admin
        .post(&format!("/v1/auctions/{auction}/close"), &json!({}))
        .expect(200)
        .body;
    assert_eq!(
        (v["phase"].clone(), dec(&v["allocated"])),
        (json!("awarded"), d("235.2"))
    );
    let trades = w
        .admin
        .get(&format!("/v1/trades?auction_id={auction}"))
        .expect(200)
        .body["items"]
        .clone();
    let mut got: Vec<Decimal> = trades
        .as_array()
        .unwrap()
        .iter()
        .map(|t| dec(&t["quantity"]))
        .collect();
    got.sort();
    assert_eq!(got, [d("35.2"), d("200")]);
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("250"), d("0"), d("235.2"))
    );
    let p = w
        .banker1
        .get(&format!("/v1/pledges/{pid}"))
        .expect(200)
        .body;
    assert_eq!(dec(&p["quantity"]), d("250"));
    assert_all_conserved(&w.admin);
}

/// Courts: B bought 100 of the pledgee's disposal listing of 300 and has not paid; a freeze of all
/// A holds takes the listing's 200 back under the pledge and holds the 100 in the trade (once a 409
/// `freeze_exceeds_holding`). The payment is refused (409 `quantity_frozen`) and nothing moves: the
/// trade awaits payment, B receives nothing, the pledge's proceeds stay empty.
fn a_disposal_sale_of_frozen_quantity_does_not_settle(backend: Backend) {
    let w = rights(backend);
    let pid = enforced_pledge(&w);
    let l = disposal_listing(&w, pid, "300").expect(200);
    let listing = l.body["id"].as_i64().unwrap();
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let t = ent_b
        .post_key(
            &format!("/v1/listings/{listing}/purchases"),
            &key(),
            &json!({"quantity": "100"}),
        )
        .expect(201);
    let trade = t.body["id"].as_i64().unwrap();
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("200"), d("185.2"), d("0"), d("100"))
    );
    let f = freeze(&w, "485.2").expect(201);
    assert_eq!(
        (
            f.body["pledged_quantity"].as_str(),
            f.body["pending_quantity"].as_str()
        ),
        (Some("385.2"), Some("100"))
    );
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("385.2"), d("0"), d("100"))
    );
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/trades/{trade}/payment"),
        &key(),
        &json!({"payment_ref": "CIB-PAY-1"}),
    )
    .expect(409);
    assert_eq!(r.code(), "quantity_frozen");
    assert_eq!(
        w.admin.get(&format!("/v1/trades/{trade}")).expect(200).body["status"],
        "awaiting_payment"
    );
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("385.2"), d("0"), d("100"))
    );
    assert_eq!(bucket_of(&w, w.b, "available"), d("0"));
    let p = w
        .banker1
        .get(&format!("/v1/pledges/{pid}"))
        .expect(200)
        .body;
    assert_eq!(dec(&p["quantity"]), d("385.2"));
    assert!(entries_of(&w, pid, "disposal_sale").is_empty());
    assert_all_conserved(&w.admin);
}

/// #4: a pledge that lapses under a freeze does not free the quantity: the court's hold outlives
/// the pledge, and the lifting order returns it.
fn a_lapse_under_a_freeze_stays_frozen(backend: Backend) {
    let w = rights(backend);
    let (id, _, _) = pledge(&w, "100", "2027-01-31");
    freeze(&w, "385.2").expect(201);
    let f = freeze(&w, "100").expect(201);
    assert_eq!(f.body["pledged_quantity"], "100");
    assert_eq!(buckets(&w), (d("0"), d("100"), d("385.2")));
    w.admin.set_clock("2027-02-01T00:00:00Z");
    let s = w.admin.post("/v1/collateral/sweep", &json!({})).expect(200);
    assert_eq!(s.body["lapsed"], json!([id]));
    assert_eq!(buckets(&w), (d("0"), d("0"), d("485.2")));
    assert_all_conserved(&w.admin);
    common::two_person_reply(
        &w.admin,
        &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);
    assert_eq!(buckets(&w), (d("100"), d("0"), d("385.2")));
    assert_all_conserved(&w.admin);
}

/// Applies a pledge of `quantity` to bank 2 and has it registered; returns (id, amendment code).
fn pledge_bank2(w: &Rights, quantity: &str) -> (i64, String) {
    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": quantity, "lender_party_id": w.bank2_id()}),
        )
        .expect(201);
    let id = p.body["id"].as_i64().unwrap();
    let r = w
        .banker2
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &json!({"secured_amount": "500000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "NPRC-2026-0311", "appraisal_value": "1500000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    (id, r.body["amendment_code"].as_str().unwrap().to_string())
}

/// The freeze as the operator lists it.
fn freeze_view(w: &Rights, id: &Value) -> Value {
    w.admin
        .get(&format!("/v1/judicial-freezes?party_id={}", w.a))
        .expect(200)
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| &f["id"] == id)
        .cloned()
        .unwrap()
}

/// #4 (courts come first): a freeze rests on A's pledged quantity (pledges to two banks, nothing
/// available). The first bank's release ends its claim, not the court's: the released quantity stays
/// frozen (once it became available and A transferred it away, and the freeze then blocked the other
/// bank's release of its own pledge with 409 `frozen_by_court`). The freeze no longer rests on pledged
/// quantity, so the second bank's release is free; the lift returns the frozen quantity.
fn a_release_under_a_freeze_stays_frozen(backend: Backend) {
    let w = rights(backend);
    let (p1, _, code1) = pledge(&w, "242.6", "2028-12-31");
    let (p2, code2) = pledge_bank2(&w, "242.6");
    assert_eq!(buckets(&w), (d("0"), d("485.2"), d("0")));
    let f = freeze(&w, "100").expect(201);
    assert_eq!(f.body["pledged_quantity"], "100");
    // Bank 1 releases 50, then the rest of its pledge.
    w.banker1
        .post_key(
            &format!("/v1/pledges/{p1}/release"),
            &key(),
            &json!({"amendment_code": code1, "quantity": "50"}),
        )
        .expect(200);
    assert_eq!(buckets(&w), (d("0"), d("435.2"), d("50")));
    assert_eq!(freeze_view(&w, &f.body["id"])["pledged_quantity"], "50");
    assert_all_conserved(&w.admin);
    w.banker1
        .post_key(
            &format!("/v1/pledges/{p1}/release"),
            &key(),
            &json!({"amendment_code": code1}),
        )
        .expect(200);
    assert_eq!(buckets(&w), (d("142.6"), d("242.6"), d("100")));
    assert_eq!(freeze_view(&w, &f.body["id"])["pledged_quantity"], "0");
    assert_all_conserved(&w.admin);
    // The frozen 100 do not leave A: only what is available moves.
    let r = w.ent_a.post_key(
        "/v1/transfers",
        &key(),
        &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "142.7"}),
    );
    assert!(r.status.is_client_error(), "{:?}", r.body);
    w.ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "142.6"}),
        )
        .expect(201);
    // Bank 2's pledge carries no freeze any more: its release goes through.
    w.banker2
        .post_key(
            &format!("/v1/pledges/{p2}/release"),
            &key(),
            &json!({"amendment_code": code2}),
        )
        .expect(200);
    let h = holding(&w.admin, w.a, w.em);
    assert_eq!(
        (dec(&h["available"]), dec(&h["pledged"]), dec(&h["frozen"])),
        (d("242.6"), d("0"), d("100"))
    );
    assert_all_conserved(&w.admin);
    common::two_person_reply(
        &w.admin,
        &format!("/v1/judicial-freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);
    assert_eq!(dec(&holding(&w.admin, w.a, w.em)["available"]), d("342.6"));
    assert_all_conserved(&w.admin);
}

/// #4 (courts come first): a freeze reaches quantity on the holder's own open auction, after its
/// own listings (no buyer is bound to either yet; an auction's admitted bidders have paid deposits,
/// so it is disturbed only when the listings do not cover the order). A lists 50 and auctions 100
/// with bids (available 335.2): a freeze of 400 (once 409 `freeze_exceeds_holding`, and the auction
/// then sold the quantity past the court) withdraws the listing and shrinks the auction to 85.2; a
/// freeze of the rest cancels it, its bids void, and its close awards nothing.
fn a_freeze_reaches_the_holders_own_auction(backend: Backend) {
    let w = rights(backend);
    w.admin.set_clock("2026-12-01T02:00:00Z");
    let listing = w
        .ent_a
        .post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": w.em, "quantity": "50", "unit_price": "6300", "years": 4, "min_lot": "1",
                "ends_at": "2026-12-20T08:00:00Z"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let a = common::two_person_reply(
        &w.admin,
        "/v1/auctions",
        &key(),
        &json!({"lot_id": w.em, "seller_party_id": w.a, "quantity": "100", "reserve_price": "1419",
            "increment": "10", "min_bid": "10", "max_bid": "100", "years": 4,
            "opens_at": "2026-12-01T02:00:00Z", "closes_at": "2026-12-01T04:00:00Z",
            "sealed": false, "deposit": "50000"}),
    );
    assert!(matches!(a.status.as_u16(), 200 | 201), "{:?}", a.body);
    let auction = a.body["id"].as_i64().unwrap();
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    let c = party(&w.admin, "enterprise", 5);
    let ent_c = user(&w.admin, "enterprise", Some(c), "ent-c");
    for p in [w.b, c] {
        w.admin
            .post(
                &format!("/v1/auctions/{auction}/bidders"),
                &json!({"party_id": p, "deposit": "50000", "deposit_ref": format!("DEP-{p}")}),
            )
            .expect(201);
    }
    let bid = |ent: &Api, price: &str, q: &str| {
        ent.post(
            &format!("/v1/auctions/{auction}/bids"),
            &json!({"unit_price": price, "quantity": q}),
        )
    };
    w.admin.set_clock("2026-12-01T02:10:00Z");
    bid(&ent_b, "1419", "60").expect(201);
    bid(&ent_c, "1429", "40").expect(201);
    assert_eq!(
        all_buckets(&w),
        (d("335.2"), d("150"), d("0"), d("0"), d("0"))
    );
    freeze(&w, "400").expect(201);
    let l = w
        .admin
        .get(&format!("/v1/listings/{listing}"))
        .expect(200)
        .body;
    assert_eq!(l["status"], "withdrawn");
    let v = w
        .admin
        .get(&format!("/v1/auctions/{auction}"))
        .expect(200)
        .body;
    assert_eq!(
        (v["phase"].clone(), dec(&v["quantity"])),
        (json!("open"), d("85.2"))
    );
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("85.2"), d("0"), d("400"), d("0"))
    );
    assert_all_conserved(&w.admin);
    freeze(&w, "85.2").expect(201);
    let v = w
        .admin
        .get(&format!("/v1/auctions/{auction}"))
        .expect(200)
        .body;
    assert_eq!(v["phase"], "cancelled");
    let bids = w
        .admin
        .get(&format!("/v1/auctions/{auction}/bids"))
        .expect(200)
        .body;
    assert!(bids
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["status"] == "cancelled"));
    assert_eq!(
        all_buckets(&w),
        (d("0"), d("0"), d("0"), d("485.2"), d("0"))
    );
    assert_eq!(
        bid(&ent_b, "1439", "60").expect(409).code(),
        "auction_closed"
    );
    w.admin.set_clock("2026-12-01T04:00:00Z");
    w.admin
        .post(&format!("/v1/auctions/{auction}/close"), &json!({}))
        .expect(200);
    let trades = w
        .admin
        .get(&format!("/v1/trades?auction_id={auction}"))
        .expect(200)
        .body["items"]
        .clone();
    assert_eq!(trades.as_array().unwrap().len(), 0);
    assert_eq!(bucket_of(&w, w.b, "available"), d("0"));
    assert_eq!(bucket_of(&w, c, "available"), d("0"));
    assert_eq!(freeze(&w, "1").expect(409).code(), "freeze_exceeds_holding");
    assert_all_conserved(&w.admin);
}

/// Applies and registers a pledge of `quantity` to `lender` (as `banker`); returns the registration no.
fn pledge_to(w: &Rights, lender: i64, banker: &Api, quantity: &str) -> String {
    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": quantity, "lender_party_id": lender}),
        )
        .expect(201);
    let id = p.body["id"].as_i64().unwrap();
    banker
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &json!({"secured_amount": "100000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "NP-2026-0901", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200)
        .body["registration_no"]
        .as_str()
        .unwrap()
        .to_string()
}

fn object(api: &Api, reg: &str, reason: &str) -> common::Reply {
    api.post(
        &format!("/v1/encumbrances/{reg}/objections"),
        &json!({ "reason": reason }),
    )
}

fn entry_kinds(v: &Value) -> Vec<String> {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// #11 (R8): the grantor and another creditor may object to a registration; the objection is an
/// entry of its own, shows on the notice, the search and the certificate until withdrawn,
/// resolved or lapsed (30 days, as 中登网's).
fn objections_show_until_withdrawn_resolved_or_lapsed(backend: Backend) {
    let w = rights(backend);
    w.admin.set_clock("2026-12-01T00:00:00Z");
    let (_, reg, _) = pledge(&w, "100", "2028-12-31");
    // No standing: a bank with nothing on this grantor, an enterprise not party to it.
    object(&w.banker2, &reg, "x").expect(404);
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    object(&ent_b, &reg, "x").expect(404);

    // The grantor objects: it shows on the notice, in the search and on the certificate.
    let o = object(&w.ent_a, &reg, "主债务已清偿，质权人未办理注销登记")
        .expect(201)
        .body;
    assert_eq!(
        (o["standing"].as_str(), o["status"].as_str()),
        (Some("grantor"), Some("active"))
    );
    // 30 days after filing (the test clock runs on from where it was set).
    assert!(o["lapses_at"]
        .as_str()
        .unwrap()
        .starts_with("2026-12-31T00:00:0"));
    let v = w
        .banker2
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    assert_eq!(
        v["notice"]["objections"][0]["objection_no"],
        o["objection_no"]
    );
    assert!(entry_kinds(&v).contains(&"objection".to_string()));
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(1)))
        .expect(200)
        .body;
    assert_eq!(s["encumbrances"][0]["objections"][0]["standing"], "grantor");
    let cert = w
        .banker2
        .post("/v1/search-certificates", &json!({"lot_id": w.em}))
        .expect(201)
        .body;
    assert_eq!(
        cert["statement"]["encumbrances"][0]["objections"][0]["objection_no"],
        o["objection_no"]
    );

    // Another creditor of the same grantor has standing too.
    pledge_to(&w, w.bank2_id(), &w.banker2, "50");
    let c = object(&w.banker2, &reg, "同一质押物上的在先质权登记范围有误")
        .expect(201)
        .body;
    assert_eq!(c["standing"], "creditor");

    // The grantor withdraws its own; the creditor's lapses after 30 days; a third is resolved.
    w.ent_a
        .post(&format!("/v1/objections/{}/withdraw", o["id"]), &json!({}))
        .expect(200);
    w.banker2
        .post(&format!("/v1/objections/{}/withdraw", o["id"]), &json!({}))
        .expect(404);
    let v = w
        .banker1
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    assert_eq!(v["notice"]["objections"].as_array().unwrap().len(), 1);
    w.admin.set_clock("2027-01-01T00:00:00Z");
    let sweep = w
        .admin
        .post("/v1/collateral/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(sweep["objections_lapsed"], json!([c["id"]]));
    let v = w
        .banker1
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    assert!(v["notice"]["objections"].is_null(), "{v}");
    let t = object(&w.ent_a, &reg, "登记的担保范围有误")
        .expect(201)
        .body;
    w.admin
        .post(
            &format!("/v1/objections/{}/resolve", t["id"]),
            &json!({"note": "质权人已办理变更登记"}),
        )
        .expect(200);
    let v = w
        .banker1
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    let kinds = entry_kinds(&v);
    for k in [
        "objection",
        "objection_withdrawn",
        "objection_lapsed",
        "objection_resolved",
    ] {
        assert!(kinds.contains(&k.to_string()), "{kinds:?}");
    }
    assert!(v["notice"]["objections"].is_null());
    assert_all_conserved(&w.admin);
}

// ---------------------------------------------------------------------------------------------
// Forest rights
// ---------------------------------------------------------------------------------------------

const FARMER_ID: &str = "350721198507154516";

struct Forest {
    _srv: Server,
    admin: Api,
    checker: Api,
    farmer: i64,
    farmer_api: Api,
    bank1: i64,
    banker1: Api,
    bank2: i64,
    banker2: Api,
    buyer: i64,
}

fn forest(b: Backend) -> Forest {
    let srv = Server::start(b);
    let admin = srv.admin();
    // Mortgages are completed on 2027-01-01; official registrations follow (see register_officially).
    admin.set_clock("2027-01-01T00:00:00Z");
    let checker = user(&admin, "operator", None, "checker");
    let f = admin
        .post("/v1/parties", &json!({"kind": "individual", "name_zh": "林木生", "id_number": FARMER_ID, "region_code": "350721"}))
        .expect(201);
    let farmer = f.body["id"].as_i64().unwrap();
    let farmer_api = user(&admin, "enterprise", Some(farmer), "farmer");
    let bank1 = party(&admin, "bank", 1);
    let bank2 = party(&admin, "bank", 2);
    let buyer = party(&admin, "enterprise", 5);
    let banker1 = user(&admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&admin, "bank", Some(bank2), "banker-2");
    Forest {
        _srv: srv,
        admin,
        checker,
        farmer,
        farmer_api,
        bank1,
        banker1,
        bank2,
        banker2,
        buyer,
    }
}

fn parcel(w: &Forest, n: u32) -> i64 {
    let holder = w.farmer;
    let body = json!({"certificate_no": format!("闽(2026)顺昌县不动产权第{n:07}号"), "holder_party_id": holder,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": format!("{n:02}"), "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household"});
    common::two_person(&w.admin, "/v1/forest-rights", &key(), &body)["id"]
        .as_i64()
        .unwrap()
}

fn terms(lender: i64, secured: &str, appraisal: &str) -> Value {
    json!({"secured_amount": secured, "loan_start": "2027-01-01", "loan_end": "2029-11-30",
        "appraisal": {"value": appraisal, "appraiser": "南平林业资产评估有限公司", "kind": "professional", "date": "2026-11-20", "report_no": "南林评〔2026〕88号"},
        "insurance": {"policy_no": "PICC-NP-2026-7781", "insurer": "人保财险南平分公司", "insured_amount": appraisal, "beneficiary_party_id": lender},
        "transfer_ban": false})
}

/// Applies (as the farmer) and completes (as the lender); returns (id, registration no).
fn mortgage(
    w: &Forest,
    banker: &Api,
    lender: i64,
    parcels: &[i64],
    secured: &str,
) -> (i64, String) {
    let m = w
        .farmer_api
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": parcels, "lender_party_id": lender}),
        )
        .expect(201);
    let id = m.body["id"].as_i64().unwrap();
    let r = banker
        .post(
            &format!("/v1/forest-mortgages/{id}/complete"),
            &terms(lender, secured, "2000000.00"),
        )
        .expect(200);
    (id, r.body["registration_no"].as_str().unwrap().to_string())
}

/// The official registration as the lender enters it; then, where the registry asks for it, an
/// operator's confirmation.
fn register_officially(w: &Forest, banker: &Api, id: i64, at: &str) -> Value {
    // The official time lies after completion and before "now".
    w.admin.set_clock("2027-01-15T00:00:00Z");
    let r = banker
        .post(&format!("/v1/forest-mortgages/{id}/official-registration"), &json!({"certificate_no": format!("闽(2027)顺昌县不动产证明第{id:07}号"), "registered_at": at}))
        .expect(200)
        .body;
    if r["status"] == "registered" {
        return r;
    }
    w.checker
        .post(
            &format!("/v1/forest-mortgages/{id}/official-registration/confirm"),
            &json!({}),
        )
        .expect(200)
        .body
}

fn enforce(banker: &Api, id: i64, principal: &str) {
    banker
        .post_key(
            &format!("/v1/forest-mortgages/{id}/enforce"),
            &key(),
            &json!({"principal": principal, "interest": "0", "costs": "0"}),
        )
        .expect(200);
}

/// #4: a frozen parcel is not disposed of (once 200), and the mortgage's verification shows the
/// freeze (once always empty).
fn a_frozen_parcel_is_not_disposed_of(b: Backend) {
    let w = forest(b);
    let p = parcel(&w, 1);
    let (m, reg) = mortgage(&w, &w.banker1, w.bank1, &[p], "100000.00");
    register_officially(&w, &w.banker1, m, "2027-01-10T10:15:00Z");
    enforce(&w.banker1, m, "100000.00");
    let f = w.admin.post_key(&format!("/v1/forest-rights/{p}/freezes"), &key(), &json!({"court": "顺昌县人民法院", "case_no": "(2027)闽0721执保8号", "document_ref": "协助执行通知书"})).expect(201);
    let v = w
        .banker2
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    assert_eq!(v["freezes"][0]["court"], "顺昌县人民法院");
    assert_eq!(v["freezes"][0]["kind"], "judicial_freeze");
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{m}/dispose"),
        &key(),
        &json!({"proceeds": "300000.00", "buyer_party_id": w.buyer}),
    )
    .expect(409);
    assert_eq!(r.code(), "parcel_frozen");
    let mv = w
        .banker1
        .get(&format!("/v1/forest-mortgages/{m}"))
        .expect(200)
        .body;
    assert_eq!(mv["status"], "enforcing");
    common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-rights/{p}/freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);
    common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{m}/dispose"),
        &key(),
        &json!({"proceeds": "300000.00", "buyer_party_id": w.buyer}),
    )
    .expect(200);
    let _ = (w.bank2, &w.banker2);
}

/// #5: M1 ranks first on parcel B only; M2 covers A and B. A sells for 400k and B for 100k: M1 is
/// paid out of B's 100k alone (the pooled waterfall paid it 200k), M2 its 300k out of A, and the
/// farmer A's rest.
fn each_parcel_pays_its_own_mortgages(b: Backend) {
    let w = forest(b);
    let (pa, pb) = (parcel(&w, 1), parcel(&w, 2));
    let (m1, _) = mortgage(&w, &w.banker1, w.bank1, &[pb], "200000.00");
    let (m2, _) = mortgage(&w, &w.banker2, w.bank2, &[pa, pb], "300000.00");
    register_officially(&w, &w.banker1, m1, "2027-01-05T09:00:00Z");
    register_officially(&w, &w.banker2, m2, "2027-01-06T09:00:00Z");
    enforce(&w.banker2, m2, "300000.00");
    let body = json!({"proceeds": "500000.00", "buyer_party_id": w.buyer,
        "parcel_proceeds": [{"parcel_id": pa, "proceeds": "400000.00"}, {"parcel_id": pb, "proceeds": "100000.00"}]});
    // Several parcels: the sale states each parcel's proceeds, adding up to the whole.
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{m2}/dispose"),
        &key(),
        &json!({"proceeds": "500000.00", "buyer_party_id": w.buyer}),
    )
    .expect(422);
    assert_eq!(r.code(), "parcel_proceeds_required");
    let mut wrong = body.clone();
    wrong["parcel_proceeds"][1]["proceeds"] = json!("100000.01");
    common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{m2}/dispose"),
        &key(),
        &wrong,
    )
    .expect(422);
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{m2}/dispose"),
        &key(),
        &body,
    )
    .expect(200);
    assert_eq!(r.body["paid_to_lender"], "300000.00");
    assert_eq!(r.body["paid_to_mortgagor"], "100000.00");
    let v1 = w
        .banker1
        .get(&format!("/v1/forest-mortgages/{m1}"))
        .expect(200)
        .body;
    assert_eq!(
        (v1["status"].as_str(), v1["paid_to_lender"].as_str()),
        (Some("disposed"), Some("100000.00"))
    );
}

fn enter_official(banker: &Api, id: i64, n: u32, at: &str) -> common::Reply {
    banker.post(
        &format!("/v1/forest-mortgages/{id}/official-registration"),
        &json!({"certificate_no": format!("闽(2027)顺昌县不动产证明第{n:07}号"), "registered_at": at}),
    )
}

/// #6: the official registration is checked (unique 不动产登记证明号, a time neither in the future
/// nor before completion), records who entered it, and ranks only once an operator other than that
/// person confirms it. A second bank that enters an earlier time no longer takes rank 1.
fn official_registration_ranks_once_confirmed(b: Backend) {
    let w = forest(b);
    let p = parcel(&w, 1);
    let (m1, _) = mortgage(&w, &w.banker1, w.bank1, &[p], "100000.00");
    let (m2, _) = mortgage(&w, &w.banker2, w.bank2, &[p], "100000.00");
    w.admin.set_clock("2027-01-15T00:00:00Z");

    // Refused: a time in the future, a time before the mortgage was completed.
    let r = enter_official(&w.banker2, m2, 2, "2027-02-15T09:00:00Z").expect(422);
    assert_eq!(r.code(), "official_time_in_future");
    let r = enter_official(&w.banker2, m2, 2, "2026-12-31T09:00:00Z").expect(422);
    assert_eq!(r.code(), "official_time_before_completion");

    // Entered by an operator: pending confirmation, no rank; the same operator cannot confirm.
    let e = enter_official(&w.admin, m1, 1, "2027-01-10T09:00:00Z")
        .expect(200)
        .body;
    assert_eq!(e["status"], "pending_confirmation");
    assert_eq!(e["official_entered_by"], "operator:op-admin");
    assert!(e["parcels"][0]["rank"].is_null());
    // One certificate number registers one mortgage.
    let r = enter_official(&w.banker2, m2, 1, "2027-01-12T09:00:00Z").expect(409);
    assert_eq!(r.code(), "official_certificate_taken");
    // Nor does it when typed without the official zero padding (第1号 is 第0000001号).
    let r = w
        .banker2
        .post(
            &format!("/v1/forest-mortgages/{m2}/official-registration"),
            &json!({"certificate_no": "闽(2027)顺昌县不动产证明第1号", "registered_at": "2027-01-12T09:00:00Z"}),
        )
        .expect(409);
    assert_eq!(r.code(), "official_certificate_taken");
    let confirm = |api: &Api, id: i64| {
        api.post(
            &format!("/v1/forest-mortgages/{id}/official-registration/confirm"),
            &json!({}),
        )
    };
    assert_eq!(confirm(&w.admin, m1).expect(403).code(), "maker_checker");
    // Nor can another account of the same person (maker-checker compares persons).
    let twin = common::new_operator(
        &w.admin,
        "op-admin-twin",
        &format!("P-{}", common::OPERATOR.to_uppercase()),
    );
    assert_eq!(confirm(&twin, m1).expect(403).code(), "maker_checker");

    // The second bank enters an earlier official time: it waits, unranked, for an operator.
    let e = enter_official(&w.banker2, m2, 2, "2027-01-05T09:00:00Z")
        .expect(200)
        .body;
    assert_eq!(e["status"], "pending_confirmation");
    confirm(&w.banker2, m2).expect(403);
    let s = w
        .banker1
        .get(&format!("/v1/encumbrances?parcel_id={p}"))
        .expect(200)
        .body;
    for n in s["encumbrances"].as_array().unwrap() {
        assert_eq!(n["status"], "pending_confirmation");
        assert!(n["rank"].is_null(), "{n}");
    }
    // The checker confirms the first; it ranks 1.
    let c = confirm(&w.checker, m1).expect(200).body;
    assert_eq!(c["status"], "registered");
    assert_eq!(c["official_confirmed_by"], "operator:checker");
    assert_eq!(c["parcels"][0]["rank"], 1);
    // Checked against the authority, the second bank's time was wrong: rejected, entered again,
    // confirmed, and it ranks 2.
    let r = w
        .checker
        .post(
            &format!("/v1/forest-mortgages/{m2}/official-registration/reject"),
            &json!({"note": "不动产登记簿记载登簿时间为 2027-01-12"}),
        )
        .expect(200)
        .body;
    assert_eq!(r["status"], "pending_official_registration");
    enter_official(&w.banker2, m2, 2, "2027-01-12T09:00:00Z").expect(200);
    let c = confirm(&w.checker, m2).expect(200).body;
    assert_eq!(c["parcels"][0]["rank"], 2);
    let kinds: Vec<&str> = c["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "applied",
            "completed",
            "official_registration_entered",
            "official_registration_rejected",
            "official_registration_entered",
            "registered"
        ]
    );
}

both_backends!(
    split_parts_of_a_pledge_pay_the_claim_once,
    objections_show_until_withdrawn_resolved_or_lapsed,
    official_registration_ranks_once_confirmed,
    each_parcel_pays_its_own_mortgages,
    a_freeze_reaches_pledged_quantity,
    a_court_transfer_takes_the_frozen_quantity,
    a_court_order_executes_only_its_own_freeze,
    a_freeze_reaches_listed_quantity,
    a_court_order_takes_pledged_frozen_quantity_and_the_pledge_follows,
    a_whole_pledge_follows_the_court_order,
    a_court_order_may_discharge_the_pledge,
    a_pledge_on_offer_waits_for_its_offer_to_end,
    a_freeze_holds_quantity_in_a_pending_transfer,
    a_held_transfer_settles_only_after_the_lift,
    a_freeze_holds_a_trade_awaiting_payment,
    a_lapse_under_a_freeze_stays_frozen,
    a_release_under_a_freeze_stays_frozen,
    a_freeze_reaches_the_holders_own_auction,
    a_frozen_parcel_is_not_disposed_of,
    a_freeze_shrinks_a_disposal_listing,
    a_freeze_withdraws_a_disposal_listing,
    a_freeze_cancels_a_disposal_auction_with_bids,
    a_freeze_shrinks_a_disposal_auction,
    a_disposal_sale_of_frozen_quantity_does_not_settle,
);
