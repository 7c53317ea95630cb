//! Courts come first (pure). A judicial freeze reaches any quantity of a holding: the available
//! quantity moves into the holding's `frozen` bucket, and pledged quantity stays pledged and is
//! frozen as well (the freeze's `pledged` part). What those do not cover it takes from the holder's
//! own open listings, newest first (their unsold quantity moves from `listed` to `frozen`; a listing
//! left with nothing is withdrawn), and then from quantity in the holder's pending transfers and
//! trades awaiting payment, newest first: that quantity stays where it is, held by the freeze (its
//! `pending` part), and the transfer or trade cannot settle while the freeze stands; if it ends
//! otherwise (cancelled, rejected, expired) the held quantity comes back to the holder still
//! frozen. Last, it takes back quantity on the pledgee's open disposal listings and auctions of the
//! holder's pledged quantity (see [`from_disposal`]): it returns under the pledge and stays frozen
//! there. While a freeze stands, the ledger refuses every movement of frozen quantity except by a
//! court's order, and every movement out of `pledged` that would leave less pledged quantity than
//! the freezes rest on (disposal, transfer: see `rights::ledger`); pledged quantity that a release
//! or a lapse frees goes to `frozen` first (see [`leaving_to_frozen`]).
//!
//! Quantities are stored units (scale 4).

/// How a new freeze of a quantity reaches a holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reach {
    /// Taken from `available` into `frozen`.
    pub from_available: i64,
    /// Pledged quantity that stays pledged and is frozen as well.
    pub from_pledged: i64,
}

/// Why a freeze cannot be recorded as ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortfall {
    /// What the freeze could reach: available plus pledged quantity no freeze rests on yet.
    pub reachable: i64,
}

/// A freeze of `quantity` takes what is available first (so that nothing else can take it), then
/// pledged quantity that no earlier freeze rests on. `frozen_pledged` is what active freezes
/// already rest on in the pledged bucket.
pub fn reach(
    available: i64,
    pledged: i64,
    frozen_pledged: i64,
    quantity: i64,
) -> Result<Reach, Shortfall> {
    let free_pledged = (pledged - frozen_pledged).max(0);
    let from_available = quantity.min(available.max(0));
    let from_pledged = quantity - from_available;
    if from_pledged > free_pledged {
        return Err(Shortfall {
            reachable: available.max(0) + free_pledged,
        });
    }
    Ok(Reach {
        from_available,
        from_pledged,
    })
}

/// What a freeze of `quantity` takes from the holder's own listings (`listed`, unsold): only what
/// available quantity and pledged quantity no earlier freeze rests on do not cover, and at most
/// what is listed (any further shortfall is reported by [`reach`]).
pub fn from_listed(
    available: i64,
    pledged: i64,
    frozen_pledged: i64,
    listed: i64,
    quantity: i64,
) -> i64 {
    let reachable = available.max(0) + (pledged - frozen_pledged).max(0);
    (quantity - reachable).clamp(0, listed.max(0))
}

/// What a freeze of `quantity` holds in the holder's pending transfers and trades awaiting
/// payment (`pending`, not yet held by another freeze): only what available, free pledged and
/// listed quantity do not cover, and at most what is pending.
pub fn from_pending(
    available: i64,
    pledged: i64,
    frozen_pledged: i64,
    listed: i64,
    pending: i64,
    quantity: i64,
) -> i64 {
    let reachable = available.max(0) + (pledged - frozen_pledged).max(0) + listed.max(0);
    (quantity - reachable).clamp(0, pending.max(0))
}

/// What a freeze of `quantity` takes back from the pledgee's open disposal offers (listings and
/// auctions) of the holder's pledged quantity (`offered`, unsold): only what available, free
/// pledged, listed and pending quantity do not cover, and at most what is offered. It comes last:
/// the other kinds are the holder's own dealings, while a disposal offer is the pledgee's
/// enforcement under way, with buyers and bidders relying on it; the court reaches it only when
/// nothing else satisfies the order. What it takes returns to `pledged` (the pledge keeps its claim)
/// and the freeze rests on it there.
pub fn from_disposal(
    available: i64,
    pledged: i64,
    frozen_pledged: i64,
    listed: i64,
    pending: i64,
    offered: i64,
    quantity: i64,
) -> i64 {
    let reachable =
        available.max(0) + (pledged - frozen_pledged).max(0) + listed.max(0) + pending.max(0);
    (quantity - reachable).clamp(0, offered.max(0))
}

/// `leaving` units leave the holding's `pledged` bucket other than by a sale (the lender releases
/// them, or the pledge's registration lapses) while freezes rest on `frozen_pledged` of that
/// bucket. A freeze rests on the holding's pledged quantity as a whole, not on one pledge, so the
/// court is served first: the leaving units go to `frozen` up to what the freezes rest on (a
/// release ends the lender's claim, not the court's), and only the rest returns to `available`.
/// The freezes' pledged part shrinks by as much, so they no longer block the other pledges of the
/// holding for it. Returns the part that goes to `frozen`.
pub fn leaving_to_frozen(frozen_pledged: i64, leaving: i64) -> i64 {
    frozen_pledged.clamp(0, leaving.max(0))
}

