//! What a client can read out of the registry beyond what it may: the ID-number oracle and mask
//! (R15), database text in server errors, the /verify page's session and form posts, public
//! metrics, unbounded lists, records kept forever, and loose dependency versions.

mod common;

use chrono::{Duration as Days, Utc};
use common::{party, user, Api, Backend, Server};
use diesel::prelude::*;
use serde_json::{json, Value};
use std::time::Duration;

/// An 18-digit resident ID number with its right check digit, from its first 17 digits.
fn id_number(body17: &str) -> String {
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const C: &[u8; 11] = b"10X98765432";
    let sum: u32 = body17
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body17}{}", C[(sum % 11) as usize] as char)
}

fn individual(admin: &Api, name: &str, number: &str) -> i64 {
    admin
        .post(
            "/v1/parties",
            &json!({"kind": "individual", "name_zh": name, "id_number": number, "region_code": "350721"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap()
}

fn bearer(base: &str, method: reqwest::Method, path: &str, token: Option<&str>) -> (u16, String) {
    let mut r = reqwest::blocking::Client::new().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let res = r.send().unwrap();
    (res.status().as_u16(), res.text().unwrap_or_default())
}

/// The mask keeps only the province: no county, no birth date, no sequence digit, no check digit.
fn mask_shows_only_the_province(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let number = id_number("35072119650312457");
    let id = individual(&admin, "林木生", &number);
    let p = admin.get(&format!("/v1/parties/{id}")).expect(200);
    let masked = p.body["id_number_masked"].as_str().unwrap().to_string();
    assert_eq!(masked, "35****************");
    assert!(!masked.ends_with(&number[14..]) && !masked.starts_with(&number[..4]));
    // The same mask on a search by the full number, and on the encumbrance search.
    let r = admin
        .get(&format!("/v1/parties?id_number={number}"))
        .expect(200);
    assert_eq!(r.body["items"][0]["id_number_masked"], "35****************");
    let r = admin
        .get(&format!("/v1/encumbrances?grantor_id_number={number}"))
        .expect(200);
    assert_eq!(r.body["grantor"]["id_number_masked"], "35****************");
}

/// Every way a bank can look a person up by ID number counts against one daily quota per bank
/// (all its users, every process); each look-up is audited with a keyed hash, never the number.
fn id_number_lookups_are_limited_and_audited(b: Backend) {
    let db = common::Db::fresh(b);
    let srv = Server::on_with(db.clone(), &["--id-lookup-daily-quota", "3"]);
    let admin = srv.admin();
    let farmer_no = id_number("35072119650312457");
    let farmer = individual(&admin, "林木生", &farmer_no);
    let bank = party(&admin, "bank", 2);
    let ent = party(&admin, "enterprise", 1);
    let banker1 = user(&admin, "bank", Some(bank), "banker1");
    let banker2 = user(&admin, "bank", Some(bank), "banker2");
    let farmer_user = user(&admin, "enterprise", Some(farmer), "farmer");

    // A bank verifying a borrower searches by the full number (R15): three look-ups, three ways.
    let r = banker1
        .get(&format!("/v1/parties?id_number={farmer_no}"))
        .expect(200);
    assert_eq!(r.body["items"][0]["id"], farmer);
    let r = banker1
        .get(&format!("/v1/encumbrances?grantor_id_number={farmer_no}"))
        .expect(200);
    assert_eq!(r.body["grantor_registered"], true);
    banker2
        .post(
            "/v1/search-certificates",
            &json!({"grantor_id_number": farmer_no}),
        )
        .expect(201);
    // The fourth is refused, for every user of that bank and through every route.
    let guess = id_number("35072119650312458");
    let r = banker2.get(&format!("/v1/parties?id_number={guess}"));
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.code(), "id_lookup_quota_exceeded");
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry), "until the next UTC midnight");
    let r = banker1.get(&format!("/v1/encumbrances?grantor_id_number={guess}"));
    assert_eq!(r.code(), "id_lookup_quota_exceeded");
    let r = banker1.post(
        "/v1/search-certificates",
        &json!({"grantor_id_number": guess}),
    );
    assert_eq!(r.code(), "id_lookup_quota_exceeded");
    // The forest-rights search by holder ID number is a look-up like the others (it once was
    // neither counted nor audited).
    let r = banker1.get(&format!("/v1/forest-rights?holder_id_number={guess}"));
    assert_eq!(r.code(), "id_lookup_quota_exceeded");
    // The count is in the database: another process refuses too.
    let other = Server::on_with(db.clone(), &["--id-lookup-daily-quota", "3"]);
    let r = other
        .api()
        .login("banker1", common::own_password("banker1").as_str())
        .get(&format!("/v1/parties?id_number={guess}"));
    assert_eq!(r.code(), "id_lookup_quota_exceeded");
    // Searches by credit code are not look-ups by ID number.
    banker1
        .get(&format!(
            "/v1/encumbrances?grantor_uscc={}",
            common::uscc(1)
        ))
        .expect(200);
    let _ = ent;
    // Operators are audited, not limited; an individual still finds their own encumbrances.
    for _ in 0..4 {
        admin
            .get(&format!("/v1/parties?id_number={farmer_no}"))
            .expect(200);
    }
    let own = farmer_user.get("/v1/encumbrances").expect(200);
    assert_eq!(own.body["grantor"]["party_id"], farmer);
    farmer_user
        .get(&format!("/v1/encumbrances?grantor_id_number={farmer_no}"))
        .expect(200);
    // A new day (UTC), a new quota.
    let tomorrow = (Utc::now() + Days::days(1)).to_rfc3339();
    admin.set_clock(&tomorrow);
    banker1
        .get(&format!("/v1/parties?id_number={farmer_no}"))
        .expect(200);

    // The audit trail: who and when, with a keyed hash of the number and never the number.
    use registry::schema::audit_events as ev;
    let mut conn = registry::db::establish(&db.url).unwrap();
    let rows: Vec<(String, String, String)> = ev::table
        .filter(ev::action.eq("party.id_number_lookup"))
        .select((ev::actor, ev::object_id, ev::payload))
        .load(&mut conn)
        .unwrap();
    let by_bank = rows.iter().filter(|r| r.0.starts_with("bank:")).count();
    assert_eq!(by_bank, 4, "three admitted today, one tomorrow: {rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r.0 == "operator:op-admin").count(),
        4
    );
    assert!(rows.iter().any(|r| r.0 == "enterprise:farmer"));
    for (_, hash, payload) in &rows {
        assert_eq!(hash.len(), 64, "a keyed hash");
        assert!(hash.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(!payload.contains(&farmer_no) && !payload.contains(&farmer_no[..17]));
        assert!(!payload.contains(&guess[..17]));
    }
}

/// A 500 tells the client nothing about the database: a generic problem with a correlation id,
/// whose details are in the log under that id.
fn server_errors_carry_no_database_text(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 2);
    let banker = user(&admin, "bank", Some(bank), "banker");
    let mut conn = registry::db::establish(&srv.db.url).unwrap();
    diesel::sql_query("DROP TABLE search_certificates")
        .execute(&mut conn)
        .unwrap();
    let r = banker.get("/v1/search-certificates/NPCX-20261130-ABCDEFGH");
    assert_eq!(r.status, 500);
    assert_eq!(r.code(), "internal_error");
    let text = r.body.to_string().to_lowercase();
    for leak in [
        "search_certificates",
        "table",
        "no such",
        "does not exist",
        "database",
        "sql",
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
    let id = r.body["correlation_id"].as_str().unwrap().to_string();
    assert!(r.body["detail"].as_str().unwrap().contains(&id));
    assert!(common::eventually(Duration::from_secs(5), || {
        let log = std::fs::read_to_string(&srv.log).unwrap_or_default();
        log.lines()
            .any(|l| l.contains(&id) && l.contains("search_certificates"))
    }));
}

/// A browser-like client for /verify: no redirects, the session cookie carried by hand.
struct Browser {
    base: String,
    client: reqwest::blocking::Client,
    cookie: Option<String>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn send(&mut self, r: reqwest::blocking::RequestBuilder) -> (u16, String) {
        let r = match &self.cookie {
            Some(c) => r.header("cookie", c),
            None => r,
        };
        let res = r.send().unwrap();
        if let Some(c) = res.headers().get("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap().to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        (res.status().as_u16(), res.text().unwrap_or_default())
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        let r = self.client.get(format!("{}{path}", self.base));
        self.send(r)
    }

    fn post(&mut self, path: &str, origin: Option<&str>, form: &str) -> (u16, String) {
        let mut r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        self.send(r)
    }
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    html[at..at + 64].to_string()
}

/// The page's session is for bank users, is not an API token, and ends at logout; form posts
/// without this site's Origin are refused.
fn page_session_is_bank_only_and_ends_at_logout(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 2);
    let _banker = user(&admin, "bank", Some(bank), "banker");
    let origin = srv.base.clone();
    let login = &format!(
        "username=banker&password={}",
        common::own_password("banker")
    );

    // No Origin, or another site's: refused, no session.
    let mut br = Browser::new(&srv.base);
    assert_eq!(br.post("/verify/login", None, login).0, 403);
    assert!(br.cookie.is_none());
    assert_eq!(
        br.post("/verify/login", Some("https://evil.example"), login)
            .0,
        403
    );
    assert!(br.cookie.is_none());
    // An operator cannot open a page session.
    let (status, _) = br.post(
        "/verify/login",
        Some(&origin),
        &format!("username=admin&password={}", common::ADMIN_PASSWORD),
    );
    assert_eq!(status, 403);
    assert!(br.cookie.is_none());

    // A bank user can; the cookie is no API token.
    assert_eq!(br.post("/verify/login", Some(&origin), login).0, 303);
    let cookie = br.cookie.clone().unwrap();
    let value = cookie.split_once('=').unwrap().1.to_string();
    let (status, _) = bearer(
        &srv.base,
        reqwest::Method::GET,
        &format!("/v1/encumbrances?grantor_uscc={}", common::uscc(1)),
        Some(&value),
    );
    assert_eq!(status, 401);
    let (status, html) = br.get("/verify/search");
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    // A logged-in form post without an Origin is refused even with the form token.
    assert_eq!(
        br.post("/verify/logout", None, &format!("csrf={csrf}")).0,
        403
    );
    assert_eq!(br.get("/verify/search").0, 200, "still logged in");
    // Logout ends the session behind the cookie, not only the cookie.
    assert_eq!(
        br.post("/verify/logout", Some(&origin), &format!("csrf={csrf}"))
            .0,
        303
    );
    assert!(br.cookie.is_none());
    br.cookie = Some(cookie);
    assert_eq!(br.get("/verify/search").0, 401, "the old cookie is dead");
}

/// `/metrics` needs an operator's token or the configured metrics secret.
fn metrics_are_not_public(b: Backend) {
    let db = common::Db::fresh(b);
    let srv = Server::on_with(db, &["--metrics-token", "metrics-secret-0123456789"]);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 2);
    let banker = user(&admin, "bank", Some(bank), "banker");
    let get = |t: Option<&str>| bearer(&srv.base, reqwest::Method::GET, "/metrics", t);
    assert_eq!(get(None).0, 401);
    assert_eq!(get(Some("wrong")).0, 401);
    assert_eq!(get(banker.token.as_deref()).0, 401);
    let (status, body) = get(admin.token.as_deref());
    assert_eq!(status, 200);
    assert!(body.contains("registry_http_requests_total"));
    assert_eq!(get(Some("metrics-secret-0123456789")).0, 200);
}

