//! Serial-number ranges of forestry carbon-sink (CS) lots.
//!
//! A lot of issued quantity N has serials 1..=N, each held by exactly one owner (a party in a
//! state, or no party once retired/cancelled). The ledger stores this as inclusive ranges. These
//! functions are pure so that transfers, pledges, retirements and the integrity checker share one
//! implementation that can be property-tested without a database.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Who holds a range and in what state. `party` is None for retired/cancelled serials.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Owner {
    pub party: Option<i64>,
    pub state: String,
}

/// Serials `first..=last` of one lot, all held by `owner`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Range {
    pub first: i64,
    pub last: i64,
    pub owner: Owner,
}

impl Range {
    /// Number of serials in the range. Saturating so a malformed range read from storage yields a
    /// wrong number instead of a panic; every function here rejects such ranges before using it.
    #[allow(clippy::len_without_is_empty)] // a valid range always holds at least one serial
    pub fn len(&self) -> i64 {
        self.last.saturating_sub(self.first).saturating_add(1)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    #[error("holds only {held} serials, {wanted} requested")]
    Insufficient { held: i64, wanted: i64 },
    #[error("serials {first}-{last} are not held by the sender in that state")]
    NotHeld { first: i64, last: i64 },
    #[error("ranges overlap at serial {at}")]
    Overlap { at: i64 },
    #[error("serials {first}-{last} are missing")]
    Gap { first: i64, last: i64 },
    #[error("ranges cover {covered} serials, the lot issued {issued}")]
    Coverage { covered: i64, issued: i64 },
    #[error("quantity must be positive")]
    NotPositive,
    #[error("invalid range {first}-{last}")]
    Invalid { first: i64, last: i64 },
}

/// Moves `quantity` serials from owner `from` to owner `to`, lowest serials first, splitting a
/// range where needed, then merges adjacent ranges with the same owner. Returns the new full set
/// of ranges of the lot (sorted by first) and the ranges that moved (owned by `to`), or an error if
/// `from` holds fewer than `quantity`.
pub fn transfer(
    ranges: &[Range],
    from: &Owner,
    to: &Owner,
    quantity: i64,
) -> Result<(Vec<Range>, Vec<Range>), SerialError> {
    if quantity <= 0 {
        return Err(SerialError::NotPositive);
    }
    let ranges = prepare(ranges)?;
    let mut moves = Vec::new();
    let mut remaining = quantity;
    for r in ranges.iter().filter(|r| r.owner == *from) {
        if remaining == 0 {
            break;
        }
        let take = remaining.min(r.len());
        moves.push((r.first, r.first + take - 1));
        remaining -= take;
    }
    if remaining > 0 {
        // The loop only stops early once satisfied, so here it has taken everything `from` holds.
        return Err(SerialError::Insufficient {
            held: quantity - remaining,
            wanted: quantity,
        });
    }
    Ok(apply(&ranges, &moves, to))
}

/// Like [`transfer`] but moves exactly the named serial ranges (inclusive `(first, last)` pairs),
/// each of which must lie wholly inside serials held by `from`.
pub fn transfer_named(
    ranges: &[Range],
    from: &Owner,
    to: &Owner,
    named: &[(i64, i64)],
) -> Result<(Vec<Range>, Vec<Range>), SerialError> {
    if named.is_empty() {
        return Err(SerialError::NotPositive);
    }
    let ranges = prepare(ranges)?;
    let mut moves = named.to_vec();
    moves.sort_unstable();
    for &(first, last) in &moves {
        check_valid(first, last)?;
    }
    if let Some(w) = moves.windows(2).find(|w| w[1].0 <= w[0].1) {
        // Naming a serial twice would count it twice in the moved quantity.
        return Err(SerialError::Overlap { at: w[1].0 });
    }
    for &(first, last) in &moves {
        // `ranges` is normalized, so serials that `from` holds contiguously form a single range:
        // the only candidate is the first range that ends at or after `first`.
        let i = ranges.partition_point(|r| r.last < first);
        match ranges.get(i) {
            Some(r) if r.owner == *from && r.first <= first && last <= r.last => {}
            _ => return Err(SerialError::NotHeld { first, last }),
        }
    }
    Ok(apply(&ranges, &moves, to))
}

/// Checks that `ranges` never overlap and exactly tile 1..=issued (no gap, no overlap, first
/// starts at 1). Ranges may be given in any order.
pub fn check_tiling(ranges: &[Range], issued: i64) -> Result<(), SerialError> {
    if issued <= 0 {
        return Err(SerialError::NotPositive);
    }
    let mut sorted: Vec<&Range> = ranges.iter().collect();
    sorted.sort_by_key(|r| (r.first, r.last));
    // Lowest serial not yet covered; everything below it is covered exactly once.
    let mut next = 1;
    for r in sorted {
        check_valid(r.first, r.last)?;
        match r.first.cmp(&next) {
            Ordering::Less => return Err(SerialError::Overlap { at: r.first }),
            Ordering::Greater => {
                return Err(SerialError::Gap {
                    first: next,
                    last: r.first - 1,
                })
            }
            Ordering::Equal => next = r.last + 1,
        }
    }
    let covered = next - 1;
    match covered.cmp(&issued) {
        Ordering::Less => Err(SerialError::Gap {
            first: next,
            last: issued,
        }),
        Ordering::Greater => Err(SerialError::Coverage { covered, issued }),
        Ordering::Equal => Ok(()),
    }
}

/// Total serials per owner.
pub fn totals(ranges: &[Range]) -> BTreeMap<Owner, i64> {
    let mut out = BTreeMap::new();
    for r in ranges {
        let total: &mut i64 = out.entry(r.owner.clone()).or_insert(0);
        *total = total.saturating_add(r.len());
    }
    out
}

/// Merges adjacent ranges with equal owner (input in any order; output sorted by first).
pub fn normalize(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort_by_key(|r| (r.first, r.last));
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(prev) if prev.owner == r.owner && prev.last.checked_add(1) == Some(r.first) => {
                prev.last = r.last;
            }
            _ => out.push(r),
        }
    }
    out
}

