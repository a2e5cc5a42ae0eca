//! The tool registry: every MCP tool defined once, with its name, title, model-facing
//! description, the one scope it requires, its toolset, its annotations, its input and output
//! types, and how its arguments become a call.
//!
//! Annotations are hints for the client's UI, never a control: what a call may do is decided
//! by its scope, the paper gates and the stored approval it names.

use std::sync::{Arc, LazyLock};

use rmcp::handler::server::tool::{schema_for_input, schema_for_output};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use rmcp::schemars::JsonSchema;
use serde_json::{Map, Value};

use super::arguments::{ArgumentProblem, typed};
use super::params::{
    AccountArguments, ApprovalCreateArguments, AuditExportArguments, AuditTailArguments,
    BarsArguments, BracketPreviewArguments, CancelPreviewArguments, ContractQueryArguments,
    ExecutionsArguments, NoArguments, OrderPreviewArguments, PaperCancelArguments,
    PaperModifyArguments, PaperSubmitArguments, SnapshotArguments, ToolCall,
};
use super::results::AuditExportOutput;
use crate::app::config::Toolset;
use crate::app::operation::Operation;
use crate::app::order_views::{ApprovalView, PaperOrderView, PreviewView};
use crate::app::views::{
    AccountSummaryView, AccountsView, AuditTailView, BackendStatusView, BarsView, ContractView,
    ContractsView, ExecutionsView, HealthView, OrdersView, PositionsView, QuoteView,
    SessionRequirementsView,
};
use crate::domain::scope::Scope;

/// Generic write tool names the server refuses (and audits) by name: orders change only through
/// the paper tools below, each under its own scope and with a stored approval.
pub(crate) const FORBIDDEN_WRITE_TOOLS: &[&str] = &[
    "ibkr_order_submit",
    "ibkr_order_cancel",
    "ibkr_order_modify",
    "ibkr_order_approve",
    "ibkr_order_preview_explain",
    "ibkr_order_intent_validate",
];

/// One tool, defined once.
pub(crate) struct ToolSpec {
    /// The MCP name.
    pub(crate) name: &'static str,
    /// The display title.
    pub(crate) title: &'static str,
    /// What it returns and when to use it, for the model.
    pub(crate) description: &'static str,
    /// The one scope it requires.
    pub(crate) scope: Scope,
    /// The group configuration can switch off.
    pub(crate) toolset: Toolset,
    /// The annotations `tools/list` shows.
    pub(crate) hints: Hints,
    /// The input schema, from the parameter type.
    pub(crate) input_schema: fn() -> Arc<JsonObject>,
    /// The output schema, from the output type.
    pub(crate) output_schema: fn() -> Arc<JsonObject>,
    /// Typed arguments to the call they ask for.
    pub(crate) build: fn(Map<String, Value>) -> Result<ToolCall, ArgumentProblem>,
}

/// The MCP tool annotations of one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hints {
    /// `readOnlyHint`: the tool changes nothing anywhere.
    pub(crate) read_only: bool,
    /// `destructiveHint`: the tool may change or remove something that already exists.
    pub(crate) destructive: bool,
    /// `idempotentHint`: calling again with the same arguments has no further effect.
    pub(crate) idempotent: bool,
    /// `openWorldHint`: the tool reaches the broker.
    pub(crate) open_world: bool,
}

/// A read that stays inside the gateway.
const LOCAL_READ: Hints = Hints {
    read_only: true,
    destructive: false,
    idempotent: true,
    open_world: false,
};

/// A read that reaches the broker.
const BROKER_READ: Hints = Hints {
    open_world: true,
    ..LOCAL_READ
};

/// A preview: stores a new record every call and asks the broker's what-if.
const PREVIEW: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: false,
    open_world: true,
};

/// An approval: stores a new record every call, without the broker.
const APPROVAL: Hints = Hints {
    open_world: false,
    ..PREVIEW
};

/// A submit: creates orders; the same idempotency key replays instead of acting again.
const SUBMIT: Hints = Hints {
    read_only: false,
    destructive: false,
    idempotent: true,
    open_world: true,
};

/// A modify or cancel: changes an existing order; keyed like a submit.
const CHANGE: Hints = Hints {
    destructive: true,
    ..SUBMIT
};

