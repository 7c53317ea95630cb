//! Segregation of duties: user administration is a role of its own, maker-checker compares
//! persons (not accounts), and what moves another party's quantity or lifts a court's hold takes
//! two operators. The amendment code (修改码, R7) is replaced only with the code in force, or after
//! an operator-assisted reset that two operators approved.

mod common;

use std::str::FromStr;

use common::ledger::{assert_all_conserved, available, holding, issue, key, lot_request};
use common::{party, uscc, user, Api, Backend, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// Creates operator `name` for `person` as the user administrator, has `approver` (another
/// person) approve it unless it is the database's first operator, and logs in after the first
/// password change.
fn operator_of(srv: &Server, name: &str, person: &str, approver: Option<&Api>) -> Api {
    common::admit_operator(&srv.api(), name, person, || {
        approver.expect("an approving operator").clone()
    })
}

/// Registers a forest parcel as registration works: `op` proposes, `checker` approves.
fn register_parcel(w: &World, body: &Value) -> i64 {
    let r = w.op.post_key("/v1/forest-rights", &key(), body).expect(202);
    let id = r.body["id"].as_i64().unwrap();
    approve(&w.checker, id).expect(200).body["result"]["id"]
        .as_i64()
        .unwrap()
}

fn approve(checker: &Api, id: i64) -> common::Reply {
    checker.post_key(&format!("/v1/proposals/{id}/approve"), &key(), &json!({}))
}

struct World {
    srv: Server,
    op: Api,
    /// Another account of the same person as `op`.
    op_again: Api,
    /// Another person.
    checker: Api,
    a: i64,
    c: i64,
    ent_a: Api,
    bank: i64,
    banker: Api,
    em: i64,
}

fn world(b: Backend) -> World {
    let srv = Server::start(b);
    let op = operator_of(&srv, "li-wei", "E1001", None);
    let checker = operator_of(&srv, "zhang-min", "E1002", Some(&op));
    let op_again = operator_of(&srv, "li-wei-2", "e1001 ", Some(&checker));
    let a = party(&op, "enterprise", 1);
    let c = party(&op, "enterprise", 2);
    let bank = party(&op, "bank", 3);
    let ent_a = user(&op, "enterprise", Some(a), "ent-a");
    let banker = user(&op, "bank", Some(bank), "banker");
    let em = issue(
        &op,
        &checker,
        lot_request("EM", a, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    World {
        srv,
        op,
        op_again,
        checker,
        a,
        c,
        ent_a,
        bank,
        banker,
        em,
    }
}

/// The bootstrap `admin` administers accounts and nothing else; operators cannot create accounts.
fn user_administration_is_a_role_of_its_own(b: Backend) {
    let w = world(b);
    let ua = w.srv.user_admin();
    // The user administrator does not operate the registry.
    ua.post(
        "/v1/parties",
        &json!({"kind": "enterprise", "name_zh": "某公司", "uscc": uscc(40), "region_code": "350702"}),
    )
    .expect(403);
    let p =
        w.op.post(
            "/v1/lots",
            &lot_request("EM", w.a, "1", "南环有偿〔2026〕90号"),
        )
        .expect(202);
    let pid = p.body["id"].as_i64().unwrap();
    assert_eq!(approve(&ua, pid).status.as_u16(), 403);
    ua.get(&format!("/v1/proposals/{pid}")).expect(403);

    // An operator cannot create accounts of any role, nor disable one.
    for (name, role, person) in [
        ("second-self", "operator", Some("E1001-B")),
        ("an-admin", "user_admin", None),
        ("a-banker", "bank", None),
    ] {
        let party_id = (role == "bank").then_some(w.bank);
        w.op.post(
            "/v1/users",
            &json!({"username": name, "password": "a-long-password-1", "role": role,
                "party_id": party_id, "person_id": person}),
        )
        .expect(403);
    }
    w.op.post(
        "/v1/api-clients",
        &json!({"role": "bank", "party_id": w.bank}),
    )
    .expect(403);
    let users = ua.get("/v1/users").expect(200).body["items"].clone();
    let checker_id = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "zhang-min")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    w.op.post(&format!("/v1/users/{checker_id}/disable"), &json!({}))
        .expect(403);

    // An operator account names its person; other accounts do not; API clients are never operators.
    let r = ua
        .post(
            "/v1/users",
            &json!({"username": "nobody", "password": "a-long-password-1", "role": "operator"}),
        )
        .expect(422);
    assert_eq!(r.body["errors"][0]["field"], "person_id", "{}", r.body);
    ua.post(
        "/v1/users",
        &json!({"username": "bank-person", "password": "a-long-password-1", "role": "bank",
            "party_id": w.bank, "person_id": "E9"}),
    )
    .expect(422);
    ua.post(
        "/v1/api-clients",
        &json!({"role": "operator", "party_id": w.bank}),
    )
    .expect(422);
    // The user administrator creates, disables and lists accounts.
    ua.post(&format!("/v1/users/{checker_id}/disable"), &json!({}))
        .expect(200);
    ua.post(&format!("/v1/users/{checker_id}/enable"), &json!({}))
        .expect(200);
    let listed = ua.get("/v1/users").expect(200).body["items"].clone();
    let me = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "admin")
        .unwrap()
        .clone();
    assert_eq!(me["role"], "user_admin");
    let twin = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "li-wei-2")
        .unwrap()
        .clone();
    assert_eq!(
        twin["person_id"], "E1001",
        "person ids are kept in one form"
    );
}

