//! The Client Portal Gateway as the tests see it: a wiremock server on 127.0.0.1 that answers
//! with fixtures written from the reference's documented shapes (`fixtures/client_portal/*.json`;
//! invented values, paper-style account ids only), and the adapters, writers and paper-trading
//! gateways built on it.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ibkr_agent_gateway::adapters::outbound::client_portal::{
    ClientPortalBroker, ClientPortalConfig, ClientPortalOrderWriter, ClientPortalPacing,
    DEFAULT_CONFIRMABLE_MESSAGE_IDS,
};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::memory_workflow::MemoryWorkflowStore;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::config::{PaperTradingSettings, PaperWriterKind};
use ibkr_agent_gateway::domain::ids::{AccountId, ContractId};
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::ports::broker_reader::BrokerReader;
use serde_json::{Value, json};
use url::Url;
use wiremock::matchers::{any, body_json, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// The time the primed gateway's data is stamped against.
pub(crate) const NOW: &str = "2025-07-09T16:00:00Z";
/// The paper account with positions, orders and fills.
pub(crate) const PAPER: &str = "DU1234567";
/// A second paper account, in EUR, with cash only.
pub(crate) const PAPER_EUR: &str = "DU7654320";
/// APPLE INC on NASDAQ: a live quote.
pub(crate) const AAPL: u64 = 265_598;
/// AAPL Oct17'25 210 call: a quote with greeks.
pub(crate) const AAPL_CALL: u64 = 781_234_561;
/// VODAFONE on LSE: a delayed quote.
pub(crate) const VOD_LSE: u64 = 8_894_117;
/// The E-mini future: a quote last updated three hours before [`NOW`].
pub(crate) const ES_STALE: u64 = 495_512_563;
/// A pink-sheet stock without market data.
pub(crate) const NO_DATA: u64 = 431_926_001;
/// A conid the gateway does not know.
pub(crate) const UNKNOWN_CONID: u64 = 999_999_999;

/// The working AAPL limit order of the fixtures, placed as `strat-a-0001`.
pub(crate) const WORKING: &str = "1584220473";

pub(crate) const BASE_PATH: &str = "/v1/api";

pub(crate) fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) fn fixture(name: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/contract/fixtures/client_portal")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

pub(crate) fn api(suffix: &str) -> String {
    format!("{BASE_PATH}{suffix}")
}

pub(crate) fn json_response(value: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(value)
}

pub(crate) fn conid(value: u64) -> ContractId {
    ContractId::new(value).unwrap()
}

pub(crate) fn account(raw: &str) -> AccountId {
    AccountId::parse(raw).unwrap()
}

/// No pacing at all, for tests that are not about pacing.
pub(crate) fn no_pacing() -> ClientPortalPacing {
    ClientPortalPacing {
        global_interval: Duration::ZERO,
        endpoint_intervals: Vec::new(),
        history_concurrency: 5,
        max_wait: Duration::from_secs(10),
        default_penalty: Duration::from_secs(60),
    }
}

pub(crate) fn config(server: &MockServer) -> ClientPortalConfig {
    let mut config =
        ClientPortalConfig::new(Url::parse(&format!("{}{BASE_PATH}", server.uri())).unwrap());
    config.request_timeout = Duration::from_secs(5);
    config.snapshot_retry_pause = Duration::from_millis(20);
    config
}

pub(crate) fn broker_with(config: ClientPortalConfig) -> ClientPortalBroker {
    ClientPortalBroker::new(config, Arc::new(FixedClock::new(now()))).unwrap()
}

/// A broker on `server` without pacing.
pub(crate) fn broker(server: &MockServer) -> ClientPortalBroker {
    broker_with(unpaced_config(server))
}

// -------------------------------------------------------------------------------------------
// Responders that behave like the documented gateway
// -------------------------------------------------------------------------------------------

fn query_value(request: &Request, key: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}

/// `/trsrv/secdef?conids=…`: the catalog entries of the asked conids, 204 when none is known.
pub(crate) struct SecdefCatalog(Vec<Value>);

impl Respond for SecdefCatalog {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let asked: Vec<u64> = query_value(request, "conids")
            .unwrap_or_default()
            .split(',')
            .filter_map(|raw| raw.parse().ok())
            .collect();
        let found: Vec<Value> = self
            .0
            .iter()
            .filter(|item| item["conid"].as_u64().is_some_and(|id| asked.contains(&id)))
            .cloned()
            .collect();
        if found.is_empty() {
            ResponseTemplate::new(204)
        } else {
            json_response(json!({ "secdef": found }))
        }
    }
}

