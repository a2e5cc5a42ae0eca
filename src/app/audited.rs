//! The one wrapper every call goes through: scope check, the operation, then exactly one audit
//! event with the final status. If the event cannot be stored, the call fails closed with
//! `AUDIT_WRITE_FAILED` and its result is withheld, and live writes are halted
//! (`app::halt_triggers`); the automatic halt records itself through the one append that never
//! halts, so a failing log cannot start a chain of halts.

use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::principal::Principal;
use crate::domain::audit::chain::to_hex;
use crate::domain::audit::links::AuditLinks;
use crate::domain::audit::redaction::{redact, redact_refused};
use crate::domain::audit::{
    Actor, AuditEvent, Decision, Durability, ResultStatus, Surface, sha256_hex,
};
use crate::domain::error_code::{ErrorCategory, ErrorCode};
use crate::domain::ids::AccountId;
use crate::domain::scope::Scope;
use crate::ports::audit_log::AuditError;

/// One call's caller: the [`Principal`] and, for MCP, the tool name it used. Built only
/// inside the crate (the front ends) or through the library's own constructors, so a library
/// caller cannot claim to be the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// Who is calling.
    pub(crate) principal: Principal,
    /// The tool name the caller used, recorded as the operation when set (MCP records its
    /// tool names; the CLI and the library record the operation's own name).
    pub(crate) tool: Option<String>,
}

impl CallContext {
    fn of(principal: Principal) -> Self {
        Self {
            principal,
            tool: None,
        }
    }

    /// The local operator at the CLI. Crate-internal: only the CLI front end is the CLI.
    pub(crate) fn cli() -> Self {
        Self::of(Principal::cli_operator())
    }

    /// An embedding program through the library: the operator, surface `sdk`.
    pub fn sdk() -> Self {
        Self::of(Principal::library_operator())
    }

    /// The local MCP client over stdio: an agent holding the configured scopes. Public so an
    /// embedder can act with an agent's (never more) authority.
    pub fn mcp_stdio() -> Self {
        Self::of(Principal::local_mcp_client())
    }

    /// A caller through the MCP Streamable HTTP front end, as its principal (a verified remote
    /// subject, or an unverified one for auth denials). Crate-internal: only that front end
    /// builds remote principals.
    pub(crate) fn mcp_http(principal: Principal) -> Self {
        Self::of(principal)
    }

    /// The gateway itself (start-up recovery, the session keepalive).
    pub(crate) fn system() -> Self {
        Self::of(Principal::system())
    }

    /// The same context, recording `tool` as the operation name.
    #[must_use]
    pub fn with_tool(mut self, tool: &str) -> Self {
        self.tool = Some(tool.to_owned());
        self
    }

    /// Who is calling.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The caller's audit identity.
    pub fn actor(&self) -> &Actor {
        self.principal.actor()
    }

    /// The front end the call came through.
    pub fn surface(&self) -> Surface {
        self.principal.surface()
    }
}

/// What a call is, for the audit record.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// The command or tool name, e.g. `positions list`.
    pub operation: String,
    /// The scope it requires; `None` only for calls that need none.
    pub scope: Option<Scope>,
    /// The caller's input as given (redacted before it is stored or hashed).
    pub input: Value,
    /// How durably the event must be stored before the result is released.
    pub durability: Durability,
    /// True when `input` is the gateway's own description of the call (a refused frame's size
    /// and reason), not the caller's text: a refusal then stores it as it is instead of as
    /// length, keyed hash and excerpt.
    pub input_from_gateway: bool,
}

impl CallSpec {
    /// A write-workflow call: durable before its result is released.
    pub fn write(operation: impl Into<String>, scope: Option<Scope>, input: Value) -> Self {
        Self {
            operation: operation.into(),
            scope,
            input,
            durability: Durability::Durable,
            input_from_gateway: false,
        }
    }

    /// A write-workflow call whose input is a serializable raw request.
    pub fn write_of<T: Serialize>(operation: &str, scope: Option<Scope>, raw: &T) -> Self {
        Self::write(
            operation,
            scope,
            serde_json::to_value(raw).unwrap_or(Value::Null),
        )
    }

