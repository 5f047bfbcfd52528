-- The order service's own view of the products, from `product-events`:
-- prices come from here, never from the client.
CREATE TABLE products (
    id          UUID    PRIMARY KEY,
    version     BIGINT  NOT NULL,
    name        TEXT    NOT NULL,
    price_minor BIGINT  NOT NULL CHECK (price_minor >= 0),
    currency    TEXT    NOT NULL,
    active      BOOLEAN NOT NULL,
    deleted     BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE orders (
    id          UUID        PRIMARY KEY,
    user_id     UUID        NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('PLACED', 'CONFIRMED', 'REJECTED', 'CANCELLED')),
    total_minor BIGINT      NOT NULL CHECK (total_minor >= 0),
    currency    TEXT        NOT NULL,
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The caller's orders, newest first, for keyset pagination.
CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id DESC);

CREATE TABLE order_items (
    order_id         UUID    NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    product_id       UUID    NOT NULL,
    name             TEXT    NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT  NOT NULL CHECK (unit_price_minor >= 0),
    line_total_minor BIGINT  NOT NULL CHECK (line_total_minor >= 0),
    PRIMARY KEY (order_id, product_id)
);

-- Idempotency-Key: the first answer to a (user, key) is kept and given again.
CREATE TABLE idempotency_keys (
    user_id      UUID        NOT NULL,
    key          TEXT        NOT NULL,
    request_hash BYTEA       NOT NULL,
    response     JSONB,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
