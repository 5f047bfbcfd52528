//! `POST /api/auth/logout`: revoke the session of a refresh token.

use std::sync::Arc;

use serde::Deserialize;
use teipsum_kit::http::{ErrorBody, ErrorResponse, unexpected_response};
use warp::{Reply, http::StatusCode, reply::Response};

use super::refresh::{lock_family_of, revoke_family};
use crate::{Auth, tokens};

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// A refresh token of the session to end.
    refresh_token: String,
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// Anything.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
teipsum_kit::unexpected_errors!(LogoutError);

impl ErrorResponse for LogoutError {
    fn response(&self) -> (StatusCode, &'static str) {
        match self {
            LogoutError::Unexpected(e) => unexpected_response(e),
        }
    }
}

/// Revoke the token's whole family. Unknown tokens are fine: the session is
/// over either way, and the answer says nothing about which tokens exist.
/// The family row is locked as refresh locks it, so a token a concurrent
/// refresh issues belongs to a family that is revoked once this commits.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    tag = "auth",
    request_body = LogoutRequest,
    responses(
        (status = 204, description = "The token's session is revoked (also for a token that is not one)"),
        (status = 400, description = "`INVALID_INPUT`", body = ErrorBody),
        (status = 429, description = "`TOO_MANY_REQUESTS`: nginx's authentication rate limit", body = ErrorBody),
    ),
)]
pub async fn logout(auth: Arc<Auth>, body: LogoutRequest) -> Result<Response, LogoutError> {
    let hash = tokens::hash_refresh_token(&body.refresh_token);
    auth.db
        .run(move |conn| -> Result<(), LogoutError> {
            let mut tx = conn.transaction()?;
            if let Some(family) = lock_family_of(&mut tx, &hash)? {
                revoke_family(&mut tx, family.id)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
