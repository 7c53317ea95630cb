//! Access tokens: HS256 JWTs with a pinned algorithm, issuer and audience.

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const ISSUER: &str = "nanping-registry";
pub const AUDIENCE: &str = "nanping-registry-api";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Username or API client id.
    pub sub: String,
    /// Principal id.
    pub uid: i64,
    pub party_id: Option<i64>,
    pub role: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    /// The principal's token version when issued; revocation bumps it.
    pub ver: i64,
}

pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Keys {
    pub fn from_secret(secret: &[u8]) -> Keys {
        // Only HS256 is accepted: a token claiming `none` or any other algorithm is refused.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 5;
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn encode(&self, claims: &Claims) -> Result<String, ApiError> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("could not sign a token: {e}")))
    }

    pub fn decode(&self, token: &str) -> Result<Claims, ApiError> {
        decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))
    }
}
