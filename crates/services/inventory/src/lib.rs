//! The inventory service: stock levels and the reservations of orders.
//!
//! It answers each `order-placed` by reserving every line or none, with
//! guarded updates on rows taken in a fixed order, and releases exactly what
//! it reserved on `order-cancelled`. Admins set and adjust stock under
//! `/api/admin/inventory/`. Every change of a level emits `stock-changed`.

mod reservations;
mod routes;
mod stock;

use teipsum_events::Subscription;
use teipsum_kit::{ConsumerSpec, Context, Parts, Service};

pub use stock::announce_all;
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/inventory");
}

/// The inventory service.
pub const SERVICE: Service = Service {
    name: teipsum_events::service::INVENTORY,
    migrations: embedded::migrations::runner,
    verifies_tokens: true,
    openapi,
};

/// Largest request body accepted.
const BODY_LIMIT: u64 = 4 * 1024;

/// The service's consumer: what [`build`] runs, and what
/// `teipsum-inventory events replay` re-applies parked events through.
pub fn consumer() -> ConsumerSpec {
    teipsum_events::consumer_batched(Subscription::INVENTORY, reservations::Reserver::default())
}

/// Build the service from its context.
pub fn build(
    ctx: &Context,
) -> anyhow::Result<
    Parts<impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>>,
> {
    Ok(Parts {
        routes: routes::routes(ctx.db.clone(), ctx.verifier()),
        consumer: Some(consumer()),
    })
}

/// This service's routes in the platform's OpenAPI document: paths as the
/// edge routes them, with their bodies, parameters and answers (merged with
/// the other services' into docs/openapi.json by `teipsum-openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <routes::Api as utoipa::OpenApi>::openapi()
}
