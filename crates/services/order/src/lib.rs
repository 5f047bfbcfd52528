//! The order service: customers place, list and cancel orders.
//!
//! An order starts `PLACED`; its `order-placed` event asks inventory to
//! reserve stock, and inventory's answer (`stock-reserved` or
//! `reservation-rejected`) makes it `CONFIRMED` or `REJECTED`. Cancelling
//! emits `order-cancelled`, and inventory releases what it reserved. Prices
//! come from the service's own view of the products (from `product-events`).
//!
//! One customer cannot hold all the stock: its limits cap the units
//! per product and the open orders of each customer, and an order still
//! `PLACED` after the confirmation window ends `EXPIRED`.

mod domain;
mod events;
mod expiry;
mod limits;
mod metrics;
mod model;
mod routes;

use teipsum_events::Subscription;
use teipsum_kit::{ConsumerSpec, Context, Parts, Service};
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/order");
}

/// The order service.
pub const SERVICE: Service = Service {
    name: teipsum_events::service::ORDER,
    migrations: embedded::migrations::runner,
    verifies_tokens: true,
    openapi,
};

/// Largest request body accepted.
const BODY_LIMIT: u64 = 32 * 1024;

/// The service's consumer: what [`build`] runs, and what
/// `teipsum-order events replay` re-applies parked events through.
pub fn consumer() -> ConsumerSpec {
    teipsum_events::consumer(Subscription::ORDER, events::apply)
}

/// Build the service from its context.
pub fn build(
    ctx: &Context,
) -> anyhow::Result<
    Parts<impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>>,
> {
    let limits = limits::Limits::from_settings(&ctx.settings)?;
    let saga = metrics::Saga::register(ctx);
    // Stops with the service; a sweep interrupted mid-way rolls back.
    ctx.spawn(expiry::run(
        ctx.db.clone(),
        limits.confirm_within,
        limits.sweep_every(),
        saga.clone(),
    ));
    // Replayed keys older than the retention get a new order: by then the
    // client gave up long ago.
    ctx.retain("idempotency_keys", "created_at");
    let consumer = consumer();
    Ok(Parts {
        routes: routes::routes(ctx.db.clone(), ctx.verifier(), limits, saga.clone()),
        consumer: Some(ConsumerSpec {
            topics: consumer.topics,
            handler: Box::new(metrics::Observed::new(consumer.handler, saga)),
        }),
    })
}

/// This service's routes in the platform's OpenAPI document: paths as the
/// edge routes them, with their bodies, parameters and answers (merged with
/// the other services' into docs/openapi.json by `teipsum-openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <routes::Api as utoipa::OpenApi>::openapi()
}
