//! R13 for forest parcels: each parcel's proceeds pay the mortgages on that parcel by their ranks
//! there, each up to what its registration secures; and what a sale leaves of a mortgage.

use super::SecuredClaim;

/// One parcel of a disposal: what it sold for and the registered mortgages on it, in that
/// parcel's rank order (R9, R14).
#[derive(Debug, Clone)]
pub struct ParcelSale {
    pub parcel_id: i64,
    pub proceeds: i64,
    pub ranked: Vec<i64>,
}

/// A payment to a mortgagee out of one parcel's proceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payment {
    pub mortgage_id: i64,
    pub parcel_id: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waterfall {
    pub payments: Vec<Payment>,
    /// What is left of each parcel's proceeds, due to that parcel's holder: (parcel, amount).
    pub to_holders: Vec<(i64, i64)>,
}

impl Waterfall {
    /// Everything paid to one mortgagee, over all parcels.
    pub fn paid_to(&self, mortgage_id: i64) -> i64 {
        self.payments
            .iter()
            .filter(|p| p.mortgage_id == mortgage_id)
            .map(|p| p.amount)
            .sum()
    }
}

/// R13 for forest parcels. Proceeds are never pooled: each parcel's proceeds pay the mortgages on
/// that parcel, by their ranks on that parcel, each up to what is still owed on its claim (a
/// mortgage on several parcels is paid from them in the order given, here by parcel id, until
/// its claim is met); what is left of each parcel is due to that parcel's holder. A mortgage that
/// does not burden a parcel is never paid from it, whatever it ranks elsewhere. `claims` are
/// (mortgage, outstanding claim with its registered secured amount); a mortgage without one is
/// owed nothing, and none is owed more than its registration secures (the rule pledges share,
/// [`SecuredClaim::payable`]): the excess is unsecured and goes after every registered mortgage,
/// so what is left is the holder's.
pub fn waterfall(parcels: &[ParcelSale], claims: &[(i64, SecuredClaim)]) -> Waterfall {
    let mut owed: Vec<(i64, i64)> = claims.iter().map(|(m, c)| (*m, c.payable())).collect();
    let mut payments = Vec::new();
    let mut to_holders = Vec::new();
    for sale in parcels {
        let mut left = sale.proceeds.max(0);
        for m in &sale.ranked {
            let Some(entry) = owed.iter_mut().find(|(id, _)| id == m) else {
                continue;
            };
            let amount = entry.1.min(left);
            if amount > 0 {
                entry.1 -= amount;
                left -= amount;
                payments.push(Payment {
                    mortgage_id: *m,
                    parcel_id: sale.parcel_id,
                    amount,
                });
            }
        }
        to_holders.push((sale.parcel_id, left));
    }
    Waterfall {
        payments,
        to_holders,
    }
}

/// What a sale of some parcels leaves of a mortgage that burdened them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSale {
    /// Disposed: no parcel under it remains, or its claim is paid in full.
    Ends,
    /// Still registered on the parcels not sold, securing what is still unpaid.
    Remains,
}

