//! [`Command`]: what every writing handler starts from, in one extractor — the principal, the
//! `Idempotency-Key`, the JSON body with its hash, the application state and the clock read once.
//! It replaces the preamble each writing handler repeated (four extractors, the actor name, the
//! clock, and the six arguments of `idempotency::run`).
//!
//! Extraction keeps the order handlers had: the principal first (401), then the key (400), then
//! the body (415/413/422); a role check in the handler still comes after all of them.

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::Principal;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;

/// A writing request: its body, and the context it runs in.
pub struct Command<B> {
    pub body: B,
    pub cx: Cx,
}

/// Who asks, when, and how to run the effect exactly once.
pub struct Cx {
    pub state: web::Data<AppState>,
    pub who: Principal,
    /// The clock, read once for the whole request (microseconds, as stored).
    pub now: NaiveDateTime,
    pub today: NaiveDate,
    idem: IdemKey,
    body_hash: String,
}

impl Cx {
    /// The name recorded in audit events and journals.
    pub fn actor(&self) -> String {
        self.who.actor()
    }

    /// Runs `effect` in one write transaction, exactly once per (principal, key): see
    /// [`idempotency::run`].
    pub async fn run<F>(
        self,
        policy: KeyPolicy,
        status: StatusCode,
        effect: F,
    ) -> ApiResult<HttpResponse>
    where
        F: FnOnce(&mut DbConn) -> ApiResult<Outcome> + Send + 'static,
    {
        idempotency::run(
            &self.state,
            &self.who,
            self.idem,
            &self.body_hash,
            policy,
            status,
            effect,
        )
        .await
    }
}

impl<B: DeserializeOwned + 'static> FromRequest for Command<B> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let who = Principal::from_request(req, payload);
        let idem = IdemKey::from_request(req, payload);
        let body = ApiJson::<B>::from_request(req, payload);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let who = who.await?;
            let idem = idem.await?;
            let body = body.await?;
            let (now, today) = (db::now_micros(state.clock.now()), state.clock.today());
            Ok(Command {
                body: body.value,
                cx: Cx {
                    state,
                    who,
                    now,
                    today,
                    idem,
                    body_hash: body.body_hash,
                },
            })
        })
    }
}
