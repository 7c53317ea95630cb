//! Foundation: login and token failures, API clients, revocation, role and party scoping,
//! parties and credit codes, error classes, readiness and several processes on one database.

mod common;

use common::{party, user, Api, Backend, Db, Server};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-test-key";

fn claims(uid: i64, iat_offset: i64, exp_offset: i64, iss: &str, aud: &str) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": "admin", "uid": uid, "party_id": null, "role": "operator", "iat": now + iat_offset,
        "nbf": now + iat_offset, "exp": now + exp_offset, "iss": iss, "aud": aud, "ver": 0})
}

fn token_failures(b: Backend) {
    let db = Db::fresh(b);
    let key_file = db.dir.path().join("jwt.key");
    // A key file must be private (0600), or the server refuses it.
    std::fs::write(&key_file, KEY).unwrap();
    let private = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&key_file, private).unwrap();
    let srv = Server::on_with(db, &["--jwt-key-file", key_file.to_str().unwrap()]);
    let api = srv.api();
    let admin = srv.admin();
    admin.get("/v1/users").expect(200);
    let sign = |c: serde_json::Value, key: &[u8]| {
        encode(&Header::default(), &c, &EncodingKey::from_secret(key)).unwrap()
    };
    // The well-formed token signed with the configured key is accepted: the failures below are
    // each caused by the one thing they change.
    let good = sign(
        claims(1, 0, 600, "nanping-registry", "nanping-registry-api"),
        KEY,
    );
    api.with_token(&good).get("/v1/users").expect(200);
    let cases = [
        (
            "expired",
            sign(
                claims(1, -7200, -3600, "nanping-registry", "nanping-registry-api"),
                KEY,
            ),
        ),
        (
            "not yet valid",
            sign(
                claims(1, 3600, 7200, "nanping-registry", "nanping-registry-api"),
                KEY,
            ),
        ),
        (
            "wrong issuer",
            sign(
                claims(1, 0, 600, "someone-else", "nanping-registry-api"),
                KEY,
            ),
        ),
        (
            "wrong audience",
            sign(claims(1, 0, 600, "nanping-registry", "other-api"), KEY),
        ),
        (
            "wrong key",
            sign(
                claims(1, 0, 600, "nanping-registry", "nanping-registry-api"),
                b"another-key-another-key-another-key",
            ),
        ),
        ("alg none", {
            use base64::Engine;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let c = claims(1, 0, 600, "nanping-registry", "nanping-registry-api");
            format!(
                "{}.{}.",
                e.encode(r#"{"alg":"none","typ":"JWT"}"#),
                e.encode(c.to_string())
            )
        }),
        ("garbage", "not.a.token".to_string()),
    ];
    for (what, token) in cases {
        let r = api.with_token(&token).get("/v1/users");
        assert_eq!(r.status.as_u16(), 401, "{what}: {}", r.body);
        assert_eq!(r.code(), "unauthorized", "{what}");
    }
    api.get("/v1/users").expect(401);
    let r = api
        .post(
            "/v1/auth/token",
            &json!({"username": "admin", "password": "wrong"}),
        )
        .expect(401);
    assert_eq!(r.code(), "invalid_credentials");
    api.post(
        "/v1/auth/token",
        &json!({"username": "nobody", "password": "x"}),
    )
    .expect(401);
}

