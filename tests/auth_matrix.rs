//! The authorization matrix (OWASP API Top 10: broken authentication, object-level and
//! function-level authorization): every operation of the committed spec (openapi/openapi.json,
//! all paths × methods) is called with no token, an expired token, a token signed with another
//! key, an `alg: none` token and a garbage token, then as each role — the owning enterprise and
//! bank, another enterprise and bank, an operator, a regulator — on real objects of the owning
//! parties, and as the non-owners on objects that do not exist.
//!
//! Asserted for every operation:
//! - never a 5xx;
//! - every bad token is a 401 problem on an operation that needs a login (and on one where a login
//!   is optional: a token that is sent must be valid); an operation without login ignores none;
//! - no existence leak: a non-owner gets on a real object what it gets on a missing one, unless
//!   it may see the object (a 2xx); and nobody gets a 2xx on an object that does not exist;
//! - the exact status of every cell, against the table `EXPECTED` below (reviewed row by row; when
//!   a handler changes on purpose, the failure prints the new table to paste).
//!
//! Bodies are the spec's own examples with the fixture's ids put in, so that requests reach the
//! handlers' role and object checks rather than stop at body validation. Cells run in a fixed
//! order (operations as in the spec, callers as in `CALLERS`), so mutations by allowed callers are
//! deterministic.

mod common;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use common::ledger::{issue, key, lot_request};
use common::{party, user, Api, Backend, Db, Server};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

const JWT_KEY_HEX: &str = "6a77742d6b65792d666f722d7468652d617574682d6d61747269782d74657374";
const MISSING: i64 = 987_654;

/// The callers of each cell, in order. The first five are bad or absent tokens.
const CALLERS: [&str; 14] = [
    "none", "expired", "wrongkey", "algnone", "garbage", "entB", "bankY", "reg", "entA", "bankX",
    "op", "entB?", "bankY?", "op?",
];

fn b64(v: &Value) -> String {
    B64URL.encode(serde_json::to_vec(v).unwrap())
}

fn sign(header: &Value, claims: &Value, key: &[u8]) -> String {
    let msg = format!("{}.{}", b64(header), b64(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(msg.as_bytes());
    format!("{msg}.{}", B64URL.encode(mac.finalize().into_bytes()))
}

/// The claims of a real token, to forge variants of it.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap()
}

struct Fixture {
    ids: BTreeMap<&'static str, String>,
    parties: BTreeMap<&'static str, i64>,
    callers: BTreeMap<&'static str, Option<String>>,
}

fn id_of(r: &common::Reply, what: &str) -> String {
    assert!(
        r.status.is_success(),
        "fixture {what}: {} {}",
        r.status,
        r.body
    );
    let v = if r.body["id"].is_null() {
        &r.body["proposal_id"]
    } else {
        &r.body["id"]
    };
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => panic!("fixture {what}: no id in {}", r.body),
    }
}

