//! The process environment: the one place that reads environment variables.
//!
//! clippy's `disallowed-methods` bans `std::env::var*` everywhere else, so configuration and
//! secrets cannot be read behind the composition root's back.

use std::path::PathBuf;

use crate::domain::secret::SecretBytes;
use crate::ports::secret_source::{SecretError, SecretSource};

/// The environment variable that overrides the state directory.
pub const STATE_DIR_VARIABLE: &str = "IBKR_AGENT_STATE_DIR";

/// Reads one variable; `None` when unset or not valid UTF-8.
#[allow(clippy::disallowed_methods)] // the one gate for the process environment
fn read_variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// Secrets held in environment variables, named by the variable.
#[derive(Debug, Default, Clone, Copy)]
pub struct EnvSecretSource;

impl SecretSource for EnvSecretSource {
    fn secret(&self, name: &str, min_bytes: usize) -> Result<SecretBytes, SecretError> {
        let value = read_variable(name).ok_or_else(|| SecretError::Missing {
            name: name.to_owned(),
        })?;
        let secret = SecretBytes::new(value.into_bytes());
        if secret.len() < min_bytes {
            return Err(SecretError::TooShort {
                name: name.to_owned(),
                min_bytes,
            });
        }
        Ok(secret)
    }
}

/// Where the gateway keeps its local state (the per-installation key, later the database):
/// `IBKR_AGENT_STATE_DIR`, else `$XDG_STATE_HOME/ibkr-agent-gateway`, else
/// `$HOME/.local/state/ibkr-agent-gateway`. `None` when none of them is set.
pub fn state_dir() -> Option<PathBuf> {
    if let Some(dir) = read_variable(STATE_DIR_VARIABLE) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = read_variable("XDG_STATE_HOME") {
        return Some(PathBuf::from(dir).join("ibkr-agent-gateway"));
    }
    read_variable("HOME").map(|home| PathBuf::from(home).join(".local/state/ibkr-agent-gateway"))
}

/// The log filter from `RUST_LOG`, if set.
pub fn log_filter() -> Option<String> {
    read_variable("RUST_LOG")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_are_missing_not_empty() {
        let error = EnvSecretSource
            .secret("IBKR_AGENT_TEST_SURELY_UNSET_VARIABLE", 1)
            .unwrap_err();
        assert!(matches!(error, SecretError::Missing { .. }));
    }
}
