//! The reference model: the ledger and encumbrance rules in plain Rust, written from the rules,
//! not from the server's code. Quantities are whole units of the lot; time is a date.
//!
//! `Model::plan` takes an operation, applies its effect to the model as if the server accepted
//! it, and says what the rules expect: `Ok`, `Refuse`, or `Either` where the rules leave the
//! answer open (then the model follows the server). The caller keeps the old model when the
//! server refuses.

use std::collections::BTreeMap;

use chrono::{Days, Months, NaiveDate};

use super::ops::{Family, Op, Price, ENTERPRISES};

/// The case's clock starts here, and never moves more than `HORIZON_YEARS` past it.
pub const BASE: (i32, u32, u32) = (2026, 3, 1);
pub const HORIZON_YEARS: u32 = 8;
/// The benchmark paid-use price the world sets for SO2 in Nanping (元/吨·年), R4.
pub const FLOOR: i64 = 6300;
/// Enterprise S (index 3) is in a region flagged non-attainment for SO2.
pub const NON_ATTAINMENT_PARTY: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RightType {
    Em,
    Eu,
    Ca,
}

/// A lot of a case: issued to `holder` on the case's first day.
#[derive(Debug, Clone)]
pub struct LotSpec {
    pub right_type: RightType,
    /// Paid-use allocation (有偿取得) or free initial allocation.
    pub paid: bool,
    pub holder: usize,
    pub issued: i64,
    pub valid_to: (i32, u32, u32),
}

pub const LOTS: [LotSpec; 4] = [
    LotSpec {
        right_type: RightType::Em,
        paid: true,
        holder: 0,
        issued: 1000,
        valid_to: (2028, 12, 31),
    },
    LotSpec {
        right_type: RightType::Em,
        paid: false,
        holder: 1,
        issued: 1000,
        valid_to: (2027, 6, 30),
    },
    LotSpec {
        right_type: RightType::Eu,
        paid: true,
        holder: 0,
        issued: 1000,
        valid_to: (2030, 12, 31),
    },
    LotSpec {
        right_type: RightType::Ca,
        paid: false,
        holder: 2,
        issued: 1000,
        valid_to: (2027, 12, 31),
    },
];

pub fn date((y, m, d): (i32, u32, u32)) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Ok,
    Refuse,
    /// The rules leave it open; the model follows the server.
    Either,
}

impl Expect {
    fn and(self, other: Expect) -> Expect {
        match (self, other) {
            (Expect::Refuse, _) | (_, Expect::Refuse) => Expect::Refuse,
            (Expect::Either, _) | (_, Expect::Either) => Expect::Either,
            _ => Expect::Ok,
        }
    }
}

/// How the units of a holding that are not pledged may have been acquired (R11). Pledged units
/// are always paid. A holding of both kinds leaves open which units a later movement takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds {
    pub paid: bool,
    pub free: bool,
}

