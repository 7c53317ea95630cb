//! Command line and environment configuration. Every option has a safe default: the service
//! binds to loopback and stores its data in an embedded SQLite file under `./data/`.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "registry",
    version,
    about = "Environmental rights and green collateral registry"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// postgres://… for PostgreSQL; a file path or sqlite://path for SQLite.
    /// Default: `<data-dir>/registry.db`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Where the embedded database and other local state live.
    #[arg(long, env = "REGISTRY_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,
    /// The directory of the key files (`jwt.key`, `signing.key`, `id-hmac.key`,
    /// `signing-retired/`). Default: `<data-dir>/keys`. On the embedded database they are
    /// generated there on first start; on PostgreSQL they must exist (`registry keys init`).
    #[arg(long, env = "REGISTRY_KEYS_DIR", global = true)]
    pub keys_dir: Option<PathBuf>,
    /// A file holding the JWT signing secret (at least 32 bytes, raw or hex). Default:
    /// `jwt.key` in the keys directory.
    #[arg(long, env = "REGISTRY_JWT_KEY_FILE", global = true)]
    pub jwt_key_file: Option<PathBuf>,
    /// A file holding the registry's Ed25519 signing key (32 raw bytes or 64 hex characters).
    /// Default: `signing.key` in the keys directory.
    #[arg(long, env = "REGISTRY_SIGNING_KEY_FILE", global = true)]
    pub signing_key_file: Option<PathBuf>,
    /// A file holding the key of the HMAC under which ID numbers are stored (at least 32 bytes,
    /// raw or hex). Default: `id-hmac.key` in the keys directory.
    #[arg(long, env = "REGISTRY_ID_HMAC_KEY_FILE", global = true)]
    pub id_hmac_key_file: Option<PathBuf>,
    /// Argon2 cost for password hashes; `fast` is for tests only.
    #[arg(
        long,
        env = "REGISTRY_PASSWORD_HASH_COST",
        value_enum,
        default_value = "standard",
        global = true
    )]
    pub password_hash_cost: HashCost,
    /// Log output format.
    #[arg(
        long,
        env = "REGISTRY_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
}

