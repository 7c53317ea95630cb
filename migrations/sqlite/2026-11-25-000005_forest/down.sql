DROP TABLE forest_mortgage_entries;
DROP TABLE forest_mortgage_parcels;
DROP TABLE forest_mortgages;
DROP TABLE forest_parcels;
