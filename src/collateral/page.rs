//! `/verify`: the lender verification page — server-rendered HTML, Chinese first with English,
//! no JavaScript and no external assets. Enter a registration number and its verification code;
//! the page shows the notice (DESIGN §5), the same that `GET /v1/encumbrances/{no}` answers.

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpResponse};
use serde::Deserialize;

use super::lender::{lookup, EncumbranceView, Notice};
use crate::app::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify_page);
}

#[derive(Debug, Deserialize)]
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
        "active" => "生效中",
        "lifted" => "已解除",
        _ => "其他",
    }
}

fn notice_table(n: &Notice) -> String {
    let asset = match (&n.asset, &n.parcels) {
        (Some(a), _) => format!(
            "{} {} {} · {}",
            a.right_type,
            a.sub_kind.clone().unwrap_or_default(),
            a.certificate_no,
            a.quantity.0
        ),
        (None, Some(ps)) => ps
            .iter()
            .map(|p| p.certificate_no.clone())
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::new(),
    };
    let grantor_id = n
        .grantor
        .uscc
        .clone()
        .or(n.grantor.id_number_masked.clone())
        .unwrap_or_default();
    let mut rows = vec![
        row("登记编号", "Registration number", &n.registration_no),
        row(
            "状态",
            "Status",
            &format!("{} {}", status_zh(&n.status), n.status),
        ),
        row("类型", "Kind", &n.kind),
        row("担保物", "Collateral", &asset),
        row(
            "出质人/抵押人",
            "Grantor",
            &format!("{} {}", n.grantor.name_zh, grantor_id),
        ),
    ];
    if let Some(l) = &n.lender {
        rows.push(row(
            "质权人/抵押权人",
            "Lender",
            &format!("{} {}", l.name_zh, l.uscc.clone().unwrap_or_default()),
        ));
    }
    if let Some(r) = n.rank {
        rows.push(row("顺位", "Rank", &r.to_string()));
    }
    if let Some(a) = &n.secured_amount {
        rows.push(row(
            "登记担保金额（元）",
            "Registered secured amount (CNY)",
            &a.0.to_string(),
        ));
    }
    if let Some(t) = n.registered_at {
        rows.push(row(
            "登记时间",
            "Registered at",
            &t.format("%Y-%m-%d %H:%M UTC").to_string(),
        ));
    }
    if let Some(d) = n.period_end {
        rows.push(row("登记期限届满", "Registration ends", &d.to_string()));
    }
    if let Some(d) = n.loan_maturity {
        rows.push(row("主债权到期", "Loan matures", &d.to_string()));
    }
    format!("<table>{}</table>", rows.join(""))
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
    let history: String = v
        .entries
        .iter()
        .map(|e| format!("<li>{} · {}</li>", e.at.format("%Y-%m-%d"), esc(&e.kind)))
        .collect();
    format!(
        "<section aria-labelledby=\"result\"><h2 id=\"result\">查验结果 · <span lang=\"en\">Result</span></h2>{}{}<h3>登记记录 · <span lang=\"en\">History</span></h3><ol>{}</ol><p class=\"small\">查询时间 · <span lang=\"en\">As of</span> {}</p></section>",
        notice_table(&v.notice),
        freezes,
        history,
        v.as_of.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

fn page(form: &Form, body: &str) -> String {
    let no = esc(form.registration_no.as_deref().unwrap_or(""));
    let code = esc(form.verification_code.as_deref().unwrap_or(""));
    format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>担保登记查验 · Encumbrance verification</title>
<style>
body{{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#111;background:#fff;line-height:1.5}}
h1{{font-size:1.5rem}} label{{display:block;margin-top:.8rem;font-weight:600}}
input{{font-size:1rem;padding:.4rem;width:100%;max-width:24rem;border:2px solid #333;border-radius:4px}}
button{{margin-top:1rem;font-size:1rem;padding:.5rem 1.2rem;background:#0b4f2c;color:#fff;border:0;border-radius:4px}}
table{{border-collapse:collapse;margin-top:1rem;width:100%}} th,td{{border:1px solid #555;padding:.4rem;text-align:left;vertical-align:top}}
th{{background:#eef3ef;width:40%}} .warn{{color:#8a1c00;font-weight:700}} .error{{color:#8a1c00}} .small{{font-size:.85rem;color:#333}}
</style></head><body>
<h1>海峡资源环境交易中心南平分中心 · 担保登记查验<br><span lang="en">Encumbrance verification</span></h1>
<form method="get" action="/verify">
<label for="registration_no">登记编号 · <span lang="en">Registration number</span></label>
<input id="registration_no" name="registration_no" required value="{no}" autocomplete="off">
<label for="verification_code">查验码 · <span lang="en">Verification code</span></label>
<input id="verification_code" name="verification_code" required value="{code}" autocomplete="off">
<button type="submit">查验 · Verify</button>
</form>
{body}
</body></html>"#
    )
}

#[get("/verify")]
async fn verify_page(state: web::Data<AppState>, form: web::Query<Form>) -> HttpResponse {
    let form = form.into_inner();
    let html_response = |status: StatusCode, body: String| {
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    };
    let (Some(no), Some(code)) = (form.registration_no.clone(), form.verification_code.clone())
    else {
        return html_response(StatusCode::OK, page(&form, ""));
    };
    let as_of = state.clock.now();
    let (no, code) = (no.trim().to_string(), code.trim().to_string());
    let found = state
        .db(move |conn| lookup(conn, &no, Some(&code), None, as_of))
        .await;
    match found {
        Ok(v) => html_response(StatusCode::OK, page(&form, &result_html(&v))),
        Err(e) if e.status == StatusCode::NOT_FOUND => html_response(
            StatusCode::NOT_FOUND,
            page(&form, "<p class=\"error\" role=\"alert\">未找到：登记编号或查验码不正确 · <span lang=\"en\">Not found: check the registration number and the code</span></p>"),
        ),
        Err(_) => html_response(
            StatusCode::SERVICE_UNAVAILABLE,
            page(&form, "<p class=\"error\" role=\"alert\">暂时无法查验，请稍后再试 · <span lang=\"en\">Temporarily unavailable, try again</span></p>"),
        ),
    }
}
