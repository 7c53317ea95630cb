//! Start: the keys (from their files) and, on an empty database, the `admin` user administrator.
//! Runs under the bootstrap lock, so several processes starting together create each thing once.

use diesel::prelude::*;

use super::{password, store};
use crate::config::CommonArgs;
use crate::db::{self, DbConn};
use crate::keys::KeyPaths;
use crate::schema::settings;

pub type BootError = Box<dyn std::error::Error + Send + Sync>;

pub use crate::keys::Secrets;

/// The `settings` rows in which registries before keys lived in files kept their keys.
pub const KEY_SETTINGS: [&str; 3] = ["jwt_secret", "signing_key", "id_hmac_key"];

/// Loads the keys from their files (on an embedded database's first start, creates them) and
/// creates the admin user on first start. Returns the generated admin password when one was made,
/// for the caller to print once.
pub fn run(
    conn: &mut DbConn,
    common: &CommonArgs,
    now: chrono::NaiveDateTime,
) -> Result<(Secrets, Option<String>), BootError> {
    let admin_password = crate::config::admin_password_from_env()?;
    db::with_bootstrap_lock(conn, |conn| {
        db::write_tx(conn, |conn| {
            refuse_keys_in_database(conn)?;
            // Keys are made only for an embedded database that holds nothing yet: a new key for
            // a registry with data would invalidate every token, certificate and ID-number hash.
            let fresh = store::count(conn)? == 0;
            let generate = fresh && matches!(conn, DbConn::Sqlite(_));
            let secrets = crate::keys::load(&KeyPaths::of(common), generate).map_err(|e| {
                if matches!(conn, DbConn::Sqlite(_)) && !fresh {
                    format!("{e} (this database already holds data, so no new keys are made: restore the key files)").into()
                } else {
                    e
                }
            })?;
            let generated = ensure_admin(conn, common, admin_password.clone(), now)?;
            Ok((secrets, generated))
        })
    })
}

/// Reads the keys without creating anything (operator tools).
pub fn load(conn: &mut DbConn, common: &CommonArgs) -> Result<Secrets, BootError> {
    let now = crate::db::now_micros(chrono::Utc::now());
    run(conn, common, now).map(|(secrets, _)| secrets)
}

/// A registry from before keys lived in files still has them in `settings`: it does not start
/// until `registry keys export` has moved them out (the keys are kept, never regenerated).
fn refuse_keys_in_database(conn: &mut DbConn) -> Result<(), BootError> {
    let held: Vec<String> = settings::table
        .filter(settings::name.eq_any(KEY_SETTINGS))
        .select(settings::name)
        .load(conn)?;
    if held.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the database still holds keys (settings rows {}); keys now live in files. Move them out \
         once with `registry keys export` (same --database-url; it writes them to the keys \
         directory with mode 0600 and deletes them from the database), then start again",
        held.join(", ")
    )
    .into())
}

fn ensure_admin(
    conn: &mut DbConn,
    common: &CommonArgs,
    chosen: Option<String>,
    now: chrono::NaiveDateTime,
) -> Result<Option<String>, BootError> {
    if store::count(conn)? > 0 {
        return Ok(None);
    }
    let (secret, generated) = match chosen {
        Some(p) => (p, None),
        None => {
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
