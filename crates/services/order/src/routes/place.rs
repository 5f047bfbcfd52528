//! `POST /api/orders/`: place an order.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use teipsum_events::{Event, OrderLine, OrderPlaced};
use teipsum_kit::{
    db::Db,
    domain::Invalid,
    http::{Caller, json_reply},
};
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use super::OrderError;
use crate::{
    domain::{Line, OrderRequest, idempotency_key},
    limits::Limits,
    model::{self, Order},
};

/// What a stored Idempotency-Key answers.
enum Outcome {
    /// A new order.
    Created(Order),
    /// The answer given to the first request with this key.
    Replayed(serde_json::Value),
}

/// Place an order priced from the service's own product view, within the
/// customer's [`Limits`]. With an `Idempotency-Key`, a retry returns the
/// first answer and creates nothing (even once the customer is at a cap).
#[utoipa::path(
    post,
    path = "/api/orders/",
    tag = "order",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 200, pattern = "^[!-~]+$",
        description = "1 to 200 printable ASCII characters: a retry with the same key and body answers with the first order and creates nothing")),
    request_body = OrderRequest,
    responses(
        (status = 201, description = "The order, `PLACED`; inventory confirms or rejects it shortly. A retry with an `Idempotency-Key` already answered gets the first answer again", body = Order),
        (status = 400, description = "`INVALID_INPUT`: the body or the key is not acceptable", body = teipsum_kit::http::ErrorBody),
        (status = 409, description = "`TOO_MANY_OPEN_ORDERS`: the customer has `max_open_orders` open orders", body = teipsum_kit::http::ErrorBody),
        (status = 422, description = "`QUANTITY_LIMIT`, `UNKNOWN_PRODUCT`, `PRODUCT_UNAVAILABLE`, `MIXED_CURRENCY` or `IDEMPOTENCY_KEY_REUSED` (the key came with another body)", body = teipsum_kit::http::ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: nginx's placement rate limit", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn place(
    db: Db,
    caller: Caller,
    limits: Limits,
    key: Option<String>,
    body: OrderRequest,
) -> Result<Response, OrderError> {
    let lines = body.lines()?;
    if let Some(line) = lines.iter().find(|l| l.quantity > limits.max_units) {
        return Err(OrderError::TooManyUnits {
            product_id: line.product_id,
            max: limits.max_units,
        });
    }
    let key = key.map(|k| idempotency_key(&k)).transpose()?;
    let user_id = caller.claims.sub;
    // What makes two requests "the same": the lines, in a canonical order.
    let request_hash = Sha256::digest(
        lines
            .iter()
            .map(|l| format!("{}:{}", l.product_id, l.quantity))
            .collect::<Vec<_>>()
            .join(","),
    )
    .to_vec();
    let outcome = db
        .run(move |conn| -> Result<Outcome, OrderError> {
            let mut tx = conn.transaction()?;
            if let Some(key) = &key {
                // A concurrent request with the same key waits here until
                // the first one commits, then finds its answer.
                let claimed = tx.execute(
                    "INSERT INTO idempotency_keys (user_id, key, request_hash) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&user_id, key, &request_hash],
                )?;
                if claimed == 0 {
                    let row = tx.query_one(
                        "SELECT request_hash, response FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                        &[&user_id, key],
                    )?;
                    let stored_hash: Vec<u8> = row.get(0);
                    let response: Option<serde_json::Value> = row.get(1);
                    return match response {
                        Some(response) if stored_hash == request_hash => Ok(Outcome::Replayed(response)),
                        Some(_) => Err(OrderError::KeyReused),
                        None => Err(anyhow::anyhow!("idempotency key without an answer").into()),
                    };
                }
            }
            hold_open_slot(&mut tx, user_id, &limits)?;
            let order = create(&mut tx, user_id, &lines)?;
            if let Some(key) = &key {
                let response = serde_json::to_value(&order).map_err(anyhow::Error::from)?;
                tx.execute(
                    "UPDATE idempotency_keys SET response = $3 WHERE user_id = $1 AND key = $2",
                    &[&user_id, key, &response],
                )?;
            }
            tx.commit()?;
            Ok(Outcome::Created(order))
        })
        .await?;
    match outcome {
        Outcome::Created(order) => {
            tracing::info!(order_id = %order.id, total_minor = order.total_minor, "order placed");
            Ok(json_reply(StatusCode::CREATED, &order))
        }
        Outcome::Replayed(response) => Ok(json_reply(StatusCode::CREATED, &response)),
    }
}

/// Refuse a customer who already has `max_open` open orders: `PLACED`, or
/// `CONFIRMED` less than `open_for` ago (nothing else ends a confirmed
/// order, and a customer's purchases must not add up to a ban).
///
/// The customer's row is locked first, so that concurrent placements of one
/// customer run this check one after the other: at READ COMMITTED the count,
/// a later statement, sees every order committed before the lock was given.
fn hold_open_slot(
    tx: &mut postgres::Transaction<'_>,
    user_id: Uuid,
    limits: &Limits,
) -> Result<(), OrderError> {
    tx.execute(
        "INSERT INTO customers (user_id) VALUES ($1) \
         ON CONFLICT (user_id) DO UPDATE SET last_placed_at = now()",
        &[&user_id],
    )?;
    let open: i64 = tx
        .query_one(
            "SELECT count(*) FROM orders WHERE user_id = $1 AND status IN ('PLACED', 'CONFIRMED') \
             AND (status = 'PLACED' OR created_at > now() - make_interval(secs => $2))",
            &[&user_id, &limits.open_for.as_secs_f64()],
        )?
        .get(0);
    if open >= limits.max_open {
        return Err(OrderError::TooManyOpenOrders {
            max: limits.max_open,
        });
    }
    Ok(())
}

/// Insert the order, its lines and its `order-placed` event.
fn create(
    tx: &mut postgres::Transaction<'_>,
    user_id: Uuid,
    lines: &[Line],
) -> Result<Order, OrderError> {
    let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
    let products: BTreeMap<Uuid, (String, i64, String, bool, bool)> = tx
        .query(
            "SELECT id, name, price_minor, currency, active, deleted FROM products WHERE id = ANY($1)",
            &[&ids],
        )?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))))
        .collect();
    let mut currency: Option<String> = None;
    let mut total: i64 = 0;
    let order_id = Uuid::now_v7();
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let (name, price, product_currency, active, deleted) = products
            .get(&line.product_id)
            .ok_or(OrderError::UnknownProduct(line.product_id))?;
        if *deleted {
            return Err(OrderError::UnknownProduct(line.product_id));
        }
        if !active {
            return Err(OrderError::Unavailable(line.product_id));
        }
        match &currency {
            None => currency = Some(product_currency.clone()),
            Some(c) if c != product_currency => return Err(OrderError::MixedCurrency),
            Some(_) => {}
        }
        let line_total = price
            .checked_mul(i64::from(line.quantity))
            .ok_or_else(|| Invalid::new("the order total is too large"))?;
        total = total
            .checked_add(line_total)
            .ok_or_else(|| Invalid::new("the order total is too large"))?;
        items.push((line, name.clone(), *price, line_total));
    }
    let currency = currency.expect("at least one line");
    tx.execute(
        "INSERT INTO orders (id, user_id, status, total_minor, currency) VALUES ($1, $2, 'PLACED', $3, $4)",
        &[&order_id, &user_id, &total, &currency],
    )?;
    for (line, name, price, line_total) in &items {
        tx.execute(
            "INSERT INTO order_items (order_id, product_id, name, quantity, unit_price_minor, line_total_minor) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&order_id, &line.product_id, name, &line.quantity, price, line_total],
        )?;
    }
    Event::OrderPlaced(OrderPlaced {
        order_id,
        user_id,
        items: lines
            .iter()
            .map(|l| OrderLine {
                product_id: l.product_id,
                quantity: i64::from(l.quantity),
            })
            .collect(),
    })
    .append(tx)?;
    model::load(tx, order_id)?
        .ok_or_else(|| anyhow::anyhow!("the order just inserted is gone").into())
}
