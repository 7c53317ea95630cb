//! Test kit, PostgreSQL part (docs/design.md §11).
//!
//! - `admin_url()`: a server on which tests may CREATE DATABASE. `TEST_DATABASE_URL` (a URL, not
//!   a key=value string) if set; otherwise a throwaway cluster started from the installed server
//!   binaries and shared by every test process of this target dir. It is left running so the next
//!   run starts at once; end it with `pg_ctl stop -D <data dir>` (the path is printed).
//! - `fresh_database()`: a new, empty database per test. Not dropped when its test ends (the app
//!   under test may still hold pooled connections to it); instead the first use of the kit in a
//!   process drops test databases older than `STALE_AFTER`, so a developer's long-lived server
//!   does not fill its disk with thousands of them.
//! - `OwnCluster`: a private cluster for tests that stop their database (readiness, outage).
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root, so as root they run as the `postgres`
//! OS user, in directories it owns.
#![allow(dead_code)] // each test binary uses a different part of the kit

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use diesel::{Connection, PgConnection, RunQueryDsl};

/// URL of a role allowed to CREATE DATABASE; see the module doc.
pub fn admin_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    // Written to the real stderr: libtest captures eprintln! of passing tests, and which server
    // ran should always show.
    let say = |line: String| writeln!(std::io::stderr(), "test kit: PostgreSQL {line}");
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
            let _ = say(format!("from TEST_DATABASE_URL ({})", shown(&url)));
            drop_stale_databases(&url);
            return url;
        }
        let (c, how) = shared_cluster();
        let data = c.data().display().to_string();
        let _ = say(format!(
            "throwaway cluster at 127.0.0.1:{} ({how}; data {data})",
            c.port
        ));
        drop_stale_databases(&c.url("postgres"));
        c.url("postgres")
    })
    .clone()
}

/// Test databases older than this belong to runs that have ended: no test runs this long.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(3 * 3600);

/// Drops the databases `fresh_database` made more than `STALE_AFTER` ago (their names end in the
/// creation time, in hex nanoseconds). Best effort: a failure only leaves them for the next run.
fn drop_stale_databases(admin: &str) {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        datname: String,
    }
    let Ok(mut conn) = PgConnection::establish(admin) else {
        return;
    };
    let Ok(names) = diesel::sql_query(
        "SELECT datname FROM pg_database WHERE datname ~ '^t_[0-9]+_[0-9]+_[0-9a-f]+$'",
    )
    .load::<Name>(&mut conn) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for Name { datname } in names {
        let made = datname
            .rsplit('_')
            .next()
            .and_then(|hex| u128::from_str_radix(hex, 16).ok());
        if made.is_some_and(|made| now.saturating_sub(made) > STALE_AFTER.as_nanos()) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {datname} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

/// Creates a uniquely named database on the admin server and returns its URL.
pub fn fresh_database() -> String {
    let admin = admin_url();
    // pid + counter are unique among running processes; the time keeps names from clashing with
    // databases left by earlier runs that had the same pid.
    let name = format!("t_{}", unique());
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut connect(&admin))
        .unwrap_or_else(|e| panic!("test kit: CREATE DATABASE {name} on {}: {e}", shown(&admin)));
    with_database(&admin, &name)
}

/// A private throwaway cluster with a database `registry`; dropping it stops the server and
/// deletes its directory.
pub struct OwnCluster(Cluster);

impl OwnCluster {
    pub fn start() -> OwnCluster {
        let base = std::env::temp_dir().join(format!("registry-own-pg-{}", unique()));
        assert!(
            prepare_dir(&base),
            "test kit: cannot prepare {} for the postgres user",
            base.display()
        );
        Cluster::init(&base);
        // Wrapped before anything else can fail, so Drop cleans up after a panic.
        let own = OwnCluster(start_on_free_port(base));
        diesel::sql_query("CREATE DATABASE registry")
            .execute(&mut connect(&own.0.url("postgres")))
            .expect("test kit: CREATE DATABASE registry");
        own
    }

