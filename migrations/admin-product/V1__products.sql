-- The products administrators manage: the source of truth that
-- `product-events` describe. A deleted product stays as a row with
-- `deleted_at` set: its id and last version are never reused, and its SKU
-- becomes free again.
CREATE TABLE products (
    id          UUID        PRIMARY KEY,
    sku         TEXT        NOT NULL CHECK (sku ~ '^[A-Z0-9-]{3,40}$'),
    name        TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    description TEXT        NOT NULL CHECK (length(description) <= 5000),
    -- Integer minor units: no rounding anywhere, ever.
    price_minor BIGINT      NOT NULL CHECK (price_minor >= 0 AND price_minor < 1000000000000),
    currency    TEXT        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    category    TEXT        NOT NULL,
    image_urls  TEXT[]      NOT NULL DEFAULT '{}',
    active      BOOLEAN     NOT NULL,
    -- Bumped by every change (deletion included); the ETag, the If-Match
    -- precondition and the `version` of every event.
    version     BIGINT      NOT NULL CHECK (version >= 1),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at  TIMESTAMPTZ
);

-- SKUs are unique among the products that exist; the index, not a check in
-- the code, is what makes two racing creations with one SKU impossible.
CREATE UNIQUE INDEX products_sku_unique ON products (sku) WHERE deleted_at IS NULL;
