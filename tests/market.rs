//! The market: listing races, multi-unit auctions (allocation, ties, extension, eligibility,
//! exactly-once closing across processes), R4 refusals, amounts and fees to the fen, delivery
//! versus payment and expiry, pledge disposal through an auction, and the price series.

mod common;

use std::str::FromStr;
use std::sync::{Arc, Barrier};

use common::ledger::{assert_conserved, available, dec, holding, issue, key, lot_request};
use common::{party, uscc, user, Api, Backend, Reply, Server};
use rust_decimal::Decimal;
use serde_json::{json, Value};

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

const START: &str = "2026-12-01T02:00:00Z";

struct World {
    srv: Server,
    admin: Api,
    checker: Api,
    seller: i64,
    ent_seller: Api,
    em: i64,
}

fn world(backend: Backend) -> World {
    world_on(Server::start(backend))
}

fn world_on(srv: Server) -> World {
    let admin = srv.admin();
    admin.set_clock(START);
    let checker = user(&admin, "operator", None, "checker");
    let seller = party(&admin, "enterprise", 1);
    let ent_seller = user(&admin, "enterprise", Some(seller), "seller");
    let em = issue(
        &admin,
        &checker,
        lot_request("EM", seller, "485.2", "南环有偿〔2026〕15号"),
    )["id"]
        .as_i64()
        .unwrap();
    fees(&admin, "0", "0");
    World {
        srv,
        admin,
        checker,
        seller,
        ent_seller,
        em,
    }
}

fn fees(admin: &Api, buyer: &str, seller: &str) {
    common::market_settings(
        admin,
        &json!({"buyer_fee_rate": buyer, "seller_fee_rate": seller, "payment_window_hours": 72,
            "vwap_days": 30, "vwap_min_trades": 3, "benchmark_floor": true, "non_attainment_check": true}),
    );
}

/// A buyer enterprise registered in `region`, with its logged-in user.
fn buyer(admin: &Api, n: u32, region: &str) -> (i64, Api) {
    let id = admin
        .post(
            "/v1/parties",
            &json!({"kind": "enterprise", "name_zh": format!("买方企业{n}"), "uscc": uscc(n), "region_code": region}),
        )
        .expect(201)
        .body["id"]
        .as_i64()
        .unwrap();
    (
        id,
        user(admin, "enterprise", Some(id), &format!("buyer-{n}")),
    )
}

fn list(
    ent: &Api,
    lot: i64,
    quantity: &str,
    price: &str,
    years: Option<i32>,
    extra: Value,
) -> Reply {
    let mut body = json!({"lot_id": lot, "quantity": quantity, "unit_price": price, "min_lot": "1",
        "ends_at": "2026-12-20T08:00:00Z"});
    if let Some(y) = years {
        body["years"] = json!(y);
    }
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    if body.get("pledge_id").is_some() {
        // A disposal listing takes two persons: proposed, then approved by another.
        return common::two_person_reply(ent, "/v1/listings", &key(), &body);
    }
    ent.post_key("/v1/listings", &key(), &body)
}

fn buy(ent: &Api, listing: i64, quantity: &str) -> Reply {
    ent.post_key(
        &format!("/v1/listings/{listing}/purchases"),
        &key(),
        &json!({ "quantity": quantity }),
    )
}

/// An operator's confirmation of payment: proposed by `op`, approved by the second operator (the
/// approval's reply carries the settled trade).
fn pay(op: &Api, trade: i64) -> Reply {
    common::two_person_reply(
        op,
        &format!("/v1/trades/{trade}/payment"),
        &key(),
        &json!({"payment_ref": format!("CIB-PAY-{trade}")}),
    )
}

fn id(r: &Reply) -> i64 {
    r.body["id"].as_i64().unwrap()
}

fn listing_race(backend: Backend) {
    let w = world(backend);
    let l = id(&list(&w.ent_seller, w.em, "10", "6500", Some(4), json!({})).expect(201));
    let buyers: Vec<Api> = (0..20)
        .map(|n| buyer(&w.admin, 100 + n, "350702").1)
        .collect();
    let gate = Arc::new(Barrier::new(buyers.len()));
    let handles: Vec<_> = buyers
        .into_iter()
        .map(|b| {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.wait();
                buy(&b, l, "1")
            })
        })
        .collect();
    let replies: Vec<Reply> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let sold = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(sold, 10, "exactly the listed quantity sells");
    for r in replies.iter().filter(|r| r.status != 201) {
        assert_eq!(r.status, 409, "a loser is refused cleanly: {}", r.body);
        assert!(
            ["listing_closed", "insufficient_quantity"].contains(&r.code()),
            "{}",
            r.body
        );
    }
    let listing = w.admin.get(&format!("/v1/listings/{l}")).expect(200).body;
    assert_eq!(listing["status"], "filled");
    assert_eq!(dec(&listing["remaining"]), d("0"));
    let trades = w
        .admin
        .get(&format!("/v1/trades?listing_id={l}"))
        .expect(200)
        .body;
    assert_eq!(trades["items"].as_array().unwrap().len(), 10);
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!(
        (dec(&h["listed"]), dec(&h["in_transfer"])),
        (d("0"), d("10"))
    );
    assert_conserved(&w.admin, w.em);
}

