//! The seam: HTTP statuses, transport failures and the gateway's error bodies mapped to
//! [`BrokerError`].
//!
//! Details are short, fixed phrases. They never carry a URL (paths hold account ids), a header,
//! a cookie or the gateway's own error text, which may echo an account id back.

use std::time::Duration;

use crate::domain::ids::ContractId;
use crate::ports::broker_reader::BrokerError;

/// What a request was about, so an error body can be mapped to the matching error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ErrorContext {
    /// The contract the request was for, if any.
    pub(crate) contract: Option<ContractId>,
}

impl ErrorContext {
    /// A request about one contract.
    pub(crate) fn contract(contract: ContractId) -> Self {
        Self {
            contract: Some(contract),
        }
    }
}

/// A failed exchange with the gateway, before it becomes a [`BrokerError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GatewayFault {
    /// The mapped error.
    Broker(BrokerError),
    /// The session needs a person to log in (401, a redirect to the login page, or
    /// `{"error":"no session"}`); the session caches must be dropped.
    NoSession,
    /// `Please query /accounts first`: the brokerage session was renewed behind our back.
    PreflightMissing,
    /// The gateway answered that nothing matched (`No symbol found`, `No data`).
    NothingFound,
    /// A 429: the penalty box has been started.
    RateLimited {
        /// How long the penalty lasts.
        penalty: Duration,
    },
}

impl GatewayFault {
    /// A malformed or inconsistent answer.
    pub(crate) fn invalid(detail: &str) -> Self {
        Self::Broker(invalid(detail))
    }
}

impl From<BrokerError> for GatewayFault {
    fn from(error: BrokerError) -> Self {
        Self::Broker(error)
    }
}

/// [`BrokerError::InvalidResponse`] with a fixed detail.
pub(crate) fn invalid(detail: &str) -> BrokerError {
    BrokerError::InvalidResponse {
        detail: detail.to_owned(),
    }
}

/// [`BrokerError::Unavailable`] with a fixed detail.
pub(crate) fn unavailable(detail: &str) -> BrokerError {
    BrokerError::Unavailable {
        detail: detail.to_owned(),
    }
}

/// Maps a transport failure without echoing the error (its text holds the URL).
pub(crate) fn transport(error: &reqwest::Error) -> BrokerError {
    if error.is_timeout() {
        unavailable("the gateway did not answer in time")
    } else if error.is_connect() {
        unavailable("could not connect to the gateway")
    } else {
        unavailable("the connection to the gateway failed")
    }
}

/// Maps a non-success status (other than 401, 3xx and 429, which the client handles) with its
/// error text, if the body had one.
pub(crate) fn from_status(
    status: u16,
    error_text: Option<&str>,
    context: ErrorContext,
) -> GatewayFault {
    if let Some(text) = error_text
        && let Some(fault) = classify_text(text, context)
    {
        return fault;
    }
    match status {
        500..=599 => GatewayFault::Broker(unavailable(match status {
            503 => "the gateway reported its backend unavailable (503)",
            504 => "the gateway timed out reaching its backend (504)",
            _ => "the gateway reported an internal error (5xx)",
        })),
        404 => GatewayFault::invalid("the gateway does not know this endpoint (404)"),
        _ => GatewayFault::invalid("the gateway refused the request (4xx)"),
    }
}

/// Maps the `error` text of a body (a 200 with `{"error": …}`, or a 4xx/5xx body) to the
/// matching fault. `None` when the text is not one the adapter recognises.
pub(crate) fn classify_text(text: &str, context: ErrorContext) -> Option<GatewayFault> {
    let lower = text.to_ascii_lowercase();
    let has = |needle: &str| lower.contains(needle);
    if has("no session") || has("not authenticated") || has("unauthorized") || has("not logged in")
    {
        return Some(GatewayFault::NoSession);
    }
    // `Please query /accounts first` (brokerage) and `Please query /portfolio/accounts first`:
    // the pre-flight the gateway wants is missing in its current session.
    if has("query /accounts first")
        || has("query/accounts first")
        || has("query /portfolio/accounts first")
        || has("query /portfolio/subaccounts first")
    {
        return Some(GatewayFault::PreflightMissing);
    }
    if let Some(contract_id) = context.contract {
        let about_contract = has("conid") || has("contract");
        let unknown = has("invalid")
            || has("not found")
            || has("unknown")
            || has("doesn't exist")
            || has("does not exist")
            || has("no such");
        if about_contract && unknown {
            return Some(GatewayFault::Broker(BrokerError::UnknownContract {
                contract_id,
            }));
        }
        if has("no data") {
            return Some(GatewayFault::Broker(BrokerError::MarketDataUnavailable {
                contract_id,
            }));
        }
    }
    if has("account") && (has("not valid") || has("invalid")) {
        return Some(GatewayFault::Broker(BrokerError::UnknownAccount));
    }
    if has("no symbol found") || has("no contracts found") || has("no data") {
        return Some(GatewayFault::NothingFound);
    }
    None
}

/// A recognised error text, or the generic "the gateway reported an error".
pub(crate) fn from_error_body(text: &str, context: ErrorContext) -> GatewayFault {
    classify_text(text, context)
        .unwrap_or_else(|| GatewayFault::invalid("the gateway answered with an error"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conid() -> ContractId {
        ContractId::new(265_598).unwrap()
    }

    #[test]
    fn error_texts_map_to_the_matching_error() {
        let about = ErrorContext::contract(conid());
        assert_eq!(
            classify_text("no session", about),
            Some(GatewayFault::NoSession)
        );
        assert_eq!(
            classify_text("Bad Request: Please query /accounts first", about),
            Some(GatewayFault::PreflightMissing)
        );
        assert_eq!(
            classify_text("Bad Request: Please query /portfolio/accounts first", about),
            Some(GatewayFault::PreflightMissing)
        );
        assert_eq!(
            classify_text("Invalid conid", about),
            Some(GatewayFault::Broker(BrokerError::UnknownContract {
                contract_id: conid()
            }))
        );
        assert_eq!(
            classify_text("No data.", about),
            Some(GatewayFault::Broker(BrokerError::MarketDataUnavailable {
                contract_id: conid()
            }))
        );
        assert_eq!(
            classify_text(
                "Bad Request: accountId is not valid: 11110000",
                ErrorContext::default()
            ),
            Some(GatewayFault::Broker(BrokerError::UnknownAccount))
        );
        assert_eq!(
            classify_text("No symbol found", ErrorContext::default()),
            Some(GatewayFault::NothingFound)
        );
        assert_eq!(classify_text("failed to process request", about), None);
    }

    #[test]
    fn statuses_map_without_echoing_the_body() {
        let fault = from_status(500, Some("DU1234567 exploded"), ErrorContext::default());
        let GatewayFault::Broker(error) = fault else {
            panic!("{fault:?}")
        };
        assert_eq!(error.code().as_str(), "BROKER_BACKEND_UNAVAILABLE");
        assert!(!error.to_string().contains("DU1234567"));
        assert_eq!(
            from_status(400, None, ErrorContext::default()),
            GatewayFault::invalid("the gateway refused the request (4xx)")
        );
        assert_eq!(
            from_error_body("something odd about DU1234567", ErrorContext::default()),
            GatewayFault::invalid("the gateway answered with an error")
        );
    }
}
