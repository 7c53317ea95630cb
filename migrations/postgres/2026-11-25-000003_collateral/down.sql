DROP TABLE search_certificates;
DROP TABLE judicial_freezes;
DROP TABLE pledge_entries;
DROP TABLE pledges;