/// An open multi-unit auction: eligibility, the bid grid, raising, ties, extension, allocation.
fn multi_unit_auction(backend: Backend) {
    let w = world(backend);
    let bidders: Vec<(i64, Api)> = (0..4).map(|n| buyer(&w.admin, 10 + n, "350702")).collect();
    let (fuzhou, _) = buyer(&w.admin, 20, "350102");
    let (stranger, ent_stranger) = buyer(&w.admin, 21, "350702");
    let a = common::two_person_reply(&w.admin, "/v1/auctions", &key(), &json!({"lot_id": w.em, "seller_party_id": w.seller, "quantity": "100", "reserve_price": "1419",
                "increment": "10", "min_bid": "10", "max_bid": "60", "years": 4,
                "opens_at": "2026-12-01T02:00:00Z", "closes_at": "2026-12-01T03:00:00Z",
                "extension_minutes": 5, "sealed": false, "deposit": "50000",
                "restriction": {"regions": ["350700"]}})).expect(200);
    let auction = id(&a);
    assert_eq!(a.body["phase"], "open");
    assert_eq!(dec(&holding(&w.admin, w.seller, w.em)["listed"]), d("100"));
    let admit = |party: i64, deposit: &str| {
        w.admin.post(
            &format!("/v1/auctions/{auction}/bidders"),
            &json!({"party_id": party, "deposit": deposit, "deposit_ref": format!("DEP-{party}")}),
        )
    };
    for (p, _) in &bidders {
        admit(*p, "50000").expect(201);
    }
    // Outside the restriction, or short of the deposit: not admitted.
    let r = admit(fuzhou, "50000").expect(422);
    assert_eq!(r.code(), "buyer_not_eligible");
    assert_eq!(
        admit(stranger, "100").expect(422).code(),
        "deposit_insufficient"
    );
    let bid = |ent: &Api, price: &str, q: &str| {
        ent.post(
            &format!("/v1/auctions/{auction}/bids"),
            &json!({"unit_price": price, "quantity": q}),
        )
    };
    assert_eq!(
        bid(&ent_stranger, "1419", "10").expect(422).code(),
        "bidder_not_admitted"
    );
    let (b0, b1, b2, b3) = (&bidders[0].1, &bidders[1].1, &bidders[2].1, &bidders[3].1);
    assert_eq!(bid(b0, "1425", "10").expect(422).code(), "bid_off_grid");
    assert_eq!(bid(b0, "1439", "61").status, 422, "above the maximum bid");
    w.admin.set_clock("2026-12-01T02:10:00Z");
    bid(b0, "1439", "40").expect(201);
    w.admin.set_clock("2026-12-01T02:11:00Z");
    bid(b1, "1459", "30").expect(201);
    w.admin.set_clock("2026-12-01T02:12:00Z");
    bid(b2, "1439", "50").expect(201); // same price as b0, later: b0 is served first
    bid(b3, "1419", "60").expect(201);
    assert_eq!(bid(b3, "1419", "60").expect(409).code(), "bid_not_raised");
    // A bid two minutes before the close moves the close to five minutes after the bid.
    w.admin.set_clock("2026-12-01T02:58:00Z");
    bid(b3, "1429", "60").expect(201);
    let view = w
        .admin
        .get(&format!("/v1/auctions/{auction}"))
        .expect(200)
        .body;
    // (The test clock keeps running from where it was set, so the bid came a moment after 02:58.)
    assert!(
        view["closes_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-01T03:03:00"),
        "{view}"
    );
    assert_eq!(dec(&view["best_bid"]), d("1459"));
    w.admin.set_clock("2026-12-01T03:01:00Z");
    let early = w
        .admin
        .post(&format!("/v1/auctions/{auction}/close"), &json!({}));
    assert_eq!(early.expect(409).code(), "auction_not_due");
    w.admin.set_clock("2026-12-01T03:03:05Z");
    let late = bid(b3, "1439", "60").expect(409);
    assert_eq!(late.code(), "auction_closed");
    let closed = w
        .admin
        .post(&format!("/v1/auctions/{auction}/close"), &json!({}))
        .expect(200)
        .body;
    assert_eq!(closed["phase"], "awarded");
    assert_eq!(dec(&closed["allocated"]), d("100"));
    assert_eq!(dec(&closed["clearing_price"]), d("1439"));
    // Best price first (b1), then the earlier of the tie (b0), the rest of it to b2; b3 loses.
    let trades = w
        .admin
        .get(&format!("/v1/trades?auction_id={auction}"))
        .expect(200)
        .body;
    let got: Vec<(i64, Decimal, Decimal, Decimal)> = trades["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["parties"]["buyer_id"].as_i64().unwrap(),
                dec(&t["quantity"]),
                dec(&t["unit_price"]),
                dec(&t["amount"]),
            )
        })
        .collect();
    let mut want = vec![
        (bidders[1].0, d("30"), d("1459"), d("175080.00")),
        (bidders[0].0, d("40"), d("1439"), d("230240.00")),
        (bidders[2].0, d("30"), d("1439"), d("172680.00")),
    ];
    let mut got_sorted = got.clone();
    got_sorted.sort_by_key(|t| t.0);
    want.sort_by_key(|t| t.0);
    assert_eq!(got_sorted, want);
    let bids = w
        .admin
        .get(&format!("/v1/auctions/{auction}/bids"))
        .expect(200)
        .body;
    let lost: Vec<&Value> = bids
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "lost")
        .collect();
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["party_id"], bidders[3].0);
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!(
        (dec(&h["listed"]), dec(&h["in_transfer"])),
        (d("0"), d("100"))
    );
    // Delivery versus payment: the winner gets its quantity when its payment is confirmed.
    let first = trades["items"][0]["id"].as_i64().unwrap();
    let buyer_id = trades["items"][0]["parties"]["buyer_id"].as_i64().unwrap();
    let q = dec(&trades["items"][0]["quantity"]);
    pay(&w.admin, first).expect(200);
    assert_eq!(available(&w.admin, buyer_id, w.em), q);
    assert_conserved(&w.admin, w.em);
}

