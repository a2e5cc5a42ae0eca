//! Per-installation secrets kept as files with owner-only permissions.
//!
//! Used when no deployment secret is configured: a random key is generated once, on first use,
//! and reused on every later start so that derived values (account references) stay stable.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::private_files::{create_private_dir, open_private};
use crate::domain::secret::SecretBytes;
use crate::ports::secret_source::{SecretError, SecretSource};

/// The size of a generated key.
const GENERATED_KEY_BYTES: usize = 32;

/// Secrets stored as `<dir>/<name>.key`, created with random bytes when absent.
#[derive(Debug, Clone)]
pub struct KeyFileSecretSource {
    dir: PathBuf,
}

/// Whether [`KeyFileSecretSource::load_or_create`] found the key or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key file already existed.
    Existing,
    /// The key was generated now.
    Generated,
}

impl KeyFileSecretSource {
    /// Keys live in `dir`, which is created (owner-only) when needed.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn store_error(name: &str, detail: &str) -> SecretError {
        // The detail names the operation, never the path: paths are local and stay local.
        SecretError::Store {
            name: name.to_owned(),
            detail: detail.to_owned(),
        }
    }

    /// Reads the key `name`, generating it first if it does not exist.
    ///
    /// # Errors
    /// [`SecretError::Store`] when the directory or file cannot be created or read, or the
    /// name is not `[a-z0-9_-]{1,64}`; [`SecretError::TooShort`] for a truncated file.
    pub fn load_or_create(
        &self,
        name: &str,
        min_bytes: usize,
    ) -> Result<(SecretBytes, KeyOrigin), SecretError> {
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            return Err(Self::store_error(name, "invalid key name"));
        }
        let path = self.dir.join(format!("{name}.key"));
        match read_key(&path) {
            Ok(bytes) => {
                let secret = SecretBytes::new(bytes);
                if secret.len() < min_bytes {
                    return Err(SecretError::TooShort {
                        name: name.to_owned(),
                        min_bytes,
                    });
                }
                Ok((secret, KeyOrigin::Existing))
            }
            Err(error) if error.kind() == ErrorKind::NotFound => {
                let secret = self.generate(name, &path, min_bytes.max(GENERATED_KEY_BYTES))?;
                Ok((secret, KeyOrigin::Generated))
            }
            Err(_) => Err(Self::store_error(name, "cannot read the key file")),
        }
    }

    fn generate(&self, name: &str, path: &Path, length: usize) -> Result<SecretBytes, SecretError> {
        create_private_dir(&self.dir)
            .map_err(|_| Self::store_error(name, "cannot create the state directory"))?;
        let mut bytes = vec![0_u8; length];
        getrandom::fill(&mut bytes)
            .map_err(|_| Self::store_error(name, "no randomness available"))?;
        let secret = SecretBytes::new(bytes);
        // `create_new` makes two racing first starts agree: the loser reads the winner's key.
        match open_private(path, true) {
            Ok(mut file) => {
                file.write_all(secret.expose())
                    .and_then(|()| file.sync_all())
                    .map_err(|_| Self::store_error(name, "cannot write the key file"))?;
                Ok(secret)
            }
            Err(error) if error.kind() == ErrorKind::AlreadyExists => read_key(path)
                .map(SecretBytes::new)
                .map_err(|_| Self::store_error(name, "cannot read the key file")),
            Err(_) => Err(Self::store_error(name, "cannot create the key file")),
        }
    }
}

impl SecretSource for KeyFileSecretSource {
    fn secret(&self, name: &str, min_bytes: usize) -> Result<SecretBytes, SecretError> {
        self.load_or_create(name, min_bytes)
            .map(|(secret, _)| secret)
    }
}

fn read_key(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_generated_once_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let source = KeyFileSecretSource::new(dir.path().join("state"));
        let (first, origin) = source.load_or_create("account-ref", 32).unwrap();
        assert_eq!(origin, KeyOrigin::Generated);
        assert_eq!(first.len(), 32);
        let (second, origin) = source.load_or_create("account-ref", 32).unwrap();
        assert_eq!(origin, KeyOrigin::Existing);
        assert_eq!(first.expose(), second.expose());
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let source = KeyFileSecretSource::new(dir.path());
        source.secret("k", 32).unwrap();
        let mode = fs::metadata(dir.path().join("k.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn truncated_keys_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("short.key"), b"abc").unwrap();
        let source = KeyFileSecretSource::new(dir.path());
        assert!(matches!(
            source.secret("short", 32),
            Err(SecretError::TooShort { .. })
        ));
        assert!(matches!(
            source.secret("../x", 32),
            Err(SecretError::Store { .. })
        ));
    }
}
