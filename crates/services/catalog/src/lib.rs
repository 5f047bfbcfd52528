//! The catalog service: the public, read-only view of the products.
//!
//! A read model built from `product-events` (admin-product) and
//! `inventory-events` (inventory), applied idempotently by the kit's
//! consumer; no authentication. Routes: `GET /api/products` (keyset pages,
//! category filter, full-text search, sorting) and `GET /api/products/{id}`
//! (with stock). Responses carry an `ETag` and `Cache-Control: public,
//! max-age=5` so that nginx can micro-cache them; `If-None-Match` gives 304.
//! Product pages are answered from an in-process snapshot (`snapshot.rs`) that the
//! consumer keeps current, without a database round trip.

mod cache;
mod domain;
mod events;
mod routes;
mod snapshot;

use teipsum_events::Subscription;
use teipsum_kit::{ConsumerSpec, Context, Parts, Service};
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/catalog");
}

/// The catalog service.
pub const SERVICE: Service = Service {
    name: teipsum_events::service::CATALOG,
    migrations: embedded::migrations::runner,
    verifies_tokens: false,
    openapi,
};

/// The service's consumer: what [`build`] runs, and what
/// `teipsum-catalog events replay` re-applies parked events through.
pub fn consumer() -> ConsumerSpec {
    teipsum_events::consumer(Subscription::CATALOG, events::apply)
}

/// Build the service from its context.
pub fn build(
    ctx: &Context,
) -> anyhow::Result<
    Parts<impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>>,
> {
    let snapshot = snapshot::Snapshot::default();
    snapshot.keep_loaded(&ctx.db)?;
    let consumer = consumer();
    Ok(Parts {
        routes: routes::routes(ctx.db.clone(), snapshot.clone()),
        consumer: Some(ConsumerSpec {
            topics: consumer.topics,
            handler: Box::new(snapshot::Refreshing::new(
                consumer.handler,
                snapshot,
                ctx.db.clone(),
            )),
        }),
    })
}

/// This service's routes in the platform's OpenAPI document: paths as the
/// edge routes them, with their bodies, parameters and answers (merged with
/// the other services' into docs/openapi.json by `teipsum-openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <routes::Api as utoipa::OpenApi>::openapi()
}