/// A sealed auction closed by two server processes and their clocks at once: closed once. An
/// auction without bids fails and returns its quantity.
fn auction_closes_once(backend: Backend) {
    let w = world(backend);
    let other = Server::on_with(w.srv.db.clone(), &[]);
    let admin2 = other.admin();
    admin2.set_clock(START);
    let (b0, ent0) = buyer(&w.admin, 30, "350702");
    let (b1, ent1) = buyer(&w.admin, 31, "350702");
    let auction = |q: &str| {
        id(&common::two_person_reply(&w.admin, "/v1/auctions", &key(), &json!({"lot_id": w.em, "seller_party_id": w.seller, "quantity": q, "reserve_price": "1419",
                    "increment": "1", "min_bid": "1", "max_bid": "50", "years": 3,
                    "opens_at": "2026-12-01T02:00:00Z", "closes_at": "2026-12-01T04:00:00Z",
                    "extension_minutes": 0, "sealed": true, "deposit": "0"})).expect(200))
    };
    let (sealed, empty) = (auction("50"), auction("20"));
    for p in [b0, b1] {
        w.admin
            .post(
                &format!("/v1/auctions/{sealed}/bidders"),
                &json!({"party_id": p, "deposit": "0", "deposit_ref": "none"}),
            )
            .expect(201);
    }
    let bid = |ent: &Api, price: &str, q: &str| {
        ent.post(
            &format!("/v1/auctions/{sealed}/bids"),
            &json!({"unit_price": price, "quantity": q}),
        )
    };
    bid(&ent0, "1500", "30").expect(201);
    assert_eq!(
        bid(&ent0, "1600", "30").expect(409).code(),
        "bid_already_placed"
    );
    bid(&ent1, "1450", "30").expect(201);
    // Sealed: a bidder sees only its own bid before the close.
    let seen = ent1
        .get(&format!("/v1/auctions/{sealed}/bids"))
        .expect(200)
        .body;
    assert_eq!(seen.as_array().unwrap().len(), 1);
    assert!(w
        .admin
        .get(&format!("/v1/auctions/{sealed}"))
        .expect(200)
        .body["best_bid"]
        .is_null());
    // Both processes' clocks pass the close; both background clocks and explicit requests race.
    w.admin.set_clock("2026-12-01T04:00:01Z");
    admin2.set_clock("2026-12-01T04:00:01Z");
    let gate = Arc::new(Barrier::new(4));
    let handles: Vec<_> = [
        w.admin.clone(),
        admin2.clone(),
        w.admin.clone(),
        admin2.clone(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, api)| {
        let gate = gate.clone();
        std::thread::spawn(move || {
            gate.wait();
            if i % 2 == 0 {
                api.post(&format!("/v1/auctions/{sealed}/close"), &json!({}))
            } else {
                api.post("/v1/market/sweep", &json!({}))
            }
        })
    })
    .collect();
    for h in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let trades = w
        .admin
        .get(&format!("/v1/trades?auction_id={sealed}"))
        .expect(200)
        .body;
    let items = trades["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "one trade per winner, however many closers: {trades}"
    );
    let total: Decimal = items.iter().map(|t| dec(&t["quantity"])).sum();
    assert_eq!(total, d("50"));
    // Pay as bid: 30 at 1500 and the last 20 at 1450, three years each.
    let amounts: Vec<Decimal> = items.iter().map(|t| dec(&t["amount"])).collect();
    assert!(
        amounts.contains(&d("135000.00")) && amounts.contains(&d("87000.00")),
        "{amounts:?}"
    );
    let f = w
        .admin
        .post(&format!("/v1/auctions/{empty}/close"), &json!({}))
        .expect(200)
        .body;
    assert_eq!(f["phase"], "failed");
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!(
        (dec(&h["listed"]), dec(&h["in_transfer"])),
        (d("0"), d("50"))
    );
    assert_eq!(dec(&h["available"]), d("435.2"));
    let events = w
        .admin
        .get(&format!("/v1/lots/{}/history", w.em))
        .expect(200)
        .body;
    let awarded = events.to_string().matches("auction_unsold").count();
    assert_eq!(awarded, 1, "the failed auction returned its quantity once");
    assert_conserved(&w.admin, w.em);
}