    pub fn url(&self) -> String {
        self.0.url("registry")
    }

    pub fn port(&self) -> u16 {
        self.0.port
    }

    /// Stops the server; connections fail until `restart`.
    pub fn stop(&self) {
        run(self.0.ctl("stop").args(["-m", "fast"]), "pg_ctl stop");
    }

    /// Starts the server again on the same port, so URLs handed out before stay valid.
    pub fn restart(&self) {
        self.0.start().unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.0.ctl("stop").args(["-m", "immediate"]).output(); // may already be stopped
        let _ = fs::remove_dir_all(&self.0.base);
    }
}

/// A cluster laid out as `base/data` (PGDATA), `base/log`, and its unix socket in `base`.
struct Cluster {
    base: PathBuf,
    port: u16,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// initdb, configured for a fast server reachable only from this machine; marks `base` done.
    fn init(base: &Path) {
        let data = base.join("data");
        let _ = fs::remove_dir_all(&data); // left half-made by an interrupted run
        let initdb = &mut server_cmd(&tool("initdb"));
        initdb.arg("-D").arg(&data);
        let opts = "-A trust -U postgres -E UTF8 --locale=C --no-sync";
        run(initdb.args(opts.split(' ')), "initdb");
        // In the config file rather than on pg_ctl's command line, which goes through a shell.
        let sock = base
            .to_str()
            .expect("test kit: non-UTF-8 path")
            .replace('\'', "''");
        let conf = format!(
            "\n# test kit\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{sock}'\n\
             max_connections = 300\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
        );
        OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .expect("test kit: append to postgresql.conf");
        File::create(base.join("initialized")).expect("test kit: write initialized marker");
    }

    fn ctl(&self, action: &str) -> Command {
        let mut cmd = server_cmd(&tool("pg_ctl"));
        cmd.arg(action).arg("-D").arg(self.data()).arg("-w");
        cmd
    }

