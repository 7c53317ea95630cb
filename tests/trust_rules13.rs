//! A rules review: a junior mortgagee's sale of one parcel leaves a senior mortgage on the
//! mortgagor's other parcels (R13, R9); one source document or certificate is one identifier
//! whatever its formatting (R2, R14); a pledge on offer for its disposal still states its
//! quantity to lenders.

mod common;

use common::ledger::{assert_all_conserved, dec, holding, issue, key, lot_request};
use common::{party, user, Api, Backend, Server};
use serde_json::{json, Value};

struct World {
    _srv: Server,
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
    admin.set_clock("2026-11-25T00:00:00Z");
    let farmer = party(&admin, "enterprise", 40);
    let farmer_api = user(&admin, "enterprise", Some(farmer), "farmer");
    let bank1 = party(&admin, "bank", 41);
    let bank2 = party(&admin, "bank", 42);
    let banker1 = user(&admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&admin, "bank", Some(bank2), "banker-2");
    World {
        _srv: srv,
        admin,
        farmer,
        farmer_api,
        bank1,
        banker1,
        bank2,
        banker2,
    }
}

fn parcel(w: &World, n: u32) -> i64 {
    let body = json!({"certificate_no": format!("闽(2026)顺昌县不动产权第{n:07}号"), "holder_party_id": w.farmer,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": format!("{n:02}"), "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household",
        "boundary": {"type": "Polygon", "coordinates": [[[117.80, 26.80], [117.81, 26.80], [117.81, 26.81], [117.80, 26.80]]]}});
    // Registering a parcel takes two people.
    common::two_person(&w.admin, "/v1/forest-rights", &key(), &body)["id"]
        .as_i64()
        .unwrap()
}

fn terms(lender: i64, secured: &str) -> Value {
    json!({"secured_amount": secured, "loan_start": "2026-12-01", "loan_end": "2029-11-30",
        "appraisal": {"value": "520000.00", "appraiser": "南平林业资产评估有限公司", "kind": "professional", "date": "2026-11-20", "report_no": "南林评〔2026〕88号"},
        "insurance": {"policy_no": "PICC-NP-2026-7781", "insurer": "人保财险南平分公司", "insured_amount": "520000.00", "beneficiary_party_id": lender},
        "transfer_ban": false})
}

fn mortgage(w: &World, banker: &Api, lender: i64, parcels: &[i64], secured: &str) -> i64 {
    let id = w
        .farmer_api
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": parcels, "lender_party_id": lender}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    banker
        .post(
            &format!("/v1/forest-mortgages/{id}/complete"),
            &terms(lender, secured),
        )
        .expect(200);
    id
}

fn certify(w: &World, banker: &Api, id: i64, certificate_no: &str, at: &str) -> common::Reply {
    w.admin.set_clock(&format!("{}T23:59:59Z", &at[..10]));
    banker.post(
        &format!("/v1/forest-mortgages/{id}/official-registration"),
        &json!({"certificate_no": certificate_no, "registered_at": at}),
    )
}

fn register_officially(w: &World, banker: &Api, id: i64, at: &str) {
    certify(
        w,
        banker,
        id,
        &format!("闽(2026)顺昌县不动产证明第{id:07}号"),
        at,
    )
    .expect(200);
    w.admin
        .post(
            &format!("/v1/forest-mortgages/{id}/official-registration/confirm"),
            &json!({}),
        )
        .expect(200);
}

