//! Embedding the gateway as a library: build it on the fake broker, read accounts and a quote,
//! see a scope refusal, and verify the audit log every call was recorded in. Run with
//! `cargo run --example embed_gateway`; `cargo test` runs it too.
#![allow(clippy::print_stdout)] // an example prints

use std::sync::Arc;

use ibkr_agent_gateway::adapters::outbound::clock::SystemClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::startup_error::Failure;
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};

async fn demo() -> Result<(), Failure> {
    // The quickest start: the fake broker, read scopes only, an in-memory audit log.
    let gateway = Gateway::fake()?;
    let accounts = gateway.accounts().await?;
    for account in &accounts.accounts {
        println!(
            "{} {} {}",
            account.account_ref, account.display, account.mode
        );
    }
    let first = &accounts.accounts[0].account_ref;
    let positions = gateway.positions(first).await?;
    println!("{} positions", positions.positions.len());
    let quote = gateway.market_snapshot(265_598, None).await?;
    println!(
        "AAPL bid {:?} ask {:?} ({})",
        quote.bid, quote.ask, quote.status
    );
    let report = gateway.audit_verify(Default::default()).await?;
    println!(
        "audit: {} events, chain valid: {}",
        report.events_scanned, report.chain_valid
    );

    // Any BrokerReader can be injected; here the fake again, with a narrower scope set.
    let clock = Arc::new(SystemClock);
    let narrow = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
        .clock(clock)
        .scopes([Scope::HealthRead].into_iter().collect::<ScopeSet>())
        .build()?;
    match narrow.accounts().await {
        Err(error) if error.code() == ErrorCode::AuthMissingScope => println!("refused: {error}"),
        other => println!("unexpected: {other:?}"),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    demo().await
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_example_runs() {
        super::demo().await.unwrap();
    }
}
