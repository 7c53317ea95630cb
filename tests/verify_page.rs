//! The lender verification page: a form without login, the notice for a right registration
//! number and code, a 404 page otherwise, and nothing private on it.

mod common;

use common::ledger::{issue, key, lot_request};
use common::{party, user, Backend, Server};
use serde_json::json;

fn page(base: &str, query: &str) -> (u16, String, String) {
    let r = reqwest::blocking::get(format!("{base}/verify{query}")).unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, r.text().unwrap())
}

fn verification_page(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let bank = party(&admin, "bank", 2);
    let ent = user(&admin, "enterprise", Some(a), "ent-a");
    let banker = user(&admin, "bank", Some(bank), "banker");
    let lot = issue(
        &admin,
        &checker,
        lot_request("EM", a, "100", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    let p = ent
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "40", "lender_party_id": bank}),
        )
        .expect(201);
    let acc = banker
        .post_key(
            &format!("/v1/pledges/{}/accept", p.body["id"]),
            &key(),
            &json!({"secured_amount": "150000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "LOAN-SECRET-REF-77", "appraisal_value": "200000.00", "appraiser": "评估", "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let no = acc.body["registration_no"].as_str().unwrap();
    let code = acc.body["verification_code"].as_str().unwrap();

    // The empty form, with labelled fields, no scripts and no external assets.
    let (status, ct, html) = page(&srv.base, "");
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"));
    assert!(
        html.contains("<label for=\"registration_no\">") && html.contains("id=\"registration_no\"")
    );
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));

    let (status, _, html) = page(
        &srv.base,
        &format!("?registration_no={no}&verification_code={code}"),
    );
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("已登记") && html.contains("registered"));
    assert!(html.contains(no));
    assert!(
        html.contains("150000.00"),
        "the registered secured amount is part of the notice"
    );
    assert!(
        !html.contains("LOAN-SECRET-REF-77"),
        "private terms stay off the page"
    );
    assert!(html.contains("无司法冻结"));

    let (status, _, html) = page(
        &srv.base,
        &format!("?registration_no={no}&verification_code=WRONG"),
    );
    assert_eq!(status, 404);
    assert!(html.contains("未找到"));
    // Input is escaped, never echoed as markup.
    let (_, _, html) = page(
        &srv.base,
        "?registration_no=%3Cscript%3Ex%3C%2Fscript%3E&verification_code=1",
    );
    assert!(!html.contains("<script>x</script>") && html.contains("&lt;script&gt;"));
}

/// A browser-like client for the page: no redirects followed, the session cookie carried by hand
/// (reqwest's cookie store is not enabled in this crate), and an Origin on every POST.
struct Browser {
    base: String,
    client: reqwest::blocking::Client,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    html: String,
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

