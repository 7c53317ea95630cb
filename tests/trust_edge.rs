//! The registry's edge, where a caller's input first meets it: multibyte input never panics a
//! worker, a mistyped credit code or ID number is refused rather than answered "no encumbrances",
//! an individual finds its own encumbrances, impossible counts and region codes are refused, and an
//! imported Windows file's bad rows are reported on the right line.

mod common;

use common::ledger::{issue, key, lot_request};
use common::{party, uscc, user, Api, Backend, Reply, Server};
use serde_json::{json, Value};

/// A 4xx answered as RFC 9457 problem+json with a stable code.
fn assert_problem(r: &Reply, what: &str) {
    assert!(
        r.status.is_client_error(),
        "{what}: expected a 4xx, got {} {}",
        r.status,
        r.body
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/problem+json"),
        "{what}: {}",
        r.body
    );
    assert!(!r.code().is_empty(), "{what}: no code in {}", r.body);
}

/// The server still answers an ordinary request.
fn still_answers(admin: &Api) {
    admin.get("/v1/benchmark-prices").expect(200);
    admin.get("/v1/parties").expect(200);
}

/// Six bytes of multibyte characters where a region code is expected were sliced by
/// byte offsets, which panicked the worker; afterwards every request answered 503.
fn multibyte_input_is_refused_and_the_server_survives(backend: Backend) {
    let srv = Server::start(backend);
    let admin = srv.admin();
    // "南平" is six bytes in UTF-8, as many as a region code has digits; "3é5é" is six bytes of
    // four characters.
    for region in ["南平", "3é5é", "闽"] {
        for path in [
            format!("/v1/benchmark-prices?right_type=EM&sub_kind=SO2&region_code={region}&on=2026-12-01"),
            format!("/v1/benchmark-prices?region_code={region}"),
        ] {
            let r = admin.get(&path);
            assert_problem(&r, &path);
            assert_eq!(r.code(), "validation_failed", "{path}: {}", r.body);
            still_answers(&admin);
        }
    }
    // Other endpoints that take a code from the caller: never a 5xx, and the server survives.
    for path in [
        "/v1/encumbrances?grantor_uscc=南平南平南平南平南平南平南平南平南平",
        "/v1/encumbrances?grantor_id_number=南平南平南平南平南平南平南平南平南平",
        "/v1/parties?id_number=南平南平南平南平南平南平南平南平南平",
        "/v1/market/summary?right_type=EM&region=南平",
        "/v1/market/ohlc?right_type=EM&region=3é5é",
    ] {
        let r = admin.get(path);
        assert!(r.status.as_u16() < 500, "{path}: {} {}", r.status, r.body);
        if r.status.is_client_error() {
            assert_problem(&r, path);
        }
        still_answers(&admin);
    }
    let r = admin.post(
        "/v1/region-flags",
        &json!({"region_code": "南平", "pollutant": "SO2", "non_attainment": true, "document_ref": "x"}),
    );
    assert_problem(&r, "region flag");
    still_answers(&admin);
}

both_backends!(multibyte_input_is_refused_and_the_server_survives);

/// A code with its 18th character changed: a typo R1's check character catches.
fn mistyped(code: &str) -> String {
    let last = code.chars().last().unwrap();
    let other = if last == 'A' { 'B' } else { 'A' };
    format!("{}{other}", &code[..17])
}

struct Lending {
    srv: Server,
    admin: Api,
    checker: Api,
    /// The enterprise, its user, and its lot.
    ent: i64,
    ent_api: Api,
    em: i64,
    bank: i64,
    banker: Api,
}

