//! Each server process remembers principals instead of reading them per request; a revocation, a
//! disabled account or a changed password must still stop the old token at once in EVERY
//! process on the database, and a process that cannot hear about changes must not trust what it
//! remembers.

mod common;

use common::{own_password, party, user, Api, Backend, Server};
use diesel::prelude::*;
use serde_json::json;

/// Any authenticated read the bank may do.
fn read(api: &Api) -> u16 {
    api.get("/v1/pledges?limit=1").status.as_u16()
}

fn principal_id(admin: &Api, name: &str) -> i64 {
    let users = admin.get("/v1/users?limit=500").expect(200);
    users.body["items"]
        .as_array()
        .or_else(|| users.body["users"].as_array())
        .and_then(|rows| rows.iter().find(|u| u["username"] == name))
        .and_then(|u| u["id"].as_i64())
        .unwrap_or_else(|| panic!("user {name} in {}", users.body))
}

fn token(api: &Api) -> String {
    api.token.clone().expect("token")
}

/// Process A changes the principal; the very next request on process B with the old token is
/// refused. Repeated, so that a remembered principal is the one being refused each time.
fn revocation_reaches_every_process_at_once(b: Backend) {
    let a = Server::start(b);
    let other = Server::on(a.db.clone());
    let admin = a.admin();
    let user_admin = a.user_admin();
    let bank = party(&admin, "bank", 1);
    let banker = user(&admin, "bank", Some(bank), "banker");
    let id = principal_id(&user_admin, "banker");
    let password = &own_password("banker");

    for round in 0..3 {
        let fresh = a.api().login("banker", password);
        let on_b = other.api().with_token(&token(&fresh));
        // Both processes now remember the principal.
        assert_eq!(read(&on_b), 200, "round {round}: before");
        assert_eq!(read(&on_b), 200, "round {round}: remembered");
        assert_eq!(read(&fresh), 200, "round {round}: on A");
        user_admin
            .post(&format!("/v1/users/{id}/revoke-tokens"), &json!({}))
            .expect(200);
        assert_eq!(read(&on_b), 401, "round {round}: B after revocation on A");
        assert_eq!(
            read(&fresh),
            401,
            "round {round}: A after its own revocation"
        );
    }
    let _ = banker;

    // A disabled account, from B's side: the token issued by B stops on B and on A.
    let on_b = other.api().login("banker", password);
    let on_a = a.api().with_token(&token(&on_b));
    assert_eq!(read(&on_a), 200);
    assert_eq!(read(&on_b), 200);
    other
        .user_admin()
        .post(&format!("/v1/users/{id}/disable"), &json!({}))
        .expect(200);
    assert_eq!(read(&on_a), 401, "A after disabling on B");
    assert_eq!(read(&on_b), 401, "B after its own disabling");

    // A password change on A ends the tokens that B remembers.
    let clerk = user(
        &admin,
        "enterprise",
        Some(party(&admin, "enterprise", 2)),
        "clerk",
    );
    let on_b = other.api().with_token(&token(&clerk));
    assert_eq!(other_read(&on_b), 200);
    a.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "clerk", "current_password": own_password("clerk"),
                "new_password": "a-different-secret-phrase-77"}),
        )
        .expect(204);
    assert_eq!(other_read(&on_b), 401, "B after a password change on A");
}

/// An enterprise's read.
fn other_read(api: &Api) -> u16 {
    api.get("/v1/lots?limit=1").status.as_u16()
}

both_backends!(revocation_reaches_every_process_at_once);

/// PostgreSQL: when a process's listener connection is cut, a revocation made meanwhile on
/// another process still refuses the token there (the process reads principals per request until
/// it listens again), and once it listens again it remembers and forgets as before.
#[test]
fn a_process_that_cannot_listen_does_not_trust_its_memory() {
    let a = Server::start(Backend::Postgres);
    let other = Server::on(a.db.clone());
    let admin = a.admin();
    let user_admin = a.user_admin();
    let bank = party(&admin, "bank", 1);
    user(&admin, "bank", Some(bank), "banker");
    let id = principal_id(&user_admin, "banker");
    let mut sql = PgConnection::establish(&a.db.url).expect("connect");

    let listeners = |sql: &mut PgConnection| -> Vec<i32> {
        #[derive(QueryableByName)]
        struct Pid {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        diesel::sql_query(
            "SELECT pid FROM pg_stat_activity WHERE application_name = \
             'registry-principal-listener' AND datname = current_database()",
        )
        .load::<Pid>(sql)
        .expect("pg_stat_activity")
        .into_iter()
        .map(|p| p.pid)
        .collect()
    };
    let wait_for = |sql: &mut PgConnection, want: usize| {
        for _ in 0..200 {
            if listeners(sql).len() == want {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("listeners: {:?}, want {want}", listeners(sql));
    };
    wait_for(&mut sql, 2);

    let fresh = a.api().login("banker", &own_password("banker"));
    let on_b = other.api().with_token(&token(&fresh));
    assert_eq!(read(&on_b), 200);
    assert_eq!(read(&on_b), 200, "remembered on B");
    // Cut every listener (A's and B's) and wait until their backends are gone.
    for pid in listeners(&mut sql) {
        diesel::sql_query(format!("SELECT pg_terminate_backend({pid})"))
            .execute(&mut sql)
            .expect("terminate");
    }
    wait_for(&mut sql, 0);
    // Nobody hears this revocation.
    user_admin
        .post(&format!("/v1/users/{id}/revoke-tokens"), &json!({}))
        .expect(200);
    assert_eq!(read(&on_b), 401, "B refuses although it heard nothing");

    // The listeners come back; a new token is remembered and forgotten again.
    wait_for(&mut sql, 2);
    let fresh = a.api().login("banker", &own_password("banker"));
    let on_b = other.api().with_token(&token(&fresh));
    assert_eq!(read(&on_b), 200);
    assert_eq!(read(&on_b), 200);
    user_admin
        .post(&format!("/v1/users/{id}/revoke-tokens"), &json!({}))
        .expect(200);
    assert_eq!(read(&on_b), 401, "B after the listeners are back");
}