fn benchmark(w: &World, price: &str, from: &str) {
    let p = w
        .admin
        .post(
            "/v1/benchmark-prices",
            &json!({"right_type": "EM", "sub_kind": "SO2", "region_code": "350700", "unit_price": price,
                "valid_from": from, "document_ref": "闽发改价格〔2026〕7号"}),
        )
        .expect(202);
    let pid = id(&p);
    let own = w
        .admin
        .post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}));
    assert_eq!(own.expect(403).code(), "maker_checker");
    w.checker
        .post_key(&format!("/v1/proposals/{pid}/approve"), &key(), &json!({}))
        .expect(200);
}

fn floor_and_non_attainment(backend: Backend) {
    let w = world(backend);
    benchmark(&w, "6300", "2026-01-01");
    benchmark(&w, "6500", "2027-01-01");
    let in_force = w
        .admin
        .get("/v1/benchmark-prices?right_type=EM&sub_kind=SO2&region_code=350702&on=2026-12-01")
        .expect(200)
        .body;
    assert_eq!(
        dec(&in_force[0]["unit_price"]),
        d("6300"),
        "the prefecture's price applies to the county"
    );
    let history = w
        .admin
        .get("/v1/benchmark-prices?right_type=EM")
        .expect(200)
        .body;
    assert_eq!(history.as_array().unwrap().len(), 2);
    let low = list(&w.ent_seller, w.em, "10", "6299.99", Some(4), json!({})).expect(422);
    assert_eq!(low.code(), "price_below_benchmark");
    let low_auction = w.admin.post_key(
        "/v1/auctions",
        &key(),
        &json!({"lot_id": w.em, "seller_party_id": w.seller, "quantity": "10", "reserve_price": "6000",
            "increment": "10", "min_bid": "1", "max_bid": "10", "years": 4, "opens_at": START,
            "closes_at": "2026-12-02T02:00:00Z", "sealed": false, "deposit": "0"}),
    );
    assert_eq!(low_auction.expect(422).code(), "price_below_benchmark");
    let l = id(&list(&w.ent_seller, w.em, "10", "6300", Some(4), json!({})).expect(201));
    // 邵武市 does not meet its SO2 standard: no SO2 load may move there from 延平区.
    let regulator = user(&w.admin, "regulator", None, "regulator");
    // A regulator proposes the flag; an operator approves it (two persons).
    common::region_flag(
        &regulator,
        &w.checker,
        &json!({"region_code": "350781", "pollutant": "SO2", "non_attainment": true, "document_ref": "南环〔2026〕12号"}),
    );
    let (_, shaowu) = buyer(&w.admin, 40, "350781");
    let (_, yanping) = buyer(&w.admin, 41, "350702");
    assert_eq!(
        buy(&shaowu, l, "2").expect(422).code(),
        "region_non_attainment"
    );
    buy(&yanping, l, "2").expect(201);
    // Lifting the flag takes two persons too.
    common::region_flag(
        &regulator,
        &w.checker,
        &json!({"region_code": "350781", "pollutant": "SO2", "non_attainment": false, "document_ref": "南环〔2026〕30号"}),
    );
    buy(&shaowu, l, "2").expect(201);
    let flags = w.admin.get("/v1/region-flags").expect(200).body;
    assert_eq!(flags.as_array().unwrap().len(), 2, "the history is kept");
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!(dec(&h["in_transfer"]), d("4"));
    assert_conserved(&w.admin, w.em);
}

