//! `/verify`: the lender verification page — server-rendered HTML, Chinese first with English,
//! no JavaScript and no external assets. Enter a registration number and its verification code;
//! the page shows the notice (docs/design.md §5), the same that `GET /v1/encumbrances/{no}`
//! answers.
//!
//! A bank user (and only a bank user) may also log in on the page (`/verify/login`): the session
//! cookie (HttpOnly, SameSite=Strict, Secure over HTTPS, with the token's TTL) holds a random page
//! session token, kept in the database only as a hash. It is not an API token: the API refuses it,
//! so a stolen cookie gives no API access, and logging out revokes it at once. A session also ends
//! when the user is disabled or its tokens are revoked. The user may search a borrower by credit
//! code or ID number (`/verify/search`, the notices `GET /v1/encumbrances` answers, under the same
//! rules and the same ID-number quota) and print a signed search certificate
//! (`/verify/certificates`). Every POST must carry this site's Origin (and no cross-site
//! Sec-Fetch-Site) and, once logged in, a form token bound to the session.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;

use super::lender::{self, lookup, EncumbranceView, SearchQuery};
use crate::app::AppState;
use crate::auth::{routes as auth_routes, Principal, Role};
use crate::db;
use crate::error::{ApiError, ApiResult};
use crate::schema::page_sessions as ps;

/// The session cookie's name; it holds the page session token and is sent only to `/verify`.
pub const SESSION_COOKIE: &str = "registry_session";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify_page)
        .service(login_form)
        .service(login)
        .service(logout)
        .service(search_get)
        .service(search_post)
        .service(certify)
        .service(certificate_page);
}

#[derive(Debug, Default, Deserialize)]
struct Form {
    registration_no: Option<String>,
    verification_code: Option<String>,
}

/// HTML-escapes text.
fn esc(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

fn row(label_zh: &str, label_en: &str, value: &str) -> String {
    format!("<tr><th scope=\"row\">{label_zh}<br><span lang=\"en\">{label_en}</span></th><td>{}</td></tr>", esc(value))
}

fn status_zh(status: &str) -> &'static str {
    match status {
        "registered" => "已登记",
        "enforcing" => "处置中",
        "released" => "已注销",
        "lapsed" => "已失效",
        "disposed" => "已处置",
        "pending_official_registration" => "待不动产登记",
        "pending_confirmation" => "不动产登记待核实",
        "executed" => "已强制执行",
        "active" => "生效中",
        "lifted" => "已解除",
        _ => "其他",
    }
}

fn kind_zh(kind: &str) -> &'static str {
    match kind {
        "pledge" => "权利质押",
        "forest_mortgage" => "林权抵押",
        "judicial_freeze" => "司法冻结",
        _ => "其他",
    }
}

