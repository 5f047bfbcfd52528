//! The catalog service: the public, read-only view of the products.
//!
//! A read model built from `product-events` (admin-product) and
//! `inventory-events` (inventory), applied idempotently by the kit's
//! consumer; no authentication. Routes: `GET /api/products` (keyset pages,
//! category filter, full-text search, sorting) and `GET /api/products/{id}`
//! (with stock). Responses carry an `ETag` and `Cache-Control: public,
//! max-age=5` so that nginx can micro-cache them; `If-None-Match` gives 304.

pub mod cache;
pub mod domain;
pub mod events;
pub mod routes;

use teipsum_kit::{ConsumerSpec, Context, Parts, Service};
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/catalog");
}

/// The catalog service.
pub const SERVICE: Service = Service {
    name: "catalog",
    migrations: embedded::migrations::runner,
    verifies_tokens: false,
};

/// Topics the service consumes (must match `consumes` in config.ncl).
pub const CONSUMES: [&str; 2] = [events::PRODUCT_EVENTS, events::INVENTORY_EVENTS];

/// The service's consumer: what [`build`] runs, and what
/// `teipsum-catalog events replay` re-applies parked events through.
pub fn consumer() -> ConsumerSpec {
    ConsumerSpec {
        topics: CONSUMES.to_vec(),
        handler: Box::new(teipsum_kit::events::only(events::KINDS, events::apply)),
    }
}

/// Build the service from its context.
pub fn build(
    ctx: &Context,
) -> anyhow::Result<
    Parts<impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>>,
> {
    Ok(Parts {
        routes: routes::routes(ctx.db.clone()),
        consumer: Some(consumer()),
    })
}
