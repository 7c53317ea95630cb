//! User administration cannot be ended from inside: a user administrator cannot disable their own
//! account, and the last active user administrator is never disabled — not even by two of them
//! disabling each other at the same moment.

mod common;

use common::{user, Api, Backend, Server};
use serde_json::Value;

fn id_of(admin: &Api, username: &str) -> i64 {
    let users = admin.get("/v1/users?limit=200").expect(200).body["items"].clone();
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == username)
        .unwrap_or_else(|| panic!("no user {username}: {users}"))["id"]
        .as_i64()
        .unwrap()
}

fn active_user_admins(admin: &Api) -> usize {
    let users = admin.get("/v1/users?limit=200").expect(200).body["items"].clone();
    users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["role"] == "user_admin" && u["disabled"] == Value::Bool(false))
        .count()
}

/// Disabling one's own account is 409 `cannot_disable_self` and changes nothing; another user
/// administrator may do it.
fn no_self_disable(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.user_admin();
    let me = id_of(&admin, "admin");
    let r = admin.post(&format!("/v1/users/{me}/disable"), &serde_json::json!({}));
    assert_eq!(r.status.as_u16(), 409, "{}", r.body);
    assert_eq!(r.code(), "cannot_disable_self");
    // Still in office.
    assert_eq!(active_user_admins(&admin), 1);
    let second = user(&admin, "user_admin", None, "second-admin");
    second
        .post(&format!("/v1/users/{me}/disable"), &serde_json::json!({}))
        .expect(200);
    let r = second.post(
        &format!("/v1/users/{}/disable", id_of(&second, "second-admin")),
        &serde_json::json!({}),
    );
    assert_eq!(r.code(), "cannot_disable_self", "{}", r.body);
    assert_eq!(active_user_admins(&second), 1);
}

/// Two user administrators disable each other at the same moment, round after round: at most
/// one succeeds, the other is refused (409 `last_user_admin`, or 401 once its own account is
/// off), and one active user administrator always remains.
fn mutual_disable_leaves_one(b: Backend) {
    let srv = Server::start(b);
    let a = srv.user_admin();
    let b_api = user(&a, "user_admin", None, "second-admin");
    let (ida, idb) = (id_of(&a, "admin"), id_of(&a, "second-admin"));
    let (mut a, mut b_api) = (a, b_api);
    for round in 0..6 {
        let (x, y) = (a.clone(), b_api.clone());
        let t1 = std::thread::spawn(move || {
            x.post(&format!("/v1/users/{idb}/disable"), &serde_json::json!({}))
        });
        let t2 = std::thread::spawn(move || {
            y.post(&format!("/v1/users/{ida}/disable"), &serde_json::json!({}))
        });
        let (r1, r2) = (t1.join().unwrap(), t2.join().unwrap());
        let ok = [&r1, &r2]
            .iter()
            .filter(|r| r.status.as_u16() == 200)
            .count();
        assert_eq!(ok, 1, "round {round}: {} / {}", r1.body, r2.body);
        for r in [&r1, &r2] {
            let s = r.status.as_u16();
            assert!(
                s == 200 || s == 409 || s == 401,
                "round {round}: {s} {}",
                r.body
            );
            if s == 409 {
                assert_eq!(r.code(), "last_user_admin");
            }
        }
        // The survivor enables the other again and both log in afresh.
        let survivor = if r1.status.as_u16() == 200 {
            &a
        } else {
            &b_api
        };
        assert_eq!(active_user_admins(survivor), 1, "round {round}");
        let other = if r1.status.as_u16() == 200 { idb } else { ida };
        survivor
            .post(&format!("/v1/users/{other}/enable"), &serde_json::json!({}))
            .expect(200);
        a = srv.user_admin();
        b_api = srv
            .api()
            .login("second-admin", "second-admin-password-long");
    }
}

both_backends!(no_self_disable, mutual_disable_leaves_one);
