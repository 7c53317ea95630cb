//! HTTP: `/v1/parties` — registration, lookup, change history and compliance flags.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::store::{self, FlagRow, PartyEventRow, PartyFilter, PartyRow};
use super::uscc::{CreditCode, CreditCodeError, IdNumber};
use super::{ChangeKind, FlagKind, PartyKind};
use crate::audit;
use crate::auth::{Command, Principal, Role};
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_party)
        .service(list_parties)
        .service(get_party)
        .service(change_party)
        .service(party_history)
        .service(add_flag)
        .service(clear_flag)
        .service(list_flags);
}

/// Register a party. Organisations give a unified social credit code; individuals an ID number,
/// which is stored only as a keyed hash and shown masked.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "bank", "name_zh": "兴业银行股份有限公司", "name_en": "Industrial Bank Co., Ltd.",
    "uscc": "91350000158142711F", "region_code": "350000", "address": "福州市台江区江滨中大道398号"}))]
pub struct CreateParty {
    pub kind: PartyKind,
    pub name_zh: String,
    pub name_en: Option<String>,
    /// 统一社会信用代码 (organisations).
    pub uscc: Option<String>,
    /// Resident ID number (individuals only); never returned.
    pub id_number: Option<String>,
    /// GB/T 2260 administrative division code, 6 digits.
    pub region_code: String,
    pub address: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyView {
    pub id: i64,
    pub kind: PartyKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uscc: Option<String>,
    /// The ID number, masked: only the province shown (35****************).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_number_masked: Option<String>,
    pub name_zh: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    pub region_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// active, merged, dissolved, …
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PartyRow> for PartyView {
    fn from(r: PartyRow) -> Self {
        PartyView {
            id: r.id,
            kind: PartyKind::parse(&r.kind).unwrap_or(PartyKind::Enterprise),
            uscc: r.uscc,
            id_number_masked: r.id_number_masked,
            name_zh: r.name_zh,
            name_en: r.name_en,
            region_code: r.region_code,
            address: r.address,
            status: r.status,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

fn required_text(field: &str, v: &str, max: usize) -> ApiResult<String> {
    let t = v.trim();
    if t.is_empty() {
        return Err(ApiError::invalid_field(field, "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("longer than {max} characters"),
        ));
    }
    Ok(t.to_string())
}

fn optional_text(field: &str, v: &Option<String>, max: usize) -> ApiResult<Option<String>> {
    v.as_deref()
        .map(|s| required_text(field, s, max))
        .transpose()
}

/// Reads a credit code as typed (lowercase letters as capitals), answering the R1 422 that names
/// the expected check character.
pub fn parse_uscc(field: &str, raw: &str) -> ApiResult<CreditCode> {
    CreditCode::read(raw).map_err(|e| match e {
        CreditCodeError::CheckCharacter { expected } => {
            let mut err = ApiError::invalid_field(
                field,
                format!("wrong check character: expected `{expected}` as the 18th character"),
            );
            err.code = "uscc_check_character";
            err
        }
        other => {
            let mut err = ApiError::invalid_field(field, other.to_string());
            err.code = "uscc_invalid";
            err
        }
    })
}

/// A party's region: a division of Fujian that exists, or another province's code.
fn parse_region(field: &str, raw: &str) -> ApiResult<String> {
    if crate::kernel::regions::party_region_exists(raw) {
        Ok(raw.to_string())
    } else {
        Err(ApiError::invalid_field(
            field,
            crate::kernel::regions::refusal(raw),
        ))
    }
}

#[utoipa::path(post, path = "/v1/parties", tag = "parties", operation_id = "createParty",
    summary = "Register a party",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = CreateParty,
    responses((status = 201, description = "Registered", body = PartyView),
        (status = 409, description = "A party with this credit code or ID number exists", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/parties")]
async fn create_party(cmd: Command<CreateParty>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let (state, who) = (&cx.state, &cx.who);
    who.require(&[Role::Operator])?;
    let b = body;
    let name_zh = required_text("name_zh", &b.name_zh, 200)?;
    let name_en = optional_text("name_en", &b.name_en, 200)?;
    let address = optional_text("address", &b.address, 500)?;
    let region_code = parse_region("region_code", &b.region_code)?;
    let (uscc, id_hash, id_masked) = match (b.kind, &b.uscc, &b.id_number) {
        (PartyKind::Individual, None, Some(id)) => {
            let id = IdNumber::parse(id)
                .map_err(|e| ApiError::invalid_field("id_number", e.to_string()))?;
            (
                None,
                Some(id.keyed_hash(&state.secrets.id_hmac_key)),
                Some(id.masked()),
            )
        }
        (PartyKind::Individual, _, _) => {
            return Err(ApiError::invalid_field(
                "id_number",
                "an individual is registered by ID number, without uscc",
            ))
        }
        (_, Some(code), None) => (
            Some(parse_uscc("uscc", code)?.as_str().to_string()),
            None,
            None,
        ),
        (_, _, _) => return Err(ApiError::invalid_field(
            "uscc",
            "an organisation is registered by its unified social credit code, without id_number",
        )),
    };
    let actor = who.actor();
    let now = cx.now;
    cx.run(KeyPolicy::Optional, StatusCode::CREATED, move |conn| {
        let new = store::NewParty {
            kind: b.kind.as_str(),
            uscc,
            id_number_hash: id_hash,
            id_number_masked: id_masked,
            name_zh,
            name_en,
            region_code,
            address,
            status: "active".into(),
            created_at: now,
            updated_at: now,
        };
        let row = store::insert(conn, &new).map_err(|e| {
            if db::is_unique_violation(&e) {
                ApiError::conflict(
                    "party_exists",
                    "a party with this credit code or ID number is already registered",
                )
            } else {
                e.into()
            }
        })?;
        record(
            conn,
            &row,
            ChangeKind::Registered,
            json!({"name_zh": row.name_zh}),
            None,
            None,
            &actor,
            now,
        )?;
        Outcome::of(&PartyView::from(row))
    })
    .await
}

/// Writes a history entry and its audit event.
#[allow(clippy::too_many_arguments)]
fn record(
    conn: &mut DbConn,
    party: &PartyRow,
    kind: ChangeKind,
    changes: serde_json::Value,
    document_ref: Option<String>,
    related: Option<i64>,
    actor: &str,
    at: chrono::NaiveDateTime,
) -> ApiResult<()> {
    store::add_event(
        conn,
        &store::NewPartyEvent {
            party_id: party.id,
            kind: kind.as_str(),
            changes: changes.to_string(),
            document_ref: document_ref.clone(),
            related_party_id: related,
            actor: actor.to_string(),
            at,
        },
    )?;
    audit::record(
        conn,
        audit::Event {
            chain: format!("party:{}", party.id),
            actor,
            action: &format!("party.{}", kind.as_str()),
            object_type: "party",
            object_id: party.id.to_string(),
            payload: json!({"changes": changes, "document_ref": document_ref, "related_party_id": related}),
            at,
        },
    )?;
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PartyQuery {
    /// Exact unified social credit code.
    pub uscc: Option<String>,
    /// Exact ID number of an individual (banks searching a borrower; matched by keyed hash).
    pub id_number: Option<String>,
    pub kind: Option<PartyKind>,
    pub region_code: Option<String>,
}

#[utoipa::path(get, path = "/v1/parties", tag = "parties", operation_id = "listParties",
    summary = "List or look up parties",
    description = "Operators and regulators see every party; a bank may look one party up by exact credit code or ID number; an enterprise sees itself. Every look-up by ID number is audited; a bank's count against its daily quota (429 `id_lookup_quota_exceeded`).",
    params(PartyQuery, PageParams), responses((status = 200, description = "A page of parties", body = Page<PartyView>),
        (status = 429, description = "The bank's look-ups by ID number for today are used up (`id_lookup_quota_exceeded`)", body = crate::error::Problem, content_type = "application/problem+json")))]
#[get("/v1/parties")]
async fn list_parties(
    state: web::Data<AppState>,
    who: Principal,
    q: web::Query<PartyQuery>,
    page: PageParams,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let (after, limit) = page.resolve()?;
    if let Some(r) = &q.region_code {
        parse_region("region_code", r)?;
    }
    let id_number_hash = match &q.id_number {
        Some(n) => Some(
            IdNumber::parse(n)
                .map_err(|e| ApiError::invalid_field("id_number", e.to_string()))?
                .keyed_hash(&state.secrets.id_hmac_key),
        ),
        None => None,
    };
    let exact_lookup = q.uscc.is_some() || id_number_hash.is_some();
    let only = match who.role {
        Role::Operator | Role::Regulator => None,
        Role::Bank if exact_lookup => None,
        _ => Some(who.party_id.unwrap_or(-1)),
    };
    let filter = PartyFilter {
        // Typed codes: lowercase letters can only mean the capitals (R1).
        uscc: q.uscc.map(|u| u.to_ascii_uppercase()),
        id_number_hash,
        kind: q.kind.map(PartyKind::as_str),
        region_code: q.region_code,
        only,
    };
    let (quota, now) = (
        state.exposure.id_lookup_daily_quota,
        db::now_micros(state.clock.now()),
    );
    let rows = state
        .db(move |conn| {
            if let Some(hash) = &filter.id_number_hash {
                super::lookups::charge(conn, &who, hash, "GET /v1/parties", quota, now)?;
            }
            Ok(store::list(conn, &filter, after, limit)?)
        })
        .await?;
    let page = Page::from_rows(
        rows.into_iter().map(PartyView::from).collect(),
        limit,
        |p| p.id,
    );
    Ok(HttpResponse::Ok().json(page))
}

/// Loads a party the caller may see, or 404.
async fn visible_party(state: &AppState, who: &Principal, id: i64) -> ApiResult<PartyRow> {
    if !who.sees_party(id) {
        return Err(ApiError::not_found("party"));
    }
    state
        .db(move |conn| store::find(conn, id)?.ok_or_else(|| ApiError::not_found("party")))
        .await
}

#[utoipa::path(get, path = "/v1/parties/{id}", tag = "parties", operation_id = "getParty", summary = "Get a party",
    params(("id" = i64, Path, description = "Party id")),
    responses((status = 200, description = "The party", body = PartyView)))]
#[get("/v1/parties/{id}")]
async fn get_party(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let row = visible_party(&state, &who, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(PartyView::from(row)))
}

/// A change of name, address or status, or a merger or split, with its document.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "rename", "name_zh": "南平市绿源化工有限公司", "document_ref": "延市监变字〔2026〕118号"}))]
pub struct PartyChange {
    pub kind: ChangeKind,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub address: Option<String>,
    /// New status (for `status`, and `merged`/`split` for mergers and splits).
    pub status: Option<String>,
    /// The document that records the change (required for mergers and splits).
    pub document_ref: Option<String>,
    /// The other party of a merger or split.
    pub related_party_id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyEventView {
    pub id: i64,
    pub kind: ChangeKind,
    pub changes: serde_json::Value,
    pub document_ref: Option<String>,
    pub related_party_id: Option<i64>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

impl From<PartyEventRow> for PartyEventView {
    fn from(r: PartyEventRow) -> Self {
        PartyEventView {
            id: r.id,
            kind: ChangeKind::parse(&r.kind).unwrap_or(ChangeKind::Status),
            changes: serde_json::from_str(&r.changes).unwrap_or_default(),
            document_ref: r.document_ref,
            related_party_id: r.related_party_id,
            actor: r.actor,
            at: r.at.and_utc(),
        }
    }
}

#[utoipa::path(post, path = "/v1/parties/{id}/changes", tag = "parties", operation_id = "changeParty",
    summary = "Record a change (变更, 合并, 分立)",
    params(("id" = i64, Path, description = "Party id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = PartyChange,
    responses((status = 200, description = "The party after the change", body = PartyView)))]
#[post("/v1/parties/{id}/changes")]
async fn change_party(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    id: web::Path<i64>,
    body: ApiJson<PartyChange>,
) -> ApiResult<HttpResponse> {
    use crate::schema::parties as p;
    use diesel::prelude::*;
    who.require(&[Role::Operator])?;
    let id = id.into_inner();
    let c = body.value;
    let name_zh = optional_text("name_zh", &c.name_zh, 200)?;
    let name_en = optional_text("name_en", &c.name_en, 200)?;
    let address = optional_text("address", &c.address, 500)?;
    let status = optional_text("status", &c.status, 40)?;
    let document_ref = optional_text("document_ref", &c.document_ref, 200)?;
    match c.kind {
        ChangeKind::Registered => {
            return Err(ApiError::invalid_field(
                "kind",
                "a party is registered once",
            ))
        }
        ChangeKind::Rename if name_zh.is_none() && name_en.is_none() => {
            return Err(ApiError::invalid_field(
                "name_zh",
                "a rename gives the new name",
            ))
        }
        ChangeKind::Address if address.is_none() => {
            return Err(ApiError::invalid_field("address", "required"))
        }
        ChangeKind::Status if status.is_none() => {
            return Err(ApiError::invalid_field("status", "required"))
        }
        ChangeKind::Merger | ChangeKind::Split
            if document_ref.is_none() || c.related_party_id.is_none() =>
        {
            return Err(ApiError::invalid_field(
                "document_ref",
                "a merger or split names its document and the related party",
            ))
        }
        _ => {}
    }
    let actor = who.actor();
    let now = db::now_micros(state.clock.now());
    idempotency::run(&state, &who, idem, &body.body_hash, KeyPolicy::Optional, StatusCode::OK, move |conn| {
        // Lock the row first (PostgreSQL), so concurrent changes apply one after the other.
        diesel::update(p::table.find(id)).set(p::updated_at.eq(p::updated_at)).execute(conn)?;
        let before = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("party"))?;
        if let Some(rel) = c.related_party_id {
            if rel == id || store::find(conn, rel)?.is_none() {
                return Err(ApiError::invalid_field("related_party_id", "not another registered party"));
            }
        }
        let new_status = match c.kind {
            ChangeKind::Merger => status.clone().or(Some("merged".into())),
            ChangeKind::Split => status.clone().or(Some("split".into())),
            _ => status.clone(),
        };
        diesel::update(p::table.find(id))
            .set((
                p::name_zh.eq(name_zh.clone().unwrap_or(before.name_zh.clone())),
                p::name_en.eq(name_en.clone().or(before.name_en.clone())),
                p::address.eq(address.clone().or(before.address.clone())),
                p::status.eq(new_status.clone().unwrap_or(before.status.clone())),
                p::updated_at.eq(now),
            ))
            .execute(conn)?;
        let after = store::find(conn, id)?.ok_or_else(|| ApiError::not_found("party"))?;
        let changes = json!({
            "before": {"name_zh": before.name_zh, "name_en": before.name_en, "address": before.address, "status": before.status},
            "after": {"name_zh": after.name_zh, "name_en": after.name_en, "address": after.address, "status": after.status},
        });
        record(conn, &after, c.kind, changes, document_ref, c.related_party_id, &actor, now)?;
        Outcome::of(&PartyView::from(after))
    })
    .await
}

#[utoipa::path(get, path = "/v1/parties/{id}/history", tag = "parties", operation_id = "partyHistory",
    summary = "A party's change history", params(("id" = i64, Path, description = "Party id")),
    responses((status = 200, description = "Every recorded change, oldest first", body = Vec<PartyEventView>)))]
#[get("/v1/parties/{id}/history")]
async fn party_history(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let party = visible_party(&state, &who, id.into_inner()).await?;
    let rows = state
        .db(move |conn| Ok(store::history(conn, party.id)?))
        .await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(PartyEventView::from)
            .collect::<Vec<_>>(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"flag": "over_emission", "reason": "2025年度超标排放，南平市生态环境局处罚决定书南环罚〔2026〕12号"}))]
pub struct NewFlag {
    pub flag: FlagKind,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClearFlag {
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlagView {
    pub id: i64,
    pub party_id: i64,
    pub flag: FlagKind,
    pub reason: String,
    pub set_by: String,
    pub set_at: DateTime<Utc>,
    /// False once cleared.
    pub active: bool,
    pub cleared_by: Option<String>,
    pub cleared_at: Option<DateTime<Utc>>,
    pub clear_reason: Option<String>,
}

impl From<FlagRow> for FlagView {
    fn from(r: FlagRow) -> Self {
        FlagView {
            id: r.id,
            party_id: r.party_id,
            flag: FlagKind::parse(&r.flag).unwrap_or(FlagKind::OverEmission),
            reason: r.reason,
            set_by: r.set_by,
            set_at: r.set_at.and_utc(),
            active: r.cleared_at.is_none(),
            cleared_by: r.cleared_by,
            cleared_at: r.cleared_at.map(|t| t.and_utc()),
            clear_reason: r.clear_reason,
        }
    }
}

fn flag_audit(
    conn: &mut DbConn,
    f: &FlagRow,
    action: &str,
    actor: &str,
    at: chrono::NaiveDateTime,
) -> ApiResult<()> {
    audit::record(
        conn,
        audit::Event {
            chain: format!("party:{}", f.party_id),
            actor,
            action,
            object_type: "compliance_flag",
            object_id: f.id.to_string(),
            payload: json!({"flag": f.flag, "reason": f.reason, "clear_reason": f.clear_reason}),
            at,
        },
    )?;
    Ok(())
}

#[utoipa::path(post, path = "/v1/parties/{id}/compliance-flags", tag = "parties", operation_id = "setComplianceFlag",
    summary = "Set a compliance flag", params(("id" = i64, Path, description = "Party id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = NewFlag, responses((status = 201, description = "The flag", body = FlagView)))]
#[post("/v1/parties/{id}/compliance-flags")]
async fn add_flag(cmd: Command<NewFlag>, id: web::Path<i64>) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator, Role::Regulator])?;
    let id = id.into_inner();
    let reason = required_text("reason", &body.reason, 1000)?;
    if body.flag == FlagKind::PoorCreditRating {
        // Poor environmental credit is the red environmental credit grade now; old flags of
        // this kind stay readable in the flag history.
        return Err(ApiError::unprocessable(
            "flag_kind_retired",
            "poor credit rating is recorded as an environmental credit grade: POST /v1/parties/{id}/environmental-credit",
        ));
    }
    let flag = body.flag.as_str();
    let actor = who.actor();
    let now = cx.now;
    cx.run(KeyPolicy::Optional, StatusCode::CREATED, move |conn| {
        store::find(conn, id)?.ok_or_else(|| ApiError::not_found("party"))?;
        let row = store::add_flag(conn, id, &flag, &reason, &actor, now)?;
        flag_audit(conn, &row, "party.flag_set", &actor, now)?;
        Outcome::of(&FlagView::from(row))
    })
    .await
}

#[utoipa::path(post, path = "/v1/parties/{id}/compliance-flags/{flag_id}/clear", tag = "parties", operation_id = "clearComplianceFlag",
    summary = "Clear a compliance flag",
    params(("id" = i64, Path, description = "Party id"), ("flag_id" = i64, Path, description = "Flag id"), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = ClearFlag, responses((status = 200, description = "The cleared flag", body = FlagView)))]
#[post("/v1/parties/{id}/compliance-flags/{flag_id}/clear")]
async fn clear_flag(
    cmd: Command<ClearFlag>,
    path: web::Path<(i64, i64)>,
) -> ApiResult<HttpResponse> {
    let Command { body, cx } = cmd;
    let who = &cx.who;
    who.require(&[Role::Operator, Role::Regulator])?;
    let (id, flag_id) = path.into_inner();
    let reason = required_text("reason", &body.reason, 1000)?;
    let actor = who.actor();
    let now = cx.now;
    cx.run(KeyPolicy::Optional, StatusCode::OK, move |conn| {
        let row = store::clear_flag(conn, id, flag_id, &reason, &actor, now)?
            .ok_or_else(|| ApiError::not_found("active compliance flag"))?;
        flag_audit(conn, &row, "party.flag_cleared", &actor, now)?;
        Outcome::of(&FlagView::from(row))
    })
    .await
}

#[utoipa::path(get, path = "/v1/parties/{id}/compliance-flags", tag = "parties", operation_id = "listComplianceFlags",
    summary = "A party's compliance flags, with history", params(("id" = i64, Path, description = "Party id")),
    responses((status = 200, description = "Every flag ever set, oldest first", body = Vec<FlagView>)))]
#[get("/v1/parties/{id}/compliance-flags")]
async fn list_flags(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    let party = visible_party(&state, &who, id.into_inner()).await?;
    let rows = state
        .db(move |conn| Ok(store::flags(conn, party.id)?))
        .await?;
    Ok(HttpResponse::Ok().json(rows.into_iter().map(FlagView::from).collect::<Vec<_>>()))
}
