-- The market (docs/design.md §4): benchmark prices and non-attainment flags (R4), listings, multi-unit
-- auctions with their bidders and bids, and the trades that settle through the ledger.
-- Prices are per unit (EM: per ton-year, R3) at 4 places; money in fen; quantities at scale 4.

CREATE TABLE benchmark_prices (
    id BIGSERIAL PRIMARY KEY,
    right_type TEXT NOT NULL REFERENCES right_types(code),
    -- The pollutant for EM; NULL for a price of the whole right type.
    sub_kind TEXT,
    -- A county, or an aggregate (3507 00 = all of Nanping, 35 0000 = Fujian).
    region_code TEXT NOT NULL,
    unit_price BIGINT NOT NULL CHECK (unit_price > 0),
    valid_from DATE NOT NULL,
    valid_to DATE,
    document_ref TEXT NOT NULL,
    proposal_id BIGINT NOT NULL REFERENCES proposals(id),
    proposed_by TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CHECK (valid_to IS NULL OR valid_from <= valid_to)
);
CREATE INDEX benchmark_prices_key ON benchmark_prices (right_type, region_code, valid_from);

-- Append-only: the newest row of a (region, pollutant) is in force.
CREATE TABLE region_flags (
    id BIGSERIAL PRIMARY KEY,
    region_code TEXT NOT NULL,
    pollutant TEXT NOT NULL,
    non_attainment BOOLEAN NOT NULL,
    document_ref TEXT NOT NULL,
    set_by TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX region_flags_key ON region_flags (region_code, pollutant, id);

CREATE TABLE listings (
    id BIGSERIAL PRIMARY KEY,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    seller_id BIGINT NOT NULL REFERENCES parties(id),
    -- A disposal of an enforced pledge (R13).
    pledge_id BIGINT REFERENCES pledges(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    remaining BIGINT NOT NULL CHECK (remaining >= 0),
    unit_price BIGINT NOT NULL CHECK (unit_price > 0),
    years INTEGER,
    min_lot BIGINT NOT NULL CHECK (min_lot > 0),
    ends_at TIMESTAMP NOT NULL,
    restriction TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (remaining <= quantity)
);
CREATE INDEX listings_status ON listings (status, ends_at);

CREATE TABLE auctions (
    id BIGSERIAL PRIMARY KEY,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    seller_id BIGINT NOT NULL REFERENCES parties(id),
    pledge_id BIGINT REFERENCES pledges(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    reserve_price BIGINT NOT NULL CHECK (reserve_price > 0),
    increment BIGINT NOT NULL CHECK (increment > 0),
    min_bid BIGINT NOT NULL CHECK (min_bid > 0),
    max_bid BIGINT NOT NULL CHECK (max_bid >= min_bid),
    years INTEGER,
    opens_at TIMESTAMP NOT NULL,
    closes_at TIMESTAMP NOT NULL,
    extension_minutes INTEGER NOT NULL CHECK (extension_minutes >= 0),
    sealed BOOLEAN NOT NULL,
    uniform_price BOOLEAN NOT NULL,
    restriction TEXT NOT NULL,
    deposit BIGINT NOT NULL CHECK (deposit >= 0),
    status TEXT NOT NULL,
    clearing_price BIGINT,
    allocated BIGINT NOT NULL DEFAULT 0,
    bid_count INTEGER NOT NULL DEFAULT 0,
    closed_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CHECK (opens_at < closes_at)
);
CREATE INDEX auctions_status ON auctions (status, closes_at);

CREATE TABLE auction_bidders (
    auction_id BIGINT NOT NULL REFERENCES auctions(id),
    party_id BIGINT NOT NULL REFERENCES parties(id),
    deposit BIGINT NOT NULL CHECK (deposit >= 0),
    deposit_ref TEXT NOT NULL,
    registered_by TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    PRIMARY KEY (auction_id, party_id)
);

CREATE TABLE bids (
    id BIGSERIAL PRIMARY KEY,
    auction_id BIGINT NOT NULL REFERENCES auctions(id),
    party_id BIGINT NOT NULL REFERENCES parties(id),
    unit_price BIGINT NOT NULL CHECK (unit_price > 0),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    status TEXT NOT NULL,
    allocated BIGINT NOT NULL DEFAULT 0,
    placed_at TIMESTAMP NOT NULL
);
CREATE INDEX bids_auction ON bids (auction_id, status);

CREATE TABLE trades (
    id BIGSERIAL PRIMARY KEY,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    seller_id BIGINT NOT NULL REFERENCES parties(id),
    buyer_id BIGINT NOT NULL REFERENCES parties(id),
    listing_id BIGINT REFERENCES listings(id),
    auction_id BIGINT REFERENCES auctions(id),
    pledge_id BIGINT REFERENCES pledges(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    unit_price BIGINT NOT NULL CHECK (unit_price > 0),
    years INTEGER,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    buyer_fee BIGINT NOT NULL CHECK (buyer_fee >= 0),
    seller_fee BIGINT NOT NULL CHECK (seller_fee >= 0),
    status TEXT NOT NULL,
    trade_date DATE NOT NULL,
    pay_by TIMESTAMP NOT NULL,
    payment_ref TEXT,
    transfer_id BIGINT REFERENCES transfers(id),
    confirmed_by TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX trades_lot ON trades (lot_id, status, trade_date);
CREATE INDEX trades_due ON trades (status, pay_by);
