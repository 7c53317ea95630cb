//! The shared test kit: spawn the real `registry` binary on a fresh database of either backend,
//! talk HTTP to it, log in as each role.
#![allow(dead_code)]

pub mod ledger;
pub mod pg;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod name { fn sqlite(); fn postgres(); }` so every black-box test runs, and is
/// reported, on both backends.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::common::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name($crate::common::Backend::Postgres)
            }
        }
    )*};
}

pub const ADMIN_PASSWORD: &str = "test-admin-password";

/// A database for one test: its URL and the directory that holds SQLite files and logs.
#[derive(Clone)]
pub struct Db {
    pub url: String,
    pub backend: Backend,
    pub dir: Arc<tempfile::TempDir>,
}

impl Db {
    pub fn fresh(backend: Backend) -> Db {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let url = match backend {
            Backend::Sqlite => dir
                .path()
                .join("registry.db")
                .to_string_lossy()
                .into_owned(),
            Backend::Postgres => pg::fresh_database(),
        };
        Db { url, backend, dir }.with_keys()
    }

    pub fn with_url(url: String, backend: Backend) -> Db {
        Db {
            url,
            backend,
            dir: Arc::new(tempfile::tempdir().expect("temp dir")),
        }
        .with_keys()
    }

    /// The key files every process gets (`REGISTRY_KEYS_DIR`): a PostgreSQL registry needs them
    /// supplied (what `registry keys init` writes); an embedded one makes its own on first start.
    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    fn with_keys(self) -> Db {
        if self.backend == Backend::Postgres {
            registry::keys::init(&registry::keys::KeyPaths::in_dir(&self.keys_dir()))
                .expect("key files");
        }
        self
    }
}

/// A running `registry serve` process; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub db: Db,
    pub log: PathBuf,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_registry")
}

/// A `registry` command on `db` with the test settings.
pub fn command(db: &Db) -> Command {
    let mut cmd = Command::new(binary());
    cmd.env("DATABASE_URL", &db.url)
        .env("REGISTRY_DATA_DIR", db.dir.path())
        .env("REGISTRY_KEYS_DIR", db.keys_dir())
        .env("REGISTRY_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("REGISTRY_PASSWORD_HASH_COST", "fast")
        .env("RUST_LOG", "info");
    cmd
}

impl Server {
    pub fn start(backend: Backend) -> Server {
        Server::on(Db::fresh(backend))
    }

    /// Starts another process on the same database.
    pub fn on(db: Db) -> Server {
        Server::on_with(db, &[])
    }

    pub fn on_with(db: Db, extra: &[&str]) -> Server {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = db.dir.path().join(format!("server-{n}.log"));
        let mut cmd = command(&db);
        cmd.args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "2",
            "--test-clock",
            "--checkpoint-interval",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = cmd.spawn().expect("spawn registry");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("registry listening on ") {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(b) => b,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            }
        };
        Server {
            child,
            base,
            db,
            log,
        }
    }

    pub fn api(&self) -> Api {
        Api::new(&self.base)
    }

    /// Kills the process at once (kill -9).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The first operator (created on first use by the user administrator). Tests call it
    /// `admin` for history: the bootstrap `admin` is now a user administrator that cannot operate.
    pub fn admin(&self) -> Api {
        operator(&self.api(), OPERATOR)
    }

    /// The bootstrap user administrator (`admin`, role `user_admin`).
    pub fn user_admin(&self) -> Api {
        self.api().login("admin", ADMIN_PASSWORD)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP client for one server, optionally carrying a bearer token.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub token: Option<String>,
    client: Client,
}

/// A response: status, headers and JSON body (Null when not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The reply to `method path`, checked against the committed spec: a JSON body may carry no
    /// field its response schema does not declare (see [`spec_check`]).
    fn from(method: &str, path: &str, r: Response) -> Reply {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let reply = Reply {
            status,
            headers,
            body,
        };
        spec_check::assert_declared(method, path, &reply);
        reply
    }
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
    /// Asserts the status, printing the body when it differs.
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected reply: {}",
            self.body
        );
        self
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Api {
    pub fn new(base: &str) -> Api {
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Api {
            base: base.to_string(),
            token: None,
            client,
        }
    }

    pub fn with_token(&self, token: &str) -> Api {
        Api {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    pub fn login(&self, username: &str, password: &str) -> Api {
        let r = self
            .post(
                "/v1/auth/token",
                &json!({"username": username, "password": password}),
            )
            .expect(200);
        self.with_token(r.body["access_token"].as_str().expect("token"))
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        let mut b = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            b = b.bearer_auth(t);
        }
        b
    }

    pub fn get(&self, path: &str) -> Reply {
        Reply::from(
            "GET",
            path,
            self.req(reqwest::Method::GET, path).send().expect("GET"),
        )
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            "POST",
            path,
            self.req(reqwest::Method::POST, path)
                .json(body)
                .send()
                .expect("POST"),
        )
    }

    /// POST with an Idempotency-Key.
    pub fn post_key(&self, path: &str, key: &str, body: &Value) -> Reply {
        Reply::from(
            "POST",
            path,
            self.req(reqwest::Method::POST, path)
                .header("Idempotency-Key", key)
                .json(body)
                .send()
                .expect("POST"),
        )
    }

    /// POST with an Idempotency-Key; a transport failure (server killed, refused) is an `Err`
    /// rather than a panic, so a client can retry with the same key.
    pub fn try_post_key(&self, path: &str, key: &str, body: &Value) -> reqwest::Result<Reply> {
        self.req(reqwest::Method::POST, path)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .map(|r| Reply::from("POST", path, r))
    }

    /// GET; a transport failure is an `Err`.
    pub fn try_get(&self, path: &str) -> reqwest::Result<Reply> {
        self.req(reqwest::Method::GET, path)
            .send()
            .map(|r| Reply::from("GET", path, r))
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        Reply::from(
            "PUT",
            path,
            self.req(reqwest::Method::PUT, path)
                .json(body)
                .send()
                .expect("PUT"),
        )
    }

    /// A request with a raw body and content type.
    pub fn raw(&self, method: &str, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        Reply::from(
            method,
            path,
            self.req(m, path)
                .header("content-type", content_type)
                .body(body)
                .send()
                .expect("request"),
        )
    }

    /// Moves the server's clock (it must run with --test-clock).
    pub fn set_clock(&self, now: &str) {
        self.put("/v1/test/clock", &json!({ "now": now }))
            .expect(200);
    }
}

/// A valid credit code for `n` (a test-only generator over R1's check character).
pub fn uscc(n: u32) -> String {
    const SET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
    const W: [u32; 17] = [
        1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
    ];
    let first = format!("91350702{:09}", n % 1_000_000_000);
    let sum: u32 = first
        .bytes()
        .zip(W)
        .map(|(c, w)| SET.iter().position(|s| *s == c).unwrap() as u32 * w)
        .sum();
    let check = SET[((31 - sum % 31) % 31) as usize] as char;
    format!("{first}{check}")
}

/// Registers a party of `kind` and returns its id.
pub fn party(admin: &Api, kind: &str, n: u32) -> i64 {
    let r = admin
        .post(
            "/v1/parties",
            &json!({"kind": kind, "name_zh": format!("测试{kind}{n}"), "uscc": uscc(n), "region_code": "350702"}),
        )
        .expect(201);
    r.body["id"].as_i64().expect("id")
}

/// Creates a user bound to a party and returns a logged-in client. Accounts are created by the
/// bootstrap user administrator whatever `admin` is logged in as (only `user_admin` may); an
/// operator account is its own person, named after the account.
pub fn user(admin: &Api, role: &str, party_id: Option<i64>, name: &str) -> Api {
    let password = format!("{name}-password-long");
    if role == "operator" {
        return new_operator(admin, name, &format!("P-{}", name.to_uppercase()));
    }
    let made = Api::new(&admin.base)
        .login("admin", ADMIN_PASSWORD)
        .post(
            "/v1/users",
            &json!({"username": name, "password": password, "role": role, "party_id": party_id}),
        )
        .expect(201);
    admit(admin, &made.body);
    if !matches!(role, "enterprise" | "bank" | "regulator") {
        return admin.login(name, &password);
    }
    // An enterprise, bank or regulator user replaces the password the user administrator chose
    // before it gets a token: afterwards it logs in with [`own_password`].
    Api::new(&admin.base)
        .post(
            "/v1/auth/password",
            &json!({"username": name, "current_password": password,
                "new_password": own_password(name)}),
        )
        .expect(204);
    admin.login(name, &own_password(name))
}

/// An enterprise or bank account (user or API client) that the user administrator created,
/// enabled or reset waits for an operator's approval (`approval_proposal`): [`OPERATOR`]
/// approves it. Does nothing for an answer without one.
/// When `api` is itself an operator (a test world with operators of its own), it approves; the
/// kit's operator is made only for worlds that have none, so the two never ask each other first.
pub fn admit(api: &Api, answer: &Value) {
    if let Some(id) = answer["approval_proposal"].as_i64() {
        let (path, key) = (format!("/v1/proposals/{id}/approve"), format!("admit-{id}"));
        let own = api.post_key(&path, &key, &json!({}));
        if own.status != 200 {
            operator(api, OPERATOR)
                .post_key(&path, &key, &json!({}))
                .expect(200);
        }
    }
}

/// The operator account every test acts as by default.
pub const OPERATOR: &str = "op-admin";
/// A second operator, another person, who approves what the first proposes.
pub const SECOND_OPERATOR: &str = "op-second";

/// Logs in as operator `name` (its own person), creating the account on first use.
pub fn operator(api: &Api, name: &str) -> Api {
    new_operator(api, name, &format!("P-{}", name.to_uppercase()))
}

/// The password the kit's operators and enterprise, bank and regulator users choose at first
/// login (they must replace the one the user administrator chose; it may not contain the username).
pub fn own_password(name: &str) -> String {
    format!("own-{}-phrase-9", name.len())
}

/// Creates operator account `name` of `person` as the user administrator (or finds it) and logs
/// in. The registry lets the user administrator create only a database's first operator
/// directly; a later one waits for an operator of another person to approve it, so the kit
/// approves as [`OPERATOR`] (as [`SECOND_OPERATOR`] when the new account is OPERATOR's person).
/// A new operator then replaces the administrator's password with [`own_password`].
pub fn new_operator(api: &Api, name: &str, person: &str) -> Api {
    let approver = if person == format!("P-{}", OPERATOR.to_uppercase()) {
        SECOND_OPERATOR
    } else {
        OPERATOR
    };
    admit_operator(api, name, person, || operator(api, approver))
}

/// Like [`new_operator`], with the approving operator given (called only when one is needed).
pub fn admit_operator(api: &Api, name: &str, person: &str, approver: impl FnOnce() -> Api) -> Api {
    let password = format!("{name}-password-long");
    let r = Api::new(&api.base).login("admin", ADMIN_PASSWORD).post(
        "/v1/users",
        &json!({"username": name, "password": password, "role": "operator", "person_id": person}),
    );
    if r.code() == "username_taken" {
        return Api::new(&api.base).login(name, &own_password(name));
    }
    assert_eq!(
        r.status.as_u16(),
        201,
        "creating operator {name}: {}",
        r.body
    );
    if let Some(id) = r.body["approval_proposal"].as_i64() {
        approver()
            .post_key(
                &format!("/v1/proposals/{id}/approve"),
                &format!("admit-{id}"),
                &json!({}),
            )
            .expect(200);
    }
    Api::new(&api.base)
        .post(
            "/v1/auth/password",
            &json!({"username": name, "current_password": password,
                "new_password": own_password(name)}),
        )
        .expect(204);
    Api::new(&api.base).login(name, &own_password(name))
}

/// Approves proposal `id` as the second operator (another person than [`OPERATOR`]); returns the
/// approved proposal.
pub fn approve(api: &Api, id: i64) -> Value {
    operator(api, SECOND_OPERATOR)
        .post_key(
            &format!("/v1/proposals/{id}/approve"),
            &format!("approve-{id}"),
            &json!({}),
        )
        .expect(200)
        .body
}

/// The two-person flow: `maker` proposes (`POST path` answering 202 with a proposal) and the
/// second operator approves; returns what the approval did (the proposal's `result`).
pub fn two_person(maker: &Api, path: &str, key: &str, body: &Value) -> Value {
    let r = maker.post_key(path, key, body).expect(202);
    let id = r.body["id"].as_i64().expect("proposal id");
    approve(maker, id)["result"].clone()
}

/// Changes the market settings: `maker` proposes (`PUT /v1/market/settings` answering 202) and
/// the second operator approves; returns the settings now in force.
pub fn market_settings(maker: &Api, settings: &Value) -> Value {
    let r = maker.put("/v1/market/settings", settings).expect(202);
    let id = r.body["id"].as_i64().expect("proposal id");
    approve(maker, id)["result"].clone()
}

/// Sets (or lifts) a region flag: `maker`, an operator or a regulator, proposes (`POST
/// /v1/region-flags` answering 202, kind `region_flag`) and `checker`, an operator of another
/// person, approves; returns the flag now in force (the proposal's `result`).
pub fn region_flag(maker: &Api, checker: &Api, body: &Value) -> Value {
    let r = maker.post("/v1/region-flags", body).expect(202);
    assert_eq!(r.body["kind"], "region_flag", "{}", r.body);
    let id = r.body["id"].as_i64().expect("proposal id");
    checker
        .post_key(
            &format!("/v1/proposals/{id}/approve"),
            &format!("approve-{id}"),
            &json!({}),
        )
        .expect(200)
        .body["result"]
        .clone()
}

