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

both_backends!(verification_page);
