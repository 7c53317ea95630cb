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
use crate::app::AppState;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ApiResult};

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
}

#[utoipa::path(post, path = "/v1/imports/{kind}", tag = "imports", operation_id = "importCsv",
    summary = "Bulk-import parties, lots or forest parcels from CSV",
    description = "Operators only. The body is the CSV file (`Content-Type: text/csv`), UTF-8 with or without BOM, or GBK (a body that is not valid UTF-8 is read as GBK); at most 512 MiB. The header row names the columns.\n\n- `parties`: kind, name_zh, name_en, uscc, id_number, region_code, address\n- `lots`: right_type, sub_kind, vintage, compliance_year, valid_from, valid_to, region_code, origin, project, monitoring_period, quantity, holder_uscc, source_document\n- `forest-parcels`: certificate_no, holder_uscc or holder_id_number, rights (separated by `;`), county_code, township, village, compartment, sub_compartment, place_name, area_mu, forest_category, commercial_kind, origin, dominant_species, age_group, stock_volume, woodland_term_end, ownership, management_form, registered, disputed\n\nEvery row is validated first with the same rules as the single-object endpoints. When any row is bad, nothing is imported and the answer is a 422 listing every bad row (line, column, reason), unless `skip_invalid=true`. Good rows then load in batches of 1,000, one transaction each. Re-sending a file is safe: rows already registered (same credit code, ID number, source document or certificate number) are refused, so a retry imports nothing twice.",
    params(("kind" = String, Path, description = "parties, lots or forest-parcels"), ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "The CSV file"),
    responses((status = 200, description = "Imported; bad rows (with skip_invalid) are listed", body = ImportReport),
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
        file.write_all(&chunk)
            .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
    }
    file.flush()
        .map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
    let opts = super::options(
        who.actor(),
        format!("upload by {}", who.username),
        state.secrets.id_hmac_key.clone(),
        q.skip_invalid.unwrap_or(false),
    );
    let report = state
        .db(move |conn| {
            let r = super::run(conn, kind, file.path(), &opts, &mut Silent);
            drop(file);
            Ok(r?)
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
