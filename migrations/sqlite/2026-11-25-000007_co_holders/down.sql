DROP TABLE parcel_holders;
