//! Output views of the order workflows: previews, approvals, paper order outcomes and
//! recovery. Like every view they name accounts by reference and masked display only, and
//! decimals serialize as strings.
//!
//! The outcome views also deserialize: an idempotent write stores its outcome as this JSON and
//! a replay returns it unchanged (with `replayed: true`).

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::app::account_directory::AccountDirectory;
use crate::domain::approval::Approval;
use crate::domain::ids::AccountId;
use crate::domain::order_intent::{OrderIntent, TrailingOffset};
use crate::domain::preview::{Preview, PreviewKind, WhatIf};

fn timestamp(value: DateTime<Utc>) -> String {
    value.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The longest broker warning passed through.
const MAX_WARNING_CHARS: usize = 300;

/// One leg of a previewed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct OrderLegView {
    /// `order`, or for a bracket `entry`, `take_profit` or `stop_loss`.
    pub leg: String,
    /// Contract id.
    pub contract_id: u64,
    /// `BUY` or `SELL`.
    pub side: String,
    /// Units.
    pub quantity: Decimal,
    /// `LMT`, `MKT`, `STP`, `STP LMT` or `TRAIL`.
    pub order_type: String,
    /// Limit price.
    pub limit_price: Option<Decimal>,
    /// Stop price.
    pub stop_price: Option<Decimal>,
    /// Trailing distance in price units.
    pub trailing_amount: Option<Decimal>,
    /// Trailing distance in percent.
    pub trailing_percent: Option<Decimal>,
    /// Time in force.
    pub time_in_force: String,
}

impl OrderLegView {
    /// The view of one leg.
    pub fn new(leg: &str, intent: &OrderIntent) -> Self {
        let (trailing_amount, trailing_percent) = match intent.trailing() {
            Some(TrailingOffset::Amount(amount)) => (Some(amount.value()), None),
            Some(TrailingOffset::Percent(percent)) => (None, Some(percent)),
            None => (None, None),
        };
        Self {
            leg: leg.to_owned(),
            contract_id: intent.contract_id().value(),
            side: intent.side().code().to_owned(),
            quantity: intent.quantity().value(),
            order_type: intent.order_type().code().to_owned(),
            limit_price: intent.limit_price().map(|price| price.value()),
            stop_price: intent.stop_price().map(|price| price.value()),
            trailing_amount,
            trailing_percent,
            time_in_force: intent.time_in_force().code().to_owned(),
        }
    }
}

/// The names of a preview's legs, in order.
pub fn leg_names(kind: &PreviewKind) -> &'static [&'static str] {
    match kind {
        PreviewKind::Order | PreviewKind::Modify { .. } | PreviewKind::Cancel { .. } => &["order"],
        PreviewKind::Bracket => &["entry", "take_profit", "stop_loss"],
    }
}

/// The broker's what-if figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WhatIfView {
    /// Commission (the upper end of a range).
    pub commission: Option<Decimal>,
    /// The commission's currency.
    pub commission_currency: Option<String>,
    /// Change of initial margin.
    pub initial_margin_change: Option<Decimal>,
    /// Initial margin after the order.
    pub initial_margin_after: Option<Decimal>,
    /// Change of maintenance margin.
    pub maintenance_margin_change: Option<Decimal>,
    /// Maintenance margin after the order.
    pub maintenance_margin_after: Option<Decimal>,
    /// Equity with loan after the order.
    pub equity_after: Option<Decimal>,
    /// The broker's warnings (broker text, bounded).
    #[schemars(extend("x-untrusted" = true))]
    pub broker_warnings: Vec<String>,
}

impl From<&WhatIf> for WhatIfView {
    fn from(what_if: &WhatIf) -> Self {
        Self {
            commission: what_if.commission.map(|money| money.amount()),
            commission_currency: what_if.commission.map(|money| money.currency().to_string()),
            initial_margin_change: what_if.initial_margin_change,
            initial_margin_after: what_if.initial_margin_after,
            maintenance_margin_change: what_if.maintenance_margin_change,
            maintenance_margin_after: what_if.maintenance_margin_after,
            equity_after: what_if.equity_after,
            broker_warnings: what_if
                .warnings
                .iter()
                .map(|text| crate::domain::broker_text::clean(text, MAX_WARNING_CHARS))
                .collect(),
        }
    }
}

/// A stored preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PreviewView {
    /// The preview's id; an approval names it.
    pub preview_id: String,
    /// `order`, `bracket`, `modify` or `cancel`.
    pub kind: String,
    /// The working order a `modify` preview replaces.
    pub modifies_order_id: Option<String>,
    /// The working order a `cancel` preview would cancel (absent for the other kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancels_order_id: Option<String>,
    /// The account's reference.
    pub account_ref: String,
    /// The account's masked id.
    pub account_display: String,
    /// The contract's symbol.
    pub symbol: String,
    /// The legs, entry first.
    pub legs: Vec<OrderLegView>,
    /// SHA-256 of the canonical order encoding; the approval binds to it.
    pub order_digest: String,
    /// The broker's what-if figures.
    pub what_if: WhatIfView,
    /// When it was made.
    pub created_at: String,
    /// When it stops being usable.
    pub expires_at: String,
    /// Always false: a preview never creates an order at the broker.
    pub executable: bool,
    /// What happens next.
    pub next_step: String,
}