/// A registry entry with its MCP definition, built once.
pub(crate) struct Registered {
    /// The entry.
    pub(crate) spec: &'static ToolSpec,
    /// The definition `tools/list` shows.
    pub(crate) tool: Tool,
}

fn definition(spec: &ToolSpec) -> Tool {
    let annotations = ToolAnnotations::new()
        .read_only(spec.hints.read_only)
        .destructive(spec.hints.destructive)
        .idempotent(spec.hints.idempotent)
        .open_world(spec.hints.open_world);
    Tool::new(spec.name, spec.description, (spec.input_schema)())
        .with_title(spec.title)
        .with_raw_output_schema((spec.output_schema)())
        .with_annotations(annotations)
}

static REGISTERED: LazyLock<Vec<Registered>> = LazyLock::new(|| {
    TOOLS
        .iter()
        .map(|spec| Registered {
            spec,
            tool: definition(spec),
        })
        .collect()
});

/// Every tool with its definition, in the order `tools/list` shows them.
pub(crate) fn registered() -> &'static [Registered] {
    &REGISTERED
}

/// The tool named `name`, visible or not.
pub(crate) fn find(name: &str) -> Option<&'static Registered> {
    registered().iter().find(|entry| entry.spec.name == name)
}

/// Removes what costs context and tells a model nothing: the dialect (2020-12 is the MCP
/// default), integer `format`s, type-level descriptions of nested types, and property
/// descriptions that only restate the property's name ("Total cash." on `total_cash`).
fn compact(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            object.remove("$schema");
            if object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|format| format.starts_with("int") || format.starts_with("uint"))
            {
                object.remove("format");
            }
            if let Some(Value::Object(definitions)) = object.get_mut("$defs") {
                for definition in definitions.values_mut() {
                    if let Value::Object(definition) = definition {
                        definition.remove("description");
                    }
                }
            }
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if let Value::Object(property) = property {
                        let restates_name = property
                            .get("description")
                            .and_then(Value::as_str)
                            .is_some_and(|description| restates(name, description));
                        if restates_name {
                            property.remove("description");
                        }
                    }
                }
            }
            for value in object.values_mut() {
                compact(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(compact),
        _ => {}
    }
}

/// True when `description` says no more than the property name, e.g. `total_cash`: "Total
/// cash." or `account`: "The account.".
fn restates(name: &str, description: &str) -> bool {
    let description = description.trim_end_matches('.').to_lowercase();
    let description = description.strip_prefix("the ").unwrap_or(&description);
    description == name.replace('_', " ")
}

fn compacted(schema: &JsonObject) -> Arc<JsonObject> {
    let mut value = Value::Object(schema.clone());
    compact(&mut value);
    match value {
        Value::Object(object) => Arc::new(object),
        _ => Arc::new(schema.clone()),
    }
}

/// The schema of what `P` accepts. A type whose schema is not an object (a registry bug the
/// tests catch) gets a schema that accepts no arguments, so its calls fail closed.
fn input<P: JsonSchema + 'static>() -> Arc<JsonObject> {
    match schema_for_input::<P>() {
        Ok(schema) => compacted(&schema),
        Err(error) => {
            tracing::error!(%error, "a tool input schema is not an object; the tool accepts nothing");
            let mut closed = JsonObject::new();
            closed.insert("type".into(), Value::from("object"));
            closed.insert("properties".into(), Value::Object(Map::new()));
            closed.insert("additionalProperties".into(), Value::Bool(false));
            Arc::new(closed)
        }
    }
}

/// The schema of what `T` serializes to.
fn output<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    compacted(&schema_for_output::<T>())
}

fn read(operation: Operation) -> Result<ToolCall, ArgumentProblem> {
    Ok(ToolCall::Read(operation))
}

fn account(arguments: Map<String, Value>) -> Result<String, ArgumentProblem> {
    typed::<AccountArguments>(arguments).map(|arguments| arguments.account_id)
}

