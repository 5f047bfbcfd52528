-- The catalog's read model, built only from events: products from
-- `product-events`, stock from `inventory-events`. Nothing here is the
-- source of truth; replaying both topics from the start rebuilds it.

-- One row per product ever heard of. `version` guards every write: an
-- event older than the row is ignored, so redelivered or reordered events
-- cannot roll a product back. A deleted product stays as a tombstone (its
-- id, its last version, no data), so that an older `product-updated`
-- arriving after `product-deleted` cannot bring it back.
CREATE TABLE products (
    id          UUID        PRIMARY KEY,
    version     BIGINT      NOT NULL CHECK (version >= 1),
    deleted     BOOLEAN     NOT NULL DEFAULT false,
    name        TEXT,
    description TEXT,
    sku         TEXT,
    price_minor BIGINT      CHECK (price_minor >= 0),
    currency    TEXT,
    category    TEXT,
    image_urls  TEXT[],
    active      BOOLEAN,
    -- When the product was first announced (the earliest event seen): the
    -- "newest" order. Only ever moves back in time.
    created_at  TIMESTAMPTZ NOT NULL,
    -- When the version shown was made.
    updated_at  TIMESTAMPTZ NOT NULL,
    -- Built-in full-text search ('simple': no stemming, no stop words, so
    -- names and SKU-like words match as typed); no extension needed.
    search      TSVECTOR    GENERATED ALWAYS AS
                (to_tsvector('simple', coalesce(name, '') || ' ' || coalesce(description, ''))) STORED,
    CHECK (deleted OR (name IS NOT NULL AND description IS NOT NULL AND sku IS NOT NULL
                       AND price_minor IS NOT NULL AND currency IS NOT NULL
                       AND category IS NOT NULL AND image_urls IS NOT NULL AND active IS NOT NULL))
);

-- What shoppers can see, in each order the list offers (keyset pagination
-- walks these indexes from the cursor on).
CREATE INDEX products_newest   ON products (created_at DESC, id DESC) WHERE active AND NOT deleted;
CREATE INDEX products_price    ON products (price_minor, id)          WHERE active AND NOT deleted;
CREATE INDEX products_name     ON products (lower(name), id)          WHERE active AND NOT deleted;
CREATE INDEX products_category ON products (category)                 WHERE active AND NOT deleted;
CREATE INDEX products_search   ON products USING GIN (search);

-- Available units per product, from `stock-changed`. A table of its own:
-- stock and products arrive on different topics, in no guaranteed order,
-- and stock for a product not yet heard of must not be lost.
CREATE TABLE stock (
    product_id UUID        PRIMARY KEY,
    quantity   BIGINT      NOT NULL CHECK (quantity >= 0),
    -- `occurred_at` of the event applied: an older one is ignored.
    as_of      TIMESTAMPTZ NOT NULL
);