pub(crate) fn catalog() -> SecdefCatalog {
    let Value::Array(items) = fixture("trsrv_secdef_catalog.json")["secdef"].take() else {
        panic!("the catalog fixture holds a list")
    };
    SecdefCatalog(items)
}

/// `/iserver/marketdata/snapshot`: the first call for a conid opens its stream and answers
/// with identifiers only; later calls answer with the values.
struct TwoCallSnapshot {
    values: serde_json::Map<String, Value>,
    opened: Mutex<HashSet<String>>,
}

impl TwoCallSnapshot {
    fn new(values: Value) -> Self {
        let Value::Object(values) = values else {
            panic!("snapshot values are keyed by conid")
        };
        Self {
            values,
            opened: Mutex::new(HashSet::new()),
        }
    }
}

impl Respond for TwoCallSnapshot {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let conids = query_value(request, "conids").unwrap_or_default();
        let mut opened = self.opened.lock().unwrap();
        let answer: Vec<Value> = conids
            .split(',')
            .map(|conid| {
                let identifiers =
                    json!({ "conid": conid.parse::<u64>().unwrap_or(0), "conidEx": conid });
                if opened.insert(conid.to_owned()) {
                    identifiers
                } else {
                    self.values.get(conid).cloned().unwrap_or(identifiers)
                }
            })
            .collect();
        json_response(Value::Array(answer))
    }
}

// -------------------------------------------------------------------------------------------
// The primed gateway
// -------------------------------------------------------------------------------------------

async fn mount_get(server: &MockServer, suffix: &str, answer: ResponseTemplate) {
    Mock::given(method("GET"))
        .and(path(api(suffix)))
        .respond_with(answer)
        .mount(server)
        .await;
}

/// Mounts the documented gateway with the fixture world on `server`.
pub(crate) async fn prime(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path(api("/iserver/auth/status")))
        .respond_with(json_response(fixture("auth_status_usable.json")))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("/tickle")))
        .respond_with(json_response(fixture("tickle_usable.json")))
        .mount(server)
        .await;
    mount_get(
        server,
        "/iserver/accounts",
        json_response(fixture("iserver_accounts.json")),
    )
    .await;
    mount_get(
        server,
        "/portfolio/accounts",
        json_response(fixture("portfolio_accounts.json")),
    )
    .await;
    for id in [PAPER, PAPER_EUR] {
        for what in ["summary", "ledger"] {
            let answer = json_response(fixture(&format!("{what}_{id}.json")));
            mount_get(server, &format!("/portfolio/{id}/{what}"), answer).await;
        }
        for (suffix, file) in [("orders", "orders"), ("trades", "trades")] {
            Mock::given(method("GET"))
                .and(path(api(&format!("/iserver/account/{suffix}"))))
                .and(query_param("accountId", id))
                .respond_with(json_response(fixture(&format!("{file}_{id}.json"))))
                .mount(server)
                .await;
        }
    }
    mount_get(
        server,
        &format!("/portfolio/{PAPER}/positions/0"),
        json_response(fixture(&format!("positions_{PAPER}_0.json"))),
    )
    .await;
    mount_get(
        server,
        &format!("/portfolio/{PAPER_EUR}/positions/0"),
        json_response(json!([])),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(api("/trsrv/secdef")))
        .respond_with(catalog())
        .mount(server)
        .await;
    for symbol in ["VOD", "AAPL"] {
        Mock::given(method("GET"))
            .and(path(api("/iserver/secdef/search")))
            .and(query_param("symbol", symbol))
            .respond_with(json_response(fixture(&format!("search_{symbol}.json"))))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(api("/iserver/secdef/search")))
        .and(query_param("symbol", "QXZQXZ NOSUCHTHING"))
        .and(query_param("name", "true"))
        .respond_with(json_response(json!([])))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(TwoCallSnapshot::new(fixture("snapshot_values.json")))
        .mount(server)
        .await;
    for (conid, period, bar) in [
        (AAPL, "1d", "1h"),
        (AAPL, "2h", "1min"),
        (AAPL, "5d", "15min"),
        (AAPL, "1y", "1w"),
        (AAPL_CALL, "1m", "1d"),
    ] {
        Mock::given(method("GET"))
            .and(path(api("/iserver/marketdata/history")))
            .and(query_param("conid", conid.to_string()))
            .and(query_param("period", period))
            .and(query_param("bar", bar))
            .respond_with(json_response(fixture(&format!(
                "history_{conid}_{period}_{bar}.json"
            ))))
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/history")))
        .and(query_param("conid", NO_DATA.to_string()))
        .respond_with(json_response(json!({ "error": "No data." })))
        .mount(server)
        .await;
}

