//! HTTP: `/v1/auth/token` (passwords and API client credentials), users and API clients.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::jwt::{Claims, AUDIENCE, ISSUER};
use super::login::{self, LoginRefused};
use super::store::{self, PrincipalRow};
use super::{hashing, password, rules, Principal, Role};
use crate::audit;
use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};
use crate::kernel::idempotency::{self, IdemKey, KeyPolicy, Outcome};
use crate::kernel::json::ApiJson;
use crate::kernel::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(token)
        .service(change_password)
        .service(reset_password)
        .service(create_user)
        .service(create_client)
        .service(list_users)
        .service(disable)
        .service(enable)
        .service(revoke);
}

/// Log in with a password, or as an API client (OAuth2 client-credentials style).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "admin", "password": "correct horse battery staple"}))]
pub struct TokenRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    /// `client_credentials` for API clients.
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9…", "token_type": "Bearer", "expires_in": 3600}))]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

/// Signs a token for a principal. Token lifetimes follow the wall clock, as their validation
/// does: a moved business clock (tests' --test-clock) must not mint tokens that are not yet valid
/// or already expired.
pub fn mint(state_keys: &super::jwt::Keys, p: &PrincipalRow, ttl: i64) -> ApiResult<String> {
    let iat = Utc::now().timestamp();
    state_keys.encode(&Claims {
        sub: p.username.clone(),
        uid: p.id,
        party_id: p.party_id,
        role: p.role.clone(),
        iat,
        nbf: iat,
        exp: iat + ttl,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        ver: p.token_version,
    })
}

