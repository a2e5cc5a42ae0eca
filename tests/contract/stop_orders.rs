//! Stop-type orders through the library against the fake broker: a stop whose trigger is
//! already through the market is refused while market orders are off, every order is capped at
//! the worse of its own prices and the current quote, a contract without a quote fails closed,
//! and the what-if the approver sees prices a stop as it would trade.
//!
//! Fake quotes (bid / ask / last): SPY 548.18 / 548.22 / 548.20, AAPL 192.28 / 192.32 / 192.30;
//! DRMT (`NO_DATA`) has none. The default cap is 50,000 of notional.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;

use chrono::DateTime;
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::{FakeBroker, known_ids};
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::app::error::GatewayError;
use ibkr_agent_gateway::app::order_input::{RawBracketPreview, RawOrderPreview};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::ids::AccountId;
use ibkr_agent_gateway::domain::preview::PreviewPolicy;
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use rust_decimal::Decimal;

const PAPER: &str = "DU1234567";

struct Harness {
    gateway: Gateway,
    audit: Arc<MemoryAuditLog>,
}

fn harness(policy: PreviewPolicy) -> Harness {
    let clock = Arc::new(FixedClock::new(
        DateTime::from_timestamp(1_795_793_417, 0).unwrap(),
    ));
    let key = SecretBytes::new(vec![7; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&key).unwrap()));
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
        .clock(clock)
        .key(key)
        .audit_log(audit.clone())
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(Arc::new(MemoryWorkflowStore::new()))
        .paper_writer(Arc::new(LocalCandidateWriter::new()))
        .preview_policy(policy)
        .paper_trading(PaperTradingSettings {
            enabled: true,
            allowed_accounts: BTreeSet::from([AccountId::parse(PAPER).unwrap()]),
            writer: PaperWriterKind::LocalCandidate,
            recovery_grace_seconds: 120,
        })
        .build()
        .unwrap();
    Harness { gateway, audit }
}

fn market_orders_allowed() -> PreviewPolicy {
    PreviewPolicy {
        allow_market_orders: true,
        ..PreviewPolicy::default()
    }
}

fn order(contract: u64, side: &str, quantity: &str, order_type: &str) -> RawOrderPreview {
    RawOrderPreview {
        account: PAPER.into(),
        contract_id: contract.to_string(),
        side: side.into(),
        quantity: quantity.into(),
        order_type: order_type.into(),
        ..RawOrderPreview::default()
    }
}

fn stop(contract: u64, side: &str, quantity: &str, stop_price: &str) -> RawOrderPreview {
    RawOrderPreview {
        stop_price: Some(stop_price.into()),
        ..order(contract, side, quantity, "STP")
    }
}

fn limit(contract: u64, side: &str, quantity: &str, limit_price: &str) -> RawOrderPreview {
    RawOrderPreview {
        limit_price: Some(limit_price.into()),
        ..order(contract, side, quantity, "LMT")
    }
}

async fn refused(harness: &Harness, raw: RawOrderPreview) -> GatewayError {
    harness
        .gateway
        .preview_order(&CallContext::mcp_stdio(), raw)
        .await
        .unwrap_err()
}

/// The error code of every audited preview call, in order (`None`: a preview was stored).
fn preview_outcomes(harness: &Harness) -> Vec<Option<String>> {
    harness
        .audit
        .records()
        .into_iter()
        .filter(|record| record.columns.operation == "orders preview")
        .map(|record| record.columns.error_code)
        .collect()
}

#[tokio::test]
async fn the_buy_stop_at_a_cent_on_a_548_stock_is_refused_and_nothing_is_previewed() {
    let h = harness(PreviewPolicy::default());
    // 90 × 0.01 = 0.90 of notional at its trigger; it would buy 90 × 548.22 = 49,339.80 at once.
    let error = refused(&h, stop(known_ids::SPY, "BUY", "90", "0.01")).await;
    assert_eq!(error.code().as_str(), "ORDER_STOP_THROUGH_MARKET");
    let document = error.to_json();
    let message = document["error"]["message"].as_str().unwrap();
    assert!(message.contains("already through the market"), "{message}");
    assert!(message.contains("548.22"), "{message}");
    let action = document["error"]["user_action"].as_str().unwrap();
    assert!(action.starts_with("nothing was previewed"), "{action}");
    assert_eq!(
        preview_outcomes(&h),
        [Some("ORDER_STOP_THROUGH_MARKET".to_owned())]
    );
}

#[tokio::test]
async fn sell_stops_above_the_market_and_trailing_stops_through_it_are_refused() {
    let h = harness(PreviewPolicy::default());
    for raw in [
        stop(known_ids::SPY, "SELL", "1", "900"),
        // At the bid is already through for a sell stop.
        stop(known_ids::SPY, "SELL", "1", "548.18"),
        RawOrderPreview {
            stop_price: Some("0.01".into()),
            trailing_amount: Some("0.01".into()),
            ..order(known_ids::SPY, "BUY", "1", "TRAIL")
        },
        RawOrderPreview {
            stop_price: Some("0.01".into()),
            limit_price: Some("549".into()),
            ..order(known_ids::SPY, "BUY", "1", "STP LMT")
        },
    ] {
        let error = refused(&h, raw).await;
        assert_eq!(error.code().as_str(), "ORDER_STOP_THROUGH_MARKET");
    }
    // A protective sell stop below the market is fine.
    let below = h
        .gateway
        .preview_order(
            &CallContext::mcp_stdio(),
            stop(known_ids::SPY, "SELL", "1", "540"),
        )
        .await;
    assert!(below.is_ok(), "{below:?}");
}

