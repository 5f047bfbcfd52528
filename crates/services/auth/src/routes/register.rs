//! `POST /api/auth/register`.

use std::sync::Arc;

use serde::Deserialize;
use teipsum_events::{Event, UserRegistered};
use teipsum_kit::{
    domain::Invalid,
    http::{ErrorBody, ErrorResponse, json_reply, unexpected_response},
};
use uuid::Uuid;
use warp::{http::StatusCode, reply::Response};

use crate::{
    Auth, User,
    domain::{DisplayName, Email, Password},
    passwords,
};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The address to log in with; compared case-insensitively.
    #[schema(min_length = 3, max_length = 254, example = "ana@example.org")]
    email: String,
    /// 12 to 128 characters.
    #[schema(min_length = 12, max_length = 128)]
    password: String,
    /// 1 to 64 visible characters on one line.
    #[schema(min_length = 1, max_length = 64)]
    display_name: String,
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A field is not acceptable.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// The address has an account.
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    /// Every password hashing slot is taken.
    #[error(transparent)]
    Busy(#[from] passwords::Busy),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(RegisterError);

impl super::RetryAfter for RegisterError {
    fn retry_after(&self) -> Option<u64> {
        matches!(self, RegisterError::Busy(_)).then_some(super::BUSY_RETRY_AFTER_SECS)
    }
}

impl ErrorResponse for RegisterError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            RegisterError::Invalid(e) => e.response(),
            RegisterError::EmailTaken => (StatusCode::CONFLICT, "EMAIL_TAKEN"),
            RegisterError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "BUSY"),
            RegisterError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// Create a customer account and announce it. Registration never grants
/// the admin role: that takes an operator on the host (`promote-admin`).
#[utoipa::path(
    post,
    path = "/api/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The new account, always a `customer`", body = User),
        (status = 400, description = "`INVALID_INPUT`: a field is not acceptable", body = ErrorBody),
        (status = 409, description = "`EMAIL_TAKEN` (case-insensitive)", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: nginx's authentication rate limit", body = ErrorBody),
        (status = 503, description = "`BUSY` (every password hashing slot is taken; `Retry-After: 1`) or `UNAVAILABLE`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ),
)]
pub async fn register(auth: Arc<Auth>, body: RegisterRequest) -> Result<Response, RegisterError> {
    let email = Email::parse(&body.email)?;
    let password = Password::parse(&body.password)?;
    let name = DisplayName::parse(&body.display_name)?;
    let hash = auth.hasher.hash(password.expose().to_owned()).await?;
    let user = User {
        id: Uuid::now_v7(),
        email: email.as_str().to_owned(),
        display_name: name.as_str().to_owned(),
        role: "customer".to_owned(),
    };
    let created = user.clone();
    auth.db
        .run(move |conn| -> Result<(), RegisterError> {
            let mut tx = conn.transaction()?;
            let inserted = tx.execute(
                "INSERT INTO users (id, email, password_hash, display_name, role) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (email) DO NOTHING",
                &[&created.id, &created.email, &hash, &created.display_name, &created.role],
            )?;
            if inserted == 0 {
                return Err(RegisterError::EmailTaken);
            }
            Event::UserRegistered(UserRegistered {
                user_id: created.id,
                email: created.email.clone(),
                display_name: created.display_name.clone(),
                role: created.role.clone(),
            })
            .append(&mut tx)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    tracing::info!(user_id = %user.id, role = %user.role, "registered");
    Ok(json_reply(StatusCode::CREATED, &user))
}
