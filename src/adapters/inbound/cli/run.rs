//! Dispatch: turns a parsed command into one use case run through the pipeline (or, for the
//! streaming audit commands and the order workflows, one audited gateway call) and its output.

use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::adapters::inbound::cli::args::{
    AccountCommand, AccountsCommand, AuditCommand, BackendCommand, Command, ContractQueryArgs,
    ContractsCommand, ExecutionsCommand, MarketCommand, PositionsCommand, SessionCommand,
};
use crate::adapters::inbound::cli::generated::LiveFlags;
use crate::adapters::inbound::cli::orders;
use crate::adapters::inbound::cli::render::{Human, Output};
use crate::app::audit_reads::{CheckpointEvidence, RawExpectations, RawExportRange};
use crate::app::audited::{CallContext, CallSpec};
use crate::app::config::Settings;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::startup_error::{Failure, StartupError};
use crate::app::use_cases::audit::{AuditTail, AuditTailInput};
use crate::app::use_cases::inputs::{AccountInput, ContractQueryInput, NoInput};
use crate::app::use_cases::reads::{
    AccountSummary, AccountsList, BackendStatus, BarsInput, ContractResolve, ContractsSearch,
    ExecutionsInput, ExecutionsList, Health, HistoricalBars, MarketSnapshot, PositionsList,
    SessionRequirements, SnapshotInput,
};
use crate::app::use_cases::{Entry, UseCase};
use crate::app::wiring;
use crate::domain::audit::checkpoint::CheckpointKind;
use crate::ports::secret_source::SecretError;

/// The settings from `--config`, or the embedded defaults without it.
///
/// # Errors
/// `CONFIG_FILE_UNREADABLE` or `CONFIG_INVALID`.
pub fn load_settings(config: Option<&Path>) -> Result<Settings, StartupError> {
    match config {
        Some(path) => Settings::load(path),
        None => Ok(Settings::embedded_defaults()),
    }
}

/// Builds the gateway `command` runs against. `audit verify` of the configured log needs that
/// log to exist already: verifying never creates one.
///
/// # Errors
/// `AUDIT_LOG_MISSING` for `audit verify` without `--database` when the configured audit
/// database does not exist; otherwise as [`wiring::build`].
pub fn build(settings: &Settings, command: &Command) -> Result<Gateway, StartupError> {
    match command {
        Command::Audit(AuditCommand::Verify { database: None, .. }) => {
            wiring::build_for_verify(settings)
        }
        _ => wiring::build(settings),
    }
}

fn query(args: &ContractQueryArgs) -> ContractQueryInput {
    ContractQueryInput {
        query: args.query.clone(),
        asset_class: args.asset_class.clone(),
        currency: args.currency.clone(),
        exchange: args.exchange.clone(),
    }
}

/// Runs the use case `U` as the operator at the CLI; its output is rendered as a table, or
/// as its JSON form with `--json`.
pub(crate) async fn run_use_case<U>(
    gateway: &Gateway,
    input: U::Input,
) -> Result<Output, GatewayError>
where
    U: UseCase,
    U::Output: Human,
{
    Output::of(&gateway.run_as::<U>(&CallContext::cli(), input).await?)
}

/// Runs a use case from a command generated from the registry, as the operator at the CLI;
/// its output is its JSON form in both modes.
///
/// # Errors
/// As [`Gateway::run_entry`].
pub async fn execute_generated(
    gateway: &Gateway,
    entry: &Entry,
    arguments: Map<String, Value>,
    live: Option<LiveFlags>,
) -> Result<Output, GatewayError> {
    let context = CallContext::cli();
    if let Some(flags) = live {
        if !flags.enabled {
            let spec = CallSpec::write(
                entry.definition().name,
                entry.required_scope(context.principal()),
                Value::Object(arguments),
            );
            return Err(gateway
                .refuse(&context, spec, GatewayError::LiveEnableFlagRequired)
                .await);
        }
        // A live write resolves what an earlier process left pending first, as the paper
        // commands do.
        gateway.start().await;
    }
    Output::of(&gateway.run_entry(&context, entry, arguments).await?)
}