/// Every tool, in the order `tools/list` shows them.
static TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "ibkr_health",
        title: "Gateway health",
        description: "Gateway version, backend, audit store and granted scopes. Touches no broker; use it to check the gateway is up.",
        scope: Scope::HealthRead,
        toolset: Toolset::Session,
        hints: LOCAL_READ,
        input_schema: input::<NoArguments>,
        output_schema: output::<HealthView>,
        build: |arguments| typed::<NoArguments>(arguments).and_then(|_| read(Operation::Health)),
    },
    ToolSpec {
        name: "ibkr_backend_status",
        title: "Broker session status",
        description: "Broker session state: usable, login_required, competing_session or unavailable. Use when a call fails with BROKER_SESSION_REQUIRED.",
        scope: Scope::HealthRead,
        toolset: Toolset::Session,
        hints: BROKER_READ,
        input_schema: input::<NoArguments>,
        output_schema: output::<BackendStatusView>,
        build: |arguments| {
            typed::<NoArguments>(arguments).and_then(|_| read(Operation::BackendStatus))
        },
    },
    ToolSpec {
        name: "ibkr_session_requirements",
        title: "Session requirements",
        description: "Whether the broker session is ready and, if not, the login URL and steps a person must take. The gateway never logs in itself.",
        scope: Scope::HealthRead,
        toolset: Toolset::Session,
        hints: BROKER_READ,
        input_schema: input::<NoArguments>,
        output_schema: output::<SessionRequirementsView>,
        build: |arguments| {
            typed::<NoArguments>(arguments).and_then(|_| read(Operation::SessionRequirements))
        },
    },
    ToolSpec {
        name: "ibkr_accounts_list",
        title: "List accounts",
        description: "Accounts visible to this session. Call first: each account_ref is what account_id takes.",
        scope: Scope::AccountsRead,
        toolset: Toolset::Account,
        hints: BROKER_READ,
        input_schema: input::<NoArguments>,
        output_schema: output::<AccountsView>,
        build: |arguments| {
            typed::<NoArguments>(arguments).and_then(|_| read(Operation::AccountsList))
        },
    },
    ToolSpec {
        name: "ibkr_account_summary",
        title: "Account summary",
        description: "Balances and margin of one account: net liquidation, cash, buying power, margin and cash per currency (decimal strings).",
        scope: Scope::PortfolioRead,
        toolset: Toolset::Account,
        hints: BROKER_READ,
        input_schema: input::<AccountArguments>,
        output_schema: output::<AccountSummaryView>,
        build: |arguments| {
            account(arguments).and_then(|account| read(Operation::AccountSummary { account }))
        },
    },
    ToolSpec {
        name: "ibkr_positions_list",
        title: "List positions",
        description: "Open positions of one account with quantity, average cost, market value and P&L.",
        scope: Scope::PositionsRead,
        toolset: Toolset::Account,
        hints: BROKER_READ,
        input_schema: input::<AccountArguments>,
        output_schema: output::<PositionsView>,
        build: |arguments| {
            account(arguments).and_then(|account| read(Operation::PositionsList { account }))
        },
    },
    ToolSpec {
        name: "ibkr_contracts_search",
        title: "Search contracts",
        description: "Contracts matching a symbol, contract id or description words, optionally filtered. Use to find a contract_id.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: BROKER_READ,
        input_schema: input::<ContractQueryArguments>,
        output_schema: output::<ContractsView>,
        build: |arguments| {
            typed::<ContractQueryArguments>(arguments).map(ContractQueryArguments::search)
        },
    },
    ToolSpec {
        name: "ibkr_contract_resolve",
        title: "Resolve one contract",
        description: "The one contract a query names; fails with INPUT_AMBIGUOUS_CONTRACT, listing candidates, when several match.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: BROKER_READ,
        input_schema: input::<ContractQueryArguments>,
        output_schema: output::<ContractView>,
        build: |arguments| {
            typed::<ContractQueryArguments>(arguments).map(ContractQueryArguments::resolve)
        },
    },
    ToolSpec {
        name: "ibkr_market_snapshot",
        title: "Quote snapshot",
        description: "Current quote of one contract: bid, ask, last, sizes, volume, data status and age; greeks for options.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: BROKER_READ,
        input_schema: input::<SnapshotArguments>,
        output_schema: output::<QuoteView>,
        build: |arguments| typed::<SnapshotArguments>(arguments).map(SnapshotArguments::into_call),
    },
    ToolSpec {
        name: "ibkr_historical_bars",
        title: "Historical bars",
        description: "Open, high, low, close and volume bars of one contract over a period, oldest first.",
        scope: Scope::MarketDataRead,
        toolset: Toolset::Market,
        hints: BROKER_READ,
        input_schema: input::<BarsArguments>,
        output_schema: output::<BarsView>,
        build: |arguments| typed::<BarsArguments>(arguments).map(BarsArguments::into_call),
    },
    ToolSpec {
        name: "ibkr_orders_list",
        title: "List orders",
        description: "Working and recent orders of one account at the broker. Read-only; paper orders change only through the approval-gated paper tools.",
        scope: Scope::OrdersRead,
        toolset: Toolset::Orders,
        hints: BROKER_READ,
        input_schema: input::<AccountArguments>,
        output_schema: output::<OrdersView>,
        build: |arguments| {
            account(arguments).and_then(|account| read(Operation::OrdersList { account }))
        },
    },
    ToolSpec {
        name: "ibkr_executions_list",
        title: "List executions",
        description: "Fills of one account, newest first, optionally only since a time.",
        scope: Scope::OrdersRead,
        toolset: Toolset::Orders,
        hints: BROKER_READ,
        input_schema: input::<ExecutionsArguments>,
        output_schema: output::<ExecutionsView>,
        build: |arguments| {
            typed::<ExecutionsArguments>(arguments).map(ExecutionsArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_order_preview",
        title: "Preview an order",
        description: "Checks an order (or, with modify_order_id, a replacement) with the broker's what-if and stores a non-executable preview; places nothing. A person must approve it.",
        scope: Scope::OrdersPreview,
        toolset: Toolset::Orders,
        hints: PREVIEW,
        input_schema: input::<OrderPreviewArguments>,
        output_schema: output::<PreviewView>,
        build: |arguments| {
            typed::<OrderPreviewArguments>(arguments).map(OrderPreviewArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_bracket_order_preview",
        title: "Preview a bracket order",
        description: "Checks a limit entry with take-profit and stop-loss exits with the broker's what-if and stores one non-executable preview. A person must approve it.",
        scope: Scope::OrdersPreview,
        toolset: Toolset::Orders,
        hints: PREVIEW,
        input_schema: input::<BracketPreviewArguments>,
        output_schema: output::<PreviewView>,
        build: |arguments| {
            typed::<BracketPreviewArguments>(arguments).map(BracketPreviewArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_order_cancel_preview",
        title: "Preview cancelling a bracket child",
        description: "Stores a non-executable preview of cancelling one working order alone; cancels nothing. Needed only for a bracket's take-profit or stop-loss, which a person must approve.",
        scope: Scope::OrdersPreview,
        toolset: Toolset::Orders,
        hints: PREVIEW,
        input_schema: input::<CancelPreviewArguments>,
        output_schema: output::<PreviewView>,
        build: |arguments| {
            typed::<CancelPreviewArguments>(arguments).map(CancelPreviewArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_approvals_create",
        title: "Approve a preview",
        description: "Records a person's approval of an unexpired preview. Call only on a person's explicit instruction; the approval_id is what a paper submit needs.",
        scope: Scope::ApprovalsCreate,
        toolset: Toolset::Orders,
        hints: APPROVAL,
        input_schema: input::<ApprovalCreateArguments>,
        output_schema: output::<ApprovalView>,
        build: |arguments| {
            typed::<ApprovalCreateArguments>(arguments).map(ApprovalCreateArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_paper_order_submit",
        title: "Submit a paper order",
        description: "Places the approved order preview on a paper account, consuming the approval. Reusing idempotency_key replays the first outcome.",
        scope: Scope::OrdersPaperSubmit,
        toolset: Toolset::Orders,
        hints: SUBMIT,
        input_schema: input::<PaperSubmitArguments>,
        output_schema: output::<PaperOrderView>,
        build: |arguments| {
            typed::<PaperSubmitArguments>(arguments).map(PaperSubmitArguments::submit)
        },
    },
    ToolSpec {
        name: "ibkr_paper_bracket_order_submit",
        title: "Submit a paper bracket order",
        description: "Places the three legs of an approved bracket preview on a paper account, consuming the approval. Reusing idempotency_key replays the first outcome.",
        scope: Scope::OrdersPaperSubmit,
        toolset: Toolset::Orders,
        hints: SUBMIT,
        input_schema: input::<PaperSubmitArguments>,
        output_schema: output::<PaperOrderView>,
        build: |arguments| {
            typed::<PaperSubmitArguments>(arguments).map(PaperSubmitArguments::bracket_submit)
        },
    },
    ToolSpec {
        name: "ibkr_paper_order_modify",
        title: "Modify a paper order",
        description: "Changes a working paper order to the values of an approved preview made with modify_order_id. Reusing idempotency_key replays the first outcome.",
        scope: Scope::OrdersPaperModify,
        toolset: Toolset::Orders,
        hints: CHANGE,
        input_schema: input::<PaperModifyArguments>,
        output_schema: output::<PaperOrderView>,
        build: |arguments| {
            typed::<PaperModifyArguments>(arguments).map(PaperModifyArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_paper_order_cancel",
        title: "Cancel a paper order",
        description: "Asks the broker to cancel a working paper order. A bracket's take-profit or stop-loss alone needs approval_id of an approved ibkr_order_cancel_preview. Reusing idempotency_key replays.",
        scope: Scope::OrdersPaperCancel,
        toolset: Toolset::Orders,
        hints: CHANGE,
        input_schema: input::<PaperCancelArguments>,
        output_schema: output::<PaperOrderView>,
        build: |arguments| {
            typed::<PaperCancelArguments>(arguments).map(PaperCancelArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_audit_tail",
        title: "Audit tail",
        description: "Newest gateway audit events, newest first, each verified against the audit chain.",
        scope: Scope::AuditRead,
        toolset: Toolset::Audit,
        hints: LOCAL_READ,
        input_schema: input::<AuditTailArguments>,
        output_schema: output::<AuditTailView>,
        build: |arguments| {
            typed::<AuditTailArguments>(arguments).map(AuditTailArguments::into_call)
        },
    },
    ToolSpec {
        name: "ibkr_audit_export",
        title: "Audit export",
        description: "Audit events by sequence range, at most 500 per call, with a verification trailer (count, SHA-256, chain head); next from_seq: trailer.last_sequence + 1.",
        scope: Scope::AuditExport,
        toolset: Toolset::Audit,
        hints: LOCAL_READ,
        input_schema: input::<AuditExportArguments>,
        output_schema: output::<AuditExportOutput>,
        build: |arguments| {
            typed::<AuditExportArguments>(arguments)?
                .into_call()
                .map_err(ArgumentProblem::new)
        },
    },
];

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample_arguments(spec: &ToolSpec) -> Map<String, Value> {
        let schema = (spec.input_schema)();
        let mut arguments = Map::new();
        let required = schema.get("required").and_then(Value::as_array);
        for name in required.into_iter().flatten().filter_map(Value::as_str) {
            let value = match name {
                "account_id" => json!("DU1234567"),
                "query" => json!("AAPL"),
                "contract_id" => json!(265_598),
                "period" => json!("5d"),
                "bar" => json!("1h"),
                "side" => json!("BUY"),
                "quantity" => json!("10"),
                "order_type" => json!("LMT"),
                "entry_price" | "take_profit_price" | "stop_loss_price" => json!("100"),
                "preview_id" => json!("prv_1"),
                "approval_id" => json!("apr_1"),
                "idempotency_key" => json!("key-1"),
                "order_id" => json!("lc-1"),
                other => panic!("no sample for {other}"),
            };
            arguments.insert(name.to_owned(), value);
        }
        arguments
    }

    #[test]
    fn names_are_unique_well_formed_and_never_forbidden() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in TOOLS {
            assert!(seen.insert(spec.name), "duplicate {}", spec.name);
            assert!(spec.name.starts_with("ibkr_"));
            assert!(spec.name.len() <= 64);
            assert!(
                spec.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            assert!(!FORBIDDEN_WRITE_TOOLS.contains(&spec.name));
        }
    }

    #[test]
    fn only_tools_with_read_scopes_are_annotated_read_only() {
        for spec in TOOLS {
            let hints = spec.hints;
            assert_eq!(hints.read_only, !spec.scope.is_write(), "{}", spec.name);
            assert!(!(hints.read_only && hints.destructive), "{}", spec.name);
            assert!(
                spec.toolset == Toolset::Orders || !spec.scope.is_write(),
                "{}",
                spec.name
            );
        }
    }

    /// The scope the gateway call behind `call` checks (outside the CLI).
    fn scope_of(call: &ToolCall) -> Option<Scope> {
        match call {
            ToolCall::Read(operation) => Some(operation.scope()),
            ToolCall::AuditExport(_) => Some(Scope::AuditExport),
            ToolCall::OrderPreview(_)
            | ToolCall::BracketPreview(_)
            | ToolCall::CancelPreview(_) => Some(Scope::OrdersPreview),
            ToolCall::ApprovalCreate(_) => Some(Scope::ApprovalsCreate),
            ToolCall::PaperSubmit(_) | ToolCall::PaperBracketSubmit(_) => {
                Some(Scope::OrdersPaperSubmit)
            }
            ToolCall::PaperModify(_) => Some(Scope::OrdersPaperModify),
            ToolCall::PaperCancel(_) => Some(Scope::OrdersPaperCancel),
        }
    }

    #[test]
    fn each_tool_runs_the_call_of_its_own_scope() {
        for spec in TOOLS {
            let call = (spec.build)(sample_arguments(spec)).unwrap();
            assert_eq!(scope_of(&call), Some(spec.scope), "{}", spec.name);
        }
    }

    #[test]
    fn order_arguments_become_the_raw_inputs_the_app_parses() {
        let spec = find("ibkr_order_preview").unwrap().spec;
        let arguments = json!({
            "account_id": "DU1234567",
            "contract_id": 265_598,
            "side": "SELL",
            "quantity": "5",
            "order_type": "STP LMT",
            "limit_price": "99.5",
            "stop_price": "100",
            "modify_order_id": "lc-3"
        });
        let call = (spec.build)(arguments.as_object().cloned().unwrap()).unwrap();
        assert_eq!(
            call,
            ToolCall::OrderPreview(crate::app::order_input::RawOrderPreview {
                account: "DU1234567".into(),
                contract_id: "265598".into(),
                side: "SELL".into(),
                quantity: "5".into(),
                order_type: "STP LMT".into(),
                limit_price: Some("99.5".into()),
                stop_price: Some("100".into()),
                trailing_amount: None,
                trailing_percent: None,
                time_in_force: Some("DAY".into()),
                modify_order_id: Some("lc-3".into()),
            })
        );
        let submit = find("ibkr_paper_bracket_order_submit").unwrap().spec;
        let arguments = json!({"account_id": "a", "approval_id": "apr_1", "idempotency_key": "k"});
        assert!(matches!(
            (submit.build)(arguments.as_object().cloned().unwrap()).unwrap(),
            ToolCall::PaperBracketSubmit(_)
        ));
    }

    #[test]
    fn every_input_schema_is_a_closed_object_with_described_properties() {
        for spec in TOOLS {
            let schema = (spec.input_schema)();
            assert_eq!(schema.get("type"), Some(&json!("object")), "{}", spec.name);
            assert_eq!(
                schema.get("additionalProperties"),
                Some(&json!(false)),
                "{}",
                spec.name
            );
            let empty = Map::new();
            let properties = schema
                .get("properties")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for (name, property) in properties {
                assert!(
                    property.get("description").is_some(),
                    "{}.{name} has no description",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn export_ranges_are_bounded() {
        let spec = find("ibkr_audit_export").unwrap().spec;
        let call = (spec.build)(Map::new()).unwrap();
        assert_eq!(
            call,
            ToolCall::AuditExport(crate::app::audit_reads::RawExportRange {
                from_seq: Some(1),
                to_seq: Some(500),
                since: None,
            })
        );
        let wide = json!({"from_seq": 10, "to_seq": 510})
            .as_object()
            .cloned()
            .unwrap();
        let problem = (spec.build)(wide).err().unwrap();
        assert!(problem.message().starts_with("`to_seq` must be at most"));
        let edge = json!({"from_seq": 10, "to_seq": 509})
            .as_object()
            .cloned()
            .unwrap();
        (spec.build)(edge).unwrap();
    }
}