#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", operation_id = "issueToken",
    summary = "Obtain an access token", security(()),
    request_body = TokenRequest,
    responses((status = 200, description = "A bearer token", body = TokenResponse),
        (status = 401, description = "Wrong credentials, or a disabled principal", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "`password_change_required`: the password was reset by an operator; change it with POST /v1/auth/password", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts`: too many failed logins for this name or from this address; wait `Retry-After` seconds", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`login_busy`: every password-hashing thread is busy; retry after `Retry-After` seconds", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
#[post("/v1/auth/token")]
async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ApiJson<TokenRequest>,
) -> Result<HttpResponse, LoginRefused> {
    let b = body.value;
    let (name, secret, kind) = match (b.grant_type.as_deref(), b.username, b.password, b.client_id, b.client_secret) {
        (None | Some("password"), Some(u), Some(p), None, None) => (u, p, "user"),
        (Some("client_credentials"), None, None, Some(id), Some(s)) => (id, s, "client"),
        (Some(g), ..) if g != "password" && g != "client_credentials" => {
            return Err(ApiError::invalid_field("grant_type", "password or client_credentials").into())
        }
        _ => {
            return Err(ApiError::invalid_field(
                "body",
                "give username and password, or grant_type client_credentials with client_id and client_secret",
            )
            .into())
        }
    };
    let peer = login::client_address(&req, &state);
    let row = authenticate(&state, name, secret, kind, peer).await?;
    let ttl = state.token_ttl;
    let access_token = mint(&state.keys, &row, ttl)?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
    }))
}

/// Checks a password (or an API client's secret; `kind` is `user` or `client`) from the client
/// address `peer`: one bounded hash whatever the failure, 401 `invalid_credentials` on any
/// failure, 429 after too many, each failure audited (see [`login::check`]). Shared with the
/// /verify page.
pub async fn authenticate(
    state: &AppState,
    name: String,
    secret: String,
    kind: &'static str,
    peer: Option<std::net::IpAddr>,
) -> Result<PrincipalRow, LoginRefused> {
    login::check(state, name, secret, kind, peer, false).await
}

/// A user or an API client, as operators see it. Secrets are never shown here.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalView {
    pub id: i64,
    /// `user` or `client`.
    pub kind: String,
    /// Username, or an API client's client_id.
    pub username: String,
    pub role: Role,
    pub party_id: Option<i64>,
    /// Operators: the natural person behind the account.
    pub person_id: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    /// An operator account's creation, re-enabling or password reset by a user administrator
    /// waits for this proposal: an operator of another person approves it
    /// (POST /v1/proposals/{id}/approve), and until then nothing has changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_proposal: Option<i64>,
}

impl From<PrincipalRow> for PrincipalView {
    fn from(r: PrincipalRow) -> Self {
        PrincipalView {
            id: r.id,
            kind: r.kind,
            username: r.username,
            role: r.role.parse().unwrap_or(Role::Regulator),
            party_id: r.party_id,
            person_id: r.person_id,
            disabled: r.disabled,
            created_at: r.created_at.and_utc(),
            approval_proposal: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "cib-credit-01", "password": "a long passphrase", "role": "bank", "party_id": 2}))]
pub struct NewUser {
    pub username: String,
    /// At least 12 characters.
    pub password: String,
    pub role: Role,
    /// Required for enterprise and bank users.
    pub party_id: Option<i64>,
    /// Required for operators, refused for other roles: the natural person behind the account
    /// (a staff number or similar, one per person). Two accounts of one person never make and
    /// check the same proposal.
    #[serde(default)]
    pub person_id: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "bank", "party_id": 2}))]
pub struct NewClient {
    pub role: Role,
    pub party_id: i64,
}

/// The person identifier in one form (NFKC, trimmed, upper case), so that `e1001`, ` E1001` and
/// full-width `ｅ１００１` are one person; 1–64 printable ASCII characters. Anything else is
/// refused rather than kept: a lookalike (a non-breaking hyphen, a Cyrillic letter) would make a
/// second "person" that reads like an existing one to the operator approving it, and so let one
/// person pass maker-checker twice.
pub fn person_form(person: &str) -> Option<String> {
    use unicode_normalization::UnicodeNormalization;
    let p = person.nfkc().collect::<String>().trim().to_uppercase();
    let printable = p.chars().all(|c| c.is_ascii_graphic() || c == ' ');
    (!p.is_empty() && p.len() <= 64 && printable).then_some(p)
}

/// An operator account names its person; no other account does.
fn check_person(role: Role, person: Option<&str>) -> ApiResult<()> {
    match (role, person) {
        (Role::Operator, Some(p)) if person_form(p).as_deref() == Some(p) => Ok(()),
        (Role::Operator, _) => Err(ApiError::invalid_field(
            "person_id",
            "an operator account names the natural person behind it (1–64 letters, digits or ASCII punctuation)",
        )),
        (_, None) => Ok(()),
        (_, Some(_)) => Err(ApiError::invalid_field(
            "person_id",
            "only operator accounts name a person",
        )),
    }
}

/// Checks that a role and party fit together; shared by the API and `registry user add`.
pub fn check_binding(conn: &mut DbConn, role: Role, party_id: Option<i64>) -> ApiResult<()> {
    let party = match party_id {
        Some(id) => Some(
            crate::parties::store::find(conn, id)?
                .ok_or_else(|| ApiError::invalid_field("party_id", "no such party"))?,
        ),
        None => None,
    };
    use crate::parties::PartyKind as K;
    let fits = match (role, &party) {
        (Role::Enterprise, Some(p)) => matches!(p.kind(), Some(K::Enterprise | K::Individual)),
        (Role::Bank, Some(p)) => p.kind() == Some(K::Bank),
        (Role::Enterprise | Role::Bank, None) => false,
        (Role::Operator, p) => p.as_ref().is_none_or(|p| p.kind() == Some(K::Exchange)),
        (Role::UserAdmin, p) => p.is_none(),
        (Role::Regulator, p) => p.as_ref().is_none_or(|p| p.kind() == Some(K::Regulator)),
    };
    if fits {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "party_id",
            format!(
                "a {} must belong to a party of the matching kind",
                role.as_str()
            ),
        ))
    }
}

/// Creates a principal after checking its role and party fit; a duplicate name is a 409.
pub fn add_principal(
    conn: &mut DbConn,
    new: &store::NewPrincipal,
    actor: &str,
) -> ApiResult<PrincipalRow> {
    let role: Role = new
        .role
        .parse()
        .map_err(|e: String| ApiError::invalid_field("role", e))?;
    check_binding(conn, role, new.party_id)?;
    check_person(role, new.person_id)?;
    let row = store::insert(conn, new).map_err(|e| {
        if db::is_unique_violation(&e) {
            ApiError::conflict("username_taken", "this username is taken")
        } else {
            e.into()
        }
    })?;
    principal_audit(
        conn,
        &row,
        &format!("{}.created", new.kind),
        actor,
        new.created_at,
    )?;
    Ok(row)
}

fn principal_audit(
    conn: &mut DbConn,
    p: &PrincipalRow,
    action: &str,
    actor: &str,
    at: chrono::NaiveDateTime,
) -> ApiResult<()> {
    audit::record(
        conn,
        audit::Event {
            chain: format!("principal:{}", p.id),
            actor,
            action,
            object_type: "principal",
            object_id: p.id.to_string(),
            payload: json!({"username": p.username, "role": p.role, "party_id": p.party_id, "person_id": p.person_id, "disabled": p.disabled}),
            at,
        },
    )?;
    Ok(())
}

#[utoipa::path(post, path = "/v1/users", tag = "auth", operation_id = "createUser", summary = "Create a user (user administrators only)",
    description = "Only the `user_admin` role administers accounts; operators cannot create any. An operator account names its person (`person_id`). \
        A new operator account is created disabled, with a proposal (`approval_proposal`, kind `operator_account`) that an active operator of another person \
        than the new account must approve before it can log in; the exception is a database that has never had an operator account (a fresh install), \
        where the user administrator creates operators directly. Either way a new operator must change the password chosen for it (POST /v1/auth/password) \
        before it gets a token. An enterprise or bank account acts for its party, and a regulator account clears compliance flags and reads banks' \
        private terms, so either is created disabled with a proposal (kind `party_account`) that an operator approves before it can log in; \
        an enterprise, bank or regulator user too must change the password chosen for it (POST /v1/auth/password) before it gets a token.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = NewUser, responses((status = 201, description = "Created", body = PrincipalView)))]
#[post("/v1/users")]
async fn create_user(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewUser>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::UserAdmin])?;
    let b = body.value;
    let username = b.username.trim().to_string();
    if username.is_empty()
        || username.len() > 64
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
    {
        return Err(ApiError::invalid_field(
            "username",
            "1–64 characters of letters, digits, - _ . @",
        ));
    }
    let chars = b.password.chars().count();
    if !(rules::MIN_PASSWORD_CHARS..=rules::MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ApiError::invalid_field(
            "password",
            "must be 12 to 256 characters",
        ));
    }
    let person = b
        .person_id
        .as_deref()
        .map(|p| person_form(p).unwrap_or_default());
    check_person(b.role, person.as_deref())?;
    let cost = state.hash_cost;
    let secret = b.password.clone();
    let hash = hashing::run(move || password::hash(&secret, cost))
        .await?
        .map_err(ApiError::internal)?;
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let w = who.clone();
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            let bootstrap = b.role == Role::Operator && store::operator_count(conn)? == 0;
            let new = store::NewPrincipal {
                kind: "user",
                username: &username,
                secret_hash: &hash,
                role: b.role.as_str(),
                party_id: b.party_id,
                created_at: now,
                person_id: person.as_deref(),
            };
            let row = add_principal(conn, &new, &actor)?;
            if party_bound(b.role.as_str()) {
                // The user administrator chose this password: the enterprise, bank or regulator
                // user replaces it before it gets a token, so the administrator never holds a
                // working login of a party.
                store::mark_change_due(conn, row.id, now)?;
                store::set_disabled(conn, row.id, true)?;
                return Outcome::of(&propose_operator_account(
                    conn, &w, "create", row.id, None, now,
                )?);
            }
            if b.role != Role::Operator {
                return Outcome::of(&PrincipalView::from(row));
            }
            // The user administrator chose this password: the operator replaces it before operating.
            store::mark_change_due(conn, row.id, now)?;
            if bootstrap {
                return Outcome::of(&PrincipalView::from(row));
            }
            store::set_disabled(conn, row.id, true)?;
            let view = propose_operator_account(conn, &w, "create", row.id, None, now)?;
            Outcome::of(&view)
        },
    )
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientCreated {
    #[serde(flatten)]
    pub client: PrincipalView,
    /// Shown once, never again: store it in the bank's secret store. Absent from a replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
}

#[utoipa::path(post, path = "/v1/api-clients", tag = "auth", operation_id = "createApiClient",
    summary = "Create an API client for a bank's or enterprise's systems",
    description = "The client secret is returned once; a replay of this request omits it. A client of an enterprise or bank acts for its party: \
        it is created disabled, with `approval_proposal` (kind `party_account`) that an operator approves before the secret gives a token.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe")),
    request_body = NewClient, responses((status = 201, description = "Created", body = ClientCreated)))]
#[post("/v1/api-clients")]
async fn create_client(
    state: web::Data<AppState>,
    who: Principal,
    idem: IdemKey,
    body: ApiJson<NewClient>,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::UserAdmin])?;
    let b = body.value;
    if matches!(b.role, Role::Operator | Role::UserAdmin) {
        // An API client is a system, not a person: it could never stand for one side of maker-checker.
        return Err(ApiError::invalid_field(
            "role",
            "API clients are for banks', enterprises' and regulators' systems",
        ));
    }
    let client_id = format!("cli_{}", password::random_secret(16).to_lowercase());
    let w = who.clone();
    let secret = password::random_secret(40);
    let cost = state.hash_cost;
    let to_hash = secret.clone();
    let hash = hashing::run(move || password::hash(&to_hash, cost))
        .await?
        .map_err(ApiError::internal)?;
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    idempotency::run(
        &state,
        &who,
        idem,
        &body.body_hash,
        KeyPolicy::Optional,
        StatusCode::CREATED,
        move |conn| {
            let new = store::NewPrincipal {
                kind: "client",
                username: &client_id,
                secret_hash: &hash,
                role: b.role.as_str(),
                party_id: Some(b.party_id),
                created_at: now,
                person_id: None,
            };
            let row = add_principal(conn, &new, &actor)?;
            let view = if party_bound(&row.role) {
                store::set_disabled(conn, row.id, true)?;
                propose_operator_account(conn, &w, "create", row.id, None, now)?
            } else {
                PrincipalView::from(row)
            };
            let mut out = Outcome::of(&view)?;
            out.secrets = Some(json!({ "client_secret": secret }));
            Ok(out)
        },
    )
    .await
}

#[utoipa::path(get, path = "/v1/users", tag = "auth", operation_id = "listUsers", summary = "List users and API clients",
    params(crate::kernel::pagination::PageParams),
    responses((status = 200, description = "A page of principals, by id", body = crate::kernel::pagination::Page<PrincipalView>)))]
#[get("/v1/users")]
async fn list_users(
    state: web::Data<AppState>,
    who: Principal,
    page: crate::kernel::pagination::PageParams,
) -> ApiResult<HttpResponse> {
    use crate::schema::principals as p;
    use diesel::prelude::*;
    who.require(&[Role::UserAdmin, Role::Operator, Role::Regulator])?;
    let (after, limit) = page.resolve()?;
    let rows = state
        .db(move |conn| {
            Ok(p::table
                .filter(p::id.gt(after))
                .order(p::id)
                .limit(limit + 1)
                .select(PrincipalRow::as_select())
                .load(conn)?)
        })
        .await?;
    Ok(crate::kernel::pagination::Page::respond(
        rows.into_iter().map(PrincipalView::from).collect(),
        limit,
        |u| u.id,
    ))
}

async fn change(
    state: web::Data<AppState>,
    who: Principal,
    id: i64,
    action: &'static str,
) -> ApiResult<HttpResponse> {
    who.require(&[Role::UserAdmin])?;
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let view = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let target = store::find_by_id(conn, id)?;
                if action == "enabled"
                    && target
                        .as_ref()
                        .is_some_and(|t| t.disabled && needs_approval(&t.role))
                {
                    return propose_operator_account(conn, &who, "enable", id, None, now);
                }
                if action == "disabled" {
                    // Two administrators disabling each other at once must not both succeed.
                    store::lock_user_admins(conn)?;
                    let target_admin = target.as_ref().is_some_and(|t| {
                        t.kind == "user" && t.role == Role::UserAdmin.as_str() && !t.disabled
                    });
                    let others = store::active_user_admins_except(conn, id)?;
                    if let Some((code, reason)) =
                        super::rules::disable_refusal(who.id, id, target_admin, others)
                    {
                        return Err(ApiError::new(StatusCode::CONFLICT, code, reason));
                    }
                }
                let n = match action {
                    "disabled" => store::set_disabled(conn, id, true)?,
                    "enabled" => store::set_disabled(conn, id, false)?,
                    _ => store::revoke_tokens(conn, id)?,
                };
                let row = store::find_by_id(conn, id)?
                    .filter(|_| n == 1)
                    .ok_or_else(|| ApiError::not_found("user"))?;
                principal_audit(conn, &row, &format!("principal.{action}"), &actor, now)?;
                Ok(PrincipalView::from(row))
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/users/{id}/disable", tag = "auth", operation_id = "disableUser",
    summary = "Disable a user or API client; its tokens stop working at once",
    params(("id" = i64, Path, description = "Principal id")), responses((status = 200, description = "Disabled", body = PrincipalView),
        (status = 409, description = "`cannot_disable_self`: one's own account; `last_user_admin`: the last active user administrator", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/users/{id}/disable")]
async fn disable(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    change(state, who, id.into_inner(), "disabled").await
}

#[utoipa::path(post, path = "/v1/users/{id}/enable", tag = "auth", operation_id = "enableUser",
    summary = "Enable a user or API client again (old tokens stay revoked)",
    description = "A disabled operator, enterprise, bank or regulator account is not enabled at once: the answer carries `approval_proposal`, which an operator (of another person than an operator account's) must approve.",
    params(("id" = i64, Path, description = "Principal id")), responses((status = 200, description = "Enabled", body = PrincipalView)))]
#[post("/v1/users/{id}/enable")]
async fn enable(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    change(state, who, id.into_inner(), "enabled").await
}

#[utoipa::path(post, path = "/v1/users/{id}/revoke-tokens", tag = "auth", operation_id = "revokeTokens",
    summary = "Revoke every token issued so far to a user or API client",
    params(("id" = i64, Path, description = "Principal id")), responses((status = 200, description = "Revoked", body = PrincipalView)))]
#[post("/v1/users/{id}/revoke-tokens")]
async fn revoke(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    change(state, who, id.into_inner(), "tokens_revoked").await
}

/// A user's own password change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "cib-credit-01", "current_password": "the one set by the operator", "new_password": "a long new passphrase"}))]
pub struct PasswordChange {
    pub username: String,
    pub current_password: String,
    /// 12 to 256 characters, at least 4 different ones, not containing the username, not the
    /// current password.
    pub new_password: String,
}

#[utoipa::path(post, path = "/v1/auth/password", tag = "auth", operation_id = "changePassword",
    summary = "Change one's own password (needs the current one); every token issued so far is revoked",
    description = "Also how a user whose password an operator reset sets a password of their own. The \
        current password is checked as a login is: failures count towards the same limits.",
    security(()), request_body = PasswordChange,
    responses((status = 204, description = "Changed; log in again with the new password"),
        (status = 401, description = "Wrong username or current password", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The new password does not meet the rules", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_attempts`: wait `Retry-After` seconds", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "`login_busy`: retry after `Retry-After` seconds", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
#[post("/v1/auth/password")]
async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ApiJson<PasswordChange>,
) -> Result<HttpResponse, LoginRefused> {
    let b = body.value;
    if let Some(problem) =
        rules::new_password_problem(&b.new_password, &b.username, &b.current_password)
    {
        return Err(ApiError::invalid_field("new_password", problem).into());
    }
    let peer = login::client_address(&req, &state);
    let row = login::check(&state, b.username, b.current_password, "user", peer, true).await?;
    let cost = state.hash_cost;
    let new = b.new_password;
    let hash = hashing::run(move || password::hash(&new, cost))
        .await?
        .map_err(ApiError::internal)?;
    let now = db::now_micros(state.clock.now());
    let actor = format!("{}:{}", row.role, row.username);
    state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                store::set_secret(conn, row.id, &hash, false, now)?;
                let row =
                    store::find_by_id(conn, row.id)?.ok_or_else(|| ApiError::not_found("user"))?;
                principal_audit(conn, &row, "principal.password_changed", &actor, now)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A password set by the user administrator, to hand to the user, who must change it at next login.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    #[serde(flatten)]
    pub user: PrincipalView,
    /// Shown once. It gives no token: the user must first change it (POST /v1/auth/password).
    pub one_time_password: String,
}

#[utoipa::path(post, path = "/v1/users/{id}/reset-password", tag = "auth", operation_id = "resetPassword",
    summary = "Set a one-time password for a user who lost theirs; it must be changed at next login",
    description = "Revokes every token of the user and clears its failed-login count. Audited \
        (`principal.password_reset`, without the password). For an operator, enterprise, bank or regulator account nothing changes yet: \
        the answer carries `approval_proposal`, and the one-time password replaces the operator's only when an \
        operator of another person approves it.",
    params(("id" = i64, Path, description = "Principal id of a user (not an API client)")),
    responses((status = 200, description = "The one-time password, shown once", body = PasswordReset),
        (status = 422, description = "`not_a_user`: API clients get a new client instead", body = crate::error::Problem, content_type = "application/problem+json")))]
