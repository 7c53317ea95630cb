//! Defects the API fuzzer (bench/fuzz, schemathesis) found, pinned by tests.

mod common;

use common::ledger::{issue, lot_request};
use common::{party, user, Backend, Server};
use serde_json::json;

/// A literal path that only fits another route by shape (`GET /v1/transfers/forced` against
/// `GET /v1/transfers/{id}`) is a 405 naming the allowed methods, not a 404.
fn undeclared_method_on_literal_path_is_405(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let r = admin.get("/v1/transfers/forced").expect(405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.code(), "method_not_allowed");
    // A non-numeric id is still no such object.
    admin.get("/v1/transfers/abc").expect(404);
    admin.get("/v1/lots/abc").expect(404);
}

/// Every answer the fuzzer provoked is declared in the spec: reusing an Idempotency-Key for a
/// different request (422) and a state conflict (409) on keyed operations; a bad cursor (422)
/// and an unknown filter object (404) on lists; and the key's accepted form.
fn keyed_and_listed_answers_are_declared(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let pa = party(&admin, "enterprise", 1);
    let pb = party(&admin, "enterprise", 2);
    let ent_a = user(&admin, "enterprise", Some(pa), "ent-a");
    let lot = issue(&admin, &checker, lot_request("CA", pa, "10", "CA-conf-1"))["id"]
        .as_i64()
        .unwrap();
    let body = json!({"lot_id": lot, "to_party_id": pb, "quantity": "1"});
    let t = ent_a.post_key("/v1/transfers", "k1", &body).expect(201);
    let other = json!({"lot_id": lot, "to_party_id": pb, "quantity": "2"});
    let r = ent_a.post_key("/v1/transfers", "k1", &other).expect(422);
    assert_eq!(r.code(), "idempotency_key_reused");
    assert!(t.body["id"].is_i64());
    admin.get("/v1/transfers?cursor=not-a-cursor").expect(422);

    let spec = admin.get("/openapi.json").expect(200).body;
    let responses = |path: &str, method: &str| spec["paths"][path][method]["responses"].clone();
    for (path, method) in [
        ("/v1/transfers/{id}/approve", "post"),
        ("/v1/transfers/{id}/confirm", "post"),
        ("/v1/proposals/{id}/approve", "post"),
        ("/v1/pledges/{id}/dispose", "post"),
    ] {
        let r = responses(path, method);
        assert!(
            r["409"].is_object() && r["422"].is_object(),
            "{method} {path}: {r}"
        );
    }
    for path in [
        "/v1/transfers",
        "/v1/lots",
        "/v1/judicial-freezes",
        "/v1/holdings",
    ] {
        let r = responses(path, "get");
        assert!(
            r["404"].is_object() && r["422"].is_object(),
            "get {path}: {r}"
        );
    }
    let key = spec["paths"]["/v1/transfers"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap()
        .clone();
    assert_eq!(key["required"], true);
    assert_eq!(key["schema"]["maxLength"], 255);
    assert_eq!(key["schema"]["pattern"], "^[!-~]+$");
    // ... and the server holds to that form: a key with a space inside is refused.
    let r = ent_a.post_key("/v1/transfers", "a key", &body).expect(400);
    assert_eq!(r.code(), "idempotency_key_invalid");
}

/// PostgreSQL cannot store NUL in text: a body or a filter holding it was a 500 there (found by
/// schemathesis on PostgreSQL). Now a 422 on both backends for bodies, never a 500 for filters.
fn nul_in_text_is_refused_not_500(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let r = admin
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": "南平\u{0}公司", "uscc": common::uscc(7), "region_code": "350702"}),
        )
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "name_zh", "{}", r.body);
    let r = admin.get("/v1/parties?region_code=35%0002");
    assert!(
        r.status.as_u16() == 200 || r.status.as_u16() == 422,
        "{} {}",
        r.status,
        r.body
    );
}

both_backends!(
    nul_in_text_is_refused_not_500,
    undeclared_method_on_literal_path_is_405,
    keyed_and_listed_answers_are_declared,
);
