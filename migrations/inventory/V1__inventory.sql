-- Stock levels, in the schema the docker-compose platform used. `quantity`
-- is what can still be sold; the CHECK makes overselling impossible even
-- if a guard were forgotten.
CREATE SCHEMA inventory;

CREATE TABLE inventory.inventory (
    product_id UUID    PRIMARY KEY,
    quantity   INTEGER NOT NULL CHECK (quantity >= 0)
);

-- What each order holds. Keyed by (order, product): a redelivered
-- `order-placed` cannot reserve twice.
CREATE TABLE inventory.reservations (
    order_id    UUID        NOT NULL,
    product_id  UUID        NOT NULL,
    quantity    INTEGER     NOT NULL CHECK (quantity > 0),
    reserved_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    released_at TIMESTAMPTZ,
    PRIMARY KEY (order_id, product_id)
);

-- Orders whose reservation was refused, so that a redelivery gives the same answer.
CREATE TABLE inventory.rejections (
    order_id    UUID        PRIMARY KEY,
    product_id  UUID        NOT NULL,
    rejected_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Products as admin-product announces them.
CREATE TABLE inventory.products (
    product_id UUID    PRIMARY KEY,
    version    BIGINT  NOT NULL,
    name       TEXT    NOT NULL,
    deleted    BOOLEAN NOT NULL DEFAULT false
);
