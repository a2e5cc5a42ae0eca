//! One fake world: on the fake backend with the local-candidate writer, the gateway built from
//! settings hands both adapters one order book, so a paper order placed through the gateway is
//! listed by `orders list` on its account, and its cancel shows there too. (Before, the writer
//! kept a book of its own and the fake listed only its seeded orders.)

use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::config::Settings;
use ibkr_agent_gateway::app::order_input::{RawPaperCancel, RawPaperSubmit};
use ibkr_agent_gateway::app::views::OrderView;
use ibkr_agent_gateway::app::wiring;

use crate::support::{approve, limit_buy};

const PAPER: &str = "DU1234567";
const OTHER_PAPER: &str = "DU7654320";

/// The gateway the CLI and MCP server would run for this configuration: fake broker, paper
/// trading on with the local-candidate writer, databases in `dir`. The audit key variable is
/// one no environment sets, so the development key file in `dir` is used.
fn fake_world_gateway(dir: &std::path::Path) -> Gateway {
    let yaml = format!(
        r#"
broker:
  backend: fake
auth:
  enabled_scopes:
    - ibkr:accounts:read
    - ibkr:orders:read
    - ibkr:marketdata:read
    - ibkr:orders:preview
    - ibkr:orders:paper:submit
    - ibkr:orders:paper:cancel
audit:
  sqlite_path: {audit}
  hmac_secret_env: IBKR_FAKE_WORLD_TEST_NEVER_SET
paper_trading:
  enabled: true
  allowed_accounts: [{PAPER}, {OTHER_PAPER}]
  writer: local_candidate
"#,
        audit = dir.join("audit.sqlite3").display(),
    );
    let settings = Settings::from_yaml(&yaml).unwrap();
    wiring::build(&settings).unwrap()
}

async fn orders_of(gateway: &Gateway, account: &str) -> Vec<OrderView> {
    gateway.orders(account).await.unwrap().orders
}

/// Id and status of each order, in list order. (`updated_at` of the seeded orders follows the
/// system clock, so whole views of two calls differ.)
fn ids_and_statuses(orders: &[OrderView]) -> Vec<(String, &'static str)> {
    orders
        .iter()
        .map(|order| (order.order_id.clone(), order.status))
        .collect()
}

#[tokio::test]
async fn a_paper_order_placed_on_the_fake_backend_is_listed_and_its_cancel_shows() {
    let dir = tempfile::tempdir().unwrap();
    let gateway = fake_world_gateway(dir.path());
    let agent = CallContext::mcp_stdio();
    let seeded = ids_and_statuses(&orders_of(&gateway, PAPER).await);
    let seeded_other = ids_and_statuses(&orders_of(&gateway, OTHER_PAPER).await);
    assert!(!seeded.is_empty());

    let preview = gateway
        .preview_order(&agent, limit_buy(PAPER, "265598", "10", "190"))
        .await
        .unwrap();
    // The preview (with its what-if) places nothing.
    assert_eq!(ids_and_statuses(&orders_of(&gateway, PAPER).await), seeded);
    let approval_id = approve(&gateway, preview.preview_id).await;
    let submitted = gateway
        .paper_submit(
            &agent,
            RawPaperSubmit {
                account: PAPER.into(),
                approval_id,
                idempotency_key: "fake-world-1".into(),
            },
        )
        .await
        .unwrap();
    let order_id = submitted.orders[0].order_id.clone();

    let listed = orders_of(&gateway, PAPER).await;
    assert_eq!(
        ids_and_statuses(&listed[..seeded.len()]),
        seeded,
        "the seeded orders stay"
    );
    assert_eq!(listed.len(), seeded.len() + 1, "{listed:#?}");
    let placed = &listed[seeded.len()];
    assert_eq!(placed.order_id, order_id);
    assert_eq!(
        (
            placed.contract_id,
            placed.symbol.as_str(),
            placed.side,
            placed.order_type,
            placed.quantity.to_string(),
            placed.limit_price.map(|price| price.to_string()),
            placed.status,
        ),
        (
            265_598,
            "AAPL",
            "BUY",
            "LMT",
            "10".to_owned(),
            Some("190".to_owned()),
            "Submitted"
        )
    );
    assert_eq!(
        ids_and_statuses(&orders_of(&gateway, OTHER_PAPER).await),
        seeded_other,
        "another account's list is unchanged"
    );

    gateway
        .paper_cancel(
            &agent,
            RawPaperCancel {
                account: PAPER.into(),
                order_id: order_id.clone(),
                idempotency_key: "fake-world-cancel-1".into(),
                approval_id: None,
            },
        )
        .await
        .unwrap();
    let after_cancel = orders_of(&gateway, PAPER).await;
    assert_eq!(after_cancel.len(), seeded.len() + 1);
    let cancelled = &after_cancel[seeded.len()];
    assert_eq!(
        (cancelled.order_id.as_str(), cancelled.status),
        (order_id.as_str(), "Cancelled")
    );
}
