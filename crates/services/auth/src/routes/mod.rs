//! The routes of `/api/auth/`.

mod admin;
mod login;
mod logout;
mod refresh;
mod register;

use std::sync::Arc;

use teipsum_kit::http::{ErrorResponse, answer, error_reply, json_body};
use warp::{
    Filter, Rejection,
    http::{HeaderValue, header::RETRY_AFTER},
    reply::Response,
};

use crate::{Auth, BODY_LIMIT};

pub use admin::promote_from_cli;
pub(crate) use login::Logins;

/// Seconds a client is asked to wait when every hashing slot is taken.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Refusals that tell the client when to come back (429, 503).
pub trait RetryAfter {
    /// Seconds to wait, for the errors that have them.
    fn retry_after(&self) -> Option<u64>;
}

/// [`answer`], with `Retry-After` on the refusals that carry it. Those are
/// expected answers, not faults: their own code and message are sent.
fn answer_retry<E: ErrorResponse + RetryAfter + 'static>(result: Result<Response, E>) -> Response {
    match result {
        Err(error) => match error.retry_after() {
            Some(seconds) => {
                let (status, code) = error.response();
                let mut response = error_reply(status, code, &error.to_string());
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds));
                response
            }
            None => answer(Err(error)),
        },
        ok => answer(ok),
    }
}

/// The service's part of the platform's OpenAPI document (docs/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(paths(register::register, login::login, refresh::refresh, logout::logout))]
pub struct Api;

/// Every route of the service.
pub fn routes(auth: Arc<Auth>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let state = warp::any().map(move || auth.clone());
    let post = |name: &'static str| {
        warp::path!("api" / "auth" / ..)
            .and(warp::path(name))
            .and(warp::path::end())
            .and(warp::post())
    };
    let register = post("register")
        .and(state.clone())
        .and(json_body(BODY_LIMIT))
        .then(register::register)
        .map(answer_retry);
    let login = post("login")
        .and(state.clone())
        .and(json_body(BODY_LIMIT))
        .then(login::login)
        .map(answer_retry);
    let refresh = post("refresh")
        .and(state.clone())
        .and(json_body(BODY_LIMIT))
        .then(refresh::refresh)
        .map(answer);
    let logout = post("logout")
        .and(state)
        .and(json_body(BODY_LIMIT))
        .then(logout::logout)
        .map(answer);
    register
        .or(login)
        .unify()
        .or(refresh)
        .unify()
        .or(logout)
        .unify()
}
