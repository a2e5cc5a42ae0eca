//! Order workflow invariants: the preview policy's limits are never exceeded, any change to an
//! approved order is detected, order encodings keep every decimal exactly, and any sequence of
//! submits reaches the writer at most once per approval and once per key.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::DateTime;
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::local_candidate::LocalCandidateWriter;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::app::order_input::{RawOrderPreview, RawPaperSubmit};
use ibkr_agent_gateway::domain::approval::{
    Approval, ApprovalRefusal, ApprovalStatus, ApproverKind,
};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::audit::{Actor, Surface};
use ibkr_agent_gateway::domain::ids::{AccountId, ApprovalId, ContractId, PreviewId};
use ibkr_agent_gateway::domain::instrument::{AssetClass, Contract};
use ibkr_agent_gateway::domain::money::{Currency, Price, Quantity};
use ibkr_agent_gateway::domain::order::{OrderSide, OrderType, TimeInForce};
use ibkr_agent_gateway::domain::order_intent::{DigestKey, IntentParts, OrderDigest, OrderIntent};
use ibkr_agent_gateway::domain::preview::{PreviewPolicy, ReferenceQuote};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use proptest::prelude::*;
use rust_decimal::Decimal;

use crate::strategies::decimal;

/// A deployment's digest key.
fn digest_key() -> DigestKey {
    DigestKey::derive(&ChainKey::new(&SecretBytes::new(vec![9; 32])).unwrap())
}

/// A positive decimal with up to `max_scale` places.
fn positive(max_scale: u32) -> impl Strategy<Value = Decimal> {
    (1i64..=10_000_000, 0..=max_scale).prop_map(|(mantissa, scale)| decimal(mantissa.into(), scale))
}

fn intent_strategy() -> impl Strategy<Value = OrderIntent> {
    (
        prop::sample::select(vec!["DU1234567", "DU7654320", "U7654321"]),
        1u64..=1_000_000,
        prop::bool::ANY,
        positive(4),
        prop::sample::select(vec![
            OrderType::Limit,
            OrderType::Stop,
            OrderType::StopLimit,
            OrderType::Market,
        ]),
        positive(6),
        positive(6),
        prop::sample::select(vec![
            TimeInForce::Day,
            TimeInForce::GoodTillCancelled,
            TimeInForce::ImmediateOrCancel,
        ]),
    )
        .prop_map(
            |(account, contract, buy, quantity, order_type, limit, stop, tif)| {
                let limit = matches!(order_type, OrderType::Limit | OrderType::StopLimit)
                    .then(|| Price::new(limit).unwrap());
                let stop = matches!(order_type, OrderType::Stop | OrderType::StopLimit)
                    .then(|| Price::new(stop).unwrap());
                OrderIntent::new(IntentParts {
                    account_id: AccountId::parse(account).unwrap(),
                    contract_id: ContractId::new(contract).unwrap(),
                    side: if buy { OrderSide::Buy } else { OrderSide::Sell },
                    quantity: Quantity::new(quantity),
                    order_type,
                    limit_price: limit,
                    stop_price: stop,
                    trailing: None,
                    time_in_force: tif,
                })
                .unwrap()
            },
        )
}

fn stock(multiplier: Decimal) -> Contract {
    Contract {
        id: ContractId::new(1).unwrap(),
        symbol: "X".into(),
        local_symbol: "X".into(),
        asset_class: AssetClass::Stock,
        currency: Currency::parse("USD").unwrap(),
        exchange: "SMART".into(),
        description: "X".into(),
        multiplier,
        option: None,
    }
}

