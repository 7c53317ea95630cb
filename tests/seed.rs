//! The Nanping demo data set: `registry seed` is idempotent, its data keeps the invariants, a
//! seeded pledge verifies by its code, and a first start on the default embedded database loads it.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::ledger::assert_all_conserved;
use common::{binary, command, Api, Backend, Db, Server};
use serde_json::Value;

fn seed(db: &Db) -> String {
    let out = command(db).arg("seed").output().expect("run registry seed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// (registration number, verification code) from the printed /verify URL.
fn verify_link(out: &str) -> (String, String) {
    let url = out
        .lines()
        .find_map(|l| l.strip_prefix("Verify a seeded pledge: "))
        .unwrap_or_else(|| panic!("no verify URL in:\n{out}"));
    let query = url.split_once('?').unwrap().1;
    let mut no = String::new();
    let mut code = String::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("registration_no", v)) => no = v.to_string(),
            Some(("verification_code", v)) => code = v.to_string(),
            _ => {}
        }
    }
    (no, code)
}

fn count(api: &Api, path: &str) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
            None => format!("{path}{sep}limit=200"),
        };
        let page = api.get(&url).expect(200).body;
        if let Some(all) = page.as_array() {
            return all.len();
        }
        n += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return n,
        }
    }
}

fn counts(admin: &Api) -> Vec<usize> {
    [
        "/v1/parties",
        "/v1/lots",
        "/v1/holdings",
        "/v1/pledges",
        "/v1/forest-rights",
        "/v1/forest-mortgages",
        "/v1/users",
    ]
    .iter()
    .map(|p| count(admin, p))
    .collect()
}

fn seed_twice_changes_nothing(b: Backend) {
    let db = Db::fresh(b);
    let first = seed(&db);
    assert!(
        first.contains("Demo users (passwords shown once):"),
        "{first}"
    );
    for role in ["operator", "regulator", "bank", "enterprise"] {
        assert!(
            first
                .lines()
                .any(|l| l.starts_with("  demo-") && l.contains(role)),
            "no {role} demo user in:\n{first}"
        );
    }
    let (no, code) = verify_link(&first);
    let srv = Server::on(db.clone());
    // The seeded demo operator: on a database that has operators, a new operator account would
    // wait for one of them to approve it.
    let (name, password) = first
        .lines()
        .filter(|l| l.starts_with("  demo-"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|w| w.get(1) == Some(&"operator"))
        .map(|w| (w[0].to_string(), w[2].to_string()))
        .expect("a demo operator with its password");
    let admin = srv.api().login(&name, &password);
    let before = counts(&admin);
    assert_eq!(before[0], 21, "parties: {before:?}");
    assert_eq!(before[4], 10, "forest parcels: {before:?}");

    // The price history went through the market: every row a settled trade, summarised.
    let settled = admin
        .get("/v1/trades?status=settled&limit=500")
        .expect(200)
        .body;
    assert_eq!(settled["items"].as_array().unwrap().len(), 46);
    let so2 = admin
        .get("/v1/market/summary?right_type=EM&sub_kind=SO2&region=350700")
        .expect(200)
        .body;
    assert_eq!(so2["last_price"], "6450", "{so2}");
    let second = seed(&db);
    assert!(
        second.contains("already loaded: nothing changed"),
        "{second}"
    );
    assert!(!second.contains("passwords shown once"), "{second}");
    assert_eq!(counts(&admin), before);

    // Every seeded lot conserves (pledged quantity included).
    assert_all_conserved(&admin);

    // The printed registration verifies by its code without a login.
    let anon = srv.api();
    let v = anon
        .get(&format!("/v1/encumbrances/{no}?verification_code={code}"))
        .expect(200)
        .body;
    assert_eq!(v["notice"]["status"], "registered", "{v}");
    // The seed has live pledges, one in enforcement, and registered forest mortgages.
    let pledges: Vec<Value> = admin.get("/v1/pledges?limit=100").expect(200).body["items"]
        .as_array()
        .unwrap()
        .clone();
    let status = |s: &str| pledges.iter().filter(|p| p["status"] == s).count();
    // Three pledges registered directly and one through a funded financing request.
    assert_eq!((status("registered"), status("enforcing")), (4, 1));
    // Financing requests (融资需求): one funded, one taken and awaiting the bank, one open.
    let requests: Vec<Value> = admin.get("/v1/financing-requests").expect(200).body["items"]
        .as_array()
        .unwrap()
        .clone();
    let mut statuses: Vec<&str> = requests
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["funded", "open", "taken"]);
    let mortgages = admin.get("/v1/forest-mortgages?limit=100").expect(200).body;
    assert!(mortgages["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"] == "registered"));
    let out = command(&db).args(["audit", "verify"]).output().unwrap();
    assert!(out.status.success());
}

both_backends!(seed_twice_changes_nothing);

/// `registry serve` on the default embedded database (no DATABASE_URL) loads the demo data on
/// first start and prints a /verify URL that works; never on an explicitly named database.
#[test]
fn first_start_on_default_sqlite_loads_demo() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .env_remove("DATABASE_URL")
        .env("REGISTRY_DATA_DIR", dir.path().join("data"))
        .env("REGISTRY_ADMIN_PASSWORD", common::ADMIN_PASSWORD)
        .env("REGISTRY_PASSWORD_HASH_COST", "fast")
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut url = None;
    let mut all = String::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(120)) {
        all.push_str(&line);
        all.push('\n');
        if let Some(u) = line.strip_prefix("Verify a seeded pledge: ") {
            url = Some(u.to_string());
            break;
        }
    }
    let url = url.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no verify URL printed:\n{all}")
    });
    assert!(all.contains("demo-bank"), "{all}");
    let page = reqwest::blocking::get(&url).unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(html.contains("registered"), "{html}");
    assert!(html.contains("兴业银行股份有限公司"), "{html}");

    // An explicitly named database is never seeded.
    let db = Db::fresh(Backend::Sqlite);
    let srv = Server::on(db);
    assert_eq!(count(&srv.admin(), "/v1/parties"), 0);
}