/// Two accounts of one person are one person to maker-checker.
fn two_accounts_of_one_person_cannot_make_and_check(b: Backend) {
    let w = world(b);
    let p =
        w.op.post(
            "/v1/lots",
            &lot_request("EU", w.a, "600", "用能权〔2026〕7号"),
        )
        .expect(202);
    let pid = p.body["id"].as_i64().unwrap();
    let r = approve(&w.op_again, pid);
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "maker_checker"),
        "{}",
        r.body
    );
    let r = w.op_again.post(
        &format!("/v1/proposals/{pid}/reject"),
        &json!({"reason": "mine"}),
    );
    assert_eq!(r.status.as_u16(), 403, "{}", r.body);
    assert_eq!(
        w.op.get(&format!("/v1/proposals/{pid}")).expect(200).body["status"],
        "pending"
    );
    let ok = approve(&w.checker, pid).expect(200);
    assert_eq!(ok.body["status"], "approved");
    assert_all_conserved(&w.op);
}

/// A registered transfer moves another party's quantity: one operator only proposes it.
fn registered_transfer_needs_a_second_person(b: Backend) {
    let w = world(b);
    let body = json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.c, "quantity": "100",
        "unit_price": "6300", "years": 2, "document_ref": "南平转让合同〔2026〕88号"});
    let p =
        w.op.post_key("/v1/transfers/registered", &key(), &body)
            .expect(202);
    assert_eq!(p.body["kind"], "registered_transfer");
    assert_eq!(available(&w.op, w.a, w.em), d("485.2"));
    assert_eq!(available(&w.op, w.c, w.em), d("0"));
    let pid = p.body["id"].as_i64().unwrap();
    assert_eq!(approve(&w.op, pid).status.as_u16(), 403);
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    assert_eq!(available(&w.op, w.c, w.em), d("0"));
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["status"], "settled", "{}", r.body);
    assert_eq!(available(&w.op, w.a, w.em), d("385.2"));
    assert_eq!(available(&w.op, w.c, w.em), d("100"));
    assert_all_conserved(&w.op);
}

