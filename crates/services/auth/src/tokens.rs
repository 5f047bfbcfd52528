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
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Tokens {
    /// The access JWT.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(pattern = "^Bearer$")]
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

/// How long a family is kept after it expired, before [`prune`] deletes it
/// with its tokens (spent ones included): longer than any family lives, so
/// a replayed token of a recent family still meets its row.
pub const RETENTION_AFTER_EXPIRY_DAYS: i32 = 7;

/// Most families [`prune`] deletes at once (it runs inside a login).
pub const PRUNE_BATCH: i64 = 100;

/// A refresh token family: one login's session.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub id: Uuid,
    /// The absolute end of the session, fixed at login.
    pub expires_at: OffsetDateTime,
}

/// Start the family of a new login, ending `auth.refresh_ttl_secs` from now
/// whatever rotation happens meanwhile.
pub fn start_family(
    auth: &Auth,
    client: &mut impl GenericClient,
    user: &User,
) -> Result<Family, postgres::Error> {
    let family = Family {
        id: Uuid::now_v7(),
        expires_at: OffsetDateTime::now_utc()
            + Duration::seconds(i64::try_from(auth.refresh_ttl_secs).unwrap_or(i64::MAX)),
    };
    client.execute(
        "INSERT INTO refresh_families (id, user_id, expires_at) VALUES ($1, $2, $3)",
        &[&family.id, &user.id, &family.expires_at],
    )?;
    Ok(family)
}

/// Delete a batch of families that expired more than
/// [`RETENTION_AFTER_EXPIRY_DAYS`] ago, and their tokens; returns how many.
pub fn prune(client: &mut impl GenericClient) -> Result<u64, postgres::Error> {
    client.execute(
        "DELETE FROM refresh_families WHERE id IN (\
             SELECT id FROM refresh_families \
             WHERE expires_at < now() - make_interval(days => $1) \
             LIMIT $2)",
        &[&RETENTION_AFTER_EXPIRY_DAYS, &PRUNE_BATCH],
    )
}

/// Sign an access token and store a new refresh token in `family`; it
/// expires with the family.
pub fn issue(
    auth: &Auth,
    client: &mut impl GenericClient,
    user: User,
    family: Family,
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
    client.execute(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)",
        &[&Uuid::now_v7(), &family.id, &user.id, &hash_refresh_token(&refresh_token), &family.expires_at],
    )?;
    Ok(Tokens {
        access_token,
        token_type: "Bearer",
        expires_in: auth.access_ttl_secs,
        refresh_token,
        user,
    })
}