fn fees_and_amounts_to_the_fen(backend: Backend) {
    let w = world(backend);
    fees(&w.admin, "0.003", "0.0025");
    let (b, ent_b) = buyer(&w.admin, 50, "350702");
    // Fujian 2014: 485.2 t × 1,419 yuan per ton-year × 5 years = 3,442,494.00 (R3), on the first
    // day of the term, when all five years are whole.
    w.admin.set_clock("2026-01-01T02:00:00Z");
    let l = id(&list(&w.ent_seller, w.em, "485.2", "1419", Some(5), json!({})).expect(201));
    assert_eq!(
        buy(&ent_b, l, "1.00001").expect(422).body["errors"][0]["field"],
        "quantity"
    );
    let t = buy(&ent_b, l, "485.2").expect(201).body;
    assert_eq!(t["amount"], "3442494.00");
    let p = &t["parties"];
    assert_eq!(p["buyer_fee"], "10327.48"); // 10,327.482
    assert_eq!(p["seller_fee"], "8606.24"); // 8,606.235 → half up
    assert_eq!(p["buyer_pays"], "3452821.48");
    assert_eq!(p["seller_receives"], "3433887.76");
    // Other rights: quantity × price, rounded once half up: 24.69 × 1000.5 = 24,702.345 → .35.
    let eu = issue(
        &w.admin,
        &w.checker,
        lot_request("EU", w.seller, "100", "南发改用能〔2026〕3号"),
    )["id"]
        .as_i64()
        .unwrap();
    let l2 = id(&list(&w.ent_seller, eu, "50", "1000.5", None, json!({})).expect(201));
    assert_eq!(
        list(&w.ent_seller, eu, "5", "10", Some(2), json!({}))
            .expect(422)
            .body["errors"][0]["field"],
        "years"
    );
    let t2 = buy(&ent_b, l2, "24.69").expect(201).body;
    assert_eq!(t2["amount"], "24702.35");
    assert_eq!(t2["parties"]["buyer_fee"], "74.11"); // 74.10705
    pay(&w.admin, t2["id"].as_i64().unwrap()).expect(200);
    assert_eq!(available(&w.admin, b, eu), d("24.69"));
    assert_conserved(&w.admin, w.em);
    assert_conserved(&w.admin, eu);
}

fn unpaid_trade_expires(backend: Backend) {
    let w = world(backend);
    let (b, ent_b) = buyer(&w.admin, 60, "350702");
    let l = id(&list(&w.ent_seller, w.em, "10", "6500", Some(4), json!({})).expect(201));
    let paid = id(&buy(&ent_b, l, "4").expect(201));
    let unpaid = id(&buy(&ent_b, l, "3").expect(201));
    let settled = pay(&w.admin, paid).expect(200).body;
    assert_eq!(settled["status"], "settled");
    assert_eq!(available(&w.admin, b, w.em), d("4"));
    let transfer = settled["parties"]["transfer_id"].as_i64().unwrap();
    let tr = ent_b
        .get(&format!("/v1/transfers/{transfer}"))
        .expect(200)
        .body;
    assert_eq!(
        (tr["kind"].as_str(), tr["amount"].as_str()),
        (Some("trade"), Some("104000.00"))
    );
    let again = pay(&w.admin, paid).expect(409);
    assert_eq!(again.code(), "trade_not_awaiting_payment", "paid once only");
    // 72 hours later the unpaid trade expires; the listing's end returns the rest. The test clock
    // keeps running from where it was set, so the trade's deadline lies a little past 72 h; ten
    // minutes of margin keep a slow machine from making this sweep too early.
    w.admin.set_clock("2026-12-04T02:10:00Z");
    let s = w
        .admin
        .post("/v1/market/sweep", &json!({}))
        .expect(200)
        .body;
    assert!(s.to_string().contains(&unpaid.to_string()), "{s}");
    assert_eq!(
        pay(&w.admin, unpaid).expect(409).code(),
        "trade_not_awaiting_payment"
    );
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!(
        (dec(&h["in_transfer"]), dec(&h["listed"])),
        (d("0"), d("3"))
    );
    w.admin.set_clock("2026-12-20T08:00:00Z");
    w.admin.post("/v1/market/sweep", &json!({})).expect(200);
    let listing = w.admin.get(&format!("/v1/listings/{l}")).expect(200).body;
    assert_eq!(listing["status"], "expired");
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!(
        (dec(&h["listed"]), dec(&h["available"])),
        (d("0"), d("481.2"))
    );
    assert_eq!(buy(&ent_b, l, "1").expect(409).code(), "listing_closed");
    assert_conserved(&w.admin, w.em);
}

