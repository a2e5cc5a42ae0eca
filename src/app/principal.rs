//! Who is calling: the [`Principal`] every call carries, built only by the front ends (the
//! CLI, the MCP server, the library facade and the gateway's own background work) through
//! crate-internal constructors, so an embedding program cannot claim to be another caller.
//!
//! A principal holds a kind (operator, agent or the gateway itself), the audit identity it is
//! recorded under (actor and surface), and the scopes it holds. Local principals hold the
//! scopes the deployment's configuration grants; a later remote subject will hold its own,
//! never more than those. The kind is recorded in every audit event the call writes (see
//! `domain::audit::principal`).

use crate::domain::audit::{Actor, Surface};
use crate::domain::scope::{Scope, ScopeSet};

pub use crate::domain::audit::principal::PrincipalKind;

/// The subject recorded for a remote caller whose token did not verify. Never a hash (hashes
/// are hex), so it cannot be mistaken for a subject.
pub const UNVERIFIED_SUBJECT: &str = "unverified";

/// The caller of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    kind: PrincipalKind,
    actor: Actor,
    surface: Surface,
    // `None`: the scopes the deployment grants. `Some`: a narrower set held by this caller
    // (a remote subject's token); the effective set is never wider than the deployment's.
    scopes: Option<ScopeSet>,
}

impl Principal {
    /// The local operator at the CLI.
    pub(crate) fn cli_operator() -> Self {
        Self::local(PrincipalKind::Operator, Surface::Cli)
    }

    /// The operator through a program embedding the library.
    pub(crate) fn library_operator() -> Self {
        Self::local(PrincipalKind::Operator, Surface::Sdk)
    }

    /// The local MCP client over stdio: an agent holding the configured scopes.
    pub(crate) fn local_mcp_client() -> Self {
        Self::local(PrincipalKind::Agent, Surface::McpStdio)
    }

    /// A remote MCP client over Streamable HTTP, proven by a verified bearer token: an agent
    /// (never the operator) recorded under the keyed hash of its subject, holding the token's
    /// scopes (already cut down to `remote_mcp.allowed_scopes`), never more than the
    /// deployment grants. The HTTP front end builds it from its verified token (the app layer
    /// takes the hash and scopes, not the adapter's type).
    pub(crate) fn remote(subject_hash: String, scopes: ScopeSet) -> Self {
        Self {
            kind: PrincipalKind::Agent,
            actor: Actor::RemoteSubject { subject_hash },
            surface: Surface::McpHttp,
            scopes: Some(scopes),
        }
    }

    /// A remote caller whose token was refused (or absent): recorded as an unverified remote
    /// subject, holding no scope at all. Only auth denials are recorded under it.
    pub(crate) fn remote_unverified() -> Self {
        Self {
            kind: PrincipalKind::Agent,
            actor: Actor::RemoteSubject {
                subject_hash: UNVERIFIED_SUBJECT.to_owned(),
            },
            surface: Surface::McpHttp,
            scopes: Some(ScopeSet::empty()),
        }
    }

    /// The gateway itself.
    pub(crate) fn system() -> Self {
        Self {
            kind: PrincipalKind::System,
            actor: Actor::System,
            surface: Surface::System,
            scopes: None,
        }
    }

    fn local(kind: PrincipalKind, surface: Surface) -> Self {
        Self {
            kind,
            actor: Actor::LocalOperator,
            surface,
            scopes: None,
        }
    }

    /// The kind of caller.
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// Who the audit log records.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The front end the call came through.
    pub fn surface(&self) -> Surface {
        self.surface
    }

    /// True when this principal holds `scope` in a deployment granting `granted`.
    pub fn holds(&self, scope: Scope, granted: &ScopeSet) -> bool {
        granted.contains(scope) && self.scopes.as_ref().is_none_or(|own| own.contains(scope))
    }

    /// The scope creating (or managing) an approval needs from this principal: none for the
    /// operator, who is the person approvals stand for; `ibkr:approvals:create` for anyone
    /// else, so an agent approves only when the deployment granted it that.
    pub fn approval_scope(&self) -> Option<Scope> {
        match self.kind {
            PrincipalKind::Operator => None,
            PrincipalKind::Agent | PrincipalKind::System => Some(Scope::ApprovalsCreate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_operator_approves_without_the_approval_scope() {
        assert_eq!(Principal::cli_operator().approval_scope(), None);
        assert_eq!(Principal::library_operator().approval_scope(), None);
        assert_eq!(
            Principal::local_mcp_client().approval_scope(),
            Some(Scope::ApprovalsCreate)
        );
        assert_eq!(
            Principal::system().approval_scope(),
            Some(Scope::ApprovalsCreate)
        );
    }

    #[test]
    fn a_remote_principal_is_an_agent_holding_only_its_token_scopes() {
        let remote = Principal::remote(
            "ab12".to_owned(),
            [Scope::AccountsRead].into_iter().collect(),
        );
        assert_eq!(remote.kind(), PrincipalKind::Agent);
        assert_eq!(remote.surface(), Surface::McpHttp);
        assert_eq!(
            remote.actor(),
            &Actor::RemoteSubject {
                subject_hash: "ab12".to_owned()
            }
        );
        let granted = ScopeSet::read_only_defaults();
        assert!(remote.holds(Scope::AccountsRead, &granted));
        assert!(!remote.holds(Scope::HealthRead, &granted));
        assert_eq!(remote.approval_scope(), Some(Scope::ApprovalsCreate));
        assert!(!Principal::remote_unverified().holds(Scope::HealthRead, &granted));
    }

    #[test]
    fn a_principal_never_holds_more_than_the_deployment_grants() {
        let granted = ScopeSet::read_only_defaults();
        let mut narrow = Principal::local_mcp_client();
        assert!(narrow.holds(Scope::HealthRead, &granted));
        assert!(!narrow.holds(Scope::OrdersPaperSubmit, &granted));
        narrow.scopes = Some([Scope::AccountsRead].into_iter().collect());
        assert!(!narrow.holds(Scope::HealthRead, &granted));
        assert!(narrow.holds(Scope::AccountsRead, &granted));
    }
}
