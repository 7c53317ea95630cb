-- Segregation of duties. User administration is a role of its own (`user_admin`): it creates and
-- disables accounts and cannot operate the registry; operators cannot create accounts. Each
-- operator account names the natural person behind it (`person_id`), and maker-checker compares
-- persons, not accounts.
ALTER TABLE principals ADD COLUMN person_id TEXT;
ALTER TABLE proposals ADD COLUMN proposed_by_person TEXT;

-- Existing deployments: the bootstrap `admin` keeps administering users, as `user_admin`; it no
-- longer operates. Every other existing operator account is taken to be a person of its own
-- (`account:<username>`); a user administrator corrects that where one person holds two accounts.
UPDATE principals SET role = 'user_admin' WHERE username = 'admin' AND kind = 'user' AND role = 'operator';
UPDATE principals SET person_id = 'account:' || username WHERE role = 'operator' AND person_id IS NULL;
UPDATE proposals SET proposed_by_person =
  (SELECT p.person_id FROM principals AS p WHERE p.id = proposals.proposed_by);
CREATE INDEX principals_person ON principals (person_id);
