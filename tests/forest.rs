//! Forest rights as collateral: R12 refusals, official registration (R14), ranks, holder changes
//! with and without a transfer ban, disposal by rank, and a farmer's privacy (R15).

mod common;

use common::ledger::key;
use common::{party, two_person, uscc, user, verify_offline, Api, Backend, Server};
use serde_json::{json, Value};

const FARMER_ID: &str = "350721198507154516";

struct World {
    srv: Server,
    admin: Api,
    farmer: i64,
    farmer_api: Api,
    bank1: i64,
    banker1: Api,
    bank2: i64,
    banker2: Api,
}

fn world(b: Backend) -> World {
    let srv = Server::start(b);
    let admin = srv.admin();
    // Mortgages are completed before their official registrations (see register_officially).
    admin.set_clock("2026-11-25T00:00:00Z");
    let f = admin
        .post("/v1/parties", &json!({"kind": "individual", "name_zh": "林木生", "id_number": FARMER_ID, "region_code": "350721"}))
        .expect(201);
    let farmer = f.body["id"].as_i64().unwrap();
    let farmer_api = user(&admin, "enterprise", Some(farmer), "farmer");
    let bank1 = party(&admin, "bank", 1);
    let bank2 = party(&admin, "bank", 2);
    let banker1 = user(&admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&admin, "bank", Some(bank2), "banker-2");
    World {
        srv,
        admin,
        farmer,
        farmer_api,
        bank1,
        banker1,
        bank2,
        banker2,
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

fn register(w: &World, body: Value) -> i64 {
    two_person(&w.admin, "/v1/forest-rights", &key(), &body)["id"]
        .as_i64()
        .unwrap()
}

fn terms(lender: i64, secured: &str) -> Value {
    json!({"secured_amount": secured, "loan_start": "2026-12-01", "loan_end": "2029-11-30",
        "appraisal": {"value": "520000.00", "appraiser": "南平林业资产评估有限公司", "kind": "professional", "date": "2026-11-20", "report_no": "南林评〔2026〕88号"},
        "insurance": {"policy_no": "PICC-NP-2026-7781", "insurer": "人保财险南平分公司", "insured_amount": "520000.00", "beneficiary_party_id": lender},
        "transfer_ban": false})
}

/// Applies (as the farmer) and completes (as the lender); returns the mortgage id.
fn mortgage(w: &World, banker: &Api, lender: i64, parcels: &[i64], terms: Value) -> i64 {
    let m = w
        .farmer_api
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": parcels, "lender_party_id": lender}),
        )
        .expect(201);
    let id = m.body["id"].as_i64().unwrap();
    let r = banker
        .post(&format!("/v1/forest-mortgages/{id}/complete"), &terms)
        .expect(200);
    assert_eq!(r.body["status"], "pending_official_registration");
    id
}

/// The lender enters the official registration (R14) and an operator confirms it. The clock stands
/// at the end of the official day, so the time lies after the mortgage's completion (the world's
/// clock starts earlier) and not in the future.
fn register_officially(w: &World, banker: &Api, id: i64, at: &str) -> Value {
    w.admin.set_clock(&format!("{}T23:59:59Z", &at[..10]));
    let r = banker
        .post(&format!("/v1/forest-mortgages/{id}/official-registration"), &json!({"certificate_no": format!("闽(2026)顺昌县不动产证明第{id:07}号"), "registered_at": at}))
        .expect(200);
    assert_eq!(r.body["status"], "pending_confirmation");
    w.admin
        .post(
            &format!("/v1/forest-mortgages/{id}/official-registration/confirm"),
            &json!({}),
        )
        .expect(200)
        .body
}

fn r12_refusals(b: Backend) {
    let w = world(b);
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "public_welfare_forest",
            json!({"forest_category": "public_welfare"}),
            json!({}),
        ),
        (
            "unregistered_forest",
            json!({"registered": false}),
            json!({}),
        ),
        ("disputed_forest", json!({"disputed": true}), json!({})),
        (
            "woodland_use_not_included",
            json!({"rights": ["tree_ownership"]}),
            json!({}),
        ),
        (
            "term_after_woodland_use",
            json!({"woodland_term_end": "2029-06-30"}),
            json!({}),
        ),
        (
            "consent_missing",
            json!({"management_form": "collective"}),
            json!({}),
        ),
        (
            "resolution_missing",
            json!({"management_form": "company"}),
            json!({}),
        ),
        (
            "ltv_exceeded",
            json!({}),
            json!({"secured_amount": "260000.01"}),
        ),
        (
            "professional_appraisal_required",
            json!({}),
            json!({"secured_amount": "300000.00", "appraisal": {"value": "700000.00", "appraiser": "本行", "kind": "bank_internal", "date": "2026-11-20", "report_no": "内评-1"}}),
        ),
        (
            "fire_insurance_required",
            json!({}),
            json!({"insurance": {"policy_no": "P", "insurer": "I", "insured_amount": "1.00", "beneficiary_party_id": w.farmer}}),
        ),
    ];
    for (n, (code, parcel_changes, term_changes)) in cases.into_iter().enumerate() {
        let mut body = parcel_body(w.farmer, 100 + n as u32);
        for (k, v) in parcel_changes.as_object().unwrap() {
            body[k] = v.clone();
        }
        let p = register(&w, body);
        let mut t = terms(w.bank1, "200000.00");
        for (k, v) in term_changes.as_object().unwrap() {
            t[k] = v.clone();
        }
        let m = w
            .farmer_api
            .post(
                "/v1/forest-mortgages",
                &json!({"parcel_ids": [p], "lender_party_id": w.bank1}),
            )
            .expect(201);
        let r = w.banker1.post(
            &format!("/v1/forest-mortgages/{}/complete", m.body["id"]),
            &t,
        );
        assert_eq!(r.code(), code, "{}", r.body);
        assert!(
            r.status.as_u16() == 422 || r.status.as_u16() == 409,
            "{code}: {}",
            r.status
        );
        assert_eq!(
            w.banker1
                .get(&format!("/v1/forest-mortgages/{}", m.body["id"]))
                .expect(200)
                .body["status"],
            "applied"
        );
    }
    // A valid commercial-forest mortgage on two parcels: one collectively managed with a 2/3 vote.
    let p1 = register(&w, parcel_body(w.farmer, 1));
    let mut collective = parcel_body(w.farmer, 2);
    collective["management_form"] = json!("collective");
    let p2 = register(&w, collective);
    let mut t = terms(w.bank1, "200000.00");
    t["consent"] = json!({"kind": "village_assembly", "meeting_date": "2026-10-08", "votes_for": 34, "votes_eligible": 45, "document_ref": "大坪村村民代表大会决议〔2026〕5号"});
    let id = mortgage(&w, &w.banker1, w.bank1, &[p1, p2], t);
    let m = w
        .banker1
        .get(&format!("/v1/forest-mortgages/{id}"))
        .expect(200);
    assert_eq!(m.body["parcels"].as_array().unwrap().len(), 2);
    assert_eq!(m.body["consent"]["votes_for"], 34);
    // A bad boundary is refused at registration.
    let mut bad = parcel_body(w.farmer, 3);
    bad["boundary"] = json!({"type": "Polygon", "coordinates": [[[117.8, 26.8], [117.9, 26.8]]]});
    assert_eq!(
        w.admin.post("/v1/forest-rights", &bad).expect(422).body["errors"][0]["field"],
        "boundary"
    );
}

