//! Two persons for a region's non-attainment flag: a flag blocks every trade moving a pollutant's
//! load into the region (R4), so one operator or one regulator alone neither sets nor lifts it. It
//! is proposed (kind `region_flag`) and takes effect only when an operator of another person
//! approves; until then trades into the region go on.
//! And an enterprise or bank login an operator approved replaces, at its first login, the password
//! the user administrator chose for it (as operators and regulators do).

mod common;

use common::ledger::{assert_all_conserved, issue, key, lot_request};
use common::{party, uscc, user, Api, Backend, Reply, Server};
use serde_json::{json, Value};

fn approve(checker: &Api, id: i64) -> Reply {
    checker.post_key(&format!("/v1/proposals/{id}/approve"), &key(), &json!({}))
}

fn flags(api: &Api) -> Vec<Value> {
    api.get("/v1/region-flags")
        .expect(200)
        .body
        .as_array()
        .unwrap()
        .clone()
}

fn pending_flag_proposals(op: &Api) -> usize {
    let page = op.get("/v1/proposals?status=pending&limit=100").expect(200);
    page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "region_flag")
        .count()
}

fn buy(ent: &Api, listing: i64, quantity: &str) -> Reply {
    ent.post_key(
        &format!("/v1/listings/{listing}/purchases"),
        &key(),
        &json!({ "quantity": quantity }),
    )
}

fn one_person_cannot_set_or_lift_a_region_flag(b: Backend) {
    let srv = Server::start(b);
    let op = common::admit_operator(&srv.api(), "wang-fang", "E2001", || unreachable!());
    let checker = common::admit_operator(&srv.api(), "chen-jie", "E2002", || op.clone());
    let op_again = common::admit_operator(&srv.api(), "wang-fang-2", "E2001", || checker.clone());
    op.set_clock("2026-12-01T02:00:00Z");
    let regulator = user(&op, "regulator", None, "regulator");
    // A seller in 延平区 lists SO2 emission rights; a buyer in 邵武市 buys them.
    let seller = party(&op, "enterprise", 1);
    let ent_seller = user(&op, "enterprise", Some(seller), "seller");
    let em = issue(
        &op,
        &checker,
        lot_request("EM", seller, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    let listing = ent_seller
        .post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": em, "quantity": "20", "unit_price": "6500", "min_lot": "1",
                "ends_at": "2026-12-20T08:00:00Z", "years": 4}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let shaowu = op
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": "邵武买方企业", "uscc": uscc(2), "region_code": "350781"}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    let buyer = user(&op, "enterprise", Some(shaowu), "buyer");

    // One operator proposes the flag: nothing in force yet, a trade into 邵武市 still goes through.
    let flag = json!({"region_code": "350781", "pollutant": "SO2", "non_attainment": true,
        "document_ref": "南环〔2026〕12号"});
    let p = op.post("/v1/region-flags", &flag).expect(202).body;
    assert_eq!(
        (&p["kind"], &p["status"]),
        (&json!("region_flag"), &json!("pending")),
        "{p}"
    );
    let pid = p["id"].as_i64().unwrap();
    assert!(flags(&op).is_empty(), "no flag before approval");
    buy(&buyer, listing, "1").expect(201);

    // Neither the proposer, nor another account of its person, nor a regulator approves it.
    let own = approve(&op, pid);
    assert_eq!(
        (own.status.as_u16(), own.code()),
        (403, "maker_checker"),
        "{}",
        own.body
    );
    let again = approve(&op_again, pid);
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (403, "maker_checker"),
        "{}",
        again.body
    );
    approve(&regulator, pid).expect(403);
    assert!(flags(&op).is_empty());
    buy(&buyer, listing, "1").expect(201);

    // An operator of another person approves: now the flag blocks trades into 邵武市.
    let done = approve(&checker, pid).expect(200).body;
    assert_eq!(done["status"], "approved", "{done}");
    let set = &done["result"];
    assert_eq!(set["non_attainment"], true, "{done}");
    assert_eq!(set["set_by"], "operator:wang-fang", "{done}");
    assert_eq!(set["approved_by"], "operator:chen-jie", "{done}");
    assert_eq!(set["proposal_id"], pid, "{done}");
    assert_eq!(flags(&op).len(), 1);
    assert_eq!(
        buy(&buyer, listing, "1").expect(422).code(),
        "region_non_attainment"
    );

    // A regulator proposes lifting it: it cannot approve its own (nor any) proposal, and the
    // flag stays in force until an operator approves the lifting.
    let lift = json!({"region_code": "350781", "pollutant": "SO2", "non_attainment": false,
        "document_ref": "南环〔2026〕30号"});
    let p = regulator.post("/v1/region-flags", &lift).expect(202).body;
    assert_eq!(p["kind"], "region_flag", "{p}");
    let lift_id = p["id"].as_i64().unwrap();
    approve(&regulator, lift_id).expect(403);
    assert_eq!(
        buy(&buyer, listing, "1").expect(422).code(),
        "region_non_attainment"
    );
    let done = approve(&op, lift_id).expect(200).body;
    assert_eq!(done["result"]["set_by"], "regulator:regulator", "{done}");
    assert_eq!(done["result"]["non_attainment"], false, "{done}");
    buy(&buyer, listing, "1").expect(201);
    assert_eq!(flags(&op).len(), 2, "the history is kept");

    // A decided proposal is not approved twice.
    let twice = approve(&checker, pid);
    assert_eq!(
        (twice.status.as_u16(), twice.code()),
        (409, "proposal_decided"),
        "{}",
        twice.body
    );

    // Bad requests are refused when proposed (problem+json), and nothing is stored.
    let before = pending_flag_proposals(&op);
    for (bad, field) in [
        (
            json!({"region_code": "350799", "pollutant": "SO2", "non_attainment": true, "document_ref": "南环〔2026〕12号"}),
            "region_code",
        ),
        (
            json!({"region_code": "350781", "pollutant": "XYZ", "non_attainment": true, "document_ref": "南环〔2026〕12号"}),
            "pollutant",
        ),
        (
            json!({"region_code": "350781", "pollutant": "SO2", "non_attainment": true, "document_ref": "  "}),
            "document_ref",
        ),
    ] {
        for who in [&op, &regulator] {
            let r = who.post("/v1/region-flags", &bad).expect(422);
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("application/problem+json")),
                "{field}: {:?}",
                r.header("content-type")
            );
            assert_eq!(r.body["errors"][0]["field"], field, "{}", r.body);
        }
    }
    assert_eq!(pending_flag_proposals(&op), before);
    assert_eq!(flags(&op).len(), 2);
    // Enterprises and banks propose nothing.
    ent_seller.post("/v1/region-flags", &flag).expect(403);

    assert_eq!(op.get("/v1/audit/verify").expect(200).body["ok"], true);
    assert_all_conserved(&op);
}

