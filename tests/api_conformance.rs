//! Defects the API fuzzer (bench/fuzz, schemathesis) found, pinned by tests.

mod common;

use common::{Backend, Server};

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

both_backends!(undeclared_method_on_literal_path_is_405);
