//! Bulk import of registers from CSV: parties, lots and forest parcels (`registry import KIND FILE`
//! and `POST /v1/imports/{kind}`).
//!
//! Two streaming passes over the file, so a million rows need no more memory than one batch:
//! the first validates every row (with the same parsers and rules as the API) and collects every
//! bad row into one report; the second loads the good rows in batches, one write transaction per
//! batch. Nothing is loaded when a row is bad, unless the caller asked to skip invalid rows.
//! Files are UTF-8 (with or without BOM) or GBK, as Chinese office software exports them: a file
//! that is not valid UTF-8 is read as GBK.

pub mod routes;
mod rows;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use encoding_rs::{Encoding, GBK, UTF_8};
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{self, DbConn};
use crate::error::{ApiError, ApiResult};

/// Rows per write transaction in the load pass.
pub const BATCH_ROWS: usize = 1000;
/// At most this many bad rows are itemised in a report; the rest are counted.
pub const MAX_REPORTED: usize = 10_000;

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Parties,
    Lots,
    ForestParcels,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "parties" => Some(Kind::Parties),
            "lots" => Some(Kind::Lots),
            "forest-parcels" => Some(Kind::ForestParcels),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Parties => "parties",
            Kind::Lots => "lots",
            Kind::ForestParcels => "forest-parcels",
        }
    }
}

/// How to import.
pub struct Options {
    /// Load the good rows even when some are bad (the bad ones are reported and left out).
    pub skip_invalid: bool,
    /// Rows whose key (credit code, ID number, source document, certificate number) is already
    /// registered are skipped instead of being bad: what makes `registry seed` re-runnable.
    pub skip_existing: bool,
    /// Who imports (audit actor).
    pub actor: String,
    /// A name for the source in the audit trail (the file name).
    pub source_name: String,
    /// Key of the ID-number HMAC (R15).
    pub id_key: Vec<u8>,
    pub at: NaiveDateTime,
    /// Only validate (pass 1) and report; load nothing (a proposed lot import).
    pub validate_only: bool,
}

/// One bad row: where and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BadRow {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The column's header, or `-` for the row as a whole.
    pub column: String,
    pub reason: String,
}

/// The outcome of an import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportReport {
    /// parties, lots or forest-parcels.
    pub kind: String,
    /// The encoding the file was read as: UTF-8 or GBK.
    pub encoding: String,
    /// Data rows read.
    pub rows: u64,
    /// Rows that were bad (each listed in `bad_rows`, up to 10,000).
    pub invalid: u64,
    /// Rows skipped because already registered (seeding only).
    pub existing: u64,
    /// Rows loaded.
    pub imported: u64,
    pub bad_rows: Vec<BadRow>,
    /// True when more bad rows were found than are listed.
    pub bad_rows_truncated: bool,
}

