//! `/verify`: the lender verification page — server-rendered HTML, Chinese first with English,
//! no JavaScript and no external assets. Enter a registration number and its verification code;
//! the page shows the notice (docs/design.md §5), the same that `GET /v1/encumbrances/{no}`
//! answers.
//!
//! A bank user (and only a bank user) may also log in on the page (`/verify/login`): the session
//! cookie (HttpOnly, SameSite=Strict, Secure over HTTPS, with the token's TTL) holds a random page
//! session token, kept in the database only as a hash. It is not an API token: the API refuses it,
//! so a stolen cookie gives no API access, and logging out revokes it at once. A session also ends
//! when the user is disabled or its tokens are revoked. The user may search a borrower by credit
//! code or ID number (`/verify/search`, the notices `GET /v1/encumbrances` answers, under the same
//! rules and the same ID-number quota) and print a signed search certificate
//! (`/verify/certificates`). Every POST must carry this site's Origin (and no cross-site
//! Sec-Fetch-Site) and, once logged in, a form token bound to the session.
//!
//! The markup is in `templates/` (askama, checked at compile time, every value escaped); `views`
//! builds what each template shows, `session` keeps the page session and its form token, and
//! `handlers` answers the requests.

use actix_web::web;

mod escape;
mod handlers;
mod session;
mod views;

use handlers::*;
pub use session::{forget_sessions, SESSION_COOKIE};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(verify_page)
        .service(login_form)
        .service(login)
        .service(logout)
        .service(search_get)
        .service(search_post)
        .service(certify)
        .service(certificate_page);
}
