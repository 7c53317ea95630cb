//! Defects a fresh review found in the trust work, each over HTTP on both backends:
//! every request that moves quantity, freezes, lifts or changes a holder needs an Idempotency-Key,
//! so a retry cannot do it twice.

mod common;

use common::ledger::{assert_all_conserved, available, issue, key, lot_request};
use common::{party, user, Api, Backend, Server};
use serde_json::{json, Value};

struct World {
    _srv: Server,
    admin: Api,
    checker: Api,
    a: i64,
    b: i64,
    em: i64,
}

fn world(backend: Backend) -> World {
    let srv = Server::start(backend);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let b = party(&admin, "enterprise", 2);
    let em = issue(
        &admin,
        &checker,
        lot_request("EM", a, "100", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    World {
        _srv: srv,
        admin,
        checker,
        a,
        b,
        em,
    }
}

fn parcel_body(holder: i64, n: u32) -> Value {
    json!({"certificate_no": format!("闽(2026)顺昌县不动产权第{n:07}号"), "holder_party_id": holder,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": format!("{n:02}"), "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household",
        "boundary": {"type": "Polygon", "coordinates": [[[117.80, 26.80], [117.81, 26.80], [117.81, 26.81], [117.80, 26.80]]]}})
}

// ---------------------------------------------------------------------------------------------
// 1. A retried forced transfer moves its quantity once
// ---------------------------------------------------------------------------------------------

fn forced_transfer_needs_a_key(backend: Backend) {
    let w = world(backend);
    let order = json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.b, "quantity": "10",
        "kind": "court_order", "document_ref": "(2026)闽0702执123号 执行裁定书"});
    // Without a key a retry cannot be told from a second order: refused, nothing proposed.
    let count = |api: &Api| {
        api.get("/v1/proposals?limit=200").expect(200).body["items"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    let before = count(&w.admin);
    let r = w.admin.post("/v1/transfers/forced", &order).expect(400);
    assert_eq!(r.code(), "idempotency_key_required");
    assert_eq!(
        count(&w.admin),
        before,
        "a refused request proposes nothing"
    );
    // The same request retried with its key is one proposal, approved once: 10 move, not 20.
    let k = key();
    let p1 = w
        .admin
        .post_key("/v1/transfers/forced", &k, &order)
        .expect(202);
    let p2 = w
        .admin
        .post_key("/v1/transfers/forced", &k, &order)
        .expect(202);
    assert_eq!(p1.body["id"], p2.body["id"]);
    w.checker
        .post_key(
            &format!("/v1/proposals/{}/approve", p1.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_eq!(available(&w.admin, w.b, w.em).to_string(), "10");
    assert_eq!(available(&w.admin, w.a, w.em).to_string(), "90");
    assert_all_conserved(&w.admin);
}

fn forest_court_orders_and_holder_changes_need_a_key(backend: Backend) {
    let w = world(backend);
    let p = common::two_person(&w.admin, "/v1/forest-rights", &key(), &parcel_body(w.a, 1))["id"]
        .as_i64()
        .unwrap();
    let order = json!({"court": "顺昌县人民法院", "case_no": "(2027)闽0721执保8号", "document_ref": "协助执行通知书"});
    let r = w
        .admin
        .post(&format!("/v1/forest-rights/{p}/freezes"), &order)
        .expect(400);
    assert_eq!(r.code(), "idempotency_key_required");
    let f = w
        .admin
        .post_key(&format!("/v1/forest-rights/{p}/freezes"), &key(), &order)
        .expect(201);
    let lift = json!({"document_ref": "解除查封裁定书"});
    let path = format!("/v1/forest-rights/{p}/freezes/{}/lift", f.body["id"]);
    let r = w.admin.post(&path, &lift).expect(400);
    assert_eq!(r.code(), "idempotency_key_required");
    common::two_person_reply(&w.admin, &path, &key(), &lift).expect(200);
    let change = json!({"new_holder_party_id": w.b, "document_ref": "流转合同 1"});
    let path = format!("/v1/forest-rights/{p}/holder-changes");
    let r = w.admin.post(&path, &change).expect(400);
    assert_eq!(r.code(), "idempotency_key_required");
    let v = w
        .admin
        .get(&format!("/v1/forest-rights/{p}"))
        .expect(200)
        .body;
    assert_eq!(
        v["holder"]["party_id"].as_i64(),
        Some(w.a),
        "refused: holder unchanged"
    );
    let r = common::two_person_reply(&w.admin, &path, &key(), &change).expect(200);
    assert_eq!(r.body["holder"]["party_id"].as_i64(), Some(w.b));
}

// ---------------------------------------------------------------------------------------------
// 2. Standing to object: a creditor of the same grantor or a ranked one on the same asset
// 3. One active objection per party per registration, with a bounded reason
// ---------------------------------------------------------------------------------------------

fn object(api: &Api, reg: &str, reason: &str) -> common::Reply {
    api.post(
        &format!("/v1/encumbrances/{reg}/objections"),
        &json!({ "reason": reason }),
    )
}

/// `pledgor` pledges `quantity` of the lot to `lender`; returns the registration number.
fn pledge(w: &World, pledgor: &Api, lender: i64, banker: &Api, quantity: &str) -> String {
    let p = pledgor
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": quantity, "lender_party_id": lender}),
        )
        .expect(201);
    banker
        .post_key(
            &format!("/v1/pledges/{}/accept", p.body["id"]),
            &key(),
            &json!({"secured_amount": "100000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "NP-2026-0901", "appraisal_value": "315000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200)
        .body["registration_no"]
        .as_str()
        .unwrap()
        .to_string()
}

fn pledge_on_another_holders_share_gives_no_standing(backend: Backend) {
    let w = world(backend);
    let bank1 = party(&w.admin, "bank", 3);
    let bank2 = party(&w.admin, "bank", 4);
    let banker1 = user(&w.admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&w.admin, "bank", Some(bank2), "banker-2");
    let ent_a = user(&w.admin, "enterprise", Some(w.a), "ent-a");
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    // A benchmark price in force makes a priced transfer at or above it a market purchase (R11).
    let bp = w
        .admin
        .post(
            "/v1/benchmark-prices",
            &json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350700", "unit_price": "6000",
                "valid_from": "2026-01-01", "document_ref": "闽发改价格〔2026〕7号"}),
        )
        .expect(202);
    w.checker
        .post_key(
            &format!("/v1/proposals/{}/approve", bp.body["id"]),
            &key(),
            &json!({}),
        )
        .expect(200);
    // B buys a share of A's lot at a price (a market acquisition, so pledgeable), and pledges it
    // to bank 2.
    let t = ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "30", "unit_price": "6300", "years": 2}),
        )
        .expect(201);
    let tid = t.body["id"].as_i64().unwrap();
    ent_b
        .post_key(&format!("/v1/transfers/{tid}/confirm"), &key(), &json!({}))
        .expect(200);
    w.checker
        .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
        .expect(200);
    let reg_a = pledge(&w, &ent_a, bank1, &banker1, "50");
    pledge(&w, &ent_b, bank2, &banker2, "20");
    // Bank 2 is B's creditor, not A's: the same lot is not the same holding.
    object(&banker2, &reg_a, "x").expect(404);
    // Once A pledges to bank 2 as well, bank 2 is A's creditor and has standing.
    pledge(&w, &ent_a, bank2, &banker2, "10");
    let o = object(&banker2, &reg_a, "在先质权登记范围有误").expect(201);
    assert_eq!(o.body["standing"], "creditor");
    assert_all_conserved(&w.admin);
}

