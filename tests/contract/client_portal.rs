//! The Client Portal Gateway adapter against a wiremock gateway on 127.0.0.1: exact paths,
//! methods and query parameters, pre-flight ordering, the two-call snapshot, lenient numbers,
//! paging, every documented failure mapped at the seam, the TLS policy and pacing.
//!
//! The primed gateway (`support::client_portal::prime`) answers with fixtures written from the reference's
//! documented shapes (`fixtures/client_portal/*.json`; invented values, paper-style account
//! ids only). The shared `BrokerReader` contract suite runs against it from `broker_reader.rs`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ibkr_agent_gateway::adapters::outbound::client_portal::{
    ClientPortalBroker, ClientPortalConfig, ClientPortalPacing, ClientPortalSetupError,
};
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::domain::account::AccountMode;
use ibkr_agent_gateway::domain::instrument::ContractQuery;
use ibkr_agent_gateway::domain::market_data::{BarSize, BarsRequest, DataStatus, HistoryPeriod};
use ibkr_agent_gateway::domain::order::OrderType;
use ibkr_agent_gateway::domain::session::SessionState;
use ibkr_agent_gateway::ports::broker_reader::{BrokerError, BrokerReader};
use serde_json::json;
use url::Url;
use wiremock::matchers::{any, header, method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::client_portal::{
    AAPL, AAPL_CALL, BASE_PATH, ES_STALE, NO_DATA, PAPER, PAPER_EUR, UNKNOWN_CONID, VOD_LSE,
    account, api, broker, broker_with, config, conid, count, fixture, json_response, no_pacing,
    now, position_items, position_of, prime, primed_server, received, received_paths,
};

/// Answers with a fixed template and records when each request arrived.
#[derive(Clone)]
struct ArrivalLog {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    answer: ResponseTemplate,
}

impl Respond for ArrivalLog {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        self.answer.clone()
    }
}