fn token(srv: &Server, name: &str, password: &str) -> Reply {
    srv.api().post(
        "/v1/auth/token",
        &json!({"username": name, "password": password}),
    )
}

/// An enterprise or bank login, approved by an operator, gets no token with the password the user
/// administrator chose until its user replaces it; so does one whose password was reset.
fn party_logins_replace_the_chosen_password_at_first_login(b: Backend) {
    let srv = Server::start(b);
    let op = srv.admin();
    let ua = srv.user_admin();
    let ent = party(&op, "enterprise", 1);
    let bank = party(&op, "bank", 2);
    for (name, role, party_id) in [("ent-a", "enterprise", ent), ("bank-a", "bank", bank)] {
        let chosen = format!("{name}-chosen-by-admin");
        let made = ua
            .post(
                "/v1/users",
                &json!({"username": name, "password": chosen, "role": role, "party_id": party_id}),
            )
            .expect(201)
            .body;
        let pid = made["approval_proposal"].as_i64().expect("a proposal");
        approve(&op, pid).expect(200);
        let r = token(&srv, name, &chosen);
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (403, "password_change_required"),
            "{name}: {}",
            r.body
        );
        let own = format!("{role} own phrase 1");
        srv.api()
            .post(
                "/v1/auth/password",
                &json!({"username": name, "current_password": chosen, "new_password": own}),
            )
            .expect(204);
        token(&srv, name, &chosen).expect(401);
        token(&srv, name, &own).expect(200);

        // A reset, once approved, must be replaced at the next login too.
        let id = made["id"].as_i64().unwrap();
        let r = ua
            .post(&format!("/v1/users/{id}/reset-password"), &json!({}))
            .expect(200)
            .body;
        let one_time = r["one_time_password"].as_str().unwrap().to_string();
        approve(&op, r["approval_proposal"].as_i64().expect("a proposal")).expect(200);
        let r = token(&srv, name, &one_time);
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (403, "password_change_required"),
            "{name}: {}",
            r.body
        );
    }
}

both_backends!(
    one_person_cannot_set_or_lift_a_region_flag,
    party_logins_replace_the_chosen_password_at_first_login,
);