/// R13 with R9: a sale ends a mortgage only on the parcels sold. A mortgage that also burdens
/// other parcels lives on there (at its rank on each) until its claim is paid in full, since
/// selling one parcel must not free another of its senior mortgage. `parcels_left`: parcels it
/// still burdens after the sale; `claim`: what it was owed before; `paid`: what the sale paid it.
pub fn after_sale(parcels_left: usize, claim: i64, paid: i64) -> AfterSale {
    if parcels_left == 0 || paid >= claim {
        AfterSale::Ends
    } else {
        AfterSale::Remains
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn proceeds_stay_with_their_parcel() {
        // M1 ranks first on parcel B only; M2 covers A and B (second on B). A sells for 400k, B
        // for 100k: M1 is paid out of B alone (100k, never 200k of A's money), M2 its 300k out
        // of A, and A's holder the rest of A.
        let (a, b, m1, m2) = (1, 2, 11, 12);
        let sales = [
            ParcelSale {
                parcel_id: a,
                proceeds: 40_000_000,
                ranked: vec![m2],
            },
            ParcelSale {
                parcel_id: b,
                proceeds: 10_000_000,
                ranked: vec![m1, m2],
            },
        ];
        let w = waterfall(
            &sales,
            &[(m1, secured(20_000_000)), (m2, secured(30_000_000))],
        );
        assert_eq!(w.paid_to(m1), 10_000_000);
        assert_eq!(w.paid_to(m2), 30_000_000);
        assert_eq!(w.to_holders, vec![(a, 10_000_000), (b, 0)]);
    }

    fn secured(claim: i64) -> SecuredClaim {
        SecuredClaim {
            claim,
            secured: claim,
        }
    }

    #[test]
    fn a_senior_takes_no_more_than_its_registered_secured_amount() {
        // M1, secured for 80,000 yuan, declares 9,000,000 yuan; the parcel sells for 200,000:
        // M1 takes 80,000, the junior M2 its 50,000 and the holder the 70,000 left.
        let (a, m1, m2) = (1, 11, 12);
        let sales = [ParcelSale {
            parcel_id: a,
            proceeds: 20_000_000,
            ranked: vec![m1, m2],
        }];
        let over = SecuredClaim {
            claim: 900_000_000,
            secured: 8_000_000,
        };
        let w = waterfall(&sales, &[(m1, over), (m2, secured(5_000_000))]);
        assert_eq!(w.paid_to(m1), 8_000_000);
        assert_eq!(w.paid_to(m2), 5_000_000);
        assert_eq!(w.to_holders, vec![(a, 7_000_000)]);
    }

    fn sales_and_claims() -> impl Strategy<Value = (Vec<ParcelSale>, Vec<(i64, SecuredClaim)>)> {
        // Up to 4 parcels and 4 mortgages; each mortgage burdens a non-empty subset of parcels;
        // ranks follow one registration order, restricted to each parcel.
        (1usize..=4, 1usize..=4).prop_flat_map(|(np, nm)| {
            (
                proptest::collection::vec(0i64..1_000_000, np),
                proptest::collection::vec((1u32..(1 << np), 0i64..1_000_000, 0i64..1_000_000), nm),
                Just((0..nm as i64).collect::<Vec<_>>()).prop_shuffle(),
            )
                .prop_map(move |(proceeds, mortgages, order)| {
                    let sales = (0..np)
                        .map(|p| ParcelSale {
                            parcel_id: p as i64,
                            proceeds: proceeds[p],
                            ranked: order
                                .iter()
                                .copied()
                                .filter(|m| mortgages[*m as usize].0 & (1 << p) != 0)
                                .collect(),
                        })
                        .collect();
                    let claims = mortgages
                        .iter()
                        .enumerate()
                        .map(|(m, (_, claim, secured))| {
                            (
                                m as i64,
                                SecuredClaim {
                                    claim: *claim,
                                    secured: *secured,
                                },
                            )
                        })
                        .collect();
                    (sales, claims)
                })
        })
    }

    proptest! {
        #[test]
        fn each_parcel_pays_only_its_own_by_its_ranks((sales, claims) in sales_and_claims()) {
            let w = waterfall(&sales, &claims);
            for s in &sales {
                let paid: i64 = w.payments.iter().filter(|p| p.parcel_id == s.parcel_id).map(|p| p.amount).sum();
                let rest = w.to_holders.iter().find(|(p, _)| *p == s.parcel_id).map(|(_, r)| *r).unwrap();
                // Nothing paid exceeds the parcel's proceeds; the rest goes to its holder.
                prop_assert_eq!(paid + rest, s.proceeds);
                prop_assert!(rest >= 0);
                // Only mortgages on the parcel are paid from it.
                prop_assert!(w.payments.iter().filter(|p| p.parcel_id == s.parcel_id).all(|p| s.ranked.contains(&p.mortgage_id)));
                // Ranks: a junior is paid from a parcel only once every senior on it is paid in full,
                // and the holder only once every mortgage on it is.
                for (i, m) in s.ranked.iter().enumerate() {
                    let from_here = w.payments.iter().any(|p| p.parcel_id == s.parcel_id && p.mortgage_id == *m);
                    if from_here || rest > 0 {
                        for senior in &s.ranked[..i] {
                            let claim = claims.iter().find(|(id, _)| id == senior).unwrap().1.payable();
                            prop_assert_eq!(w.paid_to(*senior), claim);
                        }
                    }
                }
                if rest > 0 {
                    for m in &s.ranked {
                        let claim = claims.iter().find(|(id, _)| id == m).unwrap().1.payable();
                        prop_assert_eq!(w.paid_to(*m), claim);
                    }
                }
            }
            // No claim is overpaid, and none is paid beyond its registered secured amount.
            for (m, c) in &claims {
                prop_assert!(w.paid_to(*m) <= c.claim.max(0));
                prop_assert!(w.paid_to(*m) <= c.secured.max(0));
            }
        }
    }

    #[test]
    fn a_sale_ends_a_mortgage_only_where_it_sold_or_once_paid() {
        // Senior on parcels 1 and 2 (claim 250k); parcel 1 sells and pays it 200k: it stays on 2.
        assert_eq!(after_sale(1, 25_000_000, 20_000_000), AfterSale::Remains);
        // Paid in full: it ends although parcel 2 remains.
        assert_eq!(after_sale(1, 25_000_000, 25_000_000), AfterSale::Ends);
        // Every parcel sold: it ends, however little it received.
        assert_eq!(after_sale(0, 25_000_000, 0), AfterSale::Ends);
        // Nothing owed (no claim): nothing keeps it alive.
        assert_eq!(after_sale(1, 0, 0), AfterSale::Ends);
    }
}