fn disposal_pays_pledgee_first(backend: Backend) {
    let w = world(backend);
    fees(&w.admin, "0", "0.0025");
    let bank = party(&w.admin, "bank", 70);
    let banker = user(&w.admin, "bank", Some(bank), "banker");
    let p = w
        .ent_seller
        .post_key(
            "/v1/pledges",
            &key(),
            &json!({"lot_id": w.em, "quantity": "100", "lender_party_id": bank}),
        )
        .expect(201);
    let pid = id(&p);
    let acc = banker
        .post_key(
            &format!("/v1/pledges/{pid}/accept"),
            &key(),
            &json!({"secured_amount": "500000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "CIB-NP-2026-0815", "appraisal_value": "900000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200)
        .body;
    let code = acc["amendment_code"].as_str().unwrap().to_string();
    // Before enforcement the pledged quantity cannot be sold.
    let early = w.admin.post_key(
        "/v1/auctions",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": pid, "quantity": "100", "reserve_price": "1419", "increment": "10",
            "min_bid": "10", "max_bid": "100", "years": 4, "opens_at": START, "closes_at": "2026-12-01T04:00:00Z",
            "sealed": true, "deposit": "0"}),
    );
    assert_eq!(early.expect(409).code(), "pledge_not_enforcing");
    banker
        .post_key(
            &format!("/v1/pledges/{pid}/enforce"),
            &key(),
            &json!({"amendment_code": code, "principal": "500000.00", "interest": "20000.00", "costs": "5000.00"}),
        )
        .expect(200);
    let auction = common::two_person(
        &w.admin,
        "/v1/auctions",
        &key(),
        &json!({"lot_id": w.em, "pledge_id": pid, "quantity": "100", "reserve_price": "1419", "increment": "10",
            "min_bid": "10", "max_bid": "100", "years": 4, "opens_at": START, "closes_at": "2026-12-01T04:00:00Z",
            "sealed": true, "deposit": "0"}),
    )["id"]
        .as_i64()
        .unwrap();
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!((dec(&h["pledged"]), dec(&h["listed"])), (d("0"), d("100")));
    let (b, ent_b) = buyer(&w.admin, 71, "350702");
    w.admin
        .post(
            &format!("/v1/auctions/{auction}/bidders"),
            &json!({"party_id": b, "deposit": "0", "deposit_ref": "none"}),
        )
        .expect(201);
    ent_b
        .post(
            &format!("/v1/auctions/{auction}/bids"),
            &json!({"unit_price": "1419", "quantity": "100"}),
        )
        .expect(201);
    w.admin.set_clock("2026-12-01T04:00:00Z");
    w.admin
        .post(&format!("/v1/auctions/{auction}/close"), &json!({}))
        .expect(200);
    let trade = w
        .admin
        .get(&format!("/v1/trades?auction_id={auction}"))
        .expect(200)
        .body["items"][0]
        .clone();
    // 100 × 1,419 × 4 whole years = 567,600.00; less the seller's fee 1,419.00 = 566,181.00 to
    // the waterfall.
    assert_eq!(trade["amount"], "567600.00");
    pay(&w.admin, trade["id"].as_i64().unwrap()).expect(200);
    let pledge = banker.get(&format!("/v1/pledges/{pid}")).expect(200).body;
    assert_eq!(pledge["status"], "disposed");
    assert_eq!(pledge["proceeds"], "566181.00");
    // The claim of 525,000 is paid up to the registered secured amount, 500,000; the rest of the
    // proceeds is the pledgor's.
    assert_eq!(pledge["paid_to_lender"], "500000.00");
    assert_eq!(pledge["paid_to_pledgor"], "66181.00");
    assert_eq!(available(&w.admin, b, w.em), d("100"));
    let h = holding(&w.admin, w.seller, w.em);
    assert_eq!(
        (dec(&h["pledged"]), dec(&h["in_transfer"])),
        (d("0"), d("0"))
    );
    assert_conserved(&w.admin, w.em);
}