proptest! {
    #[test]
    fn an_order_the_policy_accepts_is_within_every_limit(
        intent in intent_strategy(),
        max_quantity in positive(2),
        max_notional in positive(2),
        reference in positive(4),
        multiplier in prop::sample::select(vec![Decimal::ONE, Decimal::from(100)]),
        allow_fractional in prop::bool::ANY,
        allow_market in prop::bool::ANY,
    ) {
        let policy = PreviewPolicy {
            expiration_seconds: 300,
            allowed_asset_classes: BTreeSet::from([AssetClass::Stock]),
            max_quantity,
            max_notional: Some(max_notional),
            allow_fractional,
            allow_market_orders: allow_market,
        };
        let contract = stock(multiplier);
        let reference = Price::new(reference).unwrap();
        let quote = ReferenceQuote::from_prices([reference]).unwrap();
        if policy.check(&intent, &contract, Some(&quote)).is_ok() {
            let quantity = intent.quantity().value();
            prop_assert!(quantity <= max_quantity);
            prop_assert!(allow_fractional || quantity.fract().is_zero());
            prop_assert!(allow_market || intent.order_type() != OrderType::Market);
            let price = intent.committed_price().unwrap_or(reference).value();
            // An independent statement of the notional rule.
            let notional = quantity * price * multiplier;
            prop_assert!(notional <= max_notional, "{notional} > {max_notional}");
        }
    }

    #[test]
    fn the_encoding_keeps_every_decimal_exactly(intent in intent_strategy()) {
        let parsed = OrderIntent::from_canonical(&intent.canonical()).unwrap();
        prop_assert_eq!(parsed.quantity().value(), intent.quantity().value());
        prop_assert_eq!(parsed.limit_price(), intent.limit_price());
        prop_assert_eq!(parsed.stop_price(), intent.stop_price());
        prop_assert_eq!(OrderDigest::keyed(&digest_key(), &[parsed]), OrderDigest::keyed(&digest_key(), &[intent]));
    }

    #[test]
    fn any_change_to_an_approved_order_is_detected(
        intent in intent_strategy(),
        field in 0usize..6,
        bump in positive(3),
    ) {
        let mut parts = intent.parts();
        match field {
            0 => parts.quantity = Quantity::new(parts.quantity.value() + bump),
            1 => parts.side = match parts.side { OrderSide::Buy => OrderSide::Sell, OrderSide::Sell => OrderSide::Buy },
            2 => parts.contract_id = ContractId::new(parts.contract_id.value() + 1).unwrap(),
            3 => parts.time_in_force = if parts.time_in_force == TimeInForce::Day { TimeInForce::GoodTillCancelled } else { TimeInForce::Day },
            4 => parts.account_id = AccountId::parse(if parts.account_id.expose() == "DU1234567" { "DU7654320" } else { "DU1234567" }).unwrap(),
            _ => {
                parts.limit_price = parts.limit_price.map(|p| Price::new(p.value() + bump).unwrap());
                parts.stop_price = parts.stop_price.map(|p| Price::new(p.value() + bump).unwrap());
                if parts.limit_price.is_none() && parts.stop_price.is_none() {
                    parts.quantity = Quantity::new(parts.quantity.value() + bump);
                }
            }
        }
        let changed = OrderIntent::new(parts).unwrap();
        let approved = OrderDigest::keyed(&digest_key(), std::slice::from_ref(&intent));
        let now = DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z").unwrap().into();
        let approval = Approval {
            id: ApprovalId::parse("apr_1").unwrap(),
            preview_id: PreviewId::parse("prv_1").unwrap(),
            account_id: intent.account_id().clone(),
            digest: approved,
            status: ApprovalStatus::Approved,
            created_by: Actor::LocalOperator,
            approver: ApproverKind::Operator,
            surface: Surface::Cli,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(300),
            closed_at: None,
        };
        let result = approval.check_usable(now, changed.account_id(), &OrderDigest::keyed(&digest_key(), std::slice::from_ref(&changed)));
        prop_assert!(matches!(
            result,
            Err(ApprovalRefusal::DigestMismatch | ApprovalRefusal::AccountMismatch)
        ));
    }
}

/// One attempt in a generated sequence: which approval (by index) under which key.
#[derive(Debug, Clone)]
struct Attempt {
    approval: usize,
    key: usize,
}

fn attempts() -> impl Strategy<Value = Vec<Attempt>> {
    prop::collection::vec(
        (0usize..4, 0usize..5).prop_map(|(approval, key)| Attempt { approval, key }),
        1..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn each_approval_and_each_key_reach_the_writer_at_most_once(sequence in attempts()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let clock = Arc::new(FixedClock::new(
                DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z").unwrap().into(),
            ));
            let writer = Arc::new(LocalCandidateWriter::new());
            let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
                .clock(clock)
                .scopes(Scope::ALL.iter().copied().collect())
                .workflow_store(Arc::new(MemoryWorkflowStore::new()))
                .paper_writer(writer.clone())
                .paper_trading(PaperTradingSettings {
                    enabled: true,
                    allowed_accounts: BTreeSet::from([AccountId::parse("DU1234567").unwrap()]),
                    writer: PaperWriterKind::LocalCandidate,
                    recovery_grace_seconds: 120,
                })
                .build()
                .unwrap();
            let mut approvals = Vec::new();
            for index in 0..4 {
                let preview = gateway
                    .preview_order(&CallContext::mcp_stdio(), RawOrderPreview {
                        account: "DU1234567".into(),
                        contract_id: "265598".into(),
                        side: "BUY".into(),
                        quantity: (index + 1).to_string(),
                        order_type: "LMT".into(),
                        limit_price: Some("190".into()),
                        ..RawOrderPreview::default()
                    })
                    .await
                    .unwrap();
                let approval = gateway
                    .create_approval(&CallContext::sdk(), RawApprovalCreate {
                        preview_id: preview.preview_id,
                        ttl_seconds: None,
                    })
                    .await
                    .unwrap();
                approvals.push(approval.approval_id);
            }
            // The model: a key's first successful use binds it to its approval; an approval
            // backs one key; everything else is replayed or refused.
            let mut key_bound: BTreeMap<usize, (usize, String)> = BTreeMap::new();
            let mut approval_used: BTreeSet<usize> = BTreeSet::new();
            for attempt in &sequence {
                let result = gateway
                    .paper_submit(&CallContext::mcp_stdio(), RawPaperSubmit {
                        account: "DU1234567".into(),
                        approval_id: approvals[attempt.approval].clone(),
                        idempotency_key: format!("key-{}", attempt.key),
                    })
                    .await;
                match key_bound.get(&attempt.key) {
                    Some((approval, order_id)) if *approval == attempt.approval => {
                        let view = result.unwrap();
                        assert!(view.replayed);
                        assert_eq!(&view.orders[0].order_id, order_id);
                    }
                    Some(_) => {
                        assert_eq!(result.unwrap_err().code().as_str(), "ORDER_IDEMPOTENCY_CONFLICT");
                    }
                    None if approval_used.contains(&attempt.approval) => {
                        assert_eq!(result.unwrap_err().code().as_str(), "APPROVAL_CONSUMED");
                    }
                    None => {
                        let view = result.unwrap();
                        assert!(!view.replayed);
                        key_bound.insert(attempt.key, (attempt.approval, view.orders[0].order_id.clone()));
                        approval_used.insert(attempt.approval);
                    }
                }
            }
            assert_eq!(writer.submitted_count(), approval_used.len());
        });
    }
}