/// Printable serial: the lot's serial prefix, a dash and the unit number zero-padded to 8 digits,
/// e.g. `CS-350721-2026-0001-00000042`. Larger numbers are printed in full, never truncated.
pub fn format_serial(prefix: &str, n: i64) -> String {
    format!("{prefix}-{n:08}")
}

/// Serials start at 1. `i64::MAX` is excluded so that `last + 1`, the serial after a range,
/// never overflows.
fn check_valid(first: i64, last: i64) -> Result<(), SerialError> {
    if 1 <= first && first <= last && last < i64::MAX {
        Ok(())
    } else {
        Err(SerialError::Invalid { first, last })
    }
}

/// Validates stored ranges and returns them sorted and merged. Transfers must not trust the
/// stored set blindly: splitting overlapping ranges would silently duplicate serials.
fn prepare(ranges: &[Range]) -> Result<Vec<Range>, SerialError> {
    for r in ranges {
        check_valid(r.first, r.last)?;
    }
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| (r.first, r.last));
    if let Some(w) = sorted.windows(2).find(|w| w[1].first <= w[0].last) {
        return Err(SerialError::Overlap { at: w[1].first });
    }
    Ok(normalize(sorted))
}

/// Reassigns `moves` to `to`. Callers guarantee that `ranges` is sorted and that `moves` is sorted,
/// disjoint, and each move lies inside a single range (owned by the sender).
fn apply(ranges: &[Range], moves: &[(i64, i64)], to: &Owner) -> (Vec<Range>, Vec<Range>) {
    let piece = |first, last, owner: &Owner| Range {
        first,
        last,
        owner: owner.clone(),
    };
    let mut out = Vec::with_capacity(ranges.len() + 2 * moves.len());
    let mut moved = Vec::with_capacity(moves.len());
    let mut pending = moves.iter().copied().peekable();
    for r in ranges {
        // Lowest serial of `r` not yet emitted.
        let mut cursor = r.first;
        while let Some((first, last)) = pending.next_if(|&(first, _)| first <= r.last) {
            if first > cursor {
                out.push(piece(cursor, first - 1, &r.owner));
            }
            out.push(piece(first, last, to));
            moved.push(piece(first, last, to));
            cursor = last + 1;
        }
        if cursor <= r.last {
            out.push(piece(cursor, r.last, &r.owner));
        }
    }
    debug_assert!(pending.next().is_none(), "move outside every range");
    (normalize(out), normalize(moved))
}