fn query_of(request: &Request) -> BTreeMap<String, String> {
    request
        .url
        .query_pairs()
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

fn bars(contract: u64, period: &str, bar_size: BarSize) -> BarsRequest {
    BarsRequest::new(
        conid(contract),
        HistoryPeriod::parse(period).unwrap(),
        bar_size,
    )
    .unwrap()
}

// -------------------------------------------------------------------------------------------
// Paths, methods and query parameters
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_read_uses_the_documented_path_method_and_query() {
    let server = primed_server().await;
    let broker = broker(&server);
    let paper = account(PAPER);
    broker.session_status().await.unwrap();
    broker.keepalive().await.unwrap();
    broker.accounts().await.unwrap();
    broker.account_summary(&paper).await.unwrap();
    broker.positions(&paper).await.unwrap();
    broker
        .search_contracts(&ContractQuery::new("VOD").unwrap())
        .await
        .unwrap();
    broker.contract(conid(AAPL)).await.unwrap();
    broker.quote_snapshot(conid(AAPL_CALL)).await.unwrap();
    broker
        .historical_bars(&bars(AAPL, "1d", BarSize::OneHour))
        .await
        .unwrap();
    broker.live_orders(&paper).await.unwrap();
    broker.executions(&paper, None).await.unwrap();

    let mut seen: Vec<(String, String, BTreeMap<String, String>)> = received(&server)
        .await
        .iter()
        .map(|request| {
            (
                request.method.to_string(),
                request.url.path().trim_start_matches(BASE_PATH).to_owned(),
                query_of(request),
            )
        })
        .collect();
    seen.dedup();
    let query = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    };
    let greeks = "31,84,85,86,87,88,6509,7762,7308,7309,7310,7311,7633";
    let expected = [
        ("POST", "/iserver/auth/status".to_owned(), query(&[])),
        ("POST", "/tickle".to_owned(), query(&[])),
        ("GET", "/iserver/accounts".to_owned(), query(&[])),
        ("GET", "/portfolio/accounts".to_owned(), query(&[])),
        ("GET", format!("/portfolio/{PAPER}/summary"), query(&[])),
        ("GET", format!("/portfolio/{PAPER}/ledger"), query(&[])),
        ("GET", format!("/portfolio/{PAPER}/positions/0"), query(&[])),
        (
            "GET",
            "/iserver/secdef/search".to_owned(),
            query(&[("symbol", "VOD")]),
        ),
        (
            "GET",
            "/trsrv/secdef".to_owned(),
            query(&[("conids", "8894117,44652000")]),
        ),
        (
            "GET",
            "/trsrv/secdef".to_owned(),
            query(&[("conids", "265598")]),
        ),
        (
            "GET",
            "/trsrv/secdef".to_owned(),
            query(&[("conids", "781234561")]),
        ),
        (
            "GET",
            "/iserver/marketdata/snapshot".to_owned(),
            query(&[("conids", "781234561"), ("fields", greeks)]),
        ),
        (
            "GET",
            "/iserver/marketdata/history".to_owned(),
            query(&[("conid", "265598"), ("period", "1d"), ("bar", "1h")]),
        ),
        (
            "GET",
            "/iserver/account/orders".to_owned(),
            query(&[("accountId", PAPER)]),
        ),
        (
            "GET",
            "/iserver/account/trades".to_owned(),
            query(&[("accountId", PAPER), ("days", "7")]),
        ),
        // The fills' currencies: only the conid not yet cached is looked up.
        (
            "GET",
            "/trsrv/secdef".to_owned(),
            query(&[("conids", "756733")]),
        ),
    ];
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(verb, path, query)| (verb.to_owned(), path, query))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn empty_posts_send_a_zero_content_length() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("/tickle")))
        .and(header("content-length", "0"))
        .respond_with(json_response(fixture("tickle_usable.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("/iserver/auth/status")))
        .and(header("content-length", "0"))
        .respond_with(json_response(fixture("auth_status_usable.json")))
        .expect(1)
        .mount(&server)
        .await;
    let broker = broker(&server);
    assert_eq!(
        broker.keepalive().await.unwrap().state,
        SessionState::Usable
    );
    assert_eq!(
        broker.session_status().await.unwrap().state,
        SessionState::Usable
    );
    let request = &received(&server).await[0];
    assert!(
        request.headers.get("user-agent").is_some(),
        "a User-Agent is sent"
    );
    assert!(request.headers.get("cookie").is_none());
}

#[tokio::test]
async fn executions_ask_for_the_days_their_bound_needs() {
    let server = primed_server().await;
    let broker = broker(&server);
    let paper = account(PAPER);
    let since = now() - chrono::Duration::hours(26);
    let recent = broker.executions(&paper, Some(since)).await.unwrap();
    assert_eq!(recent.len(), 2, "the fill of three days ago is left out");
    let trades = received(&server).await;
    let request = trades
        .iter()
        .find(|request| request.url.path().ends_with("/iserver/account/trades"))
        .unwrap();
    assert_eq!(query_of(request).get("days").map(String::as_str), Some("2"));
}

// -------------------------------------------------------------------------------------------
// Pre-flight
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn preflight_calls_come_first_and_once_per_session() {
    let server = primed_server().await;
    let broker = broker(&server);
    broker.quote_snapshot(conid(AAPL)).await.unwrap();
    broker.positions(&account(PAPER)).await.unwrap();
    broker.quote_snapshot(conid(VOD_LSE)).await.unwrap();
    broker.account_summary(&account(PAPER_EUR)).await.unwrap();

    let paths = received_paths(&server).await;
    assert!(
        position_of(&paths, "/iserver/accounts")
            < position_of(&paths, "/iserver/marketdata/snapshot"),
        "{paths:?}"
    );
    assert!(
        position_of(&paths, "/portfolio/accounts")
            < position_of(&paths, &format!("/portfolio/{PAPER}/positions/0")),
        "{paths:?}"
    );
    assert_eq!(count(&paths, "/iserver/accounts"), 1, "once per session");
    assert_eq!(
        count(&paths, "/portfolio/accounts"),
        1,
        "cached for the session"
    );
}

#[tokio::test]
async fn preflight_runs_again_after_the_session_was_seen_lost() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("/iserver/auth/status")))
        .respond_with(json_response(
            json!({ "authenticated": false, "competing": false, "connected": true }),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    broker.quote_snapshot(conid(AAPL)).await.unwrap();
    let status = broker.session_status().await.unwrap();
    assert_eq!(status.state, SessionState::LoginRequired);
    // The person logs in again; the next read repeats the pre-flight.
    assert_eq!(
        broker.session_status().await.unwrap().state,
        SessionState::Usable
    );
    broker.quote_snapshot(conid(AAPL)).await.unwrap();
    let paths = received_paths(&server).await;
    assert_eq!(count(&paths, "/iserver/accounts"), 2, "{paths:?}");
}

#[tokio::test]
async fn a_renewed_session_is_preflighted_once_more() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({ "error": "Bad Request: Please query /accounts first", "statusCode": 400 }),
        ))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    let quote = broker.quote_snapshot(conid(AAPL)).await.unwrap();
    assert_eq!(quote.status, DataStatus::Live);
    let paths = received_paths(&server).await;
    assert_eq!(count(&paths, "/iserver/accounts"), 2, "{paths:?}");
    let second_preflight = paths
        .iter()
        .rposition(|path| path == "/iserver/accounts")
        .unwrap();
    assert_eq!(paths[second_preflight + 1], "/iserver/marketdata/snapshot");
}