impl Kinds {
    const PAID: Kinds = Kinds {
        paid: true,
        free: false,
    };
    fn or(self, o: Kinds) -> Kinds {
        Kinds {
            paid: self.paid || o.paid,
            free: self.free || o.free,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Holding {
    pub available: i64,
    pub listed: i64,
    pub in_transfer: i64,
    pub pledged: i64,
    /// Frozen by a court out of available quantity.
    pub frozen: i64,
    /// Pledged quantity that a court froze as well (it stays pledged).
    pub frozen_pledged: i64,
    pub kinds: Kinds,
}

impl Holding {
    fn unpledged(&self) -> i64 {
        self.available + self.listed + self.in_transfer + self.frozen
    }
    /// After quantity left: an emptied holding has no acquisitions left.
    fn settle_kinds(&mut self) {
        if self.unpledged() == 0 {
            self.kinds = Kinds::default();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferStatus {
    Requested,
    Confirmed,
    Settled,
    Rejected,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Transfer {
    pub sid: i64,
    pub from: usize,
    pub to: usize,
    pub lot: usize,
    pub qty: i64,
    pub status: TransferStatus,
    /// How the receiver acquires the quantity.
    pub kinds: Kinds,
    /// EM: the years of the term sold (R3).
    pub years: Option<u8>,
    /// What active judicial freezes hold of it (it cannot settle while any is held).
    pub held: i64,
    /// Creation order among transfers and trades (a freeze holds the newest first).
    pub seq: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PledgeStatus {
    Applied,
    Registered,
    Released,
    Withdrawn,
    Enforcing,
    Disposed,
}

#[derive(Debug, Clone)]
pub struct Pledge {
    pub sid: i64,
    pub party: usize,
    pub lot: usize,
    pub qty: i64,
    pub status: PledgeStatus,
    pub amendment_code: String,
    /// Registration order (a court order takes the latest registered pledge first; a part split
    /// off by a court order keeps its pledge's registration).
    pub registered: u64,
}

#[derive(Debug, Clone)]
pub struct Freeze {
    pub sid: i64,
    pub party: usize,
    pub lot: usize,
    /// The part in the holding's `frozen` bucket.
    pub avail_part: i64,
    pub pledged_part: i64,
    /// What it holds in pending transfers and trades, step by step.
    pub pending: Vec<(Step, i64)>,
    pub lifted: bool,
}

/// A pending step a freeze may hold: a transfer or a trade (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Transfer(usize),
    Trade(usize),
}

#[derive(Debug, Clone)]
pub struct Listing {
    pub sid: i64,
    pub seller: usize,
    pub lot: usize,
    pub remaining: i64,
    /// The last day it is open.
    pub ends: NaiveDate,
    pub open: bool,
    /// EM: the years of the term sold with each unit (R3).
    pub years: Option<u8>,
}

#[derive(Debug, Clone)]
pub struct Trade {
    pub sid: i64,
    pub buyer: usize,
    pub seller: usize,
    pub lot: usize,
    pub qty: i64,
    pub opened: NaiveDate,
    pub settled: bool,
    pub years: Option<u8>,
    /// What active judicial freezes hold of it.
    pub held: i64,
    pub seq: u64,
}

/// The market's payment window the world sets (days); the model never lets a trade reach it.
pub const PAYMENT_WINDOW_DAYS: u64 = 90;

/// What the driver sends for an operation, in model terms (the driver maps indices to ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    SetClock(NaiveDate),
    Transfer {
        from: usize,
        to: usize,
        lot: usize,
        qty: i64,
        price: Option<i64>,
        years: Option<u8>,
    },
    Registered {
        from: usize,
        to: usize,
        lot: usize,
        qty: i64,
        price: Option<i64>,
        years: Option<u8>,
    },
    Confirm(usize),
    Approve(usize),
    Reject(usize, bool),
    Cancel(usize),
    Retire {
        party: usize,
        lot: usize,
        qty: i64,
    },
    PledgeApply {
        party: usize,
        lot: usize,
        qty: i64,
    },
    PledgeAccept {
        p: usize,
        maturity: NaiveDate,
        period_end: NaiveDate,
    },
    PledgeRelease {
        p: usize,
        qty: Option<i64>,
    },
    PledgeWithdraw(usize),
    Freeze {
        party: usize,
        lot: usize,
        qty: i64,
    },
    Lift(usize),
    Forced {
        from: usize,
        to: usize,
        lot: usize,
        qty: i64,
        /// The freeze the court's order executes (it names it by registration number).
        freeze: Option<usize>,
        /// `pledge_handling: discharged` (else the pledge follows the quantity).
        discharge: bool,
    },
    List {
        party: usize,
        lot: usize,
        qty: i64,
        price: i64,
        years: Option<u8>,
        ends: NaiveDate,
    },
    Withdraw(usize),
    Buy {
        l: usize,
        buyer: usize,
        qty: i64,
    },
    Pay(usize),
    Enforce(usize),
    Dispose {
        p: usize,
        buyer: usize,
        price: i64,
        years: Option<u8>,
    },
    /// (With `enforce`, the bank first declares default on pledge `p`.) A disposal listing of
    /// `list` of pledge `p` (EM: one year), then a freeze of `qty` of the pledgor's holding.
    FreezeDisposal {
        p: usize,
        enforce: bool,
        list: i64,
        price: i64,
        years: Option<u8>,
        party: usize,
        lot: usize,
        qty: i64,
    },
}

impl Call {
    /// The lot whose balances the call may change.
    pub fn lot(&self, m: &Model) -> Option<usize> {
        match *self {
            Call::SetClock(_) => None,
            Call::Transfer { lot, .. }
            | Call::Registered { lot, .. }
            | Call::Retire { lot, .. }
            | Call::PledgeApply { lot, .. }
            | Call::Freeze { lot, .. }
            | Call::Forced { lot, .. }
            | Call::List { lot, .. }
            | Call::FreezeDisposal { lot, .. } => Some(lot),
            Call::Withdraw(l) | Call::Buy { l, .. } => Some(m.listings[l].lot),
            Call::Pay(t) => Some(m.trades[t].lot),
            Call::Enforce(p) | Call::Dispose { p, .. } => Some(m.pledges[p].lot),
            Call::Confirm(t) | Call::Approve(t) | Call::Reject(t, _) | Call::Cancel(t) => {
                Some(m.transfers[t].lot)
            }
            Call::PledgeAccept { p, .. }
            | Call::PledgeRelease { p, .. }
            | Call::PledgeWithdraw(p) => Some(m.pledges[p].lot),
            Call::Lift(f) => Some(m.freezes[f].lot),
        }
    }
}

pub struct Plan {
    pub call: Call,
    pub expect: Expect,
    /// The known-defect families this call exercises.
    pub families: Vec<Family>,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub today: NaiveDate,
    pub retired: [i64; 4],
    pub holdings: BTreeMap<(usize, usize), Holding>,
    pub transfers: Vec<Transfer>,
    pub pledges: Vec<Pledge>,
    pub freezes: Vec<Freeze>,
    pub listings: Vec<Listing>,
    pub trades: Vec<Trade>,
    /// R11's "acquisition follows the quantity" is modelled; off, unpriced and forced receipts
    /// are of unknown kind (the pledge answer is left open).
    pub r11_follow: bool,
    /// The next creation / registration order number.
    pub seq: u64,
}

fn pct_of(base: i64, pct: u8) -> i64 {
    (base * pct as i64 / 100).max(1)
}

/// Whole years from `today` to the end of `valid_to` (R3): the two readings of "whole years to
/// valid_to" (the end of that day, or the day itself) give `(lo, hi)`; an answer between them is
/// left open.
pub fn remaining_years(today: NaiveDate, valid_to: NaiveDate) -> (i64, i64) {
    let count = |limit: NaiveDate| {
        let mut n = 0i64;
        while today
            .checked_add_months(Months::new(12 * (n as u32 + 1)))
            .is_some_and(|d| d <= limit)
        {
            n += 1;
        }
        n
    };
    let a = count(valid_to + Days::new(1));
    let b = count(valid_to);
    (a.min(b), a.max(b))
}

impl Model {
    pub fn new(r11_follow: bool) -> Model {
        let mut holdings = BTreeMap::new();
        for (i, l) in LOTS.iter().enumerate() {
            holdings.insert(
                (l.holder, i),
                Holding {
                    available: l.issued,
                    kinds: Kinds {
                        paid: l.paid,
                        free: !l.paid,
                    },
                    ..Holding::default()
                },
            );
        }
        Model {
            today: date(BASE),
            retired: [0; 4],
            holdings,
            transfers: Vec::new(),
            pledges: Vec::new(),
            freezes: Vec::new(),
            listings: Vec::new(),
            trades: Vec::new(),
            r11_follow,
            seq: 0,
        }
    }

    pub fn holding(&self, party: usize, lot: usize) -> Holding {
        self.holdings
            .get(&(party, lot))
            .cloned()
            .unwrap_or_default()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A pending step ended without settling; its quantity went back to the holder's
    /// `available`: what active freezes held of it moves on into `frozen`, and the holds end.
    fn step_ended(&mut self, step: Step, holder: usize, lot: usize) {
        for i in 0..self.freezes.len() {
            let taken: i64 = self.freezes[i]
                .pending
                .iter()
                .filter(|(s, _)| *s == step)
                .map(|(_, q)| *q)
                .sum();
            if taken == 0 || self.freezes[i].lifted {
                continue;
            }
            self.freezes[i].pending.retain(|(s, _)| *s != step);
            self.freezes[i].avail_part += taken;
            let h = self.h(holder, lot);
            h.available -= taken;
            h.frozen += taken;
        }
        match step {
            Step::Transfer(t) => self.transfers[t].held = 0,
            Step::Trade(t) => self.trades[t].held = 0,
        }
    }

    /// A court order takes `qty` of `from`'s pledged quantity of `lot`: from its live pledges, the
    /// latest registered first (a part split off later first among equals). The pledge follows
    /// the quantity to `to` (a pledge taken whole changes holder; one taken in part is split, the
    /// part a new pledge of `to`), or, discharged by the order, shrinks (released when emptied).
    fn court_takes_pledges(
        &mut self,
        from: usize,
        to: usize,
        lot: usize,
        qty: i64,
        discharge: bool,
    ) {
        let mut live: Vec<usize> = (0..self.pledges.len())
            .filter(|&i| {
                let p = &self.pledges[i];
                p.party == from
                    && p.lot == lot
                    && p.qty > 0
                    && matches!(p.status, PledgeStatus::Registered | PledgeStatus::Enforcing)
            })
            .collect();
        live.sort_by(|&a, &b| {
            (self.pledges[b].registered, b).cmp(&(self.pledges[a].registered, a))
        });
        let mut left = qty;
        for i in live {
            if left == 0 {
                break;
            }
            let take = self.pledges[i].qty.min(left);
            left -= take;
            if discharge {
                self.pledges[i].qty -= take;
                if self.pledges[i].qty == 0 {
                    self.pledges[i].status = PledgeStatus::Released;
                }
            } else if take == self.pledges[i].qty {
                self.pledges[i].party = to;
            } else {
                self.pledges[i].qty -= take;
                let part = Pledge {
                    sid: 0,
                    party: to,
                    qty: take,
                    ..self.pledges[i].clone()
                };
                self.pledges.push(part);
            }
        }
    }

    fn h(&mut self, party: usize, lot: usize) -> &mut Holding {
        self.holdings.entry((party, lot)).or_default()
    }

    fn expired(&self, lot: usize) -> bool {
        self.today > date(LOTS[lot].valid_to)
    }

    fn is_em(lot: usize) -> bool {
        LOTS[lot].right_type == RightType::Em
    }

    /// R11 for a pledge of an emission right out of available quantity.
    fn r11(&self, party: usize, lot: usize) -> Expect {
        if !Self::is_em(lot) {
            return Expect::Ok;
        }
        let k = self.holding(party, lot).kinds;
        match (k.paid, k.free) {
            (_, false) => Expect::Ok,
            (false, true) => Expect::Refuse,
            (true, true) => Expect::Either,
        }
    }

    /// The `i`-th party (cyclically) that holds something of `lot`, so that random operations
    /// mostly act on real holdings; any enterprise when nobody holds any.
    fn holder(&self, i: u8, lot: usize) -> usize {
        let holders: Vec<usize> = self
            .holdings
            .iter()
            .filter(|((_, l), h)| {
                *l == lot && h.available + h.listed + h.in_transfer + h.pledged + h.frozen > 0
            })
            .map(|((p, _), _)| *p)
            .collect();
        if holders.is_empty() {
            i as usize % ENTERPRISES as usize
        } else {
            holders[i as usize % holders.len()]
        }
    }

    /// `to` as an enterprise other than `from`.
    fn other_of(&self, from: usize, to: u8) -> (usize, usize) {
        let mut to = to as usize % ENTERPRISES as usize;
        if to == from {
            to = (to + 1) % ENTERPRISES as usize;
        }
        (from, to)
    }

    fn other(&self, from: u8, to: u8, lot: usize) -> (usize, usize) {
        let from = self.holder(from, lot);
        let mut to = to as usize % ENTERPRISES as usize;
        if to == from {
            to = (to + 1) % ENTERPRISES as usize;
        }
        (from, to)
    }

    /// A sale's price and years as sent, and what R3 and R4's floor say of them; the floor's
    /// family is `floor` (None where the server already enforces it).
    fn terms(
        &self,
        lot: usize,
        price: Price,
        years: u8,
        floor: Option<Family>,
    ) -> (Expect, Vec<Family>, Option<i64>, Option<u8>) {
        let em = Self::is_em(lot);
        let mut fams = Vec::new();
        let mut e = Expect::Ok;
        let price_sent = match (price, em) {
            (Price::Unpriced, _) => None,
            (Price::Below, true) => Some(FLOOR - 1),
            (Price::Floor, true) => Some(FLOOR),
            (Price::Above, true) => Some(FLOOR + 800),
            (Price::Below, false) => Some(5),
            (Price::Floor, false) => Some(20),
            (Price::Above, false) => Some(33),
        };
        let years_sent = (em && price_sent.is_some()).then_some(years);
        if let Some(y) = years_sent {
            let (lo, hi) = remaining_years(self.today, date(LOTS[lot].valid_to));
            let y = y as i64;
            if y > lo {
                fams.push(Family::Years);
                e = e.and(if y > hi {
                    Expect::Refuse
                } else {
                    Expect::Either
                });
            }
        }
        if em && price_sent.is_some_and(|p| p < FLOOR) {
            fams.extend(floor);
            e = e.and(Expect::Refuse);
        }
        (e, fams, price_sent, years_sent)
    }

    /// The checks of a sale or gift from available quantity (requested or registered): R6, the
    /// quantity, R3's years and R4's floor and regions. Returns the expectation, the families,
    /// the price and years sent, and how the receiver acquires the quantity.
    fn sale(
        &self,
        from: usize,
        to: usize,
        lot: usize,
        qty: i64,
        price: Price,
        years: u8,
    ) -> (Expect, Vec<Family>, Option<i64>, Option<u8>, Kinds) {
        let (mut e, mut fams, price_sent, years_sent) =
            self.terms(lot, price, years, Some(Family::R4Transfers));
        if self.expired(lot) {
            e = e.and(Expect::Refuse);
        }
        if qty > self.holding(from, lot).available {
            e = e.and(Expect::Refuse);
        }
        if Self::is_em(lot) && to == NON_ATTAINMENT_PARTY {
            fams.push(Family::R4Transfers);
            e = e.and(Expect::Refuse);
        }
        let kinds = if price_sent.is_some() {
            // A sale at or above the floor (or of a right without one) is a market purchase.
            Kinds::PAID
        } else {
            self.follow(from, lot)
        };
        (e, fams, price_sent, years_sent, kinds)
    }

    /// The kind a receiver gets of quantity that is not bought. Free units never become paid
    /// (R11). Whether paid units given away stay paid for the receiver ("the acquisition follows
    /// the quantity") or count as a free acquisition is left open, unless `r11_follow` asks for
    /// the former.
    fn follow(&self, from: usize, lot: usize) -> Kinds {
        let k = self.holding(from, lot).kinds;
        if self.r11_follow {
            k
        } else {
            Kinds {
                paid: k.paid,
                free: true,
            }
        }
    }

    /// Whether `years` still remain of `lot` today: `Ok`, `Refuse`, or `Either` where the two
    /// readings of "whole years left" differ. Every step that settles re-checks (R3): settling an
    /// agreement made before a year of the term passed is refused when its years no longer
    /// remain, and the agreement stays as it was.
    fn years_left(&self, lot: usize, years: Option<u8>) -> Expect {
        let Some(y) = years else { return Expect::Ok };
        let (lo, hi) = remaining_years(self.today, date(LOTS[lot].valid_to));
        let y = y as i64;
        if y <= lo {
            Expect::Ok
        } else if y > hi {
            Expect::Refuse
        } else {
            Expect::Either
        }
    }

    fn settle(&mut self, t: usize) {
        let tr = self.transfers[t].clone();
        let f = self.h(tr.from, tr.lot);
        f.in_transfer -= tr.qty;
        f.settle_kinds();
        let r = self.h(tr.to, tr.lot);
        r.available += tr.qty;
        r.kinds = r.kinds.or(tr.kinds);
        self.transfers[t].status = TransferStatus::Settled;
    }

    fn unwind(&mut self, t: usize, status: TransferStatus) {
        let tr = self.transfers[t].clone();
        let f = self.h(tr.from, tr.lot);
        f.in_transfer -= tr.qty;
        f.available += tr.qty;
        self.transfers[t].status = status;
        self.step_ended(Step::Transfer(t), tr.from, tr.lot);
    }

    fn pick<T>(v: &[T], i: u8) -> Option<usize> {
        (!v.is_empty()).then(|| i as usize % v.len())
    }

    /// Applies `op` as if accepted and says what the rules expect; `None`: the operation does
    /// not apply (nothing to act on, or the rules leave its effect open) and is skipped.
    pub fn plan(&mut self, op: Op) -> Option<Plan> {
        use TransferStatus as S;
        let mut fams = Vec::new();
        let (call, expect) =
            match op {
                Op::Advance { days } => {
                    let next = self.today + Days::new(days as u64);
                    let horizon = date(BASE).checked_add_months(Months::new(12 * HORIZON_YEARS))?;
                    if next > horizon {
                        return None;
                    }
                    // Unpaid trades never reach the payment window (what happens to them then is
                    // not the subject here).
                    if self.trades.iter().any(|t| {
                        !t.settled && next >= t.opened + Days::new(PAYMENT_WINDOW_DAYS - 1)
                    }) {
                        return None;
                    }
                    self.today = next;
                    // Listings past their last day expire (the driver runs the market sweep): what
                    // is unsold returns to the seller.
                    for i in 0..self.listings.len() {
                        let l = self.listings[i].clone();
                        if l.open && l.ends < next {
                            let h = self.h(l.seller, l.lot);
                            h.listed -= l.remaining;
                            h.available += l.remaining;
                            self.listings[i].open = false;
                        }
                    }
                    (Call::SetClock(next), Expect::Ok)
                }
                Op::Transfer {
                    from,
                    to,
                    lot,
                    pct,
                    price,
                    years,
                }
                | Op::Registered {
                    from,
                    to,
                    lot,
                    pct,
                    price,
                    years,
                } => {
                    let lot = lot as usize % LOTS.len();
                    let (from, to) = self.other(from, to, lot);
                    let qty = pct_of(self.holding(from, lot).available, pct);
                    let (e, f, price, years, kinds) = self.sale(from, to, lot, qty, price, years);
                    fams = f;
                    let registered = matches!(op, Op::Registered { .. });
                    if registered {
                        let h = self.h(from, lot);
                        h.available -= qty;
                        h.settle_kinds();
                        let r = self.h(to, lot);
                        r.available += qty;
                        r.kinds = r.kinds.or(kinds);
                        let call = Call::Registered {
                            from,
                            to,
                            lot,
                            qty,
                            price,
                            years,
                        };
                        (call, e)
                    } else {
                        let h = self.h(from, lot);
                        h.available -= qty;
                        h.in_transfer += qty;
                        let seq = self.next_seq();
                        self.transfers.push(Transfer {
                            sid: 0,
                            from,
                            to,
                            lot,
                            qty,
                            status: S::Requested,
                            kinds,
                            years,
                            held: 0,
                            seq,
                        });
                        let call = Call::Transfer {
                            from,
                            to,
                            lot,
                            qty,
                            price,
                            years,
                        };
                        (call, e)
                    }
                }
                Op::Confirm { t } => {
                    let t = Self::pick(&self.transfers, t)?;
                    let lot = self.transfers[t].lot;
                    let e = if self.transfers[t].status != S::Requested {
                        Expect::Refuse
                    } else if self.transfers[t].held > 0 {
                        // A judicial freeze holds quantity of it: nothing moves (409).
                        fams.push(Family::FreezePending);
                        Expect::Refuse
                    } else if LOTS[lot].right_type == RightType::Ca {
                        // No approval needed: confirming settles, so R6 applies. A request that
                        // can never settle is ended by the registry: its quantity goes back.
                        if self.expired(lot) {
                            fams.push(Family::ExpirySettle);
                            self.unwind(t, S::Rejected);
                            Expect::Refuse
                        } else {
                            let e = self.years_left(lot, self.transfers[t].years);
                            self.settle(t);
                            e
                        }
                    } else {
                        self.transfers[t].status = S::Confirmed;
                        if self.expired(lot) {
                            Expect::Either
                        } else {
                            Expect::Ok
                        }
                    };
                    (Call::Confirm(t), e)
                }
                Op::Approve { t } => {
                    let t = Self::pick(&self.transfers, t)?;
                    let lot = self.transfers[t].lot;
                    let e = if self.transfers[t].status != S::Confirmed {
                        Expect::Refuse
                    } else if self.transfers[t].held > 0 {
                        fams.push(Family::FreezePending);
                        Expect::Refuse
                    } else if self.expired(lot) {
                        // Refused, and ended by the registry: the quantity returns to the sender.
                        fams.push(Family::ExpirySettle);
                        self.unwind(t, S::Rejected);
                        Expect::Refuse
                    } else {
                        let e = self.years_left(lot, self.transfers[t].years);
                        self.settle(t);
                        e
                    };
                    (Call::Approve(t), e)
                }
                Op::Reject { t, operator } => {
                    let t = Self::pick(&self.transfers, t)?;
                    let e = match self.transfers[t].status {
                        S::Requested => Expect::Ok,
                        S::Confirmed if operator => Expect::Ok,
                        _ => Expect::Refuse,
                    };
                    if e == Expect::Ok {
                        self.unwind(t, S::Rejected);
                    }
                    (Call::Reject(t, operator), e)
                }
                Op::Cancel { t } => {
                    let t = Self::pick(&self.transfers, t)?;
                    let e = match self.transfers[t].status {
                        S::Requested | S::Confirmed => {
                            self.unwind(t, S::Cancelled);
                            Expect::Ok
                        }
                        _ => Expect::Refuse,
                    };
                    (Call::Cancel(t), e)
                }
                Op::Retire { party, lot, pct } => {
                    let lot = lot as usize % LOTS.len();
                    let party = self.holder(party, lot);
                    let qty = pct_of(self.holding(party, lot).available, pct);
                    let mut e = Expect::Ok;
                    if qty > self.holding(party, lot).available {
                        e = Expect::Refuse;
                    }
                    // R6 forbids listing, transferring and pledging an expired lot; retiring it is
                    // not addressed.
                    if self.expired(lot) {
                        e = e.and(Expect::Either);
                    }
                    let h = self.h(party, lot);
                    h.available -= qty;
                    h.settle_kinds();
                    self.retired[lot] += qty;
                    (Call::Retire { party, lot, qty }, e)
                }
                Op::PledgeApply { party, lot, pct } => {
                    let lot = lot as usize % LOTS.len();
                    let party = self.holder(party, lot);
                    let qty = pct_of(self.holding(party, lot).available, pct);
                    let mut e = self.r11(party, lot);
                    if self.expired(lot) || qty > self.holding(party, lot).available {
                        e = Expect::Refuse;
                    }
                    self.pledges.push(Pledge {
                        sid: 0,
                        party,
                        lot,
                        qty,
                        status: PledgeStatus::Applied,
                        amendment_code: String::new(),
                        registered: 0,
                    });
                    (Call::PledgeApply { party, lot, qty }, e)
                }
                Op::PledgeAccept { p } => {
                    let p = Self::pick(&self.pledges, p)?;
                    let pl = self.pledges[p].clone();
                    let valid_to = date(LOTS[pl.lot].valid_to);
                    let maturity = (self.today + Days::new(180)).min(valid_to);
                    let period_end = self.today.checked_add_months(Months::new(12 * 10))?;
                    let mut e = self.r11(pl.party, pl.lot);
                    if maturity <= self.today {
                        e = e.and(Expect::Either);
                    }
                    if pl.status != PledgeStatus::Applied
                        || self.expired(pl.lot)
                        || pl.qty > self.holding(pl.party, pl.lot).available
                    {
                        e = Expect::Refuse;
                    }
                    let h = self.h(pl.party, pl.lot);
                    h.available -= pl.qty;
                    h.pledged += pl.qty;
                    h.settle_kinds();
                    self.pledges[p].status = PledgeStatus::Registered;
                    self.pledges[p].registered = self.next_seq();
                    let call = Call::PledgeAccept {
                        p,
                        maturity,
                        period_end,
                    };
                    (call, e)
                }
                Op::PledgeRelease { p, pct } => {
                    let p = Self::pick(&self.pledges, p)?;
                    let pl = self.pledges[p].clone();
                    let (qty, sent) = if pct >= 100 {
                        (pl.qty, None)
                    } else {
                        let q = pct_of(pl.qty, pct);
                        (q, Some(q))
                    };
                    let e = if pl.status != PledgeStatus::Registered {
                        Expect::Refuse
                    } else {
                        Expect::Ok
                    };
                    // Courts come first: what the freezes rest on in `pledged` takes the released
                    // quantity into `frozen` (oldest freeze first); only the rest is available.
                    let frozen_pledged = self.holding(pl.party, pl.lot).frozen_pledged;
                    let to_frozen = if e == Expect::Ok {
                        frozen_pledged.min(qty)
                    } else {
                        0
                    };
                    if frozen_pledged > 0 {
                        fams.push(Family::FreezePledged);
                        fams.push(Family::ReleaseUnderFreeze);
                    }
                    let mut left = to_frozen;
                    for f in self.freezes.iter_mut() {
                        if f.lifted || f.party != pl.party || f.lot != pl.lot || left == 0 {
                            continue;
                        }
                        let take = f.pledged_part.min(left);
                        f.pledged_part -= take;
                        f.avail_part += take;
                        left -= take;
                    }
                    let h = self.h(pl.party, pl.lot);
                    h.pledged -= qty;
                    h.frozen_pledged -= to_frozen;
                    h.frozen += to_frozen;
                    h.available += qty - to_frozen;
                    // Pledged units were obtained for payment (R11).
                    h.kinds = h.kinds.or(Kinds::PAID);
                    let pl = &mut self.pledges[p];
                    pl.qty -= qty;
                    if pl.qty == 0 {
                        pl.status = PledgeStatus::Released;
                    }
                    (Call::PledgeRelease { p, qty: sent }, e)
                }
                Op::PledgeWithdraw { p } => {
                    let p = Self::pick(&self.pledges, p)?;
                    let e = if self.pledges[p].status == PledgeStatus::Applied {
                        self.pledges[p].status = PledgeStatus::Withdrawn;
                        Expect::Ok
                    } else {
                        Expect::Refuse
                    };
                    (Call::PledgeWithdraw(p), e)
                }
                Op::Freeze { party, lot, pct } => {
                    let lot = lot as usize % LOTS.len();
                    let party = self.holder(party, lot);
                    let h = self.holding(party, lot);
                    let free_pledged = h.pledged - h.frozen_pledged;
                    // The holder's pending transfers and trades, newest first, with what no
                    // freeze holds of them yet.
                    let mut steps: Vec<(u64, Step, i64)> = Vec::new();
                    for (i, t) in self.transfers.iter().enumerate() {
                        let pending = matches!(
                            t.status,
                            TransferStatus::Requested | TransferStatus::Confirmed
                        );
                        if pending && t.from == party && t.lot == lot {
                            steps.push((t.seq, Step::Transfer(i), t.qty - t.held));
                        }
                    }
                    for (i, t) in self.trades.iter().enumerate() {
                        if !t.settled && t.seller == party && t.lot == lot {
                            steps.push((t.seq, Step::Trade(i), t.qty - t.held));
                        }
                    }
                    steps.sort_by_key(|s| std::cmp::Reverse(s.0));
                    let pending: i64 = steps.iter().map(|s| s.2).sum();
                    let reach = h.available + free_pledged + h.listed + pending;
                    let qty = pct_of(reach, pct);
                    let mut e = if self.expired(lot) {
                        Expect::Either
                    } else {
                        Expect::Ok
                    };
                    if qty > reach {
                        e = Expect::Refuse;
                    }
                    // Available first, then pledged (it stays pledged), then the holder's own
                    // listings (newest first), then pending steps (newest first), held where
                    // they are.
                    let avail_part = qty.min(h.available);
                    let pledged_part = (qty - avail_part).min(free_pledged).max(0);
                    let from_listed = (qty - avail_part - pledged_part).min(h.listed).max(0);
                    let mut left = (qty - avail_part - pledged_part - from_listed).max(0);
                    if pledged_part > 0 {
                        fams.push(Family::FreezePledged);
                    }
                    let mut held = Vec::new();
                    if e != Expect::Refuse {
                        for &(_, step, free) in &steps {
                            let take = free.min(left);
                            if take > 0 {
                                held.push((step, take));
                                left -= take;
                                match step {
                                    Step::Transfer(t) => self.transfers[t].held += take,
                                    Step::Trade(t) => self.trades[t].held += take,
                                }
                            }
                        }
                        let mut from_l = from_listed;
                        for l in (0..self.listings.len()).rev() {
                            let li = &mut self.listings[l];
                            if from_l == 0 {
                                break;
                            }
                            if li.open && li.seller == party && li.lot == lot {
                                let take = li.remaining.min(from_l);
                                li.remaining -= take;
                                from_l -= take;
                                if li.remaining == 0 {
                                    li.open = false;
                                }
                            }
                        }
                    }
                    if !held.is_empty() {
                        fams.push(Family::FreezePending);
                    }
                    let hm = self.h(party, lot);
                    hm.available -= avail_part;
                    hm.listed -= from_listed;
                    hm.frozen += avail_part + from_listed;
                    hm.frozen_pledged += pledged_part;
                    self.freezes.push(Freeze {
                        sid: 0,
                        party,
                        lot,
                        avail_part: avail_part + from_listed,
                        pledged_part,
                        pending: held,
                        lifted: false,
                    });
                    (Call::Freeze { party, lot, qty }, e)
                }
                Op::Lift { f } => {
                    let f = Self::pick(&self.freezes, f)?;
                    let fr = self.freezes[f].clone();
                    let e = if fr.lifted {
                        Expect::Refuse
                    } else if fr.avail_part == 0 && fr.pledged_part == 0 && fr.pending.is_empty() {
                        // Consumed by a forced transfer: lifting it is a no-op or refused.
                        Expect::Either
                    } else {
                        Expect::Ok
                    };
                    if !fr.lifted {
                        let h = self.h(fr.party, fr.lot);
                        h.available += fr.avail_part;
                        h.frozen -= fr.avail_part;
                        h.frozen_pledged -= fr.pledged_part;
                        for (step, take) in &fr.pending {
                            match *step {
                                Step::Transfer(t) => self.transfers[t].held -= take,
                                Step::Trade(t) => self.trades[t].held -= take,
                            }
                        }
                    }
                    let fm = &mut self.freezes[f];
                    fm.lifted = true;
                    fm.avail_part = 0;
                    fm.pledged_part = 0;
                    fm.pending.clear();
                    (Call::Lift(f), e)
                }
                Op::Forced {
                    from,
                    to,
                    lot,
                    pct,
                    discharge,
                } => {
                    let lot = lot as usize % LOTS.len();
                    let (from, to) = self.other(from, to, lot);
                    if self.expired(lot) {
                        return None;
                    }
                    let mut e = Expect::Ok;
                    if Self::is_em(lot) && to == NON_ATTAINMENT_PARTY {
                        // A court order is not a trade; whether R4's region check binds it is open.
                        e = Expect::Either;
                    }
                    let kinds = self.follow(from, lot);
                    let active: Vec<usize> = (0..self.freezes.len())
                        .filter(|&i| {
                            let f = &self.freezes[i];
                            f.party == from
                                && f.lot == lot
                                && !f.lifted
                                && f.avail_part + f.pledged_part > 0
                        })
                        .collect();
                    let h = self.holding(from, lot);
                    let freeze = active.first().copied();
                    let (qty, from_pledged) = if active.is_empty() {
                        if h.frozen_pledged > 0 {
                            return None;
                        }
                        let qty = pct_of(h.available, pct);
                        if qty > h.available {
                            e = Expect::Refuse;
                        }
                        let hm = self.h(from, lot);
                        hm.available -= qty;
                        hm.settle_kinds();
                        (qty, 0)
                    } else {
                        // The court's order executes against the quantity its freeze holds: what
                        // it holds in `frozen` first, then the pledged quantity it rests on.
                        fams.push(Family::ForcedFrozen);
                        let [i] = active[..] else { return None };
                        let fr = self.freezes[i].clone();
                        let qty = pct_of(fr.avail_part + fr.pledged_part, pct.min(100));
                        let from_frozen = qty.min(fr.avail_part);
                        let from_pledged = qty - from_frozen;
                        self.freezes[i].avail_part -= from_frozen;
                        self.freezes[i].pledged_part -= from_pledged;
                        let hm = self.h(from, lot);
                        hm.frozen -= from_frozen;
                        hm.pledged -= from_pledged;
                        hm.frozen_pledged -= from_pledged;
                        hm.settle_kinds();
                        if from_pledged > 0 {
                            fams.push(Family::CourtPledged);
                            self.court_takes_pledges(from, to, lot, from_pledged, discharge);
                        }
                        (qty, from_pledged)
                    };
                    let r = self.h(to, lot);
                    if discharge || from_pledged == 0 {
                        r.available += qty;
                    } else {
                        // The pledge follows the quantity: it arrives pledged.
                        r.available += qty - from_pledged;
                        r.pledged += from_pledged;
                    }
                    r.kinds = r.kinds.or(kinds);
                    (
                        Call::Forced {
                            from,
                            to,
                            lot,
                            qty,
                            freeze,
                            discharge,
                        },
                        e,
                    )
                }
                Op::List {
                    party,
                    lot,
                    pct,
                    price,
                    years,
                } => {
                    let lot = lot as usize % LOTS.len();
                    let party = self.holder(party, lot);
                    let qty = pct_of(self.holding(party, lot).available, pct);
                    // The market already holds the floor on listings; a listing is always priced.
                    let price = if price == Price::Unpriced {
                        Price::Floor
                    } else {
                        price
                    };
                    let (mut e, f, price, years) = self.terms(lot, price, years, None);
                    fams = f;
                    if self.expired(lot) || qty > self.holding(party, lot).available {
                        e = Expect::Refuse;
                    }
                    let ends = date(LOTS[lot].valid_to);
                    let h = self.h(party, lot);
                    h.available -= qty;
                    h.listed += qty;
                    self.listings.push(Listing {
                        sid: 0,
                        seller: party,
                        lot,
                        remaining: qty,
                        ends,
                        open: true,
                        years,
                    });
                    let call = Call::List {
                        party,
                        lot,
                        qty,
                        price: price.unwrap_or(FLOOR),
                        years,
                        ends,
                    };
                    (call, e)
                }
                Op::Withdraw { l } => {
                    let l = Self::pick(&self.listings, l)?;
                    let li = self.listings[l].clone();
                    let e = if li.open {
                        let h = self.h(li.seller, li.lot);
                        h.listed -= li.remaining;
                        h.available += li.remaining;
                        self.listings[l].open = false;
                        Expect::Ok
                    } else {
                        Expect::Refuse
                    };
                    (Call::Withdraw(l), e)
                }
                Op::Buy { l, buyer, pct } => {
                    let l = Self::pick(&self.listings, l)?;
                    let li = self.listings[l].clone();
                    let (_, buyer) = self.other_of(li.seller, buyer);
                    let qty = pct_of(li.remaining, pct);
                    let mut e = Expect::Ok;
                    if !li.open || qty > li.remaining || self.expired(li.lot) {
                        e = Expect::Refuse;
                    }
                    // R4, which the market already enforces: no load into a non-attainment region.
                    if Self::is_em(li.lot) && buyer == NON_ATTAINMENT_PARTY {
                        e = Expect::Refuse;
                    }
                    // R3: a purchase trades on its own day; the listing's years must still remain.
                    let years = self.years_left(li.lot, li.years);
                    if years != Expect::Ok {
                        fams.push(Family::Years);
                        e = e.and(years);
                    }
                    let h = self.h(li.seller, li.lot);
                    h.listed -= qty;
                    h.in_transfer += qty;
                    let lm = &mut self.listings[l];
                    lm.remaining -= qty;
                    if lm.remaining == 0 {
                        lm.open = false;
                    }
                    let seq = self.next_seq();
                    self.trades.push(Trade {
                        sid: 0,
                        buyer,
                        seller: li.seller,
                        lot: li.lot,
                        qty,
                        opened: self.today,
                        settled: false,
                        years: li.years,
                        held: 0,
                        seq,
                    });
                    (Call::Buy { l, buyer, qty }, e)
                }
                Op::Pay { t } => {
                    let t = Self::pick(&self.trades, t)?;
                    let tr = self.trades[t].clone();
                    let e = if tr.settled {
                        Expect::Refuse
                    } else if tr.held > 0 {
                        // A judicial freeze holds quantity of it: nothing moves (409 or, when its
                        // years no longer remain, 422).
                        fams.push(Family::FreezePending);
                        Expect::Refuse
                    } else if self.expired(tr.lot) {
                        // Refused, and the trade expires: the quantity returns to the seller.
                        fams.push(Family::ExpirySettle);
                        let s = self.h(tr.seller, tr.lot);
                        s.in_transfer -= tr.qty;
                        s.available += tr.qty;
                        self.trades[t].settled = true;
                        self.step_ended(Step::Trade(t), tr.seller, tr.lot);
                        Expect::Refuse
                    } else {
                        let e = self.years_left(tr.lot, tr.years);
                        let s = self.h(tr.seller, tr.lot);
                        s.in_transfer -= tr.qty;
                        s.settle_kinds();
                        let b = self.h(tr.buyer, tr.lot);
                        b.available += tr.qty;
                        b.kinds = b.kinds.or(Kinds::PAID);
                        self.trades[t].settled = true;
                        e
                    };
                    (Call::Pay(t), e)
                }
                Op::Enforce { p } => {
                    let p = Self::pick(&self.pledges, p)?;
                    let e = if self.pledges[p].status == PledgeStatus::Registered {
                        self.pledges[p].status = PledgeStatus::Enforcing;
                        Expect::Ok
                    } else {
                        Expect::Refuse
                    };
                    (Call::Enforce(p), e)
                }
                Op::Dispose {
                    p,
                    buyer,
                    price,
                    years,
                } => {
                    let p = Self::pick(&self.pledges, p)?;
                    let pl = self.pledges[p].clone();
                    let (_, buyer) = self.other_of(pl.party, buyer);
                    let price = if price == Price::Unpriced {
                        Price::Floor
                    } else {
                        price
                    };
                    let (mut e, f, price, years) =
                        self.terms(pl.lot, price, years, Some(Family::R4Disposal));
                    fams = f;
                    if Self::is_em(pl.lot) && buyer == NON_ATTAINMENT_PARTY {
                        fams.push(Family::R4Disposal);
                        e = e.and(Expect::Refuse);
                    }
                    if self.expired(pl.lot) {
                        fams.push(Family::ExpirySettle);
                        e = e.and(Expect::Refuse);
                    }
                    let h = self.holding(pl.party, pl.lot);
                    if h.frozen_pledged > 0 {
                        // Whether the court's freeze covers this pledge is open unless the other
                        // pledges cannot hold all of it.
                        fams.push(Family::FreezePledged);
                        let others = h.pledged - pl.qty;
                        e = e.and(if h.frozen_pledged > others {
                            Expect::Refuse
                        } else {
                            Expect::Either
                        });
                    }
                    if pl.status != PledgeStatus::Enforcing {
                        e = Expect::Refuse;
                    }
                    // A refused disposal changes nothing (the caller may keep this plan's state
                    // when an expired lot is involved, so it must hold no effect).
                    if e != Expect::Refuse {
                        let hm = self.h(pl.party, pl.lot);
                        hm.pledged -= pl.qty;
                        let b = self.h(buyer, pl.lot);
                        b.available += pl.qty;
                        b.kinds = b.kinds.or(Kinds::PAID);
                        self.pledges[p].status = PledgeStatus::Disposed;
                    }
                    let call = Call::Dispose {
                        p,
                        buyer,
                        price: price.unwrap_or(FLOOR),
                        years,
                    };
                    (call, e)
                }
                Op::FreezeDisposal { p } => {
                    // Among the pledges registered or in enforcement (a registered one is put into
                    // enforcement first, by its bank).
                    let live: Vec<usize> = (0..self.pledges.len())
                        .filter(|&i| {
                            matches!(
                                self.pledges[i].status,
                                PledgeStatus::Registered | PledgeStatus::Enforcing
                            )
                        })
                        .collect();
                    let p = live[Self::pick(&live, p)?];
                    let pl = self.pledges[p].clone();
                    let h = self.holding(pl.party, pl.lot);
                    // Only a listing the rules accept without doubt: a pledge of a live lot with
                    // no freeze on the holding yet, priced at the floor, one year sold.
                    if pl.qty < 2 || self.expired(pl.lot) || h.frozen_pledged > 0 {
                        return None;
                    }
                    let enforce = pl.status == PledgeStatus::Registered;
                    let (ok, _, price, years) = self.terms(pl.lot, Price::Floor, 1, None);
                    if ok != Expect::Ok {
                        return None;
                    }
                    let list = pl.qty / 2;
                    // The listing takes `list` out of `pledged` and the freeze takes it back: the
                    // holding ends as a freeze of everything it has would leave it without the
                    // listing (what the freeze rests on in `pledged` includes the listing's part).
                    let i = (0..=u8::MAX).find(|&i| self.holder(i, pl.lot) == pl.party)?;
                    let inner = self.plan(Op::Freeze {
                        party: i,
                        lot: pl.lot as u8,
                        pct: 100,
                    })?;
                    let Call::Freeze { party, lot, qty } = inner.call else {
                        return None;
                    };
                    self.pledges[p].status = PledgeStatus::Enforcing;
                    fams.extend(inner.families);
                    fams.push(Family::FreezeDisposal);
                    let call = Call::FreezeDisposal {
                        p,
                        enforce,
                        list,
                        price: price.unwrap_or(FLOOR),
                        years,
                        party,
                        lot,
                        qty,
                    };
                    (call, inner.expect)
                }
            };

        fams.sort();
        fams.dedup();
        Some(Plan {
            call,
            expect,
            families: fams,
        })
    }

    /// The registry's invariants on the model itself: no bucket negative, every lot conserved.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (i, l) in LOTS.iter().enumerate() {
            let mut sum = self.retired[i];
            for ((_, lot), h) in &self.holdings {
                if *lot != i {
                    continue;
                }
                for q in [
                    h.available,
                    h.listed,
                    h.in_transfer,
                    h.pledged,
                    h.frozen,
                    h.frozen_pledged,
                ] {
                    if q < 0 {
                        return Err(format!("model: negative bucket in lot {i}: {h:?}"));
                    }
                }
                if h.frozen_pledged > h.pledged {
                    return Err(format!("model: more frozen than pledged: {h:?}"));
                }
                sum += h.available + h.listed + h.in_transfer + h.pledged + h.frozen;
            }
            if sum != l.issued {
                return Err(format!(
                    "model: lot {i} not conserved: {sum} != {}",
                    l.issued
                ));
            }
        }
        Ok(())
    }
}