fn lending(backend: Backend) -> Lending {
    // The webhook below points at loopback port 9 (nobody listens), which the operator allowlists.
    let srv = Server::on_with(
        common::Db::fresh(backend),
        &["--webhook-allow-http", "127.0.0.1:9"],
    );
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let ent = party(&admin, "enterprise", 1);
    let bank = party(&admin, "bank", 3);
    let ent_api = user(&admin, "enterprise", Some(ent), "ent");
    let banker = user(&admin, "bank", Some(bank), "banker");
    let em = issue(
        &admin,
        &checker,
        lot_request("EM", ent, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    Lending {
        srv,
        admin,
        checker,
        ent,
        ent_api,
        em,
        bank,
        banker,
    }
}

/// A registered pledge of `quantity` of `lot` by `pledgor` to the bank; returns its registration no.
fn pledge(l: &Lending, pledgor: &Api, lot: i64, quantity: &str) -> String {
    let id = pledgor
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": quantity, "lender_party_id": l.bank}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let r = l
        .banker
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &json!({"secured_amount": "2000000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    r.body["registration_no"].as_str().unwrap().to_string()
}

fn encumbrance_count(body: &Value) -> usize {
    body["encumbrances"].as_array().map_or(0, Vec::len)
}

/// A credit code with a wrong check character answered 200 with nothing, and the
/// certificate signed for it read "no encumbrances", for a grantor that has one.
fn a_typo_is_refused_not_certified_clean(backend: Backend) {
    let l = lending(backend);
    let no = pledge(&l, &l.ent_api, l.em, "100");
    let code = uscc(1);
    let typo = mistyped(&code);
    let expected = code.chars().last().unwrap();

    let r = l
        .banker
        .get(&format!("/v1/encumbrances?grantor_uscc={typo}"));
    assert_problem(&r, "search with a mistyped code");
    assert_eq!(r.status.as_u16(), 422);
    assert_eq!(r.code(), "uscc_check_character", "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("`{expected}`")),
        "the 422 names the expected check character {expected}: {}",
        r.body
    );
    let c = l
        .banker
        .post("/v1/search-certificates", &json!({"grantor_uscc": typo}));
    assert_eq!(
        c.status.as_u16(),
        422,
        "no certificate for a mistyped code: {}",
        c.body
    );
    assert_eq!(c.code(), "uscc_check_character");
    for bad in [
        "9135070200000000",
        "91350702000000001兴",
        "91I50702000000001G",
    ] {
        let r = l
            .banker
            .get(&format!("/v1/encumbrances?grantor_uscc={bad}"));
        assert_eq!(r.status.as_u16(), 422, "{bad}: {}", r.body);
        assert_eq!(r.code(), "uscc_invalid", "{bad}");
    }
    // An ID number with a wrong check digit: the 422 names the expected digit.
    let r = l
        .banker
        .get("/v1/encumbrances?grantor_id_number=350702199001016235");
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    assert_eq!(r.code(), "id_number_check_digit");
    assert!(
        r.body["detail"].as_str().unwrap().contains("expected 4"),
        "{}",
        r.body
    );
    let c = l.banker.post(
        "/v1/search-certificates",
        &json!({"grantor_id_number": "350702199001016235"}),
    );
    assert_eq!(c.status.as_u16(), 422, "{}", c.body);

    // The right code finds the pledge, and says the grantor is registered.
    let r = l
        .banker
        .get(&format!("/v1/encumbrances?grantor_uscc={code}"))
        .expect(200);
    assert_eq!(r.body["grantor_registered"], true, "{}", r.body);
    assert_eq!(r.body["grantor"]["party_id"], l.ent);
    assert_eq!(encumbrance_count(&r.body), 1);
    assert_eq!(r.body["encumbrances"][0]["registration_no"], no.as_str());

    // A well-formed code of no registered party: not registered, said so explicitly, in the
    // answer and in the signed certificate.
    let stranger = uscc(777);
    let r = l
        .banker
        .get(&format!("/v1/encumbrances?grantor_uscc={stranger}"))
        .expect(200);
    assert_eq!(r.body["grantor_registered"], false, "{}", r.body);
    assert_eq!(encumbrance_count(&r.body), 0);
    let c = l
        .banker
        .post(
            "/v1/search-certificates",
            &json!({"grantor_uscc": stranger}),
        )
        .expect(201);
    assert_eq!(
        c.body["statement"]["grantor_registered"], false,
        "{}",
        c.body
    );
    let keys = l.banker.get("/v1/registry-keys").expect(200).body;
    assert!(
        common::verify_offline(&c.body, &keys),
        "the statement is signed"
    );
    let c = l
        .banker
        .post(
            "/v1/search-certificates",
            &json!({"grantor_id_number": "350702199001016234"}),
        )
        .expect(201);
    assert_eq!(
        c.body["statement"]["grantor_registered"], false,
        "{}",
        c.body
    );
    // A lot that does not exist is a 404, not an empty list.
    let r = l.banker.get("/v1/encumbrances?lot_id=999999");
    assert_eq!(r.status.as_u16(), 404, "{}", r.body);
    let _ = (&l.srv, &l.admin, &l.checker);
}

both_backends!(a_typo_is_refused_not_certified_clean);

/// With CRLF line ends (Excel, WPS) every bad row was reported one line too early;
/// and a credit code typed in lower case was refused where it can only mean the capitals.
fn import_reports_the_line_of_the_file_and_reads_lowercase_codes(backend: Backend) {
    let srv = Server::start(backend);
    let admin = srv.admin();
    let header = "kind,name_zh,name_en,uscc,id_number,region_code,address";
    let good1 = uscc(101).to_lowercase();
    let good2 = uscc(102);
    let bad = mistyped(&uscc(103));
    let rows = [
        header.to_string(),
        format!("enterprise,顺昌县富源水泥有限公司,,{good1},,350721,顺昌县埔上镇"),
        format!("enterprise,南平市延平区绿源化工有限公司,,{good2},,350702,"),
        format!("enterprise,错误企业,,{bad},,350702,"),
        format!("enterprise,错误企业二,,{},,350702,", &uscc(104)[..17]),
    ];
    let crlf = rows.join("\r\n") + "\r\n";
    let lf = rows.join("\n") + "\n";
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(crlf.as_bytes());
    let (gbk, _, lossy) = encoding_rs::GBK.encode(&crlf);
    assert!(!lossy);
    for (name, body) in [
        ("LF", lf.into_bytes()),
        ("CRLF", crlf.clone().into_bytes()),
        ("CRLF with BOM", bom),
        ("CRLF in GBK", gbk.into_owned()),
    ] {
        let r = admin
            .raw("POST", "/v1/imports/parties", "text/csv", body)
            .expect(422);
        let bad_rows = r.body["report"]["bad_rows"].as_array().unwrap();
        let lines: Vec<(u64, &str)> = bad_rows
            .iter()
            .map(|b| (b["line"].as_u64().unwrap(), b["column"].as_str().unwrap()))
            .collect();
        assert_eq!(
            lines,
            vec![(4, "uscc"), (5, "uscc")],
            "{name}: the bad codes are on lines 4 and 5 of the file: {}",
            r.body
        );
        assert!(
            bad_rows[0]["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("`{}`", uscc(103).chars().last().unwrap())),
            "{name}: {}",
            r.body
        );
    }
    // Without the bad rows, the lowercase code is imported, in capitals.
    let good_file = rows[..3].join("\r\n") + "\r\n";
    let r = admin
        .raw(
            "POST",
            "/v1/imports/parties",
            "text/csv",
            good_file.into_bytes(),
        )
        .expect(200);
    assert_eq!(r.body["imported"].as_u64(), Some(2), "{}", r.body);
    let found = admin
        .get(&format!("/v1/parties?uscc={}", uscc(101)))
        .expect(200);
    assert_eq!(
        found.body["items"][0]["uscc"],
        uscc(101).as_str(),
        "{}",
        found.body
    );

    // At the API: a lowercase code registers a party in capitals, and searches find it.
    let lower = uscc(105).to_lowercase();
    let p = admin
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": "小写代码企业", "uscc": lower, "region_code": "350702"}),
        )
        .expect(201);
    assert_eq!(p.body["uscc"], uscc(105).as_str());
    let s = admin
        .get(&format!("/v1/encumbrances?grantor_uscc={lower}"))
        .expect(200);
    assert_eq!(s.body["grantor_registered"], true, "{}", s.body);
    assert_eq!(s.body["grantor"]["uscc"], uscc(105).as_str());
}

both_backends!(import_reports_the_line_of_the_file_and_reads_lowercase_codes);

/// A farmer (an individual party, found by ID number, stored only as a keyed hash,
/// shown masked, R15) could not find its own encumbrances: the search needed a credit code, so
/// an individual user got a 403.
fn an_individual_finds_its_own_encumbrances(backend: Backend) {
    let l = lending(backend);
    let id_number = "350702199001016234";
    let farmer = l
        .admin
        .post(
            "/v1/parties",
            &json!({"kind": "individual", "name_zh": "张林农", "id_number": id_number, "region_code": "350702"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let farmer_api = user(&l.admin, "enterprise", Some(farmer), "farmer");
    let lot = issue(
        &l.admin,
        &l.checker,
        lot_request("EM", farmer, "50", "南环有偿〔2026〕30号"),
    )["id"]
        .as_i64()
        .unwrap();
    let no = pledge(&l, &farmer_api, lot, "20");
    pledge(&l, &l.ent_api, l.em, "100");

    // The farmer's own search names nothing: it is of its own party.
    let r = farmer_api.get("/v1/encumbrances").expect(200);
    assert_eq!(r.body["grantor_registered"], true, "{}", r.body);
    assert_eq!(r.body["grantor"]["party_id"], farmer);
    assert_eq!(r.body["grantor"]["id_number_masked"], "35****************");
    assert_eq!(encumbrance_count(&r.body), 1, "only its own: {}", r.body);
    assert_eq!(r.body["encumbrances"][0]["registration_no"], no.as_str());
    assert!(
        !r.body.to_string().contains(id_number),
        "never the full ID number"
    );
    // By its own ID number too; and a signed certificate of its own search.
    let r = farmer_api
        .get(&format!("/v1/encumbrances?grantor_id_number={id_number}"))
        .expect(200);
    assert_eq!(encumbrance_count(&r.body), 1);
    let c = farmer_api
        .post("/v1/search-certificates", &json!({}))
        .expect(201);
    assert_eq!(
        c.body["statement"]["grantor"]["party_id"], farmer,
        "{}",
        c.body
    );
    assert_eq!(
        c.body["statement"]["encumbrances"][0]["registration_no"],
        no.as_str()
    );
    assert!(!c.body.to_string().contains(id_number));
    let keys = l.banker.get("/v1/registry-keys").expect(200).body;
    assert!(common::verify_offline(&c.body, &keys));

    // An enterprise likewise, without giving its code.
    let r = l.ent_api.get("/v1/encumbrances").expect(200);
    assert_eq!(r.body["grantor"]["party_id"], l.ent);
    assert_eq!(encumbrance_count(&r.body), 1);

    // Still only itself.
    let other = farmer_api.get(&format!("/v1/encumbrances?grantor_uscc={}", uscc(1)));
    assert_eq!(other.status.as_u16(), 403, "{}", other.body);
    let other = farmer_api.get(&format!("/v1/encumbrances?lot_id={}", l.em));
    assert_eq!(other.status.as_u16(), 403, "{}", other.body);
    let other = l
        .ent_api
        .get(&format!("/v1/encumbrances?grantor_id_number={id_number}"));
    assert_eq!(other.status.as_u16(), 403, "{}", other.body);
    // Banks keep their search by credit code or ID number; naming nothing is no search for them.
    let r = l
        .banker
        .get(&format!("/v1/encumbrances?grantor_id_number={id_number}"))
        .expect(200);
    assert_eq!(r.body["grantor"]["party_id"], farmer);
    assert_eq!(encumbrance_count(&r.body), 1);
    let r = l.banker.get("/v1/encumbrances");
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
}

both_backends!(an_individual_finds_its_own_encumbrances);

fn parcel_body(holder: i64, n: u32, county: &str, management_form: &str) -> Value {
    json!({"certificate_no": format!("闽(2026)顺昌县不动产权第{n:07}号"), "holder_party_id": holder,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": county, "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": format!("{n:02}"), "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": management_form})
}

/// A 422 that names `field` (in `errors[]` or, for rule refusals, the code).
fn refused(r: Reply, what: &str) -> Reply {
    assert_eq!(r.status.as_u16(), 422, "{what}: {}", r.body);
    assert_problem(&r, what);
    r
}

/// Inputs that cannot be true were accepted: 55 votes for out of 40 eligible for a
/// village assembly's consent (R12: two thirds), and an EM lot in county 350799, which does not
/// exist (only the province prefix was checked).
fn impossible_counts_and_regions_are_refused(backend: Backend) {
    let l = lending(backend);
    // Lots: a county that does not exist is refused; a real one (建瓯市) is accepted.
    let mut lot = lot_request("EM", l.ent, "10", "南环有偿〔2026〕40号");
    lot["region_code"] = json!("350799");
    let r = refused(l.admin.post("/v1/lots", &lot), "lot in 350799");
    assert_eq!(r.body["errors"][0]["field"], "region_code", "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("350799"),
        "{}",
        r.body
    );
    lot["region_code"] = json!("350783");
    l.admin.post("/v1/lots", &lot).expect(202);
    // Benchmarks, non-attainment flags, parties, forest parcels, buyer restrictions, market
    // queries: every place that takes a region code.
    refused(
        l.admin.post(
            "/v1/benchmark-prices",
            &json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350799", "unit_price": "6300",
                "valid_from": "2026-01-01", "document_ref": "闽发改价格〔2026〕7号"}),
        ),
        "benchmark",
    );
    refused(
        l.admin.post(
            "/v1/region-flags",
            &json!({"region_code": "350799", "pollutant": "SO2", "non_attainment": true, "document_ref": "南环〔2026〕12号"}),
        ),
        "region flag",
    );
    refused(
        l.admin.post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": "不存在县企业", "uscc": uscc(201), "region_code": "350799"}),
        ),
        "party",
    );
    // A party outside Fujian names its province.
    l.admin
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": "北京买方", "uscc": uscc(202), "region_code": "110000"}),
        )
        .expect(201);
    refused(
        l.admin.post(
            "/v1/forest-rights",
            &parcel_body(l.ent, 1, "350799", "household"),
        ),
        "parcel",
    );
    refused(
        l.admin.post(
            "/v1/forest-rights",
            &parcel_body(l.ent, 2, "350700", "household"),
        ),
        "parcel in a prefecture, not a county",
    );
    refused(
        l.ent_api.post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": l.em, "quantity": "10", "unit_price": "7000", "min_lot": "1",
                "ends_at": "2026-12-20T08:00:00Z", "restriction": {"regions": ["350799"]}}),
        ),
        "listing restriction",
    );
    for path in [
        "/v1/market/summary?right_type=EM&region=350799",
        "/v1/benchmark-prices?region_code=350799",
        "/v1/parties?region_code=350799",
    ] {
        refused(l.admin.get(path), path);
    }
    l.admin
        .get("/v1/market/summary?right_type=EM&region=350700")
        .expect(200);

    // Consent: 55 for out of 40 eligible is no two thirds; nor more for than cast, nor more cast
    // than eligible.
    let farmer = l
        .admin
        .post(
            "/v1/parties",
            &json!({"kind": "individual", "name_zh": "林木生", "id_number": "350721198507154516", "region_code": "350721"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let farmer_api = user(&l.admin, "enterprise", Some(farmer), "farmer");
    let parcel = common::two_person(
        &l.admin,
        "/v1/forest-rights",
        &key(),
        &parcel_body(farmer, 3, "350721", "collective"),
    )["id"]
        .as_i64()
        .unwrap();
    let m = farmer_api
        .post(
            "/v1/forest-mortgages",
            &json!({"parcel_ids": [parcel], "lender_party_id": l.bank}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let terms = |consent: Value| {
        json!({"secured_amount": "200000.00", "loan_start": "2026-12-01", "loan_end": "2029-11-30",
            "appraisal": {"value": "520000.00", "appraiser": "南平林业资产评估有限公司", "kind": "professional", "date": "2026-11-20", "report_no": "南林评〔2026〕88号"},
            "insurance": {"policy_no": "PICC-NP-2026-7781", "insurer": "人保财险南平分公司", "insured_amount": "520000.00", "beneficiary_party_id": l.bank},
            "transfer_ban": false, "consent": consent})
    };
    let vote = |f: i64, cast: Option<i64>, e: i64| {
        let mut v = json!({"kind": "village_assembly", "meeting_date": "2026-10-08", "votes_for": f,
            "votes_eligible": e, "document_ref": "大坪村村民代表大会决议〔2026〕5号"});
        if let Some(c) = cast {
            v["votes_cast"] = json!(c);
        }
        v
    };
    let complete = format!("/v1/forest-mortgages/{m}/complete");
    for (f, cast, e) in [
        (55, None, 40),
        (30, Some(28), 40),
        (30, Some(45), 40),
        (0, None, 0),
    ] {
        let r = refused(
            l.banker.post(&complete, &terms(vote(f, cast, e))),
            "consent",
        );
        assert_eq!(r.code(), "impossible_count", "{f} {cast:?} {e}: {}", r.body);
    }
    assert_eq!(
        l.banker
            .get(&format!("/v1/forest-mortgages/{m}"))
            .expect(200)
            .body["status"],
        "applied",
        "nothing changed"
    );
    l.banker
        .post(&complete, &terms(vote(30, Some(38), 40)))
        .expect(200);
}

both_backends!(impossible_counts_and_regions_are_refused);

/// `POST /v1/pledges/{id}/accept` answered `amendment_code` (修改码), which its
/// schema (`PledgeView`) did not declare, so a client generated from the spec dropped it. Secrets
/// shown once have their own response schemas; the test kit now refuses any undeclared field in
/// any reply (this test's replies included).
fn secrets_shown_once_are_declared(backend: Backend) {
    let l = lending(backend);
    let id = l
        .ent_api
        .post(
            "/v1/pledges",
            &json!({"lot_id": l.em, "quantity": "100", "lender_party_id": l.bank}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let accept = json!({"secured_amount": "2000000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
        "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
        "appraisal_date": "2026-11-20"});
    let k = key();
    let path = format!("/v1/pledges/{id}/accept");
    let r = l.banker.post_key(&path, &k, &accept).expect(200);
    let code = r.body["amendment_code"].as_str().unwrap().to_string();
    assert!(!code.is_empty());
    // A replay answers the same pledge without the code, and that shape is declared too.
    let replay = l.banker.post_key(&path, &k, &accept).expect(200);
    assert!(
        replay.body.get("amendment_code").is_none(),
        "{}",
        replay.body
    );
    let rotated = l
        .banker
        .post(
            &format!("/v1/pledges/{id}/amendment-code"),
            &json!({"current_code": code}),
        )
        .expect(200);
    assert_ne!(rotated.body["amendment_code"].as_str().unwrap(), code);
    let hook = l
        .banker
        .post("/v1/webhooks", &json!({"url": "http://127.0.0.1:9/hook"}));
    assert_eq!(hook.status.as_u16(), 201, "{}", hook.body);
    assert!(hook.body["secret"].is_string());
    let client = l
        .srv
        .user_admin()
        .post(
            "/v1/api-clients",
            &json!({"role": "bank", "party_id": l.bank}),
        )
        .expect(201);
    assert!(client.body["client_secret"].is_string());

    // And in the spec itself: each of these responses declares its secret.
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    for (path, method, status, field) in [
        ("/v1/pledges/{id}/accept", "post", "200", "amendment_code"),
        (
            "/v1/pledges/{id}/amendment-code",
            "post",
            "200",
            "amendment_code",
        ),
        ("/v1/webhooks", "post", "201", "secret"),
        ("/v1/api-clients", "post", "201", "client_secret"),
    ] {
        let schema = &spec["paths"][path][method]["responses"][status]["content"]
            ["application/json"]["schema"];
        let name = schema["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
        let text = spec["components"]["schemas"][name].to_string();
        assert!(
            text.contains(&format!("\"{field}\"")),
            "{path}: {name} declares no {field}"
        );
    }
}

both_backends!(secrets_shown_once_are_declared);

/// The kit's check itself: a field the spec does not declare fails the test that receives it.
#[test]
fn the_kit_refuses_undeclared_fields() {
    let reply = |body: Value| Reply {
        status: reqwest::StatusCode::OK,
        headers: reqwest::header::HeaderMap::new(),
        body,
    };
    let ok = reply(
        json!([{"key_id": "k", "algorithm": "Ed25519", "public_key": "AA==", "status": "active"}]),
    );
    common::spec_check::assert_declared("GET", "/v1/registry-keys", &ok);
    let extra = reply(
        json!([{"key_id": "k", "algorithm": "Ed25519", "public_key": "AA==", "status": "active", "private_key": "x"}]),
    );
    let caught = std::panic::catch_unwind(|| {
        common::spec_check::assert_declared("GET", "/v1/registry-keys?x=1", &extra)
    });
    let message = caught.expect_err("an undeclared field fails");
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(text.contains("$[0].private_key"), "{text}");
}
