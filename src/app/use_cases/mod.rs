//! The registry of use cases: every capability a front end can call is one [`UseCase`] type,
//! declared once, and listed once in [`registry`].
//!
//! A use case declares its stable name (the audit operation and the CLI's command words), its
//! MCP tool name, title, description, toolset and annotations, the scope it requires, its
//! `Input` (deserialized, checked against its own schema, then parsed into domain types by
//! the use case) and its `Output`. From the registry come the MCP `tools/list` and dispatch,
//! the scope check (once, in the pipeline, against the call's principal), the audit naming,
//! and the CLI's `--json` output. The pipeline is the private `pipeline` module;
//! ADR 0011 has the reasons.
//!
//! `docs/adding-a-use-case.md` walks through adding one.

pub mod account_reads;
pub mod arguments;
pub mod audit;
pub mod cash_fx;
pub mod depth;
pub mod inputs;
pub mod live;
pub mod news_calendar;
pub mod options;
pub mod orders;
mod pipeline;
pub mod reads;
pub mod research;
pub mod schema;

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::app::audited::{AuditNote, CallContext};
use crate::app::config::Toolset;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::app::principal::Principal;
use crate::domain::scope::Scope;

pub use self::schema::JsonObject;

/// The MCP tool annotations of one use case. Hints for a client's UI, never a control: what a
/// call may do is decided by its scope, the paper gates and the stored approval it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    /// `readOnlyHint`: the use case changes nothing anywhere.
    pub read_only: bool,
    /// `destructiveHint`: it may change or remove something that already exists.
    pub destructive: bool,
    /// `idempotentHint`: calling again with the same input has no further effect.
    pub idempotent: bool,
    /// `openWorldHint`: it reaches the broker.
    pub open_world: bool,
}

impl Hints {
    /// A read that stays inside the gateway.
    pub const LOCAL_READ: Self = Self {
        read_only: true,
        destructive: false,
        idempotent: true,
        open_world: false,
    };

    /// A read that reaches the broker.
    pub const BROKER_READ: Self = Self {
        open_world: true,
        ..Self::LOCAL_READ
    };

    /// A preview: stores a new record every call and asks the broker's what-if.
    pub const PREVIEW: Self = Self {
        read_only: false,
        destructive: false,
        idempotent: false,
        open_world: true,
    };

    /// An approval: stores a new record every call, without the broker.
    pub const APPROVAL: Self = Self {
        open_world: false,
        ..Self::PREVIEW
    };

    /// A submit: creates orders; the same idempotency key replays instead of acting again.
    pub const SUBMIT: Self = Self {
        read_only: false,
        destructive: false,
        idempotent: true,
        open_world: true,
    };

    /// A modify or cancel: changes an existing order; keyed like a submit.
    pub const CHANGE: Self = Self {
        destructive: true,
        ..Self::SUBMIT
    };
}

/// What a use case is, for every front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Definition {
    /// The stable name: the audit operation of CLI and library calls, e.g. `positions list`.
    pub name: &'static str,
    /// The CLI's command words, e.g. `positions list`; the stable name for every read (the
    /// order workflows kept the command words they had before their audit names were fixed).
    pub command: &'static str,
    /// The MCP tool name (recorded as the operation of MCP calls), e.g. `ibkr_positions_list`;
    /// reserved, never listed, for a use case that is no MCP tool.
    pub tool: &'static str,
    /// The display title.
    pub title: &'static str,
    /// What it returns and when to use it, for a model choosing a tool.
    pub description: &'static str,
    /// The scope an agent needs.
    pub scope: Scope,
    /// The group configuration can switch off.
    pub toolset: Toolset,
    /// The MCP annotations.
    pub hints: Hints,
}

/// Who records a use case's one audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedBy {
    /// The pipeline: scope check, run, one event (every read).
    Pipeline,
    /// The write workflow the use case runs, which checks the scope and records its call (and
    /// its durable steps) itself; the pipeline records only input it refuses before that.
    Workflow,
}

/// The outcome of a use case.
pub type Outcome<T> = Result<T, GatewayError>;

/// One use case.
pub trait UseCase: Send + Sync + 'static {
    /// What a caller sends. `Deserialize` and its schema are the MCP input contract; its
    /// `Serialize` form is what the audit log records (redacted).
    type Input: DeserializeOwned + Serialize + JsonSchema + Send + 'static;
    /// What the use case returns; its `Serialize` form is the MCP structured content and the
    /// CLI's `--json` output.
    type Output: Serialize + JsonSchema + Send + 'static;

    /// Names, scope, toolset, annotations.
    const DEFINITION: Definition;

    /// Who records the call's event.
    const RECORDED_BY: RecordedBy = RecordedBy::Pipeline;

    /// False for the operator's own use cases (managing approvals), which the MCP server
    /// never lists or runs; the CLI and the library still do.
    const MCP_TOOL: bool = true;

    /// The scope `principal` needs for this use case. Defaults to the definition's scope;
    /// approval creation follows the principal policy instead.
    fn required_scope(principal: &Principal) -> Option<Scope> {
        let _ = principal;
        Some(Self::DEFINITION.scope)
    }

    /// Turns arguments that passed the schema check into the input; a use case with a rule
    /// the schema cannot state (a bounded range) checks it here.
    ///
    /// # Errors
    /// A message naming the argument.
    fn parse_arguments(arguments: Map<String, Value>) -> Result<Self::Input, String> {
        arguments::typed(arguments).map_err(|problem| problem.message().to_owned())
    }

    /// Runs the use case: parses the input into domain types, gathers through ports, applies
    /// the domain, returns views. `note` collects what the audit record links to.
    fn run(
        gateway: &Gateway,
        context: &CallContext,
        note: &AuditNote,
        input: Self::Input,
    ) -> impl Future<Output = Outcome<Self::Output>> + Send;
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