// -------------------------------------------------------------------------------------------
// Snapshots and numbers
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_snapshot_takes_two_calls_and_the_stream_stays_open() {
    let server = primed_server().await;
    let broker = broker(&server);
    let quote = broker.quote_snapshot(conid(AAPL)).await.unwrap();
    assert_eq!(quote.bid.unwrap().to_string(), "212.40");
    let snapshots = |paths: &[String]| count(paths, "/iserver/marketdata/snapshot");
    assert_eq!(
        snapshots(&received_paths(&server).await),
        2,
        "identifiers first, then values"
    );
    broker.quote_snapshot(conid(AAPL)).await.unwrap();
    assert_eq!(
        snapshots(&received_paths(&server).await),
        3,
        "an open stream answers at once"
    );
}

#[tokio::test]
async fn a_snapshot_that_never_fills_in_is_refused_after_bounded_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(json_response(
            json!([{ "conid": AAPL, "conidEx": "265598" }]),
        ))
        .expect(3)
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    assert_eq!(
        broker.quote_snapshot(conid(AAPL)).await.unwrap_err(),
        BrokerError::MarketDataIncomplete {
            contract_id: conid(AAPL)
        }
    );
    server.verify().await;
}

#[tokio::test]
async fn numbers_are_read_leniently() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(json_response(json!([{
            "conid": AAPL, "conidEx": "265598", "_updated": now().timestamp_millis() - 1_000,
            "6509": "RpB", "31": "C189.20", "84": "189.10", "86": "189.30",
            "88": "1,300", "85": "12.5K", "87": "41.8M"
        }])))
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let quote = broker(&server).quote_snapshot(conid(AAPL)).await.unwrap();
    assert_eq!(quote.last.unwrap().to_string(), "189.20");
    assert_eq!(quote.bid_size.unwrap().to_string(), "1300");
    assert_eq!(
        quote.ask_size.unwrap().value(),
        rust_decimal::Decimal::from(12_500)
    );
    assert_eq!(
        quote.volume.unwrap().value(),
        rust_decimal::Decimal::from(41_800_000)
    );
}

#[tokio::test]
async fn quote_statuses_follow_the_availability_field_and_age() {
    let server = primed_server().await;
    let broker = broker(&server);
    let status = |quote: ibkr_agent_gateway::domain::market_data::Quote| quote.status;
    assert_eq!(
        status(broker.quote_snapshot(conid(AAPL)).await.unwrap()),
        DataStatus::Live
    );
    assert_eq!(
        status(broker.quote_snapshot(conid(VOD_LSE)).await.unwrap()),
        DataStatus::Delayed
    );
    assert_eq!(
        status(broker.quote_snapshot(conid(ES_STALE)).await.unwrap()),
        DataStatus::Stale
    );
    let option = broker.quote_snapshot(conid(AAPL_CALL)).await.unwrap();
    assert_eq!(
        option.greeks.unwrap().implied_volatility.to_string(),
        "0.246"
    );
    assert_eq!(
        broker.quote_snapshot(conid(NO_DATA)).await.unwrap_err(),
        BrokerError::MarketDataUnavailable {
            contract_id: conid(NO_DATA)
        }
    );
}