fn ranks_follow_official_registration(b: Backend) {
    let w = world(b);
    let p = register(&w, parcel_body(w.farmer, 1));
    let first = mortgage(&w, &w.banker1, w.bank1, &[p], terms(w.bank1, "100000.00"));
    // Until the official certificate is recorded it shows as pending in searches.
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?parcel_id={p}"))
        .expect(200);
    assert_eq!(
        s.body["encumbrances"][0]["status"],
        "pending_official_registration"
    );
    register_officially(&w, &w.banker1, first, "2026-12-03T10:15:00Z");
    let second = mortgage(&w, &w.banker2, w.bank2, &[p], terms(w.bank2, "100000.00"));
    let r = register_officially(&w, &w.banker2, second, "2026-12-10T09:00:00Z");
    assert_eq!(r["parcels"][0]["rank"], 2);
    // The second lender sees what ranks ahead of it.
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?parcel_id={p}"))
        .expect(200)
        .body;
    let ranks: Vec<(i64, i64)> = s["encumbrances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["parcels"][0]["rank"].as_i64().unwrap(),
                e["lender"]["party_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranks, vec![(1, w.bank1), (2, w.bank2)]);
    // Release of the first moves the second up; its history keeps rank 2.
    w.banker1
        .post(
            &format!("/v1/forest-mortgages/{first}/release"),
            &json!({"document_ref": "抵押权注销登记 2027-1"}),
        )
        .expect(200);
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?parcel_id={p}"))
        .expect(200)
        .body;
    assert_eq!(s["encumbrances"].as_array().unwrap().len(), 1);
    assert_eq!(s["encumbrances"][0]["parcels"][0]["rank"], 1);
    let m = w
        .banker2
        .get(&format!("/v1/forest-mortgages/{second}"))
        .expect(200)
        .body;
    assert_eq!(
        (
            m["parcels"][0]["rank"].as_i64(),
            m["parcels"][0]["rank_at_registration"].as_i64()
        ),
        (Some(1), Some(2))
    );
}

fn farmer_privacy_and_bank_flow(b: Backend) {
    let w = world(b);
    let p = register(&w, parcel_body(w.farmer, 1));
    // A bank searches encumbrances by full ID number; before the farmer applies to it, the
    // parcel register shows it nothing of the farmer's parcels.
    let none = w
        .banker1
        .get(&format!("/v1/encumbrances?grantor_id_number={FARMER_ID}"))
        .expect(200)
        .body;
    assert!(none["encumbrances"].as_array().unwrap().is_empty());
    let unrelated = w
        .banker1
        .get(&format!("/v1/forest-rights?holder_id_number={FARMER_ID}"))
        .expect(200)
        .body;
    assert!(unrelated["items"].as_array().unwrap().is_empty());
    let id = mortgage(&w, &w.banker1, w.bank1, &[p], terms(w.bank1, "200000.00"));
    // The lender applied to finds the parcel by the farmer's ID number; the number is masked.
    let found = w
        .banker1
        .get(&format!("/v1/forest-rights?holder_id_number={FARMER_ID}"))
        .expect(200)
        .body;
    assert_eq!(found["items"][0]["id"].as_i64(), Some(p));
    assert_eq!(
        found["items"][0]["holder"]["id_number_masked"],
        "35****************"
    );
    assert_eq!(found["items"][0]["area_ha"], "8.4333");
    let reg = register_officially(&w, &w.banker1, id, "2026-12-03T10:15:00Z");
    let registration_no = reg["registration_no"].as_str().unwrap().to_string();
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_id_number={FARMER_ID}"))
        .expect(200)
        .body;
    assert_eq!(s["encumbrances"][0]["kind"], "forest_mortgage");
    assert_eq!(
        s["encumbrances"][0]["registration_no"],
        registration_no.as_str()
    );
    // Verification: another bank sees the notice only; with the code, no login is needed.
    let v = w
        .banker2
        .get(&format!("/v1/encumbrances/{registration_no}"))
        .expect(200)
        .body;
    assert!(v["private_terms"].is_null());
    let own = w
        .banker1
        .get(&format!("/v1/encumbrances/{registration_no}"))
        .expect(200)
        .body;
    assert_eq!(
        own["private_terms"]["insurance_policy_no"],
        "PICC-NP-2026-7781"
    );
    let code = reg["verification_code"].as_str().unwrap();
    w.srv
        .api()
        .get(&format!(
            "/v1/encumbrances/{registration_no}?verification_code={code}"
        ))
        .expect(200);
    // A certificate that verifies offline.
    let cert = w
        .banker1
        .post(
            "/v1/search-certificates",
            &json!({"grantor_id_number": FARMER_ID}),
        )
        .expect(201)
        .body;
    let keys = w.srv.api().get("/v1/registry-keys").expect(200).body;
    assert!(verify_offline(&cert, &keys));
    assert_eq!(
        cert["statement"]["encumbrances"][0]["kind"],
        "forest_mortgage"
    );
    // The full ID number appears in no response and no log line.
    let everything = [
        cert.to_string(),
        s.to_string(),
        found.to_string(),
        own.to_string(),
    ]
    .join("\n");
    assert!(!everything.contains(FARMER_ID));
    assert!(
        !std::fs::read_to_string(&w.srv.log)
            .unwrap()
            .contains(FARMER_ID),
        "the ID number reached the log"
    );
    // Another farmer's (enterprise) user sees nothing of it.
    let other = party(&w.admin, "enterprise", 7);
    let other_api = user(&w.admin, "enterprise", Some(other), "other");
    other_api
        .get(&format!("/v1/forest-mortgages/{id}"))
        .expect(404);
    other_api.get(&format!("/v1/forest-rights/{p}")).expect(404);
}

/// A bank sees the parcels of its own mortgages and of the applications made to it, not the
/// whole register: any other parcel is not listed and is a 404, as if it did not exist. Holders
/// see their own; operators and regulators all. The encumbrance search stays open to banks.
fn banks_see_only_the_parcels_they_lend_on(b: Backend) {
    let w = world(b);
    let p1 = register(&w, parcel_body(w.farmer, 1));
    let p2 = register(&w, parcel_body(w.farmer, 2));
    let other = party(&w.admin, "enterprise", 7);
    let p3 = register(&w, parcel_body(other, 3));
    let listed = |api: &Api, query: &str| -> Vec<i64> {
        api.get(&format!("/v1/forest-rights?limit=100{query}"))
            .expect(200)
            .body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(listed(&w.banker1, ""), Vec::<i64>::new(), "no relation yet");
    w.banker1
        .get(&format!("/v1/forest-rights/{p1}"))
        .expect(404);
    // The farmer applies to bank 1 with p1: bank 1 now sees p1, and only p1.
    w.farmer_api
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": [p1], "lender_party_id": w.bank1}),
        )
        .expect(201);
    assert_eq!(listed(&w.banker1, ""), vec![p1]);
    let v = w
        .banker1
        .get(&format!("/v1/forest-rights/{p1}"))
        .expect(200);
    assert_eq!(v.body["holder"]["party_id"].as_i64(), Some(w.farmer));
    for p in [p2, p3] {
        let r = w.banker1.get(&format!("/v1/forest-rights/{p}")).expect(404);
        assert_eq!(r.code(), "not_found");
    }
    // Another bank sees none of them, by listing, by certificate or by id.
    assert_eq!(listed(&w.banker2, ""), Vec::<i64>::new());
    let cert = v.body["certificate_no"].as_str().unwrap().to_string();
    assert_eq!(
        listed(&w.banker2, &format!("&certificate_no={cert}")),
        Vec::<i64>::new()
    );
    for p in [p1, p2, p3] {
        w.banker2.get(&format!("/v1/forest-rights/{p}")).expect(404);
    }
    // The public registry function is unchanged: bank 2 finds p1's encumbrance notices.
    w.banker2
        .get(&format!("/v1/encumbrances?parcel_id={p1}"))
        .expect(200);
    // Holders their own; operators and regulators every parcel.
    assert_eq!(listed(&w.farmer_api, ""), vec![p1, p2]);
    w.farmer_api
        .get(&format!("/v1/forest-rights/{p3}"))
        .expect(404);
    assert_eq!(listed(&w.admin, ""), vec![p1, p2, p3]);
    let reg = user(&w.admin, "regulator", None, "reg");
    assert_eq!(listed(&reg, ""), vec![p1, p2, p3]);
    reg.get(&format!("/v1/forest-rights/{p3}")).expect(200);
}

fn holder_changes_and_transfer_ban(b: Backend) {
    let w = world(b);
    let buyer = party(&w.admin, "enterprise", 5);
    let banned = register(&w, parcel_body(w.farmer, 1));
    let mut t = terms(w.bank1, "100000.00");
    t["transfer_ban"] = json!(true);
    let m1 = mortgage(&w, &w.banker1, w.bank1, &[banned], t);
    register_officially(&w, &w.banker1, m1, "2026-12-03T10:15:00Z");
    let r = w
        .admin
        .post_key(
            &format!("/v1/forest-rights/{banned}/holder-changes"),
            &key(),
            &json!({"new_holder_party_id": buyer, "document_ref": "流转合同 1"}),
        )
        .expect(409);
    assert_eq!(r.code(), "transfer_banned");
    let free = register(&w, parcel_body(w.farmer, 2));
    let m2 = mortgage(
        &w,
        &w.banker1,
        w.bank1,
        &[free],
        terms(w.bank1, "100000.00"),
    );
    register_officially(&w, &w.banker1, m2, "2026-12-04T10:15:00Z");
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-rights/{free}/holder-changes"),
        &key(),
        &json!({"new_holder_party_id": buyer, "document_ref": "流转合同 2"}),
    )
    .expect(200);
    assert_eq!(r.body["holder"]["party_id"].as_i64(), Some(buyer));
    // The mortgage follows the parcel; its lender has an entry (and a webhook event) about it.
    let m = w
        .banker1
        .get(&format!("/v1/forest-mortgages/{m2}"))
        .expect(200)
        .body;
    assert_eq!(m["status"], "registered");
    assert!(m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "holder_changed"));
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(5)))
        .expect(200)
        .body;
    assert_eq!(
        s["encumbrances"].as_array().unwrap().len(),
        1,
        "the new holder's parcel carries the mortgage"
    );
}