/// Registers a pledge of 100 on `em` with the bank; returns (pledge id, amendment code).
fn pledge(w: &World) -> (i64, String) {
    let p = w
        .ent_a
        .post(
            "/v1/pledges",
            &json!({"lot_id": w.em, "quantity": "100", "lender_party_id": w.bank}),
        )
        .expect(201);
    let id = p.body["id"].as_i64().unwrap();
    let r = w
        .banker
        .post_key(
            &format!("/v1/pledges/{id}/accept"),
            &key(),
            &json!({"secured_amount": "2000000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "3150000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    (id, r.body["amendment_code"].as_str().unwrap().to_string())
}

/// Disposal (any buyer, any price) takes two persons.
fn disposal_needs_a_second_person(b: Backend) {
    let w = world(b);
    let (id, code) = pledge(&w);
    w.banker
        .post_key(
            &format!("/v1/pledges/{id}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "500000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    let sale = json!({"buyer_party_id": w.c, "unit_price": "6300", "years": 2});
    let p =
        w.op.post_key(&format!("/v1/pledges/{id}/dispose"), &key(), &sale)
            .expect(202);
    assert_eq!(p.body["kind"], "disposal");
    let pid = p.body["id"].as_i64().unwrap();
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    let pl = w.op.get(&format!("/v1/pledges/{id}")).expect(200).body;
    assert_eq!(pl["status"], "enforcing");
    assert_eq!(available(&w.op, w.c, w.em), d("0"));
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["status"], "disposed", "{}", r.body);
    assert_eq!(available(&w.op, w.c, w.em), d("100"));
    assert_all_conserved(&w.op);
}

/// Lifting a judicial freeze takes two persons.
fn freeze_lift_needs_a_second_person(b: Backend) {
    let w = world(b);
    let f = w.op.post_key("/v1/judicial-freezes", &key(), &json!({"lot_id": w.em, "party_id": w.a, "quantity": "85.2",
        "court": "南平市延平区人民法院", "case_no": "(2027)闽0702执保12号", "document_ref": "协助执行通知书"})).expect(201);
    let fid = f.body["id"].as_i64().unwrap();
    assert_eq!(available(&w.op, w.a, w.em), d("400"));
    let p =
        w.op.post_key(
            &format!("/v1/judicial-freezes/{fid}/lift"),
            &key(),
            &json!({"document_ref": "解除查封裁定书"}),
        )
        .expect(202);
    assert_eq!(p.body["kind"], "freeze_lift");
    let pid = p.body["id"].as_i64().unwrap();
    assert_eq!(available(&w.op, w.a, w.em), d("400"), "still frozen");
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["status"], "lifted", "{}", r.body);
    assert_eq!(available(&w.op, w.a, w.em), d("485.2"));
    assert_all_conserved(&w.op);
}

/// Lifting a court's freeze of a forest parcel takes two persons.
fn parcel_freeze_lift_needs_a_second_person(b: Backend) {
    let w = world(b);
    let parcel = json!({"certificate_no": "闽(2026)顺昌县不动产权第0000001号", "holder_party_id": w.a,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": "01", "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household"});
    let p = register_parcel(&w, &parcel);
    let f = w
        .op
        .post_key(
            &format!("/v1/forest-rights/{p}/freezes"),
            &key(),
            &json!({"court": "顺昌县人民法院", "case_no": "(2027)闽0721执保8号", "document_ref": "协助执行通知书"}),
        )
        .expect(201);
    let path = format!("/v1/forest-rights/{p}/freezes/{}/lift", f.body["id"]);
    let r =
        w.op.post_key(&path, &key(), &json!({"document_ref": "解除查封裁定书"}))
            .expect(202);
    assert_eq!(r.body["kind"], "parcel_freeze_lift");
    let pid = r.body["id"].as_i64().unwrap();
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["status"], "lifted", "{}", r.body);
}

/// Retiring on a holder's behalf takes two persons; the holder retires its own at once.
fn retirement_on_behalf_needs_a_second_person(b: Backend) {
    let w = world(b);
    let body = json!({"lot_id": w.em, "quantity": "10", "reason": "企业委托注销", "party_id": w.a});
    let p = w.op.post_key("/v1/retirements", &key(), &body).expect(202);
    assert_eq!(p.body["kind"], "retirement");
    assert_eq!(available(&w.op, w.a, w.em), d("485.2"));
    let pid = p.body["id"].as_i64().unwrap();
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(r.body["result"]["kind"], "retirement", "{}", r.body);
    assert_eq!(available(&w.op, w.a, w.em), d("475.2"));
    w.ent_a
        .post_key(
            "/v1/retirements",
            &key(),
            &json!({"lot_id": w.em, "quantity": "5", "reason": "自愿注销"}),
        )
        .expect(201);
    assert_eq!(available(&w.op, w.a, w.em), d("470.2"));
    assert_all_conserved(&w.op);
}

const LOTS_HEADER: &str = "right_type,sub_kind,vintage,compliance_year,valid_from,valid_to,region_code,origin,project,monitoring_period,quantity,holder_uscc,source_document\n";

fn lots(w: &World) -> Vec<Value> {
    w.op.get("/v1/lots?limit=500").expect(200).body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// A lot import issues quantity: one operator proposes the file; another person approves by
/// uploading the same file.
fn lot_import_needs_a_second_person(b: Backend) {
    let w = world(b);
    let holder = uscc(1);
    let csv = format!(
        "{LOTS_HEADER}EM,SO2,2026,,2026-01-01,2030-12-31,350721,paid_use,,,300,{holder},南环有偿〔2026〕31号\n"
    );
    let before = lots(&w).len();
    let upload = |api: &Api, path: &str, body: &str| {
        api.raw("POST", path, "text/csv", body.as_bytes().to_vec())
    };
    let p = upload(&w.op, "/v1/imports/lots", &csv).expect(202);
    assert_eq!(p.body["kind"], "lot_import", "{}", p.body);
    let pid = p.body["id"].as_i64().unwrap();
    assert_eq!(lots(&w).len(), before, "nothing issued by one operator");
    // Neither the proposer under another account nor the generic approval loads it.
    let r = upload(
        &w.op_again,
        &format!("/v1/imports/lots?proposal={pid}"),
        &csv,
    );
    assert_eq!((r.status.as_u16(), r.code()), (403, "maker_checker"));
    assert_eq!(approve(&w.checker, pid).status.as_u16(), 409);
    // Another file is not the proposed one.
    let other = csv.replace("300", "3000");
    let r = upload(
        &w.checker,
        &format!("/v1/imports/lots?proposal={pid}"),
        &other,
    );
    assert_eq!((r.status.as_u16(), r.code()), (409, "import_file_mismatch"));
    assert_eq!(lots(&w).len(), before);
    let r = upload(
        &w.checker,
        &format!("/v1/imports/lots?proposal={pid}"),
        &csv,
    )
    .expect(200);
    assert_eq!(r.body["imported"], 1, "{}", r.body);
    assert_eq!(lots(&w).len(), before + 1);
    let p = w.op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(p["status"], "approved");
    assert_eq!(p["decided_by"], "operator:zhang-min");
    // A proposal is approved once.
    let r = upload(
        &w.checker,
        &format!("/v1/imports/lots?proposal={pid}"),
        &csv,
    );
    assert_eq!(r.status.as_u16(), 409);
    assert_eq!(lots(&w).len(), before + 1);
    assert_all_conserved(&w.op);
}

/// R7: a login alone does not replace the amendment code.
fn amendment_code_needs_the_current_code(b: Backend) {
    let w = world(b);
    let (id, code) = pledge(&w);
    let path = format!("/v1/pledges/{id}/amendment-code");
    let r = w.banker.post(&path, &json!({}));
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "amendment_code_invalid")
    );
    let r = w
        .banker
        .post(&path, &json!({"current_code": "WRONGWRONGWRONG1"}));
    assert_eq!(r.status.as_u16(), 403);
    assert!(r.body.get("amendment_code").is_none());
    // With the code in force it is replaced, and only the new one works.
    let r = w
        .banker
        .post(&path, &json!({"current_code": code}))
        .expect(200);
    let fresh = r.body["amendment_code"].as_str().unwrap().to_string();
    w.banker
        .post(&path, &json!({"current_code": code}))
        .expect(403);

    // A lost code: an operator-assisted reset on the lender's documented request, two persons.
    let reset = format!("/v1/pledges/{id}/amendment-code/reset");
    w.op.post(&reset, &json!({"reason": "经办人离职", "document_ref": ""}))
        .expect(422);
    let p = w
        .op
        .post(
            &reset,
            &json!({"reason": "经办人离职，修改码遗失", "document_ref": "兴业银行南平分行函〔2026〕12号"}),
        )
        .expect(202);
    assert_eq!(p.body["kind"], "amendment_code_reset");
    let pid = p.body["id"].as_i64().unwrap();
    // Until approved, the lender's login alone still cannot replace it.
    w.banker.post(&path, &json!({})).expect(403);
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    approve(&w.checker, pid).expect(200);
    // The reset voided the old code; the lender's login sets a new one, once.
    let e = json!({"amendment_code": fresh, "principal": "1", "interest": "0", "costs": "0"});
    w.banker
        .post_key(&format!("/v1/pledges/{id}/enforce"), &key(), &e)
        .expect(403);
    let r = w.banker.post(&path, &json!({})).expect(200);
    let newest = r.body["amendment_code"].as_str().unwrap().to_string();
    w.banker.post(&path, &json!({})).expect(403);
    let history = r.body["entries"].clone();
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"code_reset"), "{kinds:?}");
    let e = json!({"amendment_code": newest, "principal": "1", "interest": "0", "costs": "0"});
    w.banker
        .post_key(&format!("/v1/pledges/{id}/enforce"), &key(), &e)
        .expect(200);
    // Audited.
    assert_eq!(w.op.get("/v1/audit/verify").expect(200).body["ok"], true);
}

/// The answer to a password login (a token, or why not).
fn token(srv: &Server, name: &str, password: &str) -> common::Reply {
    srv.api().post(
        "/v1/auth/token",
        &json!({"username": name, "password": password}),
    )
}

fn new_password(srv: &Server, name: &str, current: &str, new: &str) -> common::Reply {
    srv.api().post(
        "/v1/auth/password",
        &json!({"username": name, "current_password": current, "new_password": new}),
    )
}

/// The user administrator alone cannot make operator "persons": after the first operator of a
/// fresh database, an operator account works only once an operator of another person than the
/// account's approved it, and re-enabling a disabled operator is approved the same way.
fn operator_accounts_need_an_operator_of_another_person(b: Backend) {
    let srv = Server::start(b);
    let ua = srv.user_admin();
    let create = |name: &str, person: &str| {
        ua.post(
            "/v1/users",
            &json!({"username": name, "password": "chosen-by-the-admin", "role": "operator",
                "person_id": person}),
        )
        .expect(201)
        .body
    };
    // A fresh install: the first operator is created directly.
    let first = create("op-one", "E2001");
    assert!(first["approval_proposal"].is_null(), "{first}");
    assert_eq!(first["disabled"], false);
    new_password(&srv, "op-one", "chosen-by-the-admin", "my-own-phrase-11").expect(204);
    let op = srv.api().login("op-one", "my-own-phrase-11");

    // Two more "persons" made up by the administrator: neither can log in yet.
    let mut pending = vec![];
    for (name, person) in [
        ("ghost-1", "GHOST-1"),
        ("ghost-2", "GHOST-2"),
        ("op-one-b", "E2001"),
    ] {
        let r = create(name, person);
        assert_eq!(r["disabled"], true, "{r}");
        let pid = r["approval_proposal"]
            .as_i64()
            .expect("an approval proposal");
        assert_eq!(
            token(&srv, name, "chosen-by-the-admin").status.as_u16(),
            401
        );
        new_password(&srv, name, "chosen-by-the-admin", "a-fresh-phrase-1").expect(401);
        pending.push(pid);
    }
    // Operators see what they approve; the administrator cannot decide.
    let p = op
        .get(&format!("/v1/proposals/{}", pending[0]))
        .expect(200)
        .body;
    assert_eq!(p["kind"], "operator_account");
    assert_eq!(p["request"]["action"], "create");
    assert_eq!(p["request"]["person_id"], "GHOST-1");
    assert_eq!(approve(&ua, pending[0]).status.as_u16(), 403);
    // An operator cannot vouch for a new account of its own person.
    let r = approve(&op, pending[2]);
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "maker_checker"),
        "{}",
        r.body
    );
    new_password(&srv, "op-one-b", "chosen-by-the-admin", "a-fresh-phrase-1").expect(401);

    // Approved by an operator of another person, the account works (after its first change).
    approve(&op, pending[0]).expect(200);
    new_password(&srv, "ghost-1", "chosen-by-the-admin", "a-fresh-phrase-1").expect(204);
    let ghost = srv.api().login("ghost-1", "a-fresh-phrase-1");
    ghost.get("/v1/proposals").expect(200);
    // ghost-2 stays unusable until someone approves it.
    assert_eq!(
        token(&srv, "ghost-2", "chosen-by-the-admin")
            .status
            .as_u16(),
        401
    );

    // Re-enabling a disabled operator is a proposal too.
    let id = ghost_id(&ua, "ghost-1");
    ua.post(&format!("/v1/users/{id}/disable"), &json!({}))
        .expect(200);
    let r = ua
        .post(&format!("/v1/users/{id}/enable"), &json!({}))
        .expect(200)
        .body;
    assert_eq!(r["disabled"], true, "{r}");
    let pid = r["approval_proposal"]
        .as_i64()
        .expect("an approval proposal");
    assert_eq!(
        token(&srv, "ghost-1", "a-fresh-phrase-1").status.as_u16(),
        401
    );
    approve(&op, pid).expect(200);
    srv.api().login("ghost-1", "a-fresh-phrase-1");
}

