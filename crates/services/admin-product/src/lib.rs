//! The admin-product service: the products administrators manage.
//!
//! Routes (under `/api/admin/products/`, administrators only): create, list,
//! get, replace and delete; see docs/api.md. Every change bumps the
//! product's version (its ETag; `PUT` and `DELETE` need it in `If-Match`)
//! and appends `product-created`, `product-updated` or `product-deleted`
//! to `product-events` through the outbox, in the transaction that makes
//! the change, so that the event and the change exist together or not at all.

mod domain;
mod precondition;
mod product;
mod routes;

use teipsum_kit::{Context, Parts, Service};

pub use product::announce_all;
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/admin-product");
}

/// The admin-product service.
pub const SERVICE: Service = Service {
    name: teipsum_events::service::ADMIN_PRODUCT,
    migrations: embedded::migrations::runner,
    verifies_tokens: true,
    openapi,
};

/// Largest request body accepted: a product with a full description and
/// ten long image URLs fits with room to spare.
const BODY_LIMIT: u64 = 64 * 1024;

/// Build the service from its context.
pub fn build(
    ctx: &Context,
) -> anyhow::Result<
    Parts<impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>>,
> {
    Ok(Parts {
        routes: routes::routes(ctx.db.clone(), ctx.verifier()),
        consumer: None,
    })
}

/// This service's routes in the platform's OpenAPI document: paths as the
/// edge routes them, with their bodies, parameters and answers (merged with
/// the other services' into docs/openapi.json by `teipsum-openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <routes::Api as utoipa::OpenApi>::openapi()
}
