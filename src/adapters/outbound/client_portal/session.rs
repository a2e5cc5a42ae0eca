//! The brokerage session: `/iserver/auth/status` and `/tickle` answers reduced to
//! [`SessionStatus`], the session's identity, and the per-session pre-flight state.
//!
//! The gateway names its session in the `session` field of `/tickle` (reference §2.2). That
//! token also authenticates the WebSocket, so it is reduced to a SHA-256 digest as soon as it
//! is parsed: the digest tells one login from the next and is all that is ever kept.
//!
//! Login is never automated: this module never calls `ssodh/init` or `reauthenticate`. A
//! session that needs a person reports the gateway's own login page as the action to take.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::client::{ApiRequest, GatewayClient};
use super::dto::accounts::{BrokerageAccounts, PortfolioAccount};
use super::errors::GatewayFault;
use crate::domain::session::{SessionState, SessionStatus};
use crate::ports::broker_reader::BrokerError;

/// `brokerageSessionStatus`, the answer of `/iserver/auth/status` and the `iserver.authStatus`
/// of `/tickle`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AuthStatusDto {
    #[serde(default)]
    authenticated: Option<bool>,
    #[serde(default)]
    competing: Option<bool>,
    #[serde(default)]
    connected: Option<bool>,
}

/// `/tickle`: the nested auth status, and the session token (digested at once, never kept).
#[derive(Clone, Deserialize)]
struct TickleDto {
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    iserver: Option<TickleIserverDto>,
}

#[derive(Debug, Clone, Deserialize)]
struct TickleIserverDto {
    #[serde(default, rename = "authStatus")]
    auth_status: Option<AuthStatusDto>,
}

impl AuthStatusDto {
    /// Competing first (a person must take the session back), then a lost connection to IBKR,
    /// then a brokerage session that is not authenticated.
    pub(crate) fn into_status(self, login_url: &str) -> Result<SessionStatus, GatewayFault> {
        let (Some(authenticated), Some(connected)) = (self.authenticated, self.connected) else {
            return Err(GatewayFault::invalid("the session status lacks its flags"));
        };
        let competing = self.competing.unwrap_or(false);
        let state = if competing {
            SessionState::CompetingSession
        } else if !connected {
            SessionState::Unavailable
        } else if !authenticated {
            SessionState::LoginRequired
        } else {
            SessionState::Usable
        };
        Ok(status(
            state,
            authenticated,
            connected,
            competing,
            login_url,
        ))
    }
}

/// A status with the login page as the user action where a person must act.
pub(crate) fn status(
    state: SessionState,
    authenticated: bool,
    connected: bool,
    competing: bool,
    login_url: &str,
) -> SessionStatus {
    let needs_person = matches!(
        state,
        SessionState::LoginRequired | SessionState::CompetingSession
    );
    SessionStatus {
        state,
        authenticated,
        connected,
        competing,
        login_url: needs_person.then(|| login_url.to_owned()),
    }
}

/// The status when the gateway answers "no session" (401, a login redirect, or
/// `{"error":"no session"}`): reachable, but a person must log in.
pub(crate) fn logged_out(login_url: &str) -> SessionStatus {
    status(SessionState::LoginRequired, false, false, false, login_url)
}

/// The error for a request refused for want of a session (401, a login redirect, `no
/// session`). A gateway cut off from IBKR's servers refuses the same way, and no login helps
/// then, so `/iserver/auth/status` is asked once: `connected: false` is
/// [`BrokerError::Unavailable`]; anything else (or no answer) is the login requirement.
pub(crate) async fn no_session_error(client: &GatewayClient) -> BrokerError {
    let login_url = client.login_url();
    let status = client
        .call(&ApiRequest::post_empty(&["iserver", "auth", "status"]))
        .await
        .ok()
        .and_then(|value| serde_json::from_value::<AuthStatusDto>(value).ok())
        .and_then(|dto| dto.into_status(login_url).ok());
    if status.is_some_and(|status| status.state == SessionState::Unavailable) {
        return BrokerError::Unavailable {
            detail: "the gateway is not connected to IBKR's servers (connected: false); \
                     wait for it to reconnect"
                .to_owned(),
        };
    }
    BrokerError::SessionRequired {
        login_url: Some(login_url.to_owned()),
    }
}

/// What a `/tickle` answer says about the session.
#[derive(Debug, Clone)]
pub(crate) struct Tickle {
    /// The nested auth status, if the gateway sent one.
    pub(crate) auth_status: Option<AuthStatusDto>,
    /// The digest of the session token, if the gateway sent one.
    pub(crate) session_digest: Option<String>,
}

