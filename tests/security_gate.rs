//! Regulator accounts go through two people like accounts bound to a party: a regulator clears
//! compliance flags (re-opening pledging), sets region flags and reads banks' private terms, so
//! the user administrator alone never creates, enables or resets one. Each waits for an
//! operator's approval (`party_account`), and a regulator replaces the password chosen for it
//! before it gets a token.

mod common;

use common::ledger::key;
use common::{command, party, uscc, Api, Backend, Server};
use serde_json::json;

fn token(srv: &Server, name: &str, password: &str) -> (u16, String) {
    let r = srv.api().post(
        "/v1/auth/token",
        &json!({"username": name, "password": password}),
    );
    (r.status.as_u16(), r.code().to_string())
}

fn approve(checker: &Api, id: i64) -> common::Reply {
    checker.post_key(&format!("/v1/proposals/{id}/approve"), &key(), &json!({}))
}

fn regulator_accounts_wait_for_an_operator(b: Backend) {
    let srv = Server::start(b);
    let op = srv.admin();
    let ua = srv.user_admin();
    let made = ua
        .post(
            "/v1/users",
            &json!({"username": "reg-a", "password": "reg-a-password-long", "role": "regulator"}),
        )
        .expect(201)
        .body;
    assert_eq!(made["disabled"], true, "{made}");
    let pid = made["approval_proposal"]
        .as_i64()
        .expect("an approval proposal");
    assert_eq!(token(&srv, "reg-a", "reg-a-password-long").0, 401);
    ua.post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
        .expect(403);
    let p = op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(p["kind"], "party_account", "{p}");
    assert_eq!(p["request"]["role"], "regulator", "{p}");
    approve(&op, pid).expect(200);
    // Approved, but the password the user administrator chose gives no token.
    assert_eq!(
        token(&srv, "reg-a", "reg-a-password-long"),
        (403, "password_change_required".to_string())
    );
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "reg-a", "current_password": "reg-a-password-long", "new_password": "regulator own phrase"}),
        )
        .expect(204);
    assert_eq!(token(&srv, "reg-a", "regulator own phrase").0, 200);

    // A reset changes nothing until an operator approves it.
    let id = made["id"].as_i64().unwrap();
    let r = ua
        .post(&format!("/v1/users/{id}/reset-password"), &json!({}))
        .expect(200)
        .body;
    let one_time = r["one_time_password"].as_str().unwrap().to_string();
    let reset = r["approval_proposal"]
        .as_i64()
        .expect("an approval proposal");
    assert_eq!(token(&srv, "reg-a", "regulator own phrase").0, 200);
    srv.api()
        .post(
            "/v1/auth/password",
            &json!({"username": "reg-a", "current_password": one_time, "new_password": "taken over phrase"}),
        )
        .expect(401);
    approve(&op, reset).expect(200);
    assert_eq!(token(&srv, "reg-a", "regulator own phrase").0, 401);

    // A disabled regulator comes back only through an operator.
    ua.post(&format!("/v1/users/{id}/disable"), &json!({}))
        .expect(200);
    let again = ua
        .post(&format!("/v1/users/{id}/enable"), &json!({}))
        .expect(200)
        .body;
    assert_eq!(again["disabled"], true, "{again}");
    assert!(again["approval_proposal"].is_i64(), "{again}");
}

/// `registry import forest-parcels FILE` on a registry with operators registers nothing by
/// itself: it proposes the file (`parcel_import`, as the API does) and an operator loads it by
/// uploading the same file.
fn cli_parcel_import_is_a_proposal(b: Backend) {
    let srv = Server::start(b);
    let op = srv.admin();
    party(&op, "enterprise", 1);
    let cert = "闽(2026)顺昌县不动产权第0000041号";
    let csv = format!(
        "certificate_no,holder_uscc,holder_id_number,rights,county_code,township,village,compartment,sub_compartment,place_name,area_mu,forest_category,commercial_kind,origin,dominant_species,age_group,stock_volume,woodland_term_end,ownership,management_form,registered,disputed\n\
         {cert},{},,woodland_use;tree_ownership;tree_use,350721,埔上镇,大坪村,012,41,后门山,126.50,commercial,timber,planted,杉木,近熟林,1580.00,2056-12-31,collective,household,true,false\n",
        uscc(1)
    );
    let file = srv.db.dir.path().join("parcels.csv");
    std::fs::write(&file, &csv).unwrap();
    let out = command(&srv.db)
        .args(["import", "forest-parcels", &file.to_string_lossy()])
        .output()
        .expect("run registry");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    let parcels = |api: &Api| {
        api.get("/v1/forest-rights?limit=500").expect(200).body["items"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        parcels(&op),
        0,
        "registered by the command line alone: {said}"
    );
    let props = op.get("/v1/proposals?limit=500").expect(200).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "parcel_import" && p["status"] == "pending")
        .map(|p| p["id"].as_i64().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(props.len(), 1, "{said}");
    let checker = common::operator(&op, common::SECOND_OPERATOR);
    let r = checker
        .raw(
            "POST",
            &format!("/v1/imports/forest-parcels?proposal={}", props[0]),
            "text/csv",
            csv.into_bytes(),
        )
        .expect(200);
    assert_eq!(r.body["imported"], 1, "{}", r.body);
    assert_eq!(parcels(&op), 1);
}

both_backends!(
    regulator_accounts_wait_for_an_operator,
    cli_parcel_import_is_a_proposal
);