fn clients_and_revocation(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let bank = party(&admin, "bank", 1);
    // Accounts are the user administrator's.
    let admin = srv.user_admin();
    // An API client for the bank's systems: the secret is shown once, never on a replay.
    let created = admin
        .post_key(
            "/v1/api-clients",
            "client-1",
            &json!({"role": "bank", "party_id": bank}),
        )
        .expect(201);
    let client_id = created.body["username"].as_str().unwrap().to_string();
    let secret = created.body["client_secret"].as_str().unwrap().to_string();
    // A bank's client acts for the bank: it works once an operator approves it.
    common::admit(&srv.api(), &created.body);
    let replay = admin
        .post_key(
            "/v1/api-clients",
            "client-1",
            &json!({"role": "bank", "party_id": bank}),
        )
        .expect(201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["username"], created.body["username"]);
    assert!(
        replay.body.get("client_secret").is_none(),
        "a replay must not reveal the secret"
    );
    let login = json!({"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret});
    let tok = srv.api().post("/v1/auth/token", &login).expect(200);
    assert_eq!(tok.body["token_type"], "Bearer");
    let client = srv
        .api()
        .with_token(tok.body["access_token"].as_str().unwrap());
    client.get(&format!("/v1/parties/{bank}")).expect(200);
    // A client's secret is not a user password.
    srv.api()
        .post(
            "/v1/auth/token",
            &json!({"username": client_id, "password": secret}),
        )
        .expect(401);

    // Revoking tokens: the old token stops at once, a new login works.
    let cid = created.body["id"].as_i64().unwrap();
    admin
        .post(&format!("/v1/users/{cid}/revoke-tokens"), &json!({}))
        .expect(200);
    client.get(&format!("/v1/parties/{bank}")).expect(401);
    let tok2 = srv.api().post("/v1/auth/token", &login).expect(200);
    let client2 = srv
        .api()
        .with_token(tok2.body["access_token"].as_str().unwrap());
    client2.get(&format!("/v1/parties/{bank}")).expect(200);
    // Disabling: its token is refused at once and it cannot log in; re-enabling does not revive
    // the old token.
    admin
        .post(&format!("/v1/users/{cid}/disable"), &json!({}))
        .expect(200);
    client2.get(&format!("/v1/parties/{bank}")).expect(401);
    srv.api().post("/v1/auth/token", &login).expect(401);
    let enabled = admin
        .post(&format!("/v1/users/{cid}/enable"), &json!({}))
        .expect(200);
    common::admit(&srv.api(), &enabled.body);
    client2.get(&format!("/v1/parties/{bank}")).expect(401);
    srv.api().post("/v1/auth/token", &login).expect(200);
}

fn role_and_party_scoping(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let a = party(&admin, "enterprise", 11);
    let bb = party(&admin, "enterprise", 12);
    let bank = party(&admin, "bank", 13);
    let ent_a = user(&admin, "enterprise", Some(a), "ent-a");
    let ent_b = user(&admin, "enterprise", Some(bb), "ent-b");
    let banker = user(&admin, "bank", Some(bank), "banker");
    let reg = user(&admin, "regulator", None, "regulator");

    ent_a.get(&format!("/v1/parties/{a}")).expect(200);
    // Another party's object is a 404, never a 403 that would reveal it exists.
    let r = ent_a.get(&format!("/v1/parties/{bb}")).expect(404);
    assert_eq!(r.code(), "not_found");
    ent_a.get(&format!("/v1/parties/{bb}/history")).expect(404);
    ent_b
        .get(&format!("/v1/parties/{a}/compliance-flags"))
        .expect(404);
    ent_a.get("/v1/parties/999999").expect(404);
    // Listing shows an enterprise only itself.
    let list = ent_a.get("/v1/parties").expect(200);
    let ids: Vec<i64> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a]);
    // Actions reserved to operators are 403 for other roles, and change nothing.
    let r = ent_a.post("/v1/parties", &json!({"kind": "enterprise", "name_zh": "x", "uscc": common::uscc(99), "region_code": "350702"})).expect(403);
    assert_eq!(r.code(), "forbidden");
    reg.post("/v1/parties", &json!({"kind": "enterprise", "name_zh": "x", "uscc": common::uscc(99), "region_code": "350702"})).expect(403);
    ent_a
        .post(
            &format!("/v1/parties/{bb}/compliance-flags"),
            &json!({"flag": "unpaid_fees", "reason": "x"}),
        )
        .expect(403);
    ent_a.get("/v1/users").expect(403);
    admin
        .get(&format!("/v1/parties?uscc={}", common::uscc(99)))
        .expect(200)
        .body["items"]
        .as_array()
        .map(|a| assert!(a.is_empty()))
        .unwrap();
    // A regulator reads everything and sets compliance flags (with history).
    reg.get(&format!("/v1/parties/{bb}")).expect(200);
    let f = reg
        .post(
            &format!("/v1/parties/{bb}/compliance-flags"),
            &json!({"flag": "over_emission", "reason": "2025 over-emission"}),
        )
        .expect(201);
    let fid = f.body["id"].as_i64().unwrap();
    admin
        .post(
            &format!("/v1/parties/{bb}/compliance-flags/{fid}/clear"),
            &json!({"reason": "paid"}),
        )
        .expect(200);
    admin
        .post(
            &format!("/v1/parties/{bb}/compliance-flags/{fid}/clear"),
            &json!({"reason": "again"}),
        )
        .expect(404);
    let flags = ent_b
        .get(&format!("/v1/parties/{bb}/compliance-flags"))
        .expect(200);
    assert_eq!(flags.body[0]["active"], false);
    assert_eq!(flags.body[0]["clear_reason"], "paid");
    // A bank finds a borrower by exact credit code, but cannot list everyone.
    let found = banker
        .get(&format!("/v1/parties?uscc={}", common::uscc(12)))
        .expect(200);
    assert_eq!(found.body["items"][0]["id"].as_i64(), Some(bb));
    let all = banker.get("/v1/parties").expect(200);
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        1,
        "a bank lists only itself"
    );
}

