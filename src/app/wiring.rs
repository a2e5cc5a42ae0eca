//! The composition root: the one place that names concrete adapters and builds a [`Gateway`]
//! from [`Settings`] (or from the library builder). Defaults are the safe ones: the fake
//! broker, read scopes only, an audit log that every call is recorded in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adapters::outbound::checkpoint_file;
use crate::adapters::outbound::client_portal::{
    ClientPortalBroker, ClientPortalConfig, ClientPortalSetupError,
};
use crate::adapters::outbound::clock::SystemClock;
use crate::adapters::outbound::export_file;
use crate::adapters::outbound::fake_broker::FakeBroker;
use crate::adapters::outbound::key_file_secrets::{KeyFileSecretSource, KeyOrigin};
use crate::adapters::outbound::local_candidate::{LocalCandidateWriter, LocalOrderBook};
use crate::adapters::outbound::memory_audit::MemoryAuditLog;
use crate::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use crate::adapters::outbound::process_env::{self, EnvSecretSource};
use crate::adapters::outbound::refusing_writer::RefusingOrderWriter;
use crate::adapters::outbound::sqlite_audit::SqliteAuditLog;
use crate::adapters::outbound::sqlite_workflow::SqliteWorkflowStore;
use crate::app::account_directory::AccountDirectory;
use crate::app::checkpoints::{CheckpointLines, CheckpointSetup};
use crate::app::config::{
    AccountAlias, BrokerBackend, PaperTradingSettings, PaperWriterKind, Settings,
};
use crate::app::gateway::{AuditKeySource, Gateway, GatewayParts};
use crate::app::live_settings::{LiveTradingSettings, LiveWriterKind};
use crate::app::startup_error::StartupError;
use crate::domain::audit::chain::ChainKey;
use crate::domain::audit::checkpoint::{self, CheckpointSigner};
use crate::domain::ids::AccountId;
use crate::domain::preview::PreviewPolicy;
use crate::domain::scope::ScopeSet;
use crate::domain::secret::SecretBytes;
use crate::ports::audit_log::AuditLog;
use crate::ports::broker_reader::BrokerReader;
use crate::ports::clock::Clock;
use crate::ports::order_writer::OrderWriter;
use crate::ports::order_writer::WriterMode;
use crate::ports::secret_source::{SecretError, SecretSource};
use crate::ports::workflow_store::WorkflowStore;

/// The shortest acceptable HMAC key.
pub const MIN_SECRET_BYTES: usize = ChainKey::MIN_BYTES;

/// The development key's name; its file sits next to the audit database.
const DEVELOPMENT_KEY_NAME: &str = "audit-hmac";

/// The development signing key's name; its file sits next to the audit database.
const DEVELOPMENT_SIGNING_KEY_NAME: &str = "audit-signing";

/// The checkpoint file's name beside the audit database, unless configured.
const DEFAULT_CHECKPOINT_FILE_NAME: &str = "audit-checkpoints.jsonl";

/// The audit database's file name in the state directory.
const DEFAULT_DATABASE_NAME: &str = "audit.sqlite3";

/// The workflow database's file name, beside the audit database unless configured.
const DEFAULT_WORKFLOW_DATABASE_NAME: &str = "workflow.sqlite3";

