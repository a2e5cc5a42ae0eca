//! The command line, declared with clap derive. Parsing only: no behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The exit-code table, shown in `--help` and the README.
pub const EXIT_CODE_HELP: &str = "\
Exit codes:
  0  ok
  1  internal error
  2  usage, configuration or input error
  3  refused by policy or gate
  4  missing scope or credential
  5  broker session required or backend unavailable (retry may help)
  6  broker response unusable or market data unavailable
  7  audit integrity failure";

/// `ibkr-agent`: operate the IBKR agent gateway from the shell.
#[derive(Debug, Parser)]
#[command(name = "ibkr-agent", version, about, after_help = EXIT_CODE_HELP)]
pub struct Cli {
    /// Configuration file (YAML). Without it, the embedded defaults apply: the fake broker and
    /// read scopes only.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Print exactly one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Log level for stderr (error, warn, info, debug, trace); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gateway health and granted scopes (touches no broker).
    Health,
    /// The broker backend.
    #[command(subcommand)]
    Backend(BackendCommand),
    /// What the broker session needs before it is usable.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The MCP tool server.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Accounts visible to the broker session.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// One account's balances and margin.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Positions.
    #[command(subcommand)]
    Positions(PositionsCommand),
    /// Contract search and resolution.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Quotes and historical bars.
    #[command(subcommand)]
    Market(MarketCommand),
    /// Working orders; order previews and paper order writes.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Approvals of order previews (the operator's own surface: no agent scope needed).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Executions (fills).
    #[command(subcommand)]
    Executions(ExecutionsCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// This binary's version, git commit, target, profile and features, to match it to a
    /// reviewed commit (reads no configuration and touches no broker).
    Version(VersionArgs),
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line, then a trailer line.
    Jsonl,
}

/// `audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest events, newest first, verified against each other as read.
    Tail {
        /// How many events (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Stream a range as JSON lines, ending with a trailer (count, SHA-256 of the lines, chain
    /// head). Needs ibkr:audit:export.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// First sequence (inclusive).
        #[arg(long, value_name = "A")]
        from_seq: Option<u64>,
        /// Last sequence (inclusive).
        #[arg(long, value_name = "B")]
        to_seq: Option<u64>,
        /// Only events at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
    /// Verify the whole chain in constant memory; a broken chain, a failed anchor, an empty log
    /// or a missing database exits 7. Without an anchor this proves the rows that exist are
    /// intact and in order; only an anchor also proves none were cut off the end.
    Verify {
        /// Verify this database instead of the configured one (read-only).
        #[arg(long, value_name = "PATH")]
        database: Option<PathBuf>,
        /// The environment variable holding that database's HMAC key.
        #[arg(long, value_name = "NAME")]
        hmac_secret_env: Option<String>,
        /// An anchor: `chain_head` from an earlier export trailer. The event at
        /// --expect-count must still have this hash (the log may have grown since).
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
        /// An anchor: `last_sequence` (`count` for a whole-log export) from the same trailer;
        /// the log must still hold that many events.
        #[arg(long, value_name = "N", alias = "expect-sequence")]
        expect_count: Option<u64>,
        /// A checkpoint file (one signed checkpoint per line): the log must still hold every
        /// prefix it signs. Needs --public-key, or the configured signing key.
        #[arg(long, value_name = "FILE")]
        checkpoints: Option<PathBuf>,
        /// The audit public key (64 hex digits, from `audit public-key`) that checks the
        /// checkpoints and a purged log's start. With --database and no HMAC key at hand, the
        /// check uses this public material only.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
    },
    /// Verify an export file on any machine with the audit public key alone: its trailer, and
    /// every signed checkpoint it carries against its events. Exits 7 when it does not verify.
    VerifyExport {
        /// The export file (`audit export` output).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The audit public key (64 hex digits, from `audit public-key`).
        #[arg(long, value_name = "KEY")]
        public_key: String,
    },
    /// Delete old events, after exporting them (with checkpoints) to a new file, verifying that
    /// export and signing a "purged up to" checkpoint. Refuses live-write events younger than
    /// audit.live_write_retention_days. Purges only up to a signed checkpoint.
    Purge {
        /// Purge events before this date (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE")]
        before: String,
        /// The export file to create (it must not exist).
        #[arg(long, value_name = "FILE")]
        export_to: PathBuf,
    },
    /// The Ed25519 public key that verifies this gateway's signed checkpoints (give it to
    /// whoever verifies them). Fails with CONFIG_SECRET_INVALID without a signing key.
    PublicKey,
    /// Sign the log's current head (sequence, chain hash, public prefix digest), record it as
    /// a chain event and append it to the checkpoint file. Refuses (exit 7) when a row up to
    /// the head does not verify.
    Checkpoint,
}

/// `backend …`
#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// The broker session state and what to do about it.
    Status,
}

