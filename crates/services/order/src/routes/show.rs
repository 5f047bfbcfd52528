//! `GET /api/orders/{id}`.

use teipsum_kit::{
    db::Db,
    domain::PathId,
    http::{Caller, json_reply},
};
use warp::{http::StatusCode, reply::Response};

use super::{OrderError, order_id};
use crate::model;

/// One order, to its owner or an admin. Someone else's order is "not
/// found": the answer does not tell which order ids exist.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "order",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "The order's id")),
    responses(
        (status = 200, description = "The order", body = crate::model::Order),
        (status = 400, description = "`INVALID_INPUT`: the id is not a UUID", body = teipsum_kit::http::ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such order, or not the caller's", body = teipsum_kit::http::ErrorBody),
    ),
)]
pub async fn show(id: PathId, db: Db, caller: Caller) -> Result<Response, OrderError> {
    let id = order_id(&id)?;
    let order = db
        .run(move |conn| -> Result<_, OrderError> { Ok(model::load(&mut **conn, id)?) })
        .await?
        .filter(|o| o.user_id == caller.claims.sub || caller.is_admin())
        .ok_or(OrderError::NotFound)?;
    Ok(json_reply(StatusCode::OK, &order))
}
