-- Parcels can be split (the mortgages follow every part) and frozen by a court.
ALTER TABLE forest_parcels ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE forest_parcels ADD COLUMN split_from BIGINT REFERENCES forest_parcels(id);

CREATE TABLE parcel_freezes (
    id BIGSERIAL PRIMARY KEY,
    parcel_id BIGINT NOT NULL REFERENCES forest_parcels(id),
    court TEXT NOT NULL,
    case_no TEXT NOT NULL,
    document_ref TEXT NOT NULL,
    status TEXT NOT NULL,
    ordered_by TEXT NOT NULL,
    ordered_at TIMESTAMP NOT NULL,
    lift_document_ref TEXT,
    lifted_at TIMESTAMP
);
CREATE INDEX parcel_freezes_parcel ON parcel_freezes (parcel_id);