    fn send(&mut self, r: reqwest::blocking::RequestBuilder) -> Page {
        let r = match &self.cookie {
            Some(c) => r.header("cookie", c),
            None => r,
        };
        let r = r.send().unwrap();
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        if let Some(c) = &set_cookie {
            let pair = c.split(';').next().unwrap().to_string();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        Page {
            status: r.status().as_u16(),
            location,
            set_cookie,
            html: r.text().unwrap(),
        }
    }

    fn get(&mut self, path: &str) -> Page {
        let r = self.client.get(format!("{}{path}", self.base));
        self.send(r)
    }

    fn post(&mut self, path: &str, origin: Option<&str>, form: &[(&str, &str)]) -> Page {
        let mut r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect();
        self.send(r.body(body.join("&")))
    }
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

fn csrf_of(html: &str) -> String {
    let mark = "name=\"csrf\" value=\"";
    let at = html.find(mark).expect("a form token") + mark.len();
    html[at..at + 64].to_string()
}

fn bank_search_and_certificate(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let other = party(&admin, "enterprise", 3);
    let bank = party(&admin, "bank", 2);
    let ent = user(&admin, "enterprise", Some(a), "ent-a");
    let banker = user(&admin, "bank", Some(bank), "banker");
    let lot = issue(
        &admin,
        &checker,
        lot_request("EM", a, "100", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    let p = ent
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "40", "lender_party_id": bank}),
        )
        .expect(201);
    let acc = banker
        .post_key(
            &format!("/v1/pledges/{}/accept", p.body["id"]),
            &key(),
            &json!({"secured_amount": "150000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "LOAN-SECRET-REF-77", "appraisal_value": "200000.00", "appraiser": "评估", "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let no = acc.body["registration_no"].as_str().unwrap().to_string();
    let code_a = common::uscc(1);
    let origin = srv.base.clone();

    let mut br = Browser::new(&srv.base);
    // Not logged in: the search and the certificate pages ask for a login, as pages.
    let pg = br.get(&format!("/verify/search?uscc={code_a}"));
    assert_eq!(pg.status, 401);
    assert!(pg.html.contains("/verify/login") && pg.html.starts_with("<!doctype html>"));
    let pg = br.post("/verify/certificates", Some(&origin), &[("uscc", &code_a)]);
    assert_eq!(pg.status, 401);
    // The login form is labelled.
    let pg = br.get("/verify/login");
    assert_eq!(pg.status, 200);
    assert!(
        pg.html.contains("<label for=\"username\">")
            && pg.html.contains("<label for=\"password\">")
    );
    // A cross-site login post is refused; a wrong password is a page, not a cookie.
    let pg = br.post(
        "/verify/login",
        Some("https://evil.example"),
        &[
            ("username", "banker"),
            ("password", common::own_password("banker").as_str()),
        ],
    );
    assert_eq!(pg.status, 403);
    assert!(pg.set_cookie.is_none());
    let pg = br.post(
        "/verify/login",
        Some(&origin),
        &[("username", "banker"), ("password", "wrong")],
    );
    assert_eq!(pg.status, 401);
    assert!(pg.set_cookie.is_none() && pg.html.contains("用户名或密码错误"));
    // A garbled form is a page too.
    let pg = br.post("/verify/login", Some(&origin), &[("username", "banker")]);
    assert_eq!(pg.status, 400);

    let pg = br.post(
        "/verify/login",
        Some(&origin),
        &[
            ("username", "banker"),
            ("password", common::own_password("banker").as_str()),
        ],
    );
    assert_eq!(pg.status, 303, "{}", pg.html);
    assert_eq!(pg.location.as_deref(), Some("/verify/search"));
    let cookie = pg.set_cookie.unwrap();
    assert!(cookie.starts_with("registry_session="), "{cookie}");
    for attr in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/verify",
        "Max-Age=3600",
    ] {
        assert!(cookie.contains(attr), "{attr} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    // The API never takes the cookie for a login.
    let api = reqwest::blocking::Client::new()
        .get(format!(
            "{}/v1/encumbrances?grantor_uscc={code_a}",
            srv.base
        ))
        .header("cookie", br.cookie.clone().unwrap())
        .send()
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);

    let pg = br.get(&format!("/verify/search?uscc={code_a}"));
    assert_eq!(pg.status, 200, "{}", pg.html);
    assert!(pg.html.contains(&no) && pg.html.contains("已登记") && pg.html.contains("150000.00"));
    assert!(pg.html.contains("banker"), "who is logged in is shown");
    assert!(!pg.html.contains("LOAN-SECRET-REF-77") && !pg.html.contains("200000.00"));
    // The same notices as the API's search, for the same bank.
    let api = banker
        .get(&format!("/v1/encumbrances?grantor_uscc={code_a}"))
        .expect(200);
    for n in api.body["encumbrances"].as_array().unwrap() {
        assert!(pg.html.contains(n["registration_no"].as_str().unwrap()));
    }
    // A borrower with nothing registered, and a malformed ID number.
    let pg = br.get(&format!("/verify/search?uscc={}", common::uscc(3)));
    assert_eq!(pg.status, 200);
    assert!(pg.html.contains("未发现有效的担保登记"));
    let _ = other;
    let csrf = csrf_of(&pg.html);
    let pg = br.post(
        "/verify/search",
        Some(&origin),
        &[("csrf", &csrf), ("id_number", "not-an-id")],
    );
    assert_eq!(pg.status, 400, "{}", pg.html);
    assert!(
        !pg.html.contains("not-an-id"),
        "an ID number is never echoed"
    );
    // Input is escaped.
    let pg = br.get("/verify/search?uscc=%3Cscript%3Ex%3C%2Fscript%3E");
    assert!(!pg.html.contains("<script>x</script>") && pg.html.contains("&lt;script&gt;"));
    // Without the form token, or from another site, no certificate.
    let pg = br.post("/verify/certificates", Some(&origin), &[("uscc", &code_a)]);
    assert_eq!(pg.status, 403);
    let pg = br.post(
        "/verify/certificates",
        Some("http://evil.example"),
        &[("csrf", &csrf), ("uscc", &code_a)],
    );
    assert_eq!(pg.status, 403);

    let pg = br.post(
        "/verify/certificates",
        Some(&origin),
        &[("csrf", &csrf), ("uscc", &code_a)],
    );
    assert_eq!(pg.status, 303, "{}", pg.html);
    let loc = pg.location.unwrap();
    let cert_no = loc
        .strip_prefix("/verify/certificates/")
        .unwrap()
        .to_string();
    let pg = br.get(&loc);
    assert_eq!(pg.status, 200, "{}", pg.html);
    assert!(
        pg.html.contains(&cert_no) && pg.html.contains(&no) && pg.html.contains("@media print")
    );
    assert!(!pg.html.contains("LOAN-SECRET-REF-77"));
    // The page shows the certificate as the API stores it, and it verifies offline.
    let cert = banker
        .get(&format!("/v1/search-certificates/{cert_no}"))
        .expect(200);
    assert!(pg.html.contains(cert.body["signature"].as_str().unwrap()));
    assert!(pg.html.contains(cert.body["key_id"].as_str().unwrap()));
    let keys = srv.api().get("/v1/registry-keys").expect(200);
    assert!(common::verify_offline(&cert.body, &keys.body));
    assert_eq!(
        cert.body["statement"]["encumbrances"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let pg = br.get("/verify/certificates/NPCX-NOPE");
    assert_eq!(pg.status, 404);

    // An individual by ID number: by POST only, never echoed, and its certificate from the form.
    let id_number = "350702199001016234";
    admin
        .post(
            "/v1/parties",
            &json!({"kind": "individual", "name_zh": "林木生", "id_number": id_number, "region_code": "350721"}),
        )
        .expect(201);
    let pg = br.post(
        "/verify/search",
        Some(&origin),
        &[("csrf", &csrf), ("id_number", id_number)],
    );
    assert_eq!(pg.status, 200, "{}", pg.html);
    assert!(pg.html.contains("未发现有效的担保登记") && !pg.html.contains(id_number));
    assert_eq!(
        br.get(&format!("/verify/search?id_number={id_number}"))
            .status,
        200,
        "an ID number in a URL is ignored"
    );
    let pg = br.post(
        "/verify/certificates",
        Some(&origin),
        &[("csrf", &csrf), ("id_number", id_number)],
    );
    assert_eq!(pg.status, 303, "{}", pg.html);
    let pg = br.get(&pg.location.unwrap());
    assert_eq!(pg.status, 200);
    assert!(pg.html.contains("身份证号码（不予显示）") && !pg.html.contains(id_number));

    // Over HTTPS (as a proxy reports it) the cookie is Secure.
    let https = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/verify/login", srv.base))
        .header("x-forwarded-proto", "https")
        .header("origin", srv.base.replace("http://", "https://"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "username=banker&password={}",
            common::own_password("banker")
        ))
        .send()
        .unwrap();
    assert_eq!(https.status().as_u16(), 303);
    let cookie = https.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // The page is for bank users only: an enterprise user cannot open a page session.
    let mut eb = Browser::new(&srv.base);
    let pg = eb.post(
        "/verify/login",
        Some(&origin),
        &[
            ("username", "ent-a"),
            ("password", common::own_password("ent-a").as_str()),
        ],
    );
    assert_eq!(pg.status, 403);
    assert!(pg.set_cookie.is_none() && eb.cookie.is_none());
    // A disabled user's session ends at once, not at expiry.
    let _banker2 = user(&admin, "bank", Some(bank), "banker2");
    let pg = eb.post(
        "/verify/login",
        Some(&origin),
        &[
            ("username", "banker2"),
            ("password", common::own_password("banker2").as_str()),
        ],
    );
    assert_eq!(pg.status, 303);
    assert_eq!(eb.get(&format!("/verify/search?uscc={code_a}")).status, 200);
    let users = admin.get("/v1/users?limit=500").expect(200);
    let banker2_id = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "banker2")
        .unwrap()["id"]
        .clone();
    common::Api::new(&admin.base)
        .login("admin", common::ADMIN_PASSWORD)
        .post(&format!("/v1/users/{banker2_id}/disable"), &json!({}))
        .expect(200);
    assert_eq!(eb.get(&format!("/verify/search?uscc={code_a}")).status, 401);

    // Logging out needs the form token, then clears the cookie.
    let pg = br.get("/verify/search");
    let csrf = csrf_of(&pg.html);
    assert_eq!(br.post("/verify/logout", Some(&origin), &[]).status, 403);
    let pg = br.post("/verify/logout", Some(&origin), &[("csrf", &csrf)]);
    assert_eq!(pg.status, 303);
    assert!(pg.set_cookie.unwrap().contains("Max-Age=0"));
    assert!(br.cookie.is_none());
    assert_eq!(br.get("/verify/search").status, 401);
    let _ = ent;
}

both_backends!(verification_page, bank_search_and_certificate);