fn fixture(srv: &Server) -> Fixture {
    let admin = srv.admin();
    // A fixed business date, so that the spec's dated examples (auction times, R3 years left of a
    // term) give the same answers whenever the matrix runs.
    admin.set_clock("2026-12-01T02:00:00Z");
    let checker = user(&admin, "operator", None, "checker");
    let reg = user(&admin, "regulator", None, "reg");
    let a = party(&admin, "enterprise", 1);
    let bx = party(&admin, "bank", 2);
    let b = party(&admin, "enterprise", 3);
    let by = party(&admin, "bank", 4);
    // The counterparty of transfers: neither caller, so that enterprise B is an outsider to all.
    let c = party(&admin, "enterprise", 5);
    let ent_a = user(&admin, "enterprise", Some(a), "ent-a");
    let ent_b = user(&admin, "enterprise", Some(b), "ent-b");
    let bank_x = user(&admin, "bank", Some(bx), "bank-x");
    let bank_y = user(&admin, "bank", Some(by), "bank-y");
    // A user the matrix may disable and revoke without touching the callers.
    let made = srv
        .user_admin()
        .post(
            "/v1/users",
            &json!({"username": "victim", "password": "victim-password-long", "role": "enterprise", "party_id": a}),
        )
        .expect(201);
    common::admit(&srv.api(), &made.body);
    let users = admin.get("/v1/users").expect(200);
    let victim = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "victim")
        .map(|u| u["id"].to_string())
        .expect("victim listed");

    let lot = issue(
        &admin,
        &checker,
        lot_request("EM", a, "1000", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    let p = ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "100", "lender_party_id": bx}),
        )
        .expect(201);
    let pledge = id_of(&p, "pledge");
    let acc = bank_x
        .post_key(
            &format!("/v1/pledges/{pledge}/accept"),
            &key(),
            &json!({"secured_amount": "150000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "LOAN-REF", "appraisal_value": "200000.00", "appraiser": "评估", "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let registration_no = acc.body["registration_no"].as_str().unwrap().to_string();
    // A financing request of A's, offering part of its holding (before A is flagged below).
    let financing_request = id_of(
        &ent_a.post_key(
            "/v1/financing-requests",
            &key(),
            &json!({"amount": "100000.00", "term_months": 12, "purpose": "茶园改造", "green_tag": "none",
                "collateral": {"lot_id": lot, "quantity": "10"}}),
        ),
        "financing request",
    );
    let cert = bank_x
        .post(
            "/v1/search-certificates",
            &json!({"grantor_uscc": common::uscc(1)}),
        )
        .expect(201);
    let cert_no = cert.body["statement"]["certificate_no"]
        .as_str()
        .unwrap()
        .to_string();
    let objection = id_of(
        &ent_a.post(
            &format!("/v1/encumbrances/{registration_no}/objections"),
            &json!({"reason": "登记有误"}),
        ),
        "objection",
    );
    let transfer = id_of(
        &ent_a.post_key(
            "/v1/transfers",
            &key(),
            &json!({"lot_id": lot, "quantity": "10", "to_party_id": c, "unit_price": "6300", "years": 4}),
        ),
        "transfer",
    );
    let proposal = id_of(
        &admin.post_key(
            "/v1/lots",
            &key(),
            &lot_request("EM", a, "5", "南环有偿〔2026〕16号"),
        ),
        "proposal",
    );
    let freeze = id_of(
        &admin.post_key(
            "/v1/judicial-freezes",
            &key(),
            &json!({"case_no": "(2026)闽0702执保123号", "court": "南平市延平区人民法院", "document_ref": "协助执行通知书 2026-118",
                "lot_id": lot, "party_id": a, "quantity": "50"}),
        ),
        "judicial freeze",
    );
    let webhook = id_of(
        &bank_x.post(
            "/v1/webhooks",
            &json!({"url": "http://127.0.0.1:9/registry-events"}),
        ),
        "webhook",
    );
    let flag = id_of(
        &admin.post(
            &format!("/v1/parties/{a}/compliance-flags"),
            &json!({"flag": "over_emission", "reason": "测试"}),
        ),
        "compliance flag",
    );
    // The market: a listing of A's, a trade of it bought by C, an auction of A's quantity.
    let ent_c = user(&admin, "enterprise", Some(c), "ent-c");
    let listing = id_of(
        &ent_a.post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": lot, "quantity": "20", "unit_price": "6500", "years": 3, "min_lot": "1",
                "ends_at": "2026-12-31T00:00:00Z"}),
        ),
        "listing",
    );
    let trade = id_of(
        &ent_c.post_key(
            &format!("/v1/listings/{listing}/purchases"),
            &key(),
            &json!({"quantity": "1"}),
        ),
        "trade",
    );
    let auction = id_of(
        &common::two_person_reply(
            &admin,
            "/v1/auctions",
            &key(),
            &json!({"lot_id": lot, "seller_party_id": a, "quantity": "20", "reserve_price": "1419",
                "increment": "10", "min_bid": "1", "max_bid": "20", "years": 3,
                "opens_at": "2026-12-01T00:00:00Z", "closes_at": "2026-12-20T00:00:00Z", "sealed": false, "deposit": "0"}),
        ),
        "auction",
    );
    let spec = spec();
    let mut parcel_body = example(&spec, "RegisterParcel");
    parcel_body["holder_party_id"] = json!(a);
    // Registering a parcel takes two persons: the operator proposes, the checker approves.
    let proposed = id_of(
        &admin.post("/v1/forest-rights", &parcel_body),
        "parcel proposal",
    );
    let parcel = checker
        .post_key(
            &format!("/v1/proposals/{proposed}/approve"),
            &key(),
            &json!({}),
        )
        .expect(200)
        .body["result"]["id"]
        .as_i64()
        .expect("the registered parcel")
        .to_string();
    let mortgage = id_of(
        &ent_a.post(
            "/v1/forest-mortgages",
            &json!({"lender_party_id": bx, "parcel_ids": [parcel.parse::<i64>().unwrap()]}),
        ),
        "forest mortgage",
    );
    let parcel_freeze = id_of(
        &admin.post_key(
            &format!("/v1/forest-rights/{parcel}/freezes"),
            &key(),
            &json!({"case_no": "(2027)闽0721执保8号", "court": "顺昌县人民法院", "document_ref": "协助执行通知书 2027-8"}),
        ),
        "parcel freeze",
    );

    // Forged variants of a real token of the owning enterprise.
    let real = ent_a.token.clone().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut expired = claims_of(&real);
    expired["iat"] = json!(now - 7200);
    expired["nbf"] = json!(now - 7200);
    expired["exp"] = json!(now - 3600);
    let key_bytes = hex::decode(JWT_KEY_HEX).unwrap();
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    let callers = BTreeMap::from([
        ("none", None),
        ("expired", Some(sign(&hs256, &expired, &key_bytes))),
        (
            "wrongkey",
            Some(sign(
                &hs256,
                &claims_of(&real),
                b"another-key-another-key-another-key!",
            )),
        ),
        (
            "algnone",
            Some(format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&claims_of(&real))
            )),
        ),
        ("garbage", Some("not-a-token".to_string())),
        ("entA", ent_a.token.clone()),
        ("entB", ent_b.token.clone()),
        ("bankX", bank_x.token.clone()),
        ("bankY", bank_y.token.clone()),
        ("op", admin.token.clone()),
        ("reg", reg.token.clone()),
        ("entB?", ent_b.token.clone()),
        ("bankY?", bank_y.token.clone()),
        ("op?", admin.token.clone()),
    ]);
    // Sanity: the forged expired token differs from the real one only by its times, and the real
    // one (same key, same claims) is accepted.
    assert_eq!(
        Api::new(&srv.base)
            .with_token(&sign(&hs256, &claims_of(&real), &key_bytes))
            .get("/v1/holdings")
            .status
            .as_u16(),
        200,
        "a token re-signed with the configured key is valid, so the forgeries differ only as meant"
    );
    // A delivery to bank X's endpoint (its later encumbrance events were queued for it).
    let delivery = bank_x
        .get(&format!("/v1/webhooks/{webhook}/deliveries"))
        .expect(200)
        .body["items"][0]["id"]
        .as_i64()
        .expect("a delivery to bank X")
        .to_string();
    let ids = BTreeMap::from([
        ("delivery", delivery),
        ("lot", lot.to_string()),
        ("pledge", pledge),
        ("registration_no", registration_no),
        ("certificate", cert_no),
        ("transfer", transfer),
        ("proposal", proposal),
        ("judicial_freeze", freeze),
        ("objection", objection),
        ("webhook", webhook),
        ("flag", flag),
        ("parcel", parcel),
        ("mortgage", mortgage),
        ("parcel_freeze", parcel_freeze),
        ("party", a.to_string()),
        ("user", victim),
        ("listing", listing),
        ("trade", trade),
        ("auction", auction),
        ("financing_request", financing_request),
        ("import_kind", "parties".to_string()),
        ("chart", "by_county".to_string()),
    ]);
    let parties = BTreeMap::from([("A", a), ("B", b), ("C", c), ("X", bx), ("Y", by)]);
    Fixture {
        ids,
        parties,
        callers,
    }
}

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn example(spec: &Value, schema: &str) -> Value {
    spec["components"]["schemas"][schema]["example"].clone()
}