fn disposal_pays_by_rank(b: Backend) {
    let w = world(b);
    let p = register(&w, parcel_body(w.farmer, 1));
    let first = mortgage(&w, &w.banker1, w.bank1, &[p], terms(w.bank1, "200000.00"));
    register_officially(&w, &w.banker1, first, "2026-12-03T10:15:00Z");
    let second = mortgage(&w, &w.banker2, w.bank2, &[p], terms(w.bank2, "100000.00"));
    register_officially(&w, &w.banker2, second, "2026-12-10T09:00:00Z");
    w.banker1
        .post_key(
            &format!("/v1/forest-mortgages/{first}/enforce"),
            &key(),
            &json!({"principal": "150000.00", "interest": "1234.56", "costs": "0"}),
        )
        .expect(200);
    let buyer = party(&w.admin, "enterprise", 9);
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{first}/dispose"),
        &key(),
        &json!({"proceeds": "300000.00", "buyer_party_id": buyer}),
    )
    .expect(200);
    // Rank 1 is paid its claim, rank 2 up to its secured amount, the rest to the farmer.
    assert_eq!(r.body["paid_to_lender"], "151234.56");
    assert_eq!(r.body["paid_to_mortgagor"], "48765.44");
    let m2 = w
        .banker2
        .get(&format!("/v1/forest-mortgages/{second}"))
        .expect(200)
        .body;
    assert_eq!(
        (m2["status"].as_str(), m2["paid_to_lender"].as_str()),
        (Some("disposed"), Some("100000.00"))
    );
    assert_eq!(
        w.admin
            .get(&format!("/v1/forest-rights/{p}"))
            .expect(200)
            .body["holder"]["party_id"]
            .as_i64(),
        Some(buyer)
    );
    assert!(w
        .banker1
        .get(&format!("/v1/encumbrances?parcel_id={p}"))
        .expect(200)
        .body["encumbrances"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(w.admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}

fn freeze_and_split(b: Backend) {
    let w = world(b);
    let p = register(&w, parcel_body(w.farmer, 1));
    let m = mortgage(&w, &w.banker1, w.bank1, &[p], terms(w.bank1, "100000.00"));
    register_officially(&w, &w.banker1, m, "2026-12-03T10:15:00Z");
    let buyer = party(&w.admin, "enterprise", 5);
    // A court freezes the parcel: no holder change, no split, no new mortgage; it shows in search.
    let f = w.admin.post_key(&format!("/v1/forest-rights/{p}/freezes"), &key(), &json!({"court": "顺昌县人民法院", "case_no": "(2027)闽0721执保8号", "document_ref": "协助执行通知书"})).expect(201);
    let r = w
        .admin
        .post_key(
            &format!("/v1/forest-rights/{p}/holder-changes"),
            &key(),
            &json!({"new_holder_party_id": buyer, "document_ref": "x"}),
        )
        .expect(409);
    assert_eq!(r.code(), "parcel_frozen");
    let parts = json!({"document_ref": "分割登记 2027-3", "parts": [
        {"certificate_no": "闽(2027)顺昌县不动产权第0002001号", "sub_compartment": "01-1", "area_mu": "60.00", "stock_volume": "750.00"},
        {"certificate_no": "闽(2027)顺昌县不动产权第0002002号", "sub_compartment": "01-2", "area_mu": "66.50", "stock_volume": "830.00"}]});
    assert_eq!(
        w.admin
            .post(&format!("/v1/forest-rights/{p}/split"), &parts)
            .expect(409)
            .code(),
        "parcel_frozen",
        "a frozen parcel is not even proposed for a split"
    );
    assert_eq!(
        w.farmer_api
            .post(
                "/v1/forest-mortgages",
                &json!({"parcel_ids": [p], "lender_party_id": w.bank2})
            )
            .expect(409)
            .code(),
        "parcel_frozen"
    );
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?grantor_id_number={FARMER_ID}"))
        .expect(200)
        .body;
    let kinds: Vec<&str> = s["encumbrances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["forest_mortgage", "judicial_freeze"]);
    let entries = w
        .banker1
        .get(&format!("/v1/forest-mortgages/{m}"))
        .expect(200)
        .body["entries"]
        .clone();
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "judicial_freeze"),
        "the lender is told"
    );
    common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-rights/{p}/freezes/{}/lift", f.body["id"]),
        &key(),
        &json!({"document_ref": "解除查封裁定书"}),
    )
    .expect(200);

    // A split must add up; the mortgage then burdens every part with its rank.
    let mut wrong = parts.clone();
    wrong["parts"][1]["area_mu"] = json!("66.49");
    w.admin
        .post(&format!("/v1/forest-rights/{p}/split"), &wrong)
        .expect(422);
    // A split registers new certificates: a second operator approves it.
    let split = two_person(
        &w.admin,
        &format!("/v1/forest-rights/{p}/split"),
        &key(),
        &parts,
    );
    let part = split[1]["id"].as_i64().unwrap();
    assert_eq!(split[1]["split_from"].as_i64(), Some(p));
    let s = w
        .banker2
        .get(&format!("/v1/encumbrances?parcel_id={part}"))
        .expect(200)
        .body;
    assert_eq!(
        s["encumbrances"][0]["registration_no"],
        w.banker1
            .get(&format!("/v1/forest-mortgages/{m}"))
            .expect(200)
            .body["registration_no"]
    );
    assert_eq!(
        w.admin
            .get(&format!("/v1/forest-rights/{p}"))
            .expect(200)
            .body["status"],
        "split"
    );
    assert_eq!(
        w.farmer_api
            .post(
                "/v1/forest-mortgages",
                &json!({"parcel_ids": [p], "lender_party_id": w.bank2})
            )
            .expect(409)
            .code(),
        "parcel_split"
    );
    // The lender sees the parts its mortgage burdens; another bank only once asked to lend.
    w.banker1
        .get(&format!("/v1/forest-rights/{part}"))
        .expect(200);
    w.banker2
        .get(&format!("/v1/forest-rights/{part}"))
        .expect(404);
    w.farmer_api
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": [part], "lender_party_id": w.bank2}),
        )
        .expect(201);
    w.banker2
        .get(&format!("/v1/forest-rights/{part}"))
        .expect(200);
}