impl CommonArgs {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            self.data_dir
                .join("registry.db")
                .to_string_lossy()
                .into_owned()
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HashCost {
    Standard,
    Fast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Mint an access token for an existing user or API client from the configured key.
    Token(TokenArgs),
    /// Audit trail tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the OpenAPI description (as committed in openapi/openapi.json).
    Openapi,
    /// Load the Nanping demo data set (seeds/); running it twice changes nothing.
    Seed(SeedArgs),
    /// Import a register from CSV: KIND is parties, lots or forest-parcels.
    Import(ImportArgs),
    /// Market tools.
    #[command(subcommand)]
    Market(MarketCommand),
    /// Key files: make them, rotate the signing key, move keys out of an old database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write the monthly green-finance report (CSV, JSON and SVG charts) into a folder.
    Report(ReportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// The month, YYYY-MM.
    #[arg(long)]
    pub month: String,
    /// The folder to write into (created when missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Write new key files (mode 0600) into DIR (default: the keys directory); existing files
    /// are kept. No database is touched.
    Init {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Replace the signing key with a new one; the old public key is kept in
    /// `signing-retired/` so that what it signed still verifies. Restart every process after.
    Rotate,
    /// Move the keys a registry from before key files kept in its database (`settings` rows)
    /// into the key files, once, then delete them from the database. Keys are never regenerated.
    Export,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MarketCommand {
    /// Close due auctions, expire ended listings and unpaid trades now (what `serve` does on its
    /// clock; safe beside running servers).
    Sweep,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// Read the data set from this directory instead of the copy built into the binary.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// parties, lots or forest-parcels.
    pub kind: String,
    /// The CSV file (UTF-8 with or without BOM, or GBK).
    pub file: PathBuf,
    /// Load the good rows even when some are bad (the bad ones are reported and left out).
    #[arg(long)]
    pub skip_invalid: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "REGISTRY_WORKERS")]
    pub workers: Option<usize>,
    /// Database connections per process.
    #[arg(long, env = "REGISTRY_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "REGISTRY_TOKEN_TTL", default_value_t = 3600)]
    pub token_ttl: i64,
    /// Look-ups by individual ID number a bank may make per day (UTC), all its users together.
    #[arg(long, env = "REGISTRY_ID_LOOKUP_DAILY_QUOTA", default_value_t = 200)]
    pub id_lookup_daily_quota: i64,
    /// A bearer secret that may read `/metrics` (operators' tokens may too); without it, only
    /// operators may.
    #[arg(long, env = "REGISTRY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Days an idempotency record is kept (a retry after that runs as a new request).
    #[arg(long, env = "REGISTRY_IDEMPOTENCY_RETENTION_DAYS", default_value_t = 7)]
    pub idempotency_retention_days: i64,
    /// Days a search certificate is kept for banks to fetch and verify again.
    #[arg(
        long,
        env = "REGISTRY_CERTIFICATE_RETENTION_DAYS",
        default_value_t = 1827
    )]
    pub certificate_retention_days: i64,
    /// Seconds between retention sweeps (idempotency records, certificates, page sessions).
    #[arg(long, env = "REGISTRY_RETENTION_SWEEP_SECS", default_value_t = 3600)]
    pub retention_sweep_secs: u64,
    /// Let clients move this process's clock through `PUT /v1/test/clock`. Never in production.
    #[arg(long, hide = true)]
    pub test_clock: bool,
    /// How often the webhook worker looks for due deliveries, in milliseconds.
    #[arg(long, env = "REGISTRY_WEBHOOK_POLL_MS", default_value_t = 1000)]
    pub webhook_poll_ms: u64,
    /// First retry delay of a failed webhook delivery, in milliseconds; it doubles per attempt
    /// up to five minutes.
    #[arg(long, env = "REGISTRY_WEBHOOK_BACKOFF_MS", default_value_t = 1000)]
    pub webhook_backoff_ms: u64,
    /// HOST:PORT of a webhook receiver that may be reached over plain HTTP or on an internal
    /// address (the operator vouches for it); repeat the option or separate with commas. Every
    /// other endpoint is HTTPS to a public address.
    #[arg(
        long = "webhook-allow-http",
        env = "REGISTRY_WEBHOOK_ALLOW_HTTP",
        value_delimiter = ','
    )]
    pub webhook_allow_http: Vec<String>,
    /// Failed attempts after which a webhook delivery is dead: no more retries, listed to
    /// operators.
    #[arg(long, env = "REGISTRY_WEBHOOK_MAX_ATTEMPTS", default_value_t = 24)]
    pub webhook_max_attempts: i32,
    /// A PEM file of CA certificates trusted for webhook receivers besides the system's (a bank's
    /// private CA on a closed network).
    #[arg(long, env = "REGISTRY_WEBHOOK_CA_FILE")]
    pub webhook_ca_file: Option<PathBuf>,
    /// Tests only: NAME=IP answers for webhook name look-ups instead of DNS (no other name
    /// resolves, and only loopback addresses are ever connected to).
    #[arg(long, hide = true, value_delimiter = ',')]
    pub webhook_test_resolve: Vec<String>,
    /// How often the market clock closes due auctions and expires listings and unpaid trades, in
    /// milliseconds.
    #[arg(long, env = "REGISTRY_MARKET_POLL_MS", default_value_t = 1000)]
    pub market_poll_ms: u64,
    /// Seconds between signed audit checkpoints (0: only on request).
    #[arg(long, env = "REGISTRY_CHECKPOINT_INTERVAL", default_value_t = 300)]
    pub checkpoint_interval: u64,
    /// A reverse proxy (address or network, e.g. `10.0.0.5` or `10.0.0.0/24`) whose
    /// `X-Forwarded-For` is believed for the client address that login limits count by; repeat
    /// or separate with commas. Default none: the header is ignored and the TCP peer counts.
    #[arg(
        long = "trusted-proxy",
        env = "REGISTRY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<ProxyNet>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            bind: "127.0.0.1:8080".into(),
            workers: None,
            db_pool_size: 16,
            token_ttl: 3600,
            id_lookup_daily_quota: 200,
            metrics_token: None,
            idempotency_retention_days: 7,
            certificate_retention_days: 1827,
            retention_sweep_secs: 3600,
            test_clock: false,
            webhook_poll_ms: 1000,
            webhook_backoff_ms: 1000,
            webhook_allow_http: Vec::new(),
            webhook_max_attempts: 24,
            webhook_test_resolve: Vec::new(),
            webhook_ca_file: None,
            market_poll_ms: 1000,
            checkpoint_interval: 300,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from REGISTRY_USER_PASSWORD, or generated and printed.
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        party_id: Option<i64>,
        /// Operators: the natural person behind the account (maker-checker compares persons).
        #[arg(long)]
        person_id: Option<String>,
    },
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The user or API client the token is for.
    #[arg(long)]
    pub username: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub ttl: i64,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every hash chain and check the signed checkpoints; exit 1 on any mismatch.
    Verify {
        /// Checkpoints saved earlier (JSON as served by `GET /v1/audit/checkpoints`: a page, or
        /// an array of checkpoints): the database must still hold each of them and extend it.
        #[arg(long)]
        witness: Vec<PathBuf>,
    },
}

