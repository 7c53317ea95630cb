//! HTTP: `POST /v1/imports/{kind}` — the operator's bulk import. The upload streams to a
//! temporary file (never held in memory) under its own size limit, then runs through the same
//! two-pass validator and loader as `registry import`.

use std::io::Write;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::StatusCode;
use actix_web::{post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ImportReport, Kind, Silent};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::kernel::state::AppState;
use crate::proposals::{ProposalKind, ProposalView};

/// The largest upload accepted (the JSON endpoints' limit is 1 MiB).
pub const UPLOAD_LIMIT: u64 = 512 * 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(import);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Load the good rows even when some are bad (the bad ones are listed and left out).
    pub skip_invalid: Option<bool>,
    /// Lots and forest parcels: the pending `lot_import` or `parcel_import` proposal this upload
    /// approves. The approving operator (another person than the proposer) uploads the very same
    /// file; only then is it loaded.
    pub proposal: Option<i64>,
}

/// What a lot- or parcel-import proposal stores: the file it approves, by digest.
#[derive(Debug, serde::Serialize, Deserialize)]
pub struct LotImportProposal {
    /// SHA-256 of the uploaded bytes, hex.
    pub sha256: String,
    pub bytes: u64,
    pub skip_invalid: bool,
}

#[utoipa::path(post, path = "/v1/imports/{kind}", tag = "imports", operation_id = "importCsv",
    summary = "Bulk-import parties, lots or forest parcels from CSV",
    description = "Operators only. The body is the CSV file (`Content-Type: text/csv`), UTF-8 with or without BOM, or GBK (a body that is not valid UTF-8 is read as GBK); at most 512 MiB. The header row names the columns.\n\n- `parties`: kind, name_zh, name_en, uscc, id_number, region_code, address\n- `lots`: right_type, sub_kind, vintage, compliance_year, valid_from, valid_to, region_code, origin, project, monitoring_period, quantity, holder_uscc, source_document\n- `forest-parcels`: certificate_no, holder_uscc or holder_id_number, rights (separated by `;`), county_code, township, village, compartment, sub_compartment, place_name, area_mu, forest_category, commercial_kind, origin, dominant_species, age_group, stock_volume, woodland_term_end, ownership, management_form, registered, disputed\n\nLots are issued quantity and forest parcels are collateral banks lend against, so both take two operators: the first upload validates and proposes the file (202, a `lot_import` or `parcel_import` proposal naming its SHA-256); a second operator (another person) approves by uploading the same file with `?proposal={id}`, and only then are the rows validated again and loaded. Every row is validated first with the same rules as the single-object endpoints. When any row is bad, nothing is imported and the answer is a 422 listing every bad row (line, column, reason), unless `skip_invalid=true`. Good rows then load in batches of 1,000, one transaction each. Re-sending a file is safe: rows already registered (same credit code, ID number, source document or certificate number) are refused, so a retry imports nothing twice.",
    params(("kind" = String, Path, description = "parties, lots or forest-parcels"), ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    responses((status = 200, description = "Imported; bad rows (with skip_invalid) are listed", body = ImportReport),
        (status = 202, description = "Lots and forest parcels: proposed; a second operator approves by uploading the same file", body = crate::proposals::ProposalView),
        (status = 403, description = "maker_checker: the proposer cannot approve", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "import_file_mismatch, proposal_decided", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large: over 512 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type: not text/csv", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "import_invalid: nothing imported; `report` lists every bad row", body = ImportProblem, content_type = "application/problem+json")))]
#[post("/v1/imports/{kind}")]
async fn import(
    state: web::Data<AppState>,
    who: Principal,
    req: HttpRequest,
    kind: web::Path<String>,
    q: web::Query<ImportQuery>,
    mut body: web::Payload,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::Operator])?;
    let kind = Kind::parse(&kind).ok_or_else(|| ApiError::not_found("import kind"))?;
    let csv = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/csv"));
    if !csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file as text/csv",
        ));
    }
    let mut file = tempfile::NamedTempFile::new()
        .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
    let mut size: u64 = 0;
    let mut digest = <sha2::Sha256 as sha2::Digest>::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("upload_failed", e.to_string()))?;
        size += chunk.len() as u64;
        if size > UPLOAD_LIMIT {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "an import is at most 512 MiB",
            ));
        }
        sha2::Digest::update(&mut digest, &chunk);
        file.write_all(&chunk)
            .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
    }
    file.flush()
        .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
    let sha256 = hex::encode(sha2::Digest::finalize(digest));
    let mut skip_invalid = q.skip_invalid.unwrap_or(false);
    let mut source = format!("upload by {}", who.username);
    if let Some(proposal_kind) = two_person_kind(kind) {
        let now = crate::db::now_micros(state.clock.now());
        let w = who.clone();
        match q.proposal {
            None => {
                // Issuing quantity or registering parcels takes two persons: this upload is
                // validated and proposed; the rows are loaded when a second operator uploads the
                // same file.
                let asked = LotImportProposal {
                    sha256,
                    bytes: size,
                    skip_invalid,
                };
                let mut opts = super::options(
                    who.actor(),
                    source,
                    state.secrets.id_hmac_key.clone(),
                    skip_invalid,
                );
                opts.validate_only = true;
                let (report, row) = state
                    .db(move |conn| {
                        let report = super::run(conn, kind, file.path(), &opts, &mut Silent);
                        drop(file);
                        let report = report?;
                        if report.invalid > 0 && !skip_invalid {
                            return Ok((report, None));
                        }
                        let row = crate::db::write_tx(conn, |conn| {
                            crate::proposals::propose(conn, proposal_kind, &asked, None, &w, now)
                        })?;
                        Ok((report, Some(row)))
                    })
                    .await?;
                return Ok(match row {
                    Some(row) => HttpResponse::Accepted().json(ProposalView::from(row)),
                    None => HttpResponse::UnprocessableEntity()
                        .content_type("application/problem+json")
                        .json(super::problem(&report)),
                });
            }
            Some(id) => {
                let asked = state
                    .db(move |conn| {
                        crate::db::write_tx(conn, |conn| {
                            approve_upload(conn, proposal_kind, id, &sha256, &w, now)
                        })
                    })
                    .await?;
                skip_invalid = asked.skip_invalid;
                source = format!("proposal {id}, approved by {}", who.username);
            }
        }
    } else if q.proposal.is_some() {
        return Err(ApiError::invalid_field(
            "proposal",
            "only a lot or parcel import is proposed and approved",
        ));
    }
    let opts = super::options(
        who.actor(),
        source,
        state.secrets.id_hmac_key.clone(),
        skip_invalid,
    );
    let proposal = q.proposal.filter(|_| two_person_kind(kind).is_some());
    let report = state
        .db(move |conn| {
            let r = super::run(conn, kind, file.path(), &opts, &mut Silent);
            drop(file);
            let r = r?;
            if let Some(id) = proposal {
                let result = serde_json::to_value(&r).unwrap_or_default();
                crate::db::write_tx(conn, |conn| crate::proposals::set_result(conn, id, &result))?;
            }
            Ok(r)
        })
        .await?;
    if report.invalid > 0 && report.imported == 0 {
        return Ok(HttpResponse::UnprocessableEntity()
            .content_type("application/problem+json")
            .json(super::problem(&report)));
    }
    Ok(HttpResponse::Ok().json(report))
}