/// Builds the gateway the CLI and the MCP server run, from validated settings.
///
/// # Errors
/// `CONFIG_SECRET_INVALID` when the audit key cannot be had (it is mandatory from the
/// environment for a real broker); `AUDIT_WRITE_FAILED` when the audit database cannot be
/// opened; `CONFIG_INVALID` for a backend this version cannot run.
pub fn build(settings: &Settings) -> Result<Gateway, StartupError> {
    let inert = settings.inert_scopes();
    if !inert.is_empty() {
        let names: Vec<&str> = inert.iter().map(|scope| scope.as_str()).collect();
        tracing::warn!(
            "auth.enabled_scopes grants {}, which do nothing while live trading is off \
             (live_trading.enabled and safety.live_trading_enabled)",
            names.join(", ")
        );
    }
    let database = audit_database_path(settings)?;
    let (secret, key_source) = audit_key(settings, &database)?;
    let (signer, signing_source) = signing_key(settings, &database)?;
    // The live start-up gates, before anything is opened for writing.
    crate::app::live_startup::check(settings, key_source == AuditKeySource::Environment)?;
    crate::app::live_startup::check_signing_key(
        settings,
        signing_source == SigningKeySource::Deployed,
    )?;
    // The remote MCP gates. They do nothing while remote MCP is off.
    crate::app::remote_startup::check(&settings.remote_mcp, &EnvSecretSource)?;
    let key = chain_key(&secret)?;
    let audit: Arc<dyn AuditLog> = Arc::new(SqliteAuditLog::open(&database, key.clone())?);
    let workflow_path = settings.workflow_sqlite_path.clone().unwrap_or_else(|| {
        database
            .parent()
            .map(|dir| dir.join(DEFAULT_WORKFLOW_DATABASE_NAME))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_WORKFLOW_DATABASE_NAME))
    });
    let workflow: Arc<dyn WorkflowStore> = Arc::new(SqliteWorkflowStore::open(&workflow_path)?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // One fake world: local paper orders are listed by the fake broker.
    let local_book = LocalOrderBook::new();
    let (broker, portal) = broker_for(&settings.broker, &clock, &local_book)?;
    let paper_writer = paper_writer_for(settings, portal.as_deref(), &local_book)?;
    Ok(Gateway::from_parts(GatewayParts {
        broker,
        clock,
        directory: AccountDirectory::new(key.clone(), settings.account_aliases.clone()),
        audit,
        chain_key: key,
        key_source,
        scopes: settings.enabled_scopes.clone(),
        workflow,
        paper_writer,
        preview_policy: settings.order_preview.clone(),
        paper_trading: settings.paper_trading.clone(),
        live_writer: live_writer_for(settings, portal.as_deref(), &local_book)?,
        live_trading: settings.live_trading.clone(),
        insecure_remote_issuer: settings.remote_mcp.is_on()
            && settings.remote_mcp.allow_insecure_loopback_issuer,
        option_chain_max_strikes: settings.option_chain_max_strikes,
        checkpoint_lines: signer
            .is_some()
            .then(|| checkpoint_lines_at(checkpoint_file_path(settings, &database))),
        checkpoints: CheckpointSetup {
            signer,
            file: Some(checkpoint_file_path(settings, &database)),
            live_write_retention_days: settings.audit.live_write_retention_days,
        },
    }))
}

/// Where a signing key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SigningKeySource {
    /// The deployment's: the configured key file or environment variable.
    Deployed,
    /// The per-installation development key next to the audit database (fake broker only).
    Development,
    /// None: checkpoints are off.
    Off,
}

/// The checkpoint signing key: from `audit.signing_key_file` when configured (an owner-only
/// regular file), else from the variable named by `audit.signing_key_env`; without either,
/// the development key next to the database on the fake broker, and none on a real broker.
fn signing_key(
    settings: &Settings,
    database: &Path,
) -> Result<(Option<Arc<CheckpointSigner>>, SigningKeySource), StartupError> {
    let min = checkpoint::MIN_SECRET_BYTES;
    let (secret, source) = if let Some(file) = &settings.audit.signing_key_file {
        let secret = checkpoint_file::read_signing_key_file(file, "audit.signing_key_file", min)?;
        (secret, SigningKeySource::Deployed)
    } else {
        let variable = settings.audit.signing_key_env.as_str();
        match EnvSecretSource.secret(variable, min) {
            Ok(secret) => (secret, SigningKeySource::Deployed),
            Err(SecretError::Missing { .. }) if settings.broker == BrokerBackend::Fake => {
                let dir = database.parent().map(Path::to_path_buf).unwrap_or_default();
                let (secret, origin) = KeyFileSecretSource::new(dir)
                    .load_or_create(DEVELOPMENT_SIGNING_KEY_NAME, min)?;
                if origin == KeyOrigin::Generated {
                    tracing::warn!(
                        "generated a per-installation DEVELOPMENT audit signing key next to the audit \
                         database; deployments set {variable} or audit.signing_key_file"
                    );
                }
                (secret, SigningKeySource::Development)
            }
            Err(SecretError::Missing { .. }) => {
                tracing::warn!(
                    "no audit signing key ({variable} or audit.signing_key_file): signed audit \
                     checkpoints are off"
                );
                return Ok((None, SigningKeySource::Off));
            }
            Err(error) => return Err(error.into()),
        }
    };
    let signer = CheckpointSigner::from_secret(&secret).map_err(|_| {
        StartupError::Secret(SecretError::TooShort {
            name: "audit signing key".into(),
            min_bytes: min,
        })
    })?;
    Ok((Some(Arc::new(signer)), source))
}

