//! A Client Portal order-list double for pacing tests: `GET /iserver/account/orders` answers
//! with generated orders (each with its `order_ref`, the `cOID`) for the account the request
//! names, `GET /iserver/account/trades` with generated fills of the first of them, and both
//! record when every request arrived. [`OrdersDouble::spacing_violations`] measures, at the
//! double's end, whether two requests to one endpoint came closer than the documented
//! 1 request per 5 s (reference §1.5).
//!
//! Only those two endpoints are mounted: the session, `/iserver/accounts` and the contract
//! lookups the trades need come from [`super::client_portal::prime`] (or the test's own mocks).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::client_portal::{AAPL, BASE_PATH, api, json_response};

/// The two endpoints the double serves, as paths without the base path.
pub(crate) const ORDERS_PATH: &str = "/iserver/account/orders";
/// See [`ORDERS_PATH`].
pub(crate) const TRADES_PATH: &str = "/iserver/account/trades";

/// The documented limit of both endpoints: 1 request per 5 s.
pub(crate) const DOCUMENTED_SPACING: Duration = Duration::from_secs(5);

/// The broker order id of generated order `index`.
pub(crate) fn order_id(index: usize) -> String {
    (1_700_000_000 + index).to_string()
}

/// A change to a generated order or fill before it is sent: its index and its JSON.
type Edit = Arc<dyn Fn(usize, &mut Value) + Send + Sync>;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub(crate) struct Arrival {
    /// The path without the base path.
    pub(crate) path: String,
    /// The `accountId` query value, when the request had one.
    pub(crate) account: Option<String>,
    /// When it arrived at the double.
    pub(crate) at: Instant,
}

struct State {
    orders: usize,
    fills: usize,
    client_order_id_prefix: String,
    edit_order: Option<Edit>,
    arrivals: Vec<Arrival>,
}

/// The double; clones are handles to one state, so a test keeps one while the server answers
/// through another.
#[derive(Clone)]
pub(crate) struct OrdersDouble(Arc<Mutex<State>>);

impl OrdersDouble {
    /// A double listing `orders` working orders per account (`Submitted`, nothing filled,
    /// `cOID` `gen-<index>`), with no fills.
    pub(crate) fn new(orders: usize) -> Self {
        Self(Arc::new(Mutex::new(State {
            orders,
            fills: 0,
            client_order_id_prefix: "gen-".to_owned(),
            edit_order: None,
            arrivals: Vec::new(),
        })))
    }

    /// The same double, naming its orders' `cOID`s `<prefix><index>`.
    pub(crate) fn with_client_order_id_prefix(self, prefix: &str) -> Self {
        self.state().client_order_id_prefix = prefix.to_owned();
        self
    }

    /// The same double, listing one complete fill of each of the first `fills` orders (those
    /// orders then read `Filled` in the list).
    pub(crate) fn with_fills(self, fills: usize) -> Self {
        self.state().fills = fills;
        self
    }

    /// The same double, passing every generated order through `edit` (its index and its JSON)
    /// before sending it; edits see the default fields, fills included.
    pub(crate) fn with_order_edit(
        self,
        edit: impl Fn(usize, &mut Value) + Send + Sync + 'static,
    ) -> Self {
        self.state().edit_order = Some(Arc::new(edit));
        self
    }

    /// From now on, lists `orders` orders per account.
    pub(crate) fn set_orders(&self, orders: usize) {
        self.state().orders = orders;
    }

    /// The `cOID` of generated order `index`.
    pub(crate) fn client_order_id(&self, index: usize) -> String {
        format!("{}{index}", self.state().client_order_id_prefix)
    }

    /// Mounts both endpoints on `server`, ahead of any mock of the same paths mounted with the
    /// default priority (such as [`super::client_portal::prime`]'s).
    pub(crate) async fn mount(&self, server: &MockServer) {
        for endpoint in [ORDERS_PATH, TRADES_PATH] {
            Mock::given(method("GET"))
                .and(path(api(endpoint)))
                .respond_with(self.clone())
                .with_priority(1)
                .mount(server)
                .await;
        }
    }

    /// Every request so far, in arrival order.
    pub(crate) fn arrivals(&self) -> Vec<Arrival> {
        self.state().arrivals.clone()
    }

