//! `ApiJson<T>`: the JSON body extractor. Unlike actix's, it names the offending field for every
//! kind of bad input (serde_path_to_error), answers 415/413/422 as problems, and keeps a hash of
//! the raw body for idempotency checks.

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::{ApiError, FieldError};

/// Bodies of JSON requests are limited to 1 MiB.
pub const JSON_LIMIT: usize = 1024 * 1024;

pub struct ApiJson<T> {
    pub value: T,
    /// SHA-256 of the raw body, hex.
    pub body_hash: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !is_json {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send the body as application/json",
                ));
            }
            let body = bytes.await.map_err(|e| {
                if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        "the request body is larger than 1 MiB",
                    )
                } else {
                    ApiError::bad_request("bad_request", format!("could not read the body: {e}"))
                }
            })?;
            let value = parse(&body)?;
            Ok(ApiJson {
                value,
                body_hash: hex::encode(Sha256::digest(&body)),
            })
        })
    }
}

/// Deserialises a body, naming the field that failed.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if has_escaped_nul(body) {
        return Err(nul_error(body));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        use serde_json::error::Category;
        let path = e.path().to_string();
        let inner = e.inner();
        let (code, field) = match inner.classify() {
            Category::Syntax | Category::Eof => ("malformed_json", "body".to_string()),
            _ => ("validation_failed", field_name(&path, &inner.to_string())),
        };
        let message = strip_position(&inner.to_string());
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            detail: format!("{field}: {message}"),
            errors: vec![FieldError { field, message }],
        }
    })
}

/// Whether a JSON text holds the NUL character (`\u0000`; JSON cannot carry it unescaped).
/// PostgreSQL's text cannot store it, and no field of this API needs it, so it is refused on both
/// backends alike. Backslashes occur only inside strings, each starting a two-character escape.
fn has_escaped_nul(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            if body[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// A 422 naming the first field whose text holds NUL (found on this error path only).
fn nul_error(body: &[u8]) -> ApiError {
    fn find(v: &serde_json::Value, path: String) -> Option<String> {
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Some(path),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| find(x, format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| {
                if k.contains('\0') {
                    return Some(if path.is_empty() {
                        "body".into()
                    } else {
                        path.clone()
                    });
                }
                find(
                    x,
                    if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    },
                )
            }),
            _ => None,
        }
    }
    let field = serde_json::from_slice(body)
        .ok()
        .and_then(|v| find(&v, String::new()))
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| "body".to_string());
    ApiError::invalid_field(&field, "text may not contain the NUL character (\\u0000)")
}

/// For "missing field `x`" serde reports the field in the message and the path stops at its
/// parent; for every other error (unknown field included) the path is the field.
fn field_name(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (missing, path) {
        (Some(name), ".") => name.to_string(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, ".") => "body".to_string(),
        (None, field) => field.to_string(),
    }
}

/// serde_json appends " at line 1 column 20"; the field name says more to an API client.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        count: i64,
    }

    #[test]
    fn refuses_nul_in_any_string_naming_the_field() {
        let e = parse::<Body>(br#"{"name":"a\u0000b","count":1}"#).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.errors[0].field.as_str()),
            (422, "name")
        );
        let e = parse::<serde_json::Value>(br#"{"a":[{"b":"\u0000"}]}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "a[0].b");
        // An escaped backslash followed by the text u0000 is not NUL.
        assert!(parse::<serde_json::Value>(br#"{"a":"\\u0000"}"#).is_ok());
        assert!(parse::<serde_json::Value>(br#"{"a":"\u00001"}"#).is_err());
    }

    #[test]
    fn names_the_field_for_each_kind_of_error() {
        let cases: [(&str, &str, &str); 4] = [
            (r#"{"name":"a","count":"x"}"#, "validation_failed", "count"),
            (r#"{"name":"a"}"#, "validation_failed", "count"),
            (
                r#"{"name":"a","count":1,"extra":1}"#,
                "validation_failed",
                "extra",
            ),
            (r#"{"name":"a","#, "malformed_json", "body"),
        ];
        for (body, code, field) in cases {
            let err = parse::<Body>(body.as_bytes()).unwrap_err();
            assert_eq!(
                (err.code, err.errors[0].field.as_str()),
                (code, field),
                "{body}"
            );
        }
    }
}
