//! Logins under attack and passwords over their life: failed logins per account and per client
//! address end in 429 with `Retry-After` (the account's count held in the database, so every
//! process honours it), each failure is audited without the password, a user changes their own
//! password only with the current one and that revokes their tokens, an operator's reset gives a
//! one-time password that must be changed before any token, and a short first-start admin
//! password is refused. Timing is not measured here (the unit test
//! `auth::rules::tests::every_path_verifies_exactly_once` shows every failure does one hash).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{party, user, Api, Backend, Db, Server};
use diesel::prelude::*;
use registry::schema::audit_events as ev;
use serde_json::{json, Value};

/// Failed logins a login name may make before it must wait (the rule, not the code: ten tries).
const ACCOUNT_FREE: usize = 10;
/// Failed logins one client address may make (across names) before it must wait.
const ADDRESS_FREE: usize = 30;

fn bad_login(api: &Api, username: &str) -> common::Reply {
    api.post(
        "/v1/auth/token",
        &json!({"username": username, "password": "not the password at all"}),
    )
}

fn assert_throttled(r: &common::Reply, what: &str) {
    assert_eq!(r.status.as_u16(), 429, "{what}: {}", r.body);
    assert_eq!(r.code(), "too_many_attempts", "{what}");
    let secs: u64 = r
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: a 429 without Retry-After"))
        .parse()
        .expect("Retry-After in seconds");
    assert!(secs >= 1, "{what}: Retry-After {secs}");
}

/// The audit events of failed logins, as (payload, actor).
fn failed_logins(db: &Db) -> Vec<(Value, String)> {
    let mut conn = registry::db::establish(&db.url).unwrap();
    ev::table
        .filter(ev::action.eq("login.failed"))
        .order(ev::id)
        .select((ev::payload, ev::actor))
        .load::<(String, String)>(&mut conn)
        .unwrap()
        .into_iter()
        .map(|(p, a)| (serde_json::from_str(&p).unwrap(), a))
        .collect()
}

fn audited(db: &Db, action: &str) -> usize {
    let mut conn = registry::db::establish(&db.url).unwrap();
    ev::table
        .filter(ev::action.eq(action))
        .count()
        .get_result::<i64>(&mut conn)
        .unwrap() as usize
}

/// After ten failed logins on one name the next attempt is 429 with `Retry-After` — even with the
/// right password, and on another process on the same database; an unknown name behaves the same,
/// so a lockout does not reveal which names exist. Another name is not affected.
fn account_lockout(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    user(&admin, "bank", Some(bank), "credit-officer");
    user(&admin, "bank", Some(bank), "other-officer");
    let api = srv.api();
    for i in 0..ACCOUNT_FREE {
        let r = bad_login(&api, "credit-officer");
        assert_eq!(r.status.as_u16(), 401, "attempt {i}: {}", r.body);
        assert_eq!(r.code(), "invalid_credentials");
    }
    assert_throttled(&bad_login(&api, "credit-officer"), "11th bad password");
    let right = json!({"username": "credit-officer", "password": common::own_password("credit-officer").as_str()});
    assert_throttled(
        &api.post("/v1/auth/token", &right),
        "right password while locked",
    );
    // The count is in the database: a second process refuses too.
    let other = Server::on(srv.db.clone());
    assert_throttled(
        &other.api().post("/v1/auth/token", &right),
        "another process",
    );
    // Other names are not affected.
    api.login(
        "other-officer",
        common::own_password("other-officer").as_str(),
    );
    // An unknown name is locked the same way.
    for _ in 0..ACCOUNT_FREE {
        bad_login(&api, "nobody-here").expect(401);
    }
    assert_throttled(&bad_login(&api, "nobody-here"), "unknown name");
}

/// A client from one address: after thirty failed logins (over many names, so no account lock
/// applies) it gets 429 with `Retry-After` for any login, while another address still logs in.
fn address_limit(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    user(&admin, "bank", Some(bank), "banker");
    let api = srv.api();
    for i in 0..ADDRESS_FREE {
        let r = bad_login(&api, &format!("guess-{i}"));
        assert_eq!(r.status.as_u16(), 401, "attempt {i}: {}", r.body);
    }
    assert_throttled(&bad_login(&api, "guess-next"), "address over its limit");
    let right = json!({"username": "banker", "password": common::own_password("banker").as_str()});
    assert_throttled(
        &api.post("/v1/auth/token", &right),
        "right password from a throttled address",
    );
    // 127.0.0.2 is another client address on the loopback interface.
    let other = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let r = other
        .post(format!("{}/v1/auth/token", srv.base))
        .json(&right)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "another address logs in");
}