/// Spreads `amount` over `parts` in order (oldest freeze first: the first court to freeze is
/// served first), each taking at most its own part. Returns what each part gives; the total is
/// less than `amount` only when the parts do not cover it.
pub fn oldest_first(parts: &[i64], amount: i64) -> Vec<i64> {
    let mut left = amount.max(0);
    parts
        .iter()
        .map(|p| {
            let take = (*p).clamp(0, left.max(0));
            left -= take;
            take
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_freeze_takes_available_first_then_pledged() {
        // 100 available, 300 pledged: a freeze of 250 takes the 100 and rests on 150 pledged.
        assert_eq!(
            reach(100, 300, 0, 250),
            Ok(Reach {
                from_available: 100,
                from_pledged: 150
            })
        );
        // Wholly pledged: the freeze rests on the pledged quantity (the 409 case).
        assert_eq!(
            reach(0, 100, 0, 100),
            Ok(Reach {
                from_available: 0,
                from_pledged: 100
            })
        );
        // A second freeze cannot rest on what the first already holds.
        assert_eq!(reach(0, 100, 80, 30), Err(Shortfall { reachable: 20 }));
        assert_eq!(reach(10, 100, 80, 30).map(|r| r.from_pledged), Ok(20));
    }

    #[test]
    fn listed_quantity_is_taken_only_past_available_and_pledged() {
        assert_eq!(from_listed(100, 0, 0, 300, 50), 0);
        assert_eq!(from_listed(100, 50, 0, 300, 250), 100);
        assert_eq!(from_listed(100, 50, 50, 300, 250), 150);
        assert_eq!(from_listed(0, 0, 0, 30, 100), 30);
    }

    #[test]
    fn pending_quantity_is_held_only_past_everything_else() {
        assert_eq!(from_pending(100, 0, 0, 0, 50, 80), 0);
        assert_eq!(from_pending(100, 50, 0, 20, 50, 200), 30);
        assert_eq!(from_pending(0, 0, 0, 0, 50, 80), 50);
        assert_eq!(from_pending(0, 50, 50, 0, 40, 30), 30);
    }

    #[test]
    fn a_disposal_offer_is_reached_only_past_everything_else() {
        // 10 available, 20 pledged (5 frozen), 3 listed, 4 pending: 32 reachable before offers.
        assert_eq!(from_disposal(10, 20, 5, 3, 4, 50, 30), 0);
        assert_eq!(from_disposal(10, 20, 5, 3, 4, 50, 40), 8);
        assert_eq!(from_disposal(10, 20, 5, 3, 4, 6, 40), 6);
        assert_eq!(from_disposal(0, 0, 0, 0, 0, 100, 100), 100);
    }

    #[test]
    fn quantity_leaving_a_pledge_goes_to_the_court_first() {
        // Two pledges of 60 and 40; a freeze rests on 70 of the 100 pledged.
        assert_eq!(leaving_to_frozen(70, 60), 60);
        assert_eq!(leaving_to_frozen(70, 40), 40);
        assert_eq!(leaving_to_frozen(0, 60), 0);
        // Pledges of 10 and 10, a freeze on 10: the first released goes to the court, and the
        // freeze then rests on nothing pledged, so the second is released freely.
        assert_eq!(leaving_to_frozen(10, 10), 10);
        assert_eq!(leaving_to_frozen(0, 10), 0);
        assert_eq!(leaving_to_frozen(5, 10), 5);
    }

    #[test]
    fn the_first_freeze_is_executed_first() {
        assert_eq!(oldest_first(&[30, 50, 20], 60), vec![30, 30, 0]);
        assert_eq!(oldest_first(&[30], 60), vec![30]);
        assert_eq!(oldest_first(&[], 60), Vec::<i64>::new());
    }

    proptest! {
        #[test]
        fn reach_never_takes_more_than_is_there(a in 0i64..1000, p in 0i64..1000, fp in 0i64..1000, q in 1i64..3000) {
            let fp = fp.min(p);
            match reach(a, p, fp, q) {
                Ok(r) => {
                    prop_assert_eq!(r.from_available + r.from_pledged, q);
                    prop_assert!(r.from_available <= a);
                    prop_assert!(fp + r.from_pledged <= p);
                    prop_assert!(r.from_pledged == 0 || r.from_available == a);
                }
                Err(s) => {
                    prop_assert!(q > s.reachable);
                    prop_assert_eq!(s.reachable, a + p - fp);
                }
            }
        }

        #[test]
        fn leaving_never_leaves_the_court_short(p in 0i64..1000, fp in 0i64..1000, leaving in 0i64..1000) {
            let (fp, leaving) = (fp.min(p), leaving.min(p));
            let to_frozen = leaving_to_frozen(fp, leaving);
            prop_assert!((0..=leaving).contains(&to_frozen));
            // What the freezes still rest on in `pledged` fits what stays pledged.
            prop_assert!(fp - to_frozen <= p - leaving);
            // Nothing leaves for `available` while a freeze rests on pledged quantity.
            prop_assert!(to_frozen == leaving || to_frozen == fp);
        }

        #[test]
        fn oldest_first_is_bounded(parts in proptest::collection::vec(0i64..100, 0..6), amount in 0i64..600) {
            let taken = oldest_first(&parts, amount);
            prop_assert_eq!(taken.len(), parts.len());
            prop_assert!(taken.iter().zip(&parts).all(|(t, p)| t <= p));
            let total: i64 = taken.iter().sum();
            prop_assert_eq!(total, amount.min(parts.iter().sum()));
        }
    }
}
