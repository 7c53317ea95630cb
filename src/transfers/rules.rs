//! The transfer lifecycle (docs/design.md §4), as pure rules: requested → (receiver confirms) →
//! (operator approves, where the right type requires it) → settled | rejected | cancelled.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Quantity frozen in the sender's in-transfer bucket, awaiting the receiver.
    Requested,
    /// The receiver agreed; awaiting an operator's approval.
    Confirmed,
    Settled,
    Rejected,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Confirmed => "confirmed",
            Status::Settled => "settled",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Requested,
            Status::Confirmed,
            Status::Settled,
            Status::Rejected,
            Status::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Confirm,
    Approve,
    Reject,
    Cancel,
}

/// Who is acting on a transfer, relative to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Sender,
    Receiver,
    Operator,
    Other,
}

/// The status an action leads to, or why it is refused: `Err(true)` means the actor may not take
/// this action at all (answered as not found / forbidden), `Err(false)` that the transfer is not in
/// a state that allows it (a 409).
pub fn next(
    status: Status,
    action: Action,
    actor: Actor,
    requires_approval: bool,
) -> Result<Status, bool> {
    use {Action as A, Actor as W, Status as S};
    let allowed = matches!(
        (action, actor),
        (A::Confirm, W::Receiver)
            | (A::Approve, W::Operator)
            | (A::Reject, W::Receiver | W::Operator)
            | (A::Cancel, W::Sender)
    );
    if !allowed {
        return Err(true);
    }
    match (status, action) {
        (S::Requested, A::Confirm) if requires_approval => Ok(S::Confirmed),
        (S::Requested, A::Confirm) => Ok(S::Settled),
        (S::Confirmed, A::Approve) => Ok(S::Settled),
        (S::Requested, A::Reject) if actor == W::Receiver => Ok(S::Rejected),
        (S::Requested | S::Confirmed, A::Reject) if actor == W::Operator => Ok(S::Rejected),
        (S::Requested | S::Confirmed, A::Cancel) => Ok(S::Cancelled),
        _ => Err(false),
    }
}

#[cfg(test)]
mod tests {
    use super::{next, Action as A, Actor as W, Status as S};

    #[test]
    fn lifecycle_with_and_without_approval() {
        assert_eq!(
            next(S::Requested, A::Confirm, W::Receiver, true),
            Ok(S::Confirmed)
        );
        assert_eq!(
            next(S::Confirmed, A::Approve, W::Operator, true),
            Ok(S::Settled)
        );
        assert_eq!(
            next(S::Requested, A::Confirm, W::Receiver, false),
            Ok(S::Settled)
        );
        assert_eq!(
            next(S::Requested, A::Cancel, W::Sender, true),
            Ok(S::Cancelled)
        );
        assert_eq!(
            next(S::Confirmed, A::Reject, W::Operator, true),
            Ok(S::Rejected)
        );
    }

    #[test]
    fn refusals() {
        // Only the receiver confirms, only an operator approves, only the sender cancels.
        assert_eq!(next(S::Requested, A::Confirm, W::Sender, true), Err(true));
        assert_eq!(next(S::Requested, A::Confirm, W::Operator, true), Err(true));
        assert_eq!(next(S::Confirmed, A::Approve, W::Receiver, true), Err(true));
        assert_eq!(next(S::Requested, A::Cancel, W::Receiver, true), Err(true));
        // Nothing moves a finished transfer, and approval needs the receiver's confirmation first.
        for s in [S::Settled, S::Rejected, S::Cancelled] {
            assert_eq!(next(s, A::Cancel, W::Sender, true), Err(false));
            assert_eq!(next(s, A::Reject, W::Operator, true), Err(false));
        }
        assert_eq!(
            next(S::Requested, A::Approve, W::Operator, true),
            Err(false)
        );
        assert_eq!(
            next(S::Confirmed, A::Confirm, W::Receiver, true),
            Err(false)
        );
        // A receiver who confirmed can no longer reject; the operator still can.
        assert_eq!(next(S::Confirmed, A::Reject, W::Receiver, true), Err(false));
    }
}