fn parties_and_credit_codes(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    let body = json!({"kind": "bank", "name_zh": "兴业银行股份有限公司", "uscc": "91350000158142711F", "region_code": "350000"});
    let r = admin.post("/v1/parties", &body).expect(201);
    assert_eq!(r.body["uscc"], "91350000158142711F");
    let r = admin.post("/v1/parties", &body).expect(409);
    assert_eq!(r.code(), "party_exists");
    let mut wrong = body.clone();
    wrong["uscc"] = json!("91350000158142711G");
    let r = admin.post("/v1/parties", &wrong).expect(422);
    assert_eq!(r.code(), "uscc_check_character");
    assert!(
        r.body["detail"].as_str().unwrap().contains("`F`"),
        "{}",
        r.body
    );
    assert_eq!(r.body["errors"][0]["field"], "uscc");
    wrong["uscc"] = json!("9135000015814271");
    assert_eq!(
        admin.post("/v1/parties", &wrong).expect(422).code(),
        "uscc_invalid"
    );
    wrong["uscc"] = json!("91350000158142711F");
    wrong["region_code"] = json!("3507");
    assert_eq!(
        admin.post("/v1/parties", &wrong).expect(422).body["errors"][0]["field"],
        "region_code"
    );

    // An individual: found by ID number, shown masked, never in full.
    let ind = json!({"kind": "individual", "name_zh": "林木生", "id_number": "350702199001016234", "region_code": "350721"});
    let r = admin.post("/v1/parties", &ind).expect(201);
    assert_eq!(r.body["id_number_masked"], "35****************");
    assert!(!r.body.to_string().contains("350702199001016234"));
    let found = admin
        .get("/v1/parties?id_number=350702199001016234")
        .expect(200);
    assert_eq!(found.body["items"][0]["id"], r.body["id"]);
    assert!(!found.body.to_string().contains("199001016234"));
    admin.post("/v1/parties", &ind).expect(409);
    // R15: the full number is never logged, not even from a query string.
    admin
        .get("/v1/parties?id_number=35070219900101623X")
        .expect(422);
    let log = std::fs::read_to_string(&srv.log).unwrap();
    assert!(log.contains("/v1/parties"), "requests are logged");
    assert!(
        !log.contains("350702199001016234") && !log.contains("35070219900101623X"),
        "an ID number reached the log"
    );

    // A rename and a merger keep their history.
    let pid = r.body["id"].as_i64().unwrap();
    let other = party(&admin, "enterprise", 5);
    admin.post(&format!("/v1/parties/{other}/changes"), &json!({"kind": "rename", "name_zh": "新名称有限公司", "document_ref": "变更登记 2026-1"})).expect(200);
    admin
        .post(
            &format!("/v1/parties/{other}/changes"),
            &json!({"kind": "merger"}),
        )
        .expect(422);
    let m = admin
        .post(
            &format!("/v1/parties/{other}/changes"),
            &json!({"kind": "merger", "related_party_id": pid, "document_ref": "合并协议 2026-7"}),
        )
        .expect(200);
    assert_eq!(m.body["status"], "merged");
    assert_eq!(m.body["name_zh"], "新名称有限公司");
    let h = admin
        .get(&format!("/v1/parties/{other}/history"))
        .expect(200);
    let kinds: Vec<&str> = h
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["registered", "rename", "merger"]);
    assert_eq!(h.body[1]["changes"]["before"]["name_zh"], "测试enterprise5");
    admin.get("/v1/audit/verify").expect(200).body["ok"]
        .as_bool()
        .map(|ok| assert!(ok))
        .unwrap();
}

