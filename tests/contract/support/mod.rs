//! Fixtures shared by the contract tests, so each test module states only what it asserts:
//! the Client Portal gateway on wiremock and what is built on it ([`client_portal`]), the
//! pacing it must keep ([`pacing`]), the binary run against a configuration file ([`cli`]),
//! order inputs and approvals, an in-process MCP client, and the macro that runs a shared
//! contract suite per adapter.

pub(crate) mod cli;
pub(crate) mod client_portal;
pub(crate) mod orders_double;
pub(crate) mod pacing;
pub(crate) mod tokens;

use std::sync::Arc;

use chrono::DateTime;
use ibkr_agent_gateway::adapters::inbound::mcp::McpServer;
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::order_input::RawOrderPreview;
use ibkr_agent_gateway::app::wiring::GatewayBuilder;
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::idempotency::{
    Fingerprint, IdempotencyRecord, IdempotencyState, WriteOperation,
};
use ibkr_agent_gateway::domain::ids::{AccountId, IdempotencyKey};
use ibkr_agent_gateway::domain::scope::ScopeSet;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use rmcp::ServiceExt;
use rmcp::model::ClientConfig;
use rmcp::service::{RoleClient, RunningService};

/// An MCP client connected to `server` in process, over a 1 MiB duplex pipe.
pub(crate) async fn in_process_client(
    server: McpServer,
) -> RunningService<RoleClient, ClientConfig> {
    let (server_end, client_end) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_end).await {
            let _ = running.waiting().await;
        }
    });
    ClientConfig::default().serve(client_end).await.unwrap()
}

/// A gateway builder on the fake broker at a fixed clock (2026-11-27 15:30 UTC), with an
/// in-memory audit log keyed by 32 bytes of `key_byte`, granting `scopes`; the caller adds
/// what its tests need and builds.
pub(crate) fn fake_builder(
    key_byte: u8,
    scopes: ScopeSet,
) -> (GatewayBuilder, Arc<MemoryAuditLog>) {
    let secret = SecretBytes::new(vec![key_byte; 32]);
    let audit = Arc::new(MemoryAuditLog::new(ChainKey::new(&secret).unwrap()));
    let clock = Arc::new(FixedClock::new(
        DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
            .unwrap()
            .into(),
    ));
    let builder = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
        .clock(clock)
        .key(secret)
        .audit_log(audit.clone())
        .scopes(scopes);
    (builder, audit)
}

/// [`fake_builder`], built as is.
pub(crate) fn fake_gateway(key_byte: u8, scopes: ScopeSet) -> (Gateway, Arc<MemoryAuditLog>) {
    let (builder, audit) = fake_builder(key_byte, scopes);
    (builder.build().unwrap(), audit)
}

/// A paper cancel of `lc-1` under the key `left-pending` in `account`, left pending by a run
/// that crashed long ago (2020): any recovery grace is past, and no `cOID` can find it.
pub(crate) fn stale_pending_cancel(account: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        account_id: AccountId::parse(account).unwrap(),
        operation: WriteOperation::PaperCancel,
        key: IdempotencyKey::parse("left-pending").unwrap(),
        fingerprint: Fingerprint::of(&["paper_cancel", "lc-1"]),
        approval_id: None,
        state: IdempotencyState::Pending,
        outcome: None,
        started_at: DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
            .unwrap()
            .into(),
        finished_at: None,
    }
}

/// The preview input of a day limit buy of `quantity` of `contract_id` at `limit` in `account`.
pub(crate) fn limit_buy(
    account: &str,
    contract_id: &str,
    quantity: &str,
    limit: &str,
) -> RawOrderPreview {
    RawOrderPreview {
        account: account.into(),
        contract_id: contract_id.into(),
        side: "BUY".into(),
        quantity: quantity.into(),
        order_type: "LMT".into(),
        limit_price: Some(limit.into()),
        ..RawOrderPreview::default()
    }
}

/// The operator approves `preview_id` at the CLI with the default lifetime; returns the
/// approval id.
pub(crate) async fn approve(gateway: &Gateway, preview_id: String) -> String {
    gateway
        .create_approval(
            &CallContext::sdk(),
            RawApprovalCreate {
                preview_id,
                ttl_seconds: None,
            },
        )
        .await
        .unwrap()
        .approval_id
}

/// Declares one `#[tokio::test]` per expectation of a shared contract suite, for one adapter:
/// `contract_suite!(adapter => first, second)` becomes `mod adapter` with a test `first` that
/// builds the fixture with `adapter().await` and runs `first(&fixture).await` on it, and so on.
macro_rules! contract_suite {
    ($adapter:ident => $($expectation:ident),+ $(,)?) => {
        mod $adapter {
            $(
                #[tokio::test]
                async fn $expectation() {
                    let fixture = super::$adapter().await;
                    super::$expectation(&fixture).await;
                }
            )+
        }
    };
}

pub(crate) use contract_suite;