/// A usable and a logged-out adapter on wiremock gateways that live for the rest of the test
/// process, for the shared contract suite.
pub(crate) struct PrimedGateway {
    pub(crate) reader: Arc<dyn BrokerReader>,
    pub(crate) logged_out: Arc<dyn BrokerReader>,
}

/// Starts the primed gateway and a gateway without a session (401 to everything). The servers
/// are leaked: the suite's `Fixture` holds only the readers, and each test process ends soon.
pub(crate) async fn primed_gateway() -> PrimedGateway {
    let server = MockServer::start().await;
    prime(&server).await;
    let logged_out_server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401))
        .mount(&logged_out_server)
        .await;
    // The documented pacing, so the suite also runs under the real limits.
    let reader = Arc::new(broker_with(config(&server)));
    let logged_out = Arc::new(broker_with(config(&logged_out_server)));
    Box::leak(Box::new(server));
    Box::leak(Box::new(logged_out_server));
    PrimedGateway { reader, logged_out }
}

pub(crate) async fn primed_server() -> MockServer {
    let server = MockServer::start().await;
    prime(&server).await;
    server
}

pub(crate) async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

/// Paths (without the base path) of the requests received, in arrival order.
pub(crate) async fn received_paths(server: &MockServer) -> Vec<String> {
    received(server)
        .await
        .iter()
        .map(|request| request.url.path().trim_start_matches(BASE_PATH).to_owned())
        .collect()
}

pub(crate) fn count(paths: &[String], wanted: &str) -> usize {
    paths.iter().filter(|path| *path == wanted).count()
}

pub(crate) fn position_of(paths: &[String], wanted: &str) -> usize {
    paths
        .iter()
        .position(|path| path == wanted)
        .unwrap_or_else(|| panic!("{wanted} was never requested: {paths:?}"))
}

/// `count` positions of the paper account shaped like its first fixture position, with conids
/// from `first_conid` up and `pageSize` as given (absent for `None`).
pub(crate) fn position_items(first_conid: u64, count: usize, page_size: Option<u64>) -> Value {
    let template = fixture(&format!("positions_{PAPER}_0.json"))[0].clone();
    let items: Vec<Value> = (0..count)
        .map(|index| {
            let mut item = template.clone();
            item["conid"] = json!(first_conid + index as u64);
            match page_size {
                Some(size) => item["pageSize"] = json!(size),
                None => {
                    item.as_object_mut().unwrap().remove("pageSize");
                }
            }
            item
        })
        .collect();
    Value::Array(items)
}

// -------------------------------------------------------------------------------------------
// Writers and paper-trading gateways
// -------------------------------------------------------------------------------------------

/// [`config`] without pacing, for tests that are not about pacing.
pub(crate) fn unpaced_config(server: &MockServer) -> ClientPortalConfig {
    let mut config = config(server);
    config.pacing = no_pacing();
    config
}

/// The prompts a Client Portal writer confirms by default.
pub(crate) fn default_confirmable() -> BTreeSet<String> {
    DEFAULT_CONFIRMABLE_MESSAGE_IDS
        .iter()
        .map(|id| (*id).to_owned())
        .collect()
}

