//! Every failure becomes an RFC 9457 `application/problem+json` answer with a stable `code`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub mod known_routes;

/// The code of the 429 that a party's daily ID-number look-up quota is spent (R15); its answer
/// says when the quota is back.
pub const QUOTA_EXCEEDED: &str = "id_lookup_quota_exceeded";

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "https://registry.example/problems/validation_failed",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "the request body is not valid",
    "code": "validation_failed",
    "errors": [{"field": "quantity", "message": "has more than 4 decimal places"}]
}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code; clients branch on this, never on `detail`.
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// On a server error: the id under which the server logged what went wrong (the answer itself
    /// never carries it); quote it to the registry's operators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    /// Also the answer for an object the caller may not see (never a 403 that leaks existence).
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }
    /// A 422 `validation_failed` naming one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            detail: format!("{field}: {message}"),
            errors: vec![FieldError {
                field: field.to_string(),
                message,
            }],
        }
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            detail,
        )
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", detail)
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("https://registry.example/problems/{}", self.code),
            title: self
                .status
                .canonical_reason()
                .unwrap_or("Error")
                .to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            errors: self.errors.clone(),
            correlation_id: None,
        }
    }

    /// The problem a client is shown. A server error's detail (database messages, internal
    /// state) goes to the log only, under a fresh correlation id that the answer carries instead.
    pub fn public_problem(&self) -> Problem {
        let mut p = self.problem();
        if self.status.is_server_error() {
            let id = uuid::Uuid::new_v4().to_string();
            tracing::error!(correlation_id = %id, status = self.status.as_u16(), code = self.code, detail = %self.detail, "request failed");
            p.detail = match self.status {
                StatusCode::INTERNAL_SERVER_ERROR => format!(
                    "the registry could not complete the request; quote correlation id {id} to its operators"
                ),
                _ => format!("the registry is temporarily unavailable; retry (correlation id {id})"),
            };
            p.errors.clear();
            p.correlation_id = Some(id);
        }
        p
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let problem = self.public_problem();
        let mut res = HttpResponse::build(self.status);
        res.insert_header((header::CONTENT_TYPE, "application/problem+json"));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, "1"));
        }
        if self.code == QUOTA_EXCEEDED {
            // The quota is per day (UTC): it is back at the next midnight.
            let now = chrono::Utc::now();
            let midnight = (now.date_naive() + chrono::Days::new(1))
                .and_hms_opt(0, 0, 0)
                .map(|m| m.and_utc());
            let secs = midnight.map_or(3600, |m| (m - now).num_seconds().max(1));
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        res.body(serde_json::to_string(&problem).unwrap_or_default())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match &e {
            E::NotFound => ApiError::not_found("object"),
            E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) => {
                ApiError::unavailable(format!("database unavailable: {e}"))
            }
            E::DatabaseError(K::SerializationFailure, _) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "retry",
                "concurrent update, retry",
            ),
            E::DatabaseError(_, info) if info.message().contains("database is locked") => {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_busy",
                    "the database is busy; retry",
                )
            }
            E::DatabaseError(_, info) if is_connection_message(info.message()) => {
                ApiError::unavailable(format!("database unavailable: {e}"))
            }
            // PostgreSQL refuses NUL in text. Bodies are checked at the edge (kernel::json); this
            // catches it anywhere else a client's text reaches a query (a filter, a path).
            E::DatabaseError(_, info) if info.message().contains("invalid byte sequence") => {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_text",
                    "text may not contain the NUL character",
                )
            }
            _ => ApiError::internal(format!("database error: {e}")),
        }
    }
}

/// libpq reports a lost server as a generic error whose message names the connection.
fn is_connection_message(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("connection") || m.contains("terminating") || m.contains("server closed")
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        ApiError::unavailable(format!("database unavailable: {e}"))
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(_: actix_web::error::BlockingError) -> Self {
        ApiError::unavailable("worker pool shut down")
    }
}

/// Query-string failures are 422 too.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::invalid_field("query", err.to_string()).into()
}

/// Path failures (a non-numeric id) are 404: no such object; or 405 when the path is another
/// route's literal path (`GET /v1/transfers/forced` fits `GET /v1/transfers/{id}` only by shape).
pub fn path_error(
    _err: actix_web::error::PathError,
    req: &actix_web::HttpRequest,
) -> actix_web::Error {
    let known = req.app_data::<actix_web::web::Data<known_routes::KnownRoutes>>();
    if let Some(res) = known.and_then(|k| k.method_not_allowed(req)) {
        return actix_web::error::InternalError::from_response("method not allowed", res).into();
    }
    ApiError::not_found("resource").into()
}
