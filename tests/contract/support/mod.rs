//! Fixtures shared by the contract tests, so each test module states only what it asserts:
//! the Client Portal gateway on wiremock and what is built on it ([`client_portal`]), the
//! pacing it must keep ([`pacing`]), the binary run against a configuration file ([`cli`]),
//! order inputs and approvals, and the macro that runs a shared contract suite per adapter.

pub(crate) mod cli;
pub(crate) mod client_portal;
pub(crate) mod pacing;

use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::approvals::RawApprovalCreate;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::order_input::RawOrderPreview;

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
