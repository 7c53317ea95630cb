-- Forest rights (林权): parcels, and mortgages of them (林权抵押) with their parcels, ranks and
-- append-only entries.
CREATE TABLE forest_parcels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    certificate_no TEXT NOT NULL UNIQUE,
    holder_id BIGINT NOT NULL REFERENCES parties(id),
    rights TEXT NOT NULL,
    county_code TEXT NOT NULL,
    township TEXT NOT NULL,
    village TEXT NOT NULL,
    compartment TEXT NOT NULL,
    sub_compartment TEXT NOT NULL,
    place_name TEXT,
    area_mu BIGINT NOT NULL CHECK (area_mu > 0),
    forest_category TEXT NOT NULL,
    commercial_kind TEXT,
    origin TEXT NOT NULL,
    dominant_species TEXT NOT NULL,
    age_group TEXT,
    stock_volume BIGINT NOT NULL CHECK (stock_volume >= 0),
    woodland_term_end DATE NOT NULL,
    ownership TEXT NOT NULL,
    management_form TEXT NOT NULL,
    registered BOOLEAN NOT NULL,
    disputed BOOLEAN NOT NULL,
    boundary TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX forest_parcels_holder ON forest_parcels (holder_id);
CREATE INDEX forest_parcels_place ON forest_parcels (county_code, township, village, compartment, sub_compartment);

CREATE TABLE forest_mortgages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    registration_no TEXT UNIQUE,
    mortgagor_id BIGINT NOT NULL REFERENCES parties(id),
    lender_id BIGINT NOT NULL REFERENCES parties(id),
    status TEXT NOT NULL,
    secured_amount BIGINT,
    loan_start DATE,
    loan_end DATE,
    appraisal_value BIGINT,
    appraiser TEXT,
    appraisal_kind TEXT,
    appraisal_date DATE,
    appraisal_report_no TEXT,
    insurance_policy_no TEXT,
    insurer TEXT,
    insured_amount BIGINT,
    insurance_beneficiary_id BIGINT,
    consent TEXT,
    transfer_ban BOOLEAN NOT NULL DEFAULT 0,
    official_certificate_no TEXT,
    official_registered_at TIMESTAMP,
    claim_amount BIGINT,
    claim_detail TEXT,
    proceeds BIGINT,
    paid_to_lender BIGINT,
    paid_to_mortgagor BIGINT,
    verification_code TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX forest_mortgages_mortgagor ON forest_mortgages (mortgagor_id);
CREATE INDEX forest_mortgages_lender ON forest_mortgages (lender_id);

CREATE TABLE forest_mortgage_parcels (
    mortgage_id BIGINT NOT NULL REFERENCES forest_mortgages(id),
    parcel_id BIGINT NOT NULL REFERENCES forest_parcels(id),
    rank_at_registration INTEGER,
    PRIMARY KEY (mortgage_id, parcel_id)
);
CREATE INDEX forest_mortgage_parcels_parcel ON forest_mortgage_parcels (parcel_id);

CREATE TABLE forest_mortgage_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mortgage_id BIGINT NOT NULL REFERENCES forest_mortgages(id),
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    details TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TIMESTAMP NOT NULL,
    UNIQUE (mortgage_id, seq)
);
