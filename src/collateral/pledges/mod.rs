//! HTTP: `/v1/pledges` — the pledge lifecycle: apply, accept (register), amend, renew, release,
//! lapse, enforce, dispose; and the amendment code (修改码) that guards every lender change.

use actix_web::web;
use chrono::NaiveDateTime;

use super::{code_hash, PledgeRow};
use crate::auth::Principal;
use crate::collateral::encumbrance::{self, require_lender, require_status};
use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::Outcome;
use crate::rights::store::LotRow;

mod amendment;
mod enforcement;
mod lapse;
mod registration;
mod unpledging;
mod views;

pub use amendment::*;
pub use enforcement::*;
pub use lapse::*;
pub use registration::*;
pub use unpledging::*;
pub use views::*;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(apply)
        .service(list)
        .service(get_one)
        .service(accept)
        .service(withdraw)
        .service(release)
        .service(renew)
        .service(amend)
        .service(rotate_code)
        .service(reset_code)
        .service(enforce)
        .service(dispose)
        .service(valuation)
        .service(sweep);
}

fn outcome(conn: &mut DbConn, id: i64) -> ApiResult<Outcome> {
    encumbrance::outcome::<PledgeRow>(conn, id)
}

/// A pledge the caller is party to (or sees as operator/regulator); anyone else gets 404.
fn visible(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<PledgeRow> {
    encumbrance::visible(conn, who, id)
}

/// Locks the pledge's lot, then re-reads the pledge: every change of a pledge queues here.
fn lock(conn: &mut DbConn, who: &Principal, id: i64) -> ApiResult<(PledgeRow, LotRow)> {
    // A lot lock does not depend on the time.
    encumbrance::lock(conn, Some(who), id, NaiveDateTime::MIN)
}

/// R7: lender changes need the amendment code; a wrong one is a 403 and changes nothing.
fn check_code(p: &PledgeRow, code: &str) -> ApiResult<()> {
    if p.amendment_code_hash.as_deref() == Some(code_hash(code).as_str()) {
        Ok(())
    } else {
        let mut e = ApiError::forbidden("the amendment code (修改码) is wrong");
        e.code = "amendment_code_invalid";
        Err(e)
    }
}

fn set_status(conn: &mut DbConn, id: i64, status: &str, at: NaiveDateTime) -> ApiResult<()> {
    encumbrance::set_status::<PledgeRow>(conn, id, status, at)
}
