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
    /// Working and recent orders.
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Executions (fills).
    #[command(subcommand)]
    Executions(ExecutionsCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
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
    /// Verify the whole chain in constant memory; a broken chain exits 7.
    Verify {
        /// Verify this database instead of the configured one (read-only).
        #[arg(long, value_name = "PATH")]
        database: Option<PathBuf>,
        /// The environment variable holding that database's HMAC key.
        #[arg(long, value_name = "NAME")]
        hmac_secret_env: Option<String>,
        /// The chain head from an earlier export trailer: detects a truncated tail.
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
        /// The event count from an earlier export trailer.
        #[arg(long, value_name = "N")]
        expect_count: Option<u64>,
    },
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
    /// Serve MCP over stdio: protocol frames on stdout, logs on stderr; exits when stdin closes.
    Serve,
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

/// `orders …`
#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Working and recently finished orders.
    List(AccountArg),
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
