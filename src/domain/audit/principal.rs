//! The kind of caller behind an audit event, recorded in every event the gateway writes.
//!
//! The actor and surface columns say who called and through which front end, but not what
//! kind of caller that was: a local MCP client is recorded as `local_operator` like the person
//! at the CLI. The principal's kind is what the approval policy branches on, so it is recorded
//! too, in the event's metadata under the reserved key [`PRINCIPAL_KEY`] (`{"kind": "agent"}`),
//! beside the redacted input and the links but not through redaction. Like the links it is
//! built only from the call's principal, never from caller text: `redact` drops a
//! caller-supplied top-level key of the same name. The metadata column is covered by the chain
//! hash, so the recorded kind cannot be changed unnoticed.

use serde_json::{Map, Value};

/// The metadata key the principal is stored under.
pub const PRINCIPAL_KEY: &str = "principal";

/// What kind of caller a principal is; policies (approval creation) branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// The person who runs the deployment: at the CLI, or a program embedding the library
    /// (it holds the deployment's key and its own configuration).
    Operator,
    /// A program acting for someone: an MCP client.
    Agent,
    /// The gateway itself: start-up recovery, the session keepalive.
    System,
}

impl PrincipalKind {
    /// The stored spelling: `operator`, `agent` or `system`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Agent => "agent",
            Self::System => "system",
        }
    }

    /// Parses the stored spelling; `None` for any other text.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Operator, Self::Agent, Self::System]
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }

    /// The stored form under [`PRINCIPAL_KEY`]: an object, so a later remote subject can add
    /// fields without changing what is already there.
    pub fn to_stored(self) -> Value {
        let mut object = Map::new();
        object.insert("kind".to_owned(), Value::String(self.as_str().to_owned()));
        Value::Object(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_stored_spelling() {
        for kind in [
            PrincipalKind::Operator,
            PrincipalKind::Agent,
            PrincipalKind::System,
        ] {
            assert_eq!(PrincipalKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_stored()["kind"], kind.as_str());
        }
        assert_eq!(PrincipalKind::parse("Operator"), None);
    }
}
