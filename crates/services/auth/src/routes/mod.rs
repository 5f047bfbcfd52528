//! The routes of `/api/auth/`.

pub mod admin;
pub mod login;
pub mod logout;
pub mod refresh;
pub mod register;

use std::sync::Arc;

use teipsum_kit::http::{answer, json_body};
use warp::{Filter, Rejection, reply::Response};

use crate::{Auth, BODY_LIMIT};

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
        .map(answer);
    let login = post("login")
        .and(state.clone())
        .and(json_body(BODY_LIMIT))
        .then(login::login)
        .map(answer);
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
