-- The transactional outbox: a service inserts its events here in the same
-- transaction as the state change they describe; the relay publishes them
-- in `seq` order and stamps `sent_at`.
CREATE TABLE kit_outbox (
    seq        BIGSERIAL PRIMARY KEY,
    event_id   UUID        NOT NULL UNIQUE,
    topic      TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    payload    JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at    TIMESTAMPTZ
);
CREATE INDEX kit_outbox_unsent ON kit_outbox (seq) WHERE sent_at IS NULL;

-- Wake the relay as soon as events are committed (NOTIFY is delivered at commit).
CREATE FUNCTION kit_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('kit_outbox', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER kit_outbox_notify AFTER INSERT ON kit_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION kit_outbox_notify();

-- The idempotent consumer's ledger: an event's effect and its row here
-- commit together, so a redelivered event is recognised and skipped.
CREATE TABLE kit_processed_events (
    consumer     TEXT        NOT NULL,
    event_id     UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Messages a consumer could not apply after retrying: kept for a human,
-- so that one bad message does not stop a partition forever.
CREATE TABLE kit_parked_events (
    id          BIGSERIAL PRIMARY KEY,
    consumer    TEXT        NOT NULL,
    topic       TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    "offset"    BIGINT      NOT NULL,
    key         TEXT,
    payload     BYTEA,
    error       TEXT        NOT NULL,
    parked_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
