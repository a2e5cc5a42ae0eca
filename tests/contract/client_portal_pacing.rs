//! Pacing and session identity on a wiremock gateway: arrival times recorded at the receiver
//! under jittered answers, 429 handling per endpoint and for the penalty box, and pre-flights
//! tied to the broker session (a new login, `Please query … first`, an empty portfolio right
//! after a login).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ibkr_agent_gateway::adapters::outbound::client_portal::ClientPortalPacing;
use ibkr_agent_gateway::domain::session::SessionState;
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use serde_json::{Value, json};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::client_portal::{
    AAPL, BASE_PATH, PAPER, SecdefCatalog, account, api, broker, broker_with, catalog, config,
    conid, count, fixture, json_response, position_items, prime, received_paths,
};
use crate::support::pacing::{Arrivals, assert_within_documented_limits};

/// The documented gateway's answers, each after a jittered delay, every arrival recorded.
struct JitteredGateway {
    arrivals: Arrivals,
    sequence: AtomicUsize,
    snapshot: Value,
    catalog: SecdefCatalog,
}

impl Respond for JitteredGateway {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        self.arrivals.record(request);
        // A deterministic spread of 0 to 90 ms: answers come back out of step, so callers
        // queue and release in an irregular rhythm.
        let step = self.sequence.fetch_add(1, Ordering::SeqCst);
        let delay = Duration::from_millis(((step * 37) % 10 * 10) as u64);
        let path = request.url.path().trim_start_matches(BASE_PATH);
        let answer = match path {
            "/tickle" => json_response(fixture("tickle_usable.json")),
            "/iserver/accounts" => json_response(fixture("iserver_accounts.json")),
            "/portfolio/accounts" => json_response(fixture("portfolio_accounts.json")),
            "/iserver/marketdata/snapshot" => json_response(json!([self.snapshot.clone()])),
            "/iserver/account/orders" => json_response(fixture(&format!("orders_{PAPER}.json"))),
            "/trsrv/secdef" => self.catalog.respond(request),
            _ => ResponseTemplate::new(404),
        };
        answer.set_delay(delay)
    }
}

// -------------------------------------------------------------------------------------------
// Item 1: headroom at the receiver
// -------------------------------------------------------------------------------------------

/// Paused time does not mix with real sockets, so this runs in real time under the documented
/// limits; it asserts only on the receiver's clock, never on how fast the adapter was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jittered_arrivals_never_exceed_a_documented_window_at_the_gateway() {
    let server = MockServer::start().await;
    let arrivals = Arrivals::default();
    Mock::given(any())
        .respond_with(JitteredGateway {
            arrivals: arrivals.clone(),
            sequence: AtomicUsize::new(0),
            snapshot: fixture("snapshot_values.json")[AAPL.to_string()].clone(),
            catalog: catalog(),
        })
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.pacing = ClientPortalPacing {
        max_wait: Duration::from_secs(30),
        ..ClientPortalPacing::documented()
    };
    let broker = Arc::new(broker_with(config));
    broker.contract(conid(AAPL)).await.unwrap();

    let mut burst = tokio::task::JoinSet::new();
    for index in 0..36 {
        let broker = Arc::clone(&broker);
        burst.spawn(async move {
            match index % 12 {
                // The keepalive competes for the same global slots.
                0 => broker.keepalive().await.map(|_| ()),
                1 if index < 24 => broker.live_orders(&account(PAPER)).await.map(|_| ()),
                _ => broker.quote_snapshot(conid(AAPL)).await.map(|_| ()),
            }
        });
    }
    while let Some(outcome) = burst.join_next().await {
        outcome.unwrap().unwrap();
    }
    let arrivals = arrivals.all();
    let tickles = arrivals
        .iter()
        .filter(|(path, _)| path == "/tickle")
        .count();
    assert_eq!(tickles, 3, "every keepalive reached the gateway");
    assert!(arrivals.len() >= 36, "{}", arrivals.len());
    assert_within_documented_limits(&arrivals);
}

