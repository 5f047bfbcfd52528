//! The inventory service: stock levels and the reservations of orders.
//!
//! It answers each `order-placed` by reserving every line or none, with
//! guarded updates on rows taken in a fixed order, and releases exactly what
//! it reserved on `order-cancelled`. Admins set and adjust stock under
//! `/api/admin/inventory/`. Every change of a level emits `stock-changed`.

pub mod reservations;
pub mod routes;
pub mod stock;

use teipsum_kit::{ConsumerSpec, Context, Parts, Service};
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/inventory");
}

/// The inventory service.
pub const SERVICE: Service = Service {
    name: "inventory",
    migrations: embedded::migrations::runner,
    verifies_tokens: true,
};

/// Topics the service consumes (must match `consumes` in config.ncl).
pub const CONSUMES: [&str; 2] = ["order-events", "product-events"];
/// Topics it produces to.
pub const PRODUCES: [&str; 1] = ["inventory-events"];

/// Largest request body accepted.
pub const BODY_LIMIT: u64 = 4 * 1024;

/// The service's consumer: what [`build`] runs, and what
/// `teipsum-inventory events replay` re-applies parked events through.
pub fn consumer() -> ConsumerSpec {
    ConsumerSpec {
        topics: CONSUMES.to_vec(),
        handler: Box::new(reservations::apply),
    }
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
