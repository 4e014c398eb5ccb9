//! A configured secret (route token, passcode, admin token) kept only as its SHA-256 and
//! compared in constant time, so neither its value nor its length leaks through a comparison.

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret kept only as its SHA-256, so comparing takes the same time whatever its length.
#[derive(Clone)]
pub struct Credential([u8; 32]);

impl Credential {
    pub fn new(secret: &SecretString) -> Self {
        Self(Sha256::digest(secret.expose_secret().as_bytes()).into())
    }

    /// True when `candidate` is the secret.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(candidate).into();
        self.0.ct_eq(&digest).into()
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential([REDACTED])")
    }
}