fn terms(lender: i64) -> Value {
    json!({"secured_amount": "100000.00", "loan_start": "2026-12-01", "loan_end": "2029-11-30",
        "appraisal": {"value": "520000.00", "appraiser": "南平林业资产评估有限公司", "kind": "professional", "date": "2026-11-20", "report_no": "南林评〔2026〕88号"},
        "insurance": {"policy_no": "PICC-NP-2026-7781", "insurer": "人保财险南平分公司", "insured_amount": "520000.00", "beneficiary_party_id": lender},
        "transfer_ban": false})
}

/// Applies and completes a forest mortgage; returns (id, registration number).
fn mortgage(holder: &Api, banker: &Api, lender: i64, parcel: i64) -> (i64, String) {
    let m = holder
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": [parcel], "lender_party_id": lender}),
        )
        .expect(201);
    let id = m.body["id"].as_i64().unwrap();
    let r = banker
        .post(
            &format!("/v1/forest-mortgages/{id}/complete"),
            &terms(lender),
        )
        .expect(200);
    assert_eq!(r.body["status"], "pending_official_registration");
    (id, r.body["registration_no"].as_str().unwrap().to_string())
}

fn register_officially(
    admin: &Api,
    banker: &Api,
    id: i64,
    certificate_no: &str,
    at: &str,
) -> common::Reply {
    admin.set_clock(&format!("{}T23:59:59Z", &at[..10]));
    banker.post(
        &format!("/v1/forest-mortgages/{id}/official-registration"),
        &json!({"certificate_no": certificate_no, "registered_at": at}),
    )
}

