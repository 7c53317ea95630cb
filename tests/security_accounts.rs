//! Segregation of duties for accounts that act for a party: the user administrator alone cannot
//! create, enable or reset an enterprise or bank login (user or API client), because such a login
//! moves or encumbers the party's rights and reads a bank's private terms. Each takes effect only
//! when an operator approves it (proposal kind `party_account`); until then the account cannot log
//! in, and the approval is audited. The registry's command line follows the same rule once the
//! registry is bootstrapped.

mod common;

use std::process::Output;

use common::ledger::key;
use common::{command, party, Api, Backend, Db, Server};
use diesel::prelude::*;
use registry::schema::audit_events as ev;
use serde_json::{json, Value};

fn token(srv: &Server, name: &str, password: &str) -> u16 {
    srv.api()
        .post(
            "/v1/auth/token",
            &json!({"username": name, "password": password}),
        )
        .status
        .as_u16()
}

fn audited(db: &Db, action: &str) -> usize {
    let mut conn = registry::db::establish(&db.url).unwrap();
    ev::table
        .filter(ev::action.eq(action))
        .count()
        .get_result::<i64>(&mut conn)
        .unwrap() as usize
}

fn approve(checker: &Api, id: i64) -> common::Reply {
    checker.post_key(&format!("/v1/proposals/{id}/approve"), &key(), &json!({}))
}

fn user_id(ua: &Api, name: &str) -> i64 {
    let page = ua.get("/v1/users?limit=500").expect(200).body;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .expect("listed")["id"]
        .as_i64()
        .unwrap()
}

/// The attack: the user administrator binds logins to two parties and would then act as both.
/// Neither login works until an operator approved it; the proposal names the party it binds to.
fn party_logins_wait_for_an_operator(b: Backend) {
    let srv = Server::start(b);
    let op = srv.admin();
    let a = party(&op, "enterprise", 1);
    let bank = party(&op, "bank", 2);
    let ua = srv.user_admin();
    let made = ua
        .post(
            "/v1/users",
            &json!({"username": "ent-a", "password": "ent-a-password-long", "role": "enterprise", "party_id": a}),
        )
        .expect(201)
        .body;
    assert_eq!(made["disabled"], true, "{made}");
    let pid = made["approval_proposal"]
        .as_i64()
        .expect("an approval proposal");
    assert_eq!(token(&srv, "ent-a", "ent-a-password-long"), 401);
    // Enabling it directly is a proposal too, not a way around.
    let id = made["id"].as_i64().unwrap();
    let again = ua
        .post(&format!("/v1/users/{id}/enable"), &json!({}))
        .expect(200)
        .body;
    assert!(again["approval_proposal"].is_i64(), "{again}");
    assert_eq!(token(&srv, "ent-a", "ent-a-password-long"), 401);
    // The user administrator cannot approve; an operator can, and sees what is bound to what.
    ua.post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
        .expect(403);
    let p = op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(p["kind"], "party_account", "{p}");
    assert_eq!(p["request"]["party_id"], a, "{p}");
    assert_eq!(p["request"]["role"], "enterprise", "{p}");
    let before = audited(&srv.db, "principal.created_approved");
    approve(&op, pid).expect(200);
    assert_eq!(audited(&srv.db, "principal.created_approved"), before + 1);
    // Approved, but the password the user administrator chose gives no token: the user
    // replaces it first.
    assert_eq!(token(&srv, "ent-a", "ent-a-password-long"), 403);
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "ent-a", "current_password": "ent-a-password-long",
                "new_password": "enterprise own phrase"}),
        )
        .expect(204);
    let ent = srv.api().login("ent-a", "enterprise own phrase");
    ent.get(&format!("/v1/parties/{a}")).expect(200);

    // An API client for a bank: its secret gives no token until an operator approved it.
    let client = ua
        .post(
            "/v1/api-clients",
            &json!({"role": "bank", "party_id": bank}),
        )
        .expect(201)
        .body;
    let login = json!({"grant_type": "client_credentials", "client_id": client["username"],
        "client_secret": client["client_secret"]});
    srv.api().post("/v1/auth/token", &login).expect(401);
    approve(
        &op,
        client["approval_proposal"].as_i64().expect("a proposal"),
    )
    .expect(200);
    srv.api().post("/v1/auth/token", &login).expect(200);

    // A disabled enterprise login comes back only through an operator.
    ua.post(&format!("/v1/users/{id}/disable"), &json!({}))
        .expect(200);
    let r = ua
        .post(&format!("/v1/users/{id}/enable"), &json!({}))
        .expect(200)
        .body;
    assert_eq!(r["disabled"], true, "{r}");
    assert_eq!(token(&srv, "ent-a", "enterprise own phrase"), 401);
    approve(&op, r["approval_proposal"].as_i64().unwrap()).expect(200);
    assert_eq!(token(&srv, "ent-a", "enterprise own phrase"), 200);
}