/// A Client Portal writer on `server`: default confirmable prompts, no pacing.
pub(crate) fn writer(server: &MockServer) -> ClientPortalOrderWriter {
    broker(server).order_writer(default_confirmable())
}

/// The gateway's answer to a declined prompt.
pub(crate) fn not_confirmed() -> ResponseTemplate {
    json_response(json!({"error": "Order not confirmed "}))
}

/// Expects exactly one decline (`{"confirmed": false}`) of the prompt `reply_id` on `server`,
/// answered with `answer`.
pub(crate) async fn expect_one_decline(
    server: &MockServer,
    reply_id: &str,
    answer: ResponseTemplate,
) {
    Mock::given(method("POST"))
        .and(path(api(&format!("/iserver/reply/{reply_id}"))))
        .and(body_json(json!({"confirmed": false})))
        .respond_with(answer)
        .expect(1)
        .mount(server)
        .await;
}

/// Mounts the pre-flights: `/iserver/accounts`, then `/portfolio/accounts`.
pub(crate) async fn mount_preflights(server: &MockServer) {
    for (route, file) in [
        ("/iserver/accounts", "iserver_accounts.json"),
        ("/portfolio/accounts", "portfolio_accounts.json"),
    ] {
        mount_get(server, route, json_response(fixture(file))).await;
    }
}

/// Mounts the status of the [`WORKING`] order.
pub(crate) async fn mount_working_status(server: &MockServer) {
    mount_get(
        server,
        &format!("/iserver/account/order/status/{WORKING}"),
        json_response(fixture("order_status_1584220473.json")),
    )
    .await;
}

/// A gateway that answers what a paper preview needs: the pre-flights, the AAPL contract, its
/// quote and the what-if in [`PAPER`].
pub(crate) async fn preview_server() -> MockServer {
    let server = MockServer::start().await;
    mount_preflights(&server).await;
    let aapl: Vec<Value> = fixture("trsrv_secdef_catalog.json")["secdef"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["conid"] == AAPL)
        .cloned()
        .collect();
    mount_get(
        &server,
        "/trsrv/secdef",
        json_response(json!({ "secdef": aapl })),
    )
    .await;
    // The preview policy prices every order against the current quote.
    mount_get(
        &server,
        "/iserver/marketdata/snapshot",
        json_response(json!([fixture("snapshot_values.json")["265598"]])),
    )
    .await;
    Mock::given(method("POST"))
        .and(path(api(&format!(
            "/iserver/account/{PAPER}/orders/whatif"
        ))))
        .respond_with(json_response(fixture("whatif_DU1234567.json")))
        .mount(&server)
        .await;
    server
}

/// A library gateway on the Client Portal broker, with what a test inspects behind it.
pub(crate) struct PaperGateway {
    pub(crate) gateway: Gateway,
    pub(crate) store: Arc<MemoryWorkflowStore>,
    pub(crate) clock: Arc<FixedClock>,
}

/// A gateway on `server` without pacing: every scope granted, a memory workflow store, and
/// paper trading on for [`PAPER`] through the Client Portal writer.
pub(crate) fn paper_gateway(server: &MockServer) -> PaperGateway {
    let clock = Arc::new(FixedClock::new(now()));
    let broker = Arc::new(ClientPortalBroker::new(unpaced_config(server), clock.clone()).unwrap());
    let writer = broker.order_writer(default_confirmable());
    let store = Arc::new(MemoryWorkflowStore::new());
    let gateway = Gateway::builder(broker)
        .clock(clock.clone())
        .scopes(Scope::ALL.iter().copied().collect())
        .workflow_store(store.clone())
        .paper_writer(Arc::new(writer))
        .paper_trading(PaperTradingSettings {
            enabled: true,
            allowed_accounts: BTreeSet::from([AccountId::parse(PAPER).unwrap()]),
            writer: PaperWriterKind::ClientPortal,
            recovery_grace_seconds: 120,
        })
        .build()
        .unwrap();
    PaperGateway {
        gateway,
        store,
        clock,
    }
}