fn co_held_parcels(b: Backend) {
    let w = world(b);
    let wife = w
        .admin
        .post("/v1/parties", &json!({"kind": "individual", "name_zh": "陈秀英", "id_number": "350721198803214528", "region_code": "350721"}))
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let mut body = parcel_body(w.farmer, 1);
    body["co_holders"] =
        json!([{"party_id": w.farmer, "share": "60"}, {"party_id": wife, "share": "30"}]);
    assert_eq!(
        w.admin.post("/v1/forest-rights", &body).expect(422).body["errors"][0]["field"],
        "co_holders"
    );
    body["co_holders"] =
        json!([{"party_id": wife, "share": "40"}, {"party_id": w.farmer, "share": "60"}]);
    let p = two_person(&w.admin, "/v1/forest-rights", &key(), &body);
    assert_eq!(p["holder"]["party_id"].as_i64(), Some(w.farmer));
    assert_eq!(p["holders"].as_array().unwrap().len(), 2);
    // Either holder's ID number finds it (as the registry sees it; a bank sees it once asked).
    let found = w
        .admin
        .get("/v1/forest-rights?holder_id_number=350721198803214528")
        .expect(200)
        .body;
    assert_eq!(found["items"][0]["id"], p["id"]);
    // Mortgaging it takes co-holders with two thirds of the shares.
    let apply = json!({"parcel_ids": [p["id"]], "lender_party_id": w.bank1});
    assert_eq!(
        w.farmer_api
            .post("/v1/forest-mortgages", &apply)
            .expect(422)
            .code(),
        "co_holder_consent_missing"
    );
    let mut with = apply.clone();
    with["co_holder_consent"] =
        json!({"party_ids": [wife], "document_ref": "共有人同意书 2026-11-18"});
    w.farmer_api.post("/v1/forest-mortgages", &with).expect(201);
}

