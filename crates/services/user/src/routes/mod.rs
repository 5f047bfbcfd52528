//! The routes of `/api/users/`.

use std::sync::Arc;

use serde::Serialize;
use teipsum_kit::{
    db::Db,
    domain::{Invalid, PathId},
    http::{
        Caller, ErrorBody, ErrorResponse, admin, answer, authenticated, json_body, json_reply,
        unexpected_response,
    },
    jwt::Verifier,
};
use time::OffsetDateTime;
use uuid::Uuid;
use warp::{Filter, Rejection, http::StatusCode, reply::Response};

use crate::{
    BODY_LIMIT,
    domain::{Address, Preferences, ProfileEdit},
};

/// A profile as clients see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    id: Uuid,
    email: String,
    display_name: String,
    shipping_address: Option<Address>,
    phone: Option<String>,
    preferences: Preferences,
    #[serde(with = "time::serde::rfc3339::option")]
    last_login_at: Option<OffsetDateTime>,
    login_count: i32,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The profile does not exist (yet).
    #[error("no profile yet; it is created a moment after registration")]
    NotFound,
    /// A field of an edit is not acceptable.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(ProfileError);

impl ErrorResponse for ProfileError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            ProfileError::NotFound => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ProfileError::Invalid(e) => e.response(),
            ProfileError::Unexpected(e) => unexpected_response(e),
        }
    }
}

const SELECT: &str = "SELECT p.id, p.email, p.display_name, p.shipping_address, p.phone, p.preferences, \
                      l.last_login_at, coalesce(l.login_count, 0) AS login_count, p.created_at \
                      FROM profiles p LEFT JOIN logins l ON l.user_id = p.id WHERE p.id = $1";

fn profile(row: &postgres::Row) -> Result<Profile, ProfileError> {
    let address: Option<serde_json::Value> = row.get("shipping_address");
    let preferences: serde_json::Value = row.get("preferences");
    Ok(Profile {
        id: row.get("id"),
        email: row.get("email"),
        display_name: row.get("display_name"),
        shipping_address: address
            .map(serde_json::from_value)
            .transpose()
            .map_err(anyhow::Error::from)?,
        phone: row.get("phone"),
        preferences: serde_json::from_value(preferences).map_err(anyhow::Error::from)?,
        last_login_at: row.get("last_login_at"),
        login_count: row.get("login_count"),
        created_at: row.get("created_at"),
    })
}

async fn load(db: &Db, id: Uuid) -> Result<Profile, ProfileError> {
    db.run(move |conn| -> Result<Profile, ProfileError> {
        let row = conn
            .query_opt(SELECT, &[&id])?
            .ok_or(ProfileError::NotFound)?;
        profile(&row)
    })
    .await
}

/// `GET /api/users/me`.
#[utoipa::path(
    get,
    path = "/api/users/me",
    tag = "user",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's profile", body = Profile),
        (status = 404, description = "`NOT_FOUND`: the profile is still being created from the registration event", body = ErrorBody),
    ),
)]
pub async fn get_me(db: Db, caller: Caller) -> Result<Response, ProfileError> {
    Ok(json_reply(
        StatusCode::OK,
        &load(&db, caller.claims.sub).await?,
    ))
}

/// `PUT /api/users/me`.
#[utoipa::path(
    put,
    path = "/api/users/me",
    tag = "user",
    security(("bearer" = [])),
    request_body = ProfileEdit,
    responses(
        (status = 200, description = "The profile as edited", body = Profile),
        (status = 400, description = "`INVALID_INPUT`: a field is not acceptable", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no profile yet", body = ErrorBody),
    ),
)]
pub async fn update_me(
    db: Db,
    caller: Caller,
    edit: ProfileEdit,
) -> Result<Response, ProfileError> {
    let edit = edit.validated()?;
    let id = caller.claims.sub;
    let updated = db
        .run(move |conn| -> Result<Profile, ProfileError> {
            let address = edit.shipping_address.map(|a| serde_json::to_value(a).expect("serializes"));
            let preferences = serde_json::to_value(&edit.preferences).expect("serializes");
            let changed = conn.execute(
                "UPDATE profiles SET display_name = $2, shipping_address = $3, phone = $4, preferences = $5, updated_at = now() WHERE id = $1",
                &[&id, &edit.display_name, &address, &edit.phone, &preferences],
            )?;
            if changed == 0 {
                return Err(ProfileError::NotFound);
            }
            profile(&conn.query_one(SELECT, &[&id])?)
        })
        .await?;
    Ok(json_reply(StatusCode::OK, &updated))
}

/// `GET /api/users/{id}` (admins).
#[utoipa::path(
    get,
    path = "/api/users/{id}",
    tag = "user",
    security(("bearer" = ["admin"])),
    params(("id" = String, Path, format = Uuid, description = "The user's id")),
    responses(
        (status = 200, description = "The user's profile", body = Profile),
        (status = 400, description = "`INVALID_INPUT`: the id is not a UUID", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
    ),
)]
pub async fn get_one(db: Db, id: PathId, _admin: Caller) -> Result<Response, ProfileError> {
    let id = id.uuid("user")?;
    Ok(json_reply(StatusCode::OK, &load(&db, id).await?))
}

/// The service's part of the platform's OpenAPI document (docs/openapi.json).
#[derive(utoipa::OpenApi)]
#[openapi(paths(get_me, update_me, get_one))]
pub struct Api;

/// Every route of the service.
pub fn routes(
    db: Db,
    verifier: Arc<Verifier>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let db = warp::any().map(move || db.clone());
    let me = warp::path!("api" / "users" / "me");
    let get_me = me
        .and(warp::get())
        .and(db.clone())
        .and(authenticated(verifier.clone()))
        .then(get_me)
        .map(answer);
    let update_me = me
        .and(warp::put())
        .and(db.clone())
        .and(authenticated(verifier.clone()))
        .and(json_body(BODY_LIMIT))
        .then(update_me)
        .map(answer);
    let get_one = warp::path!("api" / "users" / PathId)
        .and(warp::get())
        .and(db)
        .and(admin(verifier))
        .then(|id, db, caller| get_one(db, id, caller))
        .map(answer);
    get_me.or(update_me).unify().or(get_one).unify()
}
