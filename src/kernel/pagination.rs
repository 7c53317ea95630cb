//! Cursor pagination: lists are ordered by id and a cursor is the last id seen, opaque to clients.
//!
//! [`PageParams`] is an extractor of its own: it reads `cursor` and `limit` from the query string
//! whatever else the list filters on, so a list handler takes `page: PageParams` beside its own
//! filter and its filter struct does not repeat the two fields. The two are parsed when the
//! request is extracted (a malformed number is a 422 like any query) and checked by
//! [`PageParams::resolve`] where the handler decides (after its role check).

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures_util::future::{ready, Ready};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (1–500, default 50).
    pub limit: Option<i64>,
}

impl FromRequest for PageParams {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            web::Query::<PageParams>::from_query(req.query_string())
                .map(web::Query::into_inner)
                .map_err(|e| ApiError::invalid_field("query", e.to_string())),
        )
    }
}

impl PageParams {
    /// The id after which to continue, and the page size.
    pub fn resolve(&self) -> Result<(i64, i64), ApiError> {
        let after = match &self.cursor {
            None => 0,
            Some(c) => URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| ApiError::invalid_field("cursor", "not a cursor this API issued"))?,
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        Ok((after, limit))
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T: Serialize> Page<T> {
    /// The 200 answer of a list: up to `limit + 1` rows fetched after the cursor, as one page.
    pub fn respond(rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> i64) -> HttpResponse {
        HttpResponse::Ok().json(Page::from_rows(rows, limit, id_of))
    }
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched after the cursor.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> i64) -> Page<T> {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last()
                .map(|r| URL_SAFE_NO_PAD.encode(id_of(r).to_string()))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}
