-- Orders not confirmed in time end `EXPIRED` (their stock is released
-- through `order-cancelled`, as for a customer's cancel).
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('PLACED', 'CONFIRMED', 'REJECTED', 'CANCELLED', 'EXPIRED'));

-- One row per customer who ever placed an order: placing locks it, so two
-- concurrent placements of one customer count each other's open orders.
CREATE TABLE customers (
    user_id        UUID        PRIMARY KEY,
    last_placed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A customer's open orders, counted at every placement.
CREATE INDEX orders_open_by_user ON orders (user_id) WHERE status IN ('PLACED', 'CONFIRMED');
-- Orders waiting for inventory's answer, oldest first, for the expiry sweep.
CREATE INDEX orders_placed_by_age ON orders (created_at) WHERE status = 'PLACED';
