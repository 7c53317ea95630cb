//! The registry's keys: the JWT secret, the Ed25519 signing key (with the public halves of the
//! keys it replaced) and the ID-number HMAC key. They live in files, never in the database, so
//! that read access to the database alone cannot mint a token or sign a certificate, and write
//! access alone cannot re-sign the audit trail or publish a key of its own.
//!
//! A keys directory holds `jwt.key`, `signing.key` and `id-hmac.key` (64 hex characters each,
//! mode 0600) and `signing-retired/<key_id>.pub`, the public halves of rotated signing keys, kept
//! so that certificates and audit checkpoints signed before a rotation still verify.

pub mod jwt;

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::config::CommonArgs;

pub type KeyError = Box<dyn std::error::Error + Send + Sync>;

pub const JWT_FILE: &str = "jwt.key";
pub const SIGNING_FILE: &str = "signing.key";
pub const ID_HMAC_FILE: &str = "id-hmac.key";
pub const RETIRED_DIR: &str = "signing-retired";

/// The keys every process of one registry shares.
#[derive(Clone)]
pub struct Secrets {
    pub jwt_secret: Vec<u8>,
    pub signing_key: SigningKey,
    /// Key of the HMAC under which ID numbers are stored (R15).
    pub id_hmac_key: Vec<u8>,
    /// The signing key's public half and those of the keys it replaced.
    pub ring: KeyRing,
}

/// Every public signing key the registry has used, by key id, as the key files hold them.
#[derive(Clone, Debug)]
pub struct KeyRing {
    pub active: String,
    /// Active first, then retired ones, newest retirement first.
    pub keys: Vec<(String, VerifyingKey)>,
}

impl KeyRing {
    pub fn get(&self, key_id: &str) -> Option<&VerifyingKey> {
        self.keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, k)| k)
    }
}

/// A short public identifier of a verifying key.
pub fn key_id(key: &VerifyingKey) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// Where each key file is, from the options.
#[derive(Clone, Debug)]
pub struct KeyPaths {
    pub dir: PathBuf,
    pub jwt: PathBuf,
    pub signing: PathBuf,
    pub id_hmac: PathBuf,
}

impl KeyPaths {
    pub fn of(common: &CommonArgs) -> KeyPaths {
        let dir = common
            .keys_dir
            .clone()
            .unwrap_or_else(|| common.data_dir.join("keys"));
        KeyPaths {
            jwt: common
                .jwt_key_file
                .clone()
                .unwrap_or_else(|| dir.join(JWT_FILE)),
            signing: common
                .signing_key_file
                .clone()
                .unwrap_or_else(|| dir.join(SIGNING_FILE)),
            id_hmac: common
                .id_hmac_key_file
                .clone()
                .unwrap_or_else(|| dir.join(ID_HMAC_FILE)),
            dir,
        }
    }

    /// The paths inside one directory, none overridden.
    pub fn in_dir(dir: &Path) -> KeyPaths {
        KeyPaths {
            dir: dir.to_path_buf(),
            jwt: dir.join(JWT_FILE),
            signing: dir.join(SIGNING_FILE),
            id_hmac: dir.join(ID_HMAC_FILE),
        }
    }

    pub fn retired(&self) -> PathBuf {
        self.dir.join(RETIRED_DIR)
    }

