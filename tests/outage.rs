//! Database outage, on a PostgreSQL cluster of this test's own: stop it under load; the
//! server answers 503 `database_unavailable` — not a 500, not a hang — within its pool timeout;
//! start it again; the server recovers without a restart (`/readyz` and a write succeed).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::ledger::{issue, key, lot_request};
use common::pg::OwnCluster;
use common::{eventually, party, user, Backend, Db, Server};
use serde_json::json;

/// Generous bound on any answer: a hang (no answer) fails the test; the pool waits 5 s.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// One request with a short client timeout: (status or 0 for no answer, elapsed).
fn send(base: &str, token: &str, write: Option<(i64, i64)>) -> (u16, Duration, String) {
    let client = reqwest::blocking::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .build()
        .unwrap();
    let started = Instant::now();
    let req = match write {
        Some((lot, to)) => client
            .post(format!("{base}/v1/transfers"))
            .header("Idempotency-Key", key())
            .json(&json!({"lot_id": lot, "to_party_id": to, "quantity": "1"})),
        None => client.get(format!("{base}/v1/lots")),
    };
    match req.bearer_auth(token).send() {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().unwrap_or_default();
            (status, started.elapsed(), body)
        }
        Err(e) => (0, started.elapsed(), e.to_string()),
    }
}

#[test]
fn postgres_outage_is_503_and_recovers_without_restart() {
    let cluster = OwnCluster::start();
    let srv = Server::on(Db::with_url(cluster.url(), Backend::Postgres));
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let pa = party(&admin, "enterprise", 1);
    let pb = party(&admin, "enterprise", 2);
    let ent_a = user(&admin, "enterprise", Some(pa), "ent-a");
    let lot = issue(
        &admin,
        &checker,
        lot_request("CA", pa, "100000", "CA-outage-1"),
    )["id"]
        .as_i64()
        .unwrap();
    let token = ent_a.token.clone().unwrap();

    // Load: 4 clients writing and reading without pause, before, during and after the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|c| {
            let (stop, seen, base, token) =
                (stop.clone(), seen.clone(), srv.base.clone(), token.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let write = (c % 2 == 0).then_some((lot, pb));
                    let answer = send(&base, &token, write);
                    seen.lock().unwrap().push(answer);
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(2));

    cluster.stop();
    // While it is down: readiness, a read and a write are each a 503 problem.
    let t = Instant::now();
    let r = admin.get("/readyz");
    let mut slowest = t.elapsed();
    assert_eq!(r.status.as_u16(), 503, "readyz while down: {}", r.body);
    for write in [None, Some((lot, pb))] {
        let (status, took, body) = send(&srv.base, &token, write);
        slowest = slowest.max(took);
        assert_eq!(status, 503, "while down ({write:?}): {body}");
        assert!(body.contains("database_unavailable"), "{body}");
    }

    cluster.restart();
    // Recovers by itself: ready again, and a write goes through.
    assert!(
        eventually(Duration::from_secs(60), || admin
            .get("/readyz")
            .status
            .is_success()),
        "readyz did not recover"
    );
    let r = ent_a.post_key(
        "/v1/transfers",
        &key(),
        &json!({"lot_id": lot, "to_party_id": pb, "quantity": "1"}),
    );
    assert_eq!(r.status.as_u16(), 201, "a write after recovery: {}", r.body);
    thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join().unwrap();
    }

    let seen = seen.lock().unwrap();
    let count = |f: &dyn Fn(u16) -> bool| seen.iter().filter(|(s, _, _)| f(*s)).count();
    let bad: Vec<_> = seen
        .iter()
        .filter(|(s, _, _)| !matches!(s, 200 | 201 | 503))
        .map(|(s, t, b)| format!("{s} after {t:?}: {b}"))
        .collect();
    eprintln!(
        "outage: {} requests under load: {} ok, {} 503; slowest 503 probe {:?}",
        seen.len(),
        count(&|s| s < 300),
        count(&|s| s == 503),
        slowest
    );
    assert!(
        bad.is_empty(),
        "only 2xx and 503 under an outage (no 500, no hang): {bad:?}"
    );
    assert!(count(&|s| s == 503) > 0, "the load saw the outage");
    assert_eq!(admin.get("/v1/audit/verify").expect(200).body["ok"], true);
}