/// One step in a generated approval history over two previews.
#[derive(Debug, Clone)]
enum ApprovalStep {
    /// Approve preview `0` or `1` (with a short or a long lifetime).
    Approve { preview: usize, short: bool },
    /// Revoke the newest approval of a preview.
    Revoke { preview: usize },
    /// Submit with the newest approval of a preview under key `key`.
    Submit { preview: usize, key: usize },
    /// Let time pass.
    Wait { seconds: i64 },
}

fn approval_steps() -> impl Strategy<Value = Vec<ApprovalStep>> {
    prop::collection::vec(
        prop_oneof![
            (0usize..2, any::<bool>())
                .prop_map(|(preview, short)| ApprovalStep::Approve { preview, short }),
            (0usize..2).prop_map(|preview| ApprovalStep::Revoke { preview }),
            (0usize..2, 0usize..4).prop_map(|(preview, key)| ApprovalStep::Submit { preview, key }),
            (1i64..40).prop_map(|seconds| ApprovalStep::Wait { seconds }),
        ],
        1..24,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// However approvals are granted, revoked, left to expire and used, one preview places at
    /// most one order.
    #[test]
    fn a_preview_places_at_most_one_order(steps in approval_steps()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let clock = Arc::new(FixedClock::new(
                DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z").unwrap().into(),
            ));
            let writer = Arc::new(LocalCandidateWriter::new());
            let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
                .clock(clock.clone())
                .scopes(Scope::ALL.iter().copied().collect())
                .workflow_store(Arc::new(MemoryWorkflowStore::new()))
                .paper_writer(writer.clone())
                .paper_trading(PaperTradingSettings {
                    enabled: true,
                    allowed_accounts: BTreeSet::from([AccountId::parse("DU1234567").unwrap()]),
                    writer: PaperWriterKind::LocalCandidate,
                    recovery_grace_seconds: 120,
                })
                .build()
                .unwrap();
            let mut previews = Vec::new();
            for quantity in ["1", "2"] {
                let preview = gateway
                    .preview_order(&CallContext::mcp_stdio(), RawOrderPreview {
                        account: "DU1234567".into(),
                        contract_id: "265598".into(),
                        side: "BUY".into(),
                        quantity: quantity.into(),
                        order_type: "LMT".into(),
                        limit_price: Some("190".into()),
                        ..RawOrderPreview::default()
                    })
                    .await
                    .unwrap();
                previews.push(preview.preview_id);
            }
            let mut newest: [Option<String>; 2] = [None, None];
            let mut placed = [0usize; 2];
            for step in &steps {
                match step {
                    ApprovalStep::Approve { preview, short } => {
                        if let Ok(view) = gateway
                            .create_approval(&CallContext::sdk(), RawApprovalCreate {
                                preview_id: previews[*preview].clone(),
                                ttl_seconds: Some(if *short { 5 } else { 60 }),
                            })
                            .await
                        {
                            newest[*preview] = Some(view.approval_id);
                        }
                    }
                    ApprovalStep::Revoke { preview } => {
                        if let Some(id) = &newest[*preview] {
                            let _ = gateway.revoke_approval(&CallContext::sdk(), id).await;
                        }
                    }
                    ApprovalStep::Submit { preview, key } => {
                        if let Some(id) = &newest[*preview] {
                            let result = gateway
                                .paper_submit(&CallContext::mcp_stdio(), RawPaperSubmit {
                                    account: "DU1234567".into(),
                                    approval_id: id.clone(),
                                    idempotency_key: format!("p{preview}-key-{key}"),
                                })
                                .await;
                            if let Ok(view) = result
                                && !view.replayed
                            {
                                placed[*preview] += 1;
                            }
                        }
                    }
                    ApprovalStep::Wait { seconds } => clock.advance(chrono::Duration::seconds(*seconds)),
                }
            }
            assert!(placed.iter().all(|count| *count <= 1), "{placed:?}");
            assert_eq!(writer.submitted_count(), placed.iter().sum::<usize>());
        });
    }
}
