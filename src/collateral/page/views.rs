//! What the `/verify` pages show: the data each template renders, built from what the API
//! answers, and the HTML response around it. The markup is in `templates/`; askama escapes every
//! value it inserts, so text a bank or an enterprise typed never becomes markup.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use askama::Template;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::session::Session;
use crate::collateral::lender::{self, EncumbranceView};
use crate::error::ApiError;

/// One line of a notice table: a label in Chinese and English, and its value.
pub(super) struct Row {
    zh: &'static str,
    en: &'static str,
    value: String,
}

fn row(zh: &'static str, en: &'static str, value: impl Into<String>) -> Row {
    Row {
        zh,
        en,
        value: value.into(),
    }
}

/// A message at the top of a page; `detail` is the API's explanation of bad input.
pub(super) struct Alert {
    zh: &'static str,
    en: &'static str,
    detail: Option<String>,
}

pub(super) fn alert(zh: &'static str, en: &'static str) -> Option<Alert> {
    Some(Alert {
        zh,
        en,
        detail: None,
    })
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

/// One notice as table rows; from its JSON, so that the page shows exactly what the API answers
/// and what a certificate signed.
fn notice_rows(n: &Value) -> Vec<Row> {
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
            format!("{} {}", status_zh(s(n, "status")), s(n, "status")),
        ),
        row(
            "类型",
            "Kind",
            format!("{} {}", kind_zh(s(n, "kind")), s(n, "kind")),
        ),
        row("担保物", "Collateral", asset),
        row("出质人/抵押人", "Grantor", party(&n["grantor"])),
    ];
    if n["lender"].is_object() {
        rows.push(row("质权人/抵押权人", "Lender", party(&n["lender"])));
    }
    if let Some(r) = n["rank"].as_i64() {
        rows.push(row("顺位", "Rank", r.to_string()));
    }
    if let Some(a) = n["secured_amount"].as_str() {
        rows.push(row(
            "登记担保金额（元）",
            "Registered secured amount (CNY)",
            a,
        ));
    }
    if let Some(t) = time_text(&n["registered_at"]) {
        rows.push(row("登记时间", "Registered at", t));
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
            format!("{c} {}", s(n, "case_no")),
        ));
    }
    rows
}

fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or(Value::Null)
}

fn as_of_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(super) struct Freeze {
    court: String,
    case_no: String,
    registration_no: String,
}

pub(super) struct Objection {
    reason: String,
    objection_no: String,
    lapses_on: String,
}

pub(super) struct HistoryLine {
    on: String,
    kind: String,
}

/// The answer to a registration number and its verification code.
pub(super) struct Verified {
    notice: Vec<Row>,
    freezes: Vec<Freeze>,
    objections: Vec<Objection>,
    history: Vec<HistoryLine>,
    as_of: String,
}

impl Verified {
    pub(super) fn of(v: &EncumbranceView) -> Self {
        Verified {
            notice: notice_rows(&to_value(&v.notice)),
            freezes: v
                .freezes
                .iter()
                .map(|f| Freeze {
                    court: f.court.clone().unwrap_or_default(),
                    case_no: f.case_no.clone().unwrap_or_default(),
                    registration_no: f.registration_no.clone(),
                })
                .collect(),
            objections: v
                .notice
                .objections
                .iter()
                .map(|o| Objection {
                    reason: o.reason.clone(),
                    objection_no: o.objection_no.clone(),
                    lapses_on: o.lapses_at.format("%Y-%m-%d").to_string(),
                })
                .collect(),
            history: v
                .entries
                .iter()
                .map(|e| HistoryLine {
                    on: e.at.format("%Y-%m-%d").to_string(),
                    kind: e.kind.clone(),
                })
                .collect(),
            as_of: as_of_text(v.as_of),
        }
    }
}

/// The anonymous verification page: the form, a message, and the result.
#[derive(Template)]
#[template(path = "collateral/page/templates/verify.html")]
pub(super) struct VerifyPage<'a> {
    pub(super) title: &'a str,
    pub(super) session: Option<&'a Session>,
    pub(super) registration_no: &'a str,
    pub(super) verification_code: &'a str,
    pub(super) alert: Option<Alert>,
    pub(super) result: Option<Verified>,
}

#[derive(Template)]
#[template(path = "collateral/page/templates/login.html")]
pub(super) struct LoginPage<'a> {
    pub(super) title: &'a str,
    pub(super) session: Option<&'a Session>,
    pub(super) username: &'a str,
    pub(super) alert: Option<Alert>,
}

/// A borrower search's results. The credit code is public and shown; an ID number never is.
pub(super) struct SearchResults {
    uscc: Option<String>,
    grantor_unknown: bool,
    items: Vec<Vec<Row>>,
    as_of: String,
}

impl SearchResults {
    pub(super) fn of(found: &lender::Found, as_of: DateTime<Utc>) -> Self {
        SearchResults {
            uscc: found.query.grantor_uscc.clone(),
            grantor_unknown: found.grantor_registered == Some(false),
            items: found
                .encumbrances
                .iter()
                .map(|n| notice_rows(&to_value(n)))
                .collect(),
            as_of: as_of_text(as_of),
        }
    }
}

/// The search forms: a credit code by GET (bookmarkable), an individual's ID number by POST so
/// that it never lands in a URL or a log; each can issue a certificate at once.
#[derive(Template)]
#[template(path = "collateral/page/templates/search.html")]
pub(super) struct SearchPage<'a> {
    pub(super) title: &'a str,
    pub(super) session: Option<&'a Session>,
    pub(super) csrf: &'a str,
    pub(super) uscc: &'a str,
    pub(super) alert: Option<Alert>,
    pub(super) results: Option<SearchResults>,
}