/// A string field of a JSON object, or "".
fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn time_text(v: &Value) -> Option<String> {
    v.as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// One notice (docs/design.md §5) as a table; from its JSON, so that the page shows exactly what
/// the API answers and what a certificate signed.
fn notice_table(n: &Value) -> String {
    let asset = if let Some(a) = n.get("asset").filter(|a| a.is_object()) {
        format!(
            "{} {} {} · {}",
            s(a, "right_type"),
            s(a, "sub_kind"),
            s(a, "certificate_no"),
            s(a, "quantity")
        )
    } else if let Some(ps) = n.get("parcels").and_then(Value::as_array) {
        ps.iter()
            .map(|p| s(p, "certificate_no").to_string())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        String::new()
    };
    let party = |p: &Value| {
        let id = match s(p, "uscc") {
            "" => s(p, "id_number_masked"),
            u => u,
        };
        format!("{} {}", s(p, "name_zh"), id)
    };
    let mut rows = vec![
        row("登记编号", "Registration number", s(n, "registration_no")),
        row(
            "状态",
            "Status",
            &format!("{} {}", status_zh(s(n, "status")), s(n, "status")),
        ),
        row(
            "类型",
            "Kind",
            &format!("{} {}", kind_zh(s(n, "kind")), s(n, "kind")),
        ),
        row("担保物", "Collateral", &asset),
        row("出质人/抵押人", "Grantor", &party(&n["grantor"])),
    ];
    if n["lender"].is_object() {
        rows.push(row("质权人/抵押权人", "Lender", &party(&n["lender"])));
    }
    if let Some(r) = n["rank"].as_i64() {
        rows.push(row("顺位", "Rank", &r.to_string()));
    }
    if let Some(a) = n["secured_amount"].as_str() {
        rows.push(row(
            "登记担保金额（元）",
            "Registered secured amount (CNY)",
            a,
        ));
    }
    if let Some(t) = time_text(&n["registered_at"]) {
        rows.push(row("登记时间", "Registered at", &t));
    }
    if let Some(d) = n["period_end"].as_str() {
        rows.push(row("登记期限届满", "Registration ends", d));
    }
    if let Some(d) = n["loan_maturity"].as_str() {
        rows.push(row("主债权到期", "Loan matures", d));
    }
    if let Some(d) = n["pboc_registration_no"].as_str() {
        rows.push(row("人行征信登记编号", "PBoC registration number", d));
    }
    if let Some(c) = n["court"].as_str() {
        rows.push(row(
            "法院及案号",
            "Court and case",
            &format!("{c} {}", s(n, "case_no")),
        ));
    }
    format!("<table>{}</table>", rows.join(""))
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn result_html(v: &EncumbranceView) -> String {
    let freezes = if v.freezes.is_empty() {
        "<p>无司法冻结 · <span lang=\"en\">No judicial freeze</span></p>".to_string()
    } else {
        v.freezes
            .iter()
            .map(|f| {
                format!(
                    "<p class=\"warn\">司法冻结 · <span lang=\"en\">Judicial freeze</span>: {} {} ({})</p>",
                    esc(f.court.as_deref().unwrap_or("")),
                    esc(f.case_no.as_deref().unwrap_or("")),
                    esc(&f.registration_no)
                )
            })
            .collect()
    };
    let objections: String = v
        .notice
        .objections
        .iter()
        .map(|o| {
            format!(
                "<p class=\"warn\">异议登记 · <span lang=\"en\">Objection</span>: {} ({}, {})</p>",
                esc(&o.reason),
                esc(&o.objection_no),
                o.lapses_at.format("%Y-%m-%d")
            )
        })
        .collect();
    let freezes = freezes + &objections;
    let history: String = v
        .entries
        .iter()
        .map(|e| format!("<li>{} · {}</li>", e.at.format("%Y-%m-%d"), esc(&e.kind)))
        .collect();
    format!(
        "<section aria-labelledby=\"result\"><h2 id=\"result\">查验结果 · <span lang=\"en\">Result</span></h2>{}{}<h3>登记记录 · <span lang=\"en\">History</span></h3><ol>{}</ol><p class=\"small\">查询时间 · <span lang=\"en\">As of</span> {}</p></section>",
        notice_table(&to_value(&v.notice)),
        freezes,
        history,
        v.as_of.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

const STYLE: &str = r#"body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111;background:#fff;line-height:1.5}
h1{font-size:1.5rem} label{display:block;margin-top:.8rem;font-weight:600}
input{font-size:1rem;padding:.4rem;width:100%;max-width:24rem;border:2px solid #333;border-radius:4px;box-sizing:border-box}
button{margin-top:1rem;margin-right:.5rem;font-size:1rem;padding:.5rem 1.2rem;background:#0b4f2c;color:#fff;border:0;border-radius:4px;cursor:pointer}
button.secondary{background:#fff;color:#0b4f2c;border:2px solid #0b4f2c}
a{color:#0b3d91}
:focus-visible{outline:3px solid #b35c00;outline-offset:2px}
table{border-collapse:collapse;margin-top:1rem;width:100%} th,td{border:1px solid #555;padding:.4rem;text-align:left;vertical-align:top}
th{background:#eef3ef;width:40%} .warn{color:#8a1c00;font-weight:700} .error{color:#8a1c00;font-weight:600} .small{font-size:.85rem;color:#333}
nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;border-bottom:1px solid #555;padding-bottom:.5rem} nav form{display:inline} nav button{margin-top:0}
fieldset{border:1px solid #555;border-radius:4px;margin-top:1rem} legend{font-weight:700}
.sig{font-family:ui-monospace,monospace;word-break:break-all;font-size:.85rem}
.cert{border:3px double #0b4f2c;padding:1rem 1.5rem;margin-top:1rem}
@page{size:A4;margin:16mm}
@media print{nav,.noprint,form{display:none!important}body{margin:0;max-width:none;font-size:11pt}a{color:#000;text-decoration:none}.cert{border:0;padding:0}th{background:#eee}}"#;

/// A whole page: the shared head and style, the navigation (with the session's user) and `body`.
fn layout(title: &str, session: Option<&Session>, body: &str) -> String {
    let nav = match session {
        Some(s) => format!(
            "<nav aria-label=\"导航 Navigation\"><a href=\"/verify\">查验 · <span lang=\"en\">Verify</span></a><a href=\"/verify/search\">查询借款人 · <span lang=\"en\">Search a borrower</span></a><span>已登录 · <span lang=\"en\">Signed in as</span> <strong>{}</strong> ({})</span><form method=\"post\" action=\"/verify/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" class=\"secondary\">退出 · <span lang=\"en\">Log out</span></button></form></nav>",
            esc(&s.who.username),
            s.who.role.as_str(),
            esc(&s.csrf)
        ),
        None => "<nav aria-label=\"导航 Navigation\"><a href=\"/verify\">查验 · <span lang=\"en\">Verify</span></a><a href=\"/verify/login\">银行用户登录 · <span lang=\"en\">Bank log in</span></a></nav>".to_string(),
    };
    format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{STYLE}
</style></head><body>
{nav}
<h1>海峡资源环境交易中心南平分中心 · 担保登记查验<br><span lang="en">Encumbrance verification</span></h1>
{body}
</body></html>"#,
        title = esc(title)
    )
}

fn verify_form(form: &Form) -> String {
    let no = esc(form.registration_no.as_deref().unwrap_or(""));
    let code = esc(form.verification_code.as_deref().unwrap_or(""));
    format!(
        r#"<form method="get" action="/verify">
<label for="registration_no">登记编号 · <span lang="en">Registration number</span></label>
<input id="registration_no" name="registration_no" required value="{no}" autocomplete="off">
<label for="verification_code">查验码 · <span lang="en">Verification code</span></label>
<input id="verification_code" name="verification_code" required value="{code}" autocomplete="off">
<button type="submit">查验 · Verify</button>
</form>"#
    )
}

fn error_p(zh: &str, en: &str) -> String {
    format!("<p class=\"error\" role=\"alert\">{zh} · <span lang=\"en\">{en}</span></p>")
}

/// An HTML response that no cache keeps and no frame embeds; styles inline, no script at all.
fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(body)
}

/// The logged-in page user: the principal behind a valid session cookie, and its form token.
struct Session {
    who: Principal,
    csrf: String,
}

/// The form token of a session: an HMAC of its session token under the JWT key, so that it is
/// bound to the session, needs no storage and cannot be computed by another site.
fn csrf_token(state: &AppState, token: &str) -> String {
    match Hmac::<Sha256>::new_from_slice(&state.secrets.jwt_secret) {
        Ok(mut mac) => {
            mac.update(b"verify-page-csrf:");
            mac.update(token.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// What the database keeps of a page session token: its SHA-256, so that a copy of the table
/// opens no session.
fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Opens a page session for a bank user: a fresh random token, stored hashed, valid for `ttl`.
async fn open_session(
    state: &AppState,
    row: &crate::auth::store::PrincipalRow,
    ttl: i64,
) -> ApiResult<String> {
    let token = format!("pgs_{}", hex::encode(rand::random::<[u8; 32]>()));
    let (hash, principal, version) = (token_hash(&token), row.id, row.token_version);
    let now = db::now_micros(state.clock.now());
    let expires = now + chrono::TimeDelta::seconds(ttl);
    state
        .db(move |conn| {
            diesel::insert_into(ps::table)
                .values((
                    ps::token_hash.eq(hash),
                    ps::principal_id.eq(principal),
                    ps::token_version.eq(version),
                    ps::created_at.eq(now),
                    ps::expires_at.eq(expires),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await?;
    Ok(token)
}

/// The session of the request, if its cookie holds a page session that is still valid: not
/// expired, not logged out, its user a bank user that is not disabled and whose tokens were not
/// revoked since.
async fn session(req: &HttpRequest, state: &AppState) -> Option<Session> {
    let token = req.cookie(SESSION_COOKIE)?.value().to_string();
    let (hash, now) = (token_hash(&token), db::now_micros(state.clock.now()));
    let row = state
        .db(move |conn| {
            let Some((principal, version)) = ps::table
                .filter(ps::token_hash.eq(hash))
                .filter(ps::revoked_at.is_null())
                .filter(ps::expires_at.gt(now))
                .select((ps::principal_id, ps::token_version))
                .first::<(i64, i64)>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            Ok(crate::auth::store::find_by_id(conn, principal)?
                .filter(|p| !p.disabled && p.token_version == version))
        })
        .await
        .ok()
        .flatten()?;
    let role: Role = row.role.parse().ok()?;
    if role != Role::Bank {
        return None;
    }
    Some(Session {
        csrf: csrf_token(state, &token),
        who: Principal {
            id: row.id,
            username: row.username,
            role,
            party_id: row.party_id,
            person_id: row.person_id,
        },
    })
}

/// Ends the page session behind `token`, if any.
async fn revoke_session(state: &AppState, token: &str) -> ApiResult<()> {
    let (hash, now) = (token_hash(token), db::now_micros(state.clock.now()));
    state
        .db(move |conn| {
            diesel::update(
                ps::table
                    .filter(ps::token_hash.eq(hash))
                    .filter(ps::revoked_at.is_null()),
            )
            .set(ps::revoked_at.eq(Some(now)))
            .execute(conn)?;
            Ok(())
        })
        .await
}

/// Deletes page sessions that ended before `before` (the retention sweep).
pub fn forget_sessions(
    conn: &mut crate::db::DbConn,
    before: chrono::NaiveDateTime,
) -> diesel::QueryResult<usize> {
    diesel::delete(ps::table.filter(ps::expires_at.lt(before))).execute(conn)
}

fn https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Refuses a POST that does not prove it comes from this site's own form: one without an Origin,
/// with another site's Origin, or with Sec-Fetch-Site cross-site or same-site. Browsers send an
/// Origin on every form POST, so only a request forged outside a browser (or by an old one) lacks
/// it; the SameSite=Strict cookie and the form token back this up.
fn same_origin(req: &HttpRequest) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site == "cross-site" || site == "same-site" {
            return false;
        }
    }
    match h.get(header::ORIGIN) {
        None => false,
        Some(o) => {
            let info = req.connection_info();
            o.to_str().ok() == Some(&format!("{}://{}", info.scheme(), info.host()))
        }
    }
}

/// Constant-time comparison of a submitted form token with the session's.
fn csrf_ok(s: &Session, given: Option<&str>) -> bool {
    let given = given.unwrap_or("").as_bytes();
    let want = s.csrf.as_bytes();
    !want.is_empty()
        && given.len() == want.len()
        && given
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn forbidden_page(session: Option<&Session>) -> HttpResponse {
    html(
        StatusCode::FORBIDDEN,
        layout(
            "请求被拒绝 · Request refused",
            session,
            &error_p(
                "请求来源无法验证，请返回页面重新提交",
                "The request's origin could not be checked; go back and submit the form again",
            ),
        ),
    )
}

fn login_required() -> HttpResponse {
    html(
        StatusCode::UNAUTHORIZED,
        layout(
            "请先登录 · Please log in",
            None,
            &format!(
                "{}<p><a href=\"/verify/login\">登录 · <span lang=\"en\">Log in</span></a></p>",
                error_p(
                    "请先登录（登录已过期或尚未登录）",
                    "Please log in (you are not logged in, or the session expired)"
                )
            ),
        ),
    )
}

/// An API error as a page: its status, and a message that tells nothing the API would not.
fn error_page(e: &ApiError, session: Option<&Session>) -> HttpResponse {
    let (status, msg) = match e.status {
        StatusCode::NOT_FOUND => (StatusCode::NOT_FOUND, error_p("未找到", "Not found")),
        StatusCode::FORBIDDEN => (
            StatusCode::FORBIDDEN,
            error_p(
                "无权进行此查询（企业用户只能查询本企业）",
                "You may not run this search (enterprises may search only themselves)",
            ),
        ),
        StatusCode::UNAUTHORIZED => return login_required(),
        s if s.is_client_error() => (
            StatusCode::BAD_REQUEST,
            format!(
                "{}<p class=\"small\">{}</p>",
                error_p("输入有误", "Please check the input"),
                esc(&e.detail)
            ),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            error_p(
                "暂时无法处理，请稍后再试",
                "Temporarily unavailable, try again",
            ),
        ),
    };
    html(status, layout("错误 · Error", session, &msg))
}

#[get("/verify")]
async fn verify_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Query<Form>, actix_web::Error>,
) -> HttpResponse {
    let form = form.map(|f| f.into_inner()).unwrap_or_default();
    let sess = session(&req, &state).await;
    let title = "担保登记查验 · Encumbrance verification";
    let page = |body: &str| {
        layout(
            title,
            sess.as_ref(),
            &format!("{}{body}", verify_form(&form)),
        )
    };
    let (Some(no), Some(code)) = (form.registration_no.clone(), form.verification_code.clone())
    else {
        return html(StatusCode::OK, page(""));
    };
    let as_of = state.clock.now();
    let (no, code) = (no.trim().to_string(), code.trim().to_string());
    let found = state
        .db(move |conn| lookup(conn, &no, Some(&code), None, as_of))
        .await;
    match found {
        Ok(v) => html(StatusCode::OK, page(&result_html(&v))),
        Err(e) if e.status == StatusCode::NOT_FOUND => html(
            StatusCode::NOT_FOUND,
            page(&error_p(
                "未找到：登记编号或查验码不正确",
                "Not found: check the registration number and the code",
            )),
        ),
        Err(_) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            page(&error_p(
                "暂时无法查验，请稍后再试",
                "Temporarily unavailable, try again",
            )),
        ),
    }
}

fn login_body(username: &str, message: &str) -> String {
    format!(
        r#"<h2>银行用户登录 · <span lang="en">Bank user log in</span></h2>{message}
<form method="post" action="/verify/login">
<label for="username">用户名 · <span lang="en">Username</span></label>
<input id="username" name="username" required autocomplete="username" value="{}">
<label for="password">密码 · <span lang="en">Password</span></label>
<input id="password" name="password" type="password" required autocomplete="current-password">
<button type="submit">登录 · Log in</button>
</form>"#,
        esc(username)
    )
}

#[get("/verify/login")]
async fn login_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let sess = session(&req, &state).await;
    html(
        StatusCode::OK,
        layout("登录 · Log in", sess.as_ref(), &login_body("", "")),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: Option<String>,
    password: Option<String>,
}

#[post("/verify/login")]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Form<LoginForm>, actix_web::Error>,
) -> HttpResponse {
    if !same_origin(&req) {
        return forbidden_page(None);
    }
    let (username, password) = match form.map(|f| f.into_inner()) {
        Ok(LoginForm {
            username: Some(u),
            password: Some(p),
        }) if !u.trim().is_empty() && !p.is_empty() => (u.trim().to_string(), p),
        _ => {
            return html(
                StatusCode::BAD_REQUEST,
                layout(
                    "登录 · Log in",
                    None,
                    &login_body(
                        "",
                        &error_p("请输入用户名和密码", "Enter the username and the password"),
                    ),
                ),
            )
        }
    };
    let row = match auth_routes::authenticate(
        &state,
        username.clone(),
        password,
        "user",
        req.peer_addr().map(|a| a.ip()),
    )
    .await
    {
        Ok(row) => row,
        Err(e) => {
            let msg = if e.status == StatusCode::UNAUTHORIZED {
                error_p(
                    "用户名或密码错误，或账户已停用",
                    "Wrong username or password, or the account is disabled",
                )
            } else {
                error_p(
                    "暂时无法登录，请稍后再试",
                    "Temporarily unavailable, try again",
                )
            };
            let status = if e.status == StatusCode::UNAUTHORIZED {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return html(
                status,
                layout("登录 · Log in", None, &login_body(&username, &msg)),
            );
        }
    };
    if row.role != Role::Bank.as_str() {
        return html(
            StatusCode::FORBIDDEN,
            layout(
                "登录 · Log in",
                None,
                &login_body(
                    &username,
                    &error_p(
                        "本页面仅供银行用户登录",
                        "Only bank users may log in on this page",
                    ),
                ),
            ),
        );
    }
    let ttl = state.token_ttl;
    let token = match open_session(&state, &row, ttl).await {
        Ok(t) => t,
        Err(e) => return error_page(&e, None),
    };
    let cookie = Cookie::build(SESSION_COOKIE, token)
        .path("/verify")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(https(&req))
        .max_age(CookieAge::seconds(ttl))
        .finish();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/verify/search"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish()
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    csrf: Option<String>,
}

#[post("/verify/logout")]
async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Form<TokenForm>, actix_web::Error>,
) -> HttpResponse {
    let sess = session(&req, &state).await;
    let given = form.ok().and_then(|f| f.into_inner().csrf);
    if !same_origin(&req) || sess.as_ref().is_some_and(|s| !csrf_ok(s, given.as_deref())) {
        return forbidden_page(sess.as_ref());
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        if let Err(e) = revoke_session(&state, cookie.value()).await {
            return error_page(&e, sess.as_ref());
        }
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "")
        .path("/verify")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(https(&req))
        .finish();
    gone.make_removal();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/verify"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(gone)
        .finish()
}

#[derive(Debug, Default, Deserialize)]
struct SearchForm {
    uscc: Option<String>,
    id_number: Option<String>,
    csrf: Option<String>,
}

impl SearchForm {
    /// The API's query: exactly one of a credit code or an ID number, blanks ignored.
    fn query(&self) -> Option<SearchQuery> {
        let nonblank = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        match (nonblank(&self.uscc), nonblank(&self.id_number)) {
            (Some(u), None) => Some(SearchQuery {
                grantor_uscc: Some(u.to_ascii_uppercase()),
                ..SearchQuery::default()
            }),
            (None, Some(n)) => Some(SearchQuery {
                grantor_id_number: Some(n.to_ascii_uppercase()),
                ..SearchQuery::default()
            }),
            _ => None,
        }
    }
}

/// The search forms: a credit code by GET (bookmarkable), an individual's ID number by POST so
/// that it never lands in a URL or a log; each can issue a certificate at once.
fn search_forms(s: &Session, uscc: &str) -> String {
    let csrf = esc(&s.csrf);
    format!(
        r#"<h2>查询借款人担保登记 · <span lang="en">Search a borrower's encumbrances</span></h2>
<form method="get" action="/verify/search">
<fieldset><legend>企业 · <span lang="en">Enterprise</span></legend>
<label for="uscc">统一社会信用代码 · <span lang="en">Unified social credit code</span></label>
<input id="uscc" name="uscc" value="{uscc}" maxlength="18" autocomplete="off" spellcheck="false">
<button type="submit">查询 · Search</button>
</fieldset></form>
<form method="post" action="/verify/search">
<fieldset><legend>个人 · <span lang="en">Individual</span></legend>
<input type="hidden" name="csrf" value="{csrf}">
<label for="id_number">身份证号码 · <span lang="en">ID number</span></label>
<input id="id_number" name="id_number" maxlength="18" autocomplete="off" spellcheck="false">
<button type="submit">查询 · Search</button>
<button type="submit" class="secondary" formaction="/verify/certificates">出具查询证明 · <span lang="en">Issue certificate</span></button>
</fieldset></form>"#,
        uscc = esc(uscc)
    )
}

fn results_html(s: &Session, found: &lender::Found, as_of: DateTime<Utc>) -> String {
    let (q, notices) = (&found.query, &found.encumbrances);
    let list = if found.grantor_registered == Some(false) {
        "<p><strong>登记簿中没有此出质人/抵押人，本结果不能证明其无担保</strong> · <span lang=\"en\">No such grantor is registered: this result does not show that it is unencumbered</span></p>".to_string()
    } else if notices.is_empty() {
        "<p><strong>未发现有效的担保登记或司法冻结</strong> · <span lang=\"en\">No live encumbrance or judicial freeze found</span></p>".to_string()
    } else {
        notices
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "<h3>第 {} 项 · <span lang=\"en\">Item {}</span></h3>{}",
                    i + 1,
                    i + 1,
                    notice_table(&to_value(n))
                )
            })
            .collect()
    };
    // The credit code is public; an ID number is never echoed, so its certificate comes from the
    // search form's own button.
    let certify_form = match &q.grantor_uscc {
        Some(u) => format!(
            "<form method=\"post\" action=\"/verify/certificates\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"uscc\" value=\"{}\"><button type=\"submit\">出具并打印查询证明 · <span lang=\"en\">Issue and print a search certificate</span></button></form>",
            esc(&s.csrf),
            esc(u)
        ),
        None => "<p class=\"small noprint\">如需查询证明，请在上方个人查询表单中点击“出具查询证明” · <span lang=\"en\">For a certificate, use “Issue certificate” in the form above</span></p>".to_string(),
    };
    let subject = match &q.grantor_uscc {
        Some(u) => esc(u),
        None => "（身份证号码不予显示）<span lang=\"en\">(ID number not shown)</span>".into(),
    };
    format!(
        "<section aria-labelledby=\"results\"><h2 id=\"results\">查询结果 · <span lang=\"en\">Results</span></h2><p>出质人/抵押人 · <span lang=\"en\">Grantor</span>: {subject} — 共 {} 项 · <span lang=\"en\">{} found</span></p>{list}<p class=\"small\">查询时间 · <span lang=\"en\">As of</span> {}</p>{certify_form}</section>",
        notices.len(),
        notices.len(),
        as_of.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

async fn run_search_page(state: &AppState, s: &Session, form: &SearchForm) -> HttpResponse {
    let title = "查询借款人 · Search a borrower";
    let shown_uscc = form.uscc.clone().unwrap_or_default();
    let Some(q) = form.query() else {
        let msg = if form.uscc.is_some() || form.id_number.is_some() {
            error_p(
                "请输入统一社会信用代码或身份证号码（二选一）",
                "Enter either a credit code or an ID number",
            )
        } else {
            String::new()
        };
        let status = if msg.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        return html(
            status,
            layout(
                title,
                Some(s),
                &format!("{}{msg}", search_forms(s, &shown_uscc)),
            ),
        );
    };
    let (who, ctx, as_of) = (
        s.who.clone(),
        lender::SearchCtx::of(state, "POST /verify/search"),
        state.clock.now(),
    );
    let q2 = q.clone();
    let found = state
        .db(move |conn| lender::search_as(conn, &who, &q2, &ctx))
        .await;
    match found {
        Ok(found) => html(
            StatusCode::OK,
            layout(
                title,
                Some(s),
                &format!(
                    "{}{}",
                    search_forms(s, &shown_uscc),
                    results_html(s, &found, as_of)
                ),
            ),
        ),
        Err(e) => error_with_forms(&e, s, &shown_uscc),
    }
}

/// An error under the search forms, so that the user can correct the input at once.
fn error_with_forms(e: &ApiError, s: &Session, uscc: &str) -> HttpResponse {
    let resp = error_page(e, Some(s));
    let status = resp.status();
    let msg = match status {
        StatusCode::FORBIDDEN => error_p(
            "无权进行此查询（企业用户只能查询本企业）",
            "You may not run this search (enterprises may search only themselves)",
        ),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => format!(
            "{}<p class=\"small\">{}</p>",
            error_p("输入有误", "Please check the input"),
            esc(&e.detail)
        ),
        StatusCode::UNAUTHORIZED => return resp,
        _ => error_p(
            "暂时无法处理，请稍后再试",
            "Temporarily unavailable, try again",
        ),
    };
    html(
        status,
        layout(
            "查询借款人 · Search a borrower",
            Some(s),
            &format!("{}{msg}", search_forms(s, uscc)),
        ),
    )
}

#[get("/verify/search")]
async fn search_get(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Query<SearchForm>, actix_web::Error>,
) -> HttpResponse {
    let Some(s) = session(&req, &state).await else {
        return login_required();
    };
    let mut form = form.map(|f| f.into_inner()).unwrap_or_default();
    // ID numbers go by POST only, never in a URL.
    form.id_number = None;
    run_search_page(&state, &s, &form).await
}

#[post("/verify/search")]
async fn search_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Form<SearchForm>, actix_web::Error>,
) -> HttpResponse {
    let Some(s) = session(&req, &state).await else {
        return login_required();
    };
    let form = form.map(|f| f.into_inner()).unwrap_or_default();
    if !same_origin(&req) || !csrf_ok(&s, form.csrf.as_deref()) {
        return forbidden_page(Some(&s));
    }
    run_search_page(&state, &s, &form).await
}

#[post("/verify/certificates")]
async fn certify(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Form<SearchForm>, actix_web::Error>,
) -> HttpResponse {
    let Some(s) = session(&req, &state).await else {
        return login_required();
    };
    let form = form.map(|f| f.into_inner()).unwrap_or_default();
    if !same_origin(&req) || !csrf_ok(&s, form.csrf.as_deref()) {
        return forbidden_page(Some(&s));
    }
    let Some(q) = form.query() else {
        return error_with_forms(
            &ApiError::invalid_field("query", "enter either a credit code or an ID number"),
            &s,
            form.uscc.as_deref().unwrap_or(""),
        );
    };
    let who = s.who.clone();
    let (key, ctx, as_of) = (
        state.secrets.signing_key.clone(),
        lender::SearchCtx::of(&state, "POST /verify/certificates"),
        state.clock.now(),
    );
    let issued = state
        .db(move |conn| lender::issue_certificate(conn, &who, q, &key, &ctx, as_of))
        .await;
    match issued {
        // Post/redirect/get: the printable page can be reloaded without issuing another.
        Ok(cert) => HttpResponse::SeeOther()
            .insert_header((
                header::LOCATION,
                format!("/verify/certificates/{}", cert.statement.certificate_no),
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => error_with_forms(&e, &s, form.uscc.as_deref().unwrap_or("")),
    }
}

fn certificate_html(cert: &Value) -> String {
    let st = &cert["statement"];
    let no = s(st, "certificate_no");
    let as_of = time_text(&st["as_of"]).unwrap_or_default();
    let subject = match st["query"]["grantor_uscc"].as_str() {
        Some(u) => format!(
            "统一社会信用代码 · <span lang=\"en\">Credit code</span> {}",
            esc(u)
        ),
        None => "身份证号码（不予显示）· <span lang=\"en\">ID number (not shown)</span>".into(),
    };
    let items = st["encumbrances"].as_array().cloned().unwrap_or_default();
    let list = if st["grantor_registered"] == Value::Bool(false) {
        "<p><strong>截至查询时间，登记簿中没有此出质人/抵押人；本证明不能证明其无担保。</strong><br><span lang=\"en\">As of the time above, no such grantor is registered; this certificate does not show that it is unencumbered.</span></p>".to_string()
    } else if items.is_empty() {
        "<p><strong>截至查询时间，未发现有效的担保登记或司法冻结。</strong><br><span lang=\"en\">As of the time above, no live encumbrance or judicial freeze was found.</span></p>".to_string()
    } else {
        items
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "<h3>第 {} 项 · <span lang=\"en\">Item {}</span></h3>{}",
                    i + 1,
                    i + 1,
                    notice_table(n)
                )
            })
            .collect()
    };
    format!(
        r#"<article class="cert" aria-labelledby="cert-title">
<h2 id="cert-title">担保登记查询证明 · <span lang="en">Search certificate</span></h2>
<table>
{}{}{}
<tr><th scope="row">查询对象<br><span lang="en">Searched</span></th><td>{subject}</td></tr>
</table>
<h3>查询结果 · <span lang="en">Result</span>（{} 项 · <span lang="en">{} found</span>）</h3>
{list}
<h3>电子签名 · <span lang="en">Signature</span></h3>
<table>
{}{}
<tr><th scope="row">签名<br><span lang="en">Signature (Base64)</span></th><td class="sig">{}</td></tr>
</table>
<h3>如何验证 · <span lang="en">How to verify</span></h3>
<ol>
<li>取得本证明的原始数据：<code>GET /v1/search-certificates/{}</code>（需登录）· <span lang="en">Fetch the certificate as issued (login required).</span></li>
<li>取得登记中心公钥：<code>GET /v1/registry-keys</code>，按密钥编号 {} 找到对应公钥 · <span lang="en">Fetch the registry's public keys and take the one with this key id.</span></li>
<li>将 <code>statement</code> 按 RFC 8785 规范化为 JSON，用 Ed25519 公钥验证上述签名 · <span lang="en">Canonicalize <code>statement</code> (RFC 8785 JSON) and check the Ed25519 signature over it with that key.</span></li>
</ol>
<p class="small">本证明仅反映查询时间登记簿记载的有效担保登记和司法冻结，不含当事人的私有条款。<br><span lang="en">This certificate shows the live encumbrances and judicial freezes on the register at the time above; it never includes the parties' private terms.</span></p>
</article>
<p class="noprint">请使用浏览器的打印功能（Ctrl+P）打印本页 · <span lang="en">Print this page with your browser (Ctrl+P)</span></p>"#,
        row("证明编号", "Certificate number", no),
        row("出具机构", "Issuer", s(st, "issuer")),
        row("查询时间", "As of", &as_of),
        items.len(),
        items.len(),
        row("算法", "Algorithm", s(cert, "algorithm")),
        row("密钥编号", "Key id", s(cert, "key_id")),
        esc(s(cert, "signature")),
        esc(no),
        esc(s(cert, "key_id")),
    )
}

#[get("/verify/certificates/{no}")]
async fn certificate_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    no: web::Path<String>,
) -> HttpResponse {
    let Some(s) = session(&req, &state).await else {
        return login_required();
    };
    let no = no.into_inner();
    let found = state
        .db(move |conn| lender::stored_certificate(conn, &no))
        .await;
    let body = match found.and_then(|b| {
        serde_json::from_str::<Value>(&b).map_err(|e| ApiError::internal(e.to_string()))
    }) {
        Ok(v) => v,
        Err(e) => return error_page(&e, Some(&s)),
    };
    html(
        StatusCode::OK,
        layout(
            &format!("查询证明 {} · Search certificate", s_title(&body)),
            Some(&s),
            &certificate_html(&body),
        ),
    )
}

fn s_title(cert: &Value) -> String {
    s(&cert["statement"], "certificate_no").to_string()
}
