//! Which parties take part in new acts. A party whose registration recorded a merger (合并), a
//! split (分立), a dissolution or any other end no longer acts in the registry: it sends and
//! receives nothing new, lists, bids, buys, pledges and mortgages nothing. What it holds stays
//! visible, and what already burdens or binds its holdings still runs its course: a court's
//! freeze, lift or forced transfer, the forced transfer that hands its holdings to its successor,
//! a cancellation, its pledgee's release, lapse or enforcement, and the unwinding of offers and
//! transfers it made before it ended. None of those is the ended party transacting.

use crate::rights::Bucket;

/// The status of a party that still takes part in new acts. Every other status (`merged`,
/// `split`, `dissolved`, `deregistered`, …) has ended the party: the registry refuses unknown
/// statuses rather than guess that they may still act.
pub const ACTIVE: &str = "active";

/// True when a party of this status may take part in a new act.
pub fn takes_part(status: &str) -> bool {
    status == ACTIVE
}

/// The causes by which a holding of an ended party still leaves it: orders that act on what it
/// holds (a court's forced transfer; the forced transfer that hands a merged or split party's
/// holdings to its successor, which two operators decide).
const SUCCESSION_CAUSES: [&str; 2] = ["forced_transfer", "court_forced_transfer"];

/// Whether a movement of quantity may touch a party that has ended, given which side of the
/// movement it is on. Nothing reaches it from elsewhere (no issuance, transfer, trade or forced
/// transfer to it). Its available quantity is committed to no new act (no listing, auction offer,
/// transfer request, pledge, retirement or registered transfer); it leaves only under a court's
/// freeze, by a cancellation, or by a forced transfer. Everything else moves what was already
/// committed before it ended (a pledge's release, lapse or disposal, an offer withdrawn or a
/// trade settled, a transfer settled or unwound, a freeze lifted) and goes on.
pub fn ended_party_may_move(
    ended_sends: bool,
    ended_receives: bool,
    from: Bucket,
    to: Bucket,
    cause: &str,
) -> bool {
    if ended_receives && !ended_sends {
        return false;
    }
    if ended_sends && from == Bucket::Available {
        return matches!(to, Bucket::Frozen | Bucket::Cancelled)
            || SUCCESSION_CAUSES.contains(&cause);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use Bucket as B;

    #[test]
    fn only_an_active_party_takes_part() {
        assert!(takes_part("active"));
        for ended in ["merged", "split", "dissolved", "deregistered", "Active", ""] {
            assert!(!takes_part(ended), "{ended}");
        }
    }

    #[test]
    fn nothing_new_reaches_an_ended_party() {
        // Issuance, a transfer or trade settling to it, a forced transfer to it.
        assert!(!ended_party_may_move(
            false,
            true,
            B::Issued,
            B::Available,
            "issuance"
        ));
        assert!(!ended_party_may_move(
            false,
            true,
            B::InTransfer,
            B::Available,
            "transfer_settle"
        ));
        assert!(!ended_party_may_move(
            false,
            true,
            B::Available,
            B::Available,
            "forced_transfer"
        ));
    }

    #[test]
    fn an_ended_party_commits_nothing_new() {
        for (to, cause) in [
            (B::Listed, "listing"),
            (B::Listed, "auction"),
            (B::InTransfer, "transfer_request"),
            (B::Pledged, "pledge"),
            (B::Retired, "retirement"),
            (B::Available, "transfer_registered"),
        ] {
            let same = matches!(to, B::Listed | B::InTransfer | B::Pledged);
            assert!(
                !ended_party_may_move(true, same, B::Available, to, cause),
                "{cause}"
            );
        }
    }

    #[test]
    fn what_binds_its_holdings_runs_its_course() {
        // A court's freeze, a cancellation, the successor's forced transfer.
        assert!(ended_party_may_move(
            true,
            true,
            B::Available,
            B::Frozen,
            "judicial_freeze"
        ));
        assert!(ended_party_may_move(
            true,
            false,
            B::Available,
            B::Cancelled,
            "cancellation"
        ));
        assert!(ended_party_may_move(
            true,
            false,
            B::Available,
            B::Available,
            "forced_transfer"
        ));
        assert!(ended_party_may_move(
            true,
            false,
            B::Frozen,
            B::Available,
            "court_forced_transfer"
        ));
        // The pledgee releases, lets lapse or disposes; old offers and transfers end.
        assert!(ended_party_may_move(
            true,
            true,
            B::Pledged,
            B::Available,
            "pledge_release"
        ));
        assert!(ended_party_may_move(
            true,
            true,
            B::Pledged,
            B::Listed,
            "pledge_disposal_offer"
        ));
        assert!(ended_party_may_move(
            true,
            false,
            B::Pledged,
            B::Available,
            "pledge_disposal"
        ));
        assert!(ended_party_may_move(
            true,
            true,
            B::Listed,
            B::Available,
            "listing_withdrawn"
        ));
        assert!(ended_party_may_move(
            true,
            true,
            B::InTransfer,
            B::Available,
            "transfer_unwind"
        ));
        assert!(ended_party_may_move(
            true,
            true,
            B::Frozen,
            B::Available,
            "judicial_unfreeze"
        ));
    }
}