fn ghost_id(ua: &Api, name: &str) -> i64 {
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

/// Resetting an operator's password is a proposal: the one-time password works only after an
/// operator of another person approved it, and must then be changed before operating.
fn operator_password_reset_is_a_proposal(b: Backend) {
    let srv = Server::start(b);
    let op = operator_of(&srv, "li-wei", "E1001", None);
    let _checker = operator_of(&srv, "zhang-min", "E1002", Some(&op));
    let ua = srv.user_admin();
    let id = ghost_id(&ua, "zhang-min");
    let r = ua
        .post(&format!("/v1/users/{id}/reset-password"), &json!({}))
        .expect(200)
        .body;
    let one_time = r["one_time_password"].as_str().unwrap().to_string();
    let pid = r["approval_proposal"]
        .as_i64()
        .expect("an approval proposal");
    // Nothing changed yet: the operator's own password works, the one-time one does not.
    let own = common::own_password("zhang-min");
    let checker = srv.api().login("zhang-min", &own);
    assert_eq!(token(&srv, "zhang-min", &one_time).status.as_u16(), 401);
    new_password(&srv, "zhang-min", &one_time, "taken-over-phrase").expect(401);
    // The proposal shows what is asked, never the password or its hash.
    let p = op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(p["request"]["action"], "reset_password");
    assert!(p["request"].get("secret_hash").is_none(), "{p}");
    assert!(!p.to_string().contains(&one_time));
    // The account's own person cannot approve its reset.
    let r = approve(&checker, pid);
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "maker_checker"),
        "{}",
        r.body
    );
    approve(&op, pid).expect(200);
    // Now the one-time password replaces the old one, and must be changed first.
    assert_eq!(token(&srv, "zhang-min", &own).status.as_u16(), 401);
    let r = token(&srv, "zhang-min", &one_time);
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "password_change_required")
    );
    new_password(&srv, "zhang-min", &one_time, "a-new-own-phrase").expect(204);
    srv.api().login("zhang-min", "a-new-own-phrase");
}

