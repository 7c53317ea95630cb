DROP TABLE retirements;
DROP TABLE transfers;
DROP TABLE movements;
DROP TABLE serial_ranges;
DROP TABLE holdings;
DROP TABLE lots;
DROP TABLE proposals;
DROP TABLE right_types;
