-- Co-holders of a forest parcel with their shares (in basis points of the whole).
CREATE TABLE parcel_holders (
    parcel_id BIGINT NOT NULL REFERENCES forest_parcels(id),
    party_id BIGINT NOT NULL REFERENCES parties(id),
    share_bp INTEGER NOT NULL CHECK (share_bp > 0 AND share_bp <= 10000),
    PRIMARY KEY (parcel_id, party_id)
);
CREATE INDEX parcel_holders_party ON parcel_holders (party_id);
-- Every existing parcel is held wholly by its holder.
INSERT INTO parcel_holders (parcel_id, party_id, share_bp) SELECT id, holder_id, 10000 FROM forest_parcels;
