//! Keys live in files, never in the database: read access to the database alone
//! cannot mint a token; the embedded database's files and keys are private to their owner; a
//! PostgreSQL registry does not start without its key files; a signing-key rotation keeps what
//! the old key signed verifiable; `/v1/registry-keys` publishes what the key files hold; keys an
//! older registry kept in its database are moved to files once, never regenerated.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{party, uscc, user, verify_offline, Api, Backend, Db, Server};
use diesel::prelude::*;
use ed25519_dalek::SigningKey;
use registry::auth::jwt::{Claims, Keys, AUDIENCE, ISSUER};
use registry::schema::{principals as pr, settings as st, signing_keys as sk};
use serde_json::{json, Value};

fn conn(db: &Db) -> registry::db::DbConn {
    registry::db::establish(&db.url).unwrap()
}

/// An operator token for `admin`, signed with `secret`: what anyone holding the key can mint.
fn admin_token(db: &Db, secret: &[u8]) -> String {
    let (uid, ver): (i64, i64) = pr::table
        .filter(pr::username.eq("admin"))
        .select((pr::id, pr::token_version))
        .first(&mut conn(db))
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    Keys::from_secret(secret)
        .encode(&Claims {
            sub: "admin".into(),
            uid,
            party_id: None,
            role: "operator".into(),
            iat: now,
            nbf: now,
            exp: now + 365 * 86_400,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            ver,
        })
        .unwrap()
}

fn key_file(db: &Db, name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(db.keys_dir().join(name)).unwrap();
    hex::decode(text.trim()).unwrap()
}

fn signing_key_id(db: &Db) -> String {
    let seed: [u8; 32] = key_file(db, "signing.key").try_into().unwrap();
    registry::keys::key_id(&SigningKey::from_bytes(&seed).verifying_key())
}

fn active_key(api: &Api) -> String {
    let keys = api.get("/v1/registry-keys").expect(200).body;
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["status"] == "active")
        .map(|k| k["key_id"].as_str().unwrap().to_string())
        .unwrap()
}

/// Starts `registry serve` on `db` and expects it to refuse: returns what it wrote to stderr.
fn start_refused(db: &Db) -> String {
    let log = db.dir.path().join("refused.log");
    let mut child = common::command(db)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--checkpoint-interval",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "the server exited 0");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server started without its keys");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::read_to_string(&log).unwrap()
}

fn a_database_reader_cannot_forge_a_token(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    admin.get("/v1/users").expect(200);
    // Everything the database holds that could be a key: none of them signs a token.
    let rows: Vec<(String, String)> = st::table
        .select((st::name, st::value))
        .load(&mut conn(&srv.db))
        .unwrap();
    for (name, value) in &rows {
        assert!(
            !registry::auth::bootstrap::KEY_SETTINGS.contains(&name.as_str()),
            "the database holds the key {name}"
        );
        if let Ok(bytes) = hex::decode(value.trim()) {
            let forged = srv.api().with_token(&admin_token(&srv.db, &bytes));
            forged.get("/v1/users").expect(401);
        }
    }
    // The method is sound: with the key file, the same token is accepted.
    let real = srv
        .api()
        .with_token(&admin_token(&srv.db, &key_file(&srv.db, "jwt.key")));
    real.get("/v1/users").expect(200);
}

fn data_files_are_private_and_the_published_key_is_the_files(b: Backend) {
    let srv = Server::start(b);
    let admin = srv.admin();
    party(&admin, "enterprise", 1);
    if b == Backend::Sqlite {
        for f in ["jwt.key", "signing.key", "id-hmac.key"] {
            assert!(
                srv.db.keys_dir().join(f).exists(),
                "{f} made on first start"
            );
        }
    }
    let mut files = vec![srv.db.dir.path().to_path_buf()];
    let mut checked = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().is_some_and(|e| e == "log") {
            continue; // the test kit's own logs
        }
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "{} has mode {:o}",
            p.display(),
            mode & 0o777
        );
        checked += 1;
    }
    assert!(checked >= 3, "only {checked} files checked");
    // A database writer inserts a key of its own: it is not published.
    let intruder = SigningKey::from_bytes(&[3u8; 32]).verifying_key();
    let _ = diesel::insert_into(sk::table)
        .values((
            sk::key_id.eq(registry::keys::key_id(&intruder)),
            sk::public_key.eq(B64.encode(intruder.as_bytes())),
            sk::first_used_at.eq(chrono::Utc::now().naive_utc()),
        ))
        .execute(&mut conn(&srv.db));
    let again = Server::on(srv.db.clone());
    let keys = again.api().get("/v1/registry-keys").expect(200).body;
    let ids: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [signing_key_id(&srv.db)], "only the key file's key");
    assert_eq!(active_key(&again.api()), signing_key_id(&srv.db));
}

