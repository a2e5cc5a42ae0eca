//! The library facade: calls through `Gateway` are audited from the `sdk` surface, scope
//! denials are refused before the broker and recorded, and an audit failure withholds results.
//! Any registered use case runs through the generic entry point; `Gateway::start` runs
//! start-up recovery once.

use std::sync::Arc;

use chrono::DateTime;
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::operation::RawContractQuery;
use ibkr_agent_gateway::app::use_cases::inputs::AccountInput;
use ibkr_agent_gateway::app::use_cases::reads::PositionsList;
use ibkr_agent_gateway::app::use_cases::{self, UseCase};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use ibkr_agent_gateway::domain::scope::{Scope, ScopeSet};
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::workflow_store::WorkflowStore;

fn gateway(scopes: ScopeSet) -> (Gateway, Arc<MemoryAuditLog>) {
    crate::support::fake_gateway(42, scopes)
}

#[tokio::test]
async fn library_calls_are_audited_from_the_sdk_surface() {
    let (gateway, audit) = gateway(ScopeSet::read_only_defaults());
    let positions = gateway.positions("DU1234567").await.unwrap();
    assert!(!positions.positions.is_empty());
    gateway
        .resolve_contract(RawContractQuery {
            query: "VOD".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let records = audit.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].columns.surface, "sdk");
    assert_eq!(records[0].columns.operation, "positions list");
    assert_eq!(
        records[0].columns.occurred_at,
        "2026-11-27T15:30:00.000000Z"
    );
    assert!(records[0].columns.account_id_hash.is_some());
    assert!(!records[0].columns.metadata.contains("1234567"));
    assert_eq!(records[1].columns.status, "refused");
    let report = gateway.audit_verify(Default::default()).await.unwrap();
    assert!(report.chain_valid);
}

#[tokio::test]
async fn a_missing_scope_is_refused_before_the_broker_and_recorded() {
    let (gateway, audit) = gateway([Scope::HealthRead].into_iter().collect());
    let error = gateway.accounts().await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuthMissingScope);
    let records = audit.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].columns.status, "denied_scope");
    assert_eq!(records[0].columns.decision, "deny");
}

#[tokio::test]
async fn an_audit_failure_withholds_the_result() {
    let (gateway, audit) = gateway(ScopeSet::read_only_defaults());
    audit.set_failing(true);
    let error = gateway.positions("DU1234567").await.unwrap_err();
    assert_eq!(error.code(), ErrorCode::AuditWriteFailed);
    audit.set_failing(false);
    gateway.health().await.unwrap();
    assert_eq!(audit.records().len(), 1, "the failed append left no row");
    assert_eq!(audit.records()[0].columns.sequence, 1);
}

#[tokio::test]
async fn any_use_case_runs_by_type_through_the_one_pipeline() {
    let (gateway, audit) = gateway(ScopeSet::read_only_defaults());
    let typed = gateway
        .run::<PositionsList>(AccountInput::new("DU1234567"))
        .await
        .unwrap();
    let method = gateway.positions("DU1234567").await.unwrap();
    assert_eq!(
        serde_json::to_value(&typed).unwrap(),
        serde_json::to_value(&method).unwrap()
    );
    let records = audit.records();
    assert_eq!(records.len(), 2);
    // The same call, recorded the same way, whichever entry point ran it.
    let (generic, typed_method) = (&records[0].columns, &records[1].columns);
    assert_eq!(generic.operation, typed_method.operation);
    assert_eq!(generic.scope, typed_method.scope);
    assert_eq!(generic.status, typed_method.status);
    assert_eq!(generic.metadata, typed_method.metadata);
    assert_eq!(generic.input_hash, typed_method.input_hash);
    assert_eq!(generic.output_hash, typed_method.output_hash);
    assert_eq!(records[0].columns.operation, PositionsList::DEFINITION.name);
    // The registry knows it by its stable name and its tool name.
    let entry = use_cases::by_name("positions list").unwrap();
    assert_eq!(entry.definition().tool, "ibkr_positions_list");
    assert_eq!(entry.definition().scope, Scope::PositionsRead);
}

#[tokio::test]
async fn start_runs_start_up_recovery_once_per_gateway() {
    let secret = SecretBytes::new(vec![42; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let clock = Arc::new(FixedClock::new(
        DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
            .unwrap()
            .into(),
    ));
    let store = Arc::new(MemoryWorkflowStore::new());
    // A cancel a crashed run left pending long ago.
    let record = crate::support::stale_pending_cancel("DU1234567");
    store.begin(&record).await.unwrap();
    let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
        .clock(clock)
        .key(secret)
        .audit_log(audit.clone())
        .workflow_store(store.clone())
        .build()
        .unwrap();
    assert!(!gateway.is_started());
    gateway.start().await;
    assert!(gateway.is_started());
    let passes = |audit: &MemoryAuditLog| {
        audit
            .records()
            .iter()
            .filter(|record| record.columns.operation == "orders recover")
            .count()
    };
    assert_eq!(passes(&audit), 1, "start ran recovery");
    assert!(store.pending().await.unwrap().is_empty());
    // Again, and from a clone (another front end): nothing runs twice.
    gateway.start().await;
    gateway.clone().start().await;
    assert_eq!(passes(&audit), 1);
}
