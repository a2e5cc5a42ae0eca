//! `ibkr-agent`: parse arguments, build the gateway, run one command, map the outcome to an
//! exit code. No logic lives here.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use ibkr_agent_gateway::adapters::inbound::cli::args::{
    Command, McpCommand, McpServeArgs, McpTransport,
};
use ibkr_agent_gateway::adapters::inbound::cli::generated::{self, GeneratedCall, Invocation};
use ibkr_agent_gateway::adapters::inbound::cli::{render, run};
use ibkr_agent_gateway::adapters::inbound::{mcp, mcp_http};
use ibkr_agent_gateway::adapters::outbound::process_env;
use ibkr_agent_gateway::app::error::GatewayError;
use ibkr_agent_gateway::app::startup_error::{Failure, StartupError};
use ibkr_agent_gateway::app::wiring;

fn main() -> ExitCode {
    let matches = generated::command().get_matches();
    let cli = match generated::invocation(&matches) {
        Ok(Invocation::Written(cli)) => *cli,
        Ok(Invocation::Generated(call)) => return run_generated(call),
        Err(error) => error.exit(),
    };
    if let Command::Version(_) = &cli.command {
        // Before any configuration is read: it must answer where the configuration is broken.
        return render::report(run::version().map_err(Into::into), cli.json);
    }
    init_logging(cli.log_level.as_deref());
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return render::report(Err(error.into()), cli.json),
    };
    if let Command::Mcp(McpCommand::Serve(serve)) = &cli.command {
        let served = runtime.block_on(serve_mcp(cli.config.as_deref(), serve));
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

/// `mcp serve`: over stdio, or over Streamable HTTP when remote MCP is on. The reconciler,
/// the periodic audit checkpoints (and, on a real broker, the keepalive) run while serving
/// and stop when it ends; a shutdown checkpoint is written after.
async fn serve_mcp(config: Option<&Path>, serve: &McpServeArgs) -> Result<(), Failure> {
    let mut settings = run::load_settings(config)?;
    if serve.transport == McpTransport::Http {
        mcp_http::server::require_remote_on(&settings.remote_mcp)?;
        mcp_http::server::host_origin_guard(&settings.remote_mcp)?;
        if let Some(bind) = serve.bind {
            // The start-up gates in `wiring::build` judge the final address.
            settings.remote_mcp.bind_address = bind;
        }
    } else if serve.bind.is_some() {
        return Err(StartupError::config("--bind", "applies only with --transport http").into());
    }
    let gateway = wiring::build(&settings)?;
    let serving: Pin<Box<dyn Future<Output = Result<(), GatewayError>>>> = match serve.transport {
        // Over stdio, SIGTERM (or Ctrl-C) ends serving like a closed stdin, so the shutdown
        // checkpoint is still written; the HTTP server handles both signals itself.
        McpTransport::Stdio => Box::pin(async {
            tokio::select! {
                served = mcp::serve_stdio(gateway.clone(), &settings) => served,
                () = mcp_http::server::shutdown_signal() => Ok(()),
            }
        }),
        McpTransport::Http => Box::pin(mcp_http::server::serve_http(
            gateway.clone(),
            &settings,
            &process_env::EnvSecretSource,
        )),
    };
    let serving = gateway.serve_with_reconciler(serving);
    let serving = async {
        match wiring::keepalive_interval(&settings) {
            Some(interval) => gateway.serve_with_keepalive(interval, serving).await,
            None => serving.await,
        }
    };
    // Checkpoints every interval while serving, and one once serving has ended.
    let interval = Duration::from_secs(settings.audit.checkpoint_interval_seconds);
    let served = gateway.serve_with_checkpoints(interval, serving).await;
    Ok(served?)
}

/// The async runtime every command runs on: two workers, I/O and timers.
fn runtime() -> Result<tokio::runtime::Runtime, StartupError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| StartupError::Internal {
            message: format!("cannot start the runtime: {error}"),
        })
}

/// Runs a command generated from the use-case registry.
fn run_generated(call: GeneratedCall) -> ExitCode {
    init_logging(call.log_level.as_deref());
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return render::report(Err(error.into()), call.json),
    };
    let json = call.json;
    let result = runtime.block_on(async {
        let mut settings = run::load_settings(call.config.as_deref())?;
        if let Some(live) = call.live {
            // `--live-broker` picks this invocation's live writer.
            settings.live_trading.writer = live.broker;
        }
        let gateway = wiring::build(&settings)?;
        Ok::<_, Failure>(
            run::execute_generated(&gateway, call.entry, call.arguments, call.live).await?,
        )
    });
    render::report(result, json)
}

/// Logs go to stderr only, so stdout carries nothing but the command's output.
///
/// `--log-level` or `RUST_LOG` chooses what is logged, under a ceiling no filter can lift: the
/// gateway's own events (which never carry arguments) at any level, other crates at `warn` at
/// most, and the MCP library at `error` at most. Below those levels the MCP library logs every
/// request and answer whole, and the HTTP stack logs request URLs, which hold account ids; MCP
/// clients keep the server's stderr in files.
fn init_logging(level: Option<&str>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = level
        .map(str::to_owned)
        .or_else(process_env::log_filter)
        .unwrap_or_else(|| "warn".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(log_ceiling())
        .with(output)
        .try_init();
}

/// The most each crate may log whatever the filter asks. A layer of its own, so a
/// user-supplied filter (`rmcp=trace`, `rmcp::service=trace`, `trace`) cannot lift it: an event
/// is logged only when both the filter and this ceiling let it through.
fn log_ceiling() -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::LevelFilter;

    tracing_subscriber::filter::Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target(mcp::LIBRARY_LOG_TARGET, LevelFilter::ERROR)
        .with_target("ibkr_agent_gateway", LevelFilter::TRACE)
        .with_target("ibkr_agent", LevelFilter::TRACE)
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::filter::LevelFilter;

    use super::*;

    #[test]
    fn the_ceiling_keeps_payload_logging_crates_quiet_and_the_gateway_verbose() {
        let ceiling = log_ceiling();
        for (target, level) in [
            (mcp::LIBRARY_LOG_TARGET, LevelFilter::WARN),
            ("rmcp::service", LevelFilter::INFO),
            ("reqwest::async_impl::client", LevelFilter::DEBUG),
            ("hyper_util::client::legacy", LevelFilter::TRACE),
            ("h2::codec", LevelFilter::DEBUG),
            ("rusqlite", LevelFilter::INFO),
        ] {
            let level = level.into_level().unwrap();
            assert!(!ceiling.would_enable(target, &level), "{target} at {level}");
        }
        let trace = tracing::Level::TRACE;
        assert!(ceiling.would_enable("ibkr_agent_gateway::adapters::inbound::mcp", &trace));
        assert!(ceiling.would_enable("ibkr_agent", &trace));
        assert!(ceiling.would_enable("rmcp::service", &tracing::Level::ERROR));
        assert!(ceiling.would_enable("reqwest::connect", &tracing::Level::WARN));
    }
}
