//! Webhook deliveries (and their paged logs): deliveries must not be a way into the
//! registry's own network. Deliveries go over HTTPS to public addresses only — checked at
//! registration for literal addresses and at delivery time for names, on the very address the
//! connection uses; plain HTTP and internal addresses only to a HOST:PORT the operator
//! allowlists; no redirects; the bank sees a coarse result, never an error text; one bank cannot
//! stall another; a delivery is dead after its last attempt and operators see it; the endpoint
//! secret is not stored; delivery logs come a page at a time.
//!
//! Every request these tests cause goes to 127.0.0.1. Internal and metadata addresses appear only
//! in registrations that must be refused, or behind the server's test-only name answers
//! (`--webhook-test-resolve`), under which the server never connects anywhere but loopback.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::ledger::{assert_all_conserved, issue, lot_request};
use common::{party, user, Api, Backend, Db, Server};
use serde_json::{json, Value};

struct World {
    srv: Server,
    admin: Api,
    ent: Api,
    em: i64,
    bank1: i64,
    banker1: Api,
    bank2: i64,
    banker2: Api,
}

fn world(backend: Backend, extra: &[&str]) -> World {
    let mut args = vec!["--webhook-poll-ms", "50", "--webhook-backoff-ms", "50"];
    args.extend_from_slice(extra);
    let srv = Server::on_with(Db::fresh(backend), &args);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let bank1 = party(&admin, "bank", 3);
    let bank2 = party(&admin, "bank", 4);
    let ent = user(&admin, "enterprise", Some(a), "ent-a");
    let banker1 = user(&admin, "bank", Some(bank1), "banker-1");
    let banker2 = user(&admin, "bank", Some(bank2), "banker-2");
    let em = issue(
        &admin,
        &checker,
        lot_request("EM", a, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    World {
        srv,
        admin,
        ent,
        em,
        bank1,
        banker1,
        bank2,
        banker2,
    }
}

/// A pledge application to `lender`: one `pledge.applied` event for each of its endpoints.
fn apply(w: &World, lender: i64) {
    w.ent
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "1", "lender_party_id": lender}),
        )
        .expect(201);
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback receiver answering every request with `reply`, handing over (head, body).
fn receiver(reply: &'static str) -> (u16, mpsc::Receiver<(String, String)>) {
    receiver_on(TcpListener::bind("127.0.0.1:0").unwrap(), reply)
}

/// [`receiver`] on a listener of the caller's.
fn receiver_on(
    listener: TcpListener,
    reply: &'static str,
) -> (u16, mpsc::Receiver<(String, String)>) {
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len.min(1 << 20)];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(reply.as_bytes());
            if tx
                .send((
                    head.to_ascii_lowercase(),
                    String::from_utf8_lossy(&body).into_owned(),
                ))
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

