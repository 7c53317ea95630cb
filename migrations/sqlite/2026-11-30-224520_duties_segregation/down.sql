DROP INDEX principals_person;
UPDATE principals SET role = 'operator' WHERE role = 'user_admin';
ALTER TABLE proposals DROP COLUMN proposed_by_person;
ALTER TABLE principals DROP COLUMN person_id;