/// The 422 of an import with bad rows: a problem document carrying the whole report.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ImportProblem {
    #[serde(rename = "type")]
    kind: String,
    title: String,
    status: u16,
    detail: String,
    /// `import_invalid`, or another 422 code (an unknown kind, a bad query) without a report.
    code: String,
    /// With `import_invalid`: every bad row.
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<ImportReport>,
}

/// The proposal kind of an import that takes two persons: lots (issued quantity) and forest
/// parcels (collateral); parties are registered by one operator.
fn two_person_kind(kind: Kind) -> Option<ProposalKind> {
    match kind {
        Kind::Lots => Some(ProposalKind::LotImport),
        Kind::ForestParcels => Some(ProposalKind::ParcelImport),
        Kind::Parties => None,
    }
}

/// Decides a pending import proposal of `kind` for the uploader `who` (another person than the
/// proposer) when the upload is the proposed file; the caller then loads it.
fn approve_upload(
    conn: &mut crate::db::DbConn,
    kind: ProposalKind,
    id: i64,
    sha256: &str,
    who: &Principal,
    now: chrono::NaiveDateTime,
) -> ApiResult<LotImportProposal> {
    let row = crate::proposals::find(conn, id)?.ok_or_else(|| ApiError::not_found("proposal"))?;
    if row.kind != kind.as_str() {
        return Err(ApiError::invalid_field(
            "proposal",
            format!("not a {} proposal", kind.as_str()),
        ));
    }
    let asked: LotImportProposal = serde_json::from_str(&row.payload)
        .map_err(|e| ApiError::internal(format!("stored proposal unreadable: {e}")))?;
    let row = crate::proposals::decide(conn, id, who, "approved", None, now)?;
    if asked.sha256 != sha256 {
        return Err(ApiError::conflict(
            "import_file_mismatch",
            "this is not the file that was proposed",
        ));
    }
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: format!("proposal:{}", row.id),
            actor: &who.actor(),
            action: &format!("{}.approved", kind.as_str()),
            object_type: "proposal",
            object_id: row.id.to_string(),
            payload: serde_json::json!({"decision": "approved", "sha256": sha256}),
            at: now,
        },
    )?;
    Ok(asked)
}