/// A loopback listener that counts connections and never answers.
fn silent_listener() -> (u16, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
            if tx.send(()).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

fn register(banker: &Api, url: &str) -> i64 {
    let r = banker.post("/v1/webhooks", &json!({ "url": url }));
    assert_eq!(r.status.as_u16(), 201, "{url}: {}", r.body);
    r.body["id"].as_i64().unwrap()
}

fn log(banker: &Api, hook: i64) -> Vec<Value> {
    banker
        .get(&format!("/v1/webhooks/{hook}/deliveries"))
        .expect(200)
        .body["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    assert!(common::eventually(timeout, &mut f), "timed out: {what}");
}

/// Plain http is refused unless the operator allowlisted its HOST:PORT, and a literal internal
/// or metadata address is refused as it is registered.
fn plain_http_and_internal_addresses_are_refused_at_registration(backend: Backend) {
    let allowed = free_port();
    let w = world(
        backend,
        &["--webhook-allow-http", &format!("127.0.0.1:{allowed}")],
    );
    let other = free_port();
    for url in [
        format!("http://127.0.0.1:{other}/registry-events"),
        format!("http://localhost:{allowed}/registry-events"),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://[fd00:ec2::254]/latest/meta-data/".into(),
        "https://10.0.0.5/hook".into(),
        "https://172.16.3.4/hook".into(),
        "https://192.168.1.10/hook".into(),
        "https://100.64.0.1/hook".into(),
        "https://[fc00::1]/hook".into(),
        "https://[fe80::1]/hook".into(),
        "https://[::ffff:127.0.0.1]/hook".into(),
        "https://0.0.0.0/hook".into(),
        "https://224.0.0.1/hook".into(),
        format!("https://127.0.0.1:{other}/hook"),
        "https://localhost/hook".into(),
        "https://user:pw@hooks.bank.test/hook".into(),
        "ftp://hooks.bank.test/hook".into(),
    ] {
        let r = w
            .banker1
            .post("/v1/webhooks", &json!({ "url": url }))
            .expect(422);
        assert_eq!(r.code(), "validation_failed", "{url}");
        assert_eq!(r.body["errors"][0]["field"], "url", "{url}");
    }
    assert!(w.banker1.get("/v1/webhooks").expect(200).body == json!([]));
    // HTTPS to a name is accepted (its addresses are checked when delivering), and plain http
    // to the allowlisted HOST:PORT.
    register(&w.banker1, "https://hooks.bank.test/registry-events");
    register(
        &w.banker1,
        &format!("http://127.0.0.1:{allowed}/registry-events"),
    );
}

/// Every IPv6 form that carries an IPv4 address is judged by that address (or refused outright):
/// 127.0.0.1 written as IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64 (well-known and
/// local-use), 6to4 or Teredo is still loopback. Nothing is ever sent: registration refuses it.
fn ipv6_forms_embedding_loopback_are_refused_at_registration(backend: Backend) {
    let w = world(backend, &[]);
    for host in [
        "[::ffff:7f00:1]",
        "[::ffff:0:7f00:1]",
        "[::7f00:1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b:1::7f00:1]",
        "[2002:7f00:1::1]",
        "[2001:0:7f00:1::1]",
    ] {
        let url = format!("https://{host}/hook");
        let r = w
            .banker1
            .post("/v1/webhooks", &json!({ "url": url }))
            .expect(422);
        assert_eq!(r.code(), "validation_failed", "{url}");
        assert_eq!(r.body["errors"][0]["field"], "url", "{url}");
    }
    assert!(w.banker1.get("/v1/webhooks").expect(200).body == json!([]));
}

/// A name that resolves to a metadata, private or loopback address is refused when delivering,
/// and nothing is sent: the checked answer is the one the connection would use.
fn names_resolving_to_internal_addresses_are_refused_at_delivery(backend: Backend) {
    let (port, connections) = silent_listener();
    let w = world(
        backend,
        &[
            "--webhook-test-resolve",
            "metadata.bank.test=169.254.169.254,intranet.bank.test=10.20.30.40,rebound.bank.test=127.0.0.1",
        ],
    );
    let hooks = [
        register(&w.banker1, "https://metadata.bank.test/latest/meta-data"),
        register(
            &w.banker1,
            &format!("https://intranet.bank.test:{port}/hook"),
        ),
        register(
            &w.banker1,
            &format!("https://rebound.bank.test:{port}/hook"),
        ),
    ];
    apply(&w, w.bank1);
    for hook in hooks {
        wait_for("an attempt refused", Duration::from_secs(20), || {
            log(&w.banker1, hook)
                .first()
                .is_some_and(|d| d["attempts"].as_i64() >= Some(1))
        });
        let d = &log(&w.banker1, hook)[0];
        assert_eq!(d["last_result"], "address_not_allowed", "{d}");
        assert_ne!(d["status"], "delivered");
    }
    assert!(
        connections
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "a loopback address behind a name was connected to"
    );
    assert_all_conserved(&w.admin);
}

/// A redirect is a failed attempt, not followed (a 307 would carry the signed body on); the
/// bank sees the class of the answer, and "unreachable" for a closed port, never error text.
fn redirects_are_not_followed_and_results_are_coarse(backend: Backend) {
    let (target, stolen) = receiver(OK);
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{target}/stolen\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (redirecting, seen) = receiver(redirect);
    let closed = free_port();
    let allow = format!("127.0.0.1:{redirecting},127.0.0.1:{target},127.0.0.1:{closed}");
    let w = world(backend, &["--webhook-allow-http", &allow]);
    let hook = register(
        &w.banker1,
        &format!("http://127.0.0.1:{redirecting}/registry-events"),
    );
    let dead_end = register(&w.banker1, &format!("http://127.0.0.1:{closed}/hook"));
    apply(&w, w.bank1);
    seen.recv_timeout(Duration::from_secs(20))
        .expect("the delivery reaches the registered URL");
    wait_for("the redirect recorded", Duration::from_secs(20), || {
        log(&w.banker1, hook)
            .first()
            .is_some_and(|d| d["last_result"] == "http_3xx")
    });
    assert!(
        stolen.recv_timeout(Duration::from_millis(500)).is_err(),
        "the redirect was followed"
    );
    wait_for("the closed port recorded", Duration::from_secs(20), || {
        log(&w.banker1, dead_end)
            .first()
            .is_some_and(|d| d["last_result"] == "unreachable")
    });
    for d in log(&w.banker1, hook)
        .iter()
        .chain(log(&w.banker1, dead_end).iter())
    {
        assert_eq!(d["status"], "pending");
        let text = d.to_string().to_lowercase();
        for leak in ["refused", "connect", "error", "tcp", "os error", "location"] {
            assert!(!text.contains(leak), "the bank sees error text: {d}");
        }
    }
    assert_all_conserved(&w.admin);
}

/// After the last allowed attempt a delivery is dead: no more attempts, and operators list it.
fn dead_deliveries_stop_and_operators_see_them(backend: Backend) {
    let closed = free_port();
    let w = world(
        backend,
        &[
            "--webhook-allow-http",
            &format!("127.0.0.1:{closed}"),
            "--webhook-max-attempts",
            "3",
        ],
    );
    let hook = register(&w.banker1, &format!("http://127.0.0.1:{closed}/hook"));
    apply(&w, w.bank1);
    wait_for("the delivery dead", Duration::from_secs(30), || {
        log(&w.banker1, hook)
            .first()
            .is_some_and(|d| d["status"] == "dead")
    });
    std::thread::sleep(Duration::from_millis(600));
    let d = log(&w.banker1, hook)[0].clone();
    assert_eq!(d["attempts"], 3, "no attempt after the last: {d}");
    let dead = w
        .admin
        .get("/v1/webhook-deliveries?status=dead")
        .expect(200)
        .body;
    let ids: Vec<&Value> = dead["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["id"])
        .collect();
    assert_eq!(ids, [&d["id"]]);
    assert_eq!(dead["items"][0]["endpoint_id"], hook);
    // Only operators (and the regulator) list every bank's deliveries.
    w.banker1
        .get("/v1/webhook-deliveries?status=dead")
        .expect(403);
    w.admin
        .get("/v1/webhook-deliveries?status=lost")
        .expect(422);
    assert_all_conserved(&w.admin);
}

/// A bank has at most five active endpoints; another bank is not affected.
fn endpoints_per_bank_are_capped(backend: Backend) {
    let w = world(backend, &["--webhook-allow-http", "127.0.0.1:9"]);
    let url = "http://127.0.0.1:9/hook";
    let first = register(&w.banker1, url);
    for _ in 0..4 {
        register(&w.banker1, url);
    }
    let r = w
        .banker1
        .post("/v1/webhooks", &json!({ "url": url }))
        .expect(409);
    assert_eq!(r.code(), "webhook_endpoint_limit");
    register(&w.banker2, url);
    w.banker1
        .post(&format!("/v1/webhooks/{first}/disable"), &json!({}))
        .expect(200);
    register(&w.banker1, url);
}

/// A bank whose receiver accepts connections and never answers holds up its own deliveries
/// only: another bank's arrive at once.
fn a_hanging_bank_does_not_stall_another(backend: Backend) {
    let (hanging, held) = silent_listener();
    let (good, got) = receiver(OK);
    let allow = format!("127.0.0.1:{hanging},127.0.0.1:{good}");
    let w = world(backend, &["--webhook-allow-http", &allow]);
    register(&w.banker1, &format!("http://127.0.0.1:{hanging}/hook"));
    register(&w.banker2, &format!("http://127.0.0.1:{good}/hook"));
    // Three encumbrances of bank 1: three deliveries that each wait out the timeout.
    for _ in 0..3 {
        apply(&w, w.bank1);
    }
    held.recv_timeout(Duration::from_secs(20))
        .expect("bank 1's receiver is being called");
    let start = Instant::now();
    apply(&w, w.bank2);
    got.recv_timeout(Duration::from_secs(5))
        .expect("bank 2's delivery is not held up by bank 1's receiver");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_all_conserved(&w.admin);
}

/// The delivery log comes a page at a time.
fn delivery_logs_are_paginated(backend: Backend) {
    let w = world(backend, &["--webhook-allow-http", "127.0.0.1:9"]);
    let hook = register(&w.banker1, "http://127.0.0.1:9/hook");
    for _ in 0..3 {
        apply(&w, w.bank1);
    }
    let first = w
        .banker1
        .get(&format!("/v1/webhooks/{hook}/deliveries?limit=2"))
        .expect(200)
        .body;
    assert_eq!(first["items"].as_array().unwrap().len(), 2, "{first}");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = w
        .banker1
        .get(&format!(
            "/v1/webhooks/{hook}/deliveries?limit=2&cursor={cursor}"
        ))
        .expect(200)
        .body;
    assert_eq!(second["items"].as_array().unwrap().len(), 1, "{second}");
    assert!(second.get("next_cursor").is_none());
    assert!(first["items"][1]["id"].as_i64() < second["items"][0]["id"].as_i64());
    w.banker1
        .get(&format!("/v1/webhooks/{hook}/deliveries?limit=100000"))
        .expect(422);
    w.banker2
        .get(&format!("/v1/webhooks/{hook}/deliveries"))
        .expect(404);
    assert_all_conserved(&w.admin);
}

/// The secret shown at registration signs the deliveries, and is found nowhere in the database.
fn the_endpoint_secret_is_not_stored(backend: Backend) {
    let (port, got) = receiver(OK);
    let w = world(
        backend,
        &["--webhook-allow-http", &format!("127.0.0.1:{port}")],
    );
    let r = w
        .banker1
        .post(
            "/v1/webhooks",
            &json!({"url": format!("http://127.0.0.1:{port}/hook")}),
        )
        .expect(201);
    let secret = r.body["secret"].as_str().unwrap().to_string();
    apply(&w, w.bank1);
    let (head, body) = got.recv_timeout(Duration::from_secs(20)).expect("delivery");
    let field = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{name}:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default()
    };
    let expected = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{}.{body}", field("x-registry-timestamp")).as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    assert_eq!(field("x-registry-signature"), expected);
    assert!(!stored_anywhere(&w.srv.db, &secret), "the secret is stored");
}

/// Whether `needle` is in the endpoints table (PostgreSQL) or anywhere in the database files
/// (SQLite).
fn stored_anywhere(db: &Db, needle: &str) -> bool {
    match db.backend {
        Backend::Sqlite => ["", "-wal"].iter().any(|suffix| {
            std::fs::read(format!("{}{suffix}", db.url))
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
                .unwrap_or(false)
        }),
        Backend::Postgres => {
            use diesel::prelude::*;
            #[derive(QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                row: String,
            }
            let mut conn = diesel::PgConnection::establish(&db.url).unwrap();
            let rows: Vec<Row> =
                diesel::sql_query("SELECT CAST(t AS TEXT) AS row FROM webhook_endpoints t")
                    .load(&mut conn)
                    .unwrap();
            assert!(!rows.is_empty());
            rows.iter().any(|r| r.row.contains(needle))
        }
    }
}

/// Disabling an endpoint settles what was still pending for it as `cancelled` (the bank and
/// operators see it), and nothing is attempted for it afterwards.
fn disabling_an_endpoint_cancels_its_pending_deliveries(backend: Backend) {
    let closed = free_port();
    let w = world(
        backend,
        &["--webhook-allow-http", &format!("127.0.0.1:{closed}")],
    );
    let hook = register(&w.banker1, &format!("http://127.0.0.1:{closed}/hook"));
    apply(&w, w.bank1);
    wait_for("a failed attempt", Duration::from_secs(30), || {
        log(&w.banker1, hook)
            .first()
            .is_some_and(|d| d["attempts"].as_i64().unwrap_or(0) >= 1)
    });
    w.banker1
        .post(&format!("/v1/webhooks/{hook}/disable"), &json!({}))
        .expect(200);
    let d = log(&w.banker1, hook)[0].clone();
    assert_eq!(d["status"], "cancelled", "{d}");
    std::thread::sleep(Duration::from_millis(800));
    let later = log(&w.banker1, hook)[0].clone();
    assert_eq!(later["status"], "cancelled", "{later}");
    assert!(
        later["attempts"].as_i64() <= Some(d["attempts"].as_i64().unwrap_or(0) + 1),
        "attempts after cancelling: {d} then {later}"
    );
    let listed = w
        .admin
        .get("/v1/webhook-deliveries?status=cancelled")
        .expect(200)
        .body;
    assert_eq!(listed["items"][0]["id"], d["id"], "{listed}");
    assert_eq!(
        w.admin
            .get("/v1/webhook-deliveries?status=pending")
            .expect(200)
            .body["items"],
        json!([])
    );
}

/// A dead delivery is queued again by an operator or by the bank it is for (audited), tried from
/// its first attempt and delivered once the receiver is back; another bank cannot see it, and a
/// delivery that is not dead, or whose endpoint is disabled, is not requeued.
fn dead_deliveries_can_be_requeued(backend: Backend) {
    let closed = free_port();
    let w = world(
        backend,
        &[
            "--webhook-allow-http",
            &format!("127.0.0.1:{closed}"),
            "--webhook-max-attempts",
            "2",
        ],
    );
    let hook = register(&w.banker1, &format!("http://127.0.0.1:{closed}/hook"));
    apply(&w, w.bank1);
    apply(&w, w.bank1);
    wait_for("both deliveries dead", Duration::from_secs(30), || {
        let l = log(&w.banker1, hook);
        l.len() == 2 && l.iter().all(|d| d["status"] == "dead")
    });
    let l = log(&w.banker1, hook);
    let (d1, d2) = (l[0]["id"].as_i64().unwrap(), l[1]["id"].as_i64().unwrap());
    let requeue =
        |api: &Api, id: i64| api.post(&format!("/v1/webhook-deliveries/{id}/requeue"), &json!({}));
    requeue(&w.banker2, d1).expect(404);
    w.ent
        .post(&format!("/v1/webhook-deliveries/{d1}/requeue"), &json!({}))
        .expect(403);
    // The receiver is back.
    let (_, got) = receiver_on(TcpListener::bind(("127.0.0.1", closed)).unwrap(), OK);
    let r = requeue(&w.banker1, d1).expect(200);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["attempts"], 0);
    got.recv_timeout(Duration::from_secs(30))
        .expect("the requeued delivery arrives");
    wait_for("delivered", Duration::from_secs(30), || {
        log(&w.banker1, hook)[0]["status"] == "delivered"
    });
    let r = requeue(&w.admin, d1).expect(409);
    assert_eq!(r.code(), "delivery_not_dead");
    w.banker1
        .post(&format!("/v1/webhooks/{hook}/disable"), &json!({}))
        .expect(200);
    let r = requeue(&w.admin, d2).expect(409);
    assert_eq!(r.code(), "webhook_disabled");
    let mut conn = registry::db::establish(&w.srv.db.url).unwrap();
    use diesel::prelude::*;
    use registry::schema::audit_events as ev;
    let actors: Vec<String> = ev::table
        .filter(ev::action.eq("webhook.delivery_requeued"))
        .select(ev::actor)
        .load(&mut conn)
        .unwrap();
    assert_eq!(actors, ["bank:banker-1"]);
}