// -------------------------------------------------------------------------------------------
// Positions
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn positions_are_read_page_by_page_until_a_short_page() {
    let server = MockServer::start().await;
    for (page, first, count) in [(0, 1_000, 3), (1, 2_000, 3), (2, 3_000, 1)] {
        Mock::given(method("GET"))
            .and(path(api(&format!("/portfolio/{PAPER}/positions/{page}"))))
            .respond_with(json_response(position_items(first, count, Some(3))))
            .expect(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    prime(&server).await;
    let positions = broker(&server).positions(&account(PAPER)).await.unwrap();
    let conids: Vec<u64> = positions
        .iter()
        .map(|position| position.contract.id.value())
        .collect();
    assert_eq!(conids, [1_000, 1_001, 1_002, 2_000, 2_001, 2_002, 3_000]);
    server.verify().await;
    let paths = received_paths(&server).await;
    assert_eq!(count(&paths, &format!("/portfolio/{PAPER}/positions/3")), 0);
}

#[tokio::test]
async fn positions_without_a_page_size_are_read_to_an_empty_page_within_a_bound() {
    let server = MockServer::start().await;
    for (page, items) in [(0, position_items(1_000, 2, None)), (1, json!([]))] {
        Mock::given(method("GET"))
            .and(path(api(&format!("/portfolio/{PAPER}/positions/{page}"))))
            .respond_with(json_response(items))
            .with_priority(1)
            .mount(&server)
            .await;
    }
    prime(&server).await;
    assert_eq!(
        broker(&server)
            .positions(&account(PAPER))
            .await
            .unwrap()
            .len(),
        2
    );

    let endless = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex(format!(
            "^{BASE_PATH}/portfolio/{PAPER}/positions/[0-9]+$"
        )))
        .respond_with(json_response(position_items(1_000, 2, Some(2))))
        .expect(4)
        .with_priority(1)
        .mount(&endless)
        .await;
    prime(&endless).await;
    let mut config = config(&endless);
    config.pacing = no_pacing();
    config.max_position_pages = 4;
    let error = broker_with(config)
        .positions(&account(PAPER))
        .await
        .unwrap_err();
    assert_eq!(error.code().as_str(), "BROKER_RESPONSE_INVALID");
    endless.verify().await;
}

// -------------------------------------------------------------------------------------------
// Failures at the seam
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn unauthorized_means_a_manual_login_at_the_gateway() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401))
        .mount(&server)
        .await;
    let broker = broker(&server);
    let login_page = format!("{}/", server.uri());
    assert_eq!(
        broker.accounts().await.unwrap_err(),
        BrokerError::SessionRequired {
            login_url: Some(login_page.clone())
        }
    );
    let status = broker.session_status().await.unwrap();
    assert_eq!(status.state, SessionState::LoginRequired);
    assert_eq!(status.login_url, Some(login_page));
    assert_eq!(
        broker.keepalive().await.unwrap().state,
        SessionState::LoginRequired
    );
    let paths = received_paths(&server).await;
    assert!(
        !paths
            .iter()
            .any(|path| path.contains("ssodh") || path.contains("reauthenticate")),
        "login is never automated: {paths:?}"
    );
}

