//! The `Gateway` facade: the one entry point that library users, the CLI and the MCP server
//! call. Every operation checks its scope before touching any port.

use std::sync::Arc;

use crate::app::account_directory::AccountDirectory;
use crate::app::audited::AuditNote;
use crate::app::config::PaperTradingSettings;
use crate::app::error::GatewayError;
use crate::app::input::AccountSelector;
use crate::domain::account::Account;
use crate::domain::audit::chain::ChainKey;
use crate::domain::preview::PreviewPolicy;
use crate::domain::scope::{Scope, ScopeSet};
use crate::ports::audit_log::AuditLog;
use crate::ports::broker_reader::BrokerReader;
use crate::ports::clock::Clock;
use crate::ports::order_writer::OrderWriter;
use crate::ports::workflow_store::WorkflowStore;

/// Where the audit key (which also keys account references and hashes) came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKeySource {
    /// A deployment secret from the environment (`IBKR_AUDIT_HMAC_SECRET` by default).
    Environment,
    /// The per-installation development key kept next to the audit database.
    Development,
    /// A key that lives only as long as the process (library use without a key).
    Ephemeral,
    /// A key handed in by the embedding program.
    Provided,
}

impl AuditKeySource {
    /// Snake-case name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Environment => "environment",
            Self::Development => "development",
            Self::Ephemeral => "ephemeral",
            Self::Provided => "provided",
        }
    }
}

/// Everything the gateway is built from; assembled by the composition root.
pub struct GatewayParts {
    /// The broker.
    pub broker: Arc<dyn BrokerReader>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Account identity.
    pub directory: AccountDirectory,
    /// The audit log every call is recorded in.
    pub audit: Arc<dyn AuditLog>,
    /// The audit chain key (the same key as the directory's), to verify what is read back.
    pub chain_key: ChainKey,
    /// Where the audit key came from.
    pub key_source: AuditKeySource,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Previews, approvals and idempotency records.
    pub workflow: Arc<dyn WorkflowStore>,
    /// The paper order writer.
    pub paper_writer: Arc<dyn OrderWriter>,
    /// The preview policy.
    pub preview_policy: PreviewPolicy,
    /// Paper trading settings.
    pub paper_trading: PaperTradingSettings,
    /// The live order writer (built in [`crate::ports::order_writer::WriterMode::Live`]).
    pub live_writer: Arc<dyn OrderWriter>,
    /// Live trading settings.
    pub live_trading: crate::app::live_settings::LiveTradingSettings,
    /// Remote MCP is on with `remote_mcp.allow_insecure_loopback_issuer`: tokens are checked
    /// against keys fetched over plain http (local testing only). `health` says so loudly.
    pub insecure_remote_issuer: bool,
    /// The most strikes an option chain lists (`market_data.option_chain_max_strikes`).
    pub option_chain_max_strikes: u8,
    /// The checkpoint signing key, the checkpoint file and the retention floor.
    pub checkpoints: crate::app::checkpoints::CheckpointSetup,
    /// The checkpoint file's lines (the adapter for `checkpoints.file`); `None` for no file.
    pub checkpoint_lines: Option<Arc<dyn crate::app::checkpoints::CheckpointLines>>,
}

/// What a serving front end's readiness probe reports: facts only, gathered without an audit
/// event and without touching anything at the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// The audit log takes writes now (its probe passed).
    pub audit_writable: bool,
    /// The broker answered a session-status question (usable or not).
    pub broker_reachable: bool,
}

impl Readiness {
    /// True when every check passed.
    pub fn is_ready(&self) -> bool {
        self.audit_writable && self.broker_reachable
    }
}

