//! Secret material held in memory: never printed, zeroed on drop.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes (an HMAC key, for example).
///
/// `Debug` prints a placeholder and there is no `Display`, so a secret cannot reach a log or an
/// output by formatting. The bytes are zeroed when the value is dropped.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of the bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes. Call only where the secret is used (e.g. to key an HMAC).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty secret.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = SecretBytes::new(b"hunter2-hunter2".to_vec());
        assert_eq!(format!("{secret:?}"), "SecretBytes(<redacted>)");
        assert_eq!(secret.len(), 15);
    }
}
