//! The composition root: the one place that names concrete adapters and builds a [`Gateway`]
//! from [`Settings`] (or from the library builder). Defaults are the safe ones: the fake
//! broker, read scopes only.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::adapters::outbound::clock::SystemClock;
use crate::adapters::outbound::fake_broker::FakeBroker;
use crate::adapters::outbound::key_file_secrets::{KeyFileSecretSource, KeyOrigin};
use crate::adapters::outbound::process_env::{self, EnvSecretSource};
use crate::app::account_directory::AccountDirectory;
use crate::app::config::{AccountAlias, BrokerBackend, Settings};
use crate::app::error::GatewayError;
use crate::app::gateway::{AccountRefKeySource, Gateway, GatewayParts};
use crate::domain::ids::AccountId;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretBytes;
use crate::ports::broker_reader::BrokerReader;
use crate::ports::clock::Clock;
use crate::ports::secret_source::{SecretError, SecretSource};

/// The environment variable holding the deployment HMAC key (also keys account references).
pub const AUDIT_SECRET_VARIABLE: &str = "IBKR_AUDIT_HMAC_SECRET";

/// The shortest acceptable HMAC key.
pub const MIN_SECRET_BYTES: usize = 32;

/// The name of the per-installation key in the state directory.
const INSTALLATION_KEY_NAME: &str = "installation";

/// Builds the gateway the CLI (and later the MCP server) runs, from validated settings.
///
/// # Errors
/// A config error for a backend this version cannot run; a secret error when the account
/// reference key cannot be had.
pub fn build(settings: &Settings) -> Result<Gateway, GatewayError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let broker: Arc<dyn BrokerReader> = match &settings.broker {
        BrokerBackend::Fake => Arc::new(FakeBroker::new(Arc::clone(&clock))),
        BrokerBackend::ClientPortalGateway { .. } => {
            return Err(GatewayError::config(
                "broker.backend",
                "client_portal_gateway is not available in this version yet; use fake",
            ));
        }
    };
    let (key, key_source) = account_reference_key()?;
    Ok(Gateway::from_parts(GatewayParts {
        broker,
        clock,
        directory: AccountDirectory::new(key, settings.account_aliases.clone()),
        key_source,
        scopes: settings.enabled_scopes.clone(),
    }))
}

/// The deployment key from the environment, else the per-installation key (generated once).
fn account_reference_key() -> Result<(SecretBytes, AccountRefKeySource), GatewayError> {
    match EnvSecretSource.secret(AUDIT_SECRET_VARIABLE, MIN_SECRET_BYTES) {
        Ok(key) => Ok((key, AccountRefKeySource::Environment)),
        Err(SecretError::Missing { .. }) => {
            let dir = process_env::state_dir().ok_or_else(|| SecretError::Store {
                name: INSTALLATION_KEY_NAME.to_owned(),
                detail: format!(
                    "no state directory; set {}",
                    process_env::STATE_DIR_VARIABLE
                ),
            })?;
            let (key, origin) = KeyFileSecretSource::new(dir)
                .load_or_create(INSTALLATION_KEY_NAME, MIN_SECRET_BYTES)?;
            if origin == KeyOrigin::Generated {
                tracing::warn!(
                    "generated a per-installation development key for account references; \
                     deployments set {AUDIT_SECRET_VARIABLE}"
                );
            }
            Ok((key, AccountRefKeySource::Installation))
        }
        Err(error) => Err(error.into()),
    }
}

fn ephemeral_key() -> Result<SecretBytes, GatewayError> {
    let mut bytes = vec![0_u8; MIN_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| GatewayError::Internal {
        message: "no randomness available".into(),
    })?;
    Ok(SecretBytes::new(bytes))
}

impl Gateway {
    /// An embedded gateway on the deterministic fake broker, with read scopes only and an
    /// ephemeral account-reference key (references are stable for the life of the process).
    ///
    /// # Errors
    /// `INTERNAL_ERROR` when no randomness is available for the key.
    pub fn fake() -> Result<Self, GatewayError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self::builder(Arc::new(FakeBroker::new(Arc::clone(&clock))))
            .clock(clock)
            .build()
    }

    /// A builder around any broker reader, so embedders can inject their own adapter.
    pub fn builder(broker: Arc<dyn BrokerReader>) -> GatewayBuilder {
        GatewayBuilder {
            broker,
            clock: None,
            scopes: ScopeSet::read_only_defaults(),
            key: None,
            aliases: BTreeMap::new(),
        }
    }
}

/// Builds a [`Gateway`] for library use. Unset parts take the safe defaults: the system clock,
/// read scopes only, an ephemeral account-reference key, no aliases.
pub struct GatewayBuilder {
    broker: Arc<dyn BrokerReader>,
    clock: Option<Arc<dyn Clock>>,
    scopes: ScopeSet,
    key: Option<SecretBytes>,
    aliases: BTreeMap<AccountId, AccountAlias>,
}

impl GatewayBuilder {
    /// Uses this clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Grants exactly these scopes.
    #[must_use]
    pub fn scopes(mut self, scopes: ScopeSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// Keys account references with this secret (at least 32 bytes), so they are stable
    /// across processes.
    #[must_use]
    pub fn account_ref_key(mut self, key: SecretBytes) -> Self {
        self.key = Some(key);
        self
    }

    /// Names an account by an operator alias in outputs and accepts the alias as input.
    #[must_use]
    pub fn alias(mut self, account: AccountId, alias: AccountAlias) -> Self {
        self.aliases.insert(account, alias);
        self
    }

    /// Builds the gateway.
    ///
    /// # Errors
    /// `CONFIG_SECRET_INVALID` for a key shorter than 32 bytes; `INTERNAL_ERROR` when no
    /// randomness is available for an ephemeral key.
    pub fn build(self) -> Result<Gateway, GatewayError> {
        let (key, key_source) = match self.key {
            Some(key) if key.len() < MIN_SECRET_BYTES => {
                return Err(SecretError::TooShort {
                    name: "account_ref_key".into(),
                    min_bytes: MIN_SECRET_BYTES,
                }
                .into());
            }
            Some(key) => (key, AccountRefKeySource::Provided),
            None => (ephemeral_key()?, AccountRefKeySource::Ephemeral),
        };
        Ok(Gateway::from_parts(GatewayParts {
            broker: self.broker,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            directory: AccountDirectory::new(key, self.aliases),
            key_source,
            scopes: self.scopes,
        }))
    }
}