/// Many registrations of one bank at the same moment cannot pass the cap together: exactly five
/// endpoints exist afterwards, the rest are 409 `webhook_endpoint_limit`.
fn the_endpoint_cap_holds_under_concurrent_registrations(backend: Backend) {
    let w = world(backend, &["--webhook-allow-http", "127.0.0.1:9"]);
    for round in 0..3 {
        let banker = if round % 2 == 0 {
            &w.banker1
        } else {
            &w.banker2
        };
        let before = banker
            .get("/v1/webhooks")
            .expect(200)
            .body
            .as_array()
            .unwrap()
            .len();
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let b = banker.clone();
                std::thread::spawn(move || {
                    b.post("/v1/webhooks", &json!({"url": "http://127.0.0.1:9/hook"}))
                })
            })
            .collect();
        let replies: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let created = replies.iter().filter(|r| r.status.as_u16() == 201).count();
        for r in &replies {
            let s = r.status.as_u16();
            assert!(
                s == 201 || (s == 409 && r.code() == "webhook_endpoint_limit"),
                "{s} {}",
                r.body
            );
        }
        let active = banker
            .get("/v1/webhooks")
            .expect(200)
            .body
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["active"] == true)
            .count();
        assert_eq!(active, 5, "round {round}: {created} created after {before}");
        // Free the bank's slots for its next round.
        for e in banker
            .get("/v1/webhooks")
            .expect(200)
            .body
            .as_array()
            .unwrap()
        {
            if e["active"] == true && round < 2 {
                banker
                    .post(&format!("/v1/webhooks/{}/disable", e["id"]), &json!({}))
                    .expect(200);
            }
        }
    }
}