// -------------------------------------------------------------------------------------------
// Item 1: 429 handling
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rate_limit_backs_off_its_endpoint_and_leaves_the_others_usable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/accounts")))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    assert_eq!(
        broker.accounts().await.unwrap_err(),
        BrokerError::RateLimited {
            retry_after_seconds: 120
        }
    );
    let error = broker.accounts().await.unwrap_err();
    let BrokerError::RateLimited {
        retry_after_seconds,
    } = error
    else {
        panic!("{error:?}")
    };
    assert!((119..=120).contains(&retry_after_seconds));
    assert!(error.to_string().contains("retry after"), "{error}");
    // An endpoint that was never limited still answers (after the short pause).
    assert_eq!(
        broker.session_status().await.unwrap().state,
        SessionState::Usable
    );
    let paths = received_paths(&server).await;
    assert_eq!(count(&paths, "/iserver/accounts"), 1, "no retry: {paths:?}");
    assert_eq!(count(&paths, "/iserver/auth/status"), 1, "{paths:?}");
}

#[tokio::test]
async fn rate_limits_from_two_endpoints_mean_the_penalty_box_for_all() {
    let server = MockServer::start().await;
    for suffix in ["/iserver/accounts", "/trsrv/secdef"] {
        Mock::given(method("GET"))
            .and(path(api(suffix)))
            .respond_with(ResponseTemplate::new(429))
            .expect(1)
            .mount(&server)
            .await;
    }
    prime(&server).await;
    let broker = broker(&server);
    assert_eq!(
        broker.accounts().await.unwrap_err(),
        BrokerError::RateLimited {
            retry_after_seconds: 60
        },
        "the endpoint's own back-off"
    );
    assert_eq!(
        broker.contract(conid(AAPL)).await.unwrap_err(),
        BrokerError::RateLimited {
            retry_after_seconds: 600
        },
        "the documented ten-minute penalty box"
    );
    let before = received_paths(&server).await.len();
    for error in [
        broker.session_status().await.unwrap_err(),
        broker.keepalive().await.unwrap_err(),
    ] {
        assert!(
            matches!(error, BrokerError::RateLimited { retry_after_seconds } if retry_after_seconds > 590),
            "{error:?}"
        );
    }
    assert_eq!(
        received_paths(&server).await.len(),
        before,
        "refused without reaching the gateway"
    );
    server.verify().await;
}

// -------------------------------------------------------------------------------------------
// Item 5: pre-flights tied to the broker session
// -------------------------------------------------------------------------------------------

/// `/tickle` answering with the session token `first` once, then `second`.
async fn mount_login_change(server: &MockServer, first: &str, second: &str) {
    let mut before = fixture("tickle_usable.json");
    before["session"] = json!(first);
    let mut after = fixture("tickle_usable.json");
    after["session"] = json!(second);
    Mock::given(method("POST"))
        .and(path(api("/tickle")))
        .respond_with(json_response(before))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("/tickle")))
        .respond_with(json_response(after))
        .with_priority(2)
        .mount(server)
        .await;
}

/// Answers the positions page from a script, one entry per call, the last one repeated.
struct ScriptedPositions(Vec<Value>, AtomicUsize);

impl Respond for ScriptedPositions {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let call = self.1.fetch_add(1, Ordering::SeqCst);
        json_response(self.0[call.min(self.0.len() - 1)].clone())
    }
}

fn positions_path() -> String {
    format!("/portfolio/{PAPER}/positions/0")
}

#[tokio::test]
async fn a_new_login_between_two_position_reads_redoes_the_preflight() {
    let server = MockServer::start().await;
    mount_login_change(
        &server,
        "1111111111111111aaaaaaaaaaaaaaaa",
        "2222222222222222bbbbbbbbbbbbbbbb",
    )
    .await;
    prime(&server).await;
    let broker = broker(&server);
    broker.keepalive().await.unwrap();
    assert_eq!(broker.positions(&account(PAPER)).await.unwrap().len(), 3);
    // The operator logs in again at the gateway; the keepalive sees a new session.
    broker.keepalive().await.unwrap();
    assert_eq!(broker.positions(&account(PAPER)).await.unwrap().len(), 3);
    let paths = received_paths(&server).await;
    let positions = positions_path();
    let expected = [
        "/tickle",
        "/portfolio/accounts",
        positions.as_str(),
        "/tickle",
        "/portfolio/accounts",
        positions.as_str(),
    ];
    assert_eq!(paths, expected);
}

