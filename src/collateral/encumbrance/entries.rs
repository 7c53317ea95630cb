//! The append-only history of an encumbrance (R8): numbered, timestamped entries; each also goes
//! to the lender as a webhook event and to the audit trail.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::Encumbrance;
use crate::db::DbConn;
use crate::error::ApiResult;

/// An entry as stored (the same columns in every kind's entries table).
#[derive(Debug, Clone, diesel::Queryable)]
pub struct Entry {
    pub seq: i32,
    pub kind: String,
    pub details: String,
    pub actor: String,
    pub at: NaiveDateTime,
}

/// An entry about to be stored.
pub struct NewEntry<'a> {
    pub seq: i32,
    pub kind: &'a str,
    pub details: String,
    pub actor: &'a str,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntryView {
    /// Entries are numbered from 1 per pledge and never change (R8).
    pub seq: i32,
    /// applied, registered, amended, renewed, released, lapse_warning, lapsed, enforcement, disposal, code_rotated, withdrawn.
    pub kind: String,
    /// What the entry recorded; only for the parties, operators and regulators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    /// Who made it; only for the parties, operators and regulators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
}

impl EntryView {
    /// The entry as a non-party sees it: that it happened and when, not the private details.
    pub fn public(self) -> EntryView {
        EntryView {
            details: None,
            actor: None,
            ..self
        }
    }
}

/// The entries of encumbrance `id` as its parties see them.
pub fn entry_views<E: Encumbrance>(conn: &mut DbConn, id: i64) -> ApiResult<Vec<EntryView>> {
    Ok(E::entries(conn, id)?
        .into_iter()
        .map(|e| EntryView {
            seq: e.seq,
            kind: e.kind,
            details: serde_json::from_str(&e.details).ok(),
            actor: Some(e.actor),
            at: e.at.and_utc(),
        })
        .collect())
}

/// Appends a numbered, timestamped entry to an encumbrance's history (R8), tells its lender
/// (webhook `<object>.<kind>`) and audits it.
pub fn add_entry<E: Encumbrance>(
    conn: &mut DbConn,
    e: &E,
    kind: &str,
    details: serde_json::Value,
    actor: &str,
    at: NaiveDateTime,
) -> ApiResult<()> {
    let last = E::last_seq(conn, e.id())?;
    let entry = NewEntry {
        seq: last.unwrap_or(0) + 1,
        kind,
        details: details.to_string(),
        actor,
        at,
    };
    E::insert_entry(conn, e.id(), &entry)?;
    let mut event = serde_json::Map::new();
    event.insert(format!("{}_id", E::OBJECT), json!(e.id()));
    event.insert("registration_no".into(), json!(e.registration_no()));
    event.insert("entry".into(), json!(kind));
    event.insert("details".into(), details.clone());
    crate::collateral::webhooks::enqueue(
        conn,
        e.lender_id(),
        &format!("{}:{}", E::OBJECT, e.id()),
        &format!("{}.{kind}", E::OBJECT),
        serde_json::Value::Object(event),
        at,
    )?;
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: e.chain(),
            actor,
            action: &format!("{}.{kind}", E::OBJECT),
            object_type: E::OBJECT,
            object_id: e.id().to_string(),
            payload: details,
            at,
        },
    )?;
    Ok(())
}
