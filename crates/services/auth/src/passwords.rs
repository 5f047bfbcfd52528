//! Password hashing: argon2id with m = 19456 KiB, t = 2, p = 1 (OWASP's
//! recommendation), run off the async runtime, at most [`Hasher::new`]'s
//! bound at a time: each hash holds 19 MiB and a core for tens of
//! milliseconds, and tokio would otherwise run up to 512 at once.

use std::sync::Arc;

use tokio::sync::Semaphore;

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

/// Every hashing slot is taken: the client should come back shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the server is busy checking passwords; try again in a second")]
pub struct Busy;

/// Runs [`hash`] and [`verify`] on blocking threads, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct Hasher {
    slots: Arc<Semaphore>,
}

impl Hasher {
    /// At most `bound` hashes at once; more are refused with [`Busy`]
    /// rather than queued, so a flood costs neither memory nor latency.
    pub fn new(bound: usize) -> Self {
        Hasher {
            slots: Arc::new(Semaphore::new(bound)),
        }
    }

    /// The default bound: twice the cores.
    pub fn default_bound() -> usize {
        2 * std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let slot = self.slots.clone().try_acquire_owned().map_err(|_| Busy)?;
        let span = tracing::Span::current();
        // The slot moves into the thread: it is held until the hash is done,
        // even when the client has gone away meanwhile.
        let done = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            span.in_scope(work)
        })
        .await
        .expect("hashing does not panic");
        Ok(done)
    }

    /// [`hash`] on a blocking thread.
    pub async fn hash(&self, password: String) -> Result<String, Busy> {
        self.run(move || hash(&password)).await
    }

    /// [`verify`] on a blocking thread.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, Busy> {
        self.run(move || verify(&password, &stored)).await
    }
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

    #[tokio::test]
    async fn a_full_hasher_refuses_at_once() {
        let hasher = Hasher::new(1);
        let held = hasher.slots.clone().try_acquire_owned().unwrap();
        assert_eq!(hasher.hash("twelve chars".into()).await, Err(Busy));
        drop(held);
        assert!(hasher.hash("twelve chars".into()).await.is_ok());
    }
}
