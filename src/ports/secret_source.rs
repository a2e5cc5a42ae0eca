//! `SecretSource`: where secret material (HMAC keys) comes from.

use thiserror::Error;

use crate::domain::secret::SecretBytes;

/// Why a secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    /// Nothing is stored under that name.
    #[error("secret `{name}` is not set")]
    Missing {
        /// The secret's name (an environment variable or key name); never its value.
        name: String,
    },
    /// The secret exists but is shorter than the minimum.
    #[error("secret `{name}` is shorter than {min_bytes} bytes")]
    TooShort {
        /// The secret's name.
        name: String,
        /// The minimum length.
        min_bytes: usize,
    },
    /// The store could not be read or written.
    #[error("secret store error for `{name}`: {detail}")]
    Store {
        /// The secret's name.
        name: String,
        /// A short description that names no path and no value.
        detail: String,
    },
}

/// A source of named secrets.
///
/// Contract: implementations MUST NOT log, print or persist secret values in readable form, and
/// MUST return [`SecretError::TooShort`] rather than a secret shorter than `min_bytes`.
pub trait SecretSource: Send + Sync {
    /// The secret stored under `name`, at least `min_bytes` long.
    ///
    /// # Errors
    /// [`SecretError::Missing`] when unset, [`SecretError::TooShort`] when too short,
    /// [`SecretError::Store`] when the store fails.
    fn secret(&self, name: &str, min_bytes: usize) -> Result<SecretBytes, SecretError>;
}
