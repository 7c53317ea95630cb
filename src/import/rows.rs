//! The columns of each kind of file, how a row is checked (with the API's own parsers and rules)
//! and how a batch of good rows is loaded.

use std::collections::HashMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;

use super::{refusal, Kind, Options, RowResult, Seen, Verdict};
use crate::audit;
use crate::db::{self, DbConn};
use crate::error::ApiError;
use crate::kernel::amount::{hundredths, parse_decimal, Dec};
use crate::kernel::regions;
use crate::parties::parse_uscc;
use crate::parties::uscc::IdNumber;
use crate::parties::PartyKind;
use crate::rights::issuance::{self, IssuancePlan, IssueLot};
use crate::rights::Origin;
use crate::schema::{forest_parcels as fp, parties as pt};

const PARTY_COLUMNS: &[(&str, bool)] = &[
    ("kind", true),
    ("name_zh", true),
    ("name_en", false),
    ("uscc", false),
    ("id_number", false),
    ("region_code", true),
    ("address", false),
];

const LOT_COLUMNS: &[(&str, bool)] = &[
    ("right_type", true),
    ("sub_kind", false),
    ("vintage", true),
    ("compliance_year", false),
    ("valid_from", true),
    ("valid_to", true),
    ("region_code", true),
    ("origin", true),
    ("project", false),
    ("monitoring_period", false),
    ("quantity", true),
    ("holder_uscc", true),
    ("source_document", true),
];

const PARCEL_COLUMNS: &[(&str, bool)] = &[
    ("certificate_no", true),
    ("holder_uscc", false),
    ("holder_id_number", false),
    ("rights", true),
    ("county_code", true),
    ("township", true),
    ("village", true),
    ("compartment", true),
    ("sub_compartment", true),
    ("place_name", false),
    ("area_mu", true),
    ("forest_category", true),
    ("commercial_kind", false),
    ("origin", true),
    ("dominant_species", true),
    ("age_group", false),
    ("stock_volume", true),
    ("woodland_term_end", true),
    ("ownership", true),
    ("management_form", true),
    ("registered", false),
    ("disputed", false),
];

type Errors = Vec<(String, String)>;

/// One row's fields by column name; empty cells are absent.
struct Row<'a> {
    rec: &'a csv::StringRecord,
    index: &'a HashMap<String, usize>,
    errors: Errors,
}

impl<'a> Row<'a> {
    fn get(&self, col: &str) -> Option<&'a str> {
        self.index
            .get(col)
            .and_then(|i| self.rec.get(*i))
            .filter(|v| !v.is_empty())
    }
    fn bad(&mut self, col: &str, reason: impl Into<String>) {
        self.errors.push((col.to_string(), reason.into()));
    }
    fn required(&mut self, col: &str) -> Option<&'a str> {
        let v = self.get(col);
        if v.is_none() {
            self.bad(col, "required");
        }
        v
    }
    fn text(&mut self, col: &str, max: usize) -> Option<String> {
        let v = self.required(col)?;
        if v.chars().count() > max {
            self.bad(col, format!("longer than {max} characters"));
            return None;
        }
        Some(v.to_string())
    }
    fn optional_text(&mut self, col: &str, max: usize) -> Option<String> {
        let v = self.get(col)?;
        if v.chars().count() > max {
            self.bad(col, format!("longer than {max} characters"));
        }
        Some(v.to_string())
    }
    fn year(&mut self, col: &str, required: bool) -> Option<i32> {
        let v = if required {
            self.required(col)?
        } else {
            self.get(col)?
        };
        let y = v.parse::<i32>().ok();
        if y.is_none() {
            self.bad(col, "a year, e.g. 2026");
        }
        y
    }
    fn date(&mut self, col: &str) -> Option<NaiveDate> {
        let v = self.required(col)?;
        let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok();
        if d.is_none() {
            self.bad(col, "a date YYYY-MM-DD");
        }
        d
    }
    fn decimal(&mut self, col: &str) -> Option<Decimal> {
        let v = self.required(col)?;
        let d = parse_decimal(v);
        if d.is_none() {
            self.bad(col, "a plain decimal number, e.g. 485.2");
        }
        d
    }
    fn one_of(&mut self, col: &str, allowed: &[&str], required: bool) -> Option<String> {
        let v = if required {
            self.required(col)?
        } else {
            self.get(col)?
        };
        if !allowed.contains(&v) {
            self.bad(col, format!("one of {}", allowed.join(", ")));
            return None;
        }
        Some(v.to_string())
    }
    fn flag(&mut self, col: &str, default: bool) -> bool {
        match self.get(col).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("true" | "yes" | "1" | "是") => true,
            Some("false" | "no" | "0" | "否") => false,
            Some(_) => {
                self.bad(col, "true or false");
                default
            }
        }
    }
    /// A region code that `exists` accepts (GB/T 2260, see `kernel::regions`).
    fn region(&mut self, col: &str, exists: fn(&str) -> bool) -> Option<String> {
        let v = self.required(col)?;
        if !exists(v) {
            self.bad(col, regions::refusal(v));
            return None;
        }
        Some(v.to_string())
    }
}