    /// A read call: relaxed durability.
    pub fn read(operation: impl Into<String>, scope: Scope, input: Value) -> Self {
        Self {
            operation: operation.into(),
            scope: Some(scope),
            input,
            durability: Durability::Relaxed,
            input_from_gateway: false,
        }
    }
}

/// How a remote request's bearer-token check ended, for its one audit event. Carries no
/// token, token id, header or raw subject: only fixed reasons and keyed hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A token was accepted (recorded once per token per process by the front end).
    Accepted {
        /// The HMAC of the token's `jti`, when it has one (stored as the output hash).
        token_id_hmac: Option<String>,
    },
    /// The request was refused before it reached any tool.
    Denied {
        /// The stable code the caller was told (`AUTH_TOKEN_INVALID`, `AUTH_JWKS_UNAVAILABLE`).
        code: ErrorCode,
        /// A fixed, token-free reason, e.g. `expired` or `missing_token`.
        reason: &'static str,
        /// The HTTP status the caller got.
        http_status: u16,
    },
}

/// The operation recorded for an accepted bearer token.
pub const AUTH_ACCEPTED_OPERATION: &str = "auth accepted";
/// The operation recorded for a refused bearer token.
pub const AUTH_DENIED_OPERATION: &str = "auth denied";

/// What an operation learned that belongs in its audit record (the account it touched, and
/// links to the approval, preview, key and orders it concerns).
#[derive(Debug, Default)]
pub struct AuditNote {
    // A std mutex: it is never held across an await.
    account: Mutex<Option<AccountId>>,
    // A std mutex: it is never held across an await.
    links: Mutex<AuditLinks>,
}

impl AuditNote {
    /// Records the account the call touched.
    pub fn record_account(&self, account: &AccountId) {
        let mut guard = self
            .account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Some(account.clone());
    }

    /// Adds links to the call's audit record (and to the steps recorded with
    /// [`AuditNote::links`]).
    pub fn link(&self, add: impl FnOnce(&mut AuditLinks)) {
        let mut guard = self
            .links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        add(&mut guard);
    }

