//! The one pipeline every use case runs through: resolve (the caller picked the type, or the
//! registry entry by name), check the scope against the principal, validate the input, run,
//! and record exactly one audit event. Refused scopes and malformed input are recorded too,
//! one event each, through [`Gateway::refuse`]: no call is ever faked to record a refusal.

use serde_json::{Map, Value};

use super::{BoxFuture, Entry, Outcome, RecordedBy, UseCase, arguments};
use crate::app::audited::{AuditNote, CallContext, CallSpec};
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::domain::audit::Durability;

/// What the audit log records of a call of `U` with `input`.
fn spec_of<U: UseCase>(context: &CallContext, input: Value) -> CallSpec {
    CallSpec {
        operation: U::DEFINITION.name.to_owned(),
        scope: U::required_scope(context.principal()),
        input,
        durability: Durability::Relaxed,
        input_from_gateway: false,
    }
}

/// Runs `U` with a typed input.
pub(super) async fn run_typed<U: UseCase>(
    gateway: &Gateway,
    context: &CallContext,
    input: U::Input,
) -> Outcome<U::Output> {
    match U::RECORDED_BY {
        RecordedBy::Pipeline => {
            let recorded = serde_json::to_value(&input).unwrap_or(Value::Null);
            let spec = spec_of::<U>(context, recorded);
            gateway
                .audited(context, spec, |note| async move {
                    U::run(gateway, context, &note, input).await
                })
                .await
        }
        // The workflow checks the scope and records its call itself.
        RecordedBy::Workflow => U::run(gateway, context, &AuditNote::default(), input).await,
    }
}

/// Runs `U` from JSON arguments: checked against the input schema (every refusal names the
/// argument), parsed, run; the output as JSON.
pub(super) fn run_json<'a, U: UseCase>(
    gateway: &'a Gateway,
    context: &'a CallContext,
    entry: &'a Entry,
    given: Map<String, Value>,
) -> BoxFuture<'a, Outcome<Value>> {
    Box::pin(async move {
        let parsed = arguments::check(entry.input_schema(), &given)
            .map_err(|problem| problem.message().to_owned())
            .and_then(|()| U::parse_arguments(given.clone()));
        match parsed {
            Err(message) => {
                let spec = spec_of::<U>(context, Value::Object(given));
                let refusal = GatewayError::invalid_input("arguments", message);
                Err(gateway.refuse(context, spec, refusal).await)
            }
            Ok(input) => {
                let output = run_typed::<U>(gateway, context, input).await?;
                serde_json::to_value(output).map_err(|_| GatewayError::Internal {
                    message: "the result could not be encoded".into(),
                })
            }
        }
    })
}