fn unranked_mortgage_gives_no_standing(backend: Backend) {
    let w = world(backend);
    w.admin.set_clock("2026-11-25T00:00:00Z");
    let bank1 = party(&w.admin, "bank", 3);
    let bank2 = party(&w.admin, "bank", 4);
    let banker1 = user(&w.admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&w.admin, "bank", Some(bank2), "banker-2");
    let ent_a = user(&w.admin, "enterprise", Some(w.a), "ent-a");
    let p = common::two_person(&w.admin, "/v1/forest-rights", &key(), &parcel_body(w.a, 1))["id"]
        .as_i64()
        .unwrap();
    let (m1, reg1) = mortgage(&ent_a, &banker1, bank1, p);
    let (m2, _) = mortgage(&ent_a, &banker2, bank2, p);
    register_officially(
        &w.admin,
        &banker1,
        m1,
        "闽(2026)顺昌县不动产证明第0000001号",
        "2026-12-03T10:15:00Z",
    )
    .expect(200);
    w.admin
        .post(
            &format!("/v1/forest-mortgages/{m1}/official-registration/confirm"),
            &json!({}),
        )
        .expect(200);
    // Bank 2's mortgage is completed but not officially registered: it does not rank, no standing.
    object(&banker2, &reg1, "x").expect(404);
    // Entered but not yet confirmed by an operator: still no rank, still no standing.
    register_officially(
        &w.admin,
        &banker2,
        m2,
        "闽(2026)顺昌县不动产证明第0000002号",
        "2026-12-04T10:15:00Z",
    )
    .expect(200);
    object(&banker2, &reg1, "x").expect(404);
    // Confirmed, it ranks: bank 2 is a creditor on the same parcel.
    w.admin
        .post(
            &format!("/v1/forest-mortgages/{m2}/official-registration/confirm"),
            &json!({}),
        )
        .expect(200);
    assert_eq!(
        object(&banker2, &reg1, "顺位有误").expect(201).body["standing"],
        "creditor"
    );
}

fn objections_are_bounded(backend: Backend) {
    let w = world(backend);
    let bank1 = party(&w.admin, "bank", 3);
    let banker1 = user(&w.admin, "bank", Some(bank1), "banker-1");
    let ent_a = user(&w.admin, "enterprise", Some(w.a), "ent-a");
    let reg = pledge(&w, &ent_a, bank1, &banker1, "50");
    // A reason is a statement, not a document: 2,000 characters at most (Chinese counts per character).
    let r = object(&ent_a, &reg, &"异".repeat(2001)).expect(422);
    assert_eq!(r.code(), "objection_reason_too_long");
    let o = object(&ent_a, &reg, &"异".repeat(2000)).expect(201).body;
    // A second active objection by the same party to the same registration is refused.
    let r = object(&ent_a, &reg, "再次异议").expect(409);
    assert_eq!(r.code(), "objection_already_active");
    let v = banker1
        .get(&format!("/v1/encumbrances/{reg}"))
        .expect(200)
        .body;
    assert_eq!(v["notice"]["objections"].as_array().map(Vec::len), Some(1));
    // Once withdrawn, the party may file again.
    ent_a
        .post(&format!("/v1/objections/{}/withdraw", o["id"]), &json!({}))
        .expect(200);
    object(&ent_a, &reg, "再次异议").expect(201);
}

// ---------------------------------------------------------------------------------------------
// 4. One 不动产登记证明号, however it is typed
// ---------------------------------------------------------------------------------------------