    /// The links noted so far.
    pub fn links(&self) -> AuditLinks {
        self.links
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn account(&self) -> Option<AccountId> {
        self.account
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// How a call ended, for its event.
enum Outcome<'a> {
    /// It returned a result, hashed for the record.
    Completed { output_hash: Option<String> },
    /// It was refused or failed.
    Failed(&'a GatewayError),
}

/// Everything one event records that the gateway does not add itself (the id, the time, the
/// caller's identity): what the call was, how it ended, what it touched.
struct EventDraft<'a> {
    /// The recorded operation (the tool name for MCP calls).
    operation: String,
    /// The scope the call required.
    scope: Option<Scope>,
    /// How it failed; `None` when it completed.
    error: Option<&'a GatewayError>,
    /// The account it touched.
    account: Option<&'a AccountId>,
    /// The input as given; redacted here, never stored as it is.
    input: &'a Value,
    /// True when `input` was refused as invalid and must be stored only as its summary.
    refused_input: bool,
    /// The hash of the result, when there was one.
    output_hash: Option<String>,
    /// How durably the event must be stored.
    durability: Durability,
    /// The links stored beside the redacted input.
    links: &'a AuditLinks,
}

/// The decision and status an outcome is recorded with.
fn classify(error: Option<&GatewayError>) -> (Decision, ResultStatus) {
    match error.map(GatewayError::code) {
        None => (Decision::Allow, ResultStatus::Completed),
        Some(code) => match code.category() {
            ErrorCategory::Auth => (Decision::Deny, ResultStatus::DeniedScope),
            ErrorCategory::Usage | ErrorCategory::Refused => {
                (Decision::Refuse, ResultStatus::Refused)
            }
            ErrorCategory::BrokerAvailability
            | ErrorCategory::BrokerResponse
            | ErrorCategory::AuditIntegrity
            | ErrorCategory::Internal => (Decision::Allow, ResultStatus::Failed),
        },
    }
}

fn canonical_json<T: Serialize>(value: &T) -> Option<String> {
    // serde_json's map keeps keys sorted, so equal values give equal text.
    serde_json::to_value(value)
        .ok()
        .map(|value| value.to_string())
}

/// A time-ordered UUIDv7 for `at`, so ids sort by creation.
pub(crate) fn time_ordered_uuid(at: DateTime<Utc>) -> uuid::Uuid {
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    let timestamp =
        uuid::Timestamp::from_unix(uuid::NoContext, seconds, at.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(timestamp)
}

fn event_id(at: DateTime<Utc>) -> String {
    time_ordered_uuid(at).to_string()
}

impl Gateway {
    /// Runs `body` as one audited call: refuses a missing scope before `body` runs, then
    /// appends exactly one event whatever the outcome. A failed append turns any outcome into
    /// `AUDIT_WRITE_FAILED`.
    ///
    /// # Errors
    /// The body's error, `AUTH_MISSING_SCOPE`, or `AUDIT_WRITE_FAILED`.
    pub async fn audited<T, F, Fut>(
        &self,
        context: &CallContext,
        spec: CallSpec,
        body: F,
    ) -> Result<T, GatewayError>
    where
        T: Serialize,
        F: FnOnce(std::sync::Arc<AuditNote>) -> Fut,
        Fut: Future<Output = Result<T, GatewayError>>,
    {
        let note = std::sync::Arc::new(AuditNote::default());
        let result = match self.check_scope(context, spec.scope) {
            Err(refusal) => Err(refusal),
            Ok(()) => body(std::sync::Arc::clone(&note)).await,
        };
        self.record_outcome(context, spec, &note, result).await
    }

    /// Records one call the pipeline answers without running anything (an unknown tool, a
    /// refused write name, arguments that do not fit): a missing scope is recorded and
    /// returned first, then `refusal`. Exactly one event, as for every call.
    ///
    /// Returns what the caller is told: `AUTH_MISSING_SCOPE`, `refusal`, or
    /// `AUDIT_WRITE_FAILED` when the event cannot be stored.
    pub async fn refuse(
        &self,
        context: &CallContext,
        spec: CallSpec,
        refusal: GatewayError,
    ) -> GatewayError {
        let refusal = self
            .check_scope(context, spec.scope)
            .err()
            .unwrap_or(refusal);
        let outcome = Outcome::Failed(&refusal);
        match self
            .append_outcome(context, spec, &AuditNote::default(), outcome)
            .await
        {
            Ok(()) => refusal,
            Err(audit_failure) => audit_failure,
        }
    }

    /// The scope check, done once per call in the pipeline against the call's principal.
    fn check_scope(&self, context: &CallContext, scope: Option<Scope>) -> Result<(), GatewayError> {
        match scope {
            Some(scope) if !context.principal.holds(scope, self.granted_scopes()) => {
                Err(GatewayError::MissingScope { scope })
            }
            _ => Ok(()),
        }
    }

    /// Appends the one event of a call whose outcome is `result`; a failed append turns any
    /// outcome into `AUDIT_WRITE_FAILED`.
    async fn record_outcome<T: Serialize>(
        &self,
        context: &CallContext,
        spec: CallSpec,
        note: &AuditNote,
        result: Result<T, GatewayError>,
    ) -> Result<T, GatewayError> {
        let outcome = match &result {
            Ok(value) => Outcome::Completed {
                output_hash: canonical_json(value).map(|text| sha256_hex(text.as_bytes())),
            },
            Err(error) => Outcome::Failed(error),
        };
        self.append_outcome(context, spec, note, outcome).await?;
        result
    }

    /// Appends the one event of a call that ended as `outcome`. A failed append halts live
    /// writes (`live_trading.auto_halt.audit_write_failure`) before the call fails.
    ///
    /// # Errors
    /// `AUDIT_WRITE_FAILED` when the event cannot be stored.
    async fn append_outcome(
        &self,
        context: &CallContext,
        spec: CallSpec,
        note: &AuditNote,
        outcome: Outcome<'_>,
    ) -> Result<(), GatewayError> {
        let event = self.outcome_event(context, spec, note, outcome);
        match self.audit().append(event).await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::error!(code = %error.code(), "audit append failed; the call's result is withheld");
                self.halt_on_audit_failure().await;
                Err(GatewayError::Audit(error))
            }
        }
    }

    /// Appends the event (with `links`) of a call the gateway made by itself that completed,
    /// and nothing more: unlike every other append, a failure here never halts, so the automatic halt can
    /// record itself without starting another.
    ///
    /// # Errors
    /// The audit log's error when the event cannot be stored.
    pub(crate) async fn append_without_halting(
        &self,
        context: &CallContext,
        spec: CallSpec,
        links: &AuditLinks,
    ) -> Result<(), AuditError> {
        let output_hash = canonical_json(&()).map(|text| sha256_hex(text.as_bytes()));
        let note = AuditNote::default();
        note.link(|noted| *noted = links.clone());
        let event = self.outcome_event(context, spec, &note, Outcome::Completed { output_hash });
        self.audit().append(event).await.map(|_| ())
    }

    /// The one event of a call that ended as `outcome`.
    fn outcome_event(
        &self,
        context: &CallContext,
        spec: CallSpec,
        note: &AuditNote,
        outcome: Outcome<'_>,
    ) -> AuditEvent {
        let (error, output_hash) = match outcome {
            Outcome::Completed { output_hash } => (None, output_hash),
            Outcome::Failed(error) => (Some(error), None),
        };
        let refused_input = error.is_some_and(|error| error.code() == ErrorCode::InputInvalid)
            && !spec.input_from_gateway;
        let links = note.links();
        let account = note.account();
        self.audit_event(
            context,
            EventDraft {
                operation: context.tool.clone().unwrap_or(spec.operation),
                scope: spec.scope,
                error,
                account: account.as_ref(),
                input: &spec.input,
                refused_input,
                output_hash,
                durability: spec.durability,
                links: &links,
            },
        )
    }

    /// Builds one event: redacts the input (or summarizes an input refused as invalid),
    /// hashes it, names the account by its keyed hash, and adds the links and the caller's
    /// principal beside the redacted metadata.
    fn audit_event(&self, context: &CallContext, draft: EventDraft<'_>) -> AuditEvent {
        let directory = self.directory();
        let input = redact(draft.input, &|id: &str| directory.audit_hash(id));
        let occurred_at = self.clock().now();
        let (decision, status) = classify(draft.error);
        let event = AuditEvent {
            event_id: event_id(occurred_at),
            occurred_at,
            actor: context.actor().clone(),
            surface: context.surface(),
            operation: draft.operation,
            scope: draft.scope,
            decision,
            status,
            error_code: draft.error.map(GatewayError::code),
            account_id_hash: draft.account.map(|id| directory.audit_hash(id.expose())),
            input_hash: sha256_hex(input.value().to_string().as_bytes()),
            output_hash: draft.output_hash,
            metadata: input,
            durability: draft.durability,
        };
        let mut event = if draft.refused_input {
            self.with_refused_input(event, draft.input)
        } else {
            event
        };
        event.metadata = event
            .metadata
            .with_links(draft.links)
            .with_principal(context.principal().kind());
        event
    }

    /// Replaces an event's metadata by the summary of an input refused as invalid (its length,
    /// keyed hash and a redacted excerpt; see `redact_refused`), and its input hash by the
    /// summary's.
    fn with_refused_input(&self, mut event: AuditEvent, input: &Value) -> AuditEvent {
        let directory = self.directory();
        let mut tagged = b"refused input\0".to_vec();
        tagged.extend_from_slice(input.to_string().as_bytes());
        let input_mac = to_hex(&self.chain_key().tag(&tagged));
        let summary = redact_refused(input, &input_mac, &|id: &str| directory.audit_hash(id));
        event.input_hash = sha256_hex(summary.value().to_string().as_bytes());
        event.metadata = summary;
        event
    }

    /// Appends the one event of a remote request's bearer-token check, as the caller in
    /// `context` (the verified subject, or an unverified remote caller). An acceptance stores
    /// the token-id HMAC (when the token has a `jti`) as the event's output hash; a denial
    /// stores its code, and its reason and HTTP status as metadata. A failed append halts
    /// live writes, as every failed append does.
    ///
    /// # Errors
    /// `AUDIT_WRITE_FAILED` when the event cannot be stored; an accepted token must then not
    /// be served.
    pub(crate) async fn record_auth(
        &self,
        context: &CallContext,
        outcome: AuthOutcome,
    ) -> Result<(), GatewayError> {
        // The token-id HMAC is a keyed hash, so it is stored in the event's hash column: the
        // metadata redaction would (rightly) blank any 64-hex value as a possible secret.
        let mut token_id_hmac = None;
        let (operation, details, denied) = match outcome {
            AuthOutcome::Accepted {
                token_id_hmac: hmac,
            } => {
                let details = serde_json::json!({ "jti_present": hmac.is_some() });
                token_id_hmac = hmac;
                (AUTH_ACCEPTED_OPERATION, details, None)
            }
            AuthOutcome::Denied {
                code,
                reason,
                http_status,
            } => (
                AUTH_DENIED_OPERATION,
                serde_json::json!({ "reason": reason, "http_status": http_status }),
                Some(code),
            ),
        };
        let mut event = self.audit_event(
            context,
            EventDraft {
                operation: operation.to_owned(),
                scope: None,
                error: None,
                account: None,
                input: &details,
                refused_input: false,
                output_hash: token_id_hmac,
                durability: Durability::Relaxed,
                links: &AuditLinks::default(),
            },
        );
        if let Some(code) = denied {
            // No `GatewayError` stands for a refused token (it never reaches the pipeline), so
            // the denial is written with its code directly.
            event.decision = Decision::Deny;
            event.status = ResultStatus::DeniedScope;
            event.error_code = Some(code);
        }
        match self.audit().append(event).await {
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::error!(code = %error.code(), "an auth event could not be audited");
                self.halt_on_audit_failure().await;
                Err(GatewayError::Audit(error))
            }
        }
    }

