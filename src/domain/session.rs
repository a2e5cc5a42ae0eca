//! The broker session as the gateway sees it.

use std::fmt;

/// The state of the broker session, reduced to what callers must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// Authenticated and connected: reads and writes may proceed.
    Usable,
    /// A person must log in through the broker's own login page; the gateway never automates it.
    LoginRequired,
    /// Another session (e.g. a phone login) holds the brokerage session.
    CompetingSession,
    /// The broker or its gateway cannot be reached.
    Unavailable,
}

impl SessionState {
    /// Snake-case name used in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usable => "usable",
            Self::LoginRequired => "login_required",
            Self::CompetingSession => "competing_session",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A session status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatus {
    /// The reduced state.
    pub state: SessionState,
    /// The session is authenticated.
    pub authenticated: bool,
    /// The gateway is connected to the broker's servers.
    pub connected: bool,
    /// Another session competes for the brokerage session.
    pub competing: bool,
    /// Where a person logs in when [`SessionState::LoginRequired`]; `None` for the fake.
    pub login_url: Option<String>,
}