#[tokio::test]
async fn the_same_session_keeps_its_preflight() {
    let server = MockServer::start().await;
    prime(&server).await;
    let broker = broker(&server);
    broker.keepalive().await.unwrap();
    broker.positions(&account(PAPER)).await.unwrap();
    broker.keepalive().await.unwrap();
    broker.positions(&account(PAPER)).await.unwrap();
    let paths = received_paths(&server).await;
    assert_eq!(count(&paths, "/portfolio/accounts"), 1, "{paths:?}");
}

#[tokio::test]
async fn query_portfolio_accounts_first_redoes_the_preflight_and_retries_once() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api(&positions_path())))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({ "error": "Bad Request: Please query /portfolio/accounts first", "statusCode": 400 }),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    assert_eq!(broker.positions(&account(PAPER)).await.unwrap().len(), 3);
    let paths = received_paths(&server).await;
    let positions = positions_path();
    assert_eq!(
        paths,
        [
            "/portfolio/accounts",
            positions.as_str(),
            "/portfolio/accounts",
            positions.as_str()
        ]
    );
}

#[tokio::test]
async fn a_second_query_first_answer_is_not_retried_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api(&positions_path())))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({ "error": "Bad Request: Please query /portfolio/accounts first", "statusCode": 400 }),
        ))
        .expect(2)
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    assert!(broker.positions(&account(PAPER)).await.is_err());
    server.verify().await;
}

#[tokio::test]
async fn an_empty_portfolio_right_after_a_new_login_is_read_again() {
    let server = MockServer::start().await;
    mount_login_change(
        &server,
        "3333333333333333cccccccccccccccc",
        "4444444444444444dddddddddddddddd",
    )
    .await;
    let four = position_items(700_001, 4, Some(100));
    Mock::given(method("GET"))
        .and(path(api(&positions_path())))
        .respond_with(ScriptedPositions(
            vec![four.clone(), json!([]), four],
            AtomicUsize::new(0),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let mut config = config(&server);
    config.pacing = crate::support::client_portal::no_pacing();
    config.empty_portfolio_recheck_pause = Duration::from_millis(20);
    let broker = broker_with(config);
    broker.keepalive().await.unwrap();
    assert_eq!(broker.positions(&account(PAPER)).await.unwrap().len(), 4);
    broker.keepalive().await.unwrap();
    assert_eq!(
        broker.positions(&account(PAPER)).await.unwrap().len(),
        4,
        "the empty answer right after the login is not believed"
    );
    let paths = received_paths(&server).await;
    assert_eq!(count(&paths, "/portfolio/accounts"), 2, "{paths:?}");
    assert_eq!(count(&paths, &positions_path()), 3, "{paths:?}");
}

#[tokio::test]
async fn an_empty_portfolio_after_a_login_the_keepalive_missed_redoes_the_preflight() {
    let server = MockServer::start().await;
    mount_login_change(
        &server,
        "5555555555555555eeeeeeeeeeeeeeee",
        "6666666666666666ffffffffffffffff",
    )
    .await;
    let four = position_items(700_001, 4, Some(100));
    // After the new login the gateway answers empty until the pre-flight is redone.
    Mock::given(method("GET"))
        .and(path(api(&positions_path())))
        .respond_with(ScriptedPositions(
            vec![four.clone(), json!([]), four],
            AtomicUsize::new(0),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    broker.keepalive().await.unwrap();
    assert_eq!(broker.positions(&account(PAPER)).await.unwrap().len(), 4);
    // The operator logs in again; no keepalive runs before the next read.
    assert_eq!(broker.positions(&account(PAPER)).await.unwrap().len(), 4);
    let paths = received_paths(&server).await;
    let positions = positions_path();
    assert_eq!(
        paths,
        [
            "/tickle",
            "/portfolio/accounts",
            positions.as_str(),
            positions.as_str(),
            "/tickle",
            "/portfolio/accounts",
            positions.as_str(),
        ]
    );
}