fn rank_on(m: &Value, parcel: i64) -> Option<i64> {
    m["parcels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["parcel_id"].as_i64() == Some(parcel))
        .and_then(|p| p["rank"].as_i64())
}

/// Item 1: the senior mortgage covers parcels 1 and 2; a junior on parcel 1 only is enforced and
/// parcel 1 sold. The senior is paid first from parcel 1 and stays on parcel 2 for the rest.
fn a_junior_sale_of_one_parcel_leaves_the_senior_on_the_other(b: Backend) {
    let w = world(b);
    let (p1, p2) = (parcel(&w, 1), parcel(&w, 2));
    let senior = mortgage(&w, &w.banker1, w.bank1, &[p1, p2], "250000.00");
    register_officially(&w, &w.banker1, senior, "2026-12-03T10:15:00Z");
    let junior = mortgage(&w, &w.banker2, w.bank2, &[p1], "100000.00");
    register_officially(&w, &w.banker2, junior, "2026-12-10T09:00:00Z");
    w.banker2
        .post_key(
            &format!("/v1/forest-mortgages/{junior}/enforce"),
            &key(),
            &json!({"principal": "100000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    let buyer = party(&w.admin, "enterprise", 49);
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{junior}/dispose"),
        &key(),
        &json!({"proceeds": "200000.00", "buyer_party_id": buyer}),
    )
    .expect(200);
    // Parcel 1's 200,000 all go to the senior (rank 1 there); nothing is left for the junior.
    assert_eq!(r.body["status"], "disposed");
    assert_eq!(r.body["paid_to_lender"], "0.00");
    assert_eq!(r.body["paid_to_mortgagor"], "0.00");
    let s = w
        .banker1
        .get(&format!("/v1/forest-mortgages/{senior}"))
        .expect(200)
        .body;
    assert_eq!(s["status"], "registered", "parcel 2 was never sold: {s}");
    assert_eq!(s["paid_to_lender"], "200000.00");
    assert_eq!(
        s["secured_amount"], "50000.00",
        "it secures what is still unpaid"
    );
    assert_eq!(rank_on(&s, p2), Some(1));
    assert_eq!(
        rank_on(&s, p1),
        None,
        "parcel 1 went to the buyer free of it"
    );
    // Every lookup still shows it on parcel 2, none on the sold parcel 1.
    let on_p2 = w
        .banker2
        .get(&format!("/v1/encumbrances?parcel_id={p2}"))
        .expect(200)
        .body;
    let list = on_p2["encumbrances"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{on_p2}");
    assert_eq!(list[0]["registration_no"], s["registration_no"]);
    assert_eq!(list[0]["status"], "registered");
    assert_eq!(list[0]["rank"], 1);
    assert_eq!(list[0]["secured_amount"], "50000.00");
    assert!(w
        .banker2
        .get(&format!("/v1/encumbrances?parcel_id={p1}"))
        .expect(200)
        .body["encumbrances"]
        .as_array()
        .unwrap()
        .is_empty());
    let by_no = w
        .banker2
        .get(&format!(
            "/v1/encumbrances/{}",
            s["registration_no"].as_str().unwrap()
        ))
        .expect(200)
        .body;
    assert_eq!(by_no["notice"]["status"], "registered", "{by_no}");
    // The senior can still be enforced on parcel 2 for the rest; that sale ends it.
    w.banker1
        .post_key(
            &format!("/v1/forest-mortgages/{senior}/enforce"),
            &key(),
            &json!({"principal": "50000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    let r = common::two_person_reply(
        &w.admin,
        &format!("/v1/forest-mortgages/{senior}/dispose"),
        &key(),
        &json!({"proceeds": "80000.00", "buyer_party_id": buyer}),
    )
    .expect(200);
    assert_eq!(r.body["status"], "disposed");
    assert_eq!(r.body["paid_to_lender"], "250000.00");
    assert_eq!(r.body["paid_to_mortgagor"], "30000.00");
    assert_all_conserved(&w.admin);
}

both_backends!(a_junior_sale_of_one_parcel_leaves_the_senior_on_the_other);

struct Rights {
    _srv: Server,
    admin: Api,
    checker: Api,
    a: i64,
    ent_a: Api,
    bank: i64,
    banker: Api,
}

fn rights(b: Backend) -> Rights {
    let srv = Server::start(b);
    let admin = srv.admin();
    admin.set_clock("2026-12-01T02:00:00Z");
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 50);
    let ent_a = user(&admin, "enterprise", Some(a), "ent-a");
    let bank = party(&admin, "bank", 51);
    let banker = user(&admin, "bank", Some(bank), "banker");
    Rights {
        _srv: srv,
        admin,
        checker,
        a,
        ent_a,
        bank,
        banker,
    }
}

/// Item 2 (R2): a source document issued (or proposed) once cannot be issued again by writing it
/// with other brackets, full-width digits or an invisible character; nothing is issued, and the
/// lot shows its document as entered.
fn one_source_document_however_it_is_typed(b: Backend) {
    let w = rights(b);
    let lot = issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.a, "485.2", "南环有偿〔2026〕15号"),
    );
    assert_eq!(lot["source_document"], "南环有偿〔2026〕15号");
    for typed in [
        "南环有偿[2026]15号",
        "南环有偿〔2026〕１５号",
        "南环有偿〔2026〕1\u{200B}5号",
        "南环有偿【２０２６】\u{FEFF}15 号",
    ] {
        let r = w
            .admin
            .post("/v1/lots", &lot_request("EM", w.a, "10", typed));
        assert_eq!(r.status.as_u16(), 409, "{typed:?}: {}", r.body);
        assert_eq!(r.code(), "duplicate_source", "{typed:?}");
    }
    // A pending proposal holds its document in every spelling too.
    w.admin
        .post(
            "/v1/lots",
            &lot_request("EM", w.a, "10", "南环有偿〔2026〕16号"),
        )
        .expect(202);
    let r = w.admin.post(
        "/v1/lots",
        &lot_request("EM", w.a, "10", "南环有偿(2026)1\u{200D}6号"),
    );
    assert_eq!(r.status.as_u16(), 409, "{}", r.body);
    assert_eq!(r.code(), "duplicate_source");
    // Another document is still issued, and shown as entered.
    let other = issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.a, "10", "南环有偿[2026]17号"),
    );
    assert_eq!(other["source_document"], "南环有偿[2026]17号");
    let lots = w.admin.get("/v1/lots?limit=100").expect(200).body;
    assert_eq!(lots["items"].as_array().map(Vec::len), Some(2), "{lots}");
    assert_all_conserved(&w.admin);
}

/// Item 2 (R14): an official certificate number with a zero-width space inside is the number
/// already registered: the second mortgage is refused (409 `official_certificate_taken`).
fn a_certificate_number_with_an_invisible_character_is_taken(b: Backend) {
    let w = world(b);
    let (p1, p2) = (parcel(&w, 1), parcel(&w, 2));
    let m1 = mortgage(&w, &w.banker1, w.bank1, &[p1], "100000.00");
    certify(
        &w,
        &w.banker1,
        m1,
        "闽(2026)顺昌县不动产证明第0004567号",
        "2026-12-03T10:15:00Z",
    )
    .expect(200);
    let m2 = mortgage(&w, &w.banker2, w.bank2, &[p2], "100000.00");
    for typed in [
        "闽(2026)顺昌县不动产证明第000\u{200B}4567号",
        "\u{FEFF}闽〔2026〕顺昌县不动产证明第4567号",
        "闽(2026)顺昌县不动产证明第4567\u{00AD}号",
    ] {
        let r = certify(&w, &w.banker2, m2, typed, "2026-12-04T10:15:00Z");
        assert_eq!(r.status.as_u16(), 409, "{typed:?}: {}", r.body);
        assert_eq!(r.code(), "official_certificate_taken", "{typed:?}");
    }
    let m = w
        .banker2
        .get(&format!("/v1/forest-mortgages/{m2}"))
        .expect(200)
        .body;
    assert_eq!(m["status"], "pending_official_registration");
    assert!(m["official_certificate_no"].is_null());
}

/// Item 3: a pledge in enforcement with all its 96.8 on a disposal listing still states 96.8 to
/// lenders (lookup, search, signed certificate), and says it is on offer.
fn a_pledge_on_offer_states_its_quantity(b: Backend) {
    let w = rights(b);
    let em = issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.a, "96.8", "南环有偿〔2026〕21号"),
    )["id"]
        .as_i64()
        .unwrap();
    let id = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": em, "quantity": "96.8", "lender_party_id": w.bank}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let r = w
        .banker
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &json!({"secured_amount": "200000.00", "loan_maturity": "2028-12-31", "period_end": "2029-06-30",
                "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "600000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let no = r.body["registration_no"].as_str().unwrap().to_string();
    let code = r.body["amendment_code"].as_str().unwrap().to_string();
    w.banker
        .post_key(
            &format!("/v1/pledges/{id}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "200000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    let qty = |v: &Value| dec(v).normalize().to_string();
    // Before the offer: 96.8 and nothing on offer.
    let before = w
        .banker
        .get(&format!("/v1/encumbrances/{no}"))
        .expect(200)
        .body;
    assert_eq!(qty(&before["notice"]["asset"]["quantity"]), "96.8");
    assert!(before["notice"]["asset"].get("on_offer").is_none());
    common::two_person_reply(
        &w.admin,
        "/v1/listings",
        &key(),
        &json!({"lot_id": em, "pledge_id": id, "quantity": "96.8", "unit_price": "6300", "years": 4,
            "min_lot": "1", "ends_at": "2026-12-20T08:00:00Z"}),
    )
    .expect(200);
    let h = holding(&w.admin, w.a, em);
    assert_eq!(
        (qty(&h["pledged"]), qty(&h["listed"])),
        ("0".to_string(), "96.8".to_string())
    );
    let notice = w
        .banker
        .get(&format!("/v1/encumbrances/{no}"))
        .expect(200)
        .body["notice"]
        .clone();
    assert_eq!(notice["status"], "enforcing");
    assert_eq!(qty(&notice["asset"]["quantity"]), "96.8", "{notice}");
    assert_eq!(qty(&notice["asset"]["on_offer"]), "96.8", "{notice}");
    let found = w
        .banker
        .get(&format!("/v1/encumbrances?lot_id={em}"))
        .expect(200)
        .body;
    let e = &found["encumbrances"][0];
    assert_eq!(qty(&e["asset"]["quantity"]), "96.8", "{found}");
    let cert = w
        .banker
        .post_key("/v1/search-certificates", &key(), &json!({"lot_id": em}))
        .expect(201)
        .body;
    let e = &cert["statement"]["encumbrances"][0];
    assert_eq!(qty(&e["asset"]["quantity"]), "96.8", "{cert}");
    assert_eq!(qty(&e["asset"]["on_offer"]), "96.8", "{cert}");
    assert_all_conserved(&w.admin);
}

fn parcel_body(certificate_no: &str, holder: i64) -> Value {
    json!({"certificate_no": certificate_no, "holder_party_id": holder,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": "07", "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household"})
}

/// R14: a forest parcel's certificate number is one certificate however it is typed: a zero-width
/// space, full-width brackets or digits, an unpadded serial, the traditional 號 or another letter
/// case does not register the parcel again to another holder (409 `parcel_exists`), whether it is
/// registered or its registration awaits approval; the parcel shows its number as entered.
fn a_parcel_certificate_is_one_however_it_is_typed(b: Backend) {
    let w = world(b);
    let other = party(&w.admin, "enterprise", 43);
    let seeded = "闽(2021)顺昌县不动产权第0003127号";
    let done = common::two_person(
        &w.admin,
        "/v1/forest-rights",
        &key(),
        &parcel_body(seeded, w.farmer),
    );
    assert_eq!(done["certificate_no"], seeded, "{done}");
    common::two_person(
        &w.admin,
        "/v1/forest-rights",
        &key(),
        &parcel_body("evil-api-1", w.farmer),
    );
    for typed in [
        "闽(2021)顺昌县不动产权第0003127\u{200B}号",
        "闽（2021）顺昌县不动产权第０００３１２７号",
        "闽〈2021〉顺昌县不动产权第0003127号",
        "闽(2021)顺昌县不动产权第3127号",
        "闽(2021)顺昌县不动产权第0003127號",
        "EVIL-API-1",
        "evil-api-01",
    ] {
        let r = w
            .admin
            .post_key("/v1/forest-rights", &key(), &parcel_body(typed, other));
        assert_eq!(r.status.as_u16(), 409, "{typed:?}: {}", r.body);
        assert_eq!(r.code(), "parcel_exists", "{typed:?}");
    }
    // A registration awaiting approval holds its number in every spelling too.
    w.admin
        .post_key(
            "/v1/forest-rights",
            &key(),
            &parcel_body("闽(2021)顺昌县不动产权第0003200号", w.farmer),
        )
        .expect(202);
    let r = w.admin.post_key(
        "/v1/forest-rights",
        &key(),
        &parcel_body("闽［2021］顺昌县不动产权第3200號", other),
    );
    assert_eq!(r.status.as_u16(), 409, "{}", r.body);
    assert_eq!(r.code(), "parcel_exists");
    // Another number is still registered, and shown as entered.
    let next = common::two_person(
        &w.admin,
        "/v1/forest-rights",
        &key(),
        &parcel_body("闽(2021)顺昌县不动产权第0031270号", other),
    );
    assert_eq!(
        next["certificate_no"], "闽(2021)顺昌县不动产权第0031270号",
        "{next}"
    );
}

/// R2: a source document written with the traditional 號 or with its serial zero-padded is the
/// document already issued (409 `duplicate_source`).
fn a_source_document_in_hao_or_padded_is_issued(b: Backend) {
    let w = rights(b);
    issue(
        &w.admin,
        &w.checker,
        lot_request("EM", w.a, "485.2", "南环有偿〔2026〕15号"),
    );
    for typed in ["南环有偿〔2026〕15號", "南环有偿〔2026〕015号"] {
        let r = w
            .admin
            .post("/v1/lots", &lot_request("EM", w.a, "10", typed));
        assert_eq!(r.status.as_u16(), 409, "{typed:?}: {}", r.body);
        assert_eq!(r.code(), "duplicate_source", "{typed:?}");
    }
    assert_all_conserved(&w.admin);
}

both_backends!(
    one_source_document_however_it_is_typed,
    a_certificate_number_with_an_invisible_character_is_taken,
    a_pledge_on_offer_states_its_quantity,
    a_parcel_certificate_is_one_however_it_is_typed,
    a_source_document_in_hao_or_padded_is_issued,
);
