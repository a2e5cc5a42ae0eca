//! Configuration: the one YAML loader and the typed, validated `Settings` tree.
//!
//! The file is parsed once into raw serde structs that reject unknown keys, then validated into
//! domain types. Every error names the key path. All YAML parsing lives in this module, so the
//! YAML library can be swapped in one place (ADR 0005).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::app::live_settings::{
    AutoHaltSettings, DEFAULT_CONSECUTIVE_REJECTIONS, DEFAULT_RECONCILER_GRACE_SECONDS,
    DEFAULT_RECONCILER_INTERVAL_SECONDS, DEFAULT_SESSION_LOSS_WINDOW_MINUTES,
    DEFAULT_SESSION_LOSSES, DEFAULT_SESSION_TIME_ZONE, LiveTradingSettings, LiveWriterKind,
    MAX_RECONCILER_INTERVAL_SECONDS, MIN_RECONCILER_INTERVAL_SECONDS, ReconcilerSettings,
    SessionLossThreshold,
};
use crate::app::remote_settings::{MAX_CLOCK_SKEW_SECONDS, RemoteMcpSettings, RemoteRateLimit};
use crate::app::startup_error::StartupError;
use crate::domain::ids::AccountId;
use crate::domain::instrument::AssetClass;
use crate::domain::money::{Currency, parse_exact_decimal};
use crate::domain::preview::PreviewPolicy;
use crate::domain::risk_policy::{RiskPolicy, RiskPolicyError, RiskPolicyParts};
use crate::domain::scope::{Scope, ScopeSet};
use crate::net::is_loopback;

/// Which broker backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerBackend {
    /// The embedded, deterministic fake broker (the default).
    Fake,
    /// IBKR's Client Portal Gateway.
    ClientPortalGateway {
        /// The gateway's API base URL, e.g. `https://localhost:5000/v1/api`.
        base_url: Url,
        /// Skip certificate checks; only ever true for a loopback host.
        allow_insecure_tls_for_localhost: bool,
        /// How often the session is kept alive (`/tickle`), in seconds.
        keepalive_interval_seconds: u64,
        /// The timeout of one request, in seconds.
        request_timeout_seconds: u64,
        /// How far below each documented pacing limit requests stay, in percent.
        pacing_margin_percent: u8,
    },
}

impl BrokerBackend {
    /// The backend's config spelling.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Fake => "fake",
            Self::ClientPortalGateway { .. } => "client_portal_gateway",
        }
    }
}

/// An operator-chosen account alias, e.g. `main-paper`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountAlias(String);

impl AccountAlias {
    /// Parses `[a-z0-9_-]{1,32}` that does not itself look like an account id or reference.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            return Err("alias must be 1 to 32 lower-case letters, digits, '-' or '_'".into());
        }
        if raw.starts_with("acct_") {
            return Err("alias must not start with `acct_`, which account references use".into());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The alias text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The default name of the environment variable holding the audit HMAC key.
pub const DEFAULT_AUDIT_SECRET_VARIABLE: &str = "IBKR_AUDIT_HMAC_SECRET";

/// The default (and minimum for live trading) retention of live-write audit events, in days.
pub const DEFAULT_LIVE_WRITE_RETENTION_DAYS: u32 = 2555;

/// The default name of the environment variable holding the checkpoint signing secret.
pub const DEFAULT_AUDIT_SIGNING_KEY_VARIABLE: &str = "IBKR_AUDIT_SIGNING_KEY";

/// The default interval between the checkpoints `mcp serve` writes, in seconds.
pub const DEFAULT_CHECKPOINT_INTERVAL_SECONDS: u64 = 300;

/// The allowed checkpoint intervals, in seconds (ten seconds to a day).
pub const CHECKPOINT_INTERVAL_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 10..=86_400;

/// Where the audit log lives and where its key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// The SQLite file; `None` means `audit.sqlite3` in the state directory.
    pub sqlite_path: Option<PathBuf>,
    /// The environment variable holding the HMAC key (at least 32 bytes).
    pub hmac_secret_env: String,
    /// How long audit events of live writes are kept, in days.
    pub live_write_retention_days: u32,
    /// The environment variable holding the checkpoint signing secret (at least 32 bytes).
    pub signing_key_env: String,
    /// An owner-only file holding the checkpoint signing secret; when set, it wins over
    /// `signing_key_env`.
    pub signing_key_file: Option<PathBuf>,
    /// How often `mcp serve` writes a checkpoint, in seconds.
    pub checkpoint_interval_seconds: u64,
    /// The append-only checkpoint file; `None` means `audit-checkpoints.jsonl` beside the
    /// audit database.
    pub checkpoint_file: Option<PathBuf>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            sqlite_path: None,
            hmac_secret_env: DEFAULT_AUDIT_SECRET_VARIABLE.to_owned(),
            live_write_retention_days: DEFAULT_LIVE_WRITE_RETENTION_DAYS,
            signing_key_env: DEFAULT_AUDIT_SIGNING_KEY_VARIABLE.to_owned(),
            signing_key_file: None,
            checkpoint_interval_seconds: DEFAULT_CHECKPOINT_INTERVAL_SECONDS,
            checkpoint_file: None,
        }
    }
}

/// A group of MCP tools that configuration can switch off as a whole (on top of scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Toolset {
    /// Health, backend status and session requirements.
    Session,
    /// Accounts, summaries and positions.
    Account,
    /// Contracts, quotes and bars.
    Market,
    /// Working orders and executions (and, later, order workflows).
    Orders,
    /// The audit log.
    Audit,
}

impl Toolset {
    /// Every toolset.
    pub const ALL: [Self; 5] = [
        Self::Session,
        Self::Account,
        Self::Market,
        Self::Orders,
        Self::Audit,
    ];

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Account => "account",
            Self::Market => "market",
            Self::Orders => "orders",
            Self::Audit => "audit",
        }
    }
}

/// Validated settings. Built only by [`Settings::embedded_defaults`] or [`Settings::from_yaml`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The broker backend.
    pub broker: BrokerBackend,
    /// Granted scopes.
    pub enabled_scopes: ScopeSet,
    /// Operator aliases for accounts.
    pub account_aliases: BTreeMap<AccountId, AccountAlias>,
    /// The audit log.
    pub audit: AuditSettings,
    /// MCP tool groups exposed (scopes filter further).
    pub mcp_toolsets: std::collections::BTreeSet<Toolset>,
    /// The preview policy (`order_preview`).
    pub order_preview: PreviewPolicy,
    /// Paper trading (`paper_trading`); off by default.
    pub paper_trading: PaperTradingSettings,
    /// Broker prompt ids the order writer may confirm (`broker.confirmable_message_ids`);
    /// `None` means the writer's documented default list.
    pub confirmable_message_ids: Option<std::collections::BTreeSet<String>>,
    /// Where previews, approvals and idempotency records live (`workflow.sqlite_path`);
    /// `None` means `workflow.sqlite3` beside the audit database.
    pub workflow_sqlite_path: Option<PathBuf>,
    /// Live trading (`live_trading`, `safety.live_trading_enabled`); off by default.
    pub live_trading: LiveTradingSettings,
    /// The most reply-prompt rounds an order writer answers for one request
    /// (`broker.max_reply_rounds`).
    pub max_reply_rounds: u8,
    /// Remote MCP (`remote_mcp`, `safety.remote_mcp_enabled`); off by default.
    pub remote_mcp: RemoteMcpSettings,
    /// The most strikes an option chain lists (`market_data.option_chain_max_strikes`).
    pub option_chain_max_strikes: u8,
}

/// The default of `broker.max_reply_rounds`.
pub const DEFAULT_MAX_REPLY_ROUNDS: u8 = 5;

/// Which adapter places paper orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaperWriterKind {
    /// The Client Portal Gateway's order endpoints, against the paper account.
    ClientPortal,
    /// A local, network-free book with deterministic ids.
    LocalCandidate,
    /// Refuses every write (the default).
    Refusing,
}

impl PaperWriterKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientPortal => "client_portal",
            Self::LocalCandidate => "local_candidate",
            Self::Refusing => "refusing",
        }
    }
}

/// The default grace before start-up recovery looks at a pending write: long enough for a
/// write in flight in another process (one request plus five reply rounds) to finish.
pub const DEFAULT_RECOVERY_GRACE_SECONDS: u32 = 120;

/// Paper trading settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperTradingSettings {
    /// Off unless set.
    pub enabled: bool,
    /// The only accounts paper writes may touch.
    pub allowed_accounts: std::collections::BTreeSet<AccountId>,
    /// The writer adapter.
    pub writer: PaperWriterKind,
    /// How old a pending write must be before recovery resolves it, in seconds.
    pub recovery_grace_seconds: u32,
}

impl Default for PaperTradingSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            allowed_accounts: std::collections::BTreeSet::new(),
            writer: PaperWriterKind::Refusing,
            recovery_grace_seconds: DEFAULT_RECOVERY_GRACE_SECONDS,
        }
    }
}