/// Shows progress of the two passes.
pub trait Progress {
    /// A pass begins; `total` is in bytes for validation and in rows for loading.
    fn phase(&mut self, name: &'static str, total: u64, bytes: bool);
    fn set(&mut self, done: u64);
    fn finish(&mut self);
}

/// No progress output (the HTTP endpoint, tests).
pub struct Silent;

impl Progress for Silent {
    fn phase(&mut self, _: &'static str, _: u64, _: bool) {}
    fn set(&mut self, _: u64) {}
    fn finish(&mut self) {}
}

/// A progress bar with rate and ETA on a terminal; plain lines every few seconds otherwise.
pub struct Console {
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
    name: &'static str,
    total: u64,
    bytes: bool,
    started: Instant,
    last_line: Instant,
}

impl Console {
    pub fn new() -> Console {
        use std::io::IsTerminal;
        Console {
            bar: None,
            terminal: io::stderr().is_terminal(),
            name: "",
            total: 0,
            bytes: false,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn line(&self, done: u64) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 && self.total > done {
            (self.total - done) as f64 / rate
        } else {
            0.0
        };
        let (unit, scale) = if self.bytes {
            ("MiB", 1_048_576.0)
        } else {
            ("rows", 1.0)
        };
        eprintln!(
            "{}: {:.1}/{:.1} {unit} ({:.0}%), {:.1} {unit}/s, ETA {:.0}s",
            self.name,
            done as f64 / scale,
            self.total as f64 / scale,
            if self.total > 0 {
                100.0 * done as f64 / self.total as f64
            } else {
                100.0
            },
            rate / scale,
            eta
        );
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl Progress for Console {
    fn phase(&mut self, name: &'static str, total: u64, bytes: bool) {
        self.finish();
        self.name = name;
        self.total = total;
        self.bytes = bytes;
        self.started = Instant::now();
        self.last_line = Instant::now();
        if self.terminal {
            let template = if bytes {
                "{prefix:>9} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            } else {
                "{prefix:>9} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows {per_sec} ETA {eta}"
            };
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar.set_prefix(name);
            self.bar = Some(bar);
        } else {
            eprintln!("{name}: started");
        }
    }

    fn set(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                self.last_line = Instant::now();
                self.line(done);
            }
            None => {}
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        } else if !self.name.is_empty() {
            self.line(self.total);
        }
        self.name = "";
    }
}

/// Why an import could not run at all (as opposed to bad rows, which are in the report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    #[error("{}", .0.detail)]
    Api(ApiError),
}

impl From<ApiError> for ImportError {
    fn from(e: ApiError) -> Self {
        ImportError::Api(e)
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        ImportError::Api(e.into())
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Io(e) => ApiError::internal(format!("cannot read the upload: {e}")),
            ImportError::Api(e) => e,
        }
    }
}

/// Reads the whole file once: valid UTF-8 (BOM or not) is UTF-8, anything else is taken as GBK.
pub fn sniff(path: &Path) -> io::Result<&'static Encoding> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(if carry.is_empty() { UTF_8 } else { GBK });
        }
        let mut chunk = std::mem::take(&mut carry);
        chunk.extend_from_slice(&buf[..n]);
        match std::str::from_utf8(&chunk) {
            Ok(_) => {}
            // A character cut by the chunk boundary: keep its start for the next chunk.
            Err(e) if e.error_len().is_none() => carry = chunk[e.valid_up_to()..].to_vec(),
            Err(_) => return Ok(GBK),
        }
    }
}

/// Counts the raw bytes read, for progress over the file.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Line ends as `\n` only: `\r\n` (Excel and WPS write CSV so) and a lone `\r` become `\n`.
///
/// The csv reader ends a record at the `\r` of a `\r\n` and counts the line only when it meets
/// the `\n`, at the start of the next record, so every record after the first line of a Windows
/// file was reported one line too early. With one kind of line end, the line it reports is the
/// line in the file. (A line end inside a quoted field becomes `\n` too; no field the registry
/// imports spans lines.)
struct LfLines<R> {
    inner: R,
    /// The last byte given out was a `\r` turned into `\n`: a `\n` right after it is dropped.
    after_cr: bool,
}

impl<R: Read> Read for LfLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                return Ok(0);
            }
            let mut out = 0;
            for i in 0..n {
                let b = buf[i];
                if std::mem::replace(&mut self.after_cr, b == b'\r') && b == b'\n' {
                    continue;
                }
                buf[out] = if b == b'\r' { b'\n' } else { b };
                out += 1;
            }
            // A read that was only the `\n` of a `\r\n` gives nothing: read on, since 0 is EOF.
            if out > 0 {
                return Ok(out);
            }
        }
    }
}

type CsvReader = csv::Reader<LfLines<DecodeReaderBytes<Counting<File>, Vec<u8>>>>;

fn open(path: &Path, enc: &'static Encoding, count: Arc<AtomicU64>) -> io::Result<CsvReader> {
    let file = File::open(path)?;
    // bom_override: a UTF-8 BOM is removed; GBK files are transcoded to UTF-8 as they stream.
    let decoded = DecodeReaderBytesBuilder::new()
        .encoding(Some(enc))
        .bom_override(true)
        .build(Counting { inner: file, count });
    Ok(csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(LfLines {
            inner: decoded,
            after_cr: false,
        }))
}