/// The checkpoint file: `audit.checkpoint_file`, else beside the audit database.
fn checkpoint_file_path(settings: &Settings, database: &Path) -> PathBuf {
    settings.audit.checkpoint_file.clone().unwrap_or_else(|| {
        database
            .parent()
            .map(|dir| dir.join(DEFAULT_CHECKPOINT_FILE_NAME))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CHECKPOINT_FILE_NAME))
    })
}

/// The checkpoint file adapter at `path`, as the app's [`CheckpointLines`].
fn checkpoint_lines_at(path: PathBuf) -> Arc<dyn CheckpointLines> {
    Arc::new(CheckpointFileLines { path })
}

/// [`CheckpointLines`] over the checkpoint file adapter.
struct CheckpointFileLines {
    path: PathBuf,
}

impl CheckpointLines for CheckpointFileLines {
    fn append(&self, line: &str) -> Result<(), std::io::ErrorKind> {
        checkpoint_file::append_line(&self.path, line).map_err(|error| error.kind())
    }

    fn read_all(&self) -> Result<Vec<String>, std::io::ErrorKind> {
        checkpoint_file::read_all(&self.path).map_err(|error| error.kind())
    }

    fn read_tail(&self, max_bytes: u64) -> Result<Vec<String>, std::io::ErrorKind> {
        checkpoint_file::read_tail(&self.path, max_bytes).map_err(|error| error.kind())
    }
}

/// The paper writer the settings ask for.
fn paper_writer_for(
    settings: &Settings,
    portal: Option<&ClientPortalBroker>,
    local_book: &LocalOrderBook,
) -> Result<Arc<dyn OrderWriter>, StartupError> {
    match settings.paper_trading.writer {
        PaperWriterKind::Refusing => Ok(Arc::new(RefusingOrderWriter::new())),
        PaperWriterKind::LocalCandidate => Ok(Arc::new(LocalCandidateWriter::with_book(
            local_book.clone(),
        ))),
        PaperWriterKind::ClientPortal => {
            let portal = portal.ok_or_else(|| {
                StartupError::config(
                    "paper_trading.writer",
                    "client_portal needs broker.backend: client_portal_gateway",
                )
            })?;
            Ok(Arc::new(portal.order_writer_for(
                WriterMode::Paper,
                confirmable_ids(settings),
                settings.max_reply_rounds,
            )))
        }
    }
}

/// The live writer the settings ask for (`live_trading.writer`, or the CLI's `--live-broker`).
fn live_writer_for(
    settings: &Settings,
    portal: Option<&ClientPortalBroker>,
    local_book: &LocalOrderBook,
) -> Result<Arc<dyn OrderWriter>, StartupError> {
    match settings.live_trading.writer {
        LiveWriterKind::Refusing => Ok(Arc::new(RefusingOrderWriter::for_mode(WriterMode::Live))),
        LiveWriterKind::LocalCandidate => Ok(Arc::new(LocalCandidateWriter::with_book_for_mode(
            local_book.clone(),
            WriterMode::Live,
        ))),
        LiveWriterKind::ClientPortal => {
            let portal = portal.ok_or_else(|| {
                StartupError::config(
                    "live_trading.writer",
                    "client_portal needs broker.backend: client_portal_gateway",
                )
            })?;
            Ok(Arc::new(portal.order_writer_for(
                WriterMode::Live,
                confirmable_ids(settings),
                settings.max_reply_rounds,
            )))
        }
    }
}

