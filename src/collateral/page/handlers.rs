//! The `/verify` handlers: verification by registration number and code, a bank user's log in
//! and log out, the borrower search and the search certificate.

use actix_web::cookie::{time::Duration as CookieAge, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::session::{
    csrf_ok, https, open_session, revoke_session, same_origin, session, Session, SESSION_COOKIE,
};
use super::views::{
    alert, error_alert, error_page, forbidden_page, html, login_required, Alert, Certificate,
    CertificatePage, LoginPage, SearchPage, SearchResults, Verified, VerifyPage,
};
use crate::auth::{authenticate, Role};
use crate::collateral::lender::{self, lookup, SearchQuery};
use crate::error::ApiError;
use crate::kernel::state::AppState;

#[derive(Debug, Default, Deserialize)]
struct Form {
    registration_no: Option<String>,
    verification_code: Option<String>,
}

#[get("/verify")]
pub(super) async fn verify_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: Result<web::Query<Form>, actix_web::Error>,
) -> HttpResponse {
    let form = form.map(|f| f.into_inner()).unwrap_or_default();
    let sess = session(&req, &state).await;
    let page = |alert: Option<Alert>, result: Option<Verified>| VerifyPage {
        title: "担保登记查验 · Encumbrance verification",
        session: sess.as_ref(),
        registration_no: form.registration_no.as_deref().unwrap_or(""),
        verification_code: form.verification_code.as_deref().unwrap_or(""),
        alert,
        result,
    };
    let (Some(no), Some(code)) = (form.registration_no.clone(), form.verification_code.clone())
    else {
        return html(StatusCode::OK, page(None, None));
    };
    let as_of = state.clock.now();
    let (no, code) = (no.trim().to_string(), code.trim().to_string());
    let found = state
        .db(move |conn| lookup(conn, &no, Some(&code), None, as_of))
        .await;
    match found {
        Ok(v) => html(StatusCode::OK, page(None, Some(Verified::of(&v)))),
        Err(e) if e.status == StatusCode::NOT_FOUND => html(
            StatusCode::NOT_FOUND,
            page(
                alert(
                    "未找到：登记编号或查验码不正确",
                    "Not found: check the registration number and the code",
                ),
                None,
            ),
        ),
        Err(_) => html(
            StatusCode::SERVICE_UNAVAILABLE,
            page(
                alert(
                    "暂时无法查验，请稍后再试",
                    "Temporarily unavailable, try again",
                ),
                None,
            ),
        ),
    }
}

#[get("/verify/login")]
pub(super) async fn login_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let sess = session(&req, &state).await;
    html(StatusCode::OK, login_page(sess.as_ref(), "", None))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: Option<String>,
    password: Option<String>,
}

#[post("/verify/login")]
pub(super) async fn login(
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
                login_page(
                    None,
                    "",
                    alert("请输入用户名和密码", "Enter the username and the password"),
                ),
            )
        }
    };
    let row = match authenticate(
        &state,
        username.clone(),
        password,
        "user",
        crate::auth::login::client_address(&req, &state),
    )
    .await
    {
        Ok(row) => row,
        Err(e) => {
            let msg = if e.status == StatusCode::UNAUTHORIZED {
                alert(
                    "用户名或密码错误，或账户已停用",
                    "Wrong username or password, or the account is disabled",
                )
            } else {
                alert(
                    "暂时无法登录，请稍后再试",
                    "Temporarily unavailable, try again",
                )
            };
            let status = if e.status == StatusCode::UNAUTHORIZED {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return html(status, login_page(None, &username, msg));
        }
    };
    if row.role != Role::Bank.as_str() {
        return html(
            StatusCode::FORBIDDEN,
            login_page(
                None,
                &username,
                alert(
                    "本页面仅供银行用户登录",
                    "Only bank users may log in on this page",
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
pub(super) async fn logout(
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

async fn run_search_page(state: &AppState, s: &Session, form: &SearchForm) -> HttpResponse {
    let shown_uscc = form.uscc.clone().unwrap_or_default();
    let Some(q) = form.query() else {
        if form.uscc.is_some() || form.id_number.is_some() {
            let msg = alert(
                "请输入统一社会信用代码或身份证号码（二选一）",
                "Enter either a credit code or an ID number",
            );
            return html(
                StatusCode::BAD_REQUEST,
                search_page(s, &shown_uscc, msg, None),
            );
        }
        return html(StatusCode::OK, search_page(s, &shown_uscc, None, None));
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
            search_page(s, &shown_uscc, None, Some(SearchResults::of(&found, as_of))),
        ),
        Err(e) => error_with_forms(&e, s, &shown_uscc),
    }
}

/// An error under the search forms, so that the user can correct the input at once.
fn error_with_forms(e: &ApiError, s: &Session, uscc: &str) -> HttpResponse {
    let Some((status, msg)) = error_alert(e) else {
        return login_required();
    };
    // Only a refusal and bad input have their own message here; anything else (a missing
    // record too) is shown as a passing failure.
    let msg = match status {
        StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST => msg,
        _ => alert(
            "暂时无法处理，请稍后再试",
            "Temporarily unavailable, try again",
        ),
    };
    html(status, search_page(s, uscc, msg, None))
}

#[get("/verify/search")]
pub(super) async fn search_get(
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
pub(super) async fn search_post(
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
pub(super) async fn certify(
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

#[get("/verify/certificates/{no}")]
pub(super) async fn certificate_page(
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
    let c = Certificate::of(&body);
    let title = format!("查询证明 {} · Search certificate", c.no());
    html(
        StatusCode::OK,
        CertificatePage {
            title: &title,
            session: Some(&s),
            c,
        },
    )
}

fn login_page<'a>(
    session: Option<&'a Session>,
    username: &'a str,
    alert: Option<Alert>,
) -> LoginPage<'a> {
    LoginPage {
        title: "登录 · Log in",
        session,
        username,
        alert,
    }
}

fn search_page<'a>(
    s: &'a Session,
    uscc: &'a str,
    alert: Option<Alert>,
    results: Option<SearchResults>,
) -> SearchPage<'a> {
    SearchPage {
        title: "查询借款人 · Search a borrower",
        session: Some(s),
        csrf: &s.csrf,
        uscc,
        alert,
        results,
    }
}