    /// When the requests to `endpoint` arrived, in arrival order.
    pub(crate) fn arrival_times(&self, endpoint: &str) -> Vec<Instant> {
        self.state()
            .arrivals
            .iter()
            .filter(|arrival| arrival.path == endpoint)
            .map(|arrival| arrival.at)
            .collect()
    }

    /// Every pair of consecutive requests to one endpoint that arrived closer than
    /// [`DOCUMENTED_SPACING`], described; empty when the double saw the limit kept.
    pub(crate) fn spacing_violations(&self) -> Vec<String> {
        spacing_violations(&self.arrivals(), DOCUMENTED_SPACING)
    }

    /// Fails the test when two requests to one endpoint arrived closer than
    /// [`DOCUMENTED_SPACING`].
    pub(crate) fn assert_documented_spacing(&self) {
        let violations = self.spacing_violations();
        assert!(
            violations.is_empty(),
            "requests closer than the documented 1 per 5 s:\n{}",
            violations.join("\n")
        );
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn order(state: &State, account: &str, index: usize) -> Value {
        let filled = index < state.fills;
        let mut order = json!({
            "acct": account, "account": account, "orderId": 1_700_000_000_u64 + index as u64,
            "conid": AAPL, "conidex": AAPL.to_string(), "ticker": "AAPL", "secType": "STK",
            "side": "BUY", "orderType": "Limit", "origOrderType": "LIMIT", "price": "190.00",
            "timeInForce": "DAY", "status": if filled { "Filled" } else { "Submitted" },
            "totalSize": 10.0, "filledQuantity": if filled { 10.0 } else { 0.0 },
            "remainingQuantity": if filled { 0.0 } else { 10.0 },
            "lastExecutionTime_r": 1_752_069_600_000_u64 + index as u64 * 1_000,
            "order_ref": format!("{}{index}", state.client_order_id_prefix),
        });
        if filled {
            order["avgPrice"] = json!("190.00");
        }
        if let Some(edit) = &state.edit_order {
            edit(index, &mut order);
        }
        order
    }

    fn fill(state: &State, account: &str, index: usize) -> Value {
        json!({
            "execution_id": format!("0000gen.{index:08}.01.01"), "symbol": "AAPL", "side": "B",
            "trade_time_r": 1_752_069_600_000_u64 + index as u64 * 1_000, "size": 10,
            "price": "190.00", "order_ref": format!("{}{index}", state.client_order_id_prefix),
            "commission": "1.00", "account": account, "accountCode": account, "conid": AAPL,
            "sec_type": "STK",
        })
    }
}

impl Respond for OrdersDouble {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let endpoint = request.url.path().trim_start_matches(BASE_PATH).to_owned();
        let account = request
            .url
            .query_pairs()
            .find(|(name, _)| name == "accountId")
            .map(|(_, value)| value.into_owned());
        let mut state = self.state();
        state.arrivals.push(Arrival {
            path: endpoint.clone(),
            account: account.clone(),
            at: Instant::now(),
        });
        // Without an account the gateway may answer for none (reference §6.1).
        let Some(account) = account else {
            return match endpoint.as_str() {
                ORDERS_PATH => json_response(json!({ "orders": [], "snapshot": true })),
                _ => json_response(json!([])),
            };
        };
        match endpoint.as_str() {
            ORDERS_PATH => {
                let orders: Vec<Value> = (0..state.orders)
                    .map(|index| Self::order(&state, &account, index))
                    .collect();
                json_response(json!({ "orders": orders, "snapshot": true }))
            }
            TRADES_PATH => {
                let fills: Vec<Value> = (0..state.fills.min(state.orders))
                    .map(|index| Self::fill(&state, &account, index))
                    .collect();
                json_response(Value::Array(fills))
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

/// Every pair of consecutive arrivals at one path closer than `spacing`, described.
pub(crate) fn spacing_violations(arrivals: &[Arrival], spacing: Duration) -> Vec<String> {
    let mut by_path: BTreeMap<&str, Vec<Instant>> = BTreeMap::new();
    for arrival in arrivals {
        by_path.entry(&arrival.path).or_default().push(arrival.at);
    }
    let mut violations = Vec::new();
    for (endpoint, mut times) in by_path {
        times.sort();
        for pair in times.windows(2) {
            let gap = pair[1].duration_since(pair[0]);
            if gap < spacing {
                violations.push(format!("{endpoint}: two requests {gap:?} apart"));
            }
        }
    }
    violations
}
