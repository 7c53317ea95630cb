DROP TABLE objections;
