//! Every command exits cleanly, again and again: r2d2 opens connections on threads
//! nothing waits for, and a process that exited while one of them was inside libpq died with
//! SIGSEGV in OpenSSL's exit-time cleanup, about one run in four on PostgreSQL. Each command runs
//! 20 times here and must exit 0 every time; `serve` is stopped with SIGTERM 20 times, while
//! requests are in flight, and must exit 0 with its background tasks stopped.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{command, uscc, Api, Backend, Db, ADMIN_PASSWORD};

const RUNS: u32 = 20;

/// Runs `registry ARGS` and insists on exit status 0 (a signal death shows as no code).
fn run_ok(db: &Db, args: &[&str], env: &[(&str, String)], round: u32) -> Output {
    let mut cmd = command(db);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run registry");
    assert!(
        out.status.success(),
        "`registry {}` (run {round}) ended with {}:\n{}{}",
        args.join(" "),
        describe(out.status),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => format!("{status:?}"),
    }
}

fn each_command_exits_zero_every_time(b: Backend) {
    let db = Db::fresh(b);
    for round in 0..RUNS {
        run_ok(&db, &["migrate"], &[], round);
        let seeded = run_ok(&db, &["seed"], &[], round);
        if round > 0 {
            let text = String::from_utf8_lossy(&seeded.stdout);
            assert!(text.contains("already loaded"), "{text}");
        }

        // A file of one new party per round, so every import imports something.
        let csv = db.dir.path().join(format!("parties-{round}.csv"));
        let code = uscc(880_000 + round);
        std::fs::write(
            &csv,
            format!(
                "kind,name_zh,name_en,uscc,id_number,region_code,address\n\
                 enterprise,退出测试企业{round},Exit test {round},{code},,350702,南平\n"
            ),
        )
        .expect("write csv");
        let out = run_ok(
            &db,
            &["import", "parties", &csv.to_string_lossy()],
            &[],
            round,
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 imported"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );

        let user = format!("exit-user-{round}");
        run_ok(
            &db,
            &["user", "add", "--username", &user, "--role", "regulator"],
            &[("REGISTRY_USER_PASSWORD", "exit-test-password".to_string())],
            round,
        );
        run_ok(&db, &["audit", "verify"], &[], round);
        run_ok(&db, &["market", "sweep"], &[], round);
    }
    // `seed` on a loaded database returns within milliseconds of opening its pool, the moment a
    // replacement connect was most often under way: it crashed about 1 run in 20 on this machine,
    // so it runs 100 times in all (0.12 s each), enough to fail the old code 99 times in 100.
    for round in RUNS..100 {
        run_ok(&db, &["seed"], &[], round);
    }
}

/// Starts `serve` on port 0 and returns it with its base URL.
fn start(db: &Db) -> (Child, String) {
    let log = std::fs::File::create(db.dir.path().join("serve.log")).expect("log");
    let mut child = command(db)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--market-poll-ms",
            "50",
            "--webhook-poll-ms",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("registry listening on ") {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(base) => (child, base),
        Err(_) => {
            let _ = child.kill();
            panic!(
                "serve did not start:\n{}",
                std::fs::read_to_string(db.dir.path().join("serve.log")).unwrap_or_default()
            )
        }
    }
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
}

/// Stopped at once after it says it listens: the signal is handled from the start (it used to
/// kill the process, status 143, when it came before the server's own handlers were installed).
fn serve_stopped_right_after_start_exits_zero(b: Backend) {
    let db = Db::fresh(b);
    for round in 0..RUNS {
        let (mut child, _) = start(&db);
        signal(&child, if round % 2 == 0 { "TERM" } else { "INT" });
        let status = wait_with_timeout(&mut child, Duration::from_secs(60));
        let log = std::fs::read_to_string(db.dir.path().join("serve.log")).unwrap_or_default();
        let Some(status) = status else {
            let _ = child.kill();
            panic!("serve (run {round}) did not stop:\n{log}");
        };
        assert!(
            status.success(),
            "run {round}: {}:\n{log}",
            describe(status)
        );
    }
}

/// A request waiting on a database lock when the stop signal comes (SIGINT too) is finished
/// before the process exits: its connection is back in the pool, no thread is left in the
/// database client library, and the client gets its answer.
fn serve_finishes_a_request_in_flight_before_exiting(b: Backend) {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let db = Db::fresh(b);
    for (round, sig) in ["INT", "TERM"].into_iter().enumerate() {
        let (mut child, base) = start(&db);
        // Parties are registered by an operator (the bootstrap admin administers accounts only).
        let admin = common::operator(&Api::new(&base), common::OPERATOR);
        // Hold the lock a party registration needs, from outside the server.
        let mut blocker: Box<dyn FnMut(&str)> = match b {
            Backend::Postgres => {
                let mut c = diesel::PgConnection::establish(&db.url).expect("connect");
                c.batch_execute("BEGIN; LOCK TABLE parties IN ACCESS EXCLUSIVE MODE;")
                    .expect("lock");
                Box::new(move |sql| c.batch_execute(sql).expect("blocker"))
            }
            Backend::Sqlite => {
                let mut c = diesel::SqliteConnection::establish(&db.url).expect("connect");
                // The server's periodic tasks may be writing just then: wait for them, as
                // any other writer would, rather than fail on the first try.
                c.batch_execute("PRAGMA busy_timeout = 30000; BEGIN IMMEDIATE;")
                    .expect("lock");
                Box::new(move |sql| c.batch_execute(sql).expect("blocker"))
            }
        };
        let n = 870_000 + round as u32;
        let request = std::thread::spawn(move || {
            admin.post(
                "/v1/parties",
                &serde_json::json!({"kind": "enterprise", "name_zh": format!("在途{n}"),
                    "uscc": uscc(n), "region_code": "350702"}),
            )
        });
        std::thread::sleep(Duration::from_millis(700));
        signal(&child, sig);
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "serve exited with a request in flight"
        );
        blocker("COMMIT;");
        let reply = request.join().expect("request thread");
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        let status = wait_with_timeout(&mut child, Duration::from_secs(60));
        let log = std::fs::read_to_string(db.dir.path().join("serve.log")).unwrap_or_default();
        let Some(status) = status else {
            let _ = child.kill();
            panic!("serve did not stop after SIG{sig}:\n{log}");
        };
        assert!(status.success(), "SIG{sig}: {}:\n{log}", describe(status));
    }
}