/// Collects the bad rows of a pass.
struct Bad {
    listed: Vec<BadRow>,
    lines: Vec<u64>,
    truncated: bool,
}

impl Bad {
    fn add(&mut self, line: u64, errors: Vec<(String, String)>) {
        if self.lines.last() != Some(&line) {
            self.lines.push(line);
        }
        for (column, reason) in errors {
            if self.listed.len() < MAX_REPORTED {
                self.listed.push(BadRow {
                    line,
                    column,
                    reason,
                });
            } else {
                self.truncated = true;
            }
        }
    }
}

/// What validating one row found.
pub(crate) enum Verdict {
    Good,
    /// Already registered (only with `skip_existing`).
    Existing,
    Bad(Vec<(String, String)>),
}

/// Imports `path` as `kind`: validates every row, then loads them in batches.
pub fn run(
    conn: &mut DbConn,
    kind: Kind,
    path: &Path,
    opts: &Options,
    progress: &mut dyn Progress,
) -> Result<ImportReport, ImportError> {
    let enc = sniff(path)?;
    let size = std::fs::metadata(path)?.len();
    let count = Arc::new(AtomicU64::new(0));
    let mut reader = open(path, enc, count.clone())?;
    let headers = reader.headers().map_err(csv_io)?.clone();
    let mut ctx = rows::Context::new(kind, opts, &headers);
    let mut report = ImportReport {
        kind: kind.as_str().to_string(),
        encoding: enc.name().to_string(),
        rows: 0,
        invalid: 0,
        existing: 0,
        imported: 0,
        bad_rows: Vec::new(),
        bad_rows_truncated: false,
    };
    let mut bad = Bad {
        listed: Vec::new(),
        lines: Vec::new(),
        truncated: false,
    };
    let header_errors = ctx.header_errors();
    if !header_errors.is_empty() {
        bad.add(1, header_errors);
        report.invalid = 1;
        report.bad_rows = bad.listed;
        return Ok(report);
    }

    // Pass 1: validate every row. Skipped lines (bad or existing) are remembered by number.
    progress.phase("validate", size, true);
    let mut skip: Vec<u64> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                report.rows += 1;
                let line = record.position().map_or(line, |p| p.line());
                match ctx.validate(conn, &record)? {
                    Verdict::Good => {}
                    Verdict::Existing => {
                        report.existing += 1;
                        skip.push(line);
                    }
                    Verdict::Bad(errors) => {
                        report.invalid += 1;
                        skip.push(line);
                        bad.add(line, errors);
                    }
                }
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(csv_io(e)),
            Err(e) => {
                report.rows += 1;
                report.invalid += 1;
                let line = e.position().map_or(line, |p| p.line());
                skip.push(line);
                bad.add(line, vec![("-".into(), format!("not a CSV row: {e}"))]);
            }
        }
        if report.rows.is_multiple_of(1024) {
            progress.set(count.load(Ordering::Relaxed));
        }
    }
    progress.set(size);
    progress.finish();
    report.bad_rows = std::mem::take(&mut bad.listed);
    report.bad_rows_truncated = bad.truncated;
    if (report.invalid > 0 && !opts.skip_invalid) || opts.validate_only {
        return Ok(report);
    }
    let to_load = report.rows - report.invalid - report.existing;
    if to_load == 0 {
        return Ok(report);
    }

    // Pass 2: load the good rows, one transaction per batch.
    let mut reader = open(path, enc, Arc::new(AtomicU64::new(0)))?;
    reader.headers().map_err(csv_io)?;
    progress.phase("load", to_load, false);
    let mut skip = skip.into_iter().peekable();
    let mut batch: Vec<(u64, csv::StringRecord)> = Vec::with_capacity(BATCH_ROWS);
    let mut batch_no = 0u64;
    loop {
        let line = reader.position().line();
        let more = match reader.read_record(&mut record) {
            Ok(more) => more,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(csv_io(e)),
            // Already reported and skipped in pass 1.
            Err(_) => {
                while skip.next_if(|l| *l <= line).is_some() {}
                continue;
            }
        };
        if more {
            let line = record.position().map_or(line, |p| p.line());
            while skip.next_if(|l| *l < line).is_some() {}
            if skip.next_if_eq(&line).is_some() {
                continue;
            }
            batch.push((line, record.clone()));
        }
        if batch.len() >= BATCH_ROWS || (!more && !batch.is_empty()) {
            batch_no += 1;
            let rows = std::mem::take(&mut batch);
            let n = db::write_tx(conn, |conn| ctx.load_batch(conn, batch_no, &rows))?;
            report.imported += n;
            progress.set(report.imported);
        }
        if !more {
            break;
        }
    }
    progress.finish();
    Ok(report)
}