#[tokio::test]
async fn a_login_redirect_also_means_a_manual_login() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "/sso/Login?forwardTo=22&RL=1"),
        )
        .mount(&server)
        .await;
    let error = broker(&server).accounts().await.unwrap_err();
    assert!(
        matches!(error, BrokerError::SessionRequired { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_rate_limit_without_retry_after_uses_the_default_penalty() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(429))
        .expect(1)
        .mount(&server)
        .await;
    let broker = broker(&server);
    assert_eq!(
        broker.keepalive().await.unwrap_err(),
        BrokerError::RateLimited {
            retry_after_seconds: 60
        }
    );
    assert!(matches!(
        broker.keepalive().await,
        Err(BrokerError::RateLimited { .. })
    ));
    server.verify().await;
}

#[tokio::test]
async fn server_errors_mean_unavailable_and_never_echo_paths_or_ids() {
    for status in [500, 503] {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(status).set_body_json(
                    json!({ "error": format!("{PAPER} failed"), "statusCode": "503" }),
                ),
            )
            .mount(&server)
            .await;
        prime(&server).await;
        let error = broker(&server).accounts().await.unwrap_err();
        assert_eq!(
            error.code().as_str(),
            "BROKER_BACKEND_UNAVAILABLE",
            "{status}"
        );
        let text = error.to_string();
        assert!(
            !text.contains(PAPER) && !text.contains(BASE_PATH) && !text.contains("127.0.0.1"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_slow_gateway_times_out_as_unavailable() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            json_response(fixture("iserver_accounts.json")).set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.pacing = no_pacing();
    config.request_timeout = Duration::from_millis(300);
    let started = Instant::now();
    let error = broker_with(config).accounts().await.unwrap_err();
    assert!(
        matches!(error, BrokerError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout cut the wait"
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = Url::parse(&format!("http://127.0.0.1:{port}{BASE_PATH}")).unwrap();
    let error = broker_with(ClientPortalConfig::new(url))
        .session_status()
        .await
        .unwrap_err();
    assert!(
        matches!(error, BrokerError::Unavailable { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_oversize_body_is_refused() {
    let server = MockServer::start().await;
    let mut big = fixture("iserver_accounts.json");
    big["padding"] = json!("x".repeat(8 * 1024));
    Mock::given(any())
        .respond_with(json_response(big))
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.pacing = no_pacing();
    config.max_body_bytes = 4 * 1024;
    let error = broker_with(config).accounts().await.unwrap_err();
    assert_eq!(
        error,
        BrokerError::InvalidResponse {
            detail: "the gateway's answer exceeds the size cap".to_owned()
        }
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused() {
    for body in ["not json{", r#"{"accounts": 42}"#, r#"[1, 2]"#] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(api("/iserver/accounts")))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .mount(&server)
            .await;
        let error = broker(&server).accounts().await.unwrap_err();
        assert_eq!(error.code().as_str(), "BROKER_RESPONSE_INVALID", "{body}");
    }
}

#[tokio::test]
async fn an_error_inside_a_200_maps_to_the_matching_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("/tickle")))
        .respond_with(json_response(json!({ "error": "no session" })))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api("/trsrv/secdef")))
        .and(query_param("conids", "42"))
        .respond_with(json_response(json!({ "error": "Invalid conid: 42" })))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api("/portfolio/accounts")))
        .respond_with(json_response(
            json!({ "error": "failed to process request" }),
        ))
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let broker = broker(&server);
    let status = broker.keepalive().await.unwrap();
    assert_eq!(status.state, SessionState::LoginRequired);
    assert_eq!(
        broker.contract(conid(42)).await.unwrap_err(),
        BrokerError::UnknownContract {
            contract_id: conid(42)
        }
    );
    assert_eq!(
        broker
            .positions(&account(PAPER))
            .await
            .unwrap_err()
            .code()
            .as_str(),
        "BROKER_RESPONSE_INVALID"
    );

    let logged_out = MockServer::start().await;
    Mock::given(any())
        .respond_with(json_response(json!({ "error": "no session" })))
        .mount(&logged_out)
        .await;
    assert!(matches!(
        self::broker(&logged_out).accounts().await.unwrap_err(),
        BrokerError::SessionRequired { login_url: Some(_) }
    ));
}

// -------------------------------------------------------------------------------------------
// Session states, accounts, search, orders
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn session_states_carry_the_login_page_where_a_person_must_act() {
    for (flags, expected, needs_person) in [
        (
            json!({ "authenticated": true, "competing": true, "connected": true }),
            SessionState::CompetingSession,
            true,
        ),
        (
            json!({ "authenticated": false, "competing": false, "connected": true }),
            SessionState::LoginRequired,
            true,
        ),
        (
            json!({ "authenticated": false, "competing": false, "connected": false }),
            SessionState::Unavailable,
            false,
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(api("/iserver/auth/status")))
            .respond_with(json_response(flags))
            .mount(&server)
            .await;
        // An older gateway whose tickle answer has no nested status: keepalive asks for it.
        Mock::given(method("POST"))
            .and(path(api("/tickle")))
            .respond_with(json_response(
                json!({ "session": "0000", "ssoExpires": 1000 }),
            ))
            .mount(&server)
            .await;
        let broker = broker(&server);
        for status in [
            broker.session_status().await.unwrap(),
            broker.keepalive().await.unwrap(),
        ] {
            assert_eq!(status.state, expected);
            assert_eq!(status.login_url.is_some(), needs_person, "{expected}");
        }
    }
}

#[tokio::test]
async fn an_account_is_paper_only_when_its_id_and_the_broker_agree() {
    let server = MockServer::start().await;
    let mut brokerage = fixture("iserver_accounts.json");
    brokerage["isPaper"] = json!(false);
    Mock::given(method("GET"))
        .and(path(api("/iserver/accounts")))
        .respond_with(json_response(brokerage))
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let accounts = broker(&server).accounts().await.unwrap();
    assert_eq!(accounts.len(), 2);
    assert!(
        accounts
            .iter()
            .all(|account| account.mode == AccountMode::Live),
        "{accounts:?}"
    );

    let agreed = primed_server().await;
    let accounts = broker(&agreed).accounts().await.unwrap();
    assert!(
        accounts
            .iter()
            .all(|account| account.mode == AccountMode::Paper)
    );
    assert_eq!(accounts[1].base_currency.as_str(), "EUR");
}

#[tokio::test]
async fn search_finds_listings_and_honours_exchange_and_currency_filters() {
    let server = primed_server().await;
    let broker = broker(&server);
    let all = broker
        .search_contracts(&ContractQuery::new("VOD").unwrap())
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    let lse = ContractQuery::new("VOD")
        .unwrap()
        .with_exchange("lse")
        .unwrap();
    let narrowed = broker.search_contracts(&lse).await.unwrap();
    assert_eq!(narrowed.len(), 1);
    assert_eq!(narrowed[0].id, conid(VOD_LSE));
    let mut in_usd = ContractQuery::new("VOD").unwrap();
    in_usd.currency = Some(ibkr_agent_gateway::domain::money::Currency::parse("USD").unwrap());
    let found = broker.search_contracts(&in_usd).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].exchange, "NASDAQ");
    // AAPL's second listing (MEXI) is unknown to the details endpoint and left out.
    let aapl = broker
        .search_contracts(&ContractQuery::new("AAPL").unwrap())
        .await
        .unwrap();
    assert_eq!(
        aapl.iter().map(|contract| contract.id).collect::<Vec<_>>(),
        [conid(AAPL)]
    );
    assert!(
        broker
            .search_contracts(&ContractQuery::new("QXZQXZ NOSUCHTHING").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn an_unprimed_order_list_is_asked_for_again() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/orders")))
        .respond_with(json_response(json!({ "orders": [], "snapshot": false })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let orders = broker(&server).live_orders(&account(PAPER)).await.unwrap();
    assert_eq!(orders.len(), 3);
    assert_eq!(
        count(&received_paths(&server).await, "/iserver/account/orders"),
        2
    );
}

#[tokio::test]
async fn an_expired_option_an_odd_type_and_every_side_spelling_keep_the_order_list_whole() {
    let server = MockServer::start().await;
    let mut list = fixture(&format!("orders_{PAPER}.json"));
    // Sides as the list, the status answer and IBKR's own tools spell them, and CPAPI's `X`
    // (an option that expired).
    list["orders"][0]["side"] = json!("BOT");
    list["orders"][1]["side"] = json!("X");
    list["orders"][2]["side"] = json!("sld");
    list["orders"][2]["origOrderType"] = json!("MIDPRICE");
    list["orders"][2]["orderType"] = json!("Midprice");
    Mock::given(method("GET"))
        .and(path(api("/iserver/account/orders")))
        .respond_with(json_response(list))
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let orders = broker(&server).live_orders(&account(PAPER)).await.unwrap();
    // The side as outputs show it: an expired option is listed as such, never as a buy or a
    // sell.
    let found: Vec<(&str, &str, OrderType)> = orders
        .iter()
        .map(|order| (order.order_id.as_str(), order.side.code(), order.order_type))
        .collect();
    assert_eq!(
        found,
        [
            ("1584220512", "SELL", OrderType::Other),
            ("1584220473", "BUY", OrderType::Limit),
            ("1584220388", "EXPIRED", OrderType::Market),
        ]
    );
}

#[tokio::test]
async fn history_for_a_contract_without_data_is_unavailable() {
    let server = primed_server().await;
    let broker = broker(&server);
    let request = bars(NO_DATA, "1d", BarSize::OneHour);
    assert_eq!(
        broker.historical_bars(&request).await.unwrap_err(),
        BrokerError::MarketDataUnavailable {
            contract_id: conid(NO_DATA)
        }
    );
    let unknown = bars(UNKNOWN_CONID, "1d", BarSize::OneHour);
    assert_eq!(
        broker.historical_bars(&unknown).await.unwrap_err(),
        BrokerError::UnknownContract {
            contract_id: conid(UNKNOWN_CONID)
        }
    );
    let paths = received_paths(&server).await;
    assert_eq!(
        count(&paths, "/iserver/marketdata/history"),
        1,
        "unknown conids are not asked for bars"
    );
}

// -------------------------------------------------------------------------------------------
// TLS policy
// -------------------------------------------------------------------------------------------

#[test]
fn the_tls_bypass_is_refused_for_a_host_that_is_not_loopback() {
    let build = |url: &str, insecure: bool| {
        let mut config = ClientPortalConfig::new(Url::parse(url).unwrap());
        config.allow_insecure_tls_for_localhost = insecure;
        ClientPortalBroker::new(config, Arc::new(FixedClock::new(now()))).map(|_| ())
    };
    let refused = build("https://gateway.example:5000/v1/api", true).unwrap_err();
    assert_eq!(refused, ClientPortalSetupError::TlsBypassNonLocalhost);
    assert_eq!(refused.code().as_str(), "CONFIG_TLS_BYPASS_NON_LOCALHOST");
    assert!(build("https://10.0.0.5:5000/v1/api", true).is_err());
    for loopback in [
        "https://localhost:5000/v1/api",
        "https://127.0.0.1:5000/v1/api",
        "https://[::1]:5000/v1/api",
    ] {
        assert!(build(loopback, true).is_ok(), "{loopback}");
    }
    assert!(
        build("https://gateway.example:5000/v1/api", false).is_ok(),
        "verified TLS to a remote host"
    );
    assert!(matches!(
        build("http://gateway.example/v1/api", false),
        Err(ClientPortalSetupError::BaseUrl { .. })
    ));
    assert!(matches!(
        build("https://user:secret@localhost:5000/v1/api", false),
        Err(ClientPortalSetupError::BaseUrl { .. })
    ));
}

// -------------------------------------------------------------------------------------------
// Pacing
// -------------------------------------------------------------------------------------------

/// The limiter is also tested with paused tokio time beside its code; paused time does not mix
/// with the real sockets of a mock server, so this test runs in real time at a small rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_100_snapshots_never_exceeds_the_configured_rate_at_the_gateway() {
    const PER_SECOND: usize = 20;
    let server = MockServer::start().await;
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let values = fixture("snapshot_values.json")[AAPL.to_string()].clone();
    Mock::given(method("GET"))
        .and(path(api("/iserver/marketdata/snapshot")))
        .respond_with(ArrivalLog {
            arrivals: Arc::clone(&arrivals),
            answer: json_response(json!([values])),
        })
        .with_priority(1)
        .mount(&server)
        .await;
    prime(&server).await;
    let mut config = config(&server);
    config.pacing = ClientPortalPacing {
        global_interval: Duration::from_millis(10),
        endpoint_intervals: vec![(
            "/iserver/marketdata/snapshot".to_owned(),
            Duration::from_millis(1_000 / PER_SECOND as u64),
        )],
        history_concurrency: 5,
        max_wait: Duration::from_secs(10),
        default_penalty: Duration::from_secs(60),
    };
    let broker = Arc::new(broker_with(config));
    broker.contract(conid(AAPL)).await.unwrap();
    broker.accounts().await.unwrap();

    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let broker = Arc::clone(&broker);
        burst.spawn(async move { broker.quote_snapshot(conid(AAPL)).await });
    }
    while let Some(result) = burst.join_next().await {
        result.unwrap().unwrap();
    }
    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 100);
    // Network jitter can bring two arrivals a little closer than they were sent; a window a
    // little under one second absorbs it without hiding a real excess.
    let window = Duration::from_millis(950);
    for start in &arrivals {
        let within = arrivals
            .iter()
            .filter(|arrival| **arrival >= *start && arrival.duration_since(*start) < window)
            .count();
        assert!(within <= PER_SECOND, "{within} snapshots within {window:?}");
    }
    let span = arrivals
        .iter()
        .max()
        .unwrap()
        .duration_since(*arrivals.iter().min().unwrap());
    assert!(span >= Duration::from_millis(99 * 50 * 9 / 10), "{span:?}");
}

#[tokio::test]
async fn documented_pacing_spaces_live_order_reads_five_seconds_apart() {
    let server = primed_server().await;
    let broker = broker_with(config(&server));
    let paper = account(PAPER);
    broker.live_orders(&paper).await.unwrap();
    let started = Instant::now();
    broker.live_orders(&paper).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(4_900),
        "{:?}",
        started.elapsed()
    );
}
