//! The market's pure rules: who may buy, the auction's bid grid, extension and allocation, fees,
//! and the price series (OHLC, VWAP). No I/O; unit-tested here.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// 限定购买主体: who may buy from a listing or bid in an auction. Empty means anyone registered
/// that may hold rights.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restriction {
    /// Only parties registered in these regions: a county code, or an aggregate such as
    /// `350700` (all of Nanping).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Only parties that already hold this right type (and pollutant): dischargers with a permit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holders_only: bool,
}

impl Restriction {
    /// Why `party_region` (and whether the party holds the right already) is not admitted.
    pub fn refuses(&self, party_region: &str, holds_right: bool) -> Option<String> {
        if !self.regions.is_empty()
            && !self
                .regions
                .iter()
                .any(|r| party_region.starts_with(region_prefix(r)))
        {
            return Some(format!(
                "restricted to parties of {}",
                self.regions.join(", ")
            ));
        }
        if self.holders_only && !holds_right {
            return Some("restricted to parties already holding this right".into());
        }
        None
    }
}

/// A region code's prefix: trailing `00` pairs mark an aggregate (350700 → 3507, 350000 → 35).
pub fn region_prefix(code: &str) -> &str {
    let mut s = code;
    while s.len() > 2 && s.ends_with("00") {
        s = &s[..s.len() - 2];
    }
    s
}

/// The regions whose benchmark applies to a lot's region, most specific first: the county, its
/// prefecture, the province.
///
/// The aggregates are formed from the code's characters, never its bytes: the code may be a
/// caller's input, and a byte offset inside a multibyte character would panic.
pub fn benchmark_regions(code: &str) -> Vec<String> {
    let mut out = vec![code.to_string()];
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        let prefix = |n: usize| code.chars().take(n).collect::<String>();
        for aggregate in [format!("{}00", prefix(4)), format!("{}0000", prefix(2))] {
            if !out.contains(&aggregate) {
                out.push(aggregate);
            }
        }
    }
    out
}

/// A bid price is on the auction's grid: the reserve plus a whole number of increments.
pub fn on_grid(reserve: i64, increment: i64, price: i64) -> bool {
    price >= reserve && increment > 0 && (price - reserve) % increment == 0
}

/// A bid in the last `minutes` before the close moves the close to `minutes` after the bid.
pub fn extended_close(
    closes_at: NaiveDateTime,
    bid_at: NaiveDateTime,
    minutes: i32,
) -> Option<NaiveDateTime> {
    if minutes <= 0 {
        return None;
    }
    let window = TimeDelta::minutes(minutes.into());
    (closes_at - bid_at < window).then(|| bid_at + window)
}

/// A live bid at the close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bid {
    pub id: i64,
    pub price: i64,
    pub quantity: i64,
    pub placed_at: NaiveDateTime,
}

/// What one bid won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Award {
    pub bid_id: i64,
    pub quantity: i64,
    /// What the winner pays per unit.
    pub price: i64,
}

/// Multi-unit allocation (docs/design.md §4): best price first, then the earliest bid, then the
/// lower id; the last winner may get part of its bid. Each winner pays its own bid, or with
/// `uniform` the lowest winning price. Bids that win nothing are absent.
pub fn allocate(bids: &[Bid], offered: i64, uniform: bool) -> Vec<Award> {
    let mut order: Vec<Bid> = bids.to_vec();
    order.sort_by(|a, b| {
        b.price
            .cmp(&a.price)
            .then(a.placed_at.cmp(&b.placed_at))
            .then(a.id.cmp(&b.id))
    });
    let mut left = offered;
    let mut awards = Vec::new();
    for b in order {
        if left <= 0 {
            break;
        }
        let q = b.quantity.min(left);
        left -= q;
        awards.push(Award {
            bid_id: b.id,
            quantity: q,
            price: b.price,
        });
    }
    if uniform {
        if let Some(clearing) = awards.iter().map(|a| a.price).min() {
            for a in &mut awards {
                a.price = clearing;
            }
        }
    }
    awards
}

/// An exchange fee: `amount × rate`, rounded once, half away from zero, to the fen.
pub fn fee_fen(amount_fen: i64, rate: Decimal) -> i64 {
    (Decimal::from(amount_fen) * rate)
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
        .unwrap_or(i64::MAX)
}

/// One settled trade as the price series sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub id: i64,
    pub date: NaiveDate,
    pub at: NaiveDateTime,
    pub price: i64,
    pub quantity: i64,
}

/// One day of trading: open, high, low, close prices, quantity traded and trade count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candle {
    pub date: NaiveDate,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
    pub trades: i64,
    pub vwap: i64,
}

/// Daily candles, in date order, from ticks in any order.
pub fn daily_candles(ticks: &[Tick]) -> Vec<Candle> {
    let mut sorted = ticks.to_vec();
    let mut out: Vec<Candle> = Vec::new();
    let mut day: Vec<Tick> = Vec::new();
    let flush = |day: &mut Vec<Tick>, out: &mut Vec<Candle>| {
        if let (Some(first), Some(last)) = (day.first(), day.last()) {
            out.push(Candle {
                date: first.date,
                open: first.price,
                high: day.iter().map(|t| t.price).max().unwrap_or(first.price),
                low: day.iter().map(|t| t.price).min().unwrap_or(first.price),
                close: last.price,
                volume: day.iter().map(|t| t.quantity).sum(),
                trades: day.len() as i64,
                vwap: vwap(day).unwrap_or(first.price),
            });
        }
        day.clear();
    };
    sorted.sort_by_key(|t| (t.date, t.at, t.id));
    for t in sorted {
        if day.first().is_some_and(|f| f.date != t.date) {
            flush(&mut day, &mut out);
        }
        day.push(t);
    }
    flush(&mut day, &mut out);
    out
}