/// The object a path parameter names, by the path it is in.
fn param_value(fx: &Fixture, path: &str, param: &str) -> String {
    let key = match (param, path) {
        ("registration_no", _) => "registration_no",
        ("no", _) => "certificate",
        ("flag_id", _) => "flag",
        ("kind", _) => "import_kind",
        ("chart", _) => "chart",
        ("freeze_id", _) => "parcel_freeze",
        (_, p) if p.starts_with("/v1/lots/") => "lot",
        (_, p) if p.starts_with("/v1/pledges/") => "pledge",
        (_, p) if p.starts_with("/v1/transfers/") => "transfer",
        (_, p) if p.starts_with("/v1/proposals/") => "proposal",
        (_, p) if p.starts_with("/v1/judicial-freezes/") => "judicial_freeze",
        (_, p) if p.starts_with("/v1/objections/") => "objection",
        (_, p) if p.starts_with("/v1/webhooks/") => "webhook",
        (_, p) if p.starts_with("/v1/webhook-deliveries/") => "delivery",
        (_, p) if p.starts_with("/v1/forest-rights/") => "parcel",
        (_, p) if p.starts_with("/v1/forest-mortgages/") => "mortgage",
        (_, p) if p.starts_with("/v1/parties/") => "party",
        (_, p) if p.starts_with("/v1/users/") => "user",
        (_, p) if p.starts_with("/v1/listings/") => "listing",
        (_, p) if p.starts_with("/v1/trades/") => "trade",
        (_, p) if p.starts_with("/v1/auctions/") => "auction",
        (_, p) if p.starts_with("/v1/financing-requests/") => "financing_request",
        _ => panic!("no fixture for {param} in {path}"),
    };
    fx.ids[key].clone()
}