fn serve_stops_on_sigterm_with_status_zero(b: Backend) {
    let db = Db::fresh(b);
    for round in 0..RUNS {
        let (mut child, base) = start(&db);
        let admin = Api::new(&base).login("admin", ADMIN_PASSWORD);
        // Requests in flight while the signal arrives: they finish or are refused, never crash.
        let busy = Arc::new(AtomicBool::new(true));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (admin, busy) = (admin.clone(), busy.clone());
                std::thread::spawn(move || {
                    while busy.load(Ordering::Relaxed) {
                        if admin.try_get("/v1/parties?limit=5").is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + 10 * u64::from(round)));
        signal(&child, "TERM");
        let status = wait_with_timeout(&mut child, Duration::from_secs(60));
        busy.store(false, Ordering::Relaxed);
        for c in clients {
            let _ = c.join();
        }
        let log = std::fs::read_to_string(db.dir.path().join("serve.log")).unwrap_or_default();
        let Some(status) = status else {
            let _ = child.kill();
            panic!("serve (run {round}) did not stop within 60 s of SIGTERM:\n{log}");
        };
        assert!(
            status.success(),
            "serve (run {round}) ended with {} after SIGTERM:\n{log}",
            describe(status)
        );
        assert!(!log.contains("panicked"), "run {round}:\n{log}");
    }
}

both_backends!(
    each_command_exits_zero_every_time,
    serve_stops_on_sigterm_with_status_zero,
    serve_stopped_right_after_start_exits_zero,
    serve_finishes_a_request_in_flight_before_exiting
);