/// Volume-weighted average price Σ(price × quantity) ÷ Σ quantity, at the price scale, rounded
/// once half away from zero. `None` without volume.
pub fn vwap(ticks: &[Tick]) -> Option<i64> {
    let volume: i128 = ticks.iter().map(|t| i128::from(t.quantity)).sum();
    if volume <= 0 {
        return None;
    }
    let value: i128 = ticks
        .iter()
        .map(|t| i128::from(t.price) * i128::from(t.quantity))
        .sum();
    let (q, r) = (value / volume, value % volume);
    let rounded = if r * 2 >= volume { q + 1 } else { q };
    i64::try_from(rounded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 27)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .map(|t| t + TimeDelta::minutes(min))
            .expect("valid")
    }

    fn bid(id: i64, price: i64, quantity: i64, min: i64) -> Bid {
        Bid {
            id,
            price,
            quantity,
            placed_at: at(min),
        }
    }

    #[test]
    fn allocation_best_price_then_earliest_with_partial_last() {
        let bids = [
            bid(1, 1500, 40, 0),
            bid(2, 1600, 30, 5),
            bid(3, 1500, 50, 1),
            bid(4, 1420, 100, 2),
        ];
        let a = allocate(&bids, 100, false);
        assert_eq!(
            a,
            vec![
                Award {
                    bid_id: 2,
                    quantity: 30,
                    price: 1600
                },
                Award {
                    bid_id: 1,
                    quantity: 40,
                    price: 1500
                },
                Award {
                    bid_id: 3,
                    quantity: 30,
                    price: 1500
                },
            ]
        );
        let u = allocate(&bids, 100, true);
        assert!(u.iter().all(|a| a.price == 1500));
        assert_eq!(u.iter().map(|a| a.quantity).sum::<i64>(), 100);
    }

    #[test]
    fn allocation_ties_at_the_same_time_go_to_the_lower_id_and_undersubscription_sells_less() {
        let a = allocate(&[bid(9, 10, 5, 0), bid(8, 10, 5, 0)], 7, false);
        assert_eq!(a[0].bid_id, 8);
        assert_eq!((a[1].bid_id, a[1].quantity), (9, 2));
        let short = allocate(&[bid(1, 10, 5, 0)], 7, false);
        assert_eq!(short[0].quantity, 5);
        assert!(allocate(&[], 7, false).is_empty());
    }

    #[test]
    fn grid_and_extension() {
        assert!(on_grid(14_190_000, 100_000, 14_390_000));
        assert!(!on_grid(14_190_000, 100_000, 14_150_000));
        assert!(!on_grid(14_190_000, 100_000, 14_195_000));
        assert_eq!(extended_close(at(60), at(57), 5), Some(at(62)));
        assert_eq!(extended_close(at(60), at(50), 5), None);
        assert_eq!(extended_close(at(60), at(59), 0), None);
    }

    #[test]
    fn fees_round_half_up_to_the_fen() {
        assert_eq!(fee_fen(100_050, Decimal::new(5, 3)), 500); // 500.25 → 500
        assert_eq!(fee_fen(100_100, Decimal::new(5, 3)), 501); // 500.5 → 501
        assert_eq!(fee_fen(0, Decimal::new(5, 3)), 0);
    }

    #[test]
    fn candles_and_vwap_against_a_hand_computed_series() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 2).expect("date");
        let d2 = NaiveDate::from_ymd_opt(2026, 11, 3).expect("date");
        let t = |id, date: NaiveDate, min, price, quantity| Tick {
            id,
            date,
            at: date.and_hms_opt(9, 0, 0).expect("t") + TimeDelta::minutes(min),
            price,
            quantity,
        };
        let ticks = [
            t(3, d1, 30, 1_300, 20),
            t(1, d1, 0, 1_200, 10),
            t(2, d1, 10, 1_500, 10),
            t(4, d2, 0, 1_400, 5),
        ];
        let c = daily_candles(&ticks);
        assert_eq!(c.len(), 2);
        assert_eq!(
            (
                c[0].open,
                c[0].high,
                c[0].low,
                c[0].close,
                c[0].volume,
                c[0].trades
            ),
            (1_200, 1_500, 1_200, 1_300, 40, 3)
        );
        // (1200·10 + 1500·10 + 1300·20) / 40 = 53000 / 40 = 1325
        assert_eq!(c[0].vwap, 1_325);
        assert_eq!((c[1].open, c[1].close, c[1].volume), (1_400, 1_400, 5));
        // (53000 + 7000) / 45 = 1333.33… → 1333
        assert_eq!(vwap(&ticks), Some(1_333));
        assert_eq!(vwap(&[]), None);
    }

    #[test]
    fn restrictions_and_regions() {
        let r = Restriction {
            regions: vec!["350700".into()],
            holders_only: true,
        };
        assert!(r.refuses("350721", true).is_none());
        assert!(r.refuses("350100", true).is_some());
        assert!(r.refuses("350721", false).is_some());
        assert!(Restriction::default().refuses("110000", false).is_none());
        assert_eq!(region_prefix("350700"), "3507");
        assert_eq!(region_prefix("350000"), "35");
        assert_eq!(region_prefix("350702"), "350702");
        assert_eq!(
            benchmark_regions("350721"),
            vec!["350721", "350700", "350000"]
        );
        assert_eq!(benchmark_regions("350700"), vec!["350700", "350000"]);
        // Six bytes that are two characters: no aggregate, and no panic.
        assert_eq!(benchmark_regions("南平"), vec!["南平"]);
        assert_eq!(benchmark_regions("3é5é"), vec!["3é5é"]);
    }
}