/// Ranges as the text stored on journal rows, transfers and pledges: "1-100,151-300"; None for none.
pub fn to_text(ranges: &[Range]) -> Option<String> {
    (!ranges.is_empty()).then(|| {
        ranges
            .iter()
            .map(|r| format!("{}-{}", r.first, r.last))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The (first, last) pairs of a text written by [`to_text`].
pub fn parse_text(text: &str) -> Vec<(i64, i64)> {
    text.split(',')
        .filter_map(|p| p.split_once('-'))
        .filter_map(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owner(party: Option<i64>, state: &str) -> Owner {
        Owner {
            party,
            state: state.to_string(),
        }
    }

    fn a() -> Owner {
        owner(Some(1), "available")
    }

    fn b() -> Owner {
        owner(Some(2), "available")
    }

    fn c() -> Owner {
        owner(Some(1), "pledged")
    }

    fn r(first: i64, last: i64, owner: &Owner) -> Range {
        Range {
            first,
            last,
            owner: owner.clone(),
        }
    }

    #[test]
    fn split_at_start_of_range() {
        let (out, moved) = transfer(&[r(1, 100, &a())], &a(), &b(), 10).unwrap();
        assert_eq!(out, vec![r(1, 10, &b()), r(11, 100, &a())]);
        assert_eq!(moved, vec![r(1, 10, &b())]);
    }

    #[test]
    fn split_in_middle_of_range() {
        let (out, moved) = transfer_named(&[r(1, 100, &a())], &a(), &b(), &[(40, 60)]).unwrap();
        assert_eq!(out, vec![r(1, 39, &a()), r(40, 60, &b()), r(61, 100, &a())]);
        assert_eq!(moved, vec![r(40, 60, &b())]);
    }

    #[test]
    fn split_at_end_of_range() {
        let (out, _) = transfer_named(&[r(1, 100, &a())], &a(), &b(), &[(91, 100)]).unwrap();
        assert_eq!(out, vec![r(1, 90, &a()), r(91, 100, &b())]);
    }

    #[test]
    fn quantity_spans_ranges_and_splits_the_last_one() {
        let start = [r(1, 10, &a()), r(11, 20, &b()), r(21, 30, &a())];
        let (out, moved) = transfer(&start, &a(), &c(), 15).unwrap();
        assert_eq!(
            out,
            vec![
                r(1, 10, &c()),
                r(11, 20, &b()),
                r(21, 25, &c()),
                r(26, 30, &a())
            ]
        );
        assert_eq!(moved, vec![r(1, 10, &c()), r(21, 25, &c())]);
    }

    #[test]
    fn whole_range_moves_and_merges_with_neighbour() {
        let (out, moved) = transfer(&[r(11, 20, &b()), r(1, 10, &a())], &a(), &b(), 10).unwrap();
        assert_eq!(out, vec![r(1, 20, &b())]);
        assert_eq!(moved, vec![r(1, 10, &b())]);
    }

    #[test]
    fn round_trip_restores_single_range() {
        let start = vec![r(1, 100, &a())];
        let (mid, _) = transfer(&start, &a(), &b(), 30).unwrap();
        let (end, _) = transfer(&mid, &b(), &a(), 30).unwrap();
        assert_eq!(end, start);
        let (mid, _) = transfer_named(&start, &a(), &b(), &[(5, 9), (50, 50)]).unwrap();
        let (end, _) = transfer_named(&mid, &b(), &a(), &[(50, 50), (5, 9)]).unwrap();
        assert_eq!(end, start);
    }

    #[test]
    fn insufficient_and_non_positive_quantities() {
        let start = [r(1, 60, &a()), r(61, 100, &b())];
        assert_eq!(
            transfer(&start, &a(), &b(), 61),
            Err(SerialError::Insufficient {
                held: 60,
                wanted: 61
            })
        );
        assert_eq!(
            transfer(&start, &c(), &b(), 1),
            Err(SerialError::Insufficient { held: 0, wanted: 1 })
        );
        assert_eq!(
            transfer(&start, &a(), &b(), 0),
            Err(SerialError::NotPositive)
        );
        assert_eq!(
            transfer(&start, &a(), &b(), -5),
            Err(SerialError::NotPositive)
        );
        assert_eq!(
            transfer_named(&start, &a(), &b(), &[]),
            Err(SerialError::NotPositive)
        );
    }

    #[test]
    fn named_ranges_must_be_held_by_sender() {
        let start = [
            r(1, 10, &a()),
            r(11, 20, &b()),
            r(21, 25, &a()),
            r(26, 30, &a()),
        ];
        // Across a range held by someone else.
        assert_eq!(
            transfer_named(&start, &a(), &c(), &[(5, 22)]),
            Err(SerialError::NotHeld { first: 5, last: 22 })
        );
        // Same party, wrong state.
        assert_eq!(
            transfer_named(&start, &c(), &a(), &[(1, 1)]),
            Err(SerialError::NotHeld { first: 1, last: 1 })
        );
        // Beyond the lot.
        assert_eq!(
            transfer_named(&start, &a(), &c(), &[(28, 31)]),
            Err(SerialError::NotHeld {
                first: 28,
                last: 31
            })
        );
        // Adjacent stored ranges of the sender count as one holding.
        let (out, moved) = transfer_named(&start, &a(), &c(), &[(24, 27), (2, 3)]).unwrap();
        assert_eq!(moved, vec![r(2, 3, &c()), r(24, 27, &c())]);
        assert_eq!(
            out,
            vec![
                r(1, 1, &a()),
                r(2, 3, &c()),
                r(4, 10, &a()),
                r(11, 20, &b()),
                r(21, 23, &a()),
                r(24, 27, &c()),
                r(28, 30, &a()),
            ]
        );
    }

    #[test]
    fn named_ranges_must_be_valid_and_disjoint() {
        let start = [r(1, 100, &a())];
        assert_eq!(
            transfer_named(&start, &a(), &b(), &[(10, 20), (20, 30)]),
            Err(SerialError::Overlap { at: 20 })
        );
        assert_eq!(
            transfer_named(&start, &a(), &b(), &[(9, 8)]),
            Err(SerialError::Invalid { first: 9, last: 8 })
        );
        assert_eq!(
            transfer_named(&start, &a(), &b(), &[(0, 8)]),
            Err(SerialError::Invalid { first: 0, last: 8 })
        );
    }

    #[test]
    fn transfer_rejects_corrupt_stored_ranges() {
        let overlapping = [r(1, 10, &a()), r(10, 20, &b())];
        assert_eq!(
            transfer(&overlapping, &a(), &b(), 1),
            Err(SerialError::Overlap { at: 10 })
        );
        let inverted = [r(5, 1, &a())];
        assert_eq!(
            transfer(&inverted, &a(), &b(), 1),
            Err(SerialError::Invalid { first: 5, last: 1 })
        );
    }

    #[test]
    fn tiling_errors() {
        let ok = [r(11, 20, &b()), r(1, 10, &a())];
        assert_eq!(check_tiling(&ok, 20), Ok(()));
        assert_eq!(
            check_tiling(&ok, 25),
            Err(SerialError::Gap {
                first: 21,
                last: 25
            })
        );
        assert_eq!(
            check_tiling(&ok, 15),
            Err(SerialError::Coverage {
                covered: 20,
                issued: 15
            })
        );
        assert_eq!(
            check_tiling(&[r(3, 20, &a())], 20),
            Err(SerialError::Gap { first: 1, last: 2 })
        );
        assert_eq!(
            check_tiling(&[r(1, 5, &a()), r(8, 20, &a())], 20),
            Err(SerialError::Gap { first: 6, last: 7 })
        );
        assert_eq!(
            check_tiling(&[r(1, 5, &a()), r(4, 20, &b())], 20),
            Err(SerialError::Overlap { at: 4 })
        );
        assert_eq!(
            check_tiling(&[], 3),
            Err(SerialError::Gap { first: 1, last: 3 })
        );
        assert_eq!(check_tiling(&[], 0), Err(SerialError::NotPositive));
    }

    #[test]
    fn normalize_and_totals() {
        let retired = owner(None, "retired");
        let ranges = normalize(vec![
            r(6, 9, &a()),
            r(1, 5, &a()),
            r(12, 12, &retired),
            r(10, 11, &b()),
            r(13, 20, &retired),
        ]);
        assert_eq!(
            ranges,
            vec![r(1, 9, &a()), r(10, 11, &b()), r(12, 20, &retired)]
        );
        let t = totals(&ranges);
        assert_eq!(t.len(), 3);
        assert_eq!((t[&a()], t[&b()], t[&retired]), (9, 2, 9));
    }

    #[test]
    fn serial_format() {
        assert_eq!(
            format_serial("CS-350721-2026-0001", 42),
            "CS-350721-2026-0001-00000042"
        );
        assert_eq!(format_serial("X", 123_456_789), "X-123456789");
    }

    /// The five owners of the property tests; index 0 holds the whole lot at the start.
    fn owners() -> Vec<Owner> {
        vec![
            a(),
            b(),
            c(),
            owner(Some(3), "listed"),
            owner(None, "retired"),
        ]
    }

    /// One step: (from, to, quantity seed, named?, seeds choosing a named sub-range).
    type Step = (usize, usize, i64, bool, usize, i64);

    fn step() -> impl Strategy<Value = Step> {
        (
            0..5usize,
            0..5usize,
            0..20_000i64,
            any::<bool>(),
            0..64usize,
            0..20_000i64,
        )
    }

    proptest! {
        #[test]
        fn random_transfers_keep_the_lot_tiled(
            n in 1..=10_000i64,
            steps in prop::collection::vec(step(), 1..40),
        ) {
            let owners = owners();
            let mut ranges = vec![r(1, n, &owners[0])];
            // Reference model: owner index of each serial (serial s at index s - 1).
            let mut model = vec![0usize; usize::try_from(n).unwrap()];
            for (f, t, q_seed, named, pick, s_seed) in steps {
                let (from, to) = (&owners[f], &owners[t]);
                let before = totals(&ranges);
                let held = before.get(from).copied().unwrap_or(0);
                let held_ranges: Vec<&Range> = ranges.iter().filter(|x| x.owner == *from).collect();
                let result = if named && !held_ranges.is_empty() {
                    // A random sub-range of a random range held by the sender.
                    let h = held_ranges[pick % held_ranges.len()];
                    let first = h.first + s_seed % h.len();
                    let last = first + q_seed % (h.last - first + 1);
                    for s in first..=last {
                        model[usize::try_from(s - 1).unwrap()] = t;
                    }
                    transfer_named(&ranges, from, to, &[(first, last)])
                } else {
                    // Up to one more than held, so Insufficient is exercised too.
                    let q = 1 + q_seed % (held + 1);
                    if q <= held {
                        let mut left = q;
                        for o in model.iter_mut().filter(|o| **o == f) {
                            if left == 0 {
                                break;
                            }
                            *o = t;
                            left -= 1;
                        }
                    }
                    transfer(&ranges, from, to, q)
                };
                let (next, moved) = match result {
                    Ok(ok) => ok,
                    Err(e) => {
                        prop_assert!(!named || held_ranges.is_empty());
                        prop_assert_eq!(e, SerialError::Insufficient { held, wanted: 1 + q_seed % (held + 1) });
                        continue;
                    }
                };
                prop_assert_eq!(check_tiling(&next, n), Ok(()));
                let after = totals(&next);
                prop_assert_eq!(after.values().sum::<i64>(), n);
                prop_assert!(next.windows(2).all(|w| w[0].owner != w[1].owner));
                prop_assert!(moved.iter().all(|m| m.owner == *to));
                let q: i64 = moved.iter().map(Range::len).sum();
                prop_assert!(q > 0);
                for (i, o) in owners.iter().enumerate() {
                    let mut expected = before.get(o).copied().unwrap_or(0);
                    if i == f { expected -= q; }
                    if i == t { expected += q; }
                    prop_assert_eq!(after.get(o).copied().unwrap_or(0), expected, "owner {}", i);
                }
                for x in &next {
                    let want = owners.iter().position(|o| *o == x.owner).unwrap();
                    for s in x.first..=x.last {
                        prop_assert_eq!(model[usize::try_from(s - 1).unwrap()], want, "serial {}", s);
                    }
                }
                ranges = next;
            }
        }
    }
}
