//! The Client Portal mapping for the one-shot market-depth book (Client Portal WebSocket `sbd` topic) (issue 16).
//!
//! CPAPI has no REST depth endpoint; depth is served only on the gateway's WebSocket
//! (reference §5.6, §5.7). One read is one short-lived socket (ADR 0017):
//!
//! 1. the REST pre-flights run first (`/portfolio/accounts`, `/iserver/accounts`; the account
//!    must be in both) and the contract is looked up (`/trsrv/secdef`, cached);
//! 2. the socket opens at `<base URL>/ws` (`wss` for an `https` base, `ws` for a loopback
//!    `http` one) with the REST client's certificate policy: the platform verifier, or no
//!    certificate check only when `allow_insecure_tls_for_localhost` is set for a loopback host.
//!    No cookie is sent (the REST client keeps none);
//! 3. when the gateway says `{"message":"waiting for session"}`, the session token is fetched
//!    from `/tickle` at that moment, sent once as `{"session":"…"}` and dropped (zeroed); it is
//!    never logged or kept;
//! 4. once the gateway reports the session authenticated (`{"topic":"system","success":…}` or
//!    `{"topic":"sts","args":{"authenticated":true}}`), the subscription `sbd+{acctId}+{conid}`
//!    is sent, exactly once;
//! 5. the first message on the `sbd` topic with price rows is the book; an `error` on the topic
//!    (or a topic-less `error` after subscribing) is [`BrokerError::MarketDataUnavailable`];
//! 6. on every path, once subscribed, `ubd+{acctId}` is sent and the socket closed, within
//!    [`LEAVE_GRACE`].
//!
//! Everything is bounded: the whole exchange by the request's timeout, each message by
//! [`MAX_MESSAGE_BYTES`], the number of messages read by [`MAX_MESSAGES`], the rows read by
//! [`MAX_ROWS`]. A timeout is [`BrokerError::Unavailable`] saying that nothing was placed and
//! the read may be retried later.
//!
//! The book's payload is not in IBKR's public specs (reference §5.6: "opaque rows of
//! price/size per side"). Rows are read leniently as a price ladder: each row has a `price`
//! and the size shown at it on the bid (`bid`) and/or the ask (`ask`), numbers or strings;
//! a venue, when present (`exchange`, `exch` or `mm`), is broker text.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls_platform_verifier::BuilderVerifierExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, USER_AGENT};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use url::Url;
use zeroize::Zeroizing;

use super::client::ApiRequest;
use super::errors::{GatewayFault, unavailable};
use super::lenient::NumText;
use super::{ClientPortalBroker, ClientPortalConfig, ClientPortalSetupError, session};
use crate::domain::broker_text::BrokerText;
use crate::domain::depth::{DepthBook, DepthLevel, DepthRequest};
use crate::net::is_loopback;
use crate::ports::broker_reader::BrokerError;

/// The largest WebSocket message (and frame) read; a larger one fails the read.
pub(super) const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// The most messages read while waiting for the book (heartbeats and other topics included).
pub(super) const MAX_MESSAGES: usize = 500;
/// The most rows of one book message that are read.
pub(super) const MAX_ROWS: usize = 400;
/// The time allowed, after the read, to unsubscribe and close.
pub(super) const LEAVE_GRACE: Duration = Duration::from_millis(500);

/// The `User-Agent` of the handshake, as the REST client sends it.
const USER_AGENT_VALUE: &str = concat!("ibkr-agent-gateway/", env!("CARGO_PKG_VERSION"));

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// How the depth socket connects: the REST client's TLS policy, built once at start-up.
#[derive(Clone)]
pub(super) struct DepthSocket {
    connector: Connector,
}

impl fmt::Debug for DepthSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DepthSocket").finish_non_exhaustive()
    }
}

