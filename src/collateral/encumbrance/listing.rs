//! The read endpoints every encumbrance kind has: a page of those the caller is party to, and one.

use actix_web::{web, HttpResponse};

use super::{visible, Encumbrance};
use crate::auth::Principal;
use crate::error::ApiResult;
use crate::kernel::pagination::{Page, PageParams};
use crate::kernel::state::AppState;

/// A page of the encumbrances the caller is party to (all for operators and regulators).
pub async fn list<E: Encumbrance>(
    state: web::Data<AppState>,
    who: Principal,
    page: PageParams,
    status: Option<String>,
    filter: E::Filter,
) -> ApiResult<HttpResponse> {
    let (after, limit) = page.resolve()?;
    let party = (!who.role.sees_all()).then(|| who.party_id.unwrap_or(-1));
    let page = state
        .db(move |conn| {
            let rows = E::page(conn, after, limit, party, status, filter)?;
            let views = rows
                .into_iter()
                .map(|e| E::view(conn, e))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(Page::from_rows(views, limit, E::view_id))
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One encumbrance with its entries, if the caller may see it.
pub async fn get_one<E: Encumbrance>(
    state: web::Data<AppState>,
    who: Principal,
    id: i64,
) -> ApiResult<HttpResponse> {
    let v = state
        .db(move |conn| {
            let e: E = visible(conn, &who, id)?;
            E::view(conn, e)
        })
        .await?;
    Ok(HttpResponse::Ok().json(v))
}