both_backends!(
    disabling_an_endpoint_cancels_its_pending_deliveries,
    dead_deliveries_can_be_requeued,
    the_endpoint_cap_holds_under_concurrent_registrations,
    plain_http_and_internal_addresses_are_refused_at_registration,
    names_resolving_to_internal_addresses_are_refused_at_delivery,
    redirects_are_not_followed_and_results_are_coarse,
    dead_deliveries_stop_and_operators_see_them,
    endpoints_per_bank_are_capped,
    a_hanging_bank_does_not_stall_another,
    delivery_logs_are_paginated,
    the_endpoint_secret_is_not_stored,
);

/// A loopback HTTPS receiver with a certificate for `tls.bank.test` from the test CA in
/// tests/fixtures/webhook_tls; answers 200 and hands over each request's body.
fn tls_receiver() -> (u16, mpsc::Receiver<String>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhook_tls");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(format!("{dir}/receiver.pem"))
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
    let key = PrivateKeyDer::from_pem_file(format!("{dir}/receiver.key")).unwrap();
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, tcp);
            let mut reader = BufReader::new(&mut tls);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                // A failed handshake (the client refused the certificate) ends here.
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            if head.is_empty() {
                continue;
            }
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            let mut body = vec![0; len.min(1 << 20)];
            let _ = reader.read_exact(&mut body);
            let _ = tls.write_all(OK.as_bytes());
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
            if tx
                .send(String::from_utf8_lossy(&body).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    (port, rx)
}