/// A broker reader, and the concrete Client Portal adapter when it is one.
type BrokerChoice = (Arc<dyn BrokerReader>, Option<Arc<ClientPortalBroker>>);

/// The broker adapter the settings ask for, and the concrete Client Portal adapter when it is
/// one (its order writer shares the session).
fn broker_for(
    backend: &BrokerBackend,
    clock: &Arc<dyn Clock>,
    local_book: &LocalOrderBook,
) -> Result<BrokerChoice, StartupError> {
    match backend {
        BrokerBackend::Fake => {
            let fake =
                FakeBroker::new(Arc::clone(clock)).with_local_orders(Arc::new(local_book.clone()));
            Ok((Arc::new(fake), None))
        }
        BrokerBackend::ClientPortalGateway {
            base_url,
            allow_insecure_tls_for_localhost,
            request_timeout_seconds,
            pacing_margin_percent,
            ..
        } => {
            let mut config = ClientPortalConfig::new(base_url.clone());
            config.allow_insecure_tls_for_localhost = *allow_insecure_tls_for_localhost;
            config.request_timeout = Duration::from_secs(*request_timeout_seconds);
            config.connect_timeout = config.connect_timeout.min(config.request_timeout);
            // A command waits for its pacing window at most as long as one request may take.
            config.pacing.max_wait = config.request_timeout;
            config.pacing_margin_percent = *pacing_margin_percent;
            // Every process of the installation shares the gateway's pacing windows.
            config.shared_state_dir = process_env::state_dir();
            let broker =
                Arc::new(ClientPortalBroker::new(config, Arc::clone(clock)).map_err(setup_error)?);
            let reader: Arc<dyn BrokerReader> = broker.clone();
            Ok((reader, Some(broker)))
        }
    }
}

fn setup_error(error: ClientPortalSetupError) -> StartupError {
    match error {
        ClientPortalSetupError::TlsBypassNonLocalhost => StartupError::TlsBypassNonLocalhost,
        ClientPortalSetupError::BaseUrl { reason } => {
            StartupError::config("broker.base_url", reason)
        }
        ClientPortalSetupError::Limits { reason } => {
            StartupError::config("broker.request_timeout_seconds", reason)
        }
        ClientPortalSetupError::HttpClient => StartupError::Internal {
            message: "the HTTP client could not be built".into(),
        },
    }
}

/// How often a long-running front end keeps the broker session alive; `None` for a backend
/// without a session to keep (the fake).
pub fn keepalive_interval(settings: &Settings) -> Option<Duration> {
    match &settings.broker {
        BrokerBackend::Fake => None,
        BrokerBackend::ClientPortalGateway {
            keepalive_interval_seconds,
            ..
        } => Some(Duration::from_secs(*keepalive_interval_seconds)),
    }
}

