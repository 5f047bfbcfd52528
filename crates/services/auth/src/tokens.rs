//! Issuing tokens: a short-lived access JWT and an opaque refresh token,
//! stored only as its SHA-256 hash.

use base64::Engine;
use postgres::GenericClient;
use serde::Serialize;
use sha2::{Digest, Sha256};
use teipsum_kit::jwt::{self, Claims, Role};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{Auth, User};

/// What login and refresh answer.
#[derive(Debug, Serialize)]
pub struct Tokens {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// The opaque refresh token.
    pub refresh_token: String,
    /// Who this is.
    pub user: User,
}

/// A new random refresh token (256 bits, base64url).
pub fn new_refresh_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored for a refresh token.
pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Sign an access token and store a new refresh token in `family`.
pub fn issue(
    auth: &Auth,
    client: &mut impl GenericClient,
    user: User,
    family: Uuid,
) -> Result<Tokens, postgres::Error> {
    let now = jwt::now();
    let claims = Claims {
        iss: auth.issuer.clone(),
        aud: auth.audience.clone(),
        sub: user.id,
        role: if user.role == "admin" {
            Role::Admin
        } else {
            Role::Customer
        },
        iat: now,
        nbf: now,
        exp: now + auth.access_ttl_secs,
        jti: Uuid::now_v7(),
    };
    let access_token = auth.signer.sign(&claims);
    let refresh_token = new_refresh_token();
    let expires_at = OffsetDateTime::now_utc() + Duration::seconds(auth.refresh_ttl_secs as i64);
    client.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        &[&Uuid::now_v7(), &family, &user.id, &hash_refresh_token(&refresh_token), &expires_at],
    )?;
    Ok(Tokens {
        access_token,
        token_type: "Bearer",
        expires_in: auth.access_ttl_secs,
        refresh_token,
        user,
    })
}