fn csv_io(e: csv::Error) -> ImportError {
    ImportError::Io(io::Error::other(e.to_string()))
}

/// The report as the 422 problem document that lists every bad row.
pub fn problem(report: &ImportReport) -> serde_json::Value {
    serde_json::json!({
        "type": "https://registry.example/problems/import_invalid",
        "title": "Unprocessable Content",
        "status": 422,
        "detail": format!("{} of {} rows are invalid; nothing was imported", report.invalid, report.rows),
        "code": "import_invalid",
        "report": report,
    })
}

/// For callers that already hold a principal's actor name.
pub fn options(actor: String, source_name: String, id_key: Vec<u8>, skip_invalid: bool) -> Options {
    Options {
        skip_invalid,
        skip_existing: false,
        actor,
        source_name,
        id_key,
        at: db::now_micros(chrono::Utc::now()),
        validate_only: false,
    }
}

/// In-file duplicate detection without keeping every key: a 128-bit digest per key.
pub(crate) struct Seen(HashSet<[u8; 16]>);

impl Seen {
    pub(crate) fn new() -> Seen {
        Seen(HashSet::new())
    }
    /// True when `key` was seen before in this file.
    pub(crate) fn repeat(&mut self, key: &str) -> bool {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(key.as_bytes());
        let mut k = [0u8; 16];
        k.copy_from_slice(&d[..16]);
        !self.0.insert(k)
    }
}

/// Maps an API rule's refusal to the column it names.
pub(crate) fn refusal(e: &ApiError, rename: &[(&str, &str)]) -> (String, String) {
    match e.errors.first() {
        Some(f) => {
            let column = rename
                .iter()
                .find(|(from, _)| *from == f.field)
                .map_or(f.field.as_str(), |(_, to)| to);
            (column.to_string(), f.message.clone())
        }
        None => ("-".to_string(), e.detail.clone()),
    }
}

pub(crate) type RowResult<T> = ApiResult<T>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads through `LfLines` in reads of `chunk` bytes, so that a `\r\n` may be cut in two.
    fn lf(input: &[u8], chunk: usize) -> Vec<u8> {
        struct Chunks<'a>(&'a [u8], usize);
        impl Read for Chunks<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut out = Vec::new();
        LfLines {
            inner: Chunks(input, chunk),
            after_cr: false,
        }
        .read_to_end(&mut out)
        .unwrap();
        out
    }

    #[test]
    fn line_ends_become_lf() {
        for chunk in [1, 2, 3, 64] {
            assert_eq!(lf(b"a,b\r\nc,d\r\n", chunk), b"a,b\nc,d\n", "{chunk}");
            assert_eq!(
                lf(b"a\rb\n\nc\r\n\r\nd", chunk),
                b"a\nb\n\nc\n\nd",
                "{chunk}"
            );
            assert_eq!(lf(b"\r\n", chunk), b"\n", "{chunk}");
        }
    }

    #[test]
    fn crlf_rows_are_counted_on_their_own_line() {
        let text = "h1,h2\r\na,b\r\nc,d\r\n\"e\",f\r\n";
        let mut reader = csv::ReaderBuilder::new().from_reader(LfLines {
            inner: text.as_bytes(),
            after_cr: false,
        });
        let lines: Vec<u64> = reader
            .records()
            .map(|r| r.unwrap().position().unwrap().line())
            .collect();
        assert_eq!(lines, vec![2, 3, 4]);
    }
}
