//! CLI output: aligned tables for people, one JSON document for programs, errors once on
//! stderr. The only module allowed to print.
#![allow(clippy::print_stdout, clippy::print_stderr)] // printing is this module's job

use std::io::{self, Write};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::Value;

use crate::adapters::inbound::cli::exit_code;
use crate::app::checkpoints::{CheckpointView, PublicKeyView};
use crate::app::error::GatewayError;
use crate::app::operation::Response;
use crate::app::order_views::{
    ApprovalView, ApprovalsView, PaperOrderView, PreviewView, RecoveryView, WhatIfView,
};
use crate::app::startup_error::Failure;
use crate::app::views::{
    AccountSummaryView, AccountView, AccountsView, AuditTailView, BackendStatusView, BarsView,
    ContractView, ContractsView, ExecutionsView, ExportTrailerView, HealthView, OrdersView,
    PositionsView, QuoteView, SessionRequirementsView, VerifyReportView,
};

/// A finished command's output in both forms.
#[derive(Debug)]
pub struct Output {
    json: Value,
    human: String,
    json_lines: bool,
}

impl Output {
    /// Renders a view both ways.
    ///
    /// # Errors
    /// `INTERNAL_ERROR` if the view cannot be serialized (a bug).
    pub fn of<V: Serialize + Human>(view: &V) -> Result<Self, GatewayError> {
        Ok(Self {
            json: to_json(view)?,
            human: view.human(),
            json_lines: false,
        })
    }

    /// An export trailer: the same single JSON line in both modes, since exports are JSON lines.
    ///
    /// # Errors
    /// `INTERNAL_ERROR` if the trailer cannot be serialized (a bug).
    pub fn trailer(trailer: &ExportTrailerView) -> Result<Self, GatewayError> {
        let json = serde_json::json!({ "trailer": to_json(trailer)? });
        Ok(Self {
            human: json.to_string(),
            json,
            json_lines: true,
        })
    }
}

fn to_json<V: Serialize>(view: &V) -> Result<Value, GatewayError> {
    serde_json::to_value(view).map_err(|error| GatewayError::Internal {
        message: format!("cannot serialize output: {error}"),
    })
}

/// A human-readable rendering.
pub trait Human {
    /// The text shown without `--json`.
    fn human(&self) -> String;
}

/// The output of a command generated from the registry: its JSON, indented.
impl Human for Value {
    fn human(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| self.to_string())
    }
}

/// Prints the result and returns the process exit code. A closed stdout (`| head`) ends the
/// process quietly.
pub fn report(result: Result<Output, Failure>, json: bool) -> ExitCode {
    match result {
        Ok(output) => {
            // A JSON-lines output (an export trailer) is the same line in both modes.
            let text = if json && !output.json_lines {
                json_text(&output.json)
            } else {
                output.human
            };
            match write_stdout(&text) {
                Ok(()) => ExitCode::from(exit_code::OK),
                Err(error) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            }
        }
        Err(error) => {
            let code = error.code();
            eprintln!("error[{code}]: {error}");
            eprintln!("  hint: {}", error.user_action());
            if json {
                // Programs reading stdout still get exactly one document.
                let _ = write_stdout(&json_text(&error.to_json()));
            }
            exit_code::exit_code(code)
        }
    }
}

fn json_text(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_owned())
}

fn write_stdout(text: &str) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        stdout.write_all(b"\n")?;
    }
    stdout.flush()
}

/// A table with aligned columns.
struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: Vec<&'static str>) -> Self {
        Self {
            headers,
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|header| header.chars().count())
            .collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(index) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|header| (*header).to_owned())
            .collect();
        push_line(&mut out, &headers, &widths);
        for row in &self.rows {
            push_line(&mut out, row, &widths);
        }
        if self.rows.is_empty() {
            out.push_str("(none)\n");
        }
        out
    }
}

