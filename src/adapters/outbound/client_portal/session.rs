//! The brokerage session: `/iserver/auth/status` and `/tickle` answers reduced to
//! [`SessionStatus`], and the per-session pre-flight state.
//!
//! Login is never automated: this module never calls `ssodh/init` or `reauthenticate`. A
//! session that needs a person reports the gateway's own login page as the action to take.

use serde::Deserialize;
use serde_json::Value;

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

/// `/tickle`: only the nested auth status is used (the `session` token is never read).
#[derive(Debug, Clone, Deserialize)]
struct TickleDto {
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

/// The auth status nested in a `/tickle` answer, if it has one.
pub(crate) fn tickle_auth_status(value: Value) -> Result<Option<AuthStatusDto>, GatewayFault> {
    let tickle: TickleDto = super::dto::parse(value, "keepalive")?;
    Ok(tickle.iserver.and_then(|iserver| iserver.auth_status))
}

/// What has been learnt in the current brokerage session. Cleared whenever the session is seen
/// logged out, not authenticated, or renewed (`Please query /accounts first`), so the pre-flight
/// calls run again in the next session.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionCache {
    /// `/iserver/accounts`, called once per brokerage session before other `/iserver` calls.
    pub(crate) brokerage: Option<BrokerageAccounts>,
    /// `/portfolio/accounts`, called before any `/portfolio/{accountId}/…`.
    pub(crate) portfolio: Option<Vec<PortfolioAccount>>,
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
        let status = tickle_auth_status(value)
            .unwrap()
            .unwrap()
            .into_status(LOGIN)
            .unwrap();
        assert_eq!(status.state, SessionState::Usable);
        let bare: Value = serde_json::from_str(r#"{"session":"0123"}"#).unwrap();
        assert!(tickle_auth_status(bare).unwrap().is_none());
    }
}
