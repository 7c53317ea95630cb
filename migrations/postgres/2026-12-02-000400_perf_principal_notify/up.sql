-- Every change of a principal (disabled, re-enabled, tokens revoked, password changed, role or
-- party changed, deleted) is announced on channel `registry_principals` with the principal's id,
-- when its transaction commits. Each server process keeps principals in memory and drops the
-- ones named here, so a revocation made by any process (or by hand in SQL) holds everywhere at
-- once. A trigger rather than the application, so that no path that changes the table is missed.
CREATE FUNCTION registry_principal_changed() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('registry_principals', OLD.id::text);
    ELSE
        PERFORM pg_notify('registry_principals', NEW.id::text);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER principals_changed AFTER UPDATE OR DELETE ON principals
    FOR EACH ROW EXECUTE FUNCTION registry_principal_changed();
