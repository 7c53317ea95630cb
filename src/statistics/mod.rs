//! Green-finance statistics (绿色融资统计): by month, the registered secured loans outstanding and
//! new, borrowers, coverage of registered enterprises, credit enhancement, by county, bank and
//! right type; as JSON, CSV and SVG charts (API and `registry report`).

pub mod chart;
pub mod routes;
pub mod rules;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbConn;
use crate::error::ApiResult;
use crate::kernel::amount::Dec;
use crate::schema::{
    credit_enhancements as ce, forest_mortgages as fm, lots, parties, pledges as pl,
};
use rules::{Enterprise, Figures, Loan};

/// One row of the report: the whole, or one county, bank or right type.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cell {
    /// `total`, a county code, a bank's party id, or a right type (EM, EU, CA, CS, FOREST).
    pub key: String,
    pub label: String,
    pub outstanding_count: i64,
    /// Secured amount outstanding at the month's end (余额).
    pub outstanding_amount: Dec,
    pub new_count: i64,
    /// Secured amount of loans registered in the month (新增).
    pub new_amount: Dec,
    /// Distinct borrowers with an outstanding loan.
    pub borrowers: i64,
    /// Outstanding loans carrying a guarantee or insurance.
    pub enhanced_count: i64,
    pub enhanced_amount: Dec,
    /// enhanced_count ÷ outstanding_count, percent.
    pub enhanced_share_percent: Option<Dec>,
    /// Enterprises registered by the month's end (total and counties only).
    pub enterprises: Option<i64>,
    pub covered_enterprises: Option<i64>,
    /// covered ÷ enterprises, percent (覆盖面).
    pub coverage_percent: Option<Dec>,
}

impl Cell {
    fn of(key: String, label: String, f: &Figures) -> Cell {
        Cell {
            key,
            label,
            outstanding_count: f.outstanding_count,
            outstanding_amount: Dec::money(f.outstanding_amount),
            new_count: f.new_count,
            new_amount: Dec::money(f.new_amount),
            borrowers: f.borrowers,
            enhanced_count: f.enhanced_count,
            enhanced_amount: Dec::money(f.enhanced_amount),
            enhanced_share_percent: f.enhanced_share_bp().map(Dec::money),
            enterprises: f.enterprises,
            covered_enterprises: f.covered_enterprises,
            coverage_percent: f.coverage_bp().map(Dec::money),
        }
    }
}

/// The monthly green-finance report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    /// YYYY-MM
    pub month: String,
    /// The month's last day: outstanding figures are as of its end.
    pub as_of: NaiveDate,
    pub total: Cell,
    pub by_county: Vec<Cell>,
    pub by_bank: Vec<Cell>,
    pub by_right_type: Vec<Cell>,
    /// Financing requests posted, taken and funded, the matching rate and the green-industry
    /// breakdown: not yet reported (null) until the financing requests are part of the registry.
    pub financing_requests: Option<serde_json::Value>,
}

struct Party {
    kind: String,
    region: String,
    name: String,
    created: NaiveDate,
}