fn push_line(out: &mut String, cells: &[String], widths: &[usize]) {
    let mut line = String::new();
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        let width = widths.get(index).copied().unwrap_or(0);
        let pad = width.saturating_sub(cell.chars().count());
        line.extend(std::iter::repeat_n(' ', pad));
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

/// Two-column `key  value` listing.
fn pairs(items: &[(&'static str, String)]) -> String {
    let mut table = Table::new(vec!["FIELD", "VALUE"]);
    for (key, value) in items {
        table.row(vec![(*key).to_owned(), value.clone()]);
    }
    table.render()
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

fn account_line(account: &AccountView) -> String {
    let alias = account
        .alias
        .as_deref()
        .map(|alias| format!(" \"{alias}\""))
        .unwrap_or_default();
    format!(
        "Account {}{alias} ({}, {}, base {})\n",
        account.account_ref, account.display, account.mode, account.base_currency
    )
}

impl Human for HealthView {
    fn human(&self) -> String {
        let mut items = vec![
            ("status", self.status.to_owned()),
            ("gateway_version", self.gateway_version.to_owned()),
            ("backend", self.backend.to_owned()),
            ("audit_store", self.audit_store.clone()),
            ("audit_key", self.audit_key.to_owned()),
            (
                "write_scopes_granted",
                self.write_scopes_granted.to_string(),
            ),
            ("granted_scopes", self.granted_scopes.join(" ")),
        ];
        if !self.inert_scopes.is_empty() {
            items.push(("inert_scopes", self.inert_scopes.join(" ")));
        }
        pairs(&items)
    }
}

impl Human for BackendStatusView {
    fn human(&self) -> String {
        pairs(&[
            ("backend", self.backend.to_owned()),
            ("state", self.state.to_owned()),
            ("authenticated", self.authenticated.to_string()),
            ("connected", self.connected.to_string()),
            ("competing", self.competing.to_string()),
            ("user_action", opt(self.user_action.as_ref())),
        ])
    }
}

impl Human for SessionRequirementsView {
    fn human(&self) -> String {
        let mut items = vec![
            ("backend", self.backend.to_owned()),
            ("state", self.state.to_owned()),
            ("ready", self.ready.to_string()),
            ("login_url", opt(self.login_url.as_ref())),
        ];
        for step in &self.steps {
            items.push(("step", step.clone()));
        }
        items.push(("note", self.note.to_owned()));
        pairs(&items)
    }
}

impl Human for AccountsView {
    fn human(&self) -> String {
        let mut table = Table::new(vec![
            "ACCOUNT_REF",
            "DISPLAY",
            "ALIAS",
            "MODE",
            "BASE",
            "KIND",
        ]);
        for account in &self.accounts {
            table.row(vec![
                account.account_ref.clone(),
                account.display.clone(),
                opt(account.alias.as_ref()),
                account.mode.to_owned(),
                account.base_currency.clone(),
                account.kind.to_owned(),
            ]);
        }
        table.render()
    }
}

impl Human for AccountSummaryView {
    fn human(&self) -> String {
        let mut out = account_line(&self.account);
        out.push_str(&pairs(&[
            ("net_liquidation", self.net_liquidation.to_string()),
            ("total_cash", self.total_cash.to_string()),
            ("buying_power", self.buying_power.to_string()),
            ("available_funds", self.available_funds.to_string()),
            ("excess_liquidity", self.excess_liquidity.to_string()),
            ("initial_margin", self.initial_margin.to_string()),
            ("maintenance_margin", self.maintenance_margin.to_string()),
            (
                "gross_position_value",
                self.gross_position_value.to_string(),
            ),
        ]));
        out.push('\n');
        let mut cash = Table::new(vec!["CURRENCY", "CASH"]);
        for balance in &self.cash_balances {
            cash.row(vec![balance.currency.clone(), balance.amount.to_string()]);
        }
        out.push_str(&cash.render());
        out
    }
}

impl Human for PositionsView {
    fn human(&self) -> String {
        let mut out = account_line(&self.account);
        let mut table = Table::new(vec![
            "CONTRACT_ID",
            "SYMBOL",
            "CLASS",
            "QUANTITY",
            "AVG_COST",
            "PRICE",
            "VALUE",
            "UNREALIZED",
            "REALIZED",
            "CCY",
        ]);
        for position in &self.positions {
            table.row(vec![
                position.contract.contract_id.to_string(),
                position.contract.local_symbol.clone(),
                position.contract.asset_class.to_owned(),
                position.quantity.to_string(),
                position.average_cost.to_string(),
                position.market_price.to_string(),
                position.market_value.to_string(),
                position.unrealized_pnl.to_string(),
                position.realized_pnl.to_string(),
                position.currency.clone(),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

fn contract_row(contract: &ContractView) -> Vec<String> {
    vec![
        contract.contract_id.to_string(),
        contract.symbol.clone(),
        contract.local_symbol.clone(),
        contract.asset_class.to_owned(),
        contract.currency.clone(),
        contract.exchange.clone(),
        contract.broker_description.clone(),
    ]
}

const CONTRACT_HEADERS: [&str; 7] = [
    "CONTRACT_ID",
    "SYMBOL",
    "LOCAL_SYMBOL",
    "CLASS",
    "CCY",
    "EXCHANGE",
    "BROKER_DESCRIPTION",
];

impl Human for ContractsView {
    fn human(&self) -> String {
        let mut table = Table::new(CONTRACT_HEADERS.to_vec());
        for contract in &self.contracts {
            table.row(contract_row(contract));
        }
        table.render()
    }
}

impl Human for ContractView {
    fn human(&self) -> String {
        let mut table = Table::new(CONTRACT_HEADERS.to_vec());
        table.row(contract_row(self));
        table.render()
    }
}

impl Human for QuoteView {
    fn human(&self) -> String {
        let mut items = vec![
            ("contract_id", self.contract.contract_id.to_string()),
            ("symbol", self.contract.local_symbol.clone()),
            ("status", self.status.to_owned()),
            ("as_of", self.as_of.clone()),
            ("age_seconds", self.age_seconds.to_string()),
            ("bid", opt(self.bid)),
            ("ask", opt(self.ask)),
            ("last", opt(self.last)),
            ("bid_size", opt(self.bid_size)),
            ("ask_size", opt(self.ask_size)),
            ("volume", opt(self.volume)),
        ];
        if let Some(greeks) = &self.greeks {
            items.extend([
                ("delta", greeks.delta.to_string()),
                ("gamma", greeks.gamma.to_string()),
                ("theta", greeks.theta.to_string()),
                ("vega", greeks.vega.to_string()),
                ("implied_volatility", greeks.implied_volatility.to_string()),
            ]);
        }
        if !self.missing_fields.is_empty() {
            items.push(("missing_fields", self.missing_fields.join(",")));
        }
        pairs(&items)
    }
}

impl Human for BarsView {
    fn human(&self) -> String {
        let mut out = format!(
            "Contract {}: {} bars of {} over {} ({})\n",
            self.contract_id,
            self.bars.len(),
            self.bar_size,
            self.period,
            self.status
        );
        let mut table = Table::new(vec!["START", "OPEN", "HIGH", "LOW", "CLOSE", "VOLUME"]);
        for bar in &self.bars {
            table.row(vec![
                bar.start.clone(),
                bar.open.to_string(),
                bar.high.to_string(),
                bar.low.to_string(),
                bar.close.to_string(),
                bar.volume.to_string(),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

impl Human for OrdersView {
    fn human(&self) -> String {
        let mut out = account_line(&self.account);
        let mut table = Table::new(vec![
            "ORDER_ID", "SYMBOL", "SIDE", "TYPE", "QUANTITY", "FILLED", "LIMIT", "STOP", "TIF",
            "STATUS", "UPDATED",
        ]);
        for order in &self.orders {
            table.row(vec![
                order.order_id.clone(),
                order.symbol.clone(),
                order.side.to_owned(),
                order.order_type.to_owned(),
                order.quantity.to_string(),
                order.filled_quantity.to_string(),
                opt(order.limit_price),
                opt(order.stop_price),
                order.time_in_force.to_owned(),
                order.status.to_owned(),
                order.updated_at.clone(),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

impl Human for ExecutionsView {
    fn human(&self) -> String {
        let mut out = account_line(&self.account);
        let mut table = Table::new(vec![
            "EXECUTION_ID",
            "ORDER_ID",
            "CLIENT_ORDER_ID",
            "SYMBOL",
            "SIDE",
            "QUANTITY",
            "PRICE",
            "COMMISSION",
            "EXECUTED_AT",
        ]);
        for execution in &self.executions {
            table.row(vec![
                execution.execution_id.clone(),
                execution.order_id.clone().unwrap_or_else(|| "-".to_owned()),
                execution
                    .client_order_id
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                execution.symbol.clone(),
                execution.side.to_owned(),
                execution.quantity.to_string(),
                execution.price.to_string(),
                format!(
                    "{} {}",
                    execution.commission.amount, execution.commission.currency
                ),
                execution.executed_at.clone(),
            ]);
        }
        out.push_str(&table.render());
        out
    }
}

impl Human for Response {
    fn human(&self) -> String {
        match self {
            Self::Health(view) => view.human(),
            Self::BackendStatus(view) => view.human(),
            Self::SessionRequirements(view) => view.human(),
            Self::Accounts(view) => view.human(),
            Self::AccountSummary(view) => view.human(),
            Self::Positions(view) => view.human(),
            Self::Contracts(view) => view.human(),
            Self::Contract(view) => view.human(),
            Self::Quote(view) => view.human(),
            Self::Bars(view) => view.human(),
            Self::Orders(view) => view.human(),
            Self::Executions(view) => view.human(),
            Self::AuditTail(view) => view.human(),
        }
    }
}

impl Human for AuditTailView {
    fn human(&self) -> String {
        let mut table = Table::new(vec![
            "SEQ",
            "OCCURRED_AT",
            "SURFACE",
            "OPERATION",
            "DECISION",
            "STATUS",
            "ERROR_CODE",
            "ACCOUNT_HASH",
        ]);
        for event in &self.events {
            table.row(vec![
                event.sequence.to_string(),
                event.occurred_at.clone(),
                event.surface.clone(),
                event.operation.clone(),
                event.decision.clone(),
                event.status.clone(),
                opt(event.error_code.as_ref()),
                event
                    .account_id_hash
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |hash| hash.chars().take(12).collect()),
            ]);
        }
        let mut out = table.render();
        out.push_str(if self.verified {
            "chain: verified for the events shown\n"
        } else {
            "chain: NOT verified\n"
        });
        out
    }
}

impl Human for crate::app::export_check::ExportCheckView {
    fn human(&self) -> String {
        pairs(&[
            ("events", self.events.to_string()),
            ("first_sequence", opt(self.first_sequence)),
            ("last_sequence", opt(self.last_sequence)),
            (
                "checkpoints_verified",
                self.checkpoints_verified.to_string(),
            ),
            ("verified_through", opt(self.verified_through)),
            (
                "events_after_last_checkpoint",
                self.events_after_last_checkpoint.to_string(),
            ),
            ("key_id", self.key_id.clone()),
        ])
    }
}

impl Human for crate::app::audit_purge::PurgeView {
    fn human(&self) -> String {
        pairs(&[
            ("purged_through", self.purged_through.to_string()),
            ("deleted", self.deleted.to_string()),
            ("exported_events", self.exported_events.to_string()),
            ("export_sha256", self.export_sha256.clone()),
        ])
    }
}

impl Human for VerifyReportView {
    fn human(&self) -> String {
        pairs(&[
            ("events_scanned", self.events_scanned.to_string()),
            ("chain_valid", self.chain_valid.to_string()),
            ("first_break_at_sequence", opt(self.first_break_at_sequence)),
            ("head", opt(self.head.as_ref())),
            ("anchor_verified", self.anchor_verified.to_string()),
            (
                "checkpoints_verified",
                self.checkpoints_verified.to_string(),
            ),
            (
                "verified_through_checkpoint",
                opt(self.verified_through_checkpoint),
            ),
            ("purged_through", opt(self.purged_through)),
            ("keyed", self.keyed.to_string()),
        ])
    }
}

impl Human for CheckpointView {
    fn human(&self) -> String {
        pairs(&[
            ("kind", self.kind.clone()),
            ("sequence", self.sequence.to_string()),
            ("head", self.head.clone()),
            ("digest", self.digest.clone()),
            ("at", self.at.clone()),
            ("key_id", self.key_id.clone()),
        ])
    }
}

impl Human for PublicKeyView {
    fn human(&self) -> String {
        pairs(&[
            ("algorithm", self.algorithm.clone()),
            ("public_key", self.public_key.clone()),
            ("key_id", self.key_id.clone()),
        ])
    }
}

fn account_label(account_ref: &str, display: &str) -> String {
    format!("{account_ref} ({display})")
}

fn what_if_items(what_if: &WhatIfView) -> Vec<(&'static str, String)> {
    let commission = what_if.commission.map(|amount| {
        what_if.commission_currency.as_deref().map_or_else(
            || amount.to_string(),
            |currency| format!("{amount} {currency}"),
        )
    });
    vec![
        ("commission", opt(commission)),
        ("initial_margin_change", opt(what_if.initial_margin_change)),
        ("initial_margin_after", opt(what_if.initial_margin_after)),
        (
            "maintenance_margin_change",
            opt(what_if.maintenance_margin_change),
        ),
        (
            "maintenance_margin_after",
            opt(what_if.maintenance_margin_after),
        ),
        ("equity_after", opt(what_if.equity_after)),
    ]
}

impl Human for PreviewView {
    fn human(&self) -> String {
        let mut out = format!(
            "Preview {} ({}) for {}, {}\n",
            self.preview_id,
            self.kind,
            account_label(&self.account_ref, &self.account_display),
            self.symbol
        );
        if let Some(order_id) = &self.modifies_order_id {
            out.push_str(&format!("Replaces working order {order_id}\n"));
        }
        let mut legs = Table::new(vec![
            "LEG",
            "CONTRACT_ID",
            "SIDE",
            "QUANTITY",
            "TYPE",
            "LIMIT",
            "STOP",
            "TRAIL_AMOUNT",
            "TRAIL_PCT",
            "TIF",
        ]);
        for leg in &self.legs {
            legs.row(vec![
                leg.leg.clone(),
                leg.contract_id.to_string(),
                leg.side.clone(),
                leg.quantity.to_string(),
                leg.order_type.clone(),
                opt(leg.limit_price),
                opt(leg.stop_price),
                opt(leg.trailing_amount),
                opt(leg.trailing_percent),
                leg.time_in_force.clone(),
            ]);
        }
        out.push_str(&legs.render());
        out.push('\n');
        let mut items = vec![("order_digest", self.order_digest.clone())];
        items.extend(what_if_items(&self.what_if));
        for warning in &self.what_if.broker_warnings {
            items.push(("broker_warning", warning.replace('\n', " ")));
        }
        items.extend([
            ("created_at", self.created_at.clone()),
            ("expires_at", self.expires_at.clone()),
            ("executable", self.executable.to_string()),
        ]);
        out.push_str(&pairs(&items));
        out.push_str(&format!("next: {}\n", self.next_step));
        out
    }
}

impl Human for ApprovalView {
    fn human(&self) -> String {
        pairs(&[
            ("approval_id", self.approval_id.clone()),
            ("preview_id", self.preview_id.clone()),
            (
                "account",
                account_label(&self.account_ref, &self.account_display),
            ),
            ("status", self.status.clone()),
            ("created_by", self.created_by.clone()),
            ("approver", self.approver.clone()),
            ("surface", self.surface.clone()),
            ("order_digest", self.order_digest.clone()),
            ("created_at", self.created_at.clone()),
            ("expires_at", self.expires_at.clone()),
            ("closed_at", opt(self.closed_at.as_ref())),
        ])
    }
}

impl Human for ApprovalsView {
    fn human(&self) -> String {
        let mut table = Table::new(vec![
            "APPROVAL_ID",
            "PREVIEW_ID",
            "ACCOUNT",
            "STATUS",
            "CREATED_BY",
            "SURFACE",
            "EXPIRES_AT",
            "CLOSED_AT",
        ]);
        for approval in &self.approvals {
            table.row(vec![
                approval.approval_id.clone(),
                approval.preview_id.clone(),
                approval.account_display.clone(),
                approval.status.clone(),
                approval.created_by.clone(),
                approval.surface.clone(),
                approval.expires_at.clone(),
                opt(approval.closed_at.as_ref()),
            ]);
        }
        table.render()
    }
}

impl Human for PaperOrderView {
    fn human(&self) -> String {
        let mut out = format!(
            "Paper {} {}{} for {}\n",
            self.operation.replace('_', " "),
            self.outcome,
            if self.replayed {
                " (replayed: the stored outcome of an earlier request with this key)"
            } else {
                ""
            },
            account_label(&self.account_ref, &self.account_display),
        );
        let mut orders = Table::new(vec!["LEG", "ORDER_ID", "BROKER_STATUS"]);
        for order in &self.orders {
            orders.row(vec![
                order.leg.clone(),
                order.order_id.clone(),
                order.broker_status.clone(),
            ]);
        }
        out.push_str(&orders.render());
        out.push('\n');
        let confirmed = if self.confirmed_prompts.is_empty() {
            "-".to_owned()
        } else {
            self.confirmed_prompts.join(" ")
        };
        out.push_str(&pairs(&[
            ("replayed", self.replayed.to_string()),
            ("writer", self.writer.clone()),
            ("idempotency_key", self.idempotency_key.clone()),
            ("approval_id", opt(self.approval_id.as_ref())),
            ("preview_id", opt(self.preview_id.as_ref())),
            ("confirmed_prompts", confirmed),
            ("broker_message", opt(self.broker_message.as_ref())),
            ("recovered", self.recovered.to_string()),
        ]));
        out
    }
}

impl Human for RecoveryView {
    fn human(&self) -> String {
        pairs(&[
            ("completed", self.completed.to_string()),
            ("needs_review", self.needs_review.to_string()),
            ("left_pending", self.left_pending.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_by_character_width() {
        let mut table = Table::new(vec!["A", "LONGER"]);
        table.row(vec!["DU\u{2022}\u{2022}\u{2022}4567".into(), "x".into()]);
        table.row(vec!["b".into(), "y".into()]);
        let text = table.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "A          LONGER");
        assert_eq!(lines[1], "DU\u{2022}\u{2022}\u{2022}4567  x");
        assert_eq!(lines[2], "b          y");
    }

    #[test]
    fn empty_tables_say_so() {
        assert!(Table::new(vec!["X"]).render().ends_with("(none)\n"));
    }
}
