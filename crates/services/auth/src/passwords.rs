//! Password hashing: argon2id with m = 19456 KiB, t = 2, p = 1 (OWASP's
//! recommendation), run off the async runtime.

use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
    password_hash::SaltString,
};

/// Memory cost in KiB.
pub const MEMORY_KIB: u32 = 19_456;
/// Iterations.
pub const ITERATIONS: u32 = 2;
/// Parallelism.
pub const PARALLELISM: u32 = 1;

fn argon2() -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid parameters"),
    )
}

/// The PHC string of `password` with a fresh salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS has randomness");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes encode");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing cannot fail with valid parameters")
        .to_string()
}

/// Whether `password` matches the PHC string `stored`.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// [`hash`] on a blocking thread.
pub async fn hash_blocking(password: String) -> String {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| hash(&password)))
        .await
        .expect("hashing does not panic")
}

/// [`verify`] on a blocking thread.
pub async fn verify_blocking(password: String, stored: String) -> bool {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| verify(&password, &stored)))
        .await
        .expect("verifying does not panic")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_baseline_parameters() {
        let stored = hash("correct horse battery staple");
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify("correct horse battery staple", &stored));
        assert!(!verify("correct horse battery stapler", &stored));
        assert_ne!(stored, hash("correct horse battery staple"), "salted");
        assert!(!verify("x", "not a hash"));
    }
}