type RunJson = for<'a> fn(
    &'a Gateway,
    &'a CallContext,
    &'a Entry,
    Map<String, Value>,
) -> BoxFuture<'a, Outcome<Value>>;

/// One registered use case, type-erased for the front ends that dispatch by name.
pub struct Entry {
    definition: Definition,
    mcp_tool: bool,
    required_scope: fn(&Principal) -> Option<Scope>,
    input_schema: JsonObject,
    output_schema: JsonObject,
    run_json: RunJson,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.definition.name)
            .finish_non_exhaustive()
    }
}

impl Entry {
    /// The entry of `U`, with its schemas generated once.
    pub(crate) fn of<U: UseCase>() -> Self {
        Self {
            definition: U::DEFINITION,
            mcp_tool: U::MCP_TOOL,
            required_scope: U::required_scope,
            input_schema: schema::input_schema::<U::Input>(),
            output_schema: schema::output_schema::<U::Output>(),
            run_json: pipeline::run_json::<U>,
        }
    }

    /// The same entry under other CLI command words (tests of generated commands).
    #[must_use]
    pub fn with_command(mut self, command: &'static str) -> Self {
        self.definition.command = command;
        self
    }

    /// Names, scope, toolset, annotations.
    pub fn definition(&self) -> &Definition {
        &self.definition
    }

    /// True when the MCP server lists and runs it.
    pub fn is_mcp_tool(&self) -> bool {
        self.mcp_tool
    }

    /// The scope `principal` needs.
    pub fn required_scope(&self, principal: &Principal) -> Option<Scope> {
        (self.required_scope)(principal)
    }

    /// True when `principal` may call it in a deployment granting `granted`.
    pub fn is_visible_to(
        &self,
        principal: &Principal,
        granted: &crate::domain::scope::ScopeSet,
    ) -> bool {
        self.required_scope(principal)
            .is_none_or(|scope| principal.holds(scope, granted))
    }

    /// The input's JSON Schema (compacted).
    pub fn input_schema(&self) -> &JsonObject {
        &self.input_schema
    }

    /// The output's outline.
    pub fn output_schema(&self) -> &JsonObject {
        &self.output_schema
    }
}

/// Every use case, in the order `tools/list` shows them. Each module registers its own use
/// cases, so adding one touches only its module.
static REGISTRY: LazyLock<Vec<Entry>> = LazyLock::new(|| {
    let mut entries = reads::entries();
    entries.extend(account_reads::entries());
    entries.extend(options::entries());
    entries.extend(depth::entries());
    entries.extend(research::entries());
    entries.extend(news_calendar::entries());
    entries.extend(cash_fx::entries());
    entries.extend(orders::entries());
    entries.extend(live::entries());
    entries.extend(audit::entries());
    entries
});

/// Every registered use case.
pub fn registry() -> &'static [Entry] {
    &REGISTRY
}

/// The MCP tool named `tool`.
pub fn by_tool(tool: &str) -> Option<&'static Entry> {
    registry()
        .iter()
        .find(|entry| entry.mcp_tool && entry.definition.tool == tool)
}

/// The use case whose stable name (its audit operation) is `name`.
pub fn by_name(name: &str) -> Option<&'static Entry> {
    registry()
        .iter()
        .find(|entry| entry.definition.name == name)
}

impl Gateway {
    /// Runs the use case `U` as `context`'s principal: scope check, run, exactly one audit
    /// event. The typed entry point for library callers and the CLI.
    ///
    /// # Errors
    /// The use case's errors, `AUTH_MISSING_SCOPE`, or `AUDIT_WRITE_FAILED`.
    pub async fn run_as<U: UseCase>(
        &self,
        context: &CallContext,
        input: U::Input,
    ) -> Outcome<U::Output> {
        pipeline::run_typed::<U>(self, context, input).await
    }

    /// [`Gateway::run_as`] as the operator through the library (surface `sdk`), e.g.
    /// `gateway.run::<PositionsList>(AccountInput::new("acct_1")).await`.
    ///
    /// # Errors
    /// As [`Gateway::run_as`].
    pub async fn run<U: UseCase>(&self, input: U::Input) -> Outcome<U::Output> {
        self.run_as::<U>(&CallContext::sdk(), input).await
    }

    /// Runs a registered use case from JSON arguments (the MCP dispatch): the scope is checked,
    /// then the arguments against the input schema, then the use case runs; exactly one audit
    /// event whatever happens. Returns the output as JSON.
    ///
    /// # Errors
    /// `AUTH_MISSING_SCOPE`, `INPUT_INVALID` naming the argument, the use case's errors, or
    /// `AUDIT_WRITE_FAILED`.
    pub async fn run_entry(
        &self,
        context: &CallContext,
        entry: &Entry,
        arguments: Map<String, Value>,
    ) -> Outcome<Value> {
        (entry.run_json)(self, context, entry, arguments).await
    }
}
