//! The user service: profiles of the people who registered.
//!
//! Profiles are created from `user-registered` events and carry login
//! statistics from `user-login` events, both applied idempotently. Routes
//! (under `/api/users/`): `GET/PUT me`, and `GET {id}` for admins.

mod domain;
mod events;
mod routes;

use teipsum_events::Subscription;
use teipsum_kit::{ConsumerSpec, Context, Parts, Service};
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/user");
}

/// The user service.
pub const SERVICE: Service = Service {
    name: teipsum_events::service::USER,
    migrations: embedded::migrations::runner,
    verifies_tokens: true,
    openapi,
};

/// Largest request body accepted.
const BODY_LIMIT: u64 = 16 * 1024;

/// The service's consumer: what [`build`] runs, and what
/// `teipsum-user events replay` re-applies parked events through.
pub fn consumer() -> ConsumerSpec {
    teipsum_events::consumer(Subscription::USER, events::apply)
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