/// `session …`
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// What a person must do before account and market commands work.
    Requirements,
}

/// `mcp …`
#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Serve MCP: over stdio by default (protocol frames on stdout, logs on stderr; exits when
    /// stdin closes), or over Streamable HTTP with `--transport http` (remote MCP must be on;
    /// stops on SIGTERM or Ctrl-C after the calls in flight finish).
    Serve(McpServeArgs),
}

/// `mcp serve` options.
#[derive(Debug, Args)]
pub struct McpServeArgs {
    /// The transport to serve.
    #[arg(long, value_enum, default_value_t = McpTransport::Stdio)]
    pub transport: McpTransport,
    /// The address to listen on with `--transport http`, overriding
    /// `remote_mcp.bind_address` (the start-up gates still apply to it).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::SocketAddr>,
}

/// How `mcp serve` talks to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum McpTransport {
    /// The process's stdin and stdout (a local client launches the server).
    Stdio,
    /// Streamable HTTP behind OAuth 2.1 bearer tokens (remote clients).
    Http,
}

/// `accounts …`
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// List accounts by reference, masked id, alias and mode.
    List,
}

/// An account selector argument.
#[derive(Debug, Args)]
pub struct AccountArg {
    /// Account reference (acct_…), alias or account id.
    #[arg(long, value_name = "ID")]
    pub account: String,
}

/// `account …`
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Balances and margin in the account's base currency.
    Summary(AccountArg),
}

/// `positions …`
#[derive(Debug, Subcommand)]
pub enum PositionsCommand {
    /// Positions with cost basis and P&L.
    List(AccountArg),
}

/// Contract query arguments.
#[derive(Debug, Args)]
pub struct ContractQueryArgs {
    /// Symbol, local symbol, contract id or words of the description.
    pub query: String,
    /// Only this asset class (STK, ETF, OPT, FUT, FOP, CASH/FX, IND, BOND, CRYPTO).
    #[arg(long)]
    pub asset_class: Option<String>,
    /// Only this trading currency (e.g. USD).
    #[arg(long)]
    pub currency: Option<String>,
    /// Only this exchange (e.g. NASDAQ, LSE).
    #[arg(long)]
    pub exchange: Option<String>,
}

/// `contracts …`
#[derive(Debug, Subcommand)]
pub enum ContractsCommand {
    /// Every contract matching the query and filters.
    Search(ContractQueryArgs),
    /// Exactly one contract, or INPUT_AMBIGUOUS_CONTRACT listing the candidates.
    Resolve(ContractQueryArgs),
}

/// `market …`
#[derive(Debug, Subcommand)]
pub enum MarketCommand {
    /// A quote snapshot with its data status and age.
    Snapshot {
        /// The contract id.
        #[arg(long, value_name = "ID")]
        contract_id: String,
        /// Refuse with MARKET_DATA_STALE when the quote is older than this.
        #[arg(long, value_name = "SECONDS")]
        max_age_seconds: Option<u32>,
    },
    /// Historical bars, oldest first.
    Bars {
        /// The contract id.
        #[arg(long, value_name = "ID")]
        contract_id: String,
        /// How far back: 30min, 4h, 5d, 2w, 6m, 1y.
        #[arg(long, value_name = "P")]
        period: String,
        /// Bar size: 1min, 5min, 15min, 30min, 1h, 1d, 1w.
        #[arg(long, value_name = "B")]
        bar: String,
    },
}

/// The note shown under every paper write command's help.
const PAPER_WRITE_HELP: &str = "\
Only paper trading is available in this version: `--paper` is required, and the account must \
be a paper account listed in paper_trading.allowed_accounts. Pending writes left by an earlier \
process are recovered before the command runs. Repeating a command with the same \
--idempotency-key replays the first outcome (`replayed: true`) without calling the broker again.";

