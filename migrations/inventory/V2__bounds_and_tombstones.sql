-- Levels are BIGINT: the API bounds them (1 000 000 units on hand), and a
-- level can never overflow the column whatever the events add back.
ALTER TABLE inventory.inventory ALTER COLUMN quantity TYPE BIGINT;
ALTER TABLE inventory.reservations ALTER COLUMN quantity TYPE BIGINT;

-- Why an order was refused, so that a redelivery gives the same answer.
ALTER TABLE inventory.rejections ADD COLUMN reason TEXT NOT NULL DEFAULT 'insufficient stock';

-- Orders cancelled (or expired), even before their `order-placed` was seen:
-- if `order-events` ever delivered a cancel first (a partition added to the
-- topic moves an order's key), the placement that follows reserves nothing.
CREATE TABLE inventory.cancellations (
    order_id     UUID        PRIMARY KEY,
    cancelled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
