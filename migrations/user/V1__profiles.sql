-- Profiles, created from `user-registered` events.
CREATE TABLE profiles (
    id               UUID        PRIMARY KEY,
    email            TEXT        NOT NULL,
    display_name     TEXT        NOT NULL,
    shipping_address JSONB,
    phone            TEXT,
    preferences      JSONB       NOT NULL DEFAULT '{"newsletter": false, "language": "en"}',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Login statistics, from `user-login` events. A table of their own: logins
-- and registrations arrive on different topics, in no guaranteed order.
CREATE TABLE logins (
    user_id       UUID        PRIMARY KEY,
    last_login_at TIMESTAMPTZ NOT NULL,
    login_count   INTEGER     NOT NULL
);