/// Settled trades over two days against a hand-computed OHLC and VWAP; valuation follows them.
fn price_series_and_valuation(backend: Backend) {
    let w = world(backend);
    let (_, ent_b) = buyer(&w.admin, 80, "350702");
    let none = w
        .admin
        .get(&format!("/v1/valuations?lot_id={}&quantity=10", w.em));
    assert_eq!(none.expect(409).code(), "no_market_price");
    let l1 = id(&list(&w.ent_seller, w.em, "20", "6400", Some(4), json!({})).expect(201));
    let l2 = id(&list(&w.ent_seller, w.em, "20", "6600", Some(4), json!({})).expect(201));
    let l3 = id(&list(&w.ent_seller, w.em, "20", "6500", Some(4), json!({})).expect(201));
    let settle = |listing: i64, q: &str| {
        let t = id(&buy(&ent_b, listing, q).expect(201));
        pay(&w.admin, t).expect(200);
    };
    w.admin.set_clock("2026-12-01T02:10:00Z");
    settle(l1, "2");
    w.admin.set_clock("2026-12-01T02:20:00Z");
    settle(l2, "1");
    w.admin.set_clock("2026-12-02T03:00:00Z");
    settle(l3, "1");
    w.admin.set_clock("2026-12-02T03:30:00Z");
    settle(l1, "3");
    let s = w
        .admin
        .get("/v1/market/ohlc?right_type=EM&sub_kind=SO2&region=350700&from=2026-11-25&to=2026-12-02")
        .expect(200)
        .body;
    let c = s["candles"].as_array().unwrap();
    assert_eq!(c.len(), 2);
    let candle = |i: usize| -> Vec<Decimal> {
        ["open", "high", "low", "close", "volume", "vwap"]
            .iter()
            .map(|f| dec(&c[i][f]))
            .collect()
    };
    // Day 1: 2 @ 6400, 1 @ 6600 → VWAP 19,400 / 3 = 6466.6667 (half up at 4 places).
    assert_eq!(
        candle(0),
        vec![
            d("6400"),
            d("6600"),
            d("6400"),
            d("6600"),
            d("3"),
            d("6466.6667")
        ]
    );
    // Day 2: 1 @ 6500, 3 @ 6400 → 25,700 / 4 = 6425.
    assert_eq!(
        candle(1),
        vec![
            d("6500"),
            d("6500"),
            d("6400"),
            d("6400"),
            d("4"),
            d("6425")
        ]
    );
    let sum = w
        .admin
        .get("/v1/market/summary?right_type=EM&sub_kind=SO2&region=350700")
        .expect(200)
        .body;
    // 45,100 / 7 = 6442.857142… → 6442.8571
    assert_eq!(dec(&sum["vwap"]), d("6442.8571"));
    assert_eq!(dec(&sum["last_price"]), d("6400"));
    assert_eq!(sum["vwap_trades"], 4);
    let v = w
        .admin
        .get(&format!("/v1/valuations?lot_id={}&quantity=10", w.em))
        .expect(200)
        .body;
    assert_eq!(v["method"], "vwap_30d");
    // 2026-12-01: 4 whole years of the term are left (R3).
    assert_eq!(v["years"], 4);
    // 10 × 6442.8571 × 4 = 257,714.284 → 257,714.28
    assert_eq!(v["value"], "257714.28");
    // Too few trades in a one-day window: the benchmark values it.
    let mut settings = w.admin.get("/v1/market/settings").expect(200).body;
    settings["vwap_min_trades"] = json!(10);
    common::market_settings(&w.admin, &settings);
    benchmark(&w, "6300", "2026-01-01");
    let v = w
        .admin
        .get(&format!("/v1/valuations?lot_id={}&quantity=10", w.em))
        .expect(200)
        .body;
    assert_eq!(
        (v["method"].as_str(), v["value"].as_str()),
        (Some("benchmark"), Some("252000.00"))
    );
    let chart = reqwest::blocking::Client::new()
        .get(format!(
            "{}/v1/market/chart.svg?right_type=EM&sub_kind=SO2&region=350700&from=2026-11-25&to=2026-12-05",
            w.admin.base
        ))
        .bearer_auth(w.admin.token.clone().unwrap())
        .send()
        .unwrap();
    assert_eq!(chart.status(), 200);
    assert_eq!(
        chart.headers()["content-type"].to_str().unwrap(),
        "image/svg+xml"
    );
    let svg = chart.text().unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("benchmark"),
        "{svg}"
    );
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../test-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("market-chart-{backend:?}.svg")), svg);
    assert_conserved(&w.admin, w.em);
}