/// A new operator (even the first, created directly) replaces the password the user
/// administrator chose before it gets a token.
fn a_new_operator_changes_its_password_before_operating(b: Backend) {
    let srv = Server::start(b);
    srv.user_admin()
        .post(
            "/v1/users",
            &json!({"username": "op-new", "password": "chosen-by-the-admin", "role": "operator",
                "person_id": "E3001"}),
        )
        .expect(201);
    let r = token(&srv, "op-new", "chosen-by-the-admin");
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, "password_change_required"),
        "{}",
        r.body
    );
    new_password(&srv, "op-new", "chosen-by-the-admin", "my-own-phrase-7").expect(204);
    let op = srv.api().login("op-new", "my-own-phrase-7");
    party(&op, "enterprise", 1);
}

/// A change of a forest parcel's holder moves collateral: two persons.
fn parcel_holder_change_needs_a_second_person(b: Backend) {
    let w = world(b);
    let parcel = json!({"certificate_no": "闽(2026)顺昌县不动产权第0000002号", "holder_party_id": w.a,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": "02", "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household"});
    let p = register_parcel(&w, &parcel);
    let path = format!("/v1/forest-rights/{p}/holder-changes");
    let change = json!({"new_holder_party_id": w.c, "document_ref": "林权流转合同 2026-031"});
    let r = w.op.post_key(&path, &key(), &change).expect(202);
    assert_eq!(r.body["kind"], "parcel_holder_change");
    let pid = r.body["id"].as_i64().unwrap();
    let holder = |w: &World| {
        w.op.get(&format!("/v1/forest-rights/{p}")).expect(200).body["holder"]["party_id"].as_i64()
    };
    assert_eq!(holder(&w), Some(w.a), "unchanged until approved");
    assert_eq!(approve(&w.op_again, pid).status.as_u16(), 403);
    assert_eq!(holder(&w), Some(w.a));
    let r = approve(&w.checker, pid).expect(200);
    assert_eq!(
        r.body["result"]["holder"]["party_id"].as_i64(),
        Some(w.c),
        "{}",
        r.body
    );
    assert_eq!(holder(&w), Some(w.c));
}

/// Disposing of a pledge through the exchange (a listing or an auction: the operator sets the
/// price for the pledgor's quantity) takes two persons, as a direct disposal does.
fn disposal_listing_and_auction_need_a_second_person(b: Backend) {
    let w = world(b);
    let (id, code) = pledge(&w);
    w.banker
        .post_key(
            &format!("/v1/pledges/{id}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "500000.00", "interest": "0", "costs": "0"}),
        )
        .expect(200);
    let buckets = |w: &World| {
        let h = holding(&w.op, w.a, w.em);
        (
            common::ledger::dec(&h["pledged"]),
            common::ledger::dec(&h["listed"]),
        )
    };
    let listing = json!({"lot_id": w.em, "pledge_id": id, "quantity": "50", "unit_price": "6300", "years": 2,
        "min_lot": "1", "ends_at": "2026-12-20T08:00:00Z"});
    let r = w.op.post_key("/v1/listings", &key(), &listing).expect(202);
    assert_eq!(r.body["kind"], "disposal_listing");
    let lp = r.body["id"].as_i64().unwrap();
    assert_eq!(
        buckets(&w),
        (d("100"), d("0")),
        "nothing offered before approval"
    );
    assert_eq!(approve(&w.op_again, lp).status.as_u16(), 403);
    assert_eq!(buckets(&w), (d("100"), d("0")));
    let r = approve(&w.checker, lp).expect(200);
    assert_eq!(r.body["result"]["disposal"], true, "{}", r.body);
    assert_eq!(buckets(&w), (d("50"), d("50")));
    let auction = json!({"lot_id": w.em, "pledge_id": id, "quantity": "50", "reserve_price": "6300", "increment": "10",
        "min_bid": "1", "max_bid": "50", "years": 2, "opens_at": "2026-12-02T02:00:00Z",
        "closes_at": "2026-12-02T04:00:00Z", "sealed": false, "deposit": "0"});
    let r = w.op.post_key("/v1/auctions", &key(), &auction).expect(202);
    assert_eq!(r.body["kind"], "disposal_auction");
    let ap = r.body["id"].as_i64().unwrap();
    assert_eq!(buckets(&w), (d("50"), d("50")));
    assert_eq!(approve(&w.op_again, ap).status.as_u16(), 403);
    let r = approve(&w.checker, ap).expect(200);
    assert_eq!(r.body["result"]["disposal"], true, "{}", r.body);
    assert_eq!(buckets(&w), (d("0"), d("100")));
    assert_all_conserved(&w.op);
}

both_backends!(
    operator_accounts_need_an_operator_of_another_person,
    operator_password_reset_is_a_proposal,
    a_new_operator_changes_its_password_before_operating,
    parcel_holder_change_needs_a_second_person,
    disposal_listing_and_auction_need_a_second_person,
    user_administration_is_a_role_of_its_own,
    two_accounts_of_one_person_cannot_make_and_check,
    registered_transfer_needs_a_second_person,
    disposal_needs_a_second_person,
    freeze_lift_needs_a_second_person,
    parcel_freeze_lift_needs_a_second_person,
    retirement_on_behalf_needs_a_second_person,
    lot_import_needs_a_second_person,
    amendment_code_needs_the_current_code,
    parcel_registration_needs_a_second_person,
    parcel_split_needs_a_second_person,
    parcel_import_needs_a_second_person,
    a_merged_party_takes_part_in_no_new_act,
);

const PARCELS_HEADER: &str = "certificate_no,holder_uscc,holder_id_number,rights,county_code,township,village,compartment,sub_compartment,place_name,area_mu,forest_category,commercial_kind,origin,dominant_species,age_group,stock_volume,woodland_term_end,ownership,management_form,registered,disputed\n";

fn parcel_body(holder: i64, n: u32) -> Value {
    json!({"certificate_no": format!("闽(2026)顺昌县不动产权第{n:07}号"), "holder_party_id": holder,
        "rights": ["woodland_use", "tree_ownership", "tree_use"], "county_code": "350721", "township": "埔上镇", "village": "大坪村",
        "compartment": "012", "sub_compartment": format!("{n:02}"), "area_mu": "126.50", "forest_category": "commercial",
        "commercial_kind": "timber", "origin": "planted", "dominant_species": "杉木", "age_group": "近熟林", "stock_volume": "1580.00",
        "woodland_term_end": "2056-12-31", "ownership": "collective", "management_form": "household"})
}

/// The certificate numbers of every registered parcel.
fn certificates(w: &World) -> Vec<String> {
    w.op.get("/v1/forest-rights?limit=500").expect(200).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["certificate_no"].as_str().unwrap().to_string())
        .collect()
}

/// A registered forest parcel is collateral a bank lends against: one operator proposes it, an
/// operator of another person approves, and only then does it exist.
fn parcel_registration_needs_a_second_person(b: Backend) {
    let w = world(b);
    let body = parcel_body(w.a, 11);
    let cert = body["certificate_no"].as_str().unwrap().to_string();
    let r =
        w.op.post_key("/v1/forest-rights", &key(), &body)
            .expect(202);
    assert_eq!(r.body["kind"], "parcel_registration", "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    let pid = r.body["id"].as_i64().unwrap();
    assert!(
        certificates(&w).is_empty(),
        "nothing registered by one operator"
    );
    // While it waits, the same certificate cannot be proposed again.
    let again = w.checker.post_key("/v1/forest-rights", &key(), &body);
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "parcel_exists")
    );
    // Neither the proposer nor another account of the proposer's person approves.
    assert_eq!(approve(&w.op, pid).status.as_u16(), 403);
    let r = approve(&w.op_again, pid);
    assert_eq!((r.status.as_u16(), r.code()), (403, "maker_checker"));
    assert!(certificates(&w).is_empty());
    let r = approve(&w.checker, pid).expect(200);
    let parcel = r.body["result"]["id"].as_i64().expect("the parcel");
    assert_eq!(r.body["result"]["certificate_no"], cert.as_str());
    assert_eq!(certificates(&w), vec![cert.clone()]);
    let p = w.op.get(&format!("/v1/forest-rights/{parcel}")).expect(200);
    assert_eq!(p.body["holder"]["party_id"].as_i64(), Some(w.a));
    assert_eq!(p.body["area_mu"], "126.50");
    let prop = w.op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(
        (&prop["status"], &prop["proposed_by"], &prop["decided_by"]),
        (
            &json!("approved"),
            &json!("operator:li-wei"),
            &json!("operator:zhang-min")
        )
    );
    // Registered once.
    let r = w.op.post_key("/v1/forest-rights", &key(), &body);
    assert_eq!((r.status.as_u16(), r.code()), (409, "parcel_exists"));
    assert!(w.op.get("/v1/audit/verify").expect(200).body["ok"]
        .as_bool()
        .unwrap());
}

/// A split registers new certificates (property rights banks lend against): one operator proposes
/// it, an operator of another person approves, and only then is the parcel split into its parts.
fn parcel_split_needs_a_second_person(b: Backend) {
    let w = world(b);
    let parcel = register_parcel(&w, &parcel_body(w.a, 21));
    let parts = json!({"document_ref": "分割登记 2027-3", "parts": [
        {"certificate_no": "闽(2027)顺昌县不动产权第0002001号", "sub_compartment": "21-1", "area_mu": "60.00", "stock_volume": "750.00"},
        {"certificate_no": "闽(2027)顺昌县不动产权第0002002号", "sub_compartment": "21-2", "area_mu": "66.50", "stock_volume": "830.00"}]});
    let path = format!("/v1/forest-rights/{parcel}/split");
    let r = w.op.post_key(&path, &key(), &parts).expect(202);
    assert_eq!(r.body["kind"], "parcel_split", "{}", r.body);
    assert_eq!(r.body["status"], "pending");
    let pid = r.body["id"].as_i64().unwrap();
    let status = |w: &World| {
        w.op.get(&format!("/v1/forest-rights/{parcel}"))
            .expect(200)
            .body["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(certificates(&w).len(), 1, "no parts by one operator");
    assert_eq!(status(&w), "active");
    // While it waits, the parcel cannot be proposed for another split.
    let again = w.checker.post_key(&path, &key(), &parts);
    assert_eq!(
        (again.status.as_u16(), again.code()),
        (409, "parcel_exists")
    );
    // Neither the proposer nor another account of the proposer's person approves.
    assert_eq!(approve(&w.op, pid).status.as_u16(), 403);
    let r = approve(&w.op_again, pid);
    assert_eq!((r.status.as_u16(), r.code()), (403, "maker_checker"));
    assert_eq!(certificates(&w).len(), 1);
    assert_eq!(status(&w), "active");
    let r = approve(&w.checker, pid).expect(200);
    let made = r.body["result"].as_array().expect("the parts").clone();
    assert_eq!(made.len(), 2);
    assert!(made
        .iter()
        .all(|p| p["split_from"].as_i64() == Some(parcel)));
    assert_eq!(made[0]["holder"]["party_id"].as_i64(), Some(w.a));
    assert_eq!(certificates(&w).len(), 3);
    assert_eq!(status(&w), "split");
    let prop = w.op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(
        (&prop["proposed_by"], &prop["decided_by"]),
        (&json!("operator:li-wei"), &json!("operator:zhang-min"))
    );
    // Split once.
    let r = w.op.post_key(&path, &key(), &parts);
    assert_eq!((r.status.as_u16(), r.code()), (409, "parcel_split"));
    assert!(w.op.get("/v1/audit/verify").expect(200).body["ok"]
        .as_bool()
        .unwrap());
}

/// An import of forest parcels registers collateral too: one operator proposes the file; another
/// person approves by uploading the same file.
fn parcel_import_needs_a_second_person(b: Backend) {
    let w = world(b);
    let holder = uscc(1);
    let cert = "闽(2026)顺昌县不动产权第0000031号";
    let csv = format!(
        "{PARCELS_HEADER}{cert},{holder},,woodland_use;tree_ownership;tree_use,350721,埔上镇,大坪村,012,31,后门山,126.50,commercial,timber,planted,杉木,近熟林,1580.00,2056-12-31,collective,household,true,false\n"
    );
    let upload = |api: &Api, path: &str, body: &str| {
        api.raw("POST", path, "text/csv", body.as_bytes().to_vec())
    };
    let p = upload(&w.op, "/v1/imports/forest-parcels", &csv).expect(202);
    assert_eq!(p.body["kind"], "parcel_import", "{}", p.body);
    let pid = p.body["id"].as_i64().unwrap();
    assert!(
        certificates(&w).is_empty(),
        "nothing registered by one operator"
    );
    let path = format!("/v1/imports/forest-parcels?proposal={pid}");
    let r = upload(&w.op_again, &path, &csv);
    assert_eq!((r.status.as_u16(), r.code()), (403, "maker_checker"));
    let r = approve(&w.checker, pid);
    assert_eq!((r.status.as_u16(), r.code()), (409, "approve_by_upload"));
    // Another file is not the proposed one.
    let r = upload(&w.checker, &path, &csv.replace("126.50", "1265.00"));
    assert_eq!((r.status.as_u16(), r.code()), (409, "import_file_mismatch"));
    assert!(certificates(&w).is_empty());
    let r = upload(&w.checker, &path, &csv).expect(200);
    assert_eq!(r.body["imported"], 1, "{}", r.body);
    assert_eq!(certificates(&w), vec![cert.to_string()]);
    let prop = w.op.get(&format!("/v1/proposals/{pid}")).expect(200).body;
    assert_eq!(prop["status"], "approved");
    assert_eq!(prop["decided_by"], "operator:zhang-min");
    let r = upload(&w.checker, &path, &csv);
    assert_eq!((r.status.as_u16(), r.code()), (409, "proposal_decided"));
}

/// Asserts a 409 `party_inactive`.
fn inactive(r: common::Reply, what: &str) {
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "party_inactive"),
        "{what}: {}",
        r.body
    );
}

/// A party that merged into another takes part in no new act: it is sent nothing, lists, buys,
/// bids, pledges, retires and is granted nothing, and no operator registers anything to it or
/// acts on its behalf. What it holds stays visible; its pledgee still releases, and the merger's
/// forced transfer still hands its holdings to its successor.
fn a_merged_party_takes_part_in_no_new_act(b: Backend) {
    let w = world(b);
    w.op.set_clock("2026-12-01T02:00:00Z");
    let ent_c = user(&w.op, "enterprise", Some(w.c), "ent-c");
    let cl = issue(
        &w.op,
        &w.checker,
        lot_request("EM", w.c, "100", "南环有偿〔2026〕16号"),
    )["id"]
        .as_i64()
        .unwrap();
    // Before the merger: a pledge, an open listing, an auction it was admitted to, a parcel.
    let (pledge, code) = pledge(&w);
    let listing = |ent: &Api, lot: i64| {
        ent.post_key(
            "/v1/listings",
            &key(),
            &json!({"lot_id": lot, "quantity": "10", "unit_price": "6300", "years": 2, "min_lot": "1",
                "ends_at": "2026-12-20T08:00:00Z"}),
        )
    };
    let la = listing(&w.ent_a, w.em).expect(201).body["id"]
        .as_i64()
        .unwrap();
    let lc = listing(&ent_c, cl).expect(201).body["id"].as_i64().unwrap();
    let new_auction = |lot: i64, seller: i64| {
        let proposal = w.op.post_key(
            "/v1/auctions",
            &key(),
            &json!({"lot_id": lot, "seller_party_id": seller, "quantity": "10", "reserve_price": "6300",
                "increment": "10", "min_bid": "1", "max_bid": "10", "years": 2,
                "opens_at": "2026-12-02T02:00:00Z", "closes_at": "2026-12-02T04:00:00Z",
                "sealed": false, "deposit": "0"}),
        )
        .expect(202)
        .body["id"]
        .as_i64()
        .unwrap();
        // An operator's auction of a seller's quantity takes a second person.
        approve(&w.checker, proposal).expect(200).body["result"]["id"]
            .as_i64()
            .unwrap()
    };
    let admit = |auction: i64, party: i64| {
        w.op.post_key(
            &format!("/v1/auctions/{auction}/bidders"),
            &key(),
            &json!({"party_id": party, "deposit": "0", "deposit_ref": "无保证金"}),
        )
    };
    // c's auction with a admitted to bid; a's own auction with c admitted.
    let auction = new_auction(cl, w.c);
    admit(auction, w.a).expect(201);
    let auction_a = new_auction(w.em, w.a);
    admit(auction_a, w.c).expect(201);
    w.op.set_clock("2026-12-02T02:30:00Z");
    let bid = |ent: &Api, auction: i64| {
        ent.post_key(
            &format!("/v1/auctions/{auction}/bids"),
            &key(),
            &json!({"unit_price": "6400", "quantity": "5"}),
        )
    };
    bid(&ent_c, auction_a).expect(201);
    let parcel_a = register_parcel(&w, &parcel_body(w.a, 41));
    let parcel_c = register_parcel(&w, &parcel_body(w.c, 42));

    let m = w
        .op
        .post_key(
            &format!("/v1/parties/{}/changes", w.a),
            &key(),
            &json!({"kind": "merger", "related_party_id": w.c, "document_ref": "吸收合并协议 2026-12"}),
        )
        .expect(200);
    assert_eq!(m.body["status"], "merged");
    let before = (holding(&w.op, w.a, w.em), holding(&w.op, w.c, cl));
    let certs = certificates(&w);

    // Its own acts.
    let send = json!({"lot_id": w.em, "to_party_id": w.c, "quantity": "10", "unit_price": "6300", "years": 2});
    inactive(
        w.ent_a.post_key("/v1/transfers", &key(), &send),
        "a transfer it sends",
    );
    inactive(listing(&w.ent_a, w.em), "a listing");
    inactive(
        w.ent_a.post_key(
            &format!("/v1/listings/{lc}/purchases"),
            &key(),
            &json!({"quantity": "5"}),
        ),
        "a purchase",
    );
    inactive(
        w.ent_a.post_key(
            "/v1/pledges",
            &key(),
            &json!({"lot_id": w.em, "quantity": "10", "lender_party_id": w.bank}),
        ),
        "a pledge",
    );
    inactive(
        w.ent_a.post_key(
            "/v1/retirements",
            &key(),
            &json!({"lot_id": w.em, "quantity": "5", "reason": "自愿注销"}),
        ),
        "a retirement",
    );
    inactive(
        w.ent_a.post_key(
            "/v1/forest-mortgages",
            &key(),
            &json!({"lender_party_id": w.bank, "parcel_ids": [parcel_a]}),
        ),
        "a mortgage application",
    );
    w.op.set_clock("2026-12-02T03:00:00Z");
    inactive(
        w.ent_a.post_key(
            &format!("/v1/auctions/{auction}/bids"),
            &key(),
            &json!({"unit_price": "6400", "quantity": "5"}),
        ),
        "a bid",
    );
    // Others' acts that would make it take part.
    let to_a = json!({"lot_id": cl, "to_party_id": w.a, "quantity": "10", "unit_price": "6300", "years": 2});
    inactive(
        ent_c.post_key("/v1/transfers", &key(), &to_a),
        "a transfer to it",
    );
    inactive(
        ent_c.post_key(
            &format!("/v1/listings/{la}/purchases"),
            &key(),
            &json!({"quantity": "5"}),
        ),
        "buying its listing",
    );
    inactive(admit(auction, w.a), "admitting it as a bidder");
    inactive(
        ent_c.post_key(
            &format!("/v1/auctions/{auction_a}/bids"),
            &key(),
            &json!({"unit_price": "6400", "quantity": "5"}),
        ),
        "a bid on its auction",
    );
    inactive(
        w.op.post_key(
            "/v1/transfers/registered",
            &key(),
            &json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.c, "quantity": "10",
                "unit_price": "6300", "years": 2}),
        ),
        "a registered transfer from it",
    );
    inactive(
        w.op.post_key(
            "/v1/retirements",
            &key(),
            &json!({"lot_id": w.em, "quantity": "10", "reason": "企业委托注销", "party_id": w.a}),
        ),
        "a retirement on its behalf",
    );
    inactive(
        w.op.post_key(
            "/v1/lots",
            &key(),
            &lot_request("EM", w.a, "50", "南环有偿〔2026〕17号"),
        ),
        "an issuance to it",
    );
    inactive(
        w.op.post_key("/v1/forest-rights", &key(), &parcel_body(w.a, 43)),
        "a parcel registered to it",
    );
    inactive(
        w.op.post_key(
            &format!("/v1/forest-rights/{parcel_c}/holder-changes"),
            &key(),
            &json!({"new_holder_party_id": w.a, "document_ref": "林权流转合同 2026-099"}),
        ),
        "a parcel changed to it",
    );
    // Nothing changed.
    assert_eq!((holding(&w.op, w.a, w.em), holding(&w.op, w.c, cl)), before);
    assert_eq!(certificates(&w), certs);
    // Its auction sells nothing: at the close the offered quantity returns to it.
    w.op.set_clock("2026-12-02T04:30:00Z");
    let closed =
        w.op.post_key(
            &format!("/v1/auctions/{auction_a}/close"),
            &key(),
            &json!({}),
        )
        .expect(200);
    assert_eq!(
        (&closed.body["phase"], &closed.body["allocated"]),
        (&json!("failed"), &json!("0")),
        "{}",
        closed.body
    );
    // What it holds stays visible to it.
    assert_eq!(available(&w.ent_a, w.a, w.em), d("375.2"));
    // Its pledgee still acts on the collateral, and the merger hands its holdings to its successor.
    w.banker
        .post_key(
            &format!("/v1/pledges/{pledge}/release"),
            &key(),
            &json!({"amendment_code": code, "quantity": "40"}),
        )
        .expect(200);
    assert_eq!(available(&w.op, w.a, w.em), d("415.2"));
    let r =
        w.op.post_key(
            "/v1/transfers/forced",
            &key(),
            &json!({"lot_id": w.em, "from_party_id": w.a, "to_party_id": w.c, "quantity": "415.2",
                "kind": "merger", "document_ref": "吸收合并协议 2026-12"}),
        )
        .expect(202);
    approve(&w.checker, r.body["id"].as_i64().unwrap()).expect(200);
    assert_eq!(available(&w.op, w.a, w.em), d("0"));
    assert_eq!(available(&w.op, w.c, w.em), d("415.2"));
    assert_all_conserved(&w.op);
}
