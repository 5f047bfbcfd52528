//! The user service: profiles of the people who registered.
//!
//! Profiles are created from `user-registered` events and carry login
//! statistics from `user-login` events, both applied idempotently. Routes
//! (under `/api/users/`): `GET/PUT me`, and `GET {id}` for admins.

pub mod domain;
pub mod events;
pub mod routes;

use teipsum_kit::{ConsumerSpec, Context, Parts, Service};
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/user");
}

/// The user service.
pub const SERVICE: Service = Service {
    name: "user",
    migrations: embedded::migrations::runner,
    verifies_tokens: true,
};

/// Topics the service consumes (must match `consumes` in config.ncl).
pub const CONSUMES: [&str; 2] = ["user-registered", "user-login"];

/// Largest request body accepted.
pub const BODY_LIMIT: u64 = 16 * 1024;

/// The service's consumer: what [`build`] runs, and what
/// `teipsum-user events replay` re-applies parked events through.
pub fn consumer() -> ConsumerSpec {
    ConsumerSpec {
        topics: CONSUMES.to_vec(),
        handler: Box::new(events::apply),
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