/// The first-start `admin` password from `REGISTRY_ADMIN_PASSWORD`: None when unset or empty (one
/// is then generated); refused when shorter than 12 characters, checked at every start so a weak
/// value is noticed even on a registry that already has its admin.
pub fn admin_password_from_env() -> Result<Option<String>, String> {
    match std::env::var("REGISTRY_ADMIN_PASSWORD") {
        Ok(p) if p.is_empty() => Ok(None),
        Ok(p) if p.chars().count() < MIN_PASSWORD_CHARS => Err(format!(
            "REGISTRY_ADMIN_PASSWORD must be at least {} characters (it has {}); choose a longer \
             one, or unset it to have one generated",
            MIN_PASSWORD_CHARS,
            p.chars().count()
        )),
        Ok(p) => Ok(Some(p)),
        Err(_) => Ok(None),
    }
}

/// Bounds on what a client can read out of the registry: ID-number look-ups, and how long
/// idempotency records and search certificates are kept.
#[derive(Debug, Clone)]
pub struct ExposureLimits {
    pub id_lookup_daily_quota: i64,
    pub metrics_token: Option<String>,
    pub idempotency_retention_days: i64,
    pub certificate_retention_days: i64,
    /// Proxies whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: Vec<ProxyNet>,
}

impl Default for ExposureLimits {
    fn default() -> Self {
        let a = ServeArgs::default();
        ExposureLimits::from(&a)
    }
}

impl From<&ServeArgs> for ExposureLimits {
    fn from(a: &ServeArgs) -> Self {
        ExposureLimits {
            id_lookup_daily_quota: a.id_lookup_daily_quota.max(0),
            metrics_token: a.metrics_token.clone().filter(|t| !t.is_empty()),
            idempotency_retention_days: a.idempotency_retention_days.max(1),
            certificate_retention_days: a.certificate_retention_days.max(1),
            trusted_proxies: a.trusted_proxies.clone(),
        }
    }
}

/// The fewest characters a password may have (users, the first-start admin, resets excepted:
/// those are generated).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The most: a longer one is no stronger and only costs hashing time.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A network of proxies whose `X-Forwarded-For` is believed: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for ProxyNet {
    type Err = String;
    /// `10.0.0.5`, `10.0.0.0/8`, `::1` or `fd00::/8`.
    fn from_str(s: &str) -> Result<ProxyNet, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
        };
        Ok(ProxyNet { addr, prefix })
    }
}

impl ProxyNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let bits = |ip: IpAddr| -> (u128, u8) {
            match ip {
                IpAddr::V4(v4) => (u32::from(v4) as u128, 32),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => (u32::from(v4) as u128, 32),
                    None => (u128::from(v6), 128),
                },
            }
        };
        let ((net, w1), (a, w2)) = (bits(self.addr), bits(ip));
        if w1 != w2 {
            return false;
        }
        let shift = u32::from(w1 - self.prefix.min(w1));
        net.checked_shr(shift).unwrap_or(0) == a.checked_shr(shift).unwrap_or(0)
    }
}