fn certificate_number_in_full_width_is_the_same_number(backend: Backend) {
    let w = world(backend);
    w.admin.set_clock("2026-11-25T00:00:00Z");
    let bank1 = party(&w.admin, "bank", 3);
    let bank2 = party(&w.admin, "bank", 4);
    let banker1 = user(&w.admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&w.admin, "bank", Some(bank2), "banker-2");
    let ent_a = user(&w.admin, "enterprise", Some(w.a), "ent-a");
    let p1 = common::two_person(&w.admin, "/v1/forest-rights", &key(), &parcel_body(w.a, 1))["id"]
        .as_i64()
        .unwrap();
    let p2 = common::two_person(&w.admin, "/v1/forest-rights", &key(), &parcel_body(w.a, 2))["id"]
        .as_i64()
        .unwrap();
    let (m1, _) = mortgage(&ent_a, &banker1, bank1, p1);
    let (m2, _) = mortgage(&ent_a, &banker2, bank2, p2);
    let r = register_officially(
        &w.admin,
        &banker1,
        m1,
        "闽(2026)顺昌县不动产证明第0002871号",
        "2026-12-03T10:15:00Z",
    )
    .expect(200);
    assert_eq!(
        r.body["official_certificate_no"],
        "闽(2026)顺昌县不动产证明第0002871号"
    );
    // The same number with full-width brackets and digits and an ideographic space: refused.
    let r = register_officially(
        &w.admin,
        &banker2,
        m2,
        "闽（２０２６）顺昌县\u{3000}不动产证明第0002871号",
        "2026-12-04T10:15:00Z",
    )
    .expect(409);
    assert_eq!(r.code(), "official_certificate_taken");
    let v = w
        .admin
        .get(&format!("/v1/forest-mortgages/{m2}"))
        .expect(200)
        .body;
    assert_eq!(
        v["status"], "pending_official_registration",
        "refused: nothing changed"
    );
    // Typed in full width first, it is stored in the one form.
    let r = register_officially(
        &w.admin,
        &banker2,
        m2,
        "闽（2026）顺昌县不动产证明第0002872号 ",
        "2026-12-04T10:15:00Z",
    )
    .expect(200);
    assert_eq!(
        r.body["official_certificate_no"],
        "闽(2026)顺昌县不动产证明第0002872号"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A transfer settles only for years that still remain (R3, re-checked at settlement)
// ---------------------------------------------------------------------------------------------

fn transfer_settles_only_for_years_that_remain(backend: Backend) {
    let w = world(backend);
    let ent_a = user(&w.admin, "enterprise", Some(w.a), "ent-a");
    let ent_b = user(&w.admin, "enterprise", Some(w.b), "ent-b");
    // The lot runs to 2030-12-31: on 2028-01-01 three whole years remain.
    w.admin.set_clock("2028-01-01T00:00:00Z");
    let t = ent_a
        .post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": w.em, "to_party_id": w.b, "quantity": "10", "unit_price": "6300", "years": 3}),
        )
        .expect(201);
    let tid = t.body["id"].as_i64().unwrap();
    ent_b
        .post_key(&format!("/v1/transfers/{tid}/confirm"), &key(), &json!({}))
        .expect(200);
    // On 2028-06-01 only two whole years remain: three cannot be settled.
    w.admin.set_clock("2028-06-01T00:00:00Z");
    let r = w
        .checker
        .post_key(&format!("/v1/transfers/{tid}/approve"), &key(), &json!({}))
        .expect(422);
    assert_eq!(r.code(), "years_beyond_term");
    let v = w
        .admin
        .get(&format!("/v1/transfers/{tid}"))
        .expect(200)
        .body;
    assert_eq!(
        v["status"], "confirmed",
        "refused: the transfer stays as it was"
    );
    assert_eq!(available(&w.admin, w.b, w.em).to_string(), "0");
    assert_all_conserved(&w.admin);
    // The parties (or the registry) end it; the quantity returns to the sender.
    w.checker
        .post_key(
            &format!("/v1/transfers/{tid}/reject"),
            &key(),
            &json!({"reason": "years beyond term"}),
        )
        .expect(200);
    assert_eq!(available(&w.admin, w.a, w.em).to_string(), "100");
    assert_all_conserved(&w.admin);
}

both_backends!(
    forced_transfer_needs_a_key,
    forest_court_orders_and_holder_changes_need_a_key,
    pledge_on_another_holders_share_gives_no_standing,
    unranked_mortgage_gives_no_standing,
    objections_are_bounded,
    certificate_number_in_full_width_is_the_same_number,
    transfer_settles_only_for_years_that_remain,
);