fn lender_product_caps(b: Backend) {
    let w = world(b);
    let product = json!({"lender_party_id": w.bank1, "code": "FULINDAI", "name": "福林贷", "forest_ltv_cap_percent": "40"});
    w.banker1.post("/v1/lender-products", &product).expect(403);
    // Two persons: an operator proposes, an operator of another person approves.
    common::two_person(
        &w.admin,
        "/v1/lender-products",
        "product-fulindai",
        &product,
    );
    assert_eq!(
        w.banker1.get("/v1/lender-products").expect(200).body[0]["forest_ltv_cap_percent"],
        "40.00"
    );
    assert!(w
        .banker2
        .get("/v1/lender-products")
        .expect(200)
        .body
        .as_array()
        .unwrap()
        .is_empty());
    let p = register(&w, parcel_body(w.farmer, 1));
    let m = w
        .farmer_api
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": [p], "lender_party_id": w.bank1}),
        )
        .expect(201);
    let id = m.body["id"].as_i64().unwrap();
    // 220,000 of a 520,000 appraisal is 42 %: within the default 50 %, over the product's 40 %.
    let mut t = terms(w.bank1, "220000.00");
    t["product_code"] = json!("FULINDAI");
    assert_eq!(
        w.banker1
            .post(&format!("/v1/forest-mortgages/{id}/complete"), &t)
            .expect(422)
            .code(),
        "ltv_exceeded"
    );
    t["product_code"] = json!("NO-SUCH");
    assert_eq!(
        w.banker1
            .post(&format!("/v1/forest-mortgages/{id}/complete"), &t)
            .expect(422)
            .body["errors"][0]["field"],
        "product_code"
    );
    t.as_object_mut().unwrap().remove("product_code");
    w.banker1
        .post(&format!("/v1/forest-mortgages/{id}/complete"), &t)
        .expect(200);
}

both_backends!(
    r12_refusals,
    ranks_follow_official_registration,
    farmer_privacy_and_bank_flow,
    banks_see_only_the_parcels_they_lend_on,
    holder_changes_and_transfer_ban,
    disposal_pays_by_rank,
    freeze_and_split,
    co_held_parcels,
    lender_product_caps,
);