/// Runs a read command through its use case; `None` for the streaming audit commands and the
/// order workflows, which have their own dispatch. The command words are the use case's
/// stable name (a test checks every one against the registry).
async fn read(gateway: &Gateway, command: &Command) -> Option<Result<Output, GatewayError>> {
    Some(match command {
        Command::Health => run_use_case::<Health>(gateway, NoInput {}).await,
        Command::Backend(BackendCommand::Status) => {
            run_use_case::<BackendStatus>(gateway, NoInput {}).await
        }
        Command::Session(SessionCommand::Requirements) => {
            run_use_case::<SessionRequirements>(gateway, NoInput {}).await
        }
        Command::Accounts(AccountsCommand::List) => {
            run_use_case::<AccountsList>(gateway, NoInput {}).await
        }
        Command::Account(AccountCommand::Summary(args)) => {
            run_use_case::<AccountSummary>(gateway, AccountInput::new(&args.account)).await
        }
        Command::Positions(PositionsCommand::List(args)) => {
            run_use_case::<PositionsList>(gateway, AccountInput::new(&args.account)).await
        }
        Command::Contracts(ContractsCommand::Search(args)) => {
            run_use_case::<ContractsSearch>(gateway, query(args)).await
        }
        Command::Contracts(ContractsCommand::Resolve(args)) => {
            run_use_case::<ContractResolve>(gateway, query(args)).await
        }
        Command::Market(MarketCommand::Snapshot {
            contract_id,
            max_age_seconds,
        }) => {
            let input = SnapshotInput {
                contract_id: contract_id.clone(),
                max_age_seconds: *max_age_seconds,
            };
            run_use_case::<MarketSnapshot>(gateway, input).await
        }
        Command::Market(MarketCommand::Bars {
            contract_id,
            period,
            bar,
        }) => {
            let input = BarsInput {
                contract_id: contract_id.clone(),
                period: period.clone(),
                bar: bar.clone(),
            };
            run_use_case::<HistoricalBars>(gateway, input).await
        }
        Command::Executions(ExecutionsCommand::List { account, since }) => {
            let input = ExecutionsInput {
                account_id: account.clone(),
                since: since.clone(),
            };
            run_use_case::<ExecutionsList>(gateway, input).await
        }
        Command::Audit(AuditCommand::Tail { limit }) => {
            run_use_case::<AuditTail>(gateway, AuditTailInput { limit: *limit }).await
        }
        Command::Audit(
            AuditCommand::Export { .. }
            | AuditCommand::Verify { .. }
            | AuditCommand::VerifyExport { .. }
            | AuditCommand::Purge { .. }
            | AuditCommand::PublicKey
            | AuditCommand::Checkpoint,
        )
        | Command::Orders(_)
        | Command::Approvals(_)
        | Command::Mcp(_)
        | Command::Version(_) => {
            return None;
        }
    })
}

