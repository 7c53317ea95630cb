DROP TABLE password_change_due;
DROP TABLE login_failures;
