//! The /verify page in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`, no network port and no driver crate). It fills
//! the verification form, submits it and reads the rendered status; logs in as a bank user,
//! searches a borrower and prints a search certificate. Screenshots (and the certificate's PDF) are
//! saved under target/test-artifacts/.
//!
//! Chromium is required: without it this test FAILS (CI installs it, see .ci/run). Set CHROMIUM
//! to use another binary.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::ledger::{issue, key, lot_request};
use common::{party, user, Backend, Server};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(30);

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "headless Chromium is required for this test and was not found: install Debian's `chromium` \
         package (apt-get install -y chromium; .ci/run does), or set CHROMIUM"
    );
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A headless Chromium and one page in it, spoken to over the DevTools pipe: JSON messages, each
/// ended by a NUL, written to the browser's fd 3 and read from its fd 4.
struct Browser {
    child: Child,
    input: ChildStdin,
    output: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Events received while waiting for replies, oldest first.
    events: Vec<Value>,
    log: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Browser {
        let bin = chromium();
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromium.log");
        // The shell hands our stdin and stdout pipes to Chromium as fds 3 and 4.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec \"$0\" \"$@\" 3<&0 4>&1 0</dev/null 1>/dev/null")
            .arg(&bin)
            .args([
                "--headless=new",
                "--remote-debugging-pipe",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
                "--window-size=1000,1200",
                "--lang=zh-CN",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let input = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, output) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            while r.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                buf.clear();
            }
        });
        let mut b = Browser {
            child,
            input,
            output,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
            log,
            _profile: profile,
        };
        let target = b.send(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().unwrap().to_string();
        let attached = b.send(
            None,
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        );
        b.session = attached["sessionId"].as_str().unwrap().to_string();
        b.call("Page.enable", json!({}));
        b.call("Network.enable", json!({}));
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1000, "height": 1200, "deviceScaleFactor": 1, "mobile": false}),
        );
        b
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).unwrap();
        self.input.flush().unwrap();
        loop {
            let m = self.recv(method);
            if m["id"].as_u64() == Some(id) {
                if let Some(e) = m.get("error") {
                    panic!("{method}: {e}");
                }
                return m["result"].clone();
            }
            self.events.push(m);
        }
    }

    fn recv(&mut self, waiting_for: &str) -> Value {
        match self.output.recv_timeout(TIMEOUT) {
            Ok(m) => m,
            Err(_) => panic!(
                "Chromium did not answer ({waiting_for}); its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        }
    }

    /// A command to the page.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.send(Some(&s), method, params)
    }

    /// Evaluates JavaScript in the page (DevTools only: the page itself has no script).
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Runs `action` (which navigates) and waits for the new document to load; returns the HTTP
    /// status of the last document response (after redirects).
    fn navigating(&mut self, action: impl FnOnce(&mut Browser)) -> u16 {
        self.events.clear();
        action(self);
        let mut status = None;
        let mut seen = std::mem::take(&mut self.events);
        loop {
            for m in seen.drain(..) {
                match m["method"].as_str() {
                    Some("Network.responseReceived") if m["params"]["type"] == "Document" => {
                        status = m["params"]["response"]["status"].as_u64();
                    }
                    Some("Page.loadEventFired") => {
                        return status.expect("a document response before the load") as u16;
                    }
                    _ => {}
                }
            }
            seen.push(self.recv("Page.loadEventFired"));
        }
    }

    fn goto(&mut self, url: &str) -> u16 {
        self.navigating(|b| {
            b.call("Page.navigate", json!({ "url": url }));
        })
    }

    /// Types into the labelled field `id`, as a user would.
    fn fill(&mut self, id: &str, text: &str) {
        self.eval(&format!(
            "(() => {{ const e = document.getElementById({}); e.focus(); e.value = ''; return true; }})()",
            json!(id)
        ));
        self.call("Input.insertText", json!({ "text": text }));
    }

    /// Clicks the submit button matched by `selector` and waits for the next page.
    fn click(&mut self, selector: &str) -> u16 {
        let sel = json!(selector).to_string();
        self.navigating(|b| {
            let found = b.eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"
            ));
            assert_eq!(found, json!(true), "no element {selector}");
        })
    }

    fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn path(&mut self) -> String {
        self.eval("location.pathname")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Saves a full-page PNG screenshot under target/test-artifacts/ and returns its path.
    fn screenshot(&mut self, name: &str) -> PathBuf {
        let m = self.call("Page.getLayoutMetrics", json!({}));
        let (w, h) = (
            m["cssContentSize"]["width"].as_f64().unwrap_or(1000.0),
            m["cssContentSize"]["height"].as_f64().unwrap_or(1200.0),
        );
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}),
        );
        let png = B64.decode(shot["data"].as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = artifacts().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The page checks every page must pass: Chinese first, labelled fields, no script, no
    /// external asset, and readable contrast (WCAG AA, 4.5:1) for text, buttons and links.
    fn assert_accessible(&mut self) {
        let r = self.eval(
            r#"(() => {
  const lum = c => { const m = c.match(/[\d.]+/g).map(Number).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }); return 0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]; };
  const bg = e => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor; if (!/rgba\(.*, 0\)$/.test(c) && c !== 'transparent') return c; } return 'rgb(255, 255, 255)'; };
  const ratio = e => { const a = lum(getComputedStyle(e).color), b = lum(bg(e)); return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
  const low = [...document.querySelectorAll('p, th, td, label, button, a, h1, h2, h3, li, legend, span')]
    .filter(e => e.offsetParent !== null && e.textContent.trim() && ratio(e) < 4.5)
    .map(e => e.tagName + ' ' + e.textContent.trim().slice(0, 30) + ' ' + ratio(e).toFixed(2));
  const unlabelled = [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(e => e.labels.length === 0).map(e => e.name);
  const external = [...document.querySelectorAll('[src], link[href]')].map(e => e.src || e.href);
  return { lang: document.documentElement.lang, scripts: document.scripts.length, low, unlabelled, external,
    english: document.querySelectorAll('[lang=en]').length };
})()"#,
        );
        assert_eq!(r["lang"], "zh-CN", "{r}");
        assert_eq!(r["scripts"], 0, "no script on the page: {r}");
        assert_eq!(r["low"], json!([]), "contrast below 4.5:1: {r}");
        assert_eq!(r["unlabelled"], json!([]), "unlabelled fields: {r}");
        assert_eq!(r["external"], json!([]), "external assets: {r}");
        assert!(r["english"].as_u64().unwrap() > 0, "English marked lang=en");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser_flow(b: Backend) {
    let tag = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let srv = Server::start(b);
    let admin = srv.admin();
    let checker = user(&admin, "operator", None, "checker");
    let a = party(&admin, "enterprise", 1);
    let bank = party(&admin, "bank", 2);
    let ent = user(&admin, "enterprise", Some(a), "ent-a");
    let banker = user(&admin, "bank", Some(bank), "banker");
    let lot = issue(
        &admin,
        &checker,
        lot_request("EM", a, "100", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    let p = ent
        .post(
            "/v1/pledges",
            &json!({"lot_id": lot, "quantity": "40", "lender_party_id": bank}),
        )
        .expect(201);
    let acc = banker
        .post_key(
            &format!("/v1/pledges/{}/accept", p.body["id"]),
            &key(),
            &json!({"secured_amount": "150000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "LOAN-SECRET-REF-77", "appraisal_value": "200000.00", "appraiser": "评估", "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let no = acc.body["registration_no"].as_str().unwrap().to_string();
    let code = acc.body["verification_code"].as_str().unwrap().to_string();
    let credit_code = common::uscc(1);

    let mut br = Browser::launch();

    // Verify by registration number and code, without login.
    assert_eq!(br.goto(&format!("{}/verify", srv.base)), 200);
    br.assert_accessible();
    br.screenshot(&format!("verify-{tag}-1-form.png"));
    br.fill("registration_no", &no);
    br.fill("verification_code", &code);
    assert_eq!(br.click("form[action='/verify'] button[type=submit]"), 200);
    let text = br.text();
    assert!(
        text.contains("已登记") && text.contains("registered"),
        "{text}"
    );
    assert!(text.contains(&no) && text.contains("150000.00") && text.contains("无司法冻结"));
    assert!(!text.contains("LOAN-SECRET-REF-77"));
    br.assert_accessible();
    br.screenshot(&format!("verify-{tag}-2-result.png"));
    br.fill("verification_code", "WRONG");
    assert_eq!(br.click("form[action='/verify'] button[type=submit]"), 404);
    assert!(br.text().contains("未找到"));

    // A bank user logs in: the session is an HttpOnly, SameSite=Strict cookie for /verify.
    assert_eq!(
        br.click("a[href='/verify/login']"),
        200,
        "the login link on the page"
    );
    br.assert_accessible();
    br.fill("username", "banker");
    br.fill("password", "wrong-password");
    assert_eq!(br.click("form[action='/verify/login'] button"), 401);
    assert!(br.text().contains("用户名或密码错误"));
    br.fill("password", common::own_password("banker").as_str());
    assert_eq!(br.click("form[action='/verify/login'] button"), 200);
    assert_eq!(br.path(), "/verify/search");
    let cookies = br.call(
        "Network.getCookies",
        json!({"urls": [format!("{}/verify/search", srv.base)]}),
    );
    let session = cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "registry_session")
        .cloned()
        .expect("the session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(session["path"], "/verify");
    assert_eq!(
        br.eval("document.cookie"),
        json!(""),
        "not readable by scripts"
    );

    // Search the borrower by credit code.
    br.fill("uscc", &credit_code);
    assert_eq!(br.click("form[action='/verify/search'] button"), 200);
    let text = br.text();
    assert!(
        text.contains(&no) && text.contains("已登记") && text.contains("banker"),
        "{text}"
    );
    assert!(!text.contains("LOAN-SECRET-REF-77") && !text.contains("200000.00"));
    br.assert_accessible();
    br.screenshot(&format!("verify-{tag}-3-search.png"));

    // Issue the certificate and print it.
    assert_eq!(br.click("form[action='/verify/certificates'] button"), 200);
    let path = br.path();
    let cert_no = path
        .strip_prefix("/verify/certificates/")
        .unwrap_or_else(|| panic!("on the certificate page, not {path}"))
        .to_string();
    let text = br.text();
    assert!(text.contains(&cert_no) && text.contains(&no) && text.contains("Ed25519"));
    let cert = banker
        .get(&format!("/v1/search-certificates/{cert_no}"))
        .expect(200);
    assert!(text.contains(cert.body["signature"].as_str().unwrap()));
    br.assert_accessible();
    br.screenshot(&format!("verify-{tag}-4-certificate.png"));
    br.call("Emulation.setEmulatedMedia", json!({"media": "print"}));
    let hidden = br.eval(
        "[...document.querySelectorAll('nav, form')].every(e => getComputedStyle(e).display === 'none')",
    );
    assert_eq!(hidden, json!(true), "navigation and forms are not printed");
    br.screenshot(&format!("verify-{tag}-5-certificate-print.png"));
    let pdf = br.call(
        "Page.printToPDF",
        json!({"printBackground": true, "preferCSSPageSize": true}),
    );
    let pdf = B64.decode(pdf["data"].as_str().unwrap()).unwrap();
    assert!(pdf.starts_with(b"%PDF"));
    std::fs::write(
        artifacts().join(format!("verify-{tag}-certificate.pdf")),
        pdf,
    )
    .unwrap();
    br.call("Emulation.setEmulatedMedia", json!({"media": ""}));

    // Log out: the cookie is gone and the search asks for a login again.
    assert_eq!(br.click("form[action='/verify/logout'] button"), 200);
    assert_eq!(br.path(), "/verify");
    assert_eq!(
        br.goto(&format!("{}/verify/search?uscc={credit_code}", srv.base)),
        401
    );
}

both_backends!(browser_flow);
