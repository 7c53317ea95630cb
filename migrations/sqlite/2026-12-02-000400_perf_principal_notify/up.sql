-- PostgreSQL announces changes of principals to every process (a trigger and NOTIFY); an embedded
-- database is served by the processes of one machine, which signal each other through a file
-- beside the database (see src/auth/cache.rs). Nothing changes in the schema.
SELECT 1;
