DROP TRIGGER principals_changed ON principals;
DROP FUNCTION registry_principal_changed();
