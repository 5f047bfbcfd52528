//! The auth service: accounts, login, access and refresh tokens.
//!
//! Routes (under `/api/auth/`): `register`, `login`, `refresh`, `logout`;
//! see docs/api.md. Emits `user-registered` and `user-login` through the
//! outbox, in the transaction that creates the account or the session.

pub mod domain;
pub mod passwords;
pub mod routes;
pub mod tokens;

use std::sync::Arc;

use serde::Serialize;
use teipsum_conventions::{credentials, env};
use teipsum_kit::{Context, Parts, Service, db::Db, jwt::Signer};
use uuid::Uuid;
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/auth");
}

/// The auth service.
pub const SERVICE: Service = Service {
    name: "auth",
    migrations: embedded::migrations::runner,
    verifies_tokens: false,
};

/// Topics auth publishes to (must match `produces` in config.ncl).
pub const PRODUCES: [&str; 2] = ["user-registered", "user-login"];

/// Largest request body accepted.
pub const BODY_LIMIT: u64 = 16 * 1024;

/// What the handlers share.
pub struct Auth {
    /// The accounts database.
    pub db: Db,
    /// Signs access tokens.
    pub signer: Signer,
    /// `iss` of the tokens.
    pub issuer: String,
    /// `aud` of the tokens.
    pub audience: String,
    /// Access token lifetime.
    pub access_ttl_secs: u64,
    /// Refresh token family lifetime.
    pub refresh_ttl_secs: u64,
    /// Lowercased addresses that become admins at registration.
    pub admin_emails: Vec<String>,
    /// A hash verified when the e-mail is unknown, so that unknown users and
    /// wrong passwords take the same time.
    pub dummy_hash: String,
}

/// An account as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Lowercased e-mail.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// `customer` or `admin`.
    pub role: String,
}

impl User {
    /// From a `SELECT id, email, display_name, role` row.
    pub fn from_row(row: &postgres::Row) -> Self {
        User {
            id: row.get("id"),
            email: row.get("email"),
            display_name: row.get("display_name"),
            role: row.get("role"),
        }
    }
}

/// Build the service from its context.
pub fn build(
    ctx: &Context,
) -> anyhow::Result<
    Parts<impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + use<>>,
> {
    let settings = &ctx.settings;
    let signer = Signer::new(&settings.credential(credentials::JWT_SIGNING_KEY)?)?;
    let access_ttl_secs = settings.parsed(env::ACCESS_TTL_SECS, 900)?;
    anyhow::ensure!(
        (60..=900).contains(&access_ttl_secs),
        "{} must be 60 to 900 seconds, not {access_ttl_secs}",
        env::ACCESS_TTL_SECS
    );
    let admin_emails = settings
        .var(env::ADMIN_EMAILS)
        .unwrap_or_default()
        .split(',')
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    let auth = Arc::new(Auth {
        db: ctx.db.clone(),
        signer,
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
        access_ttl_secs,
        refresh_ttl_secs: settings.parsed(env::REFRESH_TTL_SECS, 30 * 86_400)?,
        admin_emails,
        dummy_hash: passwords::hash("an unguessable password nobody has"),
    });
    Ok(Parts {
        routes: routes::routes(auth),
        consumer: None,
    })
}