/// The takeover: the user administrator resets an enterprise user's password and receives the
/// one-time password. Until an operator approves, nothing changes: the user's own password still
/// works and the one-time one gives nothing (not even a password change).
fn party_password_reset_waits_for_an_operator(b: Backend) {
    let srv = Server::start(b);
    let op = srv.admin();
    let a = party(&op, "enterprise", 1);
    let ent = common::user(&op, "enterprise", Some(a), "ent-a");
    let ua = srv.user_admin();
    let id = user_id(&ua, "ent-a");
    let r = ua
        .post(&format!("/v1/users/{id}/reset-password"), &json!({}))
        .expect(200)
        .body;
    let one_time = r["one_time_password"].as_str().unwrap().to_string();
    let pid = r["approval_proposal"]
        .as_i64()
        .expect("an approval proposal");
    ent.get(&format!("/v1/parties/{a}")).expect(200);
    assert_eq!(token(&srv, "ent-a", &common::own_password("ent-a")), 200);
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "ent-a", "current_password": one_time, "new_password": "taken over phrase"}),
        )
        .expect(401);
    let p = op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(p["request"]["action"], "reset_password");
    assert!(p["request"].get("secret_hash").is_none(), "{p}");
    approve(&op, pid).expect(200);
    ent.get(&format!("/v1/parties/{a}")).expect(401);
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "ent-a", "current_password": one_time, "new_password": "a fresh own phrase"}),
        )
        .expect(204);
    assert_eq!(token(&srv, "ent-a", "a fresh own phrase"), 200);
}

fn run(db: &Db, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = command(db);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run registry")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `registry user add` may bootstrap the first operator of a registry, but afterwards an operator
/// it creates is pending (an operator of another person approves it) and must change its
/// password; two operators it made alone cannot operate. `registry token` mints no token for an
/// operator or user administrator.
fn cli_accounts_follow_maker_checker(b: Backend) {
    let srv = Server::start(b);
    let pw = [("REGISTRY_USER_PASSWORD", "cli-chosen-password-1")];
    let first = run(
        &srv.db,
        &[
            "user",
            "add",
            "--username",
            "cli-op-1",
            "--role",
            "operator",
            "--person-id",
            "X1",
        ],
        &pw,
    );
    assert!(first.status.success(), "{}", text(&first));
    // The first operator: enabled, but the password chosen for it must be replaced first.
    let r = srv.api().post(
        "/v1/auth/token",
        &json!({"username": "cli-op-1", "password": "cli-chosen-password-1"}),
    );
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    assert_eq!(r.code(), "password_change_required");
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "cli-op-1", "current_password": "cli-chosen-password-1", "new_password": "first own phrase"}),
        )
        .expect(204);
    let op1 = srv.api().login("cli-op-1", "first own phrase");

    let second = run(
        &srv.db,
        &[
            "user",
            "add",
            "--username",
            "cli-op-2",
            "--role",
            "operator",
            "--person-id",
            "X2",
        ],
        &pw,
    );
    assert!(second.status.success(), "{}", text(&second));
    let out = text(&second);
    assert!(out.contains("approv"), "{out}");
    // Pending: no token, not even a password change.
    assert_eq!(token(&srv, "cli-op-2", "cli-chosen-password-1"), 401);
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "cli-op-2", "current_password": "cli-chosen-password-1", "new_password": "second own phrase"}),
        )
        .expect(401);
    // The token command refuses operators and user administrators, and says why.
    for name in ["cli-op-1", "cli-op-2", "admin"] {
        let t = run(&srv.db, &["token", "--username", name], &[]);
        assert!(!t.status.success(), "token for {name}: {}", text(&t));
        assert!(text(&t).contains("API client"), "{}", text(&t));
    }
    // An enterprise login from the command line is pending too.
    let a = party(&op1, "enterprise", 1);
    let ent = run(
        &srv.db,
        &[
            "user",
            "add",
            "--username",
            "cli-ent",
            "--role",
            "enterprise",
            "--party-id",
            &a.to_string(),
        ],
        &pw,
    );
    assert!(ent.status.success(), "{}", text(&ent));
    assert_eq!(token(&srv, "cli-ent", "cli-chosen-password-1"), 401);
    // The first operator approves the second; then the second changes its password and operates.
    let pending = op1.get("/v1/proposals?status=pending").expect(200).body;
    let ids: Vec<(i64, Value)> = pending["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_i64().unwrap(), p["request"].clone()))
        .collect();
    let op2_pid = ids
        .iter()
        .find(|(_, r)| r["username"] == "cli-op-2")
        .expect("a proposal for cli-op-2")
        .0;
    approve(&op1, op2_pid).expect(200);
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "cli-op-2", "current_password": "cli-chosen-password-1", "new_password": "second own phrase"}),
        )
        .expect(204);
    srv.api().login("cli-op-2", "second own phrase");
}

/// `registry seed` refuses a registry that already holds accounts or data, and changes nothing.
fn seed_refuses_a_registry_in_use(b: Backend) {
    let srv = Server::start(b);
    let op = srv.admin();
    party(&op, "enterprise", 1);
    let before = op.get("/v1/parties").expect(200).body["items"]
        .as_array()
        .unwrap()
        .len();
    let out = run(&srv.db, &["seed"], &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("refus"), "{}", text(&out));
    let after = op.get("/v1/parties").expect(200).body["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, after);
    let users = srv.user_admin().get("/v1/users?limit=500").expect(200).body;
    assert!(
        !users.to_string().contains("demo-operator"),
        "no demo operator may be added: {users}"
    );
}

both_backends!(
    party_logins_wait_for_an_operator,
    party_password_reset_waits_for_an_operator,
    cli_accounts_follow_maker_checker,
    seed_refuses_a_registry_in_use
);
