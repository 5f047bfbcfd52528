-- A login starts a family; every token of the family is judged by this row.
-- Refresh, logout and reuse detection lock it (SELECT ... FOR UPDATE), so a
-- logout cannot miss the token a concurrent refresh is adding. `expires_at`
-- is fixed at login: rotation never extends a session.
CREATE TABLE refresh_families (
    id          UUID        PRIMARY KEY,
    user_id     UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX refresh_families_expires ON refresh_families (expires_at);

-- The families of the sessions that exist. A family with one revoked token
-- is revoked as a whole (before this table a racing refresh could leave one
-- token of a logged-out family valid).
INSERT INTO refresh_families (id, user_id, created_at, expires_at, revoked_at)
SELECT family_id, (array_agg(user_id))[1], min(created_at), max(expires_at), max(revoked_at)
FROM refresh_tokens
GROUP BY family_id;

ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_family_fkey
    FOREIGN KEY (family_id) REFERENCES refresh_families (id) ON DELETE CASCADE;