/// Falling market prices raise a pledge's loan-to-value above the alert level: the sweep tells the
/// lender once per crossing.
fn falling_prices_alert_the_lender(backend: Backend) {
    let w = world(backend);
    let bank = party(&w.admin, "bank", 90);
    let banker = user(&w.admin, "bank", Some(bank), "banker");
    let pid = id(&w
        .ent_seller
        .post_key(
            "/v1/pledges",
            &key(),
            &json!({"lot_id": w.em, "quantity": "100", "lender_party_id": bank}),
        )
        .expect(201));
    banker
        .post_key(
            &format!("/v1/pledges/{pid}/accept"),
            &key(),
            &json!({"secured_amount": "500000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "CIB-NP-2026-0901", "appraisal_value": "900000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200);
    let v = banker
        .get(&format!("/v1/pledges/{pid}/valuation"))
        .expect(200)
        .body;
    assert_eq!(
        (v["method"].as_str(), v["loan_to_value_percent"].as_str()),
        (Some("appraisal"), Some("55.56"))
    );
    let quiet = w
        .admin
        .post("/v1/collateral/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(quiet["ltv_alerts"], json!([]));
    let (_, ent_b) = buyer(&w.admin, 91, "350702");
    let l = id(&list(&w.ent_seller, w.em, "3", "1000", Some(4), json!({})).expect(201));
    for _ in 0..3 {
        let t = id(&buy(&ent_b, l, "1").expect(201));
        pay(&w.admin, t).expect(200);
    }
    // 100 × 1,000 × 4 whole years = 400,000: the loan is now 125 % of the collateral's market value.
    let v = banker
        .get(&format!("/v1/pledges/{pid}/valuation"))
        .expect(200)
        .body;
    assert_eq!(v["method"], "vwap_30d");
    assert_eq!(
        (v["value"].as_str(), v["loan_to_value_percent"].as_str()),
        (Some("400000.00"), Some("125.00"))
    );
    let s = w
        .admin
        .post("/v1/collateral/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(s["ltv_alerts"], json!([pid]));
    let again = w
        .admin
        .post("/v1/collateral/sweep", &json!({}))
        .expect(200)
        .body;
    assert_eq!(again["ltv_alerts"], json!([]), "once per crossing");
    assert_conserved(&w.admin, w.em);
}

/// Disposal through listings: what a listing leaves unsold returns under the pledge; the waterfall
/// runs once everything is sold and paid.
fn disposal_through_listings(backend: Backend) {
    let w = world(backend);
    let bank = party(&w.admin, "bank", 95);
    let banker = user(&w.admin, "bank", Some(bank), "banker");
    let pid = id(&w
        .ent_seller
        .post_key(
            "/v1/pledges",
            &key(),
            &json!({"lot_id": w.em, "quantity": "100", "lender_party_id": bank}),
        )
        .expect(201));
    let acc = banker
        .post_key(
            &format!("/v1/pledges/{pid}/accept"),
            &key(),
            &json!({"secured_amount": "500000.00", "loan_maturity": "2028-12-31", "period_end": "2028-12-31",
                "loan_reference": "CIB-NP-2026-0950", "appraisal_value": "900000.00", "appraiser": "福建中兴资产评估",
                "appraisal_date": "2026-11-20"}),
        )
        .expect(200)
        .body;
    banker
        .post_key(
            &format!("/v1/pledges/{pid}/enforce"),
            &key(),
            &json!({"amendment_code": acc["amendment_code"], "principal": "800000.00", "interest": "0.00", "costs": "0.00"}),
        )
        .expect(200);
    // Only operators dispose; the pledgor cannot list its pledged quantity.
    let own = list(
        &w.ent_seller,
        w.em,
        "100",
        "1500",
        Some(4),
        json!({"pledge_id": pid}),
    );
    assert_eq!(own.expect(403).code(), "forbidden");
    let first = id(&list(
        &w.admin,
        w.em,
        "100",
        "1500",
        Some(4),
        json!({"pledge_id": pid}),
    )
    .expect(200));
    let (b, ent_b) = buyer(&w.admin, 96, "350702");
    let t = id(&buy(&ent_b, first, "60").expect(201));
    pay(&w.admin, t).expect(200);
    assert_eq!(
        banker.get(&format!("/v1/pledges/{pid}")).expect(200).body["status"],
        "enforcing"
    );
    w.admin.set_clock("2026-12-20T08:00:00Z");
    w.admin.post("/v1/market/sweep", &json!({})).expect(200);
    let p = banker.get(&format!("/v1/pledges/{pid}")).expect(200).body;
    assert_eq!(
        (p["status"].as_str(), dec(&p["quantity"])),
        (Some("enforcing"), d("40"))
    );
    assert_eq!(dec(&holding(&w.admin, w.seller, w.em)["pledged"]), d("40"));
    let second = id(&list(
        &w.admin,
        w.em,
        "40",
        "1400",
        Some(4),
        json!({"pledge_id": pid, "ends_at": "2026-12-30T08:00:00Z"}),
    )
    .expect(200));
    let t = id(&buy(&ent_b, second, "40").expect(201));
    pay(&w.admin, t).expect(200);
    // 60 × 1,500 × 4 + 40 × 1,400 × 4 = 360,000 + 224,000 = 584,000: the claim of 800,000 is paid
    // up to the registered secured amount, 500,000, and the rest is the pledgor's.
    let p = banker.get(&format!("/v1/pledges/{pid}")).expect(200).body;
    assert_eq!(p["status"], "disposed");
    assert_eq!(
        (
            p["proceeds"].as_str(),
            p["paid_to_lender"].as_str(),
            p["paid_to_pledgor"].as_str()
        ),
        (Some("584000.00"), Some("500000.00"), Some("84000.00"))
    );
    assert_eq!(available(&w.admin, b, w.em), d("100"));
    assert_conserved(&w.admin, w.em);
}

/// `registry market sweep` closes what is due on the real clock, beside a server whose own market
/// clock is off.
fn cli_sweep(backend: Backend) {
    let db = common::Db::fresh(backend);
    let srv = Server::on_with(db.clone(), &["--market-poll-ms", "100000000"]);
    let w = world_on(srv);
    let now = chrono::Utc::now();
    w.admin.set_clock(&now.to_rfc3339());
    let a = id(&common::two_person_reply(&w.admin, "/v1/auctions", &key(), &json!({"lot_id": w.em, "seller_party_id": w.seller, "quantity": "10", "reserve_price": "1419",
                "increment": "1", "min_bid": "1", "max_bid": "10", "years": 3, "opens_at": now.to_rfc3339(),
                "closes_at": (now + chrono::TimeDelta::seconds(5)).to_rfc3339(), "sealed": true, "deposit": "0"})).expect(200));
    std::thread::sleep(std::time::Duration::from_millis(5500));
    let out = common::command(&db)
        .args(["market", "sweep"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("auctions closed: [{a}]")), "{text}");
    let view = w.admin.get(&format!("/v1/auctions/{a}")).expect(200).body;
    assert_eq!(view["phase"], "failed");
    assert_eq!(dec(&holding(&w.admin, w.seller, w.em)["listed"]), d("0"));
    assert_conserved(&w.admin, w.em);
}

both_backends!(
    listing_race,
    multi_unit_auction,
    auction_closes_once,
    floor_and_non_attainment,
    fees_and_amounts_to_the_fen,
    unpaid_trade_expires,
    disposal_pays_pledgee_first,
    price_series_and_valuation,
    falling_prices_alert_the_lender,
    disposal_through_listings,
    cli_sweep,
);
