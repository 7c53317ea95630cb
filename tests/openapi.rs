//! The committed OpenAPI description is exactly what the code generates, and it is served.

mod common;

use common::{Backend, Server};

#[test]
fn committed_spec_equals_generated() {
    let out = std::process::Command::new(common::binary())
        .arg("openapi")
        .output()
        .expect("run registry openapi");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json is committed");
    assert!(
        generated == committed,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
    let spec: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    // Every operation has an id, a summary and error responses.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                codes.iter().any(|c| c.starts_with('4')),
                "{method} {path} lists no error response"
            );
        }
    }
}

fn docs_and_spec_are_served(b: Backend) {
    let srv = Server::start(b);
    let api = srv.api();
    let spec = api.get("/openapi.json").expect(200);
    assert!(spec.body["paths"]["/v1/parties"].is_object());
    let client = reqwest::blocking::Client::new();
    let page = client.get(format!("{}/docs/", srv.base)).send().unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text().unwrap().contains("swagger"),
        "Swagger UI is served from the binary"
    );
    let asset = client
        .get(format!("{}/docs/swagger-ui-bundle.js", srv.base))
        .send()
        .unwrap();
    assert_eq!(asset.status().as_u16(), 200);
}

both_backends!(docs_and_spec_are_served);

fn metrics_and_json_logs(b: Backend) {
    let db = common::Db::fresh(b);
    let srv = Server::on_with(db, &["--log-format", "json"]);
    let api = srv.api();
    api.get("/healthz").expect(200);
    api.get("/v1/no-such-route").expect(404);
    // The metrics are for operators.
    let operator = srv.admin().token.clone().unwrap();
    let metrics = reqwest::blocking::Client::new()
        .get(format!("{}/metrics", srv.base))
        .bearer_auth(operator)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("registry_http_requests_total")
                && l.contains("endpoint=\"/healthz\"")
                && l.contains("status=\"200\"")),
        "{metrics}"
    );
    // Unknown paths are one label, not one series per path.
    assert!(!metrics.contains("no-such-route"));
    // Every log line is a JSON object.
    let log = std::fs::read_to_string(&srv.log).unwrap();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v.is_object()),
            "not JSON: {line}"
        );
    }
}

both_backends!(metrics_and_json_logs);
