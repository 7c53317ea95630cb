//! Argon2id password and client-secret hashes. The cost is configurable so tests stay fast;
//! the parameters travel inside each hash, so a hash made at any cost still verifies.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::distr::{Alphanumeric, SampleString};

use crate::config::HashCost;

fn hasher(cost: HashCost) -> Argon2<'static> {
    let params = match cost {
        // OWASP's recommended minimum for argon2id: 19 MiB, 2 passes.
        HashCost::Standard => Params::new(19 * 1024, 2, 1, None),
        HashCost::Fast => Params::new(256, 1, 1, None),
    };
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        params.unwrap_or_default(),
    )
}

pub fn hash(secret: &str, cost: HashCost) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher(cost)
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("could not hash the password: {e}"))
}

pub fn verify(secret: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(secret.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A random secret for generated passwords and API client secrets.
pub fn random_secret(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// A hash of a random secret at the configured cost, made once, to verify against when a login
/// names no known principal.
pub fn dummy_hash(cost: HashCost) -> &'static str {
    use std::sync::OnceLock;
    static STANDARD: OnceLock<String> = OnceLock::new();
    static FAST: OnceLock<String> = OnceLock::new();
    let cell = match cost {
        HashCost::Standard => &STANDARD,
        HashCost::Fast => &FAST,
    };
    cell.get_or_init(|| hash(&random_secret(32), cost).unwrap_or_default())
}