/// Per-import state: the header index, a cache of parties by credit code or ID-number hash, and
/// the keys seen so far in the file.
pub(crate) struct Context<'o> {
    kind: Kind,
    opts: &'o Options,
    index: HashMap<String, usize>,
    unknown: Vec<String>,
    parties: HashMap<String, Option<(i64, String)>>,
    seen: Seen,
    run_id: String,
}

impl<'o> Context<'o> {
    pub(crate) fn new(kind: Kind, opts: &'o Options, headers: &csv::StringRecord) -> Context<'o> {
        let known = columns(kind);
        let mut index = HashMap::new();
        let mut unknown = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            let h = h.trim_start_matches('\u{feff}').trim();
            if known.iter().any(|(c, _)| *c == h) {
                index.insert(h.to_string(), i);
            } else {
                unknown.push(h.to_string());
            }
        }
        Context {
            kind,
            opts,
            index,
            unknown,
            parties: HashMap::new(),
            seen: Seen::new(),
            run_id: uuid::Uuid::now_v7().to_string(),
        }
    }

    pub(crate) fn header_errors(&self) -> Errors {
        let mut out: Errors = columns(self.kind)
            .iter()
            .filter(|(c, required)| *required && !self.index.contains_key(*c))
            .map(|(c, _)| (c.to_string(), "missing column".to_string()))
            .collect();
        for u in &self.unknown {
            out.push((
                u.clone(),
                format!(
                    "unknown column; the columns are {}",
                    columns(self.kind)
                        .iter()
                        .map(|(c, _)| *c)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        out
    }

    fn row<'a>(&'a self, rec: &'a csv::StringRecord) -> Row<'a> {
        Row {
            rec,
            index: &self.index,
            errors: Vec::new(),
        }
    }

    /// A party by credit code (`uscc:…`) or ID-number hash (`id:…`), cached.
    fn party(&mut self, conn: &mut DbConn, key: &str) -> RowResult<Option<(i64, String)>> {
        if let Some(hit) = self.parties.get(key) {
            return Ok(hit.clone());
        }
        let q = pt::table.select((pt::id, pt::kind)).into_boxed();
        let q = match key.split_once(':') {
            Some(("uscc", v)) => q.filter(pt::uscc.eq(v.to_string())),
            Some((_, v)) => q.filter(pt::id_number_hash.eq(v.to_string())),
            None => return Ok(None),
        };
        let found: Option<(i64, String)> = q.first(conn).optional()?;
        // Cache hits only: a party registered later in the same file is looked up again.
        if found.is_some() {
            self.parties.insert(key.to_string(), found.clone());
        }
        Ok(found)
    }

    pub(crate) fn validate(
        &mut self,
        conn: &mut DbConn,
        rec: &csv::StringRecord,
    ) -> RowResult<Verdict> {
        match self.kind {
            Kind::Parties => self.validate_party(conn, rec),
            Kind::Lots => self.validate_lot(conn, rec),
            Kind::ForestParcels => self.validate_parcel(conn, rec),
        }
    }

    pub(crate) fn load_batch(
        &mut self,
        conn: &mut DbConn,
        batch_no: u64,
        rows: &[(u64, csv::StringRecord)],
    ) -> RowResult<u64> {
        match self.kind {
            Kind::Parties => self.load_parties(conn, rows),
            Kind::Lots => self.load_lots(conn, batch_no, rows),
            Kind::ForestParcels => self.load_parcels(conn, rows),
        }
    }

    // ---- parties ----

    /// The party of a row, as `POST /v1/parties` would register it, and its identity key.
    fn party_of(
        &self,
        rec: &csv::StringRecord,
    ) -> (Option<(crate::parties::store::NewParty, String)>, Errors) {
        let mut r = self.row(rec);
        let kind = r.required("kind").and_then(|k| match PartyKind::parse(k) {
            Some(k) => Some(k),
            None => {
                r.bad(
                    "kind",
                    "one of enterprise, bank, exchange, regulator, individual",
                );
                None
            }
        });
        let name_zh = r.text("name_zh", 200);
        let name_en = r.optional_text("name_en", 200);
        let address = r.optional_text("address", 500);
        let region_code = r.region("region_code", regions::party_region_exists);
        let uscc = r.get("uscc");
        let id_number = r.get("id_number");
        let mut identity = None;
        match (kind, uscc, id_number) {
            (Some(PartyKind::Individual), None, Some(id)) => match IdNumber::parse(id) {
                Ok(id) => {
                    identity = Some((
                        None,
                        Some(id.keyed_hash(&self.opts.id_key)),
                        Some(id.masked()),
                    ))
                }
                Err(e) => r.bad("id_number", e.to_string()),
            },
            (Some(PartyKind::Individual), _, _) => r.bad(
                "id_number",
                "an individual is registered by ID number, without uscc",
            ),
            (Some(_), Some(code), None) => match parse_uscc("uscc", code) {
                Ok(c) => identity = Some((Some(c.as_str().to_string()), None, None)),
                Err(e) => {
                    let (_, reason) = refusal(&e, &[]);
                    r.bad("uscc", reason)
                }
            },
            (Some(_), _, _) => r.bad(
                "uscc",
                "an organisation is registered by its unified social credit code, without id_number",
            ),
            (None, _, _) => {}
        }
        let errors = std::mem::take(&mut r.errors);
        match (kind, name_zh, region_code, identity) {
            (Some(kind), Some(name_zh), Some(region_code), Some((uscc, hash, masked)))
                if errors.is_empty() =>
            {
                let key = match (&uscc, &hash) {
                    (Some(u), _) => format!("uscc:{u}"),
                    (None, Some(h)) => format!("id:{h}"),
                    (None, None) => String::new(),
                };
                let at = self.opts.at;
                (
                    Some((
                        crate::parties::store::NewParty {
                            kind: kind.as_str(),
                            uscc,
                            id_number_hash: hash,
                            id_number_masked: masked,
                            name_zh,
                            name_en,
                            region_code,
                            address,
                            status: "active".into(),
                            created_at: at,
                            updated_at: at,
                        },
                        key,
                    )),
                    errors,
                )
            }
            _ => (None, errors),
        }
    }

    fn validate_party(&mut self, conn: &mut DbConn, rec: &csv::StringRecord) -> RowResult<Verdict> {
        let (party, errors) = self.party_of(rec);
        let Some((_, key)) = party else {
            return Ok(Verdict::Bad(errors));
        };
        let column = if key.starts_with("uscc:") {
            "uscc"
        } else {
            "id_number"
        };
        if self.seen.repeat(&key) {
            return Ok(Verdict::Bad(vec![(
                column.into(),
                "appears twice in this file".into(),
            )]));
        }
        if self.party(conn, &key)?.is_some() {
            if self.opts.skip_existing {
                return Ok(Verdict::Existing);
            }
            return Ok(Verdict::Bad(vec![(
                column.into(),
                "a party with this credit code or ID number is already registered".into(),
            )]));
        }
        Ok(Verdict::Good)
    }

    fn load_parties(
        &mut self,
        conn: &mut DbConn,
        rows: &[(u64, csv::StringRecord)],
    ) -> RowResult<u64> {
        let at = self.opts.at;
        for (line, rec) in rows {
            let (Some((new, _)), _) = self.party_of(rec) else {
                return Err(changed(*line));
            };
            let row = crate::parties::store::insert(conn, &new).map_err(|e| {
                if db::is_unique_violation(&e) {
                    ApiError::conflict(
                        "party_exists",
                        format!("line {line}: a party with this credit code or ID number is already registered"),
                    )
                } else {
                    e.into()
                }
            })?;
            // The same history entry and audit event as `POST /v1/parties`.
            let changes = json!({"name_zh": row.name_zh});
            crate::parties::store::add_event(
                conn,
                &crate::parties::store::NewPartyEvent {
                    party_id: row.id,
                    kind: "registered".into(),
                    changes: changes.to_string(),
                    document_ref: Some(self.opts.source_name.clone()),
                    related_party_id: None,
                    actor: self.opts.actor.clone(),
                    at,
                },
            )?;
            audit::record(
                conn,
                audit::Event {
                    chain: format!("party:{}", row.id),
                    actor: &self.opts.actor,
                    action: "party.registered",
                    object_type: "party",
                    object_id: row.id.to_string(),
                    payload: json!({"changes": changes, "document_ref": self.opts.source_name,
                        "related_party_id": null, "import": self.run_id, "line": line}),
                    at,
                },
            )?;
        }
        Ok(rows.len() as u64)
    }

    // ---- lots ----

    /// The issuance request of a row, with its holder's party id. Parsing only; no rule checks.
    fn lot_of(
        &mut self,
        conn: &mut DbConn,
        rec: &csv::StringRecord,
    ) -> RowResult<(Option<IssueLot>, Errors)> {
        let mut r = self.row(rec);
        let right_type = r.text("right_type", 10);
        let sub_kind = r.get("sub_kind").map(str::to_string);
        let vintage = r.year("vintage", true);
        let compliance_year = r.year("compliance_year", false);
        let valid_from = r.date("valid_from");
        let valid_to = r.date("valid_to");
        let region_code = r.required("region_code").map(str::to_string);
        let origin = r.required("origin").and_then(|o| {
            let parsed: Option<Origin> =
                serde_json::from_value(serde_json::Value::String(o.to_string())).ok();
            if parsed.is_none() {
                r.bad(
                    "origin",
                    "one of initial_allocation, paid_use, reserve, offset_project",
                );
            }
            parsed
        });
        let project = r.get("project").map(str::to_string);
        let monitoring_period = r.get("monitoring_period").map(str::to_string);
        let quantity = r.decimal("quantity");
        let source_document = r.required("source_document").map(str::to_string);
        let holder_code =
            r.required("holder_uscc")
                .and_then(|c| match parse_uscc("holder_uscc", c) {
                    Ok(c) => Some(c.as_str().to_string()),
                    Err(e) => {
                        let (_, reason) = refusal(&e, &[]);
                        r.bad("holder_uscc", reason);
                        None
                    }
                });
        let mut errors = std::mem::take(&mut r.errors);
        let holder = match holder_code {
            Some(code) => match self.party(conn, &format!("uscc:{code}"))? {
                Some((id, _)) => Some(id),
                None => {
                    errors.push((
                        "holder_uscc".into(),
                        "no party with this credit code".into(),
                    ));
                    None
                }
            },
            None => None,
        };
        let req = match (
            right_type,
            vintage,
            valid_from,
            valid_to,
            region_code,
            origin,
            quantity,
            holder,
            source_document,
        ) {
            (
                Some(right_type),
                Some(vintage),
                Some(valid_from),
                Some(valid_to),
                Some(region_code),
                Some(origin),
                Some(quantity),
                Some(holder_party_id),
                Some(source_document),
            ) if errors.is_empty() => Some(IssueLot {
                right_type,
                sub_kind,
                vintage,
                compliance_year,
                valid_from,
                valid_to,
                region_code,
                origin,
                project,
                monitoring_period,
                quantity: Dec(quantity),
                holder_party_id,
                source_document,
            }),
            _ => None,
        };
        Ok((req, errors))
    }

    fn validate_lot(&mut self, conn: &mut DbConn, rec: &csv::StringRecord) -> RowResult<Verdict> {
        let (req, errors) = self.lot_of(conn, rec)?;
        let Some(req) = req else {
            return Ok(Verdict::Bad(errors));
        };
        let source = req.source_document.trim().to_string();
        // The API's own issuance rules: right type and sub-kind, places, region, validity,
        // holder kind, and R2 (a source document issued or proposed before).
        match issuance::plan(conn, req) {
            Ok(_) => {}
            Err(e) if e.code == "duplicate_source" && self.opts.skip_existing => {
                return Ok(Verdict::Existing)
            }
            Err(e) if e.code == "duplicate_source" => {
                return Ok(Verdict::Bad(vec![("source_document".into(), e.detail)]))
            }
            Err(e) if e.status.is_server_error() => return Err(e),
            Err(e) => {
                return Ok(Verdict::Bad(vec![refusal(
                    &e,
                    &[("holder_party_id", "holder_uscc")],
                )]))
            }
        }
        if self
            .seen
            .repeat(&crate::kernel::text::document_key(&source))
        {
            return Ok(Verdict::Bad(vec![(
                "source_document".into(),
                "appears twice in this file: one lot per source document (R2)".into(),
            )]));
        }
        Ok(Verdict::Good)
    }

    /// Issues each lot as an approved issuance does (`issuance::execute_unaudited`: the lot, its
    /// certificate number, serials, and the issued quantity into the holder's `available` bucket
    /// through the ledger, so conservation holds), then records ONE audit event for the batch.
    /// Per-lot events would put a million chains under every signed checkpoint; the batch event
    /// lists every lot id it created, under the import's own chain.
    fn load_lots(
        &mut self,
        conn: &mut DbConn,
        batch_no: u64,
        rows: &[(u64, csv::StringRecord)],
    ) -> RowResult<u64> {
        let proposed_by = format!("import:{}", self.opts.source_name);
        let mut ids = Vec::with_capacity(rows.len());
        for (line, rec) in rows {
            let (Some(req), _) = self.lot_of(conn, rec)? else {
                return Err(changed(*line));
            };
            let plan = IssuancePlan {
                right_type: req.right_type,
                sub_kind: req.sub_kind,
                vintage: req.vintage,
                compliance_year: req.compliance_year,
                valid_from: req.valid_from,
                valid_to: req.valid_to,
                region_code: req.region_code,
                origin: req.origin,
                project: req.project.map(|p| p.trim().to_string()),
                monitoring_period: req.monitoring_period,
                quantity: req.quantity,
                holder_party_id: req.holder_party_id,
                source_document: req.source_document.trim().to_string(),
            };
            let (lot, _) = issuance::execute_unaudited(
                conn,
                &plan,
                &proposed_by,
                &self.opts.actor,
                self.opts.at,
            )
            .map_err(|mut e| {
                e.detail = format!("line {line}: {}", e.detail);
                e
            })?;
            ids.push(lot.id);
        }
        audit::record(
            conn,
            audit::Event {
                chain: format!("import:{}", self.run_id),
                actor: &self.opts.actor,
                action: "lots.imported",
                object_type: "import",
                object_id: self.run_id.clone(),
                payload: json!({"source": self.opts.source_name, "batch": batch_no,
                    "first_line": rows.first().map(|r| r.0), "last_line": rows.last().map(|r| r.0),
                    "count": ids.len(), "lot_ids": ids}),
                at: self.opts.at,
            },
        )?;
        Ok(rows.len() as u64)
    }

    // ---- forest parcels ----

    fn parcel_of(
        &mut self,
        conn: &mut DbConn,
        rec: &csv::StringRecord,
    ) -> RowResult<(Option<ParcelIn>, Errors)> {
        let mut r = self.row(rec);
        let certificate_no = r.text("certificate_no", 200);
        let mut rights: Vec<String> = r
            .required("rights")
            .map(|v| {
                v.split([';', '|', '；'])
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        rights.sort();
        rights.dedup();
        if rights
            .iter()
            .any(|x| !["woodland_use", "tree_ownership", "tree_use"].contains(&x.as_str()))
            || (rights.is_empty() && r.get("rights").is_some())
        {
            r.bad(
                "rights",
                "woodland_use, tree_ownership, tree_use, separated by ;",
            );
        }
        let county_code = r.region("county_code", regions::fujian_county);
        let township = r.text("township", 200);
        let village = r.text("village", 200);
        let compartment = r.text("compartment", 200);
        let sub_compartment = r.text("sub_compartment", 200);
        let place_name = r.optional_text("place_name", 200);
        let area = r
            .decimal("area_mu")
            .and_then(|d| match hundredths(d, false) {
                Ok(v) => Some(v),
                Err(e) => {
                    r.bad("area_mu", e.to_string());
                    None
                }
            });
        let forest_category = r.one_of("forest_category", &["commercial", "public_welfare"], true);
        let commercial_kind = r.one_of(
            "commercial_kind",
            &["timber", "economic", "fuelwood", "bamboo"],
            false,
        );
        let origin = r.one_of("origin", &["natural", "planted"], true);
        let species = r.text("dominant_species", 200);
        let age_group = r.optional_text("age_group", 200);
        let volume = r
            .decimal("stock_volume")
            .and_then(|d| match hundredths(d, true) {
                Ok(v) => Some(v),
                Err(e) => {
                    r.bad("stock_volume", e.to_string());
                    None
                }
            });
        let term_end = r.date("woodland_term_end");
        let ownership = r.one_of("ownership", &["state", "collective", "individual"], true);
        let management_form = r.one_of(
            "management_form",
            &["collective", "household", "company"],
            true,
        );
        let registered = r.flag("registered", true);
        let disputed = r.flag("disputed", false);
        let holder_key = match (r.get("holder_uscc"), r.get("holder_id_number")) {
            (Some(code), None) => match parse_uscc("holder_uscc", code) {
                Ok(c) => Some(("holder_uscc", format!("uscc:{}", c.as_str()))),
                Err(e) => {
                    let (_, reason) = refusal(&e, &[]);
                    r.bad("holder_uscc", reason);
                    None
                }
            },
            (None, Some(id)) => match IdNumber::parse(id) {
                Ok(id) => Some((
                    "holder_id_number",
                    format!("id:{}", id.keyed_hash(&self.opts.id_key)),
                )),
                Err(e) => {
                    r.bad("holder_id_number", e.to_string());
                    None
                }
            },
            _ => {
                r.bad(
                    "holder_uscc",
                    "give the holder's credit code (holder_uscc) or ID number (holder_id_number), not both",
                );
                None
            }
        };
        let mut errors = std::mem::take(&mut r.errors);
        let holder = match holder_key {
            Some((column, key)) => match self.party(conn, &key)? {
                Some((_, kind)) if kind == "bank" || kind == "regulator" => {
                    errors.push((
                        column.into(),
                        "each holder is a registered enterprise or individual".into(),
                    ));
                    None
                }
                Some((id, _)) => match crate::parties::store::require_active(conn, id) {
                    Ok(_) => Some(id),
                    Err(e) if e.status.is_server_error() => return Err(e),
                    Err(e) => {
                        errors.push((column.into(), e.detail));
                        None
                    }
                },
                None => {
                    errors.push((column.into(), "no such party".into()));
                    None
                }
            },
            None => None,
        };
        if !errors.is_empty() {
            return Ok((None, errors));
        }
        let parcel = (|| {
            Some(ParcelIn {
                certificate_no: certificate_no?,
                holder: holder?,
                rights: rights.join(","),
                county_code: county_code?,
                township: township?,
                village: village?,
                compartment: compartment?,
                sub_compartment: sub_compartment?,
                place_name,
                area: area?,
                forest_category: forest_category?,
                commercial_kind,
                origin: origin?,
                species: species?,
                age_group,
                volume: volume?,
                term_end: term_end?,
                ownership: ownership?,
                management_form: management_form?,
                registered,
                disputed,
            })
        })();
        Ok((parcel, errors))
    }

    fn validate_parcel(
        &mut self,
        conn: &mut DbConn,
        rec: &csv::StringRecord,
    ) -> RowResult<Verdict> {
        let (parcel, errors) = self.parcel_of(conn, rec)?;
        let Some(p) = parcel else {
            return Ok(Verdict::Bad(errors));
        };
        let key = crate::forest::rules::certificate_key(&p.certificate_no);
        if self.seen.repeat(&key) {
            return Ok(Verdict::Bad(vec![(
                "certificate_no".into(),
                "appears twice in this file".into(),
            )]));
        }
        let exists: i64 = fp::table
            .filter(fp::certificate_key.eq(&key))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            if self.opts.skip_existing {
                return Ok(Verdict::Existing);
            }
            return Ok(Verdict::Bad(vec![(
                "certificate_no".into(),
                "a parcel with this certificate number is registered".into(),
            )]));
        }
        Ok(Verdict::Good)
    }

    fn load_parcels(
        &mut self,
        conn: &mut DbConn,
        rows: &[(u64, csv::StringRecord)],
    ) -> RowResult<u64> {
        let at = self.opts.at;
        for (line, rec) in rows {
            let (Some(p), _) = self.parcel_of(conn, rec)? else {
                return Err(changed(*line));
            };
            diesel::insert_into(fp::table)
                .values((
                    fp::certificate_no.eq(&p.certificate_no),
                    fp::certificate_key
                        .eq(crate::forest::rules::certificate_key(&p.certificate_no)),
                    fp::holder_id.eq(p.holder),
                    fp::rights.eq(&p.rights),
                    fp::county_code.eq(&p.county_code),
                    fp::township.eq(&p.township),
                    fp::village.eq(&p.village),
                    fp::compartment.eq(&p.compartment),
                    fp::sub_compartment.eq(&p.sub_compartment),
                    fp::place_name.eq(&p.place_name),
                    fp::area_mu.eq(p.area),
                    fp::forest_category.eq(&p.forest_category),
                    fp::commercial_kind.eq(&p.commercial_kind),
                    fp::origin.eq(&p.origin),
                    fp::dominant_species.eq(&p.species),
                    fp::age_group.eq(&p.age_group),
                    fp::stock_volume.eq(p.volume),
                    fp::woodland_term_end.eq(p.term_end),
                    fp::ownership.eq(&p.ownership),
                    fp::management_form.eq(&p.management_form),
                    fp::registered.eq(p.registered),
                    fp::disputed.eq(p.disputed),
                    fp::created_at.eq(at),
                    fp::updated_at.eq(at),
                ))
                .execute(conn)
                .map_err(|e| {
                    if db::is_unique_violation(&e) {
                        ApiError::conflict(
                            "parcel_exists",
                            format!(
                                "line {line}: a parcel with this certificate number is registered"
                            ),
                        )
                    } else {
                        e.into()
                    }
                })?;
            let id: i64 = fp::table
                .filter(fp::certificate_no.eq(&p.certificate_no))
                .select(fp::id)
                .first(conn)?;
            crate::forest::set_holders(conn, id, &[(p.holder, 10_000)])?;
            // The same audit event as `POST /v1/forest-rights`.
            audit::record(
                conn,
                audit::Event {
                    chain: format!("parcel:{id}"),
                    actor: &self.opts.actor,
                    action: "parcel.registered",
                    object_type: "forest_parcel",
                    object_id: id.to_string(),
                    payload: json!({"certificate_no": p.certificate_no, "holder_id": p.holder,
                        "import": self.run_id, "line": line}),
                    at,
                },
            )?;
        }
        Ok(rows.len() as u64)
    }
}

struct ParcelIn {
    certificate_no: String,
    holder: i64,
    rights: String,
    county_code: String,
    township: String,
    village: String,
    compartment: String,
    sub_compartment: String,
    place_name: Option<String>,
    area: i64,
    forest_category: String,
    commercial_kind: Option<String>,
    origin: String,
    species: String,
    age_group: Option<String>,
    volume: i64,
    term_end: NaiveDate,
    ownership: String,
    management_form: String,
    registered: bool,
    disputed: bool,
}

fn columns(kind: Kind) -> &'static [(&'static str, bool)] {
    match kind {
        Kind::Parties => PARTY_COLUMNS,
        Kind::Lots => LOT_COLUMNS,
        Kind::ForestParcels => PARCEL_COLUMNS,
    }
}

/// A row valid in the first pass that no longer parses: the file changed under the import.
fn changed(line: u64) -> ApiError {
    ApiError::conflict(
        "import_file_changed",
        format!("line {line} changed between validation and loading; nothing more was imported"),
    )
}