/// Runs one command against the gateway as one audited call.
///
/// # Errors
/// Whatever the gateway call returns; for `audit verify --database`, what opening that log
/// returns.
pub async fn execute(
    gateway: &Gateway,
    settings: &Settings,
    command: &Command,
) -> Result<Output, Failure> {
    if let Some(output) = read(gateway, command).await {
        return Ok(output?);
    }
    let context = CallContext::cli();
    match command {
        Command::Orders(command) => Ok(orders::execute_orders(gateway, command).await?),
        Command::Approvals(command) => Ok(orders::execute_approvals(gateway, command).await?),
        Command::Audit(AuditCommand::Export {
            format: _,
            from_seq,
            to_seq,
            since,
        }) => {
            let range = RawExportRange {
                from_seq: *from_seq,
                to_seq: *to_seq,
                since: since.clone(),
            };
            // Lines stream straight to stdout; only the trailer is returned for rendering.
            let trailer = gateway
                .export_audit_as(&context, range, Box::new(std::io::stdout()), true)
                .await?;
            Ok(Output::trailer(&trailer)?)
        }
        Command::Audit(AuditCommand::Verify {
            database,
            hmac_secret_env,
            expect_head,
            expect_count,
            checkpoints,
            public_key,
        }) => {
            let checkpoint_lines = checkpoints
                .as_deref()
                .map(|path| read_lines(path, "checkpoints"))
                .transpose()?;
            let public_only = checkpoint_lines.is_some() && public_key.is_some();
            let (target, keyed) = match database.as_deref() {
                Some(path) => {
                    match wiring::open_audit_for_verify(settings, path, hmac_secret_env.as_deref())
                    {
                        Ok(log) => (Some(log), true),
                        // A third party holds the database and the public key, not the secret.
                        Err(StartupError::Secret(SecretError::Missing { .. })) if public_only => {
                            (Some(wiring::open_audit_for_public_verify(path)?), false)
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
                None => (None, true),
            };
            let expectations = RawExpectations {
                expect_head: expect_head.clone(),
                expect_count: *expect_count,
            };
            let evidence = CheckpointEvidence {
                checkpoint_lines,
                public_key: public_key.clone(),
                keyed,
            };
            Ok(Output::of(
                &gateway
                    .verify_audit_as(&context, target, expectations, evidence)
                    .await?,
            )?)
        }
        Command::Audit(AuditCommand::VerifyExport { file, public_key }) => {
            let opened = std::fs::File::open(file).map_err(|error| {
                GatewayError::invalid_input(
                    "file",
                    format!("cannot open the export file ({})", error.kind()),
                )
            })?;
            let mut reader = std::io::BufReader::new(opened);
            Ok(Output::of(
                &gateway
                    .verify_export_as(&context, &mut reader, public_key)
                    .await?,
            )?)
        }
        Command::Audit(AuditCommand::Purge { before, export_to }) => Ok(Output::of(
            &gateway
                .purge_audit_as(
                    &context,
                    before,
                    &wiring::purge_export_file(export_to.clone()),
                )
                .await?,
        )?),
        Command::Audit(AuditCommand::PublicKey) => {
            Ok(Output::of(&gateway.audit_public_key_as(&context).await?)?)
        }
        Command::Audit(AuditCommand::Checkpoint) => Ok(Output::of(
            &gateway
                .write_checkpoint_as(&context, CheckpointKind::Manual)
                .await?,
        )?),
        _ => Err(GatewayError::Internal {
            message: "command has no dispatch".into(),
        }
        .into()),
    }
}

/// The lines of a file the caller named, for `field`. Errors name the field, never the path.
fn read_lines(path: &Path, field: &'static str) -> Result<Vec<String>, GatewayError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        GatewayError::invalid_input(field, format!("cannot read the file ({})", error.kind()))
    })?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// What `ibkr-agent version` reports: the facts `build.rs` recorded when this binary was built.
#[derive(Debug, Serialize)]
struct VersionView {
    version: &'static str,
    /// The commit the binary was built from, or `unknown` (no `.git` and no
    /// `IBKR_AGENT_GIT_COMMIT` at build time).
    git_commit: &'static str,
    /// Whether a tracked build input (`src`, `migrations`, `build.rs`, `Cargo.toml`,
    /// `Cargo.lock`) differed from that commit; `None` when no git checkout was there.
    git_dirty: Option<bool>,
    target: &'static str,
    profile: &'static str,
    features: Vec<&'static str>,
}

impl VersionView {
    fn of_this_build() -> Self {
        let git_dirty = match env!("IBKR_AGENT_BUILD_GIT_DIRTY") {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        Self {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: env!("IBKR_AGENT_BUILD_GIT_COMMIT"),
            git_dirty,
            target: env!("IBKR_AGENT_BUILD_TARGET"),
            profile: env!("IBKR_AGENT_BUILD_PROFILE"),
            features: env!("IBKR_AGENT_BUILD_FEATURES")
                .split(',')
                .filter(|feature| !feature.is_empty())
                .collect(),
        }
    }
}

impl Human for VersionView {
    fn human(&self) -> String {
        let tree = match self.git_dirty {
            Some(true) => ", modified",
            Some(false) => "",
            None => ", no git checkout",
        };
        let features = if self.features.is_empty() {
            "none".to_owned()
        } else {
            self.features.join(", ")
        };
        format!(
            "ibkr-agent {} (commit {}{tree}) {} {}; features: {features}",
            self.version, self.git_commit, self.target, self.profile
        )
    }
}

/// `version`: what this binary is. Not a gateway call: it reads no configuration, builds no
/// gateway and records no audit event, so it answers even where the configuration is broken.
///
/// # Errors
/// `INTERNAL_ERROR` only if the view cannot be serialized (a bug).
pub fn version() -> Result<Output, GatewayError> {
    Output::of(&VersionView::of_this_build())
}

#[cfg(test)]
mod tests {
    use clap::error::ErrorKind;

    use crate::adapters::inbound::cli::generated;
    use crate::app::use_cases;

    #[test]
    fn every_use_case_has_a_cli_command() {
        for entry in use_cases::registry() {
            let name = entry.definition().command;
            let mut words = vec!["ibkr-agent"];
            words.extend(name.split(' '));
            words.push("--help");
            let parsed = generated::command().try_get_matches_from(&words);
            assert!(
                matches!(&parsed, Err(error) if error.kind() == ErrorKind::DisplayHelp),
                "`{name}` is not a CLI command"
            );
        }
    }
}