/// Like [`two_person`], but returns a reply: a refusal of the proposal as it is; else the
/// approval's reply, whose body is what the approval did (the proposal's `result`) when it
/// succeeded, or the refusal at approval time.
pub fn two_person_reply(maker: &Api, path: &str, key: &str, body: &Value) -> Reply {
    let r = maker.post_key(path, key, body);
    if r.status.as_u16() != 202 {
        return r;
    }
    let id = r.body["id"].as_i64().expect("proposal id");
    let mut a = operator(maker, SECOND_OPERATOR).post_key(
        &format!("/v1/proposals/{id}/approve"),
        &format!("approve-{id}"),
        &json!({}),
    );
    if a.status.as_u16() == 200 {
        a.body = a.body["result"].clone();
    }
    a
}

/// Polls `f` until it returns true or the deadline passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Verifies a search certificate with nothing but the published key: what a bank does offline.
pub fn verify_offline(cert: &Value, keys: &Value) -> bool {
    let Some(key) = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == cert["key_id"])
    else {
        return false;
    };
    let public: [u8; 32] = B64
        .decode(key["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let Ok(signature) = B64.decode(cert["signature"].as_str().unwrap_or("")) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&signature) else {
        return false;
    };
    let message = serde_json_canonicalizer::to_string(&cert["statement"]).unwrap();
    VerifyingKey::from_bytes(&public)
        .unwrap()
        .verify(message.as_bytes(), &signature)
        .is_ok()
}