fn error_classes(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    // (method, path, content type, body, expected status, expected code)
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Vec<u8>,
        u16,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        ("POST", "/v1/parties", "application/json", b"{\"kind\": ".to_vec(), 422, "malformed_json"),
        ("POST", "/v1/parties", "application/json", br#"{"kind":"bank","name_zh":"x","uscc":"91350000158142711F","region_code":"350000","colour":"red"}"#.to_vec(), 422, "validation_failed"),
        ("POST", "/v1/parties", "application/json", br#"{"kind":"bank","name_zh":7,"uscc":"91350000158142711F","region_code":"350000"}"#.to_vec(), 422, "validation_failed"),
        ("POST", "/v1/parties", "application/json", br#"{"kind":"spaceship","name_zh":"x","region_code":"350000"}"#.to_vec(), 422, "validation_failed"),
        ("POST", "/v1/parties", "text/plain", b"hello".to_vec(), 415, "unsupported_media_type"),
        ("POST", "/v1/parties", "application/json", vec![b' '; 1024 * 1024 + 10], 413, "payload_too_large"),
        ("GET", "/v1/no-such-thing", "application/json", vec![], 404, "not_found"),
        ("DELETE", "/v1/parties", "application/json", vec![], 405, "method_not_allowed"),
        ("GET", "/v1/parties/not-a-number", "application/json", vec![], 404, "not_found"),
        ("GET", "/v1/parties?limit=100000", "application/json", vec![], 422, "validation_failed"),
        ("GET", "/v1/parties?cursor=%%%", "application/json", vec![], 422, "validation_failed"),
    ];
    for (method, path, ct, body, status, code) in cases {
        let r = admin.raw(method, path, ct, body);
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (status, code),
            "{method} {path}: {}",
            r.body
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{method} {path}"
        );
    }
    // The field is named for unknown fields and wrong types.
    let r = admin.raw(
        "POST",
        "/v1/parties",
        "application/json",
        br#"{"kind":"bank","name_zh":7}"#.to_vec(),
    );
    assert_eq!(r.body["errors"][0]["field"], "name_zh");
    let r = admin.raw("POST", "/v1/parties", "application/json", br#"{"kind":"bank","name_zh":"x","uscc":"91350000158142711F","region_code":"350000","colour":1}"#.to_vec());
    assert_eq!(r.body["errors"][0]["field"], "colour");
    let r = admin.raw("DELETE", "/v1/parties", "application/json", vec![]);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    // Nothing was created by any of it.
    assert_eq!(
        admin.get("/v1/parties").expect(200).body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Every response carries a request id.
    assert!(admin
        .get("/healthz")
        .header("x-request-id")
        .is_some_and(|v| !v.is_empty()));
}

fn two_processes_share_one_database(b: Backend) {
    let db = Db::fresh(b);
    // Both start at once against an empty database: migrations and bootstrap must not race.
    let (d1, d2) = (db.clone(), db.clone());
    let t1 = std::thread::spawn(move || Server::on(d1));
    let t2 = std::thread::spawn(move || Server::on(d2));
    let (s1, s2) = (t1.join().unwrap(), t2.join().unwrap());
    let admin1 = s1.admin();
    // A token from one process is good at the other: the key is shared through the database.
    let admin2 = Api::new(&s2.base).with_token(admin1.token.as_deref().unwrap());
    let mut handles = Vec::new();
    for (i, api) in [admin1.clone(), admin2.clone()].into_iter().enumerate() {
        handles.push(std::thread::spawn(move || {
            for n in 0..10u32 {
                let code = common::uscc(1000 + i as u32 * 100 + n);
                api.post("/v1/parties", &json!({"kind": "enterprise", "name_zh": format!("企业{n}"), "uscc": code, "region_code": "350702"}))
                    .expect(201);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let all = admin2.get("/v1/parties?limit=100").expect(200);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 20);
    let users = admin1.get("/v1/users").expect(200);
    assert_eq!(
        users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["role"] == "user_admin")
            .count(),
        1,
        "exactly one admin was bootstrapped"
    );
    assert_eq!(admin1.get("/v1/audit/verify").expect(200).body["ok"], true);
}

both_backends!(
    token_failures,
    clients_and_revocation,
    role_and_party_scoping,
    parties_and_credit_codes,
    error_classes,
    two_processes_share_one_database,
);

#[test]
fn readiness_follows_the_database() {
    let cluster = common::pg::OwnCluster::start();
    let srv = Server::on(Db::with_url(cluster.url(), Backend::Postgres));
    let api = srv.api();
    let admin = srv.admin();
    api.get("/readyz").expect(200);
    cluster.stop();
    let r = api.get("/readyz");
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (503, "database_unavailable"),
        "{}",
        r.body
    );
    assert_eq!(admin.get("/v1/parties").status.as_u16(), 503);
    api.get("/healthz").expect(200);
    cluster.restart();
    assert!(
        common::eventually(std::time::Duration::from_secs(30), || api
            .get("/readyz")
            .status
            .as_u16()
            == 200),
        "the server did not recover when the database came back"
    );
    admin.get("/v1/parties").expect(200);
}