/// Opens another audit database read-only, for `audit verify --database`. The key comes from
/// `secret_variable` (or the configured variable), else from a development key file that
/// already sits next to that database; none is ever created here.
///
/// # Errors
/// `AUDIT_LOG_MISSING` when there is no file at `database` (none is created);
/// `CONFIG_SECRET_INVALID` without a usable key; `AUDIT_READ_FAILED` when the file cannot be
/// opened.
pub fn open_audit_for_verify(
    settings: &Settings,
    database: &Path,
    secret_variable: Option<&str>,
) -> Result<Arc<dyn AuditLog>, StartupError> {
    if !database.is_file() {
        return Err(crate::ports::audit_log::AuditError::Missing {
            location: "given location".to_owned(),
        }
        .into());
    }
    let variable = secret_variable.unwrap_or(&settings.audit.hmac_secret_env);
    let secret = match EnvSecretSource.secret(variable, MIN_SECRET_BYTES) {
        Ok(secret) => secret,
        Err(SecretError::Missing { name }) => {
            let dir = database.parent().map(Path::to_path_buf).unwrap_or_default();
            let key_file = dir.join(format!("{DEVELOPMENT_KEY_NAME}.key"));
            if secret_variable.is_some() || !key_file.is_file() {
                return Err(SecretError::Missing { name }.into());
            }
            KeyFileSecretSource::new(dir).secret(DEVELOPMENT_KEY_NAME, MIN_SECRET_BYTES)?
        }
        Err(error) => return Err(error.into()),
    };
    Ok(Arc::new(SqliteAuditLog::open_read_only(
        database,
        chain_key(&secret)?,
    )?))
}

/// The new, owner-only file `audit purge --export-to` writes its export to.
pub fn purge_export_file(path: PathBuf) -> impl crate::app::audit_purge::ExportDestination {
    PurgeExportFile { path }
}

/// [`purge_export_file`]: the export file adapter behind the purge's seam.
struct PurgeExportFile {
    path: PathBuf,
}

impl crate::app::audit_purge::ExportDestination for PurgeExportFile {
    fn create(&self) -> std::io::Result<Box<dyn std::io::Write + Send>> {
        Ok(Box::new(export_file::create(&self.path)?))
    }

    fn sync(&self) -> std::io::Result<()> {
        export_file::sync(&self.path)
    }

    fn open(&self) -> std::io::Result<Box<dyn std::io::BufRead + Send>> {
        Ok(Box::new(export_file::open(&self.path)?))
    }
}

/// Opens another database for a check with public material only (`audit verify --database
/// --checkpoints --public-key` without its HMAC key): its rows can be read and compared with
/// signed checkpoints, but the HMAC chain cannot be checked, so the key given to the adapter is
/// a throwaway one that nothing is verified with.
///
/// # Errors
/// `AUDIT_LOG_MISSING` when there is no file at `database`; `AUDIT_READ_FAILED`.
pub fn open_audit_for_public_verify(database: &Path) -> Result<Arc<dyn AuditLog>, StartupError> {
    let throwaway = chain_key(&ephemeral_key()?)?;
    Ok(Arc::new(SqliteAuditLog::open_read_only(
        database, throwaway,
    )?))
}

/// Builds the gateway for `audit verify` of its own log: like [`build`], but only over an
/// audit database that already exists. Verifying must never create a fresh, empty log where
/// one was expected (that would make a deleted log look like a new one), so when the file is
/// missing nothing is opened, created or written.
///
/// # Errors
/// `AUDIT_LOG_MISSING` when there is no file at the configured location; otherwise as
/// [`build`].
pub fn build_for_verify(settings: &Settings) -> Result<Gateway, StartupError> {
    if !audit_database_path(settings)?.is_file() {
        return Err(crate::ports::audit_log::AuditError::Missing {
            location: "configured location".to_owned(),
        }
        .into());
    }
    build(settings)
}

fn audit_database_path(settings: &Settings) -> Result<PathBuf, StartupError> {
    if let Some(path) = &settings.audit.sqlite_path {
        return Ok(path.clone());
    }
    let dir = process_env::state_dir().ok_or_else(|| SecretError::Store {
        name: DEVELOPMENT_KEY_NAME.to_owned(),
        detail: format!(
            "no state directory; set {} or audit.sqlite_path",
            process_env::STATE_DIR_VARIABLE
        ),
    })?;
    Ok(dir.join(DEFAULT_DATABASE_NAME))
}