/// Loads the facts and computes the month (`first..=last`).
pub fn report(
    conn: &mut DbConn,
    month: &str,
    first: NaiveDate,
    last: NaiveDate,
) -> ApiResult<Report> {
    let people: HashMap<i64, Party> = parties::table
        .select((
            parties::id,
            parties::kind,
            parties::region_code,
            parties::name_zh,
            parties::created_at,
        ))
        .load::<(i64, String, String, String, NaiveDateTime)>(conn)?
        .into_iter()
        .map(|(id, kind, region, name, created)| {
            (
                id,
                Party {
                    kind,
                    region,
                    name,
                    created: created.date(),
                },
            )
        })
        .collect();
    let enhanced: HashSet<(String, i64)> = ce::table
        .select((ce::encumbrance_kind, ce::encumbrance_id))
        .load::<(String, i64)>(conn)?
        .into_iter()
        .collect();
    let right_of_lot: HashMap<i64, String> = lots::table
        .select((lots::id, lots::right_type))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let county_of = |id: i64| {
        people
            .get(&id)
            .map(|p| p.region.clone())
            .unwrap_or_default()
    };
    let is_enterprise = |id: i64| people.get(&id).is_some_and(|p| p.kind == "enterprise");
    let mut loans = Vec::new();
    type Fact = (
        i64,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<NaiveDateTime>,
        String,
        NaiveDateTime,
    );
    let pledges: Vec<Fact> = pl::table
        .filter(pl::registered_at.is_not_null())
        .select((
            pl::id,
            pl::pledgor_id,
            pl::lender_id,
            pl::lot_id,
            pl::secured_amount,
            pl::registered_at,
            pl::status,
            pl::updated_at,
        ))
        .load(conn)?;
    for (id, borrower, bank, lot, amount, registered, status, updated) in pledges {
        let Some(registered) = registered else {
            continue;
        };
        loans.push(Loan {
            borrower,
            borrower_is_enterprise: is_enterprise(borrower),
            county: county_of(borrower),
            bank,
            right_type: right_of_lot.get(&lot).cloned().unwrap_or_default(),
            amount: amount.unwrap_or(0),
            registered_on: registered.date(),
            // A pledge no longer live ended when its status last changed.
            ended_on: (!crate::collateral::LIVE.contains(&status.as_str())).then(|| updated.date()),
            enhanced: enhanced.contains(&("pledge".to_string(), id)),
        });
    }
    type MortgageFact = (
        i64,
        i64,
        i64,
        Option<i64>,
        Option<NaiveDateTime>,
        String,
        NaiveDateTime,
    );
    let mortgages: Vec<MortgageFact> = fm::table
        .filter(fm::official_registered_at.is_not_null())
        .select((
            fm::id,
            fm::mortgagor_id,
            fm::lender_id,
            fm::secured_amount,
            fm::official_registered_at,
            fm::status,
            fm::updated_at,
        ))
        .load(conn)?;
    for (id, borrower, bank, amount, registered, status, updated) in mortgages {
        let Some(registered) = registered else {
            continue;
        };
        // Entered but not yet confirmed by an operator: not a registered loan yet.
        if matches!(
            status.as_str(),
            "pending_confirmation" | "pending_official_registration"
        ) {
            continue;
        }
        loans.push(Loan {
            borrower,
            borrower_is_enterprise: is_enterprise(borrower),
            county: county_of(borrower),
            bank,
            right_type: "FOREST".into(),
            amount: amount.unwrap_or(0),
            registered_on: registered.date(),
            ended_on: (!crate::forest::RANKED.contains(&status.as_str())).then(|| updated.date()),
            enhanced: enhanced.contains(&("forest_mortgage".to_string(), id)),
        });
    }
    let enterprises: Vec<Enterprise> = people
        .iter()
        .filter(|(_, p)| p.kind == "enterprise")
        .map(|(id, p)| Enterprise {
            id: *id,
            county: p.region.clone(),
            registered_on: p.created,
        })
        .collect();
    let m = rules::month(&loans, &enterprises, first, last);
    let county_label = |c: &str| {
        crate::kernel::regions::fujian_name(c)
            .unwrap_or(c)
            .to_string()
    };
    let bank_label = |id: i64| people.get(&id).map(|p| p.name.clone()).unwrap_or_default();
    let right_label = |r: &str| {
        match r {
            "EM" => "排污权 emission",
            "EU" => "用能权 energy use",
            "CA" => "碳排放权 allowance",
            "CS" => "林业碳汇 forestry sink",
            "FOREST" => "林权抵押 forest mortgage",
            _ => r,
        }
        .to_string()
    };
    let cells = |map: BTreeMap<String, Figures>, label: &dyn Fn(&str) -> String| -> Vec<Cell> {
        map.iter()
            .map(|(k, f)| Cell::of(k.clone(), label(k), f))
            .collect()
    };
    Ok(Report {
        month: month.to_string(),
        as_of: last,
        total: Cell::of("total".into(), "南平 Nanping".into(), &m.total),
        by_county: cells(m.by_county, &county_label),
        by_bank: m
            .by_bank
            .iter()
            .map(|(k, f)| Cell::of(k.to_string(), bank_label(*k), f))
            .collect(),
        by_right_type: cells(m.by_right_type, &right_label),
        // FINANCING REQUESTS: posted, taken, funded, matching rate and green tag come from the
        // financing requests' tables once they are merged; fill this from them.
        financing_requests: None,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The report as one CSV table: a row for the whole, then one per county, bank and right type.
pub fn csv(r: &Report) -> String {
    let mut out = String::from("month,dimension,key,label,outstanding_count,outstanding_amount,new_count,new_amount,borrowers,enhanced_count,enhanced_amount,enhanced_share_percent,enterprises,covered_enterprises,coverage_percent\n");
    let opt = |v: Option<String>| v.unwrap_or_default();
    let rows = std::iter::once(("total", &r.total))
        .chain(r.by_county.iter().map(|c| ("county", c)))
        .chain(r.by_bank.iter().map(|c| ("bank", c)))
        .chain(r.by_right_type.iter().map(|c| ("right_type", c)));
    for (dim, c) in rows {
        let _ = writeln!(
            out,
            "{},{dim},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.month,
            csv_field(&c.key),
            csv_field(&c.label),
            c.outstanding_count,
            c.outstanding_amount.0,
            c.new_count,
            c.new_amount.0,
            c.borrowers,
            c.enhanced_count,
            c.enhanced_amount.0,
            opt(c.enhanced_share_percent.as_ref().map(|d| d.0.to_string())),
            opt(c.enterprises.map(|v| v.to_string())),
            opt(c.covered_enterprises.map(|v| v.to_string())),
            opt(c.coverage_percent.as_ref().map(|d| d.0.to_string())),
        );
    }
    out
}

/// The charts of the report: (file stem, SVG).
pub const CHARTS: [&str; 3] = ["by_county", "by_bank", "by_right_type"];

pub fn chart(r: &Report, which: &str) -> Option<Result<String, String>> {
    let (title, cells) = match which {
        "by_county" => ("by county 按区县", &r.by_county),
        "by_bank" => ("by bank 按银行", &r.by_bank),
        "by_right_type" => ("by right type 按权利类型", &r.by_right_type),
        _ => return None,
    };
    let bars: Vec<(String, i64)> = cells
        .iter()
        .map(|c| {
            let fen =
                crate::kernel::amount::money_to_fen(c.outstanding_amount.0, true).unwrap_or(0);
            (c.label.clone(), fen)
        })
        .collect();
    Some(chart::bars(
        &format!("{} — outstanding secured 担保余额 {title}", r.month),
        &bars,
    ))
}