/// The spec's example body with the fixture's ids put in.
fn body_for(spec: &Value, fx: &Fixture, op: &Value) -> Option<Value> {
    let schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str()?;
    let name = schema.rsplit('/').next().unwrap_or("");
    let mut body = example(spec, name);
    if body.is_null() {
        // No example: the required fields, with plausible values.
        body = json!({});
        for f in spec["components"]["schemas"][name]["required"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let f = f.as_str().unwrap();
            body[f] = match f {
                "amendment_code" => json!("K7PQ2M9XW4RT8HZN"),
                "period_end" => json!("2029-12-31"),
                _ => json!("测试 2027-1"),
            };
        }
    }
    fn fill(v: &mut Value, fx: &Fixture) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    let party = match k.as_str() {
                        "lender_party_id" | "beneficiary_party_id" => Some("X"),
                        "to_party_id" | "buyer_party_id" | "new_holder_party_id" => Some("C"),
                        "party_id" | "holder_party_id" | "from_party_id" | "seller_party_id" => {
                            Some("A")
                        }
                        _ => None,
                    };
                    if let Some(p) = party {
                        *v = json!(fx.parties[p]);
                    } else if k == "lot_id" {
                        *v = json!(fx.ids["lot"].parse::<i64>().unwrap());
                    } else if k == "parcel_ids" {
                        *v = json!([fx.ids["parcel"].parse::<i64>().unwrap()]);
                    } else if k == "grantor_uscc" {
                        *v = json!(common::uscc(1));
                    } else {
                        fill(v, fx);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| fill(v, fx)),
            _ => {}
        }
    }
    fill(&mut body, fx);
    Some(body)
}