/// Deliveries go over TLS with the receiver's certificate checked: a receiver whose certificate
/// names it is delivered to; the same receiver reached under a name its certificate does not
/// carry is not (nothing is sent, the bank sees "unreachable").
fn deliveries_go_over_verified_tls(backend: Backend) {
    let (port, got) = tls_receiver();
    let ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/webhook_tls/ca.pem"
    );
    // Both names lead to the loopback receiver, which the operator allowlists under each name.
    let allow = format!("tls.bank.test:{port},wrong.bank.test:{port}");
    let w = world(
        backend,
        &[
            "--webhook-ca-file",
            ca,
            "--webhook-allow-http",
            &allow,
            "--webhook-test-resolve",
            "tls.bank.test=127.0.0.1,wrong.bank.test=127.0.0.1",
        ],
    );
    let good = register(
        &w.banker1,
        &format!("https://tls.bank.test:{port}/registry-events"),
    );
    let wrong = register(
        &w.banker2,
        &format!("https://wrong.bank.test:{port}/registry-events"),
    );
    apply(&w, w.bank1);
    let body = got
        .recv_timeout(Duration::from_secs(20))
        .expect("a delivery over TLS");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["event"],
        "pledge.applied"
    );
    wait_for("delivered", Duration::from_secs(20), || {
        log(&w.banker1, good)
            .first()
            .is_some_and(|d| d["status"] == "delivered" && d["last_result"] == "delivered")
    });
    apply(&w, w.bank2);
    wait_for("the wrong name refused", Duration::from_secs(20), || {
        log(&w.banker2, wrong)
            .first()
            .is_some_and(|d| d["last_result"] == "unreachable")
    });
    assert!(
        got.recv_timeout(Duration::from_millis(300)).is_err(),
        "a request was sent to a receiver whose certificate does not name it"
    );
    assert_all_conserved(&w.admin);
}

both_backends!(deliveries_go_over_verified_tls);
both_backends!(ipv6_forms_embedding_loopback_are_refused_at_registration);