impl DepthSocket {
    /// The connector for `config`'s base URL: plain for `http` (loopback only, checked by the
    /// REST client), rustls with the platform verifier for `https`, or without certificate
    /// checks when `allow_insecure_tls_for_localhost` is set (refused for any other host).
    ///
    /// # Errors
    /// [`ClientPortalSetupError::TlsBypassNonLocalhost`] for a certificate bypass on a host
    /// that is not loopback; [`ClientPortalSetupError::HttpClient`] when rustls cannot be set
    /// up.
    pub(super) fn build(config: &ClientPortalConfig) -> Result<Self, ClientPortalSetupError> {
        if config.base_url.scheme() != "https" {
            return Ok(Self {
                connector: Connector::Plain,
            });
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|_| ClientPortalSetupError::HttpClient)?;
        let tls = if config.allow_insecure_tls_for_localhost {
            if !is_loopback(&config.base_url) {
                return Err(ClientPortalSetupError::TlsBypassNonLocalhost);
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(LoopbackAnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_platform_verifier()
                .map_err(|_| ClientPortalSetupError::HttpClient)?
                .with_no_client_auth()
        };
        Ok(Self {
            connector: Connector::Rustls(Arc::new(tls)),
        })
    }
}

/// Accepts the gateway's self-signed certificate; built only for a loopback host with
/// `allow_insecure_tls_for_localhost`, like the REST client's bypass. Handshake signatures are
/// still checked.
#[derive(Debug)]
struct LoopbackAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for LoopbackAnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The WebSocket URL: `/ws` under the configured base URL (built by the REST client's
/// segment-by-segment URL builder, so it is `/v1/api/ws` for the documented base), with the
/// scheme turned into `wss` or `ws`.
pub(super) fn ws_url(client: &super::client::GatewayClient) -> Result<Url, GatewayFault> {
    let request = ApiRequest::get(&["ws"]);
    // The socket is opened outside `call`, so it passes the endpoint allowlist here.
    request.endpoint()?;
    let mut url = client.url_for(&request)?;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme)
        .map_err(|()| GatewayFault::invalid("the base URL cannot carry a WebSocket scheme"))?;
    Ok(url)
}

/// The subscription message (reference §5.6): `sbd+{acctId}+{conid}`, every deep exchange.
pub(super) fn subscribe_message(request: &DepthRequest) -> String {
    format!("sbd+{}+{}", request.account.expose(), request.contract_id)
}

/// The unsubscription message (reference §5.6): `ubd+{acctId}`.
pub(super) fn unsubscribe_message(request: &DepthRequest) -> String {
    format!("ubd+{}", request.account.expose())
}

/// The timeout error: honest about what happened and what did not.
fn timed_out(request: &DepthRequest) -> GatewayFault {
    GatewayFault::Broker(BrokerError::Unavailable {
        detail: format!(
            "no complete market-depth book arrived within {} ms; nothing was placed or \
             changed, and it is safe to retry later",
            request.timeout.millis()
        ),
    })
}

/// A WebSocket failure, secret-free.
fn ws_fault(error: &WsError) -> GatewayFault {
    match error {
        WsError::Http(response) => {
            let status = response.status();
            if status.as_u16() == 401 || status.is_redirection() {
                GatewayFault::NoSession
            } else {
                GatewayFault::Broker(unavailable(
                    "the gateway refused the market-depth WebSocket",
                ))
            }
        }
        WsError::Capacity(_) => {
            GatewayFault::invalid("a market-depth WebSocket message exceeded the size limit")
        }
        WsError::Tls(_) => GatewayFault::Broker(unavailable(
            "the TLS handshake with the gateway's WebSocket failed",
        )),
        WsError::Io(_) | WsError::ConnectionClosed | WsError::AlreadyClosed => {
            GatewayFault::Broker(unavailable(
                "the gateway's market-depth WebSocket could not be reached or closed",
            ))
        }
        _ => GatewayFault::invalid("the market-depth WebSocket failed"),
    }
}

/// What one gateway message means for the read.
#[derive(Debug, PartialEq)]
enum Event {
    /// `{"message":"waiting for session"}`: send the session token.
    WaitingForSession,
    /// The session is authenticated: subscribe.
    Authenticated,
    /// The session is gone.
    LoggedOut,
    /// An error about the subscription.
    Refused,
    /// Rows on the `sbd` topic.
    Rows(Vec<Value>),
    /// A heartbeat, another topic, or anything unknown.
    Other,
}

fn classify(value: &Value, subscribed: bool) -> Event {
    let Some(object) = value.as_object() else {
        return Event::Other;
    };
    let topic = object.get("topic").and_then(Value::as_str);
    let has_error = object
        .get("error")
        .is_some_and(|error| !error.is_null() && error.as_str() != Some(""));
    match topic {
        None if object
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|text| text.eq_ignore_ascii_case("waiting for session")) =>
        {
            Event::WaitingForSession
        }
        None if has_error && subscribed => Event::Refused,
        Some("system") if object.get("success").is_some_and(Value::is_string) => {
            Event::Authenticated
        }
        Some("sts") => match object
            .get("args")
            .and_then(|args| args.get("authenticated"))
            .and_then(Value::as_bool)
        {
            Some(true) => Event::Authenticated,
            Some(false) => Event::LoggedOut,
            None => Event::Other,
        },
        Some(topic) if topic == "sbd" || topic.starts_with("sbd+") => {
            if has_error {
                return Event::Refused;
            }
            match object
                .get("data")
                .or_else(|| object.get("args"))
                .and_then(Value::as_array)
            {
                Some(rows) => Event::Rows(rows.iter().take(MAX_ROWS).cloned().collect()),
                None => Event::Other,
            }
        }
        _ => Event::Other,
    }
}

/// One row of the price ladder.
#[derive(Debug, Deserialize)]
struct LadderRowDto {
    #[serde(default)]
    price: Option<NumText>,
    #[serde(default)]
    bid: Option<NumText>,
    #[serde(default)]
    ask: Option<NumText>,
    #[serde(default, alias = "exch", alias = "mm")]
    exchange: Option<String>,
}

/// The book in `rows`, or `None` when no row has a price and a size (not the book yet).
/// A row that cannot be read is skipped; a negative size or price is an invalid answer.
fn read_rows(
    rows: Vec<Value>,
    request: &DepthRequest,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<DepthBook>, GatewayFault> {
    let mut bids = Vec::new();
    let mut asks = Vec::new();
    for row in rows {
        let Ok(row) = serde_json::from_value::<LadderRowDto>(row) else {
            continue;
        };
        let Some(price) = row.price.as_ref().and_then(NumText::price) else {
            continue;
        };
        let venue = row
            .exchange
            .as_deref()
            .map(BrokerText::label)
            .filter(|text| !text.is_empty());
        for (size, side) in [(&row.bid, &mut bids), (&row.ask, &mut asks)] {
            let Some(size) = size.as_ref().and_then(NumText::decimal) else {
                continue;
            };
            if size.is_sign_negative() {
                return Err(GatewayFault::invalid(
                    "a market-depth row has a negative size",
                ));
            }
            if size.is_zero() {
                continue;
            }
            side.push(DepthLevel {
                price,
                size,
                broker_venue: venue.clone(),
            });
        }
    }
    if bids.is_empty() && asks.is_empty() {
        return Ok(None);
    }
    Ok(Some(DepthBook::bounded(
        request.contract_id,
        bids,
        asks,
        request.levels,
        now,
    )))
}

/// The text of a data message (the gateway may send JSON as text or binary frames).
fn message_json(message: &Message) -> Option<Value> {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str()).ok(),
        Message::Binary(bytes) => serde_json::from_slice(bytes).ok(),
        _ => None,
    }
}

