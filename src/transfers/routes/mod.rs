//! HTTP: `/v1/transfers` — request, confirm, approve, reject, cancel; forced transfers.

use actix_web::web;

mod bilateral;
mod decisions;
mod off_registry;
mod terms;
mod views;
mod without_consent;

pub use bilateral::*;
pub use decisions::*;
pub use off_registry::*;
use terms::*;
pub use views::*;
pub use without_consent::*;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(request)
        .service(registered)
        .service(forced)
        .service(list)
        .service(get_one)
        .service(confirm)
        .service(approve)
        .service(reject)
        .service(cancel);
}