/// The gateway. Cheap to clone; clones share the same adapters (and the same start).
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<GatewayParts>,
    // Set once start-up work has run, so `start` runs it once per gateway however many front
    // ends (or clones) call it. A tokio cell: concurrent callers wait for the one run.
    started: Arc<tokio::sync::OnceCell<()>>,
    // The last prefix this process signed, so the next checkpoint's digest starts there.
    checkpoint_memory: Arc<crate::app::checkpoints::CheckpointMemory>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("backend", &self.inner.broker.backend_name())
            .field("scopes", &self.inner.scopes.to_string())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds a gateway from its parts. Library users start from `Gateway::fake()` or
    /// `Gateway::builder(...)` in the composition root instead.
    pub fn from_parts(parts: GatewayParts) -> Self {
        if parts.insecure_remote_issuer {
            tracing::warn!(
                "remote_mcp.allow_insecure_loopback_issuer is on: bearer tokens are checked \
                 against keys fetched over plain http; for local testing only"
            );
        }
        Self {
            inner: Arc::new(parts),
            started: Arc::new(tokio::sync::OnceCell::new()),
            checkpoint_memory: Arc::default(),
        }
    }

    /// Starts the gateway: runs start-up recovery (paper writes an earlier process left
    /// pending are resolved by client order id, never resubmitted) once per gateway; later
    /// calls, from any clone, return at once. Front ends call it before serving or writing;
    /// it never fails (a recovery that cannot finish is logged and its records stay pending).
    pub async fn start(&self) {
        self.started
            .get_or_init(|| async { self.recover_at_startup().await })
            .await;
    }

    /// True once [`Gateway::start`] has run.
    pub fn is_started(&self) -> bool {
        self.started.initialized()
    }

    pub(crate) fn broker(&self) -> &dyn BrokerReader {
        self.inner.broker.as_ref()
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    pub(crate) fn directory(&self) -> &AccountDirectory {
        &self.inner.directory
    }

    pub(crate) fn key_source(&self) -> AuditKeySource {
        self.inner.key_source
    }

    pub(crate) fn audit(&self) -> &dyn AuditLog {
        self.inner.audit.as_ref()
    }

    pub(crate) fn chain_key(&self) -> &ChainKey {
        &self.inner.chain_key
    }

    /// The checkpoint signing key, file and retention floor.
    pub(crate) fn checkpoint_setup(&self) -> &crate::app::checkpoints::CheckpointSetup {
        &self.inner.checkpoints
    }

    /// The checkpoint file's lines, when checkpoints are also written to a file.
    pub(crate) fn checkpoint_lines(&self) -> Option<&dyn crate::app::checkpoints::CheckpointLines> {
        self.inner.checkpoint_lines.as_deref()
    }

    /// The last prefix this process signed.
    pub(crate) fn checkpoint_memory(&self) -> &crate::app::checkpoints::CheckpointMemory {
        &self.checkpoint_memory
    }

    pub(crate) fn workflow(&self) -> &dyn WorkflowStore {
        self.inner.workflow.as_ref()
    }

    pub(crate) fn paper_writer(&self) -> &dyn OrderWriter {
        self.inner.paper_writer.as_ref()
    }

    pub(crate) fn preview_policy(&self) -> &PreviewPolicy {
        &self.inner.preview_policy
    }

    pub(crate) fn live_writer(&self) -> &dyn OrderWriter {
        self.inner.live_writer.as_ref()
    }

    pub(crate) fn live_trading(&self) -> &crate::app::live_settings::LiveTradingSettings {
        &self.inner.live_trading
    }

    /// The writer that acts for `operation`: the live writer for a live operation.
    pub(crate) fn writer_for_operation(
        &self,
        operation: crate::domain::idempotency::WriteOperation,
    ) -> &dyn OrderWriter {
        if operation.is_live() {
            self.live_writer()
        } else {
            self.paper_writer()
        }
    }

    /// The writer that knows `account`'s orders: the paper writer for a paper-shaped id, the
    /// live writer for any other.
    pub(crate) fn writer_for(&self, account: &crate::domain::ids::AccountId) -> &dyn OrderWriter {
        if account.is_paper_shaped() {
            self.paper_writer()
        } else {
            self.live_writer()
        }
    }

    pub(crate) fn paper_trading(&self) -> &PaperTradingSettings {
        &self.inner.paper_trading
    }

    /// The most strikes an option chain lists.
    pub(crate) fn option_chain_max_strikes(&self) -> u8 {
        self.inner.option_chain_max_strikes
    }

    /// A path-free description of the audit store, e.g. `sqlite audit.sqlite3`.
    pub fn audit_description(&self) -> String {
        self.inner.audit.describe()
    }

    /// True when remote MCP trusts an issuer's keys fetched over plain http.
    pub fn insecure_remote_issuer(&self) -> bool {
        self.inner.insecure_remote_issuer
    }

    /// The granted scopes.
    pub fn granted_scopes(&self) -> &ScopeSet {
        &self.inner.scopes
    }

    /// The backend's name, e.g. `fake`.
    pub fn backend_name(&self) -> &'static str {
        self.inner.broker.backend_name()
    }

    /// Whether the gateway can serve calls now: the audit log's write probe and the broker's
    /// session status. Records no event and changes nothing (a failed probe here does not
    /// halt live writes; the live gates probe again before any write).
    pub async fn readiness(&self) -> Readiness {
        let audit_writable = self.audit().check_writable().await.is_ok();
        let broker_reachable = self.broker().session_status().await.is_ok();
        Readiness {
            audit_writable,
            broker_reachable,
        }
    }

    /// Refuses with `AUTH_MISSING_SCOPE` unless `scope` is granted. Called first by every
    /// operation, before any port is touched.
    pub(crate) fn require(&self, scope: Scope) -> Result<(), GatewayError> {
        if self.inner.scopes.contains(scope) {
            Ok(())
        } else {
            Err(GatewayError::MissingScope { scope })
        }
    }

    /// The visible account a selector names, noted for the audit record.
    pub(crate) async fn select_account(
        &self,
        selector: &AccountSelector,
        note: &AuditNote,
    ) -> Result<Account, GatewayError> {
        let accounts = self.broker().accounts().await?;
        let account = self.directory().select(selector, &accounts).cloned()?;
        note.record_account(&account.id);
        Ok(account)
    }
}
