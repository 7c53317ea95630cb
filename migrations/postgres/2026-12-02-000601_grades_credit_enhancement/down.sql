DROP TABLE credit_enhancements;
