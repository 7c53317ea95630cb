-- A lender's products can set their own loan-to-value cap for forest-rights mortgages (R12).
CREATE TABLE lender_products (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lender_id BIGINT NOT NULL REFERENCES parties(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    forest_ltv_cap_bp INTEGER NOT NULL CHECK (forest_ltv_cap_bp > 0 AND forest_ltv_cap_bp <= 10000),
    created_at TIMESTAMP NOT NULL,
    UNIQUE (lender_id, code)
);