    /// Appends one durable event for a step inside a write workflow (an intent before the
    /// broker call, an approval consumed or expired, a recovery), so that every step is on
    /// record, not only the call that contained it.
    ///
    /// # Errors
    /// `AUDIT_WRITE_FAILED` when the event cannot be stored; the caller must not proceed.
    pub(crate) async fn record_step(
        &self,
        context: &CallContext,
        operation: &str,
        scope: Option<Scope>,
        account: Option<&AccountId>,
        details: Value,
        error: Option<&GatewayError>,
    ) -> Result<(), GatewayError> {
        self.record_linked_step(
            context,
            operation,
            (scope, account),
            details,
            error,
            &AuditLinks::default(),
        )
        .await
    }

    /// [`Gateway::record_step`] with `links` stored beside the details. A failed append halts
    /// live writes, as in [`Gateway::audited`].
    ///
    /// # Errors
    /// `AUDIT_WRITE_FAILED` when the event cannot be stored; the caller must not proceed.
    pub(crate) async fn record_linked_step(
        &self,
        context: &CallContext,
        operation: &str,
        (scope, account): (Option<Scope>, Option<&AccountId>),
        details: Value,
        error: Option<&GatewayError>,
        links: &AuditLinks,
    ) -> Result<(), GatewayError> {
        let event = self.audit_event(
            context,
            EventDraft {
                operation: operation.to_owned(),
                scope,
                error,
                account,
                input: &details,
                refused_input: false,
                output_hash: None,
                durability: Durability::Durable,
                links,
            },
        );
        match self.audit().append(event).await {
            Ok(_) => Ok(()),
            Err(error) => {
                self.halt_on_audit_failure().await;
                Err(GatewayError::Audit(error))
            }
        }
    }
}