    /// (what, option, environment variable, path) of each key file.
    fn each(&self) -> [(&'static str, &'static str, &'static str, &Path); 3] {
        [
            (
                "JWT key",
                "--jwt-key-file",
                "REGISTRY_JWT_KEY_FILE",
                &self.jwt,
            ),
            (
                "signing key",
                "--signing-key-file",
                "REGISTRY_SIGNING_KEY_FILE",
                &self.signing,
            ),
            (
                "ID-number HMAC key",
                "--id-hmac-key-file",
                "REGISTRY_ID_HMAC_KEY_FILE",
                &self.id_hmac,
            ),
        ]
    }
}

/// Reads the keys. With `generate` (an embedded database on its first start), missing key files
/// are created first; otherwise a missing file is an error that says which option supplies it.
pub fn load(paths: &KeyPaths, generate: bool) -> Result<Secrets, KeyError> {
    if generate {
        init(paths)?;
    }
    let missing: Vec<String> = paths
        .each()
        .iter()
        .filter(|(_, _, _, p)| !p.exists())
        .map(|(what, opt, env, p)| format!("{what}: no file {} ({opt} / {env})", p.display()))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the registry's keys are missing — {}. Keys live in files, never in the database: \
             point the options above (or --keys-dir / REGISTRY_KEYS_DIR) at them, or make a new \
             set once with `registry keys init --dir DIR` and give every process the same files",
            missing.join("; ")
        )
        .into());
    }
    let jwt_secret = read_key(&paths.jwt, 32)?;
    let id_hmac_key = read_key(&paths.id_hmac, 32)?;
    let signing_key = read_signing_key(&paths.signing)?;
    let ring = ring_of(paths, &signing_key)?;
    Ok(Secrets {
        jwt_secret,
        signing_key,
        id_hmac_key,
        ring,
    })
}

/// Writes every missing key file of `paths` with fresh random keys (mode 0600, the directory
/// 0700); existing files are kept. Returns the files written.
pub fn init(paths: &KeyPaths) -> Result<Vec<PathBuf>, KeyError> {
    let mut written = Vec::new();
    for (_, _, _, path) in paths.each() {
        if !path.exists() && write_new(path, &hex::encode(rand::random::<[u8; 32]>()))? {
            written.push(path.to_path_buf());
        }
    }
    Ok(written)
}

/// Replaces the signing key with a new one; the old one's public half goes to
/// `signing-retired/`, so what it signed still verifies. Returns (old, new) key ids.
pub fn rotate(paths: &KeyPaths) -> Result<(String, String), KeyError> {
    let old = read_signing_key(&paths.signing)?;
    let old_public = old.verifying_key();
    let old_id = key_id(&old_public);
    let retired = paths.retired().join(format!("{old_id}.pub"));
    if !retired.exists() {
        write_new(&retired, &hex::encode(old_public.as_bytes()))?;
    }
    let seed = rand::random::<[u8; 32]>();
    let new_id = key_id(&SigningKey::from_bytes(&seed).verifying_key());
    replace(&paths.signing, &hex::encode(seed))?;
    Ok((old_id, new_id))
}

/// The active key's public half and every retired one found in `signing-retired/`.
fn ring_of(paths: &KeyPaths, active: &SigningKey) -> Result<KeyRing, KeyError> {
    let active_public = active.verifying_key();
    let active_id = key_id(&active_public);
    let mut retired: Vec<(std::time::SystemTime, String, VerifyingKey)> = Vec::new();
    let dir = paths.retired();
    if dir.is_dir() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("pub") {
                continue;
            }
            let bytes = read_key(&path, 32)?;
            let raw: [u8; 32] = bytes
                .get(..32)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| format!("{} does not hold a 32-byte public key", path.display()))?;
            let key = VerifyingKey::from_bytes(&raw)
                .map_err(|e| format!("{}: not an Ed25519 public key: {e}", path.display()))?;
            let id = key_id(&key);
            if id != active_id && !retired.iter().any(|(_, i, _)| *i == id) {
                let when = std::fs::metadata(&path)?
                    .modified()
                    .unwrap_or(std::time::UNIX_EPOCH);
                retired.push((when, id, key));
            }
        }
    }
    retired.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut keys = vec![(active_id.clone(), active_public)];
    keys.extend(retired.into_iter().map(|(_, id, k)| (id, k)));
    Ok(KeyRing {
        active: active_id,
        keys,
    })
}

fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let bytes = read_key(path, 32)?;
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .ok_or("the signing key must be 32 bytes")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// What is wrong with a secret key file's permission bits, or None. Any access for the group or
/// others lets another account on the host read the key (mint tokens, sign certificates), so it
/// is refused rather than warned about; public halves (`.pub`) are not checked.
pub fn key_file_mode_problem(mode: u32) -> Option<&'static str> {
    match (mode & 0o070 != 0, mode & 0o007 != 0) {
        (_, true) => Some("other accounts on this host can read or change it"),
        (true, false) => Some("its group can read or change it"),
        (false, false) => None,
    }
}

