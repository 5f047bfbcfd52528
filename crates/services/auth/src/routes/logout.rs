//! `POST /api/auth/logout`: revoke the session of a refresh token.

use std::sync::Arc;

use serde::Deserialize;
use teipsum_kit::http::{ErrorResponse, unexpected_response};
use warp::{Reply, http::StatusCode, reply::Response};

use crate::{Auth, tokens};

/// The request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
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
pub async fn logout(auth: Arc<Auth>, body: LogoutRequest) -> Result<Response, LogoutError> {
    let hash = tokens::hash_refresh_token(&body.refresh_token);
    auth.db
        .run(move |conn| -> Result<u64, LogoutError> {
            Ok(conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now() \
                 WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) \
                   AND revoked_at IS NULL",
                &[&hash],
            )?)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
