-- Credit enhancement of a pledge or forest mortgage: a guarantee (银担分险: the guarantor bears
-- its share of a shortfall, up to the guaranteed amount) or loan-guarantee / forest insurance (up
-- to the insured amount). Amounts in fen; the share in basis points of the shortfall.
CREATE TABLE credit_enhancements (
    id BIGSERIAL PRIMARY KEY,
    encumbrance_kind TEXT NOT NULL,
    encumbrance_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    guarantor_id BIGINT REFERENCES parties(id),
    guaranteed_share_bp INTEGER,
    insurer TEXT,
    policy_no TEXT,
    amount BIGINT NOT NULL,
    beneficiary_id BIGINT REFERENCES parties(id),
    term_from DATE NOT NULL,
    term_to DATE NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX credit_enhancements_encumbrance ON credit_enhancements (encumbrance_kind, encumbrance_id, id);