impl Settings {
    /// The embedded defaults: fake broker, read scopes only, no aliases, the audit log in the
    /// state directory.
    pub fn embedded_defaults() -> Self {
        Self {
            broker: BrokerBackend::Fake,
            enabled_scopes: ScopeSet::read_only_defaults(),
            account_aliases: BTreeMap::new(),
            audit: AuditSettings::default(),
            mcp_toolsets: Toolset::ALL.into_iter().collect(),
            order_preview: PreviewPolicy::default(),
            paper_trading: PaperTradingSettings::default(),
            confirmable_message_ids: None,
            workflow_sqlite_path: None,
            live_trading: LiveTradingSettings::default(),
            max_reply_rounds: DEFAULT_MAX_REPLY_ROUNDS,
            remote_mcp: RemoteMcpSettings::default(),
            option_chain_max_strikes: crate::domain::options::DEFAULT_MAX_STRIKES,
        }
    }

    /// Granted scopes that cannot do anything: the live order scopes while live trading is
    /// off. Start-up warns about them, so an operator does not believe they do something.
    pub fn inert_scopes(&self) -> Vec<Scope> {
        inert_scopes_of(&self.enabled_scopes, self.live_trading.is_on())
    }

    /// Reads and validates the file at `path`.
    ///
    /// # Errors
    /// [`StartupError::ConfigFile`] when the file cannot be read (naming the path as given),
    /// [`StartupError::Config`] when it is invalid (naming the key path).
    pub fn load(path: &Path) -> Result<Self, StartupError> {
        let unreadable = |error: std::io::Error| StartupError::ConfigFile {
            path: path.display().to_string(),
            reason: match error.kind() {
                std::io::ErrorKind::NotFound => "not found".into(),
                std::io::ErrorKind::PermissionDenied => "permission denied".into(),
                std::io::ErrorKind::InvalidData => "not valid UTF-8".into(),
                _ => "unreadable".into(),
            },
            source: error,
        };
        // Read at most one byte past the limit, so a huge file is refused without loading it.
        let file = std::fs::File::open(path).map_err(unreadable)?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(file, MAX_CONFIG_BYTES as u64 + 1),
            &mut bytes,
        )
        .map_err(unreadable)?;
        check_config_size(bytes.len())?;
        let text = String::from_utf8(bytes)
            .map_err(|_| unreadable(std::io::ErrorKind::InvalidData.into()))?;
        Self::from_yaml(&text)
    }

    /// Parses and validates YAML text. An empty document means all defaults.
    ///
    /// Text over [`MAX_CONFIG_BYTES`], or nested deeper than [`MAX_CONFIG_DEPTH`] levels, is
    /// refused before the YAML parser sees it: such a file cannot be a gateway configuration,
    /// and parsing it could take the parser a long time.
    ///
    /// # Errors
    /// [`StartupError::Config`] naming the key path of the first problem (`(root)` for the size
    /// and depth limits).
    pub fn from_yaml(text: &str) -> Result<Self, StartupError> {
        check_config_size(text.len())?;
        check_config_depth(text)?;
        let raw: RawSettings = if text.trim().is_empty() {
            RawSettings::default()
        } else {
            let deserializer = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(deserializer).map_err(|error| {
                let path = error.path().to_string();
                // serde_yaml puts its own copy of the path in front of its message; the key path
                // is reported once, and the copy could hold an alias key (a raw account id).
                let inner = error.inner().to_string();
                let inner = inner
                    .strip_prefix(path.as_str())
                    .and_then(|rest| rest.strip_prefix(": "))
                    .unwrap_or(&inner);
                let key_path = if path == "." {
                    "(root)".to_owned()
                } else if path.starts_with("accounts.aliases.") {
                    // The next segment would be a raw account id.
                    "accounts.aliases".to_owned()
                } else {
                    path
                };
                StartupError::config(key_path, without_values(&strip_location(inner)))
            })?
        };
        raw.validate()
    }
}

/// The scopes of `scopes` that cannot do anything: the live order scopes while live trading
/// is off (`live_on` false); none while it is on.
pub fn inert_scopes_of(scopes: &ScopeSet, live_on: bool) -> Vec<Scope> {
    if live_on {
        return Vec::new();
    }
    scopes
        .iter()
        .filter(|scope| {
            matches!(
                scope,
                Scope::OrdersLiveSubmit
                    | Scope::OrdersLiveCancel
                    | Scope::OrdersLiveModify
                    | Scope::OrdersLiveBracketSubmit
            )
        })
        .collect()
}

/// The largest configuration file accepted: 1 MiB. A real one is a few kilobytes.
pub const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The deepest nesting accepted (block indentation, compact `- ` items and flow brackets
/// together). The settings tree itself is at most five levels deep
/// (`live_trading.policies.<id>.session.max_notional`).
pub const MAX_CONFIG_DEPTH: usize = 32;

fn check_config_size(length: usize) -> Result<(), StartupError> {
    if length > MAX_CONFIG_BYTES {
        return Err(StartupError::config(
            "(root)",
            format!(
                "the file is larger than the {MAX_CONFIG_BYTES}-byte limit for a configuration; it was not parsed"
            ),
        ));
    }
    Ok(())
}

fn check_config_depth(text: &str) -> Result<(), StartupError> {
    if nesting_depth_exceeds(text, MAX_CONFIG_DEPTH) {
        return Err(StartupError::config(
            "(root)",
            format!(
                "the file nests deeper than {MAX_CONFIG_DEPTH} levels, far deeper than any configuration; it was not parsed"
            ),
        ));
    }
    Ok(())
}

/// A cheap, conservative scan for nesting deeper than `limit`, in one pass without parsing.
///
/// Per line it counts the open block indentation levels, the compact `- ` and `? ` entries that
/// start the line, and the flow brackets (`[`, `{`) open at any point, ignoring brackets inside
/// comments and quoted scalars. A quote opens a scalar only where YAML would open one: at the
/// start of a line or entry, after `[`, `{`, a `,` inside brackets, or `: `.
///
/// Once a line ends inside a quoted scalar (YAML lets one span lines, this scan does not follow
/// it), the rest of the file is scanned blind: every `[` and `{` counts and none is ever closed.
/// So an odd file may be refused, but no arrangement of quotes can hide nesting from the scan.
fn nesting_depth_exceeds(text: &str, limit: usize) -> bool {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow_depth: usize = 0;
    let mut blind = false;
    for line in text.lines() {
        if blind {
            flow_depth += line.chars().filter(|c| matches!(c, '[' | '{')).count();
            if indents.len() + flow_depth > limit {
                return true;
            }
            continue;
        }
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        let mut rest = content.trim_start();
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if flow_depth == 0 {
            while indents.last().is_some_and(|&open| open > indent) {
                indents.pop();
            }
            if indents.last().is_none_or(|&open| open < indent) {
                indents.push(indent);
            }
        }
        let mut compact_entries = 0;
        while let Some(after) = rest
            .strip_prefix("- ")
            .or_else(|| rest.strip_prefix("? "))
            .or_else(|| rest.strip_prefix("-\t"))
        {
            compact_entries += 1;
            rest = after.trim_start();
        }
        let block_depth = indents.len() + compact_entries;
        if block_depth + flow_depth > limit {
            return true;
        }
        // The previous significant character, and whether whitespace followed it.
        let mut previous: Option<char> = None;
        let mut spaced = false;
        let mut characters = rest.chars().peekable();
        while let Some(character) = characters.next() {
            let opens_scalar = matches!(character, '"' | '\'')
                && match previous {
                    None | Some('[' | '{') => true,
                    Some(',') => flow_depth > 0,
                    Some(':') => spaced,
                    _ => false,
                };
            if opens_scalar && !skip_quoted(character, &mut characters) {
                blind = true;
                break;
            }
            match character {
                ' ' | '\t' => {
                    spaced = true;
                    continue;
                }
                '#' if spaced || previous.is_none() => break,
                '[' | '{' => {
                    flow_depth += 1;
                    if block_depth + flow_depth > limit {
                        return true;
                    }
                }
                ']' | '}' => flow_depth = flow_depth.saturating_sub(1),
                _ => {}
            }
            previous = Some(character);
            spaced = false;
        }
    }
    false
}

/// Skips a quoted scalar's characters up to and including its closing quote, honouring `\\` in
/// double quotes and `''` in single quotes. False when the line ends before the scalar does.
fn skip_quoted(quote: char, characters: &mut std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    while let Some(character) = characters.next() {
        if quote == '"' && character == '\\' {
            characters.next();
        } else if character == quote {
            if quote == '\'' && characters.peek() == Some(&'\'') {
                characters.next();
            } else {
                return true;
            }
        }
    }
    false
}

/// Drops the value serde quotes in a type or variant error (`invalid type: string "U1234567",
/// expected ...` becomes `invalid type: string, expected ...`), so that no message repeats an
/// account id or a secret pasted into the wrong key. The kind of value stays: it is what the
/// reader needs.
fn without_values(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "unknown variant "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        // The quoted value comes before the last `, expected`, which serde writes itself.
        let Some(split) = rest.rfind(", expected") else {
            return prefix.trim_end().trim_end_matches(':').to_owned();
        };
        let (unexpected, expected) = rest.split_at(split);
        let kind = unexpected
            .split(['`', '"', '\''])
            .next()
            .unwrap_or_default()
            .trim();
        let head = prefix.trim_end().trim_end_matches(':');
        return if kind.is_empty() {
            format!("{head}{expected}")
        } else {
            format!("{head}: {kind}{expected}")
        };
    }
    message.to_owned()
}

