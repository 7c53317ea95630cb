-- Quantity a financing request (融资需求) offers as collateral is reserved: it stays with its
-- holder but cannot be listed, transferred, pledged elsewhere or offered again until the request
-- is withdrawn or its pledge is registered. It is one more bucket of the holding, so conservation
-- counts it.
ALTER TABLE holdings ADD COLUMN reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0);

CREATE TABLE financing_requests (
    id BIGSERIAL PRIMARY KEY,
    applicant_id BIGINT NOT NULL REFERENCES parties(id),
    -- Money in fen.
    amount BIGINT NOT NULL CHECK (amount > 0),
    term_months INTEGER NOT NULL CHECK (term_months > 0),
    purpose TEXT NOT NULL,
    green_tag TEXT NOT NULL,
    lot_id BIGINT NOT NULL REFERENCES lots(id),
    quantity BIGINT NOT NULL CHECK (quantity > 0),
    -- The collateral's value when posted (fen), and how it was found; NULL when no market price
    -- exists (the bank's appraisal decides).
    collateral_value BIGINT,
    valuation_method TEXT NOT NULL,
    valued_on DATE NOT NULL,
    -- open, taken, funded, withdrawn.
    status TEXT NOT NULL,
    bank_id BIGINT REFERENCES parties(id),
    pledge_id BIGINT REFERENCES pledges(id),
    taken_at TIMESTAMP,
    response_due TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX financing_requests_status ON financing_requests (status, id);
CREATE INDEX financing_requests_applicant ON financing_requests (applicant_id, id);

-- Every step of a request, append-only: what the applicant is told and what the feed gives.
CREATE TABLE financing_request_events (
    id BIGSERIAL PRIMARY KEY,
    request_id BIGINT NOT NULL REFERENCES financing_requests(id),
    event TEXT NOT NULL,
    bank_id BIGINT REFERENCES parties(id),
    detail TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX financing_request_events_request ON financing_request_events (request_id, id);
