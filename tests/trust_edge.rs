//! The registry's edge, where a caller's input first meets it: multibyte input never panics a
//! worker, a mistyped credit code or ID number is refused rather than answered "no encumbrances",
//! an individual finds its own encumbrances, impossible counts and region codes are refused, and an
//! imported Windows file's bad rows are reported on the right line.

mod common;

use common::{Api, Backend, Reply, Server};
use serde_json::json;

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

/// Issue 13 #13: six bytes of multibyte characters where a region code is expected were sliced by
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