#[tokio::test]
async fn with_market_orders_allowed_a_stop_is_capped_at_the_quote_and_margined_at_it() {
    let h = harness(market_orders_allowed());
    // 100 × 548.22 = 54,822 is over the 50,000 cap, whatever the trigger says.
    let error = refused(&h, stop(known_ids::SPY, "BUY", "100", "0.01")).await;
    assert_eq!(error.code().as_str(), "ORDER_POLICY_REJECTED");
    let rule = error.to_json()["error"]["details"]["rule"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(rule.contains("548.22"), "{rule}");
    // A tiny trailing amount is capped at the quote too.
    let trail = RawOrderPreview {
        trailing_amount: Some("0.01".into()),
        ..order(known_ids::SPY, "BUY", "100", "TRAIL")
    };
    assert_eq!(
        refused(&h, trail).await.code().as_str(),
        "ORDER_POLICY_REJECTED"
    );

    // 90 fits; the approver sees the margin of 90 × 548.22 × 25 % = 12,334.95, not cents.
    let preview = h
        .gateway
        .preview_order(
            &CallContext::mcp_stdio(),
            stop(known_ids::SPY, "BUY", "90", "0.01"),
        )
        .await
        .unwrap();
    assert_eq!(
        preview.what_if.initial_margin_change,
        Some(Decimal::from_str("12334.95").unwrap())
    );
}

#[tokio::test]
async fn a_marketable_sell_limit_is_capped_at_the_quote() {
    let h = harness(PreviewPolicy::default());
    // A sell limit at 1 trades near 548.18: 100 of them are 54,818 or more.
    let error = refused(&h, limit(known_ids::SPY, "SELL", "100", "1")).await;
    assert_eq!(error.code().as_str(), "ORDER_POLICY_REJECTED");
    let fits = h
        .gateway
        .preview_order(
            &CallContext::mcp_stdio(),
            limit(known_ids::SPY, "SELL", "90", "1"),
        )
        .await;
    assert!(fits.is_ok(), "{fits:?}");
}

#[tokio::test]
async fn without_a_quote_the_cap_cannot_be_checked_and_the_preview_fails_closed() {
    let h = harness(PreviewPolicy::default());
    for raw in [
        limit(known_ids::NO_DATA, "BUY", "1", "1"),
        stop(known_ids::NO_DATA, "SELL", "1", "1"),
    ] {
        let error = refused(&h, raw).await;
        assert_eq!(error.code().as_str(), "MARKET_DATA_UNAVAILABLE");
        assert!(error.retryable());
        let message = error.to_string();
        assert!(message.contains("nothing was previewed"), "{message}");
    }
    // Without a cap and with market orders allowed, a limit order needs no quote.
    let uncapped = harness(PreviewPolicy {
        max_notional: None,
        ..market_orders_allowed()
    });
    let preview = uncapped
        .gateway
        .preview_order(
            &CallContext::mcp_stdio(),
            limit(known_ids::NO_DATA, "BUY", "1", "1"),
        )
        .await;
    assert!(preview.is_ok(), "{preview:?}");
    assert_eq!(
        preview_outcomes(&h),
        vec![Some("MARKET_DATA_UNAVAILABLE".to_owned()); 2]
    );
}

#[tokio::test]
async fn every_leg_of_a_bracket_is_checked_against_the_quote() {
    let h = harness(PreviewPolicy::default());
    let bracket =
        |side: &str, quantity: &str, entry: &str, take: &str, stop: &str| RawBracketPreview {
            account: PAPER.into(),
            contract_id: known_ids::AAPL.to_string(),
            side: side.into(),
            quantity: quantity.into(),
            entry_price: entry.into(),
            take_profit_price: take.into(),
            stop_loss_price: stop.into(),
            time_in_force: None,
        };
    let context = CallContext::mcp_stdio();
    // A sell bracket whose buy stop-loss (160) is below the market (192.32) would buy at once.
    let error = h
        .gateway
        .preview_bracket(&context, bracket("SELL", "10", "150", "140", "160"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_STOP_THROUGH_MARKET");
    // An entry at 1 is capped at the quote: 300 × 192.32 = 57,696.
    let error = h
        .gateway
        .preview_bracket(&context, bracket("BUY", "300", "1", "2", "0.5"))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "ORDER_POLICY_REJECTED");
    // An ordinary protective bracket passes.
    let fine = h
        .gateway
        .preview_bracket(&context, bracket("BUY", "10", "190", "210", "180"))
        .await;
    assert!(fine.is_ok(), "{fine:?}");
}