/// The deployment key from the configured environment variable; without it, and only for the
/// fake broker, the development key kept next to the database (generated once).
fn audit_key(
    settings: &Settings,
    database: &Path,
) -> Result<(SecretBytes, AuditKeySource), StartupError> {
    let variable = settings.audit.hmac_secret_env.as_str();
    match EnvSecretSource.secret(variable, MIN_SECRET_BYTES) {
        Ok(secret) => Ok((secret, AuditKeySource::Environment)),
        Err(SecretError::Missing { name }) => {
            if settings.broker != BrokerBackend::Fake {
                // A real broker's audit trail must be keyed by a deployment secret.
                return Err(SecretError::Missing { name }.into());
            }
            let dir = database.parent().map(Path::to_path_buf).unwrap_or_default();
            let (secret, origin) = KeyFileSecretSource::new(dir)
                .load_or_create(DEVELOPMENT_KEY_NAME, MIN_SECRET_BYTES)?;
            if origin == KeyOrigin::Generated {
                tracing::warn!(
                    "generated a per-installation DEVELOPMENT audit key next to the audit database; \
                     deployments set {variable} to at least 32 random bytes"
                );
            }
            Ok((secret, AuditKeySource::Development))
        }
        Err(error) => Err(error.into()),
    }
}

fn chain_key(secret: &SecretBytes) -> Result<ChainKey, StartupError> {
    ChainKey::new(secret).map_err(|error| {
        StartupError::Secret(SecretError::TooShort {
            name: "audit key".into(),
            min_bytes: error.min,
        })
    })
}

fn ephemeral_key() -> Result<SecretBytes, StartupError> {
    let mut bytes = vec![0_u8; MIN_SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|_| StartupError::Internal {
        message: "no randomness available".into(),
    })?;
    Ok(SecretBytes::new(bytes))
}

impl Gateway {
    /// An embedded gateway on the deterministic fake broker, with read scopes only, an
    /// in-memory audit log and an ephemeral key (references are stable for the life of the
    /// process).
    ///
    /// # Errors
    /// `INTERNAL_ERROR` when no randomness is available for the key.
    pub fn fake() -> Result<Self, StartupError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self::builder(Arc::new(FakeBroker::new(Arc::clone(&clock))))
            .clock(clock)
            .build()
    }

    /// An embedded gateway on IBKR's Client Portal Gateway at `base_url` (e.g.
    /// `https://localhost:5000/v1/api`): certificates verified, documented pacing, read scopes
    /// only, an in-memory audit log keyed by `key` (at least 32 bytes). Log in at the gateway
    /// yourself; this never does.
    ///
    /// # Errors
    /// `CONFIG_INVALID` for an unusable URL; `CONFIG_SECRET_INVALID` for a short key.
    pub fn client_portal(base_url: &str, key: SecretBytes) -> Result<Self, StartupError> {
        let url = url::Url::parse(base_url).map_err(|error| {
            StartupError::config("base_url", format!("not a valid URL: {error}"))
        })?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let broker = ClientPortalBroker::new(ClientPortalConfig::new(url), Arc::clone(&clock))
            .map_err(setup_error)?;
        Self::builder(Arc::new(broker))
            .clock(clock)
            .key(key)
            .build()
    }

    /// A builder around any broker reader, so embedders can inject their own adapter.
    pub fn builder(broker: Arc<dyn BrokerReader>) -> GatewayBuilder {
        GatewayBuilder {
            broker,
            clock: None,
            scopes: ScopeSet::read_only_defaults(),
            key: None,
            audit: None,
            aliases: BTreeMap::new(),
            workflow: None,
            paper_writer: None,
            preview_policy: PreviewPolicy::default(),
            paper_trading: PaperTradingSettings::default(),
            live_writer: None,
            live_trading: LiveTradingSettings::default(),
            option_chain_max_strikes: crate::domain::options::DEFAULT_MAX_STRIKES,
            checkpoints: CheckpointSetup::default(),
        }
    }
}

