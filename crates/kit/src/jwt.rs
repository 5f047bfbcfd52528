//! Access tokens: EdDSA (Ed25519) JWTs, RFC 8725 style.
//!
//! Only auth holds the private key ([`Signer`]); every other service gets
//! the public key ([`Verifier`]). Verification pins the algorithm, requires
//! `exp`, `nbf`, `iss`, `aud` and `sub`, allows 30 s of clock skew at most,
//! and checks the header's `typ` (`at+jwt`, RFC 9068), so that no other kind
//! of token is mistaken for an access token.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock skew tolerated, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Roles a user can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A shopper.
    Customer,
    /// Runs the shop: products, stock, everyone's orders.
    Admin,
}

impl Role {
    /// The role as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// Role of the user.
    pub role: Role,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Not before.
    pub nbf: u64,
    /// Expiry.
    pub exp: u64,
    /// Token id.
    pub jti: Uuid,
}

/// Key and token failures.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The key file is not a usable Ed25519 key.
    #[error("not an Ed25519 key in PEM form: {0}")]
    Key(jsonwebtoken::errors::Error),
    /// The private key file is not a PKCS#8 Ed25519 key.
    #[error("not a PKCS#8 Ed25519 private key: {0}")]
    PrivateKey(String),
    /// The token is not acceptable (expired, forged, wrong audience...).
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Checks access tokens.
#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for tokens signed by the key whose public half is
    /// `public_pem` (SPKI PEM), issued by `issuer` for `audience`.
    pub fn new(public_pem: &[u8], issuer: &str, audience: &str) -> Result<Self, JwtError> {
        let key = DecodingKey::from_ed_pem(public_pem).map_err(JwtError::Key)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        Ok(Verifier { key, validation })
    }

    /// The claims of `token`, if it is a valid access token.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| JwtError::Invalid(e.to_string()))?;
        if data.header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(JwtError::Invalid(format!(
                "typ is {:?}, not {ACCESS_TOKEN_TYP:?}",
                data.header.typ
            )));
        }
        Ok(data.claims)
    }
}

/// Signs access tokens (auth only).
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from a PKCS#8 PEM Ed25519 private key.
    pub fn new(private_pem: &[u8]) -> Result<Self, JwtError> {
        Ok(Signer {
            key: EncodingKey::from_ed_pem(private_pem).map_err(JwtError::Key)?,
        })
    }

    /// Sign `claims` as an access token.
    pub fn sign(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).expect("Ed25519 signing does not fail")
    }
}

/// A fresh Ed25519 key pair as (PKCS#8 private PEM, SPKI public PEM).
pub fn generate_keypair() -> (String, String) {
    use ed25519_dalek::{
        SigningKey,
        pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS has randomness");
    let signing = SigningKey::from_bytes(&seed);
    let private = signing
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an Ed25519 key encodes")
        .to_string();
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("an Ed25519 key encodes");
    (private, public)
}

/// The SPKI public PEM of a PKCS#8 Ed25519 private PEM: repairs a lost or
/// stale public half without replacing the key tokens are signed with.
pub fn public_key_of(private_pem: &str) -> Result<String, JwtError> {
    use ed25519_dalek::{
        SigningKey,
        pkcs8::{DecodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
    };
    let signing =
        SigningKey::from_pkcs8_pem(private_pem).map_err(|e| JwtError::PrivateKey(e.to_string()))?;
    signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| JwtError::PrivateKey(e.to_string()))
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_signed_by_the_pair_verifies() {
        let (private, public) = generate_keypair();
        let signer = Signer::new(private.as_bytes()).unwrap();
        let verifier = Verifier::new(public.as_bytes(), "iss", "aud").unwrap();
        let now = now();
        let claims = Claims {
            iss: "iss".into(),
            aud: "aud".into(),
            sub: Uuid::new_v4(),
            role: Role::Admin,
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: Uuid::new_v4(),
        };
        assert_eq!(verifier.verify(&signer.sign(&claims)).unwrap(), claims);
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
