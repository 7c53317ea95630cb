DROP TABLE parcel_freezes;
ALTER TABLE forest_parcels DROP COLUMN split_from;
ALTER TABLE forest_parcels DROP COLUMN status;