/// The note shown under `orders cancel` and `orders modify`.
const PAPER_ORDER_BOOK_HELP: &str = "\
Only paper trading is available in this version: `--paper` is required, and the account must \
be a paper account listed in paper_trading.allowed_accounts. Repeating a command with the same \
--idempotency-key replays the first outcome.

With paper_trading.writer: local_candidate the order book lives in memory in one process, so an \
order placed by an earlier `ibkr-agent` run is not found here (ORDER_NOT_FOUND, exit 2); use the \
MCP server or the library for a submit-then-change flow against that writer.";

/// `orders …`
#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Working and recently finished orders.
    List(AccountArg),
    /// Check one order against the preview policy and the broker's what-if, and store it as a
    /// preview for approval. Places nothing.
    Preview(OrderPreviewArgs),
    /// Check a bracket (limit entry, take-profit limit, stop-loss stop) and store it as one
    /// preview for approval. Places nothing.
    BracketPreview(BracketPreviewArgs),
    /// Submit the order of an approved preview to a paper account (consumes the approval).
    #[command(after_help = PAPER_WRITE_HELP)]
    Submit(PaperSubmitArgs),
    /// Submit the three legs of an approved bracket preview to a paper account.
    #[command(after_help = PAPER_WRITE_HELP)]
    BracketSubmit(PaperSubmitArgs),
    /// Replace quantity, prices or time in force of a working paper order with an approved
    /// `orders preview --modify-order-id` preview.
    #[command(after_help = PAPER_ORDER_BOOK_HELP)]
    Modify(PaperModifyArgs),
    /// Ask the broker to cancel a working paper order (needs no approval, except a bracket's
    /// take-profit or stop-loss cancelled alone: pass the approval of a cancel preview).
    #[command(after_help = PAPER_ORDER_BOOK_HELP)]
    Cancel(PaperCancelArgs),
    /// Store a preview of cancelling one working order alone, for approval; cancels nothing.
    /// Only a bracket's take-profit or stop-loss needs it.
    #[command(after_help = PAPER_ORDER_BOOK_HELP)]
    CancelPreview(CancelPreviewArgs),
    /// Resolve paper writes left pending by a crash or an unclear broker answer: completed when
    /// the broker has the order, otherwise marked for review. Never resubmits.
    Recover,
}

/// `orders preview` arguments.
#[derive(Debug, Args)]
pub struct OrderPreviewArgs {
    /// Account reference (acct_…), alias or account id.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The contract id.
    #[arg(long, value_name = "ID")]
    pub contract_id: String,
    /// BUY or SELL.
    #[arg(long, value_name = "SIDE")]
    pub side: String,
    /// Units, e.g. 10.
    #[arg(long, value_name = "Q")]
    pub quantity: String,
    /// LMT, MKT, STP, "STP LMT" or TRAIL (market orders only when order_preview allows them).
    #[arg(long = "type", value_name = "TYPE")]
    pub order_type: String,
    /// Limit price (LMT, STP LMT).
    #[arg(long, value_name = "P")]
    pub limit_price: Option<String>,
    /// Stop price (STP, STP LMT).
    #[arg(long, value_name = "P")]
    pub stop_price: Option<String>,
    /// Trailing distance in price units (TRAIL).
    #[arg(long, value_name = "X", conflicts_with = "trailing_percent")]
    pub trailing_amount: Option<String>,
    /// Trailing distance in percent (TRAIL).
    #[arg(long, value_name = "X")]
    pub trailing_percent: Option<String>,
    /// Time in force: DAY (default), GTC, IOC or OPG.
    #[arg(long, value_name = "T")]
    pub tif: Option<String>,
    /// Preview a replacement for this working paper order (only quantity, prices and time in
    /// force may change).
    #[arg(long, value_name = "ID")]
    pub modify_order_id: Option<String>,
}