/// serde_yaml appends ` at line L column C`; keep the location but in a shorter form.
fn strip_location(message: &str) -> String {
    message.trim_end_matches('.').to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    broker: RawBroker,
    #[serde(default)]
    auth: RawAuth,
    #[serde(default)]
    accounts: RawAccounts,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    mcp: RawMcp,
    #[serde(default)]
    order_preview: RawOrderPreview,
    #[serde(default)]
    paper_trading: RawPaperTrading,
    #[serde(default)]
    workflow: RawWorkflow,
    #[serde(default)]
    safety: RawSafety,
    #[serde(default)]
    live_trading: RawLiveTrading,
    #[serde(default)]
    remote_mcp: RawRemoteMcp,
    #[serde(default)]
    market_data: RawMarketData,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the market_data section")]
struct RawMarketData {
    option_chain_max_strikes: Option<u64>,
}

impl RawMarketData {
    /// Each strike kept costs one paced `/iserver/secdef/info` call, so the bound is small.
    fn validate(self) -> Result<u8, StartupError> {
        let Some(raw) = self.option_chain_max_strikes else {
            return Ok(crate::domain::options::DEFAULT_MAX_STRIKES);
        };
        u8::try_from(raw)
            .ok()
            .filter(|max| crate::domain::options::MAX_STRIKES_RANGE.contains(max))
            .ok_or_else(|| {
                StartupError::config(
                    "market_data.option_chain_max_strikes",
                    "must be from 1 to 50 (strikes an option chain lists)",
                )
            })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    sqlite_path: Option<PathBuf>,
}

/// A decimal given as a YAML number or a string; strings keep exactness.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawDecimal {
    Text(String),
    Number(serde_yaml::Number),
}

impl RawDecimal {
    fn parse(&self, key: &str) -> Result<rust_decimal::Decimal, StartupError> {
        let text = match self {
            Self::Text(text) => text.clone(),
            Self::Number(number) => number.to_string(),
        };
        parse_exact_decimal(text.trim())
            .map_err(|_| StartupError::config(key, "must be a plain decimal number"))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrderPreview {
    expiration_seconds: Option<u32>,
    allowed_asset_classes: Option<Vec<String>>,
    max_quantity: Option<RawDecimal>,
    /// `null` (or absent → default cap); the literal string `none` removes the cap.
    max_notional: Option<RawDecimal>,
    allow_fractional: Option<bool>,
    allow_market_orders: Option<bool>,
}

impl RawOrderPreview {
    fn validate(self) -> Result<PreviewPolicy, StartupError> {
        let defaults = PreviewPolicy::default();
        let expiration_seconds = self
            .expiration_seconds
            .unwrap_or(defaults.expiration_seconds);
        if !(10..=86_400).contains(&expiration_seconds) {
            return Err(StartupError::config(
                "order_preview.expiration_seconds",
                "must be from 10 to 86400",
            ));
        }
        let allowed_asset_classes = match self.allowed_asset_classes {
            None => defaults.allowed_asset_classes,
            Some(raw) => raw
                .iter()
                .enumerate()
                .map(|(index, code)| {
                    AssetClass::parse(code)
                        .ok()
                        .filter(|class| *class != AssetClass::Other && *class != AssetClass::Index)
                        .ok_or_else(|| {
                            StartupError::config(
                                format!("order_preview.allowed_asset_classes[{index}]"),
                                "unknown or untradable asset class; use codes such as STK, ETF, OPT, FUT, CASH",
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let max_quantity = match &self.max_quantity {
            None => defaults.max_quantity,
            Some(raw) => raw.parse("order_preview.max_quantity")?,
        };
        if max_quantity <= rust_decimal::Decimal::ZERO {
            return Err(StartupError::config(
                "order_preview.max_quantity",
                "must be greater than zero",
            ));
        }
        let max_notional = match &self.max_notional {
            None => defaults.max_notional,
            Some(RawDecimal::Text(text)) if text.trim() == "none" => None,
            Some(raw) => {
                let value = raw.parse("order_preview.max_notional")?;
                if value <= rust_decimal::Decimal::ZERO {
                    return Err(StartupError::config(
                        "order_preview.max_notional",
                        "must be greater than zero (or `none` for no cap)",
                    ));
                }
                Some(value)
            }
        };
        Ok(PreviewPolicy {
            expiration_seconds,
            allowed_asset_classes,
            max_quantity,
            max_notional,
            allow_fractional: self.allow_fractional.unwrap_or(defaults.allow_fractional),
            allow_market_orders: self
                .allow_market_orders
                .unwrap_or(defaults.allow_market_orders),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaperTrading {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    allowed_accounts: Vec<String>,
    writer: Option<String>,
    recovery_grace_seconds: Option<u32>,
}

impl RawPaperTrading {
    fn validate(self, broker: &BrokerBackend) -> Result<PaperTradingSettings, StartupError> {
        let mut allowed_accounts = std::collections::BTreeSet::new();
        for (index, raw) in self.allowed_accounts.iter().enumerate() {
            // The path names the position, never the id.
            let key_path = format!("paper_trading.allowed_accounts[{index}]");
            let id = AccountId::parse(raw)
                .map_err(|error| StartupError::config(key_path.clone(), error.to_string()))?;
            if !id.is_paper_shaped() {
                return Err(StartupError::config(
                    key_path,
                    "is not a paper account id (paper ids start with DU or DF)",
                ));
            }
            allowed_accounts.insert(id);
        }
        let writer = match self.writer.as_deref() {
            None | Some("refusing") => PaperWriterKind::Refusing,
            Some("local_candidate") => PaperWriterKind::LocalCandidate,
            Some("client_portal") => PaperWriterKind::ClientPortal,
            Some(_) => {
                return Err(StartupError::config(
                    "paper_trading.writer",
                    "must be client_portal, local_candidate or refusing",
                ));
            }
        };
        if writer == PaperWriterKind::ClientPortal && *broker == BrokerBackend::Fake {
            return Err(StartupError::config(
                "paper_trading.writer",
                "client_portal needs broker.backend: client_portal_gateway",
            ));
        }
        if self.enabled && allowed_accounts.is_empty() {
            return Err(StartupError::config(
                "paper_trading.allowed_accounts",
                "must name at least one paper account when paper_trading.enabled is true",
            ));
        }
        let recovery_grace_seconds = self
            .recovery_grace_seconds
            .unwrap_or(DEFAULT_RECOVERY_GRACE_SECONDS);
        if !(1..=3_600).contains(&recovery_grace_seconds) {
            return Err(StartupError::config(
                "paper_trading.recovery_grace_seconds",
                "must be from 1 to 3600",
            ));
        }
        Ok(PaperTradingSettings {
            enabled: self.enabled,
            allowed_accounts,
            writer,
            recovery_grace_seconds,
        })
    }
}

/// The `safety` section: switches kept apart from the features they guard, so that one
/// mistaken value cannot turn a feature on by itself.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the safety section")]
struct RawSafety {
    #[serde(default)]
    live_trading_enabled: bool,
    #[serde(default)]
    remote_mcp_enabled: bool,
}

/// The longest risk policy id accepted.
const MAX_POLICY_ID_CHARS: usize = 64;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the live_trading section")]
struct RawLiveTrading {
    #[serde(default)]
    enabled: bool,
    #[serde(default)]
    allowed_accounts: Vec<String>,
    risk_policy_id: Option<String>,
    #[serde(default)]
    policies: BTreeMap<String, RawRiskPolicy>,
    #[serde(default)]
    paper_to_live_checklist_acknowledged: bool,
    #[serde(default)]
    agent_approvals_allowed: bool,
    writer: Option<String>,
    session_time_zone: Option<String>,
    reconciler_interval_seconds: Option<u64>,
    reconciler_grace_seconds: Option<u64>,
    #[serde(default)]
    auto_halt: RawAutoHalt,
}

/// `live_trading.auto_halt`: every trigger defaults to on.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the auto_halt section")]
struct RawAutoHalt {
    audit_write_failure: Option<bool>,
    consecutive_rejections: Option<RawCountTrigger>,
    session_loss: Option<RawSessionLossTrigger>,
    overfill: Option<bool>,
    unknown_client_order_id: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a rejection trigger (enabled, count)"
)]
struct RawCountTrigger {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    count: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a session-loss trigger (enabled, count, window_minutes)"
)]
struct RawSessionLossTrigger {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    count: Option<u32>,
    window_minutes: Option<u64>,
}

fn enabled_by_default() -> bool {
    true
}

/// The longest accepted session-loss window, in minutes (one day).
const MAX_SESSION_LOSS_WINDOW_MINUTES: u64 = 24 * 60;
/// The largest accepted trigger count.
const MAX_TRIGGER_COUNT: u32 = 1_000;

impl RawAutoHalt {
    fn validate(self) -> Result<AutoHaltSettings, StartupError> {
        let count_in_range = |key: &str, count: u32| {
            if (1..=MAX_TRIGGER_COUNT).contains(&count) {
                Ok(count)
            } else {
                Err(StartupError::config(
                    key,
                    format!("must be 1 to {MAX_TRIGGER_COUNT}"),
                ))
            }
        };
        let consecutive_rejections = match self.consecutive_rejections {
            None => Some(DEFAULT_CONSECUTIVE_REJECTIONS),
            Some(RawCountTrigger { enabled: false, .. }) => None,
            Some(RawCountTrigger { count, .. }) => Some(count_in_range(
                "live_trading.auto_halt.consecutive_rejections.count",
                count.unwrap_or(DEFAULT_CONSECUTIVE_REJECTIONS),
            )?),
        };
        let session_loss = match self.session_loss {
            None => AutoHaltSettings::default().session_loss,
            Some(RawSessionLossTrigger { enabled: false, .. }) => None,
            Some(RawSessionLossTrigger {
                count,
                window_minutes,
                ..
            }) => {
                let count = count_in_range(
                    "live_trading.auto_halt.session_loss.count",
                    count.unwrap_or(DEFAULT_SESSION_LOSSES),
                )?;
                let minutes = window_minutes.unwrap_or(DEFAULT_SESSION_LOSS_WINDOW_MINUTES);
                if !(1..=MAX_SESSION_LOSS_WINDOW_MINUTES).contains(&minutes) {
                    return Err(StartupError::config(
                        "live_trading.auto_halt.session_loss.window_minutes",
                        format!("must be 1 to {MAX_SESSION_LOSS_WINDOW_MINUTES}"),
                    ));
                }
                Some(SessionLossThreshold {
                    count,
                    window: Duration::from_secs(minutes * 60),
                })
            }
        };
        Ok(AutoHaltSettings {
            audit_write_failure: self.audit_write_failure.unwrap_or(true),
            consecutive_rejections,
            session_loss,
            overfill: self.overfill.unwrap_or(true),
            unknown_client_order_id: self.unknown_client_order_id.unwrap_or(true),
        })
    }
}

/// One entry of `live_trading.policies`. Every limit is required: a live policy states all of
/// them, none is filled in by a default.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a risk policy")]
struct RawRiskPolicy {
    currency: String,
    max_notional: RawDecimal,
    max_quantity: RawDecimal,
    allowed_symbols: Vec<String>,
    allowed_asset_classes: Vec<String>,
    frequency: RawFrequencyLimit,
    session: RawSessionLimit,
    max_price_deviation_bps: u32,
    max_quote_age_seconds: u32,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a frequency limit (max_orders, window_seconds)"
)]
struct RawFrequencyLimit {
    max_orders: u32,
    window_seconds: u32,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a session limit (max_orders, max_notional)"
)]
struct RawSessionLimit {
    max_orders: u32,
    max_notional: RawDecimal,
}

impl RawLiveTrading {
    /// Validates the section's shape. Whether live trading may start with it is decided by the
    /// start-up gates (`app::live_startup`), except that the allow-list is gated here too when
    /// both switches are on: only here are the entries still in the file's order, so only here
    /// can a refusal point at the entry's position in the file.
    fn validate(
        self,
        safety_enabled: bool,
        broker: &BrokerBackend,
    ) -> Result<LiveTradingSettings, StartupError> {
        let mut accounts_in_file_order = Vec::with_capacity(self.allowed_accounts.len());
        for (index, raw) in self.allowed_accounts.iter().enumerate() {
            // The path names the position, never the id.
            let key_path = format!("live_trading.allowed_accounts[{index}]");
            let id = AccountId::parse(raw)
                .map_err(|error| StartupError::config(key_path.clone(), error.to_string()))?;
            if accounts_in_file_order.contains(&id) {
                return Err(StartupError::config(
                    key_path,
                    "names the same account as an earlier entry",
                ));
            }
            accounts_in_file_order.push(id);
        }
        if self.enabled && safety_enabled {
            crate::app::live_startup::check_allowed_accounts(&accounts_in_file_order)?;
        }
        let mut policies = BTreeMap::new();
        for (id, raw_policy) in self.policies {
            if !is_policy_id(&id) {
                return Err(StartupError::config(
                    "live_trading.policies",
                    format!(
                        "a policy id must be 1 to {MAX_POLICY_ID_CHARS} letters, digits, '-' or '_'"
                    ),
                ));
            }
            let policy = raw_policy.validate(&format!("live_trading.policies.{id}"))?;
            policies.insert(id, policy);
        }
        let risk_policy_id = match self.risk_policy_id {
            None => None,
            Some(id) if is_policy_id(&id) => Some(id),
            Some(_) => {
                return Err(StartupError::config(
                    "live_trading.risk_policy_id",
                    format!(
                        "must be a policy id: 1 to {MAX_POLICY_ID_CHARS} letters, digits, '-' or '_'"
                    ),
                ));
            }
        };
        let writer = match self.writer.as_deref() {
            None | Some("refusing") => LiveWriterKind::Refusing,
            Some("local_candidate") => LiveWriterKind::LocalCandidate,
            Some("client_portal") => LiveWriterKind::ClientPortal,
            Some(_) => {
                return Err(StartupError::config(
                    "live_trading.writer",
                    "must be client_portal, local_candidate or refusing",
                ));
            }
        };
        if writer == LiveWriterKind::ClientPortal && *broker == BrokerBackend::Fake {
            return Err(StartupError::config(
                "live_trading.writer",
                "client_portal needs broker.backend: client_portal_gateway",
            ));
        }
        let session_time_zone = match self.session_time_zone.as_deref() {
            None => DEFAULT_SESSION_TIME_ZONE,
            Some(name) => name.parse::<chrono_tz::Tz>().map_err(|_| {
                StartupError::config(
                    "live_trading.session_time_zone",
                    "must be an IANA time zone name such as America/New_York",
                )
            })?,
        };
        let interval = self
            .reconciler_interval_seconds
            .unwrap_or(DEFAULT_RECONCILER_INTERVAL_SECONDS);
        if !(MIN_RECONCILER_INTERVAL_SECONDS..=MAX_RECONCILER_INTERVAL_SECONDS).contains(&interval)
        {
            return Err(StartupError::config(
                "live_trading.reconciler_interval_seconds",
                format!(
                    "must be {MIN_RECONCILER_INTERVAL_SECONDS} to {MAX_RECONCILER_INTERVAL_SECONDS} \
                     (the orders endpoint allows one request per 5 seconds)"
                ),
            ));
        }
        let grace = self
            .reconciler_grace_seconds
            .unwrap_or(DEFAULT_RECONCILER_GRACE_SECONDS);
        if grace < interval || grace > MAX_RECONCILER_INTERVAL_SECONDS * 24 {
            return Err(StartupError::config(
                "live_trading.reconciler_grace_seconds",
                "must be at least reconciler_interval_seconds and at most a day",
            ));
        }
        let reconciler = ReconcilerSettings {
            interval: Duration::from_secs(interval),
            missing_grace: Duration::from_secs(grace),
        };
        let auto_halt = self.auto_halt.validate()?;
        Ok(LiveTradingSettings {
            enabled: self.enabled,
            safety_enabled,
            allowed_accounts: accounts_in_file_order.into_iter().collect(),
            risk_policy_id,
            policies,
            checklist_acknowledged: self.paper_to_live_checklist_acknowledged,
            agent_approvals_allowed: self.agent_approvals_allowed,
            writer,
            session_time_zone,
            reconciler,
            auto_halt,
        })
    }
}

/// Policy ids appear in key paths and audit records, so they keep to a plain alphabet.
fn is_policy_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.chars().count() <= MAX_POLICY_ID_CHARS
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl RawRiskPolicy {
    /// Builds the domain policy; every error names `<prefix>.<key>`.
    fn validate(self, prefix: &str) -> Result<RiskPolicy, StartupError> {
        let key = |name: &str| format!("{prefix}.{name}");
        let currency = Currency::parse(self.currency.trim()).map_err(|_| {
            StartupError::config(
                key("currency"),
                "must be an ISO 4217 code in capitals, such as USD",
            )
        })?;
        let allowed_asset_classes = self
            .allowed_asset_classes
            .iter()
            .enumerate()
            .map(|(index, code)| {
                AssetClass::parse(code)
                    .ok()
                    .filter(|class| *class != AssetClass::Other && *class != AssetClass::Index)
                    .ok_or_else(|| {
                        StartupError::config(
                            key(&format!("allowed_asset_classes[{index}]")),
                            "unknown or untradable asset class; use codes such as STK, ETF, OPT, FUT, CASH",
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let parts = RiskPolicyParts {
            currency,
            max_notional: self.max_notional.parse(&key("max_notional"))?,
            max_quantity: self.max_quantity.parse(&key("max_quantity"))?,
            allowed_symbols: self.allowed_symbols,
            allowed_asset_classes,
            frequency_max_orders: self.frequency.max_orders,
            frequency_window_seconds: self.frequency.window_seconds,
            session_max_orders: self.session.max_orders,
            session_max_notional: self
                .session
                .max_notional
                .parse(&key("session.max_notional"))?,
            max_price_deviation_bps: self.max_price_deviation_bps,
            max_quote_age_seconds: self.max_quote_age_seconds,
        };
        RiskPolicy::parse(parts).map_err(|error| {
            let name = match &error {
                RiskPolicyError::NotPositive(name)
                | RiskPolicyError::EmptyAllowList(name)
                | RiskPolicyError::TooManyOrders(name) => name,
                RiskPolicyError::MalformedSymbol => "allowed_symbols",
                RiskPolicyError::CollarTooWide => "max_price_deviation_bps",
            };
            StartupError::config(key(name), error.to_string())
        })
    }
}

/// The bounds of `broker.max_reply_rounds`: at least one round (a prompt can always be
/// answered once), and few enough that a chain of prompts cannot keep an order in flight long.
const MAX_REPLY_ROUNDS_RANGE: std::ops::RangeInclusive<u8> = 1..=10;

fn max_reply_rounds(raw: Option<u64>) -> Result<u8, StartupError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_MAX_REPLY_ROUNDS);
    };
    u8::try_from(raw)
        .ok()
        .filter(|rounds| MAX_REPLY_ROUNDS_RANGE.contains(rounds))
        .ok_or_else(|| {
            StartupError::config(
                "broker.max_reply_rounds",
                "must be from 1 to 10 (reply prompts answered for one order)",
            )
        })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcp {
    toolsets: Option<Vec<String>>,
}

impl RawMcp {
    fn validate(self) -> Result<std::collections::BTreeSet<Toolset>, StartupError> {
        let Some(raw) = self.toolsets else {
            return Ok(Toolset::ALL.into_iter().collect());
        };
        raw.iter()
            .enumerate()
            .map(|(index, name)| {
                Toolset::ALL
                    .into_iter()
                    .find(|toolset| toolset.as_str() == name)
                    .ok_or_else(|| {
                        StartupError::config(
                            format!("mcp.toolsets[{index}]"),
                            "unknown toolset; expected session, account, market, orders or audit",
                        )
                    })
            })
            .collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    sqlite_path: Option<PathBuf>,
    hmac_secret_env: Option<String>,
    live_write_retention_days: Option<u32>,
    signing_key_env: Option<String>,
    signing_key_file: Option<PathBuf>,
    checkpoint_interval_seconds: Option<u64>,
    checkpoint_file: Option<PathBuf>,
}

/// Refuses a configured path that names no file.
fn file_path(key_path: &str, path: Option<&PathBuf>) -> Result<(), StartupError> {
    match path {
        Some(path) if path.as_os_str().is_empty() || path.file_name().is_none() => {
            Err(StartupError::config(key_path, "must name a file"))
        }
        _ => Ok(()),
    }
}

impl RawAudit {
    fn validate(self) -> Result<AuditSettings, StartupError> {
        let defaults = AuditSettings::default();
        let hmac_secret_env = self.hmac_secret_env.unwrap_or(defaults.hmac_secret_env);
        let valid_name = !hmac_secret_env.is_empty()
            && hmac_secret_env.len() <= 64
            && hmac_secret_env
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !hmac_secret_env.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            return Err(StartupError::config(
                "audit.hmac_secret_env",
                "must name an environment variable: capital letters, digits and '_' (the secret itself never goes in the file)",
            ));
        }
        file_path("audit.sqlite_path", self.sqlite_path.as_ref())?;
        file_path("audit.signing_key_file", self.signing_key_file.as_ref())?;
        file_path("audit.checkpoint_file", self.checkpoint_file.as_ref())?;
        let signing_key_env = self.signing_key_env.unwrap_or(defaults.signing_key_env);
        if !is_variable_name(&signing_key_env) {
            return Err(StartupError::config(
                "audit.signing_key_env",
                "must name an environment variable: capital letters, digits and '_' (the secret itself never goes in the file)",
            ));
        }
        let checkpoint_interval_seconds = self
            .checkpoint_interval_seconds
            .unwrap_or(defaults.checkpoint_interval_seconds);
        if !CHECKPOINT_INTERVAL_SECONDS_RANGE.contains(&checkpoint_interval_seconds) {
            return Err(StartupError::config(
                "audit.checkpoint_interval_seconds",
                format!(
                    "must be from {} to {} seconds",
                    CHECKPOINT_INTERVAL_SECONDS_RANGE.start(),
                    CHECKPOINT_INTERVAL_SECONDS_RANGE.end()
                ),
            ));
        }
        let live_write_retention_days = self
            .live_write_retention_days
            .unwrap_or(defaults.live_write_retention_days);
        if live_write_retention_days == 0 {
            return Err(StartupError::config(
                "audit.live_write_retention_days",
                "must be at least 1",
            ));
        }
        Ok(AuditSettings {
            sqlite_path: self.sqlite_path,
            hmac_secret_env,
            live_write_retention_days,
            signing_key_env,
            signing_key_file: self.signing_key_file,
            checkpoint_interval_seconds,
            checkpoint_file: self.checkpoint_file,
        })
    }
}

/// The default keepalive interval: IBKR sessions time out after about 6 minutes without
/// requests, and IBKR suggests a tickle about once a minute.
pub const DEFAULT_KEEPALIVE_INTERVAL_SECONDS: u64 = 60;

/// The default timeout of one broker request.
pub const DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 15;

/// The default headroom below IBKR's documented pacing limits: 10 requests per second become
/// 8, one request per 5 s becomes one per 6.25 s.
pub const DEFAULT_PACING_MARGIN_PERCENT: u8 = 20;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBroker {
    #[serde(default)]
    backend: RawBackend,
    base_url: Option<String>,
    #[serde(default)]
    allow_insecure_tls_for_localhost: bool,
    keepalive_interval_seconds: Option<u64>,
    request_timeout_seconds: Option<u64>,
    pacing_margin_percent: Option<u64>,
    confirmable_message_ids: Option<Vec<String>>,
    max_reply_rounds: Option<u64>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawBackend {
    #[default]
    Fake,
    ClientPortalGateway,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    enabled_scopes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccounts {
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

impl RawSettings {
    fn validate(mut self) -> Result<Settings, StartupError> {
        let confirmable_message_ids = confirmable_ids(self.broker.confirmable_message_ids.take())?;
        let max_reply_rounds = max_reply_rounds(self.broker.max_reply_rounds.take())?;
        let broker = self.broker.validate()?;
        if let Some(path) = &self.workflow.sqlite_path
            && (path.as_os_str().is_empty() || path.file_name().is_none())
        {
            return Err(StartupError::config(
                "workflow.sqlite_path",
                "must name a file",
            ));
        }
        Ok(Settings {
            paper_trading: self.paper_trading.validate(&broker)?,
            enabled_scopes: self.auth.validate()?,
            account_aliases: self.accounts.validate()?,
            audit: self.audit.validate()?,
            mcp_toolsets: self.mcp.validate()?,
            order_preview: self.order_preview.validate()?,
            confirmable_message_ids,
            workflow_sqlite_path: self.workflow.sqlite_path,
            live_trading: self
                .live_trading
                .validate(self.safety.live_trading_enabled, &broker)?,
            max_reply_rounds,
            remote_mcp: self.remote_mcp.validate(self.safety.remote_mcp_enabled)?,
            option_chain_max_strikes: self.market_data.validate()?,
            broker,
        })
    }
}

/// Prompt ids look like `o163` or `p12`: a letter and digits.
fn confirmable_ids(
    raw: Option<Vec<String>>,
) -> Result<Option<std::collections::BTreeSet<String>>, StartupError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    raw.into_iter()
        .enumerate()
        .map(|(index, id)| {
            let valid = id.len() >= 2
                && id.len() <= 16
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id[1..].chars().all(|c| c.is_ascii_digit());
            if valid {
                Ok(id)
            } else {
                Err(StartupError::config(
                    format!("broker.confirmable_message_ids[{index}]"),
                    "must be a prompt id such as o354: a lower-case letter and digits",
                ))
            }
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

impl RawBroker {
    fn validate(self) -> Result<BrokerBackend, StartupError> {
        match self.backend {
            RawBackend::Fake => {
                if self.base_url.is_some() {
                    return Err(StartupError::config(
                        "broker.base_url",
                        "only allowed when broker.backend is client_portal_gateway",
                    ));
                }
                if self.allow_insecure_tls_for_localhost {
                    return Err(StartupError::config(
                        "broker.allow_insecure_tls_for_localhost",
                        "only allowed when broker.backend is client_portal_gateway",
                    ));
                }
                for (key, value) in [
                    (
                        "broker.keepalive_interval_seconds",
                        self.keepalive_interval_seconds,
                    ),
                    (
                        "broker.request_timeout_seconds",
                        self.request_timeout_seconds,
                    ),
                    ("broker.pacing_margin_percent", self.pacing_margin_percent),
                ] {
                    if value.is_some() {
                        return Err(StartupError::config(
                            key,
                            "only allowed when broker.backend is client_portal_gateway",
                        ));
                    }
                }
                Ok(BrokerBackend::Fake)
            }
            RawBackend::ClientPortalGateway => {
                let raw_url = self.base_url.ok_or_else(|| {
                    StartupError::config(
                        "broker.base_url",
                        "required when broker.backend is client_portal_gateway",
                    )
                })?;
                let base_url = parse_base_url(&raw_url)?;
                if self.allow_insecure_tls_for_localhost && !is_loopback(&base_url) {
                    return Err(StartupError::TlsBypassNonLocalhost);
                }
                let keepalive_interval_seconds = self
                    .keepalive_interval_seconds
                    .unwrap_or(DEFAULT_KEEPALIVE_INTERVAL_SECONDS);
                // Faster than one per second breaks the /tickle pacing limit; slower than five
                // minutes risks the ~6 minute idle timeout.
                if !(1..=300).contains(&keepalive_interval_seconds) {
                    return Err(StartupError::config(
                        "broker.keepalive_interval_seconds",
                        "must be from 1 to 300 (the session times out after about 6 minutes idle)",
                    ));
                }
                let request_timeout_seconds = self
                    .request_timeout_seconds
                    .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECONDS);
                if !(1..=120).contains(&request_timeout_seconds) {
                    return Err(StartupError::config(
                        "broker.request_timeout_seconds",
                        "must be from 1 to 120",
                    ));
                }
                let pacing_margin_percent = self
                    .pacing_margin_percent
                    .unwrap_or(u64::from(DEFAULT_PACING_MARGIN_PERCENT));
                // Some headroom always (jitter between here and the gateway must not tip a
                // window over its limit); never below half the documented rate.
                let pacing_margin_percent = u8::try_from(pacing_margin_percent)
                    .ok()
                    .filter(|margin| (5..=50).contains(margin))
                    .ok_or_else(|| {
                        StartupError::config(
                            "broker.pacing_margin_percent",
                            "must be from 5 to 50 (percent below the documented pacing limits)",
                        )
                    })?;
                Ok(BrokerBackend::ClientPortalGateway {
                    base_url,
                    allow_insecure_tls_for_localhost: self.allow_insecure_tls_for_localhost,
                    keepalive_interval_seconds,
                    request_timeout_seconds,
                    pacing_margin_percent,
                })
            }
        }
    }
}

fn parse_base_url(raw: &str) -> Result<Url, StartupError> {
    const KEY: &str = "broker.base_url";
    let url = Url::parse(raw)
        .map_err(|error| StartupError::config(KEY, format!("not a valid URL: {error}")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(StartupError::config(
            KEY,
            "scheme must be https (or http for a loopback host)",
        ));
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(StartupError::config(
            KEY,
            "plain http is only allowed for a loopback host",
        ));
    }
    if url.host().is_none() {
        return Err(StartupError::config(KEY, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(StartupError::config(KEY, "must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(StartupError::config(
            KEY,
            "must not have a query or fragment",
        ));
    }
    Ok(url)
}

impl RawAuth {
    fn validate(self) -> Result<ScopeSet, StartupError> {
        let Some(raw_scopes) = self.enabled_scopes else {
            return Ok(ScopeSet::read_only_defaults());
        };
        raw_scopes
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                Scope::parse(raw).map_err(|error| {
                    StartupError::config(format!("auth.enabled_scopes[{index}]"), error.to_string())
                })
            })
            .collect()
    }
}

impl RawAccounts {
    fn validate(self) -> Result<BTreeMap<AccountId, AccountAlias>, StartupError> {
        let mut aliases = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for (index, (raw_id, raw_alias)) in self.aliases.into_iter().enumerate() {
            // The key is a raw account id, so the path uses the entry's position, not the key.
            let key_path = format!("accounts.aliases[{index}]");
            let id = AccountId::parse(&raw_id)
                .map_err(|error| StartupError::config(key_path.clone(), error.to_string()))?;
            let alias = AccountAlias::parse(&raw_alias)
                .map_err(|message| StartupError::config(key_path.clone(), message))?;
            if AccountId::parse(&raw_alias.to_ascii_uppercase()).is_ok() {
                return Err(StartupError::config(
                    key_path,
                    "alias must not look like an account id",
                ));
            }
            if !seen.insert(alias.clone()) {
                return Err(StartupError::config(
                    key_path,
                    "alias is used for two accounts",
                ));
            }
            aliases.insert(id, alias);
        }
        Ok(aliases)
    }
}

/// True for a plausible environment variable name: capital letters, digits and '_', not
/// starting with a digit, at most 64 characters (the rule `audit.hmac_secret_env` follows).
fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// The `remote_mcp` section. Only the shape of each value is checked here (URLs parse, scopes
/// are known, numbers are in range); whether the whole makes remote MCP safe to turn on is
/// judged by the start-up gates in `app::remote_startup`, so a half-written section stays
/// loadable while remote MCP is off.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the remote_mcp section")]
struct RawRemoteMcp {
    #[serde(default)]
    enabled: bool,
    bind_address: Option<String>,
    #[serde(default)]
    allow_non_loopback_bind: bool,
    #[serde(default)]
    allow_insecure_loopback_issuer: bool,
    resource: Option<String>,
    issuer: Option<String>,
    jwks_url: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    allowed_scopes: Vec<String>,
    clock_skew_seconds: Option<u64>,
    rate_limit_max_requests: Option<u64>,
    rate_limit_window_seconds: Option<u64>,
    peer_rate_limit_max_requests: Option<u64>,
    max_connections: Option<u64>,
    request_timeout_seconds: Option<u64>,
    token_id_hmac_secret_env: Option<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
}

/// The longest audience, host or origin entry accepted.
const MAX_REMOTE_ENTRY_CHARS: usize = 256;

impl RawRemoteMcp {
    fn validate(self, safety_enabled: bool) -> Result<RemoteMcpSettings, StartupError> {
        let defaults = RemoteMcpSettings::default();
        let bind_address = match self.bind_address {
            None => defaults.bind_address,
            Some(raw) => raw.trim().parse().map_err(|_| {
                StartupError::config(
                    "remote_mcp.bind_address",
                    "must be an IP address and port, such as 127.0.0.1:8080 or [::1]:8080",
                )
            })?,
        };
        let resource = remote_url("remote_mcp.resource", self.resource)?;
        let issuer = remote_url("remote_mcp.issuer", self.issuer)?;
        let jwks_url = remote_url("remote_mcp.jwks_url", self.jwks_url)?;
        for (index, audience) in self.audiences.iter().enumerate() {
            if audience.is_empty()
                || audience.len() > MAX_REMOTE_ENTRY_CHARS
                || audience
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(StartupError::config(
                    format!("remote_mcp.audiences[{index}]"),
                    "must be a non-empty audience of at most 256 characters without spaces",
                ));
            }
        }
        let allowed_scopes = self
            .allowed_scopes
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                Scope::parse(raw).map_err(|error| {
                    StartupError::config(
                        format!("remote_mcp.allowed_scopes[{index}]"),
                        error.to_string(),
                    )
                })
            })
            .collect::<Result<ScopeSet, _>>()?;
        let clock_skew_seconds = self
            .clock_skew_seconds
            .unwrap_or(defaults.clock_skew.as_secs());
        if clock_skew_seconds > MAX_CLOCK_SKEW_SECONDS {
            return Err(StartupError::config(
                "remote_mcp.clock_skew_seconds",
                format!("must be from 0 to {MAX_CLOCK_SKEW_SECONDS}"),
            ));
        }
        let max_requests = positive_u32(
            "remote_mcp.rate_limit_max_requests",
            self.rate_limit_max_requests,
            defaults.rate_limit.max_requests,
            1_000_000,
        )?;
        let window_seconds = positive_u32(
            "remote_mcp.rate_limit_window_seconds",
            self.rate_limit_window_seconds,
            u32::try_from(defaults.rate_limit.window.as_secs()).unwrap_or(u32::MAX),
            86_400,
        )?;
        let peer_rate_limit_max_requests = positive_u32(
            "remote_mcp.peer_rate_limit_max_requests",
            self.peer_rate_limit_max_requests,
            defaults.peer_rate_limit_max_requests,
            10_000_000,
        )?;
        let max_connections = positive_u32(
            "remote_mcp.max_connections",
            self.max_connections,
            defaults.max_connections,
            100_000,
        )?;
        let request_timeout_seconds = positive_u32(
            "remote_mcp.request_timeout_seconds",
            self.request_timeout_seconds,
            u32::try_from(defaults.request_timeout.as_secs()).unwrap_or(u32::MAX),
            3_600,
        )?;
        let token_id_hmac_secret_env = self
            .token_id_hmac_secret_env
            .unwrap_or(defaults.token_id_hmac_secret_env);
        if !is_variable_name(&token_id_hmac_secret_env) {
            return Err(StartupError::config(
                "remote_mcp.token_id_hmac_secret_env",
                "must name an environment variable: capital letters, digits and '_' (the secret itself never goes in the file)",
            ));
        }
        for (index, host) in self.allowed_hosts.iter().enumerate() {
            if !is_host_header(host) {
                return Err(StartupError::config(
                    format!("remote_mcp.allowed_hosts[{index}]"),
                    "must be a host name or address with an optional port, such as \
                     mcp.example.com or 127.0.0.1:8080 (no scheme, no path)",
                ));
            }
        }
        let allowed_origins = self
            .allowed_origins
            .iter()
            .enumerate()
            .map(|(index, raw)| origin(&format!("remote_mcp.allowed_origins[{index}]"), raw))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RemoteMcpSettings {
            enabled: self.enabled,
            safety_enabled,
            bind_address,
            allow_non_loopback_bind: self.allow_non_loopback_bind,
            allow_insecure_loopback_issuer: self.allow_insecure_loopback_issuer,
            resource,
            issuer,
            jwks_url,
            audiences: self.audiences,
            allowed_scopes,
            clock_skew: Duration::from_secs(clock_skew_seconds),
            rate_limit: RemoteRateLimit {
                max_requests,
                window: Duration::from_secs(u64::from(window_seconds)),
            },
            peer_rate_limit_max_requests,
            max_connections,
            request_timeout: Duration::from_secs(u64::from(request_timeout_seconds)),
            token_id_hmac_secret_env,
            allowed_hosts: self.allowed_hosts,
            allowed_origins,
        })
    }
}

/// `raw` (or `default` when unset), from 1 to `max`.
fn positive_u32(key: &str, raw: Option<u64>, default: u32, max: u32) -> Result<u32, StartupError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    u32::try_from(raw)
        .ok()
        .filter(|value| (1..=max).contains(value))
        .ok_or_else(|| StartupError::config(key, format!("must be from 1 to {max}")))
}

/// An absolute http(s) URL with a host, no credentials and no fragment. Whether plain http is
/// acceptable is a start-up gate (`app::remote_startup`), not a shape rule.
fn remote_url(key: &str, raw: Option<String>) -> Result<Option<Url>, StartupError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let url = Url::parse(raw.trim())
        .map_err(|error| StartupError::config(key, format!("not a valid URL: {error}")))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(StartupError::config(key, "scheme must be https"));
    }
    if url.host().is_none() {
        return Err(StartupError::config(key, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(StartupError::config(key, "must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(StartupError::config(key, "must not have a fragment"));
    }
    Ok(Some(url))
}

/// A `Host` header value: a host name or IP address, optionally with a port.
fn is_host_header(raw: &str) -> bool {
    if raw.is_empty() || raw.len() > MAX_REMOTE_ENTRY_CHARS || raw.contains(['/', '@', '?', '#']) {
        return false;
    }
    Url::parse(&format!("http://{raw}/"))
        .ok()
        .is_some_and(|url| url.host().is_some() && url.path() == "/")
}

/// An `Origin` header value, `scheme://host[:port]`, returned in its serialized form.
fn origin(key: &str, raw: &str) -> Result<String, StartupError> {
    let refuse = || {
        StartupError::config(
            key,
            "must be an origin such as https://app.example.com (scheme, host and optional port; no path)",
        )
    };
    if raw.len() > MAX_REMOTE_ENTRY_CHARS {
        return Err(refuse());
    }
    let url = Url::parse(raw).map_err(|_| refuse())?;
    let plain = (url.scheme() == "https" || url.scheme() == "http")
        && url.host().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !plain {
        return Err(refuse());
    }
    Ok(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(yaml: &str) -> String {
        Settings::from_yaml(yaml).unwrap_err().to_string()
    }

    #[test]
    fn empty_text_means_embedded_defaults() {
        assert_eq!(
            Settings::from_yaml("").unwrap(),
            Settings::embedded_defaults()
        );
        assert_eq!(
            Settings::from_yaml("broker:\n  backend: fake\n").unwrap(),
            Settings::embedded_defaults()
        );
    }

    #[test]
    fn the_option_chain_bound_defaults_to_10_and_is_bounded() {
        assert_eq!(
            Settings::from_yaml("").unwrap().option_chain_max_strikes,
            10
        );
        let set = |value: &str| format!("market_data:\n  option_chain_max_strikes: {value}\n");
        assert_eq!(
            Settings::from_yaml(&set("1"))
                .unwrap()
                .option_chain_max_strikes,
            1
        );
        assert_eq!(
            Settings::from_yaml(&set("50"))
                .unwrap()
                .option_chain_max_strikes,
            50
        );
        for refused in ["0", "51", "300", "-1"] {
            let message = error_of(&set(refused));
            assert!(
                message.starts_with("market_data.option_chain_max_strikes"),
                "{refused}: {message}"
            );
        }
        assert!(error_of("market_data:\n  bogus: 1\n").starts_with("market_data.bogus"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let message = error_of("broker:\n  backend: fake\n  bogus: 1\n");
        assert!(message.starts_with("broker.bogus"), "{message}");
        let message = error_of("surprise: true\n");
        assert!(message.contains("surprise"), "{message}");
    }

    #[test]
    fn client_portal_needs_a_base_url() {
        let message = error_of("broker:\n  backend: client_portal_gateway\n");
        assert_eq!(
            message,
            "broker.base_url: required when broker.backend is client_portal_gateway"
        );
    }

    #[test]
    fn tls_bypass_is_only_for_loopback() {
        let ok = "broker:\n  backend: client_portal_gateway\n  base_url: https://127.0.0.1:5000/v1/api\n  allow_insecure_tls_for_localhost: true\n";
        assert!(Settings::from_yaml(ok).is_ok());
        let remote = "broker:\n  backend: client_portal_gateway\n  base_url: https://gateway.example:5000/v1/api\n  allow_insecure_tls_for_localhost: true\n";
        assert!(error_of(remote).starts_with("broker.allow_insecure_tls_for_localhost"));
        let code = Settings::from_yaml(remote).unwrap_err().code();
        assert_eq!(code.as_str(), "CONFIG_TLS_BYPASS_NON_LOCALHOST");
        let plain = "broker:\n  backend: client_portal_gateway\n  base_url: http://gateway.example/v1/api\n";
        assert!(error_of(plain).starts_with("broker.base_url"));
    }

    #[test]
    fn keepalive_and_timeout_are_bounded() {
        let base = "broker:\n  backend: client_portal_gateway\n  base_url: https://localhost:5000/v1/api\n";
        let settings = Settings::from_yaml(base).unwrap();
        assert!(matches!(
            settings.broker,
            BrokerBackend::ClientPortalGateway {
                keepalive_interval_seconds: 60,
                request_timeout_seconds: 15,
                ..
            }
        ));
        assert!(
            error_of(&format!("{base}  keepalive_interval_seconds: 600\n"))
                .starts_with("broker.keepalive_interval_seconds")
        );
        assert!(
            error_of(&format!("{base}  request_timeout_seconds: 0\n"))
                .starts_with("broker.request_timeout_seconds")
        );
        assert!(
            error_of("broker:\n  keepalive_interval_seconds: 30\n")
                .starts_with("broker.keepalive_interval_seconds")
        );
    }

    #[test]
    fn the_pacing_margin_defaults_to_20_percent_and_is_bounded() {
        let base = "broker:\n  backend: client_portal_gateway\n  base_url: https://localhost:5000/v1/api\n";
        let margin_of = |yaml: &str| match Settings::from_yaml(yaml).unwrap().broker {
            BrokerBackend::ClientPortalGateway {
                pacing_margin_percent,
                ..
            } => pacing_margin_percent,
            BrokerBackend::Fake => unreachable!(),
        };
        assert_eq!(margin_of(base), 20);
        assert_eq!(
            margin_of(&format!("{base}  pacing_margin_percent: 35\n")),
            35
        );
        for bad in ["0", "4", "51", "300"] {
            assert!(
                error_of(&format!("{base}  pacing_margin_percent: {bad}\n"))
                    .starts_with("broker.pacing_margin_percent"),
                "{bad}"
            );
        }
        assert!(
            error_of("broker:\n  pacing_margin_percent: 20\n")
                .starts_with("broker.pacing_margin_percent")
        );
    }

    #[test]
    fn scopes_are_validated_by_position() {
        let message = error_of("auth:\n  enabled_scopes: [ibkr:health:read, ibkr:everything]\n");
        assert!(message.starts_with("auth.enabled_scopes[1]"), "{message}");
        let settings = Settings::from_yaml("auth:\n  enabled_scopes: []\n").unwrap();
        assert!(settings.enabled_scopes.is_empty());
    }

    #[test]
    fn aliases_are_validated_without_echoing_the_account_id() {
        let settings =
            Settings::from_yaml("accounts:\n  aliases:\n    DU1234567: main-paper\n").unwrap();
        assert_eq!(settings.account_aliases.len(), 1);
        let message = error_of("accounts:\n  aliases:\n    DU1234567: Main Paper\n");
        assert!(message.starts_with("accounts.aliases[0]"), "{message}");
        assert!(!message.contains("1234567"));
        assert!(
            error_of("accounts:\n  aliases:\n    DU1234567: du7654321\n").contains("look like")
        );
        assert!(
            error_of("accounts:\n  aliases:\n    DU1234567: a\n    U7654321: a\n")
                .contains("two accounts")
        );
    }

    #[test]
    fn audit_settings_default_and_validate() {
        let settings = Settings::from_yaml("audit:\n  sqlite_path: var/audit.sqlite3\n").unwrap();
        assert_eq!(settings.audit.hmac_secret_env, "IBKR_AUDIT_HMAC_SECRET");
        assert_eq!(settings.audit.live_write_retention_days, 2555);
        assert!(
            error_of("audit:\n  hmac_secret_env: my-secret-value\n")
                .starts_with("audit.hmac_secret_env")
        );
        assert!(
            error_of("audit:\n  live_write_retention_days: 0\n")
                .starts_with("audit.live_write_retention_days")
        );
        assert!(error_of("audit:\n  hmac_secret: abc\n").starts_with("audit.hmac_secret"));
    }

    #[test]
    fn checkpoint_settings_default_and_validate() {
        let settings = Settings::from_yaml("audit:\n  sqlite_path: var/audit.sqlite3\n").unwrap();
        assert_eq!(settings.audit.signing_key_env, "IBKR_AUDIT_SIGNING_KEY");
        assert_eq!(settings.audit.signing_key_file, None);
        assert_eq!(settings.audit.checkpoint_interval_seconds, 300);
        assert_eq!(settings.audit.checkpoint_file, None);
        let settings = Settings::from_yaml(
            "audit:\n  signing_key_env: MY_SIGNING_KEY\n  signing_key_file: keys/signing.key\n  \
             checkpoint_interval_seconds: 10\n  checkpoint_file: ship/checkpoints.jsonl\n",
        )
        .unwrap();
        assert_eq!(settings.audit.signing_key_env, "MY_SIGNING_KEY");
        assert_eq!(
            settings.audit.signing_key_file.as_deref(),
            Some(std::path::Path::new("keys/signing.key"))
        );
        assert_eq!(settings.audit.checkpoint_interval_seconds, 10);
        assert_eq!(
            settings.audit.checkpoint_file.as_deref(),
            Some(std::path::Path::new("ship/checkpoints.jsonl"))
        );
        assert!(Settings::from_yaml("audit:\n  checkpoint_interval_seconds: 86400\n").is_ok());
        for refused in [9, 86_401, 0] {
            assert!(
                error_of(&format!(
                    "audit:\n  checkpoint_interval_seconds: {refused}\n"
                ))
                .starts_with("audit.checkpoint_interval_seconds"),
                "{refused}"
            );
        }
        // A secret pasted where its variable's name belongs is refused without being echoed.
        let error = error_of("audit:\n  signing_key_env: 0123456789abcdef-secret\n");
        assert!(error.starts_with("audit.signing_key_env"), "{error}");
        assert!(!error.contains("0123456789abcdef-secret"), "{error}");
        assert!(
            error_of("audit:\n  signing_key_file: \"\"\n").starts_with("audit.signing_key_file")
        );
        assert!(error_of("audit:\n  checkpoint_file: \"\"\n").starts_with("audit.checkpoint_file"));
        assert!(error_of("audit:\n  signing_key: abc\n").starts_with("audit.signing_key"));
    }

    #[test]
    fn toolsets_default_to_all_and_refuse_unknown_names() {
        assert_eq!(Settings::embedded_defaults().mcp_toolsets.len(), 5);
        let settings = Settings::from_yaml("mcp:\n  toolsets: [market, audit]\n").unwrap();
        assert_eq!(settings.mcp_toolsets.len(), 2);
        assert!(error_of("mcp:\n  toolsets: [trading]\n").starts_with("mcp.toolsets[0]"));
    }

    #[test]
    fn the_committed_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        let local = Settings::load(&dir.join("local.example.yaml")).unwrap();
        assert_eq!(local.broker, BrokerBackend::Fake);
        assert!(!local.enabled_scopes.has_write());
        let paper = Settings::load(&dir.join("paper.example.yaml")).unwrap();
        assert!(paper.paper_trading.enabled);
        assert_eq!(paper.paper_trading.writer, PaperWriterKind::LocalCandidate);
        assert!(!paper.enabled_scopes.contains(Scope::ApprovalsCreate));
        let portal = Settings::load(&dir.join("client-portal.example.yaml")).unwrap();
        assert_eq!(portal.broker.name(), "client_portal_gateway");
    }

    #[test]
    fn paper_trading_is_off_and_refusing_by_default() {
        let settings = Settings::embedded_defaults();
        assert!(!settings.paper_trading.enabled);
        assert_eq!(settings.paper_trading.writer, PaperWriterKind::Refusing);
        assert!(!settings.order_preview.allow_market_orders);
    }

    #[test]
    fn paper_trading_is_validated_without_echoing_account_ids() {
        let ok = "paper_trading:\n  enabled: true\n  allowed_accounts: [DU1234567]\n  writer: local_candidate\n";
        let settings = Settings::from_yaml(ok).unwrap();
        assert!(settings.paper_trading.enabled);
        assert_eq!(
            settings.paper_trading.writer,
            PaperWriterKind::LocalCandidate
        );
        let live = error_of("paper_trading:\n  allowed_accounts: [U7654321]\n");
        assert!(
            live.starts_with("paper_trading.allowed_accounts[0]"),
            "{live}"
        );
        assert!(!live.contains("7654321"));
        assert!(
            error_of("paper_trading:\n  enabled: true\n")
                .starts_with("paper_trading.allowed_accounts")
        );
        assert!(error_of("paper_trading:\n  writer: tws\n").starts_with("paper_trading.writer"));
        assert!(
            error_of("paper_trading:\n  writer: client_portal\n").contains("client_portal_gateway")
        );
    }

    #[test]
    fn the_preview_policy_reads_exact_decimals() {
        let settings = Settings::from_yaml(
            "order_preview:\n  max_quantity: \"0.5\"\n  max_notional: 1000.25\n  allowed_asset_classes: [STK, OPT]\n  allow_fractional: true\n",
        )
        .unwrap();
        let policy = settings.order_preview;
        assert_eq!(policy.max_quantity.to_string(), "0.5");
        assert_eq!(
            policy
                .max_notional
                .map(|value| value.to_string())
                .as_deref(),
            Some("1000.25")
        );
        assert!(policy.allowed_asset_classes.contains(&AssetClass::Option));
        let uncapped = Settings::from_yaml("order_preview:\n  max_notional: none\n").unwrap();
        assert_eq!(uncapped.order_preview.max_notional, None);
        assert!(
            error_of("order_preview:\n  max_quantity: \"1e3\"\n")
                .starts_with("order_preview.max_quantity")
        );
        assert!(
            error_of("order_preview:\n  max_quantity: 0\n")
                .starts_with("order_preview.max_quantity")
        );
        assert!(
            error_of("order_preview:\n  expiration_seconds: 5\n")
                .starts_with("order_preview.expiration_seconds")
        );
        assert!(
            error_of("order_preview:\n  allowed_asset_classes: [IND]\n")
                .starts_with("order_preview.allowed_asset_classes[0]")
        );
    }

    #[test]
    fn confirmable_prompt_ids_are_checked() {
        let settings =
            Settings::from_yaml("broker:\n  confirmable_message_ids: [o354, p12]\n").unwrap();
        assert_eq!(
            settings.confirmable_message_ids.map(|ids| ids.len()),
            Some(2)
        );
        assert!(
            error_of("broker:\n  confirmable_message_ids: [\"o1; drop\"]\n")
                .starts_with("broker.confirmable_message_ids[0]")
        );
    }

    #[test]
    fn serde_messages_lose_the_value_but_keep_its_kind() {
        assert_eq!(
            without_values("invalid type: string \"U1234567\", expected u32 at line 1 column 2"),
            "invalid type: string, expected u32 at line 1 column 2"
        );
        assert_eq!(
            without_values("invalid value: integer `-7`, expected u8"),
            "invalid value: integer, expected u8"
        );
        // A value holding serde's own separator still disappears whole.
        assert_eq!(
            without_values("invalid type: string \"a, expected b\", expected u32"),
            "invalid type: string, expected u32"
        );
        assert_eq!(
            without_values("unknown variant `tws`, expected `fake` or `client_portal_gateway`"),
            "unknown variant, expected `fake` or `client_portal_gateway`"
        );
        assert_eq!(
            without_values("missing field `currency`"),
            "missing field `currency`"
        );
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let error = Settings::load(Path::new("no/such/config.yaml")).unwrap_err();
        assert!(error.to_string().contains("no/such/config.yaml"));
        assert_eq!(error.code().as_str(), "CONFIG_FILE_UNREADABLE");
    }

    #[test]
    fn wrong_types_name_the_key() {
        let message = error_of("broker:\n  allow_insecure_tls_for_localhost: maybe\n");
        assert!(
            message.starts_with("broker.allow_insecure_tls_for_localhost"),
            "{message}"
        );
        let message = error_of("broker:\n  backend: tws\n");
        assert!(message.starts_with("broker.backend"), "{message}");
    }
}