/// A known path with another method is a 405 with `Allow`, the spec document too.
fn spec_document_answers_405(b: Backend) {
    let srv = Server::start(b);
    let res = reqwest::blocking::Client::new()
        .delete(format!("{}/openapi.json", srv.base))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    let v: Value = res.json().unwrap();
    assert_eq!(v["code"], "method_not_allowed");
}

/// Users and judicial freezes come in pages.
fn users_and_freezes_are_paged(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 2);
    for n in ["u1", "u2", "u3"] {
        user(&admin, "bank", Some(bank), n);
    }
    // Walk the pages two at a time: every principal (the user administrator, the operator, the
    // three bank users) once, in id order, and a last page without a cursor.
    let mut seen = Vec::new();
    let mut path = "/v1/users?limit=2".to_string();
    loop {
        let page = admin.get(&path).expect(200).body;
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() <= 2, "{page}");
        seen.extend(items.iter().map(|u| u["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    admin.get("/v1/users?limit=0").expect(422);
    let f = admin.get("/v1/judicial-freezes?limit=1").expect(200);
    assert!(f.body["items"].is_array());
    admin.get("/v1/judicial-freezes?limit=100000").expect(422);
}

/// Idempotency records and search certificates are swept after their retention.
fn records_are_swept_after_retention(b: Backend) {
    let db = common::Db::fresh(b);
    let srv = Server::on_with(
        db,
        &[
            "--idempotency-retention-days",
            "1",
            "--certificate-retention-days",
            "2",
            "--retention-sweep-secs",
            "1",
        ],
    );
    let admin = srv.admin();
    let bank = party(&admin, "bank", 2);
    let banker = user(&admin, "bank", Some(bank), "banker");
    let cert = banker
        .post(
            "/v1/search-certificates",
            &json!({"grantor_uscc": common::uscc(5)}),
        )
        .expect(201);
    let no = cert.body["statement"]["certificate_no"]
        .as_str()
        .unwrap()
        .to_string();
    let body = |n: u32| json!({"kind": "enterprise", "name_zh": format!("企业{n}"), "uscc": common::uscc(n), "region_code": "350702"});
    admin
        .post_key("/v1/parties", "retry-key-1", &body(7))
        .expect(201);
    // Within the retention, the key stands for its first request.
    admin
        .post_key("/v1/parties", "retry-key-1", &body(8))
        .expect(422);

    // A day and a half later: the idempotency record is gone, the certificate still verifies.
    admin.set_clock(&(Utc::now() + Days::hours(36)).to_rfc3339());
    assert!(common::eventually(Duration::from_secs(10), || admin
        .post_key("/v1/parties", "retry-key-1", &body(8))
        .status
        == 201));
    banker
        .get(&format!("/v1/search-certificates/{no}"))
        .expect(200);
    // After its retention the certificate is swept too.
    admin.set_clock(&(Utc::now() + Days::days(3)).to_rfc3339());
    assert!(common::eventually(Duration::from_secs(10), || banker
        .get(&format!("/v1/search-certificates/{no}"))
        .status
        == 404));
}

both_backends!(
    mask_shows_only_the_province,
    id_number_lookups_are_limited_and_audited,
    server_errors_carry_no_database_text,
    page_session_is_bank_only_and_ends_at_logout,
    metrics_are_not_public,
    spec_document_answers_405,
    users_and_freezes_are_paged,
    records_are_swept_after_retention,
);

/// Every dependency names a version range, none `*`, so a build cannot pick up whatever was
/// published last.
#[test]
fn dependencies_are_pinned() {
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    for line in manifest.lines() {
        let l = line.replace(' ', "");
        assert!(
            !l.contains("=\"*\"") && !l.contains("version=\"*\""),
            "unpinned dependency: {line}"
        );
    }
    assert!(manifest.contains("libsqlite3-sys = { version = \"=0.38.2\""));
}