fn starting_without_keys_is_refused_with_a_clear_message(b: Backend) {
    let db = Db::fresh(b);
    match b {
        Backend::Postgres => {
            std::fs::remove_dir_all(db.keys_dir()).unwrap();
            let err = start_refused(&db);
            for needle in ["--jwt-key-file", "--signing-key-file", "--id-hmac-key-file"] {
                assert!(err.contains(needle), "{needle} not named:\n{err}");
            }
            assert!(err.contains("registry keys init"), "{err}");
            let init = common::command(&db)
                .args(["keys", "init", "--dir", db.keys_dir().to_str().unwrap()])
                .output()
                .unwrap();
            assert!(init.status.success(), "{init:?}");
            let mode = std::fs::metadata(db.keys_dir().join("jwt.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        Backend::Sqlite => {
            drop(Server::on(db.clone()));
            // A registry with data never gets a new key in place of a lost one.
            let lost = db.keys_dir().join("id-hmac.key");
            let kept = std::fs::read(&lost).unwrap();
            std::fs::remove_file(&lost).unwrap();
            let err = start_refused(&db);
            assert!(
                err.contains("id-hmac.key") && err.contains("restore"),
                "{err}"
            );
            registry::keys::write_new(&lost, &String::from_utf8(kept).unwrap()).unwrap();
        }
    }
    Server::on(db).admin().get("/v1/users").expect(200);
}

fn rotation_keeps_old_certificates_and_checkpoints_valid(b: Backend) {
    let db = Db::fresh(b);
    let srv = Server::on(db.clone());
    let admin = srv.admin();
    let bank = party(&admin, "bank", 9);
    let banker = user(&admin, "bank", Some(bank), "banker");
    party(&admin, "enterprise", 1);
    let cert = banker
        .post("/v1/search-certificates", &json!({"grantor_uscc": uscc(1)}))
        .expect(201)
        .body;
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    let before: Value = banker.get("/v1/audit/checkpoints").expect(200).body;
    let witness = db.dir.path().join("witness.json");
    std::fs::write(&witness, before.to_string()).unwrap();
    let old_key = active_key(&srv.api());
    drop(srv);

    let rotated = common::command(&db)
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(rotated.status.success(), "{rotated:?}");
    let srv = Server::on(db.clone());
    let admin = srv.admin();
    let new_key = active_key(&srv.api());
    assert_ne!(new_key, old_key);
    let keys = srv.api().get("/v1/registry-keys").expect(200).body;
    assert!(verify_offline(&cert, &keys), "the old certificate verifies");
    party(&admin, "enterprise", 2);
    admin.post("/v1/audit/checkpoints", &json!({})).expect(201);
    let all = admin.get("/v1/audit/checkpoints").expect(200).body;
    let signers: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(signers, [old_key.as_str(), new_key.as_str()]);
    let v = admin.get("/v1/audit/verify").expect(200).body;
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        witnessed_ok(&db, &witness),
        "a checkpoint kept from before the rotation still verifies"
    );
}

fn witnessed_ok(db: &Db, witness: &Path) -> bool {
    common::command(db)
        .args(["audit", "verify", "--witness", witness.to_str().unwrap()])
        .output()
        .unwrap()
        .status
        .success()
}

fn keys_an_older_database_holds_are_exported_never_regenerated(b: Backend) {
    let db = Db::fresh(b);
    drop(Server::on(db.clone()));
    // A registry from before key files: its keys in settings rows, none in files.
    let (jwt, seed) = ([21u8; 32], [22u8; 32]);
    let id_hmac = key_file(&db, "id-hmac.key");
    std::fs::remove_dir_all(db.keys_dir()).unwrap();
    let mut c = conn(&db);
    for (name, value) in [
        ("jwt_secret", hex::encode(jwt)),
        ("signing_key", hex::encode(seed)),
        ("id_hmac_key", hex::encode(&id_hmac)),
    ] {
        diesel::insert_into(st::table)
            .values((st::name.eq(name), st::value.eq(value)))
            .execute(&mut c)
            .unwrap();
    }
    let err = start_refused(&db);
    assert!(err.contains("registry keys export"), "{err}");
    let export = common::command(&db)
        .args(["keys", "export"])
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    assert_eq!(key_file(&db, "jwt.key"), jwt);
    assert_eq!(key_file(&db, "signing.key"), seed);
    assert_eq!(key_file(&db, "id-hmac.key"), id_hmac);
    let mode = std::fs::metadata(db.keys_dir().join("signing.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let left: i64 = st::table
        .filter(st::name.eq_any(registry::auth::bootstrap::KEY_SETTINGS))
        .count()
        .get_result(&mut c)
        .unwrap();
    assert_eq!(left, 0, "the database no longer holds keys");
    let srv = Server::on(db.clone());
    // The same keys: a token signed with the old JWT secret is still accepted.
    srv.api()
        .with_token(&admin_token(&db, &jwt))
        .get("/v1/users")
        .expect(200);
    assert_eq!(
        active_key(&srv.api()),
        registry::keys::key_id(&SigningKey::from_bytes(&seed).verifying_key())
    );
}

/// A secret key file that its group or other accounts can read is refused at start, on either
/// backend, with a message naming the file, its mode and the fix; after `chmod 600` the same
/// files start.
fn a_key_file_readable_by_others_is_refused(b: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let db = Db::fresh(b);
    // The embedded default makes its key files on first start; PostgreSQL's are made by the kit.
    drop(Server::on(db.clone()));
    for (name, mode) in [
        ("signing.key", 0o644),
        ("jwt.key", 0o640),
        ("id-hmac.key", 0o604),
    ] {
        let path = db.keys_dir().join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let log = start_refused(&db);
        assert!(
            log.contains(&path.display().to_string())
                && log.contains(&format!("{mode:04o}"))
                && log.contains("chmod 600"),
            "{name} {mode:o}: unclear message: {log}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Server::on(db.clone()).admin().get("/v1/users").expect(200);
}

both_backends!(
    a_database_reader_cannot_forge_a_token,
    data_files_are_private_and_the_published_key_is_the_files,
    starting_without_keys_is_refused_with_a_clear_message,
    rotation_keeps_old_certificates_and_checkpoints_valid,
    keys_an_older_database_holds_are_exported_never_regenerated,
    a_key_file_readable_by_others_is_refused,
);