/// `orders bracket-preview` arguments.
#[derive(Debug, Args)]
pub struct BracketPreviewArgs {
    /// Account reference (acct_…), alias or account id.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The contract id.
    #[arg(long, value_name = "ID")]
    pub contract_id: String,
    /// The entry's side: BUY or SELL (the exits take the other side).
    #[arg(long, value_name = "SIDE")]
    pub side: String,
    /// Units of every leg.
    #[arg(long, value_name = "Q")]
    pub quantity: String,
    /// The entry's limit price.
    #[arg(long, value_name = "P")]
    pub entry_price: String,
    /// The take-profit limit price.
    #[arg(long, value_name = "P")]
    pub take_profit_price: String,
    /// The stop-loss stop price.
    #[arg(long, value_name = "P")]
    pub stop_loss_price: String,
    /// Time in force: DAY (default), GTC, IOC or OPG.
    #[arg(long, value_name = "T")]
    pub tif: Option<String>,
}

/// `orders submit` and `orders bracket-submit` arguments.
#[derive(Debug, Args)]
pub struct PaperSubmitArgs {
    /// Required: act on a paper account. Live trading is not available in this version.
    #[arg(long)]
    pub paper: bool,
    /// Account reference (acct_…), alias or account id.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The approval of the preview to submit (from `approvals create`).
    #[arg(long, value_name = "ID")]
    pub approval_id: String,
    /// Your key for this request: 1 to 64 characters of A-Z a-z 0-9 . _ - (also the order's
    /// client order id).
    #[arg(long, value_name = "K")]
    pub idempotency_key: String,
}

/// `orders modify` arguments.
#[derive(Debug, Args)]
pub struct PaperModifyArgs {
    /// Required: act on a paper account. Live trading is not available in this version.
    #[arg(long)]
    pub paper: bool,
    /// Account reference (acct_…), alias or account id.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The working order to change.
    #[arg(long, value_name = "O")]
    pub order_id: String,
    /// The approval of the replacement preview (`orders preview --modify-order-id`).
    #[arg(long, value_name = "ID")]
    pub approval_id: String,
    /// Your key for this request: 1 to 64 characters of A-Z a-z 0-9 . _ -.
    #[arg(long, value_name = "K")]
    pub idempotency_key: String,
}

/// `orders cancel` arguments.
#[derive(Debug, Args)]
pub struct PaperCancelArgs {
    /// Required: act on a paper account. Live trading is not available in this version.
    #[arg(long)]
    pub paper: bool,
    /// Account reference (acct_…), alias or account id.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The working order to cancel.
    #[arg(long, value_name = "O")]
    pub order_id: String,
    /// Your key for this request: 1 to 64 characters of A-Z a-z 0-9 . _ -.
    #[arg(long, value_name = "K")]
    pub idempotency_key: String,
    /// The approval of an `orders cancel-preview` of this order (needed only for a bracket's
    /// take-profit or stop-loss cancelled alone).
    #[arg(long, value_name = "A")]
    pub approval_id: Option<String>,
}

/// `orders cancel-preview` arguments.
#[derive(Debug, Args)]
pub struct CancelPreviewArgs {
    /// Account reference (acct_…), alias or account id.
    #[arg(long, value_name = "ID")]
    pub account: String,
    /// The working order to cancel.
    #[arg(long, value_name = "O")]
    pub order_id: String,
}

/// `approvals …`
#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Approve a stored, unexpired preview; a paper submit then names the approval.
    Create {
        /// The preview to approve (from `orders preview`).
        #[arg(long, value_name = "ID")]
        preview_id: String,
        /// How long the approval stays usable, in seconds (default 300, at most 86400).
        #[arg(long, value_name = "N")]
        ttl_seconds: Option<u32>,
    },
    /// Approvals, newest first, with their status as of now.
    List,
    /// One approval.
    Show {
        /// The approval id.
        approval_id: String,
    },
    /// Revoke an approval that has not been used yet.
    Revoke {
        /// The approval id.
        approval_id: String,
    },
}

/// `executions …`
#[derive(Debug, Subcommand)]
pub enum ExecutionsCommand {
    /// Fills, newest first.
    List {
        /// Account reference (acct_…), alias or account id.
        #[arg(long, value_name = "ID")]
        account: String,
        /// Only fills at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
}

/// `version`: nothing to choose; `--json` (global) prints the JSON document.
#[derive(Debug, Args)]
pub struct VersionArgs {}