/// Each failed login is an audit event naming the login name, the client address and the kind of
/// failure — never the password.
fn failed_login_audited(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    user(&admin, "bank", Some(bank), "banker");
    let api = srv.api();
    bad_login(&api, "banker").expect(401);
    bad_login(&api, "ghost").expect(401);
    api.post(
        "/v1/auth/token",
        &json!({"grant_type": "client_credentials", "client_id": "banker", "client_secret": common::own_password("banker").as_str()}),
    )
    .expect(401);
    let events = failed_logins(&srv.db);
    assert_eq!(events.len(), 3, "{events:?}");
    let reasons: Vec<(&str, &str)> = events
        .iter()
        .map(|(p, _)| {
            (
                p["username"].as_str().unwrap_or(""),
                p["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("banker", "wrong_secret"),
            ("ghost", "unknown_name"),
            ("banker", "wrong_kind")
        ]
    );
    for (payload, _) in &events {
        assert_eq!(payload["client_address"], "127.0.0.1", "{payload}");
        let text = payload.to_string();
        assert!(
            !text.contains("not the password")
                && !text.contains(common::own_password("banker").as_str()),
            "a password in the audit trail: {text}"
        );
    }
}

/// A user changes their own password only with the current one; the change revokes every token
/// issued before it, and only the new password logs in afterwards.
fn password_change(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    let banker = user(&admin, "bank", Some(bank), "banker");
    banker.get(&format!("/v1/parties/{bank}")).expect(200);
    let api = srv.api();
    let change = |current: &str, new: &str| {
        api.post(
            "/v1/auth/password",
            &json!({"username": "banker", "current_password": current, "new_password": new}),
        )
    };
    let r = change("a wrong current password", "a brand new passphrase");
    assert_eq!(r.status.as_u16(), 401, "{}", r.body);
    let r = change(common::own_password("banker").as_str(), "short");
    assert_eq!(r.status.as_u16(), 422, "{}", r.body);
    // Nothing changed so far.
    banker.get(&format!("/v1/parties/{bank}")).expect(200);
    // (The test kit's operator changed its first password too.)
    let changes = audited(&srv.db, "principal.password_changed");
    change(
        common::own_password("banker").as_str(),
        "a brand new passphrase",
    )
    .expect(204);
    banker.get(&format!("/v1/parties/{bank}")).expect(401);
    api.post(
        "/v1/auth/token",
        &json!({"username": "banker", "password": common::own_password("banker").as_str()}),
    )
    .expect(401);
    api.login("banker", "a brand new passphrase")
        .get(&format!("/v1/parties/{bank}"))
        .expect(200);
    assert_eq!(audited(&srv.db, "principal.password_changed"), changes + 1);
}

/// An operator's reset gives a one-time password, revokes the user's tokens and is audited; that
/// password gives no token until the user has changed it. Only an operator may reset, and only a
/// user's password (not an API client's secret).
fn reset_forces_change(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    let banker = user(&admin, "bank", Some(bank), "banker");
    let users = admin.get("/v1/users").expect(200).body["items"].clone();
    let id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "banker")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    banker
        .post(&format!("/v1/users/{id}/reset-password"), &json!({}))
        .expect(403);
    // A password reset is user administration: the user administrator's, not an operator's.
    admin
        .post(&format!("/v1/users/{id}/reset-password"), &json!({}))
        .expect(403);
    let r = srv
        .user_admin()
        .post(&format!("/v1/users/{id}/reset-password"), &json!({}))
        .expect(200);
    let one_time = r.body["one_time_password"].as_str().unwrap().to_string();
    assert!(one_time.chars().count() >= 12);
    // A bank's account: the reset takes effect when an operator approves it.
    banker.get(&format!("/v1/parties/{bank}")).expect(200);
    common::admit(&srv.api(), &r.body);
    banker.get(&format!("/v1/parties/{bank}")).expect(401);
    assert_eq!(audited(&srv.db, "principal.password_reset"), 1);
    let api = srv.api();
    let r = api.post(
        "/v1/auth/token",
        &json!({"username": "banker", "password": one_time}),
    );
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    assert_eq!(r.code(), "password_change_required");
    api.post(
        "/v1/auth/password",
        &json!({"username": "banker", "current_password": one_time, "new_password": "my own new passphrase"}),
    )
    .expect(204);
    api.login("banker", "my own new passphrase")
        .get(&format!("/v1/parties/{bank}"))
        .expect(200);
    // The one-time password is spent.
    api.post(
        "/v1/auth/token",
        &json!({"username": "banker", "password": one_time}),
    )
    .expect(401);
    // An API client's secret is not reset this way.
    let admin = srv.user_admin();
    let client = admin
        .post(
            "/v1/api-clients",
            &json!({"role": "bank", "party_id": bank}),
        )
        .expect(201);
    let cid = client.body["id"].as_i64().unwrap();
    let r = admin
        .post(&format!("/v1/users/{cid}/reset-password"), &json!({}))
        .expect(422);
    assert_eq!(r.code(), "not_a_user");
}

/// `REGISTRY_ADMIN_PASSWORD` shorter than 12 characters: the server refuses to start and says why.
fn short_admin_password_refused(b: Backend) {
    let db = Db::fresh(b);
    let mut child = common::command(&db)
        .env("REGISTRY_ADMIN_PASSWORD", "admin123")
        .args(["serve", "--bind", "127.0.0.1:0", "--workers", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let status = status.expect("the server started with a short admin password");
    assert!(!status.success());
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("REGISTRY_ADMIN_PASSWORD") && err.contains("12"),
        "unclear message: {err}"
    );
}

/// A client on another loopback address (127.0.0.x is all this host).
fn client_from(last_octet: u8) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A login from `client`, optionally with an `X-Forwarded-For` header: (status, code).
fn login_from(
    srv: &Server,
    client: &reqwest::blocking::Client,
    forwarded_for: Option<&str>,
    username: &str,
    password: &str,
) -> (u16, String) {
    let mut req = client
        .post(format!("{}/v1/auth/token", srv.base))
        .json(&json!({"username": username, "password": password}));
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().unwrap_or(Value::Null);
    (status, body["code"].as_str().unwrap_or("").to_string())
}

/// A stranger who sends wrong passwords for a bank officer's name from another address is held
/// back himself, but cannot lock the officer out: the officer, from an address that has not
/// been failing on that name, still logs in — even after mistyping once — on every process.
fn stranger_cannot_lock_out_the_user(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    user(&admin, "bank", Some(bank), "credit-officer");
    let stranger = client_from(2);
    for _ in 0..ACCOUNT_FREE + 3 {
        login_from(&srv, &stranger, None, "credit-officer", "guess guess guess");
    }
    let (status, code) = login_from(&srv, &stranger, None, "credit-officer", "guess again");
    assert_eq!(
        (status, code.as_str()),
        (429, "too_many_attempts"),
        "the stranger keeps guessing"
    );
    let officer = client_from(1);
    let (status, _) = login_from(&srv, &officer, None, "credit-officer", "a typo in it");
    assert_eq!(status, 401);
    let (status, code) = login_from(
        &srv,
        &officer,
        None,
        "credit-officer",
        common::own_password("credit-officer").as_str(),
    );
    assert_eq!(
        status, 200,
        "the real user is locked out by a stranger: {code}"
    );
    let other = Server::on(srv.db.clone());
    for _ in 0..3 {
        login_from(
            &other,
            &stranger,
            None,
            "credit-officer",
            "guess guess guess",
        );
    }
    let (status, _) = login_from(
        &other,
        &client_from(3),
        None,
        "credit-officer",
        common::own_password("credit-officer").as_str(),
    );
    assert_eq!(status, 200, "another process, another clean address");
}

/// `X-Forwarded-For` counts only from a configured trusted proxy, and there only the rightmost
/// hop the proxy wrote: a client that is not the proxy cannot escape the per-address limit by
/// inventing addresses, while behind the proxy a stranger's failures do not hold back another
/// client.
fn forwarded_for_only_from_trusted_proxy(b: Backend) {
    let srv = Server::on_with(Db::fresh(b), &["--trusted-proxy", "127.0.0.2"]);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    user(&admin, "bank", Some(bank), "banker");
    // Behind the proxy: the stranger (203.0.113.9) fails on the name until held back…
    let proxy = client_from(2);
    for _ in 0..ACCOUNT_FREE + 2 {
        login_from(
            &srv,
            &proxy,
            Some("203.0.113.9"),
            "banker",
            "guess guess guess",
        );
    }
    let (status, _) = login_from(&srv, &proxy, Some("203.0.113.9"), "banker", "x");
    assert_eq!(status, 429);
    // …a forged entry left of the proxy's own does not get him a fresh address…
    let (status, _) = login_from(
        &srv,
        &proxy,
        Some("198.51.100.7, 203.0.113.9"),
        "banker",
        common::own_password("banker").as_str(),
    );
    assert_eq!(
        status, 429,
        "the client's own X-Forwarded-For entry was believed"
    );
    // …while the banker at 198.51.100.7 behind the same proxy logs in.
    let (status, code) = login_from(
        &srv,
        &proxy,
        Some("198.51.100.7"),
        "banker",
        common::own_password("banker").as_str(),
    );
    assert_eq!(status, 200, "{code}");
    let events = failed_logins(&srv.db);
    assert_eq!(
        events[0].0["client_address"], "203.0.113.9",
        "{:?}",
        events[0]
    );
    // Not the proxy: the header is ignored, so inventing addresses does not escape the limit.
    let direct = client_from(1);
    for i in 0..ADDRESS_FREE {
        let forged = format!("192.0.2.{i}");
        login_from(
            &srv,
            &direct,
            Some(&forged),
            &format!("guess-{i}"),
            "guess guess",
        );
    }
    let (status, _) = login_from(
        &srv,
        &direct,
        Some("192.0.2.200"),
        "banker",
        common::own_password("banker").as_str(),
    );
    assert_eq!(
        status, 429,
        "X-Forwarded-For from an untrusted peer was believed"
    );
}

both_backends!(
    account_lockout,
    address_limit,
    failed_login_audited,
    password_change,
    reset_forces_change,
    short_admin_password_refused,
    stranger_cannot_lock_out_the_user,
    forwarded_for_only_from_trusted_proxy,
);
