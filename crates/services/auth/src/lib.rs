//! The auth service: accounts, login, access and refresh tokens.
//!
//! Routes (under `/api/auth/`): `register`, `login`, `refresh`, `logout`;
//! see docs/api.md. Emits `user-registered` and `user-login` through the
//! outbox, in the transaction that creates the account or the session.

mod domain;
mod passwords;
mod routes;
mod tokens;

pub use routes::promote_from_cli;

use std::sync::Arc;

use serde::Serialize;
use teipsum_conventions::{credentials, env};
use teipsum_kit::{Context, Parts, Service, db::Db, jwt::Signer, settings::Settings};
use uuid::Uuid;
use warp::Filter;

mod embedded {
    refinery::embed_migrations!("../../../migrations/auth");
}

/// The auth service.
pub const SERVICE: Service = Service {
    name: teipsum_events::service::AUTH,
    migrations: embedded::migrations::runner,
    verifies_tokens: false,
    openapi,
};

/// Accepted refresh token family lifetimes, in seconds: 1 hour to 90 days.
pub const REFRESH_TTL_SECS: std::ops::RangeInclusive<u64> = 3_600..=90 * 86_400;

/// Largest request body accepted.
const BODY_LIMIT: u64 = 16 * 1024;

/// What the handlers share.
pub(crate) struct Auth {
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
    /// Absolute lifetime of a refresh token family, fixed at login.
    pub refresh_ttl_secs: u64,
    /// Password hashing, bounded.
    pub hasher: passwords::Hasher,
    /// A hash verified when the e-mail is unknown, so that unknown users and
    /// wrong passwords take the same time.
    pub dummy_hash: String,
    /// Logins by outcome (`teipsum_auth_logins_total`).
    pub logins: routes::Logins,
}

/// An account as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub(crate) struct User {
    /// Id.
    pub id: Uuid,
    /// Lowercased e-mail.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// `customer` or `admin`.
    #[schema(pattern = "^(customer|admin)$")]
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

/// The service's own settings, each checked against its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Access token lifetime (`TEIPSUM_ACCESS_TTL_SECS`, 60 to 900).
    pub access_ttl_secs: u64,
    /// Refresh token family lifetime (`TEIPSUM_REFRESH_TTL_SECS`, [`REFRESH_TTL_SECS`]).
    pub refresh_ttl_secs: u64,
    /// Password hashes at once (`TEIPSUM_PASSWORD_HASH_CONCURRENCY`, 1 to 1024).
    pub hash_bound: usize,
}

impl Limits {
    /// Read and check the settings; the error names the variable and its bounds.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Limits> {
        let access_ttl_secs = settings.parsed(env::ACCESS_TTL_SECS, 900)?;
        anyhow::ensure!(
            (60..=900).contains(&access_ttl_secs),
            "{} must be 60 to 900 seconds, not {access_ttl_secs}",
            env::ACCESS_TTL_SECS
        );
        let refresh_ttl_secs = settings.parsed(env::REFRESH_TTL_SECS, 30 * 86_400)?;
        anyhow::ensure!(
            REFRESH_TTL_SECS.contains(&refresh_ttl_secs),
            "{} must be {} to {} seconds (1 hour to 90 days, as the spec's jwt.refresh_ttl), not {refresh_ttl_secs}",
            env::REFRESH_TTL_SECS,
            REFRESH_TTL_SECS.start(),
            REFRESH_TTL_SECS.end(),
        );
        let hash_bound = settings.parsed(
            env::PASSWORD_HASH_CONCURRENCY,
            passwords::Hasher::default_bound(),
        )?;
        anyhow::ensure!(
            (1..=1024).contains(&hash_bound),
            "{} must be 1 to 1024, not {hash_bound}",
            env::PASSWORD_HASH_CONCURRENCY
        );
        Ok(Limits {
            access_ttl_secs,
            refresh_ttl_secs,
            hash_bound,
        })
    }

    /// For `main`: check the settings before anything starts, so that a bad
    /// value ends the process with its message and `EX_CONFIG` (78), as the
    /// kit does for its own settings.
    pub fn check_env() -> Result<(), String> {
        let settings = Settings::from_env().map_err(|e| e.to_string())?;
        Self::from_settings(&settings)
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
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
    let limits = Limits::from_settings(settings)?;
    let auth = Arc::new(Auth {
        db: ctx.db.clone(),
        signer,
        issuer: settings.jwt_issuer.clone(),
        audience: settings.jwt_audience.clone(),
        access_ttl_secs: limits.access_ttl_secs,
        refresh_ttl_secs: limits.refresh_ttl_secs,
        hasher: passwords::Hasher::new(limits.hash_bound),
        dummy_hash: passwords::hash("an unguessable password nobody has"),
        logins: routes::Logins::register(&ctx.metrics),
    });
    Ok(Parts {
        routes: routes::routes(auth),
        consumer: None,
    })
}

/// This service's routes in the platform's OpenAPI document: paths as the
/// edge routes them, with their bodies, parameters and answers (merged with
/// the other services' into docs/openapi.json by `teipsum-openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <routes::Api as utoipa::OpenApi>::openapi()
}