#[post("/v1/users/{id}/reset-password")]
async fn reset_password(
    state: web::Data<AppState>,
    who: Principal,
    id: web::Path<i64>,
) -> ApiResult<HttpResponse> {
    // User administration, not business operation (segregation of duties).
    who.require(&[Role::UserAdmin])?;
    let id = id.into_inner();
    let one_time = password::random_secret(20);
    let cost = state.hash_cost;
    let to_hash = one_time.clone();
    let hash = hashing::run(move || password::hash(&to_hash, cost))
        .await?
        .map_err(ApiError::internal)?;
    let (actor, now) = (who.actor(), db::now_micros(state.clock.now()));
    let user = state
        .db(move |conn| {
            db::write_tx(conn, |conn| {
                let row = store::find_by_id(conn, id)?.ok_or_else(|| ApiError::not_found("user"))?;
                if row.kind == "user" && needs_approval(&row.role) {
                    return propose_operator_account(
                        conn,
                        &who,
                        "reset_password",
                        id,
                        Some(&hash),
                        now,
                    );
                }
                if row.kind != "user" {
                    return Err(ApiError::unprocessable(
                        "not_a_user",
                        "an API client's secret is not reset; create a new client and disable this one",
                    ));
                }
                store::set_secret(conn, id, &hash, true, now)?;
                store::clear_login_failures(conn, &row.username)?;
                let row = store::find_by_id(conn, id)?.ok_or_else(|| ApiError::not_found("user"))?;
                principal_audit(conn, &row, "principal.password_reset", &actor, now)?;
                Ok(PrincipalView::from(row))
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(PasswordReset {
        user,
        one_time_password: one_time,
    }))
}

/// Holds a newly created account for an operator's approval when the API would (an operator
/// account other than a registry's first, or an account bound to a party): disabled, with a
/// proposal by `who`, whose id it returns. Shared by `registry user add` and the demo seed.
pub fn hold_for_approval(
    conn: &mut DbConn,
    who: &Principal,
    row: &PrincipalRow,
    first_operator: bool,
    now: chrono::NaiveDateTime,
) -> ApiResult<Option<i64>> {
    if !(party_bound(&row.role) || (row.role == "operator" && !first_operator)) {
        return Ok(None);
    }
    store::set_disabled(conn, row.id, true)?;
    Ok(propose_operator_account(conn, who, "create", row.id, None, now)?.approval_proposal)
}

/// Accounts that act for one party (enterprise and bank users and API clients) and regulator
/// accounts: the first can move or encumber a party's rights, the second clear compliance flags
/// (re-opening pledging), set region flags and read banks' private terms, so the user
/// administrator alone never creates, enables or resets one (segregation of duties); an operator
/// approves (proposal kind `party_account`).
pub fn party_bound(role: &str) -> bool {
    role == "enterprise" || role == "bank" || role == "regulator"
}

/// True when creating, enabling or resetting an account of `role` waits for an operator's approval.
pub fn needs_approval(role: &str) -> bool {
    role == "operator" || party_bound(role)
}

/// What a user administrator asks for an operator account (proposal kind `operator_account`) or
/// an account bound to a party (`party_account`); an operator of another person than the
/// account's approves it. Without this, the user administrator alone could make two operator
/// "persons", or bind logins to two parties and move rights between them, or take over an
/// account by resetting its password.
#[derive(Debug, Serialize, Deserialize)]
pub struct OperatorAccountChange {
    /// `create`, `enable` or `reset_password`.
    pub action: String,
    pub principal_id: i64,
    pub username: String,
    pub person_id: Option<String>,
    /// A party account's role and party, as the approver checks them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_id: Option<i64>,
    /// A reset's one-time password, hashed; never shown in the proposal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
}

/// Stores the proposal and answers with the account as it still is.
pub fn propose_operator_account(
    conn: &mut DbConn,
    who: &Principal,
    action: &str,
    id: i64,
    secret_hash: Option<&str>,
    now: chrono::NaiveDateTime,
) -> ApiResult<PrincipalView> {
    let row = store::find_by_id(conn, id)?.ok_or_else(|| ApiError::not_found("user"))?;
    let party = party_bound(&row.role);
    let change = OperatorAccountChange {
        action: action.to_string(),
        principal_id: row.id,
        username: row.username.clone(),
        person_id: row.person_id.clone(),
        role: party.then(|| row.role.clone()),
        party_id: row.party_id.filter(|_| party),
        secret_hash: secret_hash.map(str::to_string),
    };
    let kind = if party {
        crate::proposals::ProposalKind::PartyAccount
    } else {
        crate::proposals::ProposalKind::OperatorAccount
    };
    let proposal = crate::proposals::propose(conn, kind, &change, None, who, now)?;
    let mut view = PrincipalView::from(row);
    view.approval_proposal = Some(proposal.id);
    Ok(view)
}

/// Runs an approved account change (`party`: a `party_account` proposal). The approver is another
/// person than the account's (its own account, or another account of its person, would vouch for
/// itself). The account must still be what was proposed: same role, same party.
pub fn execute_operator_account(
    conn: &mut DbConn,
    change: &OperatorAccountChange,
    approver: &Principal,
    at: chrono::NaiveDateTime,
    party: bool,
) -> ApiResult<serde_json::Value> {
    let row = store::find_by_id(conn, change.principal_id)?
        .filter(|r| {
            if party {
                party_bound(&r.role)
                    && Some(&r.role) == change.role.as_ref()
                    && r.party_id == change.party_id
            } else {
                r.role == "operator" && r.kind == "user"
            }
        })
        .ok_or_else(|| ApiError::not_found("user"))?;
    let same_person = row.person_id.is_some() && row.person_id == approver.person_id;
    if row.id == approver.id || same_person {
        return Err(crate::proposals::maker_checker_refusal());
    }
    match (change.action.as_str(), change.secret_hash.as_deref()) {
        ("create" | "enable", _) => {
            store::set_disabled(conn, row.id, false)?;
        }
        ("reset_password", Some(hash)) if row.kind == "user" => {
            store::set_secret(conn, row.id, hash, true, at)?;
            store::clear_login_failures(conn, &row.username)?;
        }
        _ => return Err(ApiError::internal("unknown account change")),
    }
    let row = store::find_by_id(conn, row.id)?.ok_or_else(|| ApiError::not_found("user"))?;
    let action = match change.action.as_str() {
        "reset_password" => "principal.password_reset",
        "create" => "principal.created_approved",
        _ => "principal.enabled",
    };
    principal_audit(conn, &row, action, &approver.actor(), at)?;
    serde_json::to_value(PrincipalView::from(row)).map_err(|e| ApiError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::person_form;

    #[test]
    fn one_person_one_form_and_no_lookalikes() {
        for same in ["e1001", " E1001 ", "ｅ１００１"] {
            assert_eq!(person_form(same).as_deref(), Some("E1001"), "{same:?}");
        }
        assert_eq!(
            person_form("demo:demo-checker").as_deref(),
            Some("DEMO:DEMO-CHECKER")
        );
        // U+2011 non-breaking hyphen, U+200B zero-width space, Cyrillic Е, a control character.
        for lookalike in [
            "DEMO:DEMO\u{2011}CHECKER",
            "E10\u{200B}01",
            "\u{415}1001",
            "E1001\u{7}",
            "",
            "  ",
        ] {
            assert_eq!(person_form(lookalike), None, "{lookalike:?}");
        }
        assert_eq!(person_form(&"A".repeat(65)), None);
    }
}