/// Builds a [`Gateway`] for library use. Unset parts take the safe defaults: the system clock,
/// read scopes only, an ephemeral key, an in-memory audit log and workflow store, no aliases,
/// the default preview policy, paper trading off and the refusing writer.
pub struct GatewayBuilder {
    broker: Arc<dyn BrokerReader>,
    clock: Option<Arc<dyn Clock>>,
    scopes: ScopeSet,
    key: Option<SecretBytes>,
    audit: Option<Arc<dyn AuditLog>>,
    aliases: BTreeMap<AccountId, AccountAlias>,
    workflow: Option<Arc<dyn WorkflowStore>>,
    paper_writer: Option<Arc<dyn OrderWriter>>,
    preview_policy: PreviewPolicy,
    paper_trading: PaperTradingSettings,
    live_writer: Option<Arc<dyn OrderWriter>>,
    live_trading: LiveTradingSettings,
    option_chain_max_strikes: u8,
    checkpoints: CheckpointSetup,
}

impl GatewayBuilder {
    /// Signs checkpoints with this setup (key, file, retention floor).
    #[must_use]
    pub fn checkpoints(mut self, checkpoints: CheckpointSetup) -> Self {
        self.checkpoints = checkpoints;
        self
    }

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

    /// Keys the audit chain, account references and account hashes with this secret (at least
    /// 32 bytes), so they are stable across processes.
    #[must_use]
    pub fn key(mut self, key: SecretBytes) -> Self {
        self.key = Some(key);
        self
    }