/// A key file holds raw bytes or their hex encoding; a secret key file must be private (mode
/// 0600 or stricter), or it is refused.
pub fn read_key(path: &Path, min_len: usize) -> Result<Vec<u8>, KeyError> {
    if !path.to_string_lossy().ends_with(".pub") {
        let meta =
            std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if let Some(problem) = key_file_mode_problem(mode) {
            return Err(format!(
                "key file {} has mode {mode:04o}: {problem}; a secret key must be readable by \
                 its owner only — run `chmod 600 {}` (nothing was started)",
                path.display(),
                path.display()
            )
            .into());
        }
    }
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let bytes = hex::decode(text.trim()).unwrap_or(raw);
    if bytes.len() < min_len {
        return Err(format!("{} holds fewer than {min_len} bytes", path.display()).into());
    }
    Ok(bytes)
}

fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    if !dir.as_os_str().is_empty() && !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// A private temporary file beside `path` holding `content`, flushed to disk.
fn write_temp(path: &Path, content: &str) -> Result<PathBuf, KeyError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    ensure_dir(parent)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("key");
    let tmp = parent.join(format!(
        ".{name}.{}.{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 4]>())
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(content.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(tmp)
}

/// Creates `path` (mode 0600) with `content` unless it exists; true when this call created it.
/// The file appears whole or not at all, so processes starting together agree on one key.
pub fn write_new(path: &Path, content: &str) -> Result<bool, KeyError> {
    let tmp = write_temp(path, content)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!("cannot write {}: {e}", path.display()).into()),
    }
}

/// Replaces `path` with `content` at once (mode 0600).
fn replace(path: &Path, content: &str) -> Result<(), KeyError> {
    let tmp = write_temp(path, content)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot replace {}: {e}", path.display())
    })?;
    Ok(())
}

/// Makes an embedded database file private to its owner before SQLite opens it (SQLite gives its
/// WAL and shared-memory files the database file's mode), and tightens the files of a database
/// made before this was done.
pub fn private_sqlite_file(path: &Path) -> Result<(), KeyError> {
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    if !path.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(meta) = std::fs::metadata(&p) {
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_rotate_load() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPaths::in_dir(&dir.path().join("keys"));
        assert_eq!(init(&paths).unwrap().len(), 3);
        assert!(init(&paths).unwrap().is_empty(), "existing keys are kept");
        let mode = std::fs::metadata(&paths.jwt).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = load(&paths, false).unwrap();
        let (old, new) = rotate(&paths).unwrap();
        assert_eq!(old, first.ring.active);
        let second = load(&paths, false).unwrap();
        assert_eq!(second.ring.active, new);
        assert!(
            second.ring.get(&old).is_some(),
            "the old key still verifies"
        );
        assert_eq!(second.jwt_secret, first.jwt_secret);
    }

    #[test]
    fn only_owner_only_modes_pass() {
        for ok in [0o600, 0o400, 0o700] {
            assert_eq!(key_file_mode_problem(ok), None, "{ok:o}");
        }
        for bad in [0o640, 0o604, 0o644, 0o660, 0o666, 0o610] {
            assert!(key_file_mode_problem(bad).is_some(), "{bad:o}");
        }
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPaths::in_dir(dir.path());
        init(&paths).unwrap();
        std::fs::set_permissions(&paths.signing, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load(&paths, false).err().unwrap().to_string();
        assert!(
            e.contains("signing.key") && e.contains("0644") && e.contains("chmod 600"),
            "{e}"
        );
    }

    #[test]
    fn missing_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KeyPaths::in_dir(dir.path());
        let e = load(&paths, false).err().unwrap().to_string();
        assert!(e.contains("--jwt-key-file") && e.contains("--id-hmac-key-file"));
        assert!(e.contains("registry keys init"));
    }
}