/// A signed search certificate, printable, from the certificate as issued.
pub(super) struct Certificate {
    no: String,
    head: Vec<Row>,
    uscc: Option<String>,
    grantor_unknown: bool,
    items: Vec<Vec<Row>>,
    signed_by: Vec<Row>,
    signature: String,
    key_id: String,
}

impl Certificate {
    pub(super) fn of(cert: &Value) -> Self {
        let st = &cert["statement"];
        let no = s(st, "certificate_no").to_string();
        let items = st["encumbrances"].as_array().cloned().unwrap_or_default();
        Certificate {
            head: vec![
                row("证明编号", "Certificate number", no.clone()),
                row("出具机构", "Issuer", s(st, "issuer")),
                row(
                    "查询时间",
                    "As of",
                    time_text(&st["as_of"]).unwrap_or_default(),
                ),
            ],
            no,
            uscc: st["query"]["grantor_uscc"].as_str().map(str::to_string),
            grantor_unknown: st["grantor_registered"] == Value::Bool(false),
            items: items.iter().map(notice_rows).collect(),
            signed_by: vec![
                row("算法", "Algorithm", s(cert, "algorithm")),
                row("密钥编号", "Key id", s(cert, "key_id")),
            ],
            signature: s(cert, "signature").to_string(),
            key_id: s(cert, "key_id").to_string(),
        }
    }

    pub(super) fn no(&self) -> &str {
        &self.no
    }
}

#[derive(Template)]
#[template(path = "collateral/page/templates/certificate.html")]
pub(super) struct CertificatePage<'a> {
    pub(super) title: &'a str,
    pub(super) session: Option<&'a Session>,
    pub(super) c: Certificate,
}

/// A page that only says what went wrong.
#[derive(Template)]
#[template(path = "collateral/page/templates/message.html")]
struct MessagePage<'a> {
    title: &'a str,
    session: Option<&'a Session>,
    alert: Option<Alert>,
    login_link: bool,
}

/// An HTML response that no cache keeps and no frame embeds; styles inline, no script at all.
pub(super) fn html(status: StatusCode, page: impl Template) -> HttpResponse {
    let body = match page.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "verify page did not render");
            return HttpResponse::InternalServerError().finish();
        }
    };
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

pub(super) fn forbidden_page(session: Option<&Session>) -> HttpResponse {
    html(
        StatusCode::FORBIDDEN,
        MessagePage {
            title: "请求被拒绝 · Request refused",
            session,
            alert: alert(
                "请求来源无法验证，请返回页面重新提交",
                "The request's origin could not be checked; go back and submit the form again",
            ),
            login_link: false,
        },
    )
}

pub(super) fn login_required() -> HttpResponse {
    html(
        StatusCode::UNAUTHORIZED,
        MessagePage {
            title: "请先登录 · Please log in",
            session: None,
            alert: alert(
                "请先登录（登录已过期或尚未登录）",
                "Please log in (you are not logged in, or the session expired)",
            ),
            login_link: true,
        },
    )
}

/// What the page says about an API error, and with which status: nothing the API would not
/// tell. `None` when the error means the user must log in.
pub(super) fn error_alert(e: &ApiError) -> Option<(StatusCode, Option<Alert>)> {
    Some(match e.status {
        StatusCode::NOT_FOUND => (StatusCode::NOT_FOUND, alert("未找到", "Not found")),
        StatusCode::FORBIDDEN => (
            StatusCode::FORBIDDEN,
            alert(
                "无权进行此查询（企业用户只能查询本企业）",
                "You may not run this search (enterprises may search only themselves)",
            ),
        ),
        StatusCode::UNAUTHORIZED => return None,
        s if s.is_client_error() => (
            StatusCode::BAD_REQUEST,
            Some(Alert {
                zh: "输入有误",
                en: "Please check the input",
                detail: Some(e.detail.clone()),
            }),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            alert(
                "暂时无法处理，请稍后再试",
                "Temporarily unavailable, try again",
            ),
        ),
    })
}

/// An API error as a page.
pub(super) fn error_page(e: &ApiError, session: Option<&Session>) -> HttpResponse {
    let Some((status, alert)) = error_alert(e) else {
        return login_required();
    };
    html(
        status,
        MessagePage {
            title: "错误 · Error",
            session,
            alert,
            login_link: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text a bank or an enterprise typed (a party's name, a court, a reason) is shown as text,
    /// never as markup.
    #[test]
    fn typed_text_is_escaped() {
        let notice = serde_json::json!({
            "registration_no": "NPZY-1\"><script>alert(1)</script>",
            "status": "registered",
            "kind": "pledge",
            "grantor": {"name_zh": "<script>alert('x')</script>有限公司", "uscc": "91350700MA2Y0000X1"},
            "lender": {"name_zh": "银行 & <b>分行</b>"},
        });
        let page = VerifyPage {
            title: "<title>",
            session: None,
            registration_no: "\"><script>x</script>",
            verification_code: "'onfocus='x",
            alert: None,
            result: Some(Verified {
                notice: notice_rows(&notice),
                freezes: vec![Freeze {
                    court: "<i>court</i>".into(),
                    case_no: "(2026)闽0702执<1>号".into(),
                    registration_no: "SFDJ-1".into(),
                }],
                objections: vec![],
                history: vec![],
                as_of: String::new(),
            }),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<i>") && !html.contains("'onfocus"));
        assert!(html.contains("&lt;script&gt;alert(") && html.contains("有限公司"));
        assert!(html.contains("银行 &amp; &lt;b&gt;分行&lt;/b&gt;"));
        assert!(html.contains("&lt;title&gt;"));
    }
}