impl PreviewView {
    /// The view of a stored preview.
    pub fn new(directory: &AccountDirectory, preview: &Preview) -> Self {
        let (account_ref, account_display) = account_names(directory, preview.account_id());
        let names = leg_names(&preview.kind);
        Self {
            preview_id: preview.id.to_string(),
            kind: preview.kind.as_str().to_owned(),
            modifies_order_id: match &preview.kind {
                PreviewKind::Modify { order_id } => Some(order_id.to_string()),
                _ => None,
            },
            cancels_order_id: match &preview.kind {
                PreviewKind::Cancel { order_id } => Some(order_id.to_string()),
                _ => None,
            },
            account_ref,
            account_display,
            symbol: preview.symbol.chars().take(32).collect(),
            legs: preview
                .legs
                .iter()
                .zip(names.iter().chain(std::iter::repeat(&"leg")))
                .map(|(leg, name)| OrderLegView::new(name, leg))
                .collect(),
            order_digest: preview.digest.to_hex(),
            what_if: WhatIfView::from(&preview.what_if),
            created_at: timestamp(preview.created_at),
            expires_at: timestamp(preview.expires_at),
            executable: false,
            next_step: match preview.kind {
                PreviewKind::Cancel { .. } => "a person approves this preview (`ibkr-agent approvals create --preview-id …`), then the paper cancel of that order names the approval; nothing is cancelled until then".to_owned(),
                _ => "a person approves this preview (`ibkr-agent approvals create --preview-id …`), then the paper submit names the approval".to_owned(),
            },
        }
    }
}

fn account_names(directory: &AccountDirectory, account: Option<&AccountId>) -> (String, String) {
    match account {
        Some(id) => {
            let identity = directory.identity(id);
            (identity.account_ref, identity.display)
        }
        None => (String::new(), String::new()),
    }
}

/// A stored approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalView {
    /// The approval's id; a paper submit names it.
    pub approval_id: String,
    /// The approved preview.
    pub preview_id: String,
    /// The account's reference.
    pub account_ref: String,
    /// The account's masked id.
    pub account_display: String,
    /// `approved`, `consumed`, `expired` or `revoked`, as of now.
    pub status: String,
    /// Who granted it: `local_operator`, `remote_subject:<hash>` or `system`.
    pub created_by: String,
    /// What kind of approver granted it: `operator` (the CLI or the library) or `agent` (MCP).
    pub approver: String,
    /// Through which front end: `cli`, `mcp_stdio`, `mcp_http` or `sdk`.
    pub surface: String,
    /// The approved order digest.
    pub order_digest: String,
    /// When it was granted.
    pub created_at: String,
    /// When it stops being usable.
    pub expires_at: String,
    /// When it was consumed, revoked or marked expired.
    pub closed_at: Option<String>,
}

impl ApprovalView {
    /// The view of an approval as of `now`.
    pub fn new(directory: &AccountDirectory, approval: &Approval, now: DateTime<Utc>) -> Self {
        let (account_ref, account_display) = account_names(directory, Some(&approval.account_id));
        Self {
            approval_id: approval.id.to_string(),
            preview_id: approval.preview_id.to_string(),
            account_ref,
            account_display,
            status: approval.effective_status(now).as_str().to_owned(),
            created_by: approval.created_by.to_stored(),
            approver: approval.approver.as_str().to_owned(),
            surface: approval.surface.as_str().to_owned(),
            order_digest: approval.digest.to_hex(),
            created_at: timestamp(approval.created_at),
            expires_at: timestamp(approval.expires_at),
            closed_at: approval.closed_at.map(timestamp),
        }
    }
}

/// Approvals, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalsView {
    /// The approvals.
    pub approvals: Vec<ApprovalView>,
}

/// One order the broker placed or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlacedOrderView {
    /// `order`, `entry`, `take_profit` or `stop_loss`.
    pub leg: String,
    /// The broker's order id.
    pub order_id: String,
    /// The broker's status at the time.
    pub broker_status: String,
}

/// The outcome of a paper submit, bracket submit, modify or cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PaperOrderView {
    /// `submit`, `bracket_submit`, `modify` or `cancel`.
    pub operation: String,
    /// `accepted`: the broker took the request (a cancel is confirmed asynchronously).
    pub outcome: String,
    /// True when this is the stored outcome of an earlier request with the same key; the
    /// broker was not called again.
    pub replayed: bool,
    /// The account's reference.
    pub account_ref: String,
    /// The account's masked id.
    pub account_display: String,
    /// The idempotency key, also the order's client order id (`cOID`) for submits.
    pub idempotency_key: String,
    /// The approval used, if any (consumed by this request).
    pub approval_id: Option<String>,
    /// The preview the approval was for.
    pub preview_id: Option<String>,
    /// The writer that acted: `client_portal`, `local_candidate` or `refusing`.
    pub writer: String,
    /// The orders, in leg order.
    pub orders: Vec<PlacedOrderView>,
    /// Routine broker prompts the writer confirmed on the way (message ids).
    pub confirmed_prompts: Vec<String>,
    /// The broker's message, when it gave one (broker text, bounded).
    #[schemars(extend("x-untrusted" = true))]
    pub broker_message: Option<String>,
    /// True when the outcome was established by start-up recovery (found by client order id).
    pub recovered: bool,
}

/// What a recovery pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RecoveryView {
    /// Pending writes found at the broker and completed.
    pub completed: usize,
    /// Pending writes not found: marked for a person to review.
    pub needs_review: usize,
    /// Pending writes younger than the grace period, or whose lookup failed: left pending.
    pub left_pending: usize,
}