    fn start(&self) -> Result<(), String> {
        let mut cmd = self.ctl("start");
        cmd.args(["-t", "60", "-l"])
            .arg(self.base.join("log"))
            .args(["-o", &format!("-p {}", self.port)]);
        let out = cmd
            .output()
            .map_err(|e| format!("test kit: cannot run pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let log = fs::read_to_string(self.base.join("log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        Err(format!(
            "test kit: pg_ctl start on port {} failed: {}server log (end):\n{tail}",
            self.port,
            output_text(&out)
        ))
    }

    /// Running from this data dir and accepting connections on the expected port.
    fn is_up(&self) -> bool {
        let ok = |cmd: &mut Command| cmd.output().is_ok_and(|o| o.status.success());
        let ready = format!("-q -t 10 -h 127.0.0.1 -p {}", self.port);
        ok(&mut self.ctl("status")) && ok(Command::new(tool("pg_isready")).args(ready.split(' ')))
    }
}

/// Finds, restarts or creates the cluster shared by all test processes of this target dir.
fn shared_cluster() -> (Cluster, &'static str) {
    let base = shared_base();
    // cargo test runs test binaries, nextest runs tests, as concurrent processes: one at a time
    // checks, creates or starts the cluster; the others then find it running.
    let lock = File::create(base.join("lock")).expect("test kit: create lock file");
    lock.lock().expect("test kit: lock shared cluster");
    if !base.join("initialized").exists() {
        Cluster::init(&base);
        return (start_on_free_port(base), "created");
    }
    let recorded = fs::read_to_string(base.join("port"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    if let Some(port) = recorded {
        let c = Cluster {
            base: base.clone(),
            port,
        };
        if c.is_up() {
            return (c, "reused");
        }
        // Data dir kept but server stopped (reboot, pg_ctl stop): same port if still free.
        if c.start().is_ok() {
            return (c, "restarted");
        }
    }
    (start_on_free_port(base), "started")
}

/// `CARGO_TARGET_TMPDIR/shared-pg`, or a directory in the temp dir when the postgres user can't
/// reach that one (e.g. a target dir under /root) or the socket path would pass its 107-byte limit.
fn shared_base() -> PathBuf {
    let preferred = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared-pg");
    if preferred.as_os_str().len() < 90 && prepare_dir(&preferred) {
        return preferred;
    }
    // Keyed by the target dir (FNV-1a, stable across toolchains) so separate checkouts don't share.
    let hash = preferred
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf29ce484222325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
    let fallback = std::env::temp_dir().join(format!("registry-test-pg-{hash:016x}"));
    assert!(
        prepare_dir(&fallback),
        "test kit: cannot prepare {} for the postgres user",
        fallback.display()
    );
    fallback
}

/// Creates `dir`, owned by the postgres user when root; true if the server user can write in it.
fn prepare_dir(dir: &Path) -> bool {
    if fs::create_dir_all(dir).is_err() {
        return false;
    }
    if is_root()
        && !Command::new("chown")
            .arg("postgres:")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success())
    {
        return false;
    }
    // access(2) also checks search permission on every parent.
    server_cmd(Path::new("test"))
        .arg("-w")
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts on a free port, recorded first so no process loses track of a server that started.
fn start_on_free_port(base: PathBuf) -> Cluster {
    let mut last_err = String::new();
    // The port is free when picked but could be taken before postgres binds it: retry a few times.
    for _ in 0..3 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("test kit: free port")
            .port();
        fs::write(base.join("port"), port.to_string()).expect("test kit: write port file");
        let c = Cluster {
            base: base.clone(),
            port,
        };
        match c.start() {
            Ok(()) => return c,
            Err(e) => last_err = e,
        }
    }
    panic!("{last_err}");
}

/// A command run as the postgres OS user when we are root (initdb and postgres refuse root).
fn server_cmd(program: &Path) -> Command {
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.current_dir("/"); // the postgres user may not be allowed into the test's working directory
    cmd
}

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Path of a server tool: Debian's /usr/lib/postgresql/<highest major>/bin, else
/// `pg_config --bindir`, else PATH.
fn tool(name: &str) -> PathBuf {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let debian = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major: u32 = e.file_name().to_str()?.parse().ok()?;
                Some((major, e.path().join("bin")))
            });
        let debian = debian
            .filter(|(_, bin)| bin.join("initdb").exists())
            .max()
            .map(|(_, bin)| bin);
        debian.or_else(|| {
            let out = Command::new("pg_config").arg("--bindir").output().ok()?;
            let bin = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
            bin.join("initdb").exists().then_some(bin)
        })
    });
    bin.as_ref()
        .map_or_else(|| PathBuf::from(name), |b| b.join(name))
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        let hint = "install the PostgreSQL server package or set TEST_DATABASE_URL";
        panic!("test kit: cannot run {what} ({e}); {hint}")
    });
    assert!(
        out.status.success(),
        "test kit: {what} failed ({:?}):\n{}",
        cmd,
        output_text(&out)
    );
    out
}

fn output_text(out: &Output) -> String {
    format!(
        "{}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn connect(url: &str) -> PgConnection {
    PgConnection::establish(url)
        .unwrap_or_else(|e| panic!("test kit: connect to {}: {e}", shown(url)))
}

/// `url` with its database replaced by `db`, keeping user, host and query parameters.
fn with_database(url: &str, db: &str) -> String {
    let (head, query) = url.split_once('?').unwrap_or((url, ""));
    let authority = head.find("://").map_or(0, |i| i + 3);
    let head = head[authority..]
        .find('/')
        .map_or(head, |i| &head[..authority + i]);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{head}/{db}{query}")
}

/// The part of a URL after the credentials, for messages.
fn shown(url: &str) -> &str {
    url.rsplit('@').next().unwrap_or(url)
}

fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}_{}_{:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}
