//! Authentication (passwords, API clients, JWT) and the roles every handler checks.

pub mod bootstrap;
pub mod cache;
pub mod command;
pub mod hashing;
pub mod jwt;
pub mod limiter;
pub mod login;
pub mod password;
pub mod routes;
pub mod rules;
pub mod store;

// The accounts' domain API that lives beside handlers (run when a proposal is approved).
pub use command::{Command, Cx};
pub use routes::{authenticate, execute_operator_account};

use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::{http::header, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::kernel::state::AppState;

/// What a principal may do. Parties scope what it may see (docs/design.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Exchange staff: issue, approve, oversee. Every operator account names the natural person
    /// behind it, and maker-checker needs two different persons.
    Operator,
    /// Administers accounts (users, API clients, disabling, roles) and nothing else: it cannot
    /// operate the registry or decide proposals, and operators cannot create accounts.
    UserAdmin,
    /// An enterprise (or individual) holding rights.
    Enterprise,
    /// A lender.
    Bank,
    /// Read-only everything (ecology bureau, forestry bureau, PBoC).
    Regulator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::UserAdmin => "user_admin",
            Role::Enterprise => "enterprise",
            Role::Bank => "bank",
            Role::Regulator => "regulator",
        }
    }
    /// Operators and regulators see everything.
    pub fn sees_all(self) -> bool {
        matches!(self, Role::Operator | Role::Regulator)
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "operator" => Ok(Role::Operator),
            "user_admin" => Ok(Role::UserAdmin),
            "enterprise" => Ok(Role::Enterprise),
            "bank" => Ok(Role::Bank),
            "regulator" => Ok(Role::Regulator),
            other => Err(format!(
                "unknown role `{other}` (operator, user_admin, enterprise, bank, regulator)"
            )),
        }
    }
}

/// The authenticated caller, checked against the principal's current state on every request so
/// that a disabled principal or a revoked token is refused at once, not at expiry.
#[derive(Debug, Clone)]
pub struct Principal {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub party_id: Option<i64>,
    /// The natural person behind an operator account (maker-checker compares persons).
    pub person_id: Option<String>,
}

impl Principal {
    /// 403 unless the caller has one of `roles`. Used for actions, never to hide objects.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "the {} role may not do this",
                self.role.as_str()
            )))
        }
    }

    /// True when the caller may see objects of `party_id` (its own, or everything).
    pub fn sees_party(&self, party_id: i64) -> bool {
        self.role.sees_all() || self.party_id == Some(party_id)
    }

    /// Name recorded in audit events and journals.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.role.as_str(), self.username)
    }
}

impl crate::kernel::idempotency::Caller for Principal {
    fn principal_id(&self) -> i64 {
        self.id
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let token =
                token.ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
            principal_from_token(&state, &token).await
        })
    }
}

/// Checks a token (signature, claims, and the principal's state: disabled, revoked) and returns
/// its principal. Shared by the bearer extractor and the /verify page's session cookie. The state
/// comes from this process's memory when it is known to be current ([`cache`]), else from the
/// database.
pub async fn principal_from_token(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let claims = state.keys.decode(token)?;
    let current = match cache::lookup(claims.uid).await {
        cache::Lookup::Hit(known) => Some(known),
        cache::Lookup::Miss(ticket) => {
            let row = state
                .db(move |conn| Ok(store::find_by_id(conn, claims.uid)?))
                .await?;
            if let (Some(ticket), Some(row)) = (ticket, &row) {
                cache::remember(ticket, row);
            }
            row.as_ref().map(cache::Cached::from)
        }
    };
    match current {
        Some(p) if !p.disabled && p.token_version == claims.ver => Ok(Principal {
            id: p.id,
            username: p.username,
            role: p.role.parse().map_err(ApiError::internal)?,
            party_id: p.party_id,
            person_id: p.person_id,
        }),
        _ => Err(ApiError::unauthorized("the token has been revoked")),
    }
}

/// The caller if it sent a token, None if it sent none (for endpoints that also answer without a
/// login, like verification by code). A token that is sent must be valid.
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequest for MaybePrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if req.headers().get(header::AUTHORIZATION).is_none() {
            return Box::pin(async { Ok(MaybePrincipal(None)) });
        }
        let fut = Principal::from_request(req, payload);
        Box::pin(async move { fut.await.map(|p| MaybePrincipal(Some(p))) })
    }
}