    /// Records calls in this audit log (it should be keyed with the same secret).
    #[must_use]
    pub fn audit_log(mut self, audit: Arc<dyn AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Names an account by an operator alias in outputs and accepts the alias as input.
    #[must_use]
    pub fn alias(mut self, account: AccountId, alias: AccountAlias) -> Self {
        self.aliases.insert(account, alias);
        self
    }

    /// Keeps previews, approvals and idempotency records in this store.
    #[must_use]
    pub fn workflow_store(mut self, workflow: Arc<dyn WorkflowStore>) -> Self {
        self.workflow = Some(workflow);
        self
    }

    /// Places paper orders through this writer.
    #[must_use]
    pub fn paper_writer(mut self, writer: Arc<dyn OrderWriter>) -> Self {
        self.paper_writer = Some(writer);
        self
    }

    /// Uses this preview policy.
    #[must_use]
    pub fn preview_policy(mut self, policy: PreviewPolicy) -> Self {
        self.preview_policy = policy;
        self
    }

    /// Uses these paper trading settings (paper trading is off by default).
    #[must_use]
    pub fn paper_trading(mut self, settings: PaperTradingSettings) -> Self {
        self.paper_trading = settings;
        self
    }

    /// Places live orders through `writer`, which must be built in
    /// [`WriterMode::Live`] (a writer of another mode is refused at every live write).
    pub fn live_writer(mut self, writer: Arc<dyn OrderWriter>) -> Self {
        self.live_writer = Some(writer);
        self
    }

    /// Lists at most `max` strikes per option chain (clamped to 1..=50; default 10).
    #[must_use]
    pub fn option_chain_max_strikes(mut self, max: u8) -> Self {
        let range = crate::domain::options::MAX_STRIKES_RANGE;
        self.option_chain_max_strikes = max.clamp(*range.start(), *range.end());
        self
    }

    /// Uses these live trading settings (off unless both switches are on).
    pub fn live_trading(mut self, settings: LiveTradingSettings) -> Self {
        self.live_trading = settings;
        self
    }

    /// Builds the gateway.
    ///
    /// # Errors
    /// `CONFIG_SECRET_INVALID` for a key shorter than 32 bytes; `INTERNAL_ERROR` when no
    /// randomness is available for an ephemeral key; the live start-up gates' `CONFIG_LIVE_*`
    /// codes when live trading is switched on (an ephemeral key is refused for live: the
    /// embedder must provide its deployment key).
    pub fn build(self) -> Result<Gateway, StartupError> {
        if self.live_trading.enabled || self.live_trading.safety_enabled {
            live_gates_for_library(&self.live_trading, self.key.is_some())?;
        }
        let (secret, key_source) = match self.key {
            Some(secret) => (secret, AuditKeySource::Provided),
            None => (ephemeral_key()?, AuditKeySource::Ephemeral),
        };
        let key = chain_key(&secret)?;
        let audit = self
            .audit
            .unwrap_or_else(|| Arc::new(MemoryAuditLog::new(key.clone())));
        Ok(Gateway::from_parts(GatewayParts {
            broker: self.broker,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            directory: AccountDirectory::new(key.clone(), self.aliases),
            audit,
            chain_key: key,
            key_source,
            scopes: self.scopes,
            workflow: self
                .workflow
                .unwrap_or_else(|| Arc::new(MemoryWorkflowStore::new())),
            paper_writer: self
                .paper_writer
                .unwrap_or_else(|| Arc::new(RefusingOrderWriter::new())),
            preview_policy: self.preview_policy,
            paper_trading: self.paper_trading,
            live_writer: self
                .live_writer
                .unwrap_or_else(|| Arc::new(RefusingOrderWriter::for_mode(WriterMode::Live))),
            live_trading: self.live_trading,
            // The library serves no remote MCP of its own.
            insecure_remote_issuer: false,
            option_chain_max_strikes: self.option_chain_max_strikes,
            checkpoint_lines: self.checkpoints.file.clone().map(checkpoint_lines_at),
            checkpoints: self.checkpoints,
        }))
    }
}

/// The live start-up gates a library gateway can be held to (it has no configuration file:
/// no retention setting, and its key is the embedder's): both switches, the allow-list, the
/// policy, the checklist, and a provided key.
fn live_gates_for_library(
    live: &LiveTradingSettings,
    key_provided: bool,
) -> Result<(), StartupError> {
    use crate::domain::error_code::ErrorCode;
    let gate = |code, key_path: &str, message: &str| StartupError::LiveGate {
        code,
        key_path: key_path.to_owned(),
        message: message.to_owned(),
    };
    if !(live.enabled && live.safety_enabled) {
        return Err(gate(
            ErrorCode::ConfigLiveSwitchMismatch,
            if live.enabled {
                "safety.live_trading_enabled"
            } else {
                "live_trading.enabled"
            },
            "live trading needs both live_trading.enabled and safety.live_trading_enabled",
        ));
    }
    if live.allowed_accounts.is_empty()
        || live.allowed_accounts.iter().any(|id| id.is_paper_shaped())
    {
        return Err(gate(
            ErrorCode::ConfigLiveAccountsInvalid,
            "live_trading.allowed_accounts",
            "must name at least one account, each a live account id",
        ));
    }
    if live.policy().is_none() {
        return Err(gate(
            ErrorCode::ConfigLiveRiskPolicyMissing,
            "live_trading.risk_policy_id",
            "must name a policy defined under live_trading.policies",
        ));
    }
    if !live.checklist_acknowledged {
        return Err(gate(
            ErrorCode::ConfigLiveChecklistNotAcknowledged,
            "live_trading.paper_to_live_checklist_acknowledged",
            "must be true once the paper-to-live checklist is done",
        ));
    }
    if !key_provided {
        return Err(gate(
            ErrorCode::ConfigLiveAuditKeyNotDeployed,
            "key",
            "live trading needs the deployment's audit key; an ephemeral key is refused",
        ));
    }
    Ok(())
}

/// The prompt ids the order writers may confirm: the configured list, else the documented
/// default.
fn confirmable_ids(settings: &Settings) -> std::collections::BTreeSet<String> {
    settings.confirmable_message_ids.clone().unwrap_or_else(|| {
        crate::adapters::outbound::client_portal::DEFAULT_CONFIRMABLE_MESSAGE_IDS
            .iter()
            .map(|id| (*id).to_owned())
            .collect()
    })
}