/// The auth status nested in a `/tickle` answer and the session's digest.
pub(crate) fn read_tickle(value: Value) -> Result<Tickle, GatewayFault> {
    let tickle: TickleDto = super::dto::parse(value, "keepalive")?;
    Ok(Tickle {
        auth_status: tickle.iserver.and_then(|iserver| iserver.auth_status),
        session_digest: tickle
            .session
            .filter(|token| !token.trim().is_empty())
            .map(|token| session_digest(&token)),
    })
}

/// SHA-256 of the session token with a purpose prefix, hex, first 128 bits: enough to tell
/// sessions apart, useless for authenticating anything.
pub(crate) fn session_digest(token: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"ibkr-agent-gateway/cpapi-session/v1\0");
    hasher.update(token.as_bytes());
    hasher.finalize()[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What has been learnt in the current brokerage session. Cleared whenever the session is seen
/// logged out, not authenticated, renewed (`Please query … first`), or replaced by another
/// login (a new session digest, seen by this process or recorded by another), so the pre-flight
/// calls run again in the next session.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionCache {
    /// The digest of the session the pre-flights below were made in, when known.
    pub(crate) session_digest: Option<String>,
    /// `/iserver/accounts`, called once per brokerage session before other `/iserver` calls.
    pub(crate) brokerage: Option<BrokerageAccounts>,
    /// `/portfolio/accounts`, called before any `/portfolio/{accountId}/…`.
    pub(crate) portfolio: Option<Vec<PortfolioAccount>>,
    /// When the `/portfolio/accounts` pre-flight ran: an empty portfolio read soon after it is
    /// read again before it is believed.
    pub(crate) portfolio_at: Option<Instant>,
}

impl SessionCache {
    /// An empty cache for the session `digest`.
    pub(crate) fn for_session(digest: Option<String>) -> Self {
        Self {
            session_digest: digest,
            ..Self::default()
        }
    }

    /// True when anything was learnt (a pre-flight ran).
    pub(crate) fn has_preflights(&self) -> bool {
        self.brokerage.is_some() || self.portfolio.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOGIN: &str = "https://localhost:5000/";

    fn state_of(json: &str) -> SessionStatus {
        serde_json::from_str::<AuthStatusDto>(json)
            .unwrap()
            .into_status(LOGIN)
            .unwrap()
    }

    #[test]
    fn flags_reduce_to_states() {
        let usable =
            state_of(r#"{"authenticated":true,"competing":false,"connected":true,"MAC":"x"}"#);
        assert_eq!(usable.state, SessionState::Usable);
        assert_eq!(usable.login_url, None);
        let competing = state_of(r#"{"authenticated":true,"competing":true,"connected":true}"#);
        assert_eq!(competing.state, SessionState::CompetingSession);
        assert_eq!(competing.login_url.as_deref(), Some(LOGIN));
        let expired = state_of(r#"{"authenticated":false,"competing":false,"connected":true}"#);
        assert_eq!(expired.state, SessionState::LoginRequired);
        let disconnected = state_of(r#"{"authenticated":false,"connected":false}"#);
        assert_eq!(disconnected.state, SessionState::Unavailable);
        assert!(
            serde_json::from_str::<AuthStatusDto>(r#"{"message":""}"#)
                .unwrap()
                .into_status(LOGIN)
                .is_err()
        );
    }

    #[test]
    fn tickle_answers_carry_the_auth_status() {
        let value: Value = serde_json::from_str(
            r#"{"session":"0123","ssoExpires":512840,"collission":false,"hmds":{"error":"no bridge"},
                "iserver":{"authStatus":{"authenticated":true,"competing":false,"connected":true}}}"#,
        )
        .unwrap();
        let tickle = read_tickle(value).unwrap();
        let digest = tickle.session_digest.clone().unwrap();
        assert_eq!(digest.len(), 32);
        assert!(!digest.contains("0123"));
        assert_eq!(digest, session_digest("0123"));
        assert_ne!(digest, session_digest("0124"));
        let status = tickle.auth_status.unwrap().into_status(LOGIN).unwrap();
        assert_eq!(status.state, SessionState::Usable);
        let bare: Value = serde_json::from_str(r#"{"session":"0123"}"#).unwrap();
        assert!(read_tickle(bare).unwrap().auth_status.is_none());
        let anonymous: Value = serde_json::from_str(r#"{"session":""}"#).unwrap();
        assert!(read_tickle(anonymous).unwrap().session_digest.is_none());
    }
}
