//! First start of an empty database: the `admin` user administrator and the keys. Runs under the bootstrap
//! lock, so several processes starting together on one PostgreSQL create each thing once.

use diesel::prelude::*;
use ed25519_dalek::SigningKey;

use super::{password, store};
use crate::config::CommonArgs;
use crate::db::{self, DbConn};
use crate::schema::settings;

pub type BootError = Box<dyn std::error::Error + Send + Sync>;

/// The keys every process of one registry shares.
pub struct Secrets {
    pub jwt_secret: Vec<u8>,
    pub signing_key: SigningKey,
    /// Key of the HMAC under which ID numbers are stored (R15).
    pub id_hmac_key: Vec<u8>,
}

/// Loads (or on first start creates) the keys and the admin user. Returns the generated admin
/// password when one was made, for the caller to print once.
pub fn run(
    conn: &mut DbConn,
    common: &CommonArgs,
    now: chrono::NaiveDateTime,
) -> Result<(Secrets, Option<String>), BootError> {
    db::with_bootstrap_lock(conn, |conn| {
        db::write_tx(conn, |conn| {
            let jwt_secret = match &common.jwt_key_file {
                Some(path) => read_key_file(path, 32)?,
                None => setting_or_create(conn, "jwt_secret")?,
            };
            let signing_seed = match &common.signing_key_file {
                Some(path) => read_key_file(path, 32)?,
                None => setting_or_create(conn, "signing_key")?,
            };
            let seed: [u8; 32] = signing_seed
                .get(..32)
                .and_then(|s| s.try_into().ok())
                .ok_or("the signing key must be 32 bytes")?;
            let id_hmac_key = setting_or_create(conn, "id_hmac_key")?;
            let signing_key = SigningKey::from_bytes(&seed);
            publish_key(conn, &signing_key, now)?;
            let generated = ensure_admin(conn, common, now)?;
            Ok((
                Secrets {
                    jwt_secret,
                    signing_key,
                    id_hmac_key,
                },
                generated,
            ))
        })
    })
}

/// Reads the keys without creating anything (operator tools).
pub fn load(conn: &mut DbConn, common: &CommonArgs) -> Result<Secrets, BootError> {
    let now = crate::db::now_micros(chrono::Utc::now());
    // Same path as serve; it creates nothing that a started registry would not already have.
    run(conn, common, now).map(|(secrets, _)| secrets)
}

fn ensure_admin(
    conn: &mut DbConn,
    common: &CommonArgs,
    now: chrono::NaiveDateTime,
) -> Result<Option<String>, BootError> {
    if store::count(conn)? > 0 {
        return Ok(None);
    }
    let (secret, generated) = match std::env::var("REGISTRY_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, None),
        _ => {
            let p = password::random_secret(20);
            (p.clone(), Some(p))
        }
    };
    let hash = password::hash(&secret, common.password_hash_cost)?;
    store::insert(
        conn,
        &store::NewPrincipal {
            kind: "user",
            username: "admin",
            secret_hash: &hash,
            role: "user_admin",
            party_id: None,
            created_at: now,
            person_id: None,
        },
    )?;
    Ok(generated)
}

/// A 32-byte random key kept in `settings`, created once.
fn setting_or_create(conn: &mut DbConn, name: &str) -> Result<Vec<u8>, BootError> {
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    crate::insert_or_ignore!(
        conn,
        settings::table,
        (settings::name.eq(name), settings::value.eq(&fresh))
    )?;
    let stored: String = settings::table
        .find(name)
        .select(settings::value)
        .first(conn)?;
    Ok(hex::decode(stored)?)
}

/// A key file holds raw bytes or their hex encoding.
fn read_key_file(path: &std::path::Path, min_len: usize) -> Result<Vec<u8>, BootError> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let bytes = hex::decode(text.trim()).unwrap_or(raw);
    if bytes.len() < min_len {
        return Err(format!("{} holds fewer than {min_len} bytes", path.display()).into());
    }
    Ok(bytes)
}

/// Records the public half of the signing key in use, once: the registry keeps listing every key
/// it ever signed with, so certificates signed before a rotation still verify.
fn publish_key(
    conn: &mut DbConn,
    key: &SigningKey,
    now: chrono::NaiveDateTime,
) -> Result<(), BootError> {
    use crate::schema::signing_keys as sk;
    use base64::Engine;
    let public = key.verifying_key();
    crate::insert_or_ignore!(
        conn,
        sk::table,
        (
            sk::key_id.eq(crate::audit::key_id(&public)),
            sk::public_key.eq(base64::engine::general_purpose::STANDARD.encode(public.as_bytes())),
            sk::first_used_at.eq(now),
        )
    )?;
    Ok(())
}
