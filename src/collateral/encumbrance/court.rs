//! What judicial freezes of a holding's quantity and of a forest parcel share: the court order
//! they record (court, case number, document), the later order that lifts one, and the audit
//! event of each.

use chrono::NaiveDateTime;

use crate::db::DbConn;
use crate::error::{ApiError, ApiResult};

/// A court order's court, case number and document reference must each be given.
pub fn require_order(court: &str, case_no: &str, document_ref: &str) -> ApiResult<()> {
    for (field, v) in [
        ("court", court),
        ("case_no", case_no),
        ("document_ref", document_ref),
    ] {
        if v.trim().is_empty() {
            return Err(ApiError::invalid_field(field, "required"));
        }
    }
    Ok(())
}

/// The later order that lifts a freeze, as stored (trimmed, required).
pub fn lift_document(document_ref: &str) -> ApiResult<String> {
    let doc = document_ref.trim().to_string();
    if doc.is_empty() {
        return Err(ApiError::invalid_field("document_ref", "required"));
    }
    Ok(doc)
}

/// A freeze's audit event, on the chain of what it freezes.
pub struct FreezeEvent<'a> {
    pub chain: String,
    pub action: &'a str,
    pub object_type: &'a str,
    pub id: i64,
    pub payload: serde_json::Value,
}

pub fn audit(conn: &mut DbConn, e: FreezeEvent, actor: &str, at: NaiveDateTime) -> ApiResult<()> {
    crate::audit::record(
        conn,
        crate::audit::Event {
            chain: e.chain,
            actor,
            action: e.action,
            object_type: e.object_type,
            object_id: e.id.to_string(),
            payload: e.payload,
            at,
        },
    )?;
    Ok(())
}
