//! `ibkr-agent`: parse arguments, build the gateway, run one command, map the outcome to an
//! exit code. No logic lives here.

use std::process::ExitCode;

use clap::Parser;
use ibkr_agent_gateway::adapters::inbound::cli::args::{Cli, Command, McpCommand};
use ibkr_agent_gateway::adapters::inbound::cli::{render, run};
use ibkr_agent_gateway::adapters::inbound::mcp;
use ibkr_agent_gateway::adapters::outbound::process_env;
use ibkr_agent_gateway::app::error::GatewayError;
use ibkr_agent_gateway::app::wiring;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_level.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = GatewayError::Internal {
                message: format!("cannot start the runtime: {error}"),
            };
            return render::report(Err(error), cli.json);
        }
    };
    if matches!(cli.command, Command::Mcp(McpCommand::Serve)) {
        let served = runtime.block_on(async {
            let settings = run::load_settings(cli.config.as_deref())?;
            let gateway = wiring::build(&settings)?;
            match wiring::keepalive_interval(&settings) {
                Some(interval) => {
                    let serving = mcp::serve_stdio(gateway.clone(), &settings);
                    gateway.serve_with_keepalive(interval, serving).await
                }
                None => mcp::serve_stdio(gateway, &settings).await,
            }
        });
        // stdout belongs to the protocol: a start-up error goes to stderr only.
        return match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => render::report(Err(error), false),
        };
    }
    let result = runtime.block_on(async {
        let settings = run::load_settings(cli.config.as_deref())?;
        let gateway = run::build(&settings, &cli.command)?;
        run::execute(&gateway, &settings, &cli.command).await
    });
    render::report(result, cli.json)
}

/// Logs go to stderr only, so stdout carries nothing but the command's output.
fn init_logging(level: Option<&str>) {
    let filter = level
        .map(str::to_owned)
        .or_else(process_env::log_filter)
        .unwrap_or_else(|| "warn".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .try_init();
}
