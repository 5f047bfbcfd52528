-- The per-account login throttle: consecutive failed logins, and until when
-- the account refuses attempts without checking the password. A success
-- resets both.
ALTER TABLE users
    ADD COLUMN failed_logins INTEGER     NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    ADD COLUMN locked_until  TIMESTAMPTZ;