impl ClientPortalBroker {
    /// The one-shot book; see the module documentation.
    pub(super) async fn read_depth(
        &self,
        request: &DepthRequest,
    ) -> Result<DepthBook, GatewayFault> {
        self.brokerage_account(&request.account).await?;
        self.contract_by_id(request.contract_id).await?;
        let url = ws_url(&self.client)?;
        let deadline = Instant::now() + request.timeout.get();
        let mut handshake = url
            .as_str()
            .into_client_request()
            .map_err(|error| ws_fault(&error))?;
        handshake
            .headers_mut()
            .insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            handshake,
            Some(config),
            true,
            Some(self.depth.connector.clone()),
        );
        let mut socket = match tokio::time::timeout_at(deadline, connect).await {
            Err(_) => return Err(timed_out(request)),
            Ok(Err(error)) => return Err(ws_fault(&error)),
            Ok(Ok((socket, _response))) => socket,
        };
        let mut subscribed = false;
        let outcome = tokio::time::timeout_at(
            deadline,
            self.await_book(&mut socket, request, &mut subscribed),
        )
        .await
        .unwrap_or_else(|_| Err(timed_out(request)));
        // Leave on every path: unsubscribe when subscribed, then close; bounded.
        let leave = async {
            if subscribed {
                socket
                    .send(Message::text(unsubscribe_message(request)))
                    .await?;
            }
            socket.close(None).await
        };
        let _ = tokio::time::timeout(LEAVE_GRACE, leave).await;
        outcome
    }

    async fn await_book(
        &self,
        socket: &mut Socket,
        request: &DepthRequest,
        subscribed: &mut bool,
    ) -> Result<DepthBook, GatewayFault> {
        let mut read = 0;
        let mut session_sent = false;
        while let Some(message) = socket.next().await {
            read += 1;
            if read > MAX_MESSAGES {
                return Err(GatewayFault::invalid(
                    "the market-depth WebSocket sent too many messages without a book",
                ));
            }
            let message = message.map_err(|error| ws_fault(&error))?;
            if let Message::Close(_) = message {
                break;
            }
            let Some(value) = message_json(&message) else {
                continue;
            };
            match classify(&value, *subscribed) {
                Event::WaitingForSession if !session_sent => {
                    session_sent = true;
                    let token = self.session_token().await?;
                    let text = Zeroizing::new(
                        serde_json::json!({ "session": token.as_str() }).to_string(),
                    );
                    socket
                        .send(Message::text(text.as_str()))
                        .await
                        .map_err(|error| ws_fault(&error))?;
                }
                Event::Authenticated if !*subscribed => {
                    socket
                        .send(Message::text(subscribe_message(request)))
                        .await
                        .map_err(|error| ws_fault(&error))?;
                    *subscribed = true;
                }
                Event::LoggedOut => return Err(GatewayFault::NoSession),
                Event::Refused => {
                    return Err(GatewayFault::Broker(BrokerError::MarketDataUnavailable {
                        contract_id: request.contract_id,
                    }));
                }
                Event::Rows(rows) if *subscribed => {
                    if let Some(book) = read_rows(rows, request, self.clock.now())? {
                        return Ok(book);
                    }
                }
                _ => {}
            }
        }
        Err(GatewayFault::Broker(unavailable(
            "the gateway closed the market-depth WebSocket before a book arrived; nothing was \
             placed or changed, and it is safe to retry later",
        )))
    }

    /// The session token from `/tickle`, for the one `{"session":…}` message. The session it
    /// names is noted (a new login forgets the pre-flights); the token itself is zeroed when
    /// dropped and never logged.
    async fn session_token(&self) -> Result<Zeroizing<String>, GatewayFault> {
        #[derive(Deserialize)]
        struct TokenDto {
            #[serde(default)]
            session: Option<String>,
        }
        let value = self
            .client
            .call(&ApiRequest::post_empty(&["tickle"]))
            .await?;
        let token = serde_json::from_value::<TokenDto>(value)
            .ok()
            .and_then(|dto| dto.session)
            .filter(|token| !token.trim().is_empty())
            .map(Zeroizing::new)
            .ok_or(GatewayFault::NoSession)?;
        self.observe_session(&session::session_digest(&token)).await;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::depth::{DepthLevels, DepthTimeout};
    use crate::domain::ids::{AccountId, ContractId};

    fn request(levels: u32) -> DepthRequest {
        DepthRequest {
            account: AccountId::parse("DU1234567").unwrap(),
            contract_id: ContractId::new(265_598).unwrap(),
            levels: DepthLevels::new(levels).unwrap(),
            timeout: DepthTimeout::default(),
        }
    }

    fn json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn config(base: &str, bypass: bool) -> ClientPortalConfig {
        let mut config = ClientPortalConfig::new(Url::parse(base).unwrap());
        config.allow_insecure_tls_for_localhost = bypass;
        config
    }

    #[test]
    fn the_socket_follows_the_rest_clients_tls_rule() {
        assert!(matches!(
            DepthSocket::build(&config("http://127.0.0.1:5000/v1/api", false))
                .unwrap()
                .connector,
            Connector::Plain
        ));
        assert!(matches!(
            DepthSocket::build(&config("https://localhost:5000/v1/api", true))
                .unwrap()
                .connector,
            Connector::Rustls(_)
        ));
        assert!(matches!(
            DepthSocket::build(&config("https://gateway.example:5000/v1/api", false))
                .unwrap()
                .connector,
            Connector::Rustls(_)
        ));
        assert!(matches!(
            DepthSocket::build(&config("https://gateway.example:5000/v1/api", true)),
            Err(ClientPortalSetupError::TlsBypassNonLocalhost)
        ));
    }

    #[test]
    fn the_socket_url_is_ws_under_the_base_url() {
        let clock = Arc::new(crate::adapters::outbound::clock::FixedClock::new(
            chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        ));
        for (base, expected) in [
            (
                "https://localhost:5000/v1/api",
                "wss://localhost:5000/v1/api/ws",
            ),
            (
                "https://localhost:5000/v1/api/",
                "wss://localhost:5000/v1/api/ws",
            ),
            (
                "http://127.0.0.1:5000/v1/api",
                "ws://127.0.0.1:5000/v1/api/ws",
            ),
        ] {
            let client =
                super::super::client::GatewayClient::build(&config(base, false), clock.clone())
                    .unwrap();
            assert_eq!(ws_url(&client).unwrap().as_str(), expected);
        }
    }

    #[test]
    fn messages_are_the_documented_ones() {
        assert_eq!(subscribe_message(&request(5)), "sbd+DU1234567+265598");
        assert_eq!(unsubscribe_message(&request(5)), "ubd+DU1234567");
    }

    #[test]
    fn gateway_messages_are_classified() {
        assert_eq!(
            classify(&json(r#"{"message":"waiting for session"}"#), false),
            Event::WaitingForSession
        );
        assert_eq!(
            classify(&json(r#"{"topic":"system","success":"someone"}"#), false),
            Event::Authenticated
        );
        assert_eq!(
            classify(&json(r#"{"topic":"system","hb":1800000000000}"#), true),
            Event::Other
        );
        assert_eq!(
            classify(
                &json(r#"{"topic":"sts","args":{"authenticated":false}}"#),
                true
            ),
            Event::LoggedOut
        );
        assert_eq!(
            classify(
                &json(r#"{"topic":"sbd+DU1+265598","error":"no depth permission"}"#),
                true
            ),
            Event::Refused
        );
        assert_eq!(classify(&json(r#"{"error":"x"}"#), false), Event::Other);
        assert_eq!(classify(&json(r#"{"error":"x"}"#), true), Event::Refused);
        assert!(matches!(
            classify(&json(r#"{"topic":"sbd+DU1+265598","data":[{"price":"1"}]}"#), true),
            Event::Rows(rows) if rows.len() == 1
        ));
    }

    #[test]
    fn ladder_rows_become_a_bounded_book() {
        let rows = json(
            r#"[{"row":0,"price":"10.03","ask":"300","exchange":"ARCA\u202e"},
                {"row":1,"price":"10.02","ask":1,"focus":1},
                {"row":2,"price":"10.01","bid":"1,200"},
                {"row":3,"price":"10.00","bid":"0"},
                {"row":4,"price":"9.99","bid":"7"},
                {"row":5,"bid":"7"},
                "junk"]"#,
        );
        let Value::Array(rows) = rows else { panic!() };
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let book = read_rows(rows.clone(), &request(1), now).unwrap().unwrap();
        assert_eq!(book.bids.len(), 1);
        assert_eq!(book.bids[0].price.value().to_string(), "10.01");
        assert_eq!(book.bids[0].size.to_string(), "1200");
        assert_eq!(book.asks[0].price.value().to_string(), "10.02");
        assert!(book.truncated);
        let all = read_rows(rows, &request(20), now).unwrap().unwrap();
        assert_eq!(all.asks[1].broker_venue.as_ref().unwrap().as_str(), "ARCA");
        assert!(
            read_rows(vec![json(r#"{"price":"1"}"#)], &request(5), now)
                .unwrap()
                .is_none()
        );
        assert!(read_rows(vec![json(r#"{"price":"1","bid":"-3"}"#)], &request(5), now).is_err());
    }
}