fn call(
    client: &reqwest::blocking::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let mut r = client.request(m, format!("{base}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if method == "post" {
        r = r.header("Idempotency-Key", key());
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = serde_json::from_str(&r.text().unwrap_or_default()).unwrap_or(Value::Null);
    if status == 401 {
        assert!(
            ct.starts_with("application/problem+json"),
            "{method} {path}: a 401 is a problem"
        );
    }
    (status, body)
}

fn matrix(b: Backend) {
    let db = Db::fresh(b);
    let key_file = db.dir.path().join("jwt.key");
    // A key file must be private (0600), or the server refuses it.
    std::fs::write(&key_file, JWT_KEY_HEX).unwrap();
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&key_file, private).unwrap();
    let srv = Server::on_with(
        db,
        &[
            "--jwt-key-file",
            key_file.to_str().unwrap(),
            "--webhook-allow-http",
            "127.0.0.1:9",
            // The spec's example endpoint is registered too: its name is answered here, with an
            // address deliveries refuse, so no look-up or delivery leaves this machine.
            "--webhook-test-resolve",
            "hooks.bank.example=127.0.0.1",
        ],
    );
    let fx = fixture(&srv);
    let spec = spec();
    let client = reqwest::blocking::Client::new();
    let mut table = Vec::new();
    let mut problems = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let security = op["security"].as_array().cloned().unwrap_or_default();
            let needs_login = !security.iter().any(|s| s == &json!({}));
            // Operations that read a token (required, or optional as in verification by code):
            // a token that is sent must be valid.
            let takes_token = security.iter().any(|s| s.get("bearer").is_some());
            let body = body_for(&spec, &fx, op);
            let has_params = path.contains('{');
            let real_path = |missing: bool| {
                let mut out = String::new();
                for seg in path.split('/').skip(1) {
                    out.push('/');
                    match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(_) if missing => out.push_str(&MISSING.to_string()),
                        Some(p) => out.push_str(&param_value(&fx, path, p)),
                        None => out.push_str(seg),
                    }
                }
                out
            };
            let mut row = Vec::new();
            for caller in CALLERS {
                let missing = caller.ends_with('?');
                if missing && !has_params {
                    row.push("-".to_string());
                    continue;
                }
                let token = fx.callers[caller].as_deref();
                let (status, reply) = call(
                    &client,
                    &srv.base,
                    method,
                    &real_path(missing),
                    token,
                    body.as_ref(),
                );
                if status >= 500 {
                    problems.push(format!("{method} {path} as {caller}: {status} {reply}"));
                }
                let bad_token = ["expired", "wrongkey", "algnone", "garbage"].contains(&caller);
                if bad_token && takes_token && status != 401 {
                    problems.push(format!(
                        "{method} {path} with a {caller} token: {status}, want 401"
                    ));
                }
                if caller == "none" && needs_login && status != 401 {
                    problems.push(format!(
                        "{method} {path} without a token: {status}, want 401"
                    ));
                }
                row.push(status.to_string());
            }
            // No existence leak: a non-owner sees a real object as it sees a missing one, unless
            // it may see it.
            // Listings, auctions and trades are public market data (docs/design.md §5): their
            // existence is no secret, so an action refused on a real one may differ from a missing
            // one.
            let public = ["/v1/listings/", "/v1/auctions/", "/v1/trades/"]
                .iter()
                .any(|p| path.starts_with(p));
            if has_params && !public {
                for (real, missing) in [(5, 11), (6, 12)] {
                    let (r, m) = (&row[real], &row[missing]);
                    if r != m && !r.starts_with('2') {
                        problems.push(format!(
                            "{method} {path}: {} gets {r} on a real object but {m} on a missing one",
                            CALLERS[real]
                        ));
                    }
                }
            }
            if has_params && row[13].starts_with('2') {
                problems.push(format!(
                    "{method} {path}: an operator gets {} on an object that does not exist",
                    row[13]
                ));
            }
            table.push(format!(
                "{:<6} {:<48} {}",
                method.to_ascii_uppercase(),
                path,
                row.join(" ")
            ));
        }
    }
    let actual = table.join("\n");
    let expected: Vec<&str> = EXPECTED
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let mismatches: Vec<String> = table
        .iter()
        .zip(expected.iter().chain(std::iter::repeat(&"(missing)")))
        .filter(|(a, e)| normalize(a) != normalize(e))
        .map(|(a, e)| format!("  want {e}\n  got  {a}"))
        .collect();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\n\nthe table:\n{actual}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        mismatches.is_empty() && expected.len() == table.len(),
        "the matrix changed ({} rows differ; {} expected, {} run):\n{}\n\nthe whole table, to paste after review:\n{actual}",
        mismatches.len(),
        expected.len(),
        table.len(),
        mismatches.join("\n")
    );
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// METHOD PATH, then the status for each of CALLERS: none expired wrongkey algnone garbage |
/// entB bankY reg entA bankX op | entB, bankY and op on a missing object ("-" without a path id).
const EXPECTED: &str = r#"
GET    /healthz                                         200 200 200 200 200 200 200 200 200 200 200 - - -
GET    /readyz                                          200 200 200 200 200 200 200 200 200 200 200 - - -
POST   /v1/api-clients                                  401 401 401 401 401 403 403 403 403 403 403 - - -
GET    /v1/auctions                                     401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/auctions                                     401 401 401 401 401 403 403 403 403 403 202 - - -
GET    /v1/auctions/{id}                                401 401 401 401 401 200 200 200 200 200 200 404 404 404
POST   /v1/auctions/{id}/bidders                        401 401 401 401 401 403 403 403 403 403 422 403 403 404
GET    /v1/auctions/{id}/bids                           401 401 401 401 401 200 200 200 200 200 200 404 404 404
POST   /v1/auctions/{id}/bids                           401 401 401 401 401 422 403 403 422 403 403 404 403 403
POST   /v1/auctions/{id}/cancel                         401 401 401 401 401 403 403 403 403 403 202 403 403 404
POST   /v1/auctions/{id}/close                          401 401 401 401 401 403 403 403 403 403 409 403 403 404
GET    /v1/audit/checkpoints                            401 401 401 401 401 403 200 200 403 200 200 - - -
POST   /v1/audit/checkpoints                            401 401 401 401 401 403 403 403 403 403 201 - - -
GET    /v1/audit/verify                                 401 401 401 401 401 403 403 200 403 403 200 - - -
POST   /v1/auth/password                                401 401 401 401 401 401 401 401 401 401 429 - - -
POST   /v1/auth/token                                   401 401 401 401 401 401 401 401 401 401 429 - - -
GET    /v1/benchmark-prices                             401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/benchmark-prices                             401 401 401 401 401 403 403 403 403 403 202 - - -
POST   /v1/collateral/sweep                             401 401 401 401 401 403 403 403 403 403 200 - - -
GET    /v1/encumbrances                                 401 401 401 401 401 200 422 422 200 422 422 - - -
GET    /v1/encumbrances/{registration_no}               404 401 401 401 401 404 200 200 200 200 200 404 404 404
POST   /v1/encumbrances/{registration_no}/objections    401 401 401 401 401 404 404 403 409 404 403 404 404 403
GET    /v1/financing-requests                           401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/financing-requests                           401 401 401 401 401 404 403 403 409 403 403 - - -
GET    /v1/financing-requests/feed                      401 401 401 401 401 403 403 200 403 403 200 - - -
GET    /v1/financing-requests/settings                  401 401 401 401 401 200 200 200 200 200 200 - - -
PUT    /v1/financing-requests/settings                  401 401 401 401 401 403 403 403 403 403 200 - - -
POST   /v1/financing-requests/sweep                     401 401 401 401 401 403 403 403 403 403 200 - - -
GET    /v1/financing-requests/{id}                      401 401 401 401 401 404 200 200 200 200 200 404 404 404
POST   /v1/financing-requests/{id}/decline              401 401 401 401 401 403 404 403 403 404 403 403 404 403
POST   /v1/financing-requests/{id}/take                 401 401 401 401 401 403 200 403 403 409 403 403 404 403
POST   /v1/financing-requests/{id}/withdraw             401 401 401 401 401 404 403 403 200 403 403 404 403 403
GET    /v1/forest-mortgages                             401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/forest-mortgages                             401 401 401 401 401 404 403 403 409 403 403 - - -
GET    /v1/forest-mortgages/{id}                        401 401 401 401 401 404 404 200 200 200 200 404 404 404
POST   /v1/forest-mortgages/{id}/complete               401 401 401 401 401 403 404 403 403 409 403 403 404 403
GET    /v1/forest-mortgages/{id}/credit-enhancements    401 401 401 401 401 404 404 200 200 200 200 404 404 404
POST   /v1/forest-mortgages/{id}/credit-enhancements    401 401 401 401 401 403 404 403 403 201 409 403 404 404
POST   /v1/forest-mortgages/{id}/dispose                401 401 401 401 401 403 403 403 403 403 409 403 403 404
POST   /v1/forest-mortgages/{id}/enforce                401 401 401 401 401 403 404 403 403 409 403 403 404 403
POST   /v1/forest-mortgages/{id}/official-registration  401 401 401 401 401 403 404 403 403 409 409 403 404 404
POST   /v1/forest-mortgages/{id}/official-registration/confirm 401 401 401 401 401 403 403 403 403 403 409 403 403 404
POST   /v1/forest-mortgages/{id}/official-registration/reject 401 401 401 401 401 403 403 403 403 403 409 403 403 404
POST   /v1/forest-mortgages/{id}/release                401 401 401 401 401 403 404 403 403 409 403 403 404 403
GET    /v1/forest-rights                                401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/forest-rights                                401 401 401 401 401 403 403 403 403 403 409 - - -
GET    /v1/forest-rights/{id}                           401 401 401 401 401 404 404 200 200 200 200 404 404 404
POST   /v1/forest-rights/{id}/freezes                   401 401 401 401 401 403 403 403 403 403 201 403 403 404
POST   /v1/forest-rights/{id}/freezes/{freeze_id}/lift  401 401 401 401 401 403 403 403 403 403 202 403 403 404
POST   /v1/forest-rights/{id}/holder-changes            401 401 401 401 401 403 403 403 403 403 409 403 403 404
POST   /v1/forest-rights/{id}/split                     401 401 401 401 401 403 403 403 403 403 409 403 403 404
GET    /v1/holdings                                     401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/imports/{kind}                               401 401 401 401 401 403 403 403 403 403 415 403 403 404
GET    /v1/judicial-freezes                             401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/judicial-freezes                             401 401 401 401 401 403 403 403 403 403 201 - - -
POST   /v1/judicial-freezes/{id}/lift                   401 401 401 401 401 403 403 403 403 403 202 403 403 404
GET    /v1/lender-products                              401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/lender-products                              401 401 401 401 401 403 403 403 403 403 202 - - -
GET    /v1/listings                                     401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/listings                                     401 401 401 401 401 404 403 403 201 403 422 - - -
GET    /v1/listings/{id}                                401 401 401 401 401 200 200 200 200 200 200 404 404 404
POST   /v1/listings/{id}/purchases                      401 401 401 401 401 201 403 403 422 403 403 404 403 403
POST   /v1/listings/{id}/withdraw                       401 401 401 401 401 403 403 403 200 403 409 404 403 404
GET    /v1/lots                                         401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/lots                                         401 401 401 401 401 403 403 403 403 403 409 - - -
GET    /v1/lots/{id}                                    401 401 401 401 401 404 404 200 200 404 200 404 404 404
POST   /v1/lots/{id}/cancellations                      401 401 401 401 401 403 403 403 403 403 202 403 403 404
GET    /v1/lots/{id}/history                            401 401 401 401 401 404 404 200 200 404 200 404 404 404
GET    /v1/lots/{id}/serials                            401 401 401 401 401 403 403 200 403 403 200 403 403 404
GET    /v1/market/chart.svg                             401 401 401 401 401 422 422 422 422 422 422 - - -
GET    /v1/market/ohlc                                  401 401 401 401 401 422 422 422 422 422 422 - - -
GET    /v1/market/settings                              401 401 401 401 401 200 200 200 200 200 200 - - -
PUT    /v1/market/settings                              401 401 401 401 401 403 403 403 403 403 202 - - -
GET    /v1/market/summary                               401 401 401 401 401 422 422 422 422 422 422 - - -
POST   /v1/market/sweep                                 401 401 401 401 401 403 403 403 403 403 200 - - -
POST   /v1/objections/{id}/resolve                      401 401 401 401 401 403 403 403 403 403 200 403 403 404
POST   /v1/objections/{id}/withdraw                     401 401 401 401 401 404 404 403 409 404 403 404 404 403
GET    /v1/parties                                      401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/parties                                      401 401 401 401 401 403 403 403 403 403 201 - - -
GET    /v1/parties/{id}                                 401 401 401 401 401 404 404 200 200 404 200 404 404 404
POST   /v1/parties/{id}/changes                         401 401 401 401 401 403 403 403 403 403 200 403 403 404
GET    /v1/parties/{id}/compliance-flags                401 401 401 401 401 404 404 200 200 404 200 404 404 404
POST   /v1/parties/{id}/compliance-flags                401 401 401 401 401 403 403 201 403 403 201 403 403 404
POST   /v1/parties/{id}/compliance-flags/{flag_id}/clear 401 401 401 401 401 403 403 200 403 403 404 403 403 404
GET    /v1/parties/{id}/environmental-credit            401 401 401 401 401 404 200 200 200 200 200 404 404 404
POST   /v1/parties/{id}/environmental-credit            401 401 401 401 401 403 403 201 403 403 403 403 403 403
GET    /v1/parties/{id}/history                         401 401 401 401 401 404 404 200 200 404 200 404 404 404
GET    /v1/parties/{id}/holdings                        401 401 401 401 401 404 404 200 200 200 200 404 404 404
GET    /v1/pledges                                      401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/pledges                                      401 401 401 401 401 404 403 403 409 403 403 - - -
GET    /v1/pledges/{id}                                 401 401 401 401 401 404 404 200 200 200 200 404 404 404
POST   /v1/pledges/{id}/accept                          401 401 401 401 401 403 404 403 403 409 403 403 404 403
POST   /v1/pledges/{id}/amend                           401 401 401 401 401 403 404 403 403 403 403 403 404 403
POST   /v1/pledges/{id}/amendment-code                  401 401 401 401 401 403 404 403 403 403 403 403 404 403
POST   /v1/pledges/{id}/amendment-code/reset            401 401 401 401 401 403 403 403 403 403 202 403 403 404
GET    /v1/pledges/{id}/credit-enhancements             401 401 401 401 401 404 404 200 200 200 200 404 404 404
POST   /v1/pledges/{id}/credit-enhancements             401 401 401 401 401 403 404 403 403 201 409 403 404 404
POST   /v1/pledges/{id}/dispose                         401 401 401 401 401 403 403 403 403 403 409 403 403 404
POST   /v1/pledges/{id}/enforce                         401 401 401 401 401 403 404 403 403 403 403 403 404 403
POST   /v1/pledges/{id}/release                         401 401 401 401 401 403 404 403 403 403 403 403 404 403
POST   /v1/pledges/{id}/renew                           401 401 401 401 401 403 404 403 403 403 403 403 404 403
GET    /v1/pledges/{id}/valuation                       401 401 401 401 401 404 404 200 200 200 200 404 404 404
POST   /v1/pledges/{id}/withdraw                        401 401 401 401 401 404 404 403 409 409 403 404 404 403
GET    /v1/proposals                                    401 401 401 401 401 403 403 200 403 403 200 - - -
GET    /v1/proposals/{id}                               401 401 401 401 401 403 403 200 403 403 200 403 403 404
POST   /v1/proposals/{id}/approve                       401 401 401 401 401 403 403 403 403 403 403 403 403 404
POST   /v1/proposals/{id}/reject                        401 401 401 401 401 403 403 403 403 403 403 403 403 404
GET    /v1/region-flags                                 401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/region-flags                                 401 401 401 401 401 403 403 202 403 403 202 - - -
GET    /v1/registry-keys                                200 200 200 200 200 200 200 200 200 200 200 - - -
GET    /v1/retirements                                  401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/retirements                                  401 401 401 401 401 404 403 403 409 403 422 - - -
GET    /v1/right-types                                  401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/search-certificates                          401 401 401 401 401 403 201 201 201 201 201 - - -
GET    /v1/search-certificates/{no}                     401 401 401 401 401 200 200 200 200 200 200 404 404 404
GET    /v1/statistics/green-finance                     401 401 401 401 401 403 403 200 403 403 200 - - -
GET    /v1/statistics/green-finance/charts/{chart}      401 401 401 401 401 403 403 200 403 403 200 403 403 404
GET    /v1/trades                                       401 401 401 401 401 200 200 200 200 200 200 - - -
GET    /v1/trades/{id}                                  401 401 401 401 401 200 200 200 200 200 200 404 404 404
POST   /v1/trades/{id}/payment                          401 401 401 401 401 403 403 403 200 403 409 404 404 404
GET    /v1/transfers                                    401 401 401 401 401 200 200 200 200 200 200 - - -
POST   /v1/transfers                                    401 401 401 401 401 404 403 403 201 403 403 - - -
POST   /v1/transfers/forced                             401 401 401 401 401 403 403 403 403 403 202 - - -
POST   /v1/transfers/registered                         401 401 401 401 401 403 403 403 403 403 202 - - -
GET    /v1/transfers/{id}                               401 401 401 401 401 404 404 200 200 404 200 404 404 404
POST   /v1/transfers/{id}/approve                       401 401 401 401 401 404 404 403 403 404 409 404 404 404
POST   /v1/transfers/{id}/cancel                        401 401 401 401 401 404 404 403 200 404 403 404 404 404
POST   /v1/transfers/{id}/confirm                       401 401 401 401 401 404 404 403 403 404 403 404 404 404
POST   /v1/transfers/{id}/reject                        401 401 401 401 401 404 404 403 403 404 409 404 404 404
GET    /v1/users                                        401 401 401 401 401 403 403 200 403 403 200 - - -
POST   /v1/users                                        401 401 401 401 401 403 403 403 403 403 403 - - -
POST   /v1/users/{id}/disable                           401 401 401 401 401 403 403 403 403 403 403 403 403 403
POST   /v1/users/{id}/enable                            401 401 401 401 401 403 403 403 403 403 403 403 403 403
POST   /v1/users/{id}/reset-password                    401 401 401 401 401 403 403 403 403 403 403 403 403 403
POST   /v1/users/{id}/revoke-tokens                     401 401 401 401 401 403 403 403 403 403 403 403 403 403
GET    /v1/valuations                                   401 401 401 401 401 422 422 422 422 422 422 - - -
GET    /v1/webhook-deliveries                           401 401 401 401 401 403 403 200 403 403 200 - - -
POST   /v1/webhook-deliveries/{id}/requeue              401 401 401 401 401 403 404 403 403 409 409 403 404 404
GET    /v1/webhooks                                     401 401 401 401 401 403 200 403 403 200 403 - - -
POST   /v1/webhooks                                     401 401 401 401 401 403 201 403 403 201 403 - - -
GET    /v1/webhooks/{id}/deliveries                     401 401 401 401 401 403 404 200 403 200 200 403 404 404
POST   /v1/webhooks/{id}/disable                        401 401 401 401 401 403 404 403 403 200 403 403 404 403
"#;

both_backends!(matrix);
