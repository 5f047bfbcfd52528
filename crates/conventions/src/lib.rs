//! The names the compiler writes into units and the services read back.
//!
//! The generated systemd units, `teipsum dev` and the service kit all take
//! these names from here, so a unit can never set a variable a service does
//! not read. This crate has no dependencies on purpose: every service binary
//! links it.

/// Environment variables a service reads at start. Only non-secret settings
/// travel through the environment; secrets are credential files.
pub mod env {
    /// Service name as in the spec (`order`).
    pub const SERVICE: &str = "TEIPSUM_SERVICE";
    /// `address:port` to listen on (`127.0.0.1:8100`).
    pub const LISTEN: &str = "TEIPSUM_LISTEN";
    /// libpq-style connection string of the service database, without a
    /// password (`host=/run/postgresql port=5432 dbname=teipsum_order user=teipsum_order`).
    pub const DATABASE: &str = "TEIPSUM_DATABASE";
    /// Comma-separated Kafka bootstrap servers.
    pub const KAFKA_BROKERS: &str = "TEIPSUM_KAFKA_BROKERS";
    /// Kafka consumer group of the service.
    pub const KAFKA_GROUP: &str = "TEIPSUM_KAFKA_GROUP";
    /// Expected (and, for auth, issued) `iss` claim.
    pub const JWT_ISSUER: &str = "TEIPSUM_JWT_ISSUER";
    /// Expected (and, for auth, issued) `aud` claim.
    pub const JWT_AUDIENCE: &str = "TEIPSUM_JWT_AUDIENCE";
    /// Access token lifetime in seconds (auth only).
    pub const ACCESS_TTL_SECS: &str = "TEIPSUM_ACCESS_TTL_SECS";
    /// Refresh token family lifetime in seconds (auth only).
    pub const REFRESH_TTL_SECS: &str = "TEIPSUM_REFRESH_TTL_SECS";
    /// Most password hashes computed at once (auth only; default twice the
    /// cores). Beyond it registration and login answer 503 with `Retry-After`.
    pub const PASSWORD_HASH_CONCURRENCY: &str = "TEIPSUM_PASSWORD_HASH_CONCURRENCY";
    /// `tracing` filter directive (`info`, `teipsum_kit=debug`).
    pub const LOG: &str = "TEIPSUM_LOG";
    /// Directory of credential files for local runs; systemd's
    /// `CREDENTIALS_DIRECTORY` wins when both are set.
    pub const CREDENTIALS_DIR: &str = "TEIPSUM_CREDENTIALS_DIR";
    /// Set by systemd when a unit has `LoadCredential=`.
    pub const SYSTEMD_CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";
}

/// Credential (file) names inside `$CREDENTIALS_DIRECTORY`.
pub mod credentials {
    /// PKCS#8 PEM Ed25519 private key that signs access tokens (auth only).
    pub const JWT_SIGNING_KEY: &str = "jwt-signing-key";
    /// SPKI PEM Ed25519 public key that verifies access tokens.
    pub const JWT_PUBLIC_KEY: &str = "jwt-public-key";
}

/// systemd unit of a service (`teipsum-order.service`).
pub fn unit_name(platform: &str, service: &str) -> String {
    format!("{platform}-{service}.service")
}

/// Executable of a service (`teipsum-order`).
pub fn binary_name(platform: &str, service: &str) -> String {
    format!("{platform}-{service}")
}

/// Kafka consumer group of a service (`teipsum-order`).
pub fn consumer_group(platform: &str, service: &str) -> String {
    format!("{platform}-{service}")
}

/// The oneshot unit that provisions the topics before services start.
pub fn topics_unit(platform: &str) -> String {
    format!("{platform}-topics.service")
}

/// The oneshot that creates the token signing key pair on first boot
/// (nix/modules/jwt-key.nix); units that load either half start after it.
pub fn jwt_key_unit(platform: &str) -> String {
    format!("{platform}-jwt-key.service")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_platform_prefix() {
        assert_eq!(unit_name("teipsum", "order"), "teipsum-order.service");
        assert_eq!(
            binary_name("teipsum", "admin-product"),
            "teipsum-admin-product"
        );
        assert_eq!(consumer_group("teipsum", "user"), "teipsum-user");
        assert_eq!(topics_unit("teipsum"), "teipsum-topics.service");
    }
}