/// Every JSON response a test receives carries only fields the spec declares.
///
/// A client generated from `openapi/openapi.json` drops what its schema does not declare (the
/// amendment code was lost that way), so a field the server sends and the spec omits is a defect
/// even when the test that sees it asserts nothing about it. For each reply: the operation by
/// method and path template, its response for the status (a problem+json reply the operation does
/// not list is checked against `Problem`), `$ref`s resolved, `allOf` merged, `oneOf`/`anyOf`
/// matched by the variant that fits; an object may carry only declared properties unless its
/// schema has `additionalProperties`, and a schema that declares no properties is free-form.
/// Paths the spec does not describe (test-only endpoints, unknown routes) are not checked.
pub mod spec_check {
    use super::{OnceLock, Reply, Value};

    fn spec() -> &'static Value {
        static SPEC: OnceLock<Value> = OnceLock::new();
        SPEC.get_or_init(|| {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
            let text = std::fs::read_to_string(path).expect("openapi/openapi.json");
            serde_json::from_str(&text).expect("the committed spec is JSON")
        })
    }

    /// The operation for `method` on the path template that matches `path` (literal segments
    /// preferred over parameters).
    fn operation(method: &str, path: &str) -> Option<&'static Value> {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        let method = method.to_ascii_lowercase();
        spec()["paths"]
            .as_object()?
            .iter()
            .filter_map(|(template, ops)| {
                let t: Vec<&str> = template.split('/').collect();
                if t.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (a, b) in t.iter().zip(&segments) {
                    if a.starts_with('{') && a.ends_with('}') {
                        if b.is_empty() {
                            return None;
                        }
                    } else if a == b {
                        literal += 1;
                    } else {
                        return None;
                    }
                }
                ops.get(&method).map(|op| (literal, op))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, op)| op)
    }

    fn resolve(mut schema: &'static Value) -> &'static Value {
        for _ in 0..64 {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let pointer = r.strip_prefix('#').unwrap_or(r);
                    match spec().pointer(pointer) {
                        Some(s) => schema = s,
                        None => panic!("spec check: unresolvable $ref {r}"),
                    }
                }
                None => return schema,
            }
        }
        panic!("spec check: $ref cycle")
    }

    /// Declared properties, extra-property schemas, and whether any property is declared, of a
    /// schema with its `allOf` parts (and, inside them, every `oneOf` variant).
    #[derive(Default)]
    struct Shape {
        props: Vec<(&'static str, &'static Value)>,
        extra: Vec<&'static Value>,
        open: bool,
        declares: bool,
    }

    fn collect(schema: &'static Value, shape: &mut Shape) {
        let schema = resolve(schema);
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            shape.declares = true;
            shape.props.extend(p.iter().map(|(k, v)| (k.as_str(), v)));
        }
        match schema.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => shape.open = true,
            Some(s) => shape.extra.push(s),
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for part in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                collect(part, shape);
            }
        }
    }

    /// Appends to `out` every JSON path in `value` that `schema` does not declare.
    fn check(schema: &'static Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let schema = resolve(schema);
        if value.is_null() {
            return;
        }
        let variants = schema
            .get("oneOf")
            .or_else(|| schema.get("anyOf"))
            .and_then(Value::as_array);
        if let Some(variants) = variants {
            let mut best: Option<Vec<String>> = None;
            for v in variants {
                let mut o = Vec::new();
                check(v, value, at, &mut o);
                if best.as_ref().is_none_or(|b| o.len() < b.len()) {
                    best = Some(o);
                }
            }
            out.extend(best.unwrap_or_default());
            return;
        }
        match value {
            Value::Object(map) => {
                let mut shape = Shape::default();
                collect(schema, &mut shape);
                if !shape.declares && shape.extra.is_empty() {
                    return; // free-form
                }
                for (k, v) in map {
                    let at = format!("{at}.{k}");
                    let declared: Vec<&Value> = shape
                        .props
                        .iter()
                        .filter(|(name, _)| name == k)
                        .map(|(_, s)| *s)
                        .collect();
                    if !declared.is_empty() {
                        // Declared more than once (allOf parts): it must fit one of them.
                        let mut best: Option<Vec<String>> = None;
                        for s in declared {
                            let mut o = Vec::new();
                            check(s, v, &at, &mut o);
                            if best.as_ref().is_none_or(|b| o.len() < b.len()) {
                                best = Some(o);
                            }
                        }
                        out.extend(best.unwrap_or_default());
                    } else if let Some(s) = shape.extra.first() {
                        check(s, v, &at, out);
                    } else if !shape.open {
                        out.push(at);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        check(item, v, &format!("{at}[{i}]"), out);
                    }
                }
            }
            _ => {}
        }
    }

    /// Panics when `reply` (to `method path`) carries a field its response schema does not declare.
    pub fn assert_declared(method: &str, path: &str, reply: &Reply) {
        if reply.body.is_null() {
            return;
        }
        let Some(op) = operation(method, path) else {
            return;
        };
        let status = reply.status.as_u16().to_string();
        let content_type = reply.header("content-type").unwrap_or("");
        let declared = op["responses"]
            .get(&status)
            .or_else(|| op["responses"].get(format!("{}XX", status.chars().next().unwrap_or('0'))))
            .or_else(|| op["responses"].get("default"));
        let schema: &'static Value = match declared.and_then(|r| r.get("content")) {
            Some(content) => {
                let media = content
                    .get(content_type.split(';').next().unwrap_or("").trim())
                    .or_else(|| content.get("application/json"))
                    .or_else(|| content.as_object().and_then(|c| c.values().next()));
                match media.and_then(|m| m.get("schema")) {
                    Some(s) => s,
                    None => return,
                }
            }
            None if content_type.starts_with("application/problem+json") => {
                &spec()["components"]["schemas"]["Problem"]
            }
            None => panic!(
                "spec check: {method} {path} answered {status} with a JSON body, a response the spec does not declare:\n{}",
                reply.body
            ),
        };
        let mut out = Vec::new();
        check(schema, &reply.body, "$", &mut out);
        assert!(
            out.is_empty(),
            "spec check: {method} {path} answered {status} with fields its schema in openapi/openapi.json does not declare: {}\n(declare them in the response DTO with utoipa and regenerate the spec)\nbody: {}",
            out.join(", "),
            reply.body
        );
    }
}
