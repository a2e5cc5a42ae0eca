//! The reconciler: polls the broker for the orders in the backlog and records every change.
//!
//! One pass ([`Gateway::reconcile_once`]):
//! 1. reads the backlog and keeps the orders that are due (a failing order waits out its
//!    back-off); with none due, the broker is not called at all;
//! 2. groups them by mode and account reference, and resolves each reference to an account
//!    the broker lists (one accounts call per pass);
//! 3. per account, reads the broker's order list once and, only when some order is missing
//!    from it, the account's executions once;
//! 4. applies the pure rules of [`crate::domain::order_lifecycle::observe`] to each order and
//!    stores the outcome; each change of state or fill is stored with its event and then
//!    recorded as one durable `order lifecycle transition` audit event;
//! 5. on a live account, an overfill or an order carrying a client order id the gateway
//!    never issued halts live writes ([`Gateway::auto_halt`]); on a paper account the same
//!    finding is audited as an `order lifecycle anomaly` and halts nothing. An order without a
//!    client order id (placed by hand) is no anomaly. The running loop acts on each anomaly of
//!    an order once, so an operator can allow writes again while the order is still listed.
//!
//! A status that cannot be read is retried with back-off, never in a hot loop. Within a pass
//! the broker is called at most once per endpoint and account, so the Client Portal's pacing
//! (1 orders request per 5 s) holds with any number of orders.
//!
//! [`Gateway::run_reconciler`] runs a pass on every tick of the configured interval; it runs
//! beside the MCP server ([`Gateway::serve_with_reconciler`]) and stops when serving ends.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;

use crate::app::audited::CallContext;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;
use crate::domain::account::Account;
use crate::domain::audit::links::AuditLinks;
use crate::domain::ids::AccountId;
use crate::domain::kill_switch::HaltTrigger;
use crate::domain::money::{Price, Quantity};
use crate::domain::order::{Execution, LiveOrder};
use crate::domain::order_lifecycle::{
    Anomaly, BrokerReport, ExecutedTotal, LifecycleEvent, Observation, PollTiming, TrackedOrder,
    TradingMode, is_due, observe,
};
use crate::ports::workflow_store::StoreError;

/// How far before the earliest placement executions are read, so a broker clock behind the
/// gateway's cannot hide a fill.
const EXECUTIONS_MARGIN: Duration = Duration::days(1);

/// What one reconciler pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ReconcileReport {
    /// Orders in the backlog (not terminal, `needs_review` included).
    pub backlog: usize,
    /// Orders polled in this pass (the others wait out a back-off).
    pub polled: usize,
    /// Every change of state or fill, in the order recorded.
    pub changes: Vec<TransitionView>,
    /// What must not happen, and whether it halted live writes.
    pub anomalies: Vec<AnomalyView>,
    /// The accounts (by reference) whose orders could not be read; their orders back off.
    pub unreadable_accounts: Vec<String>,
}

/// One recorded transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TransitionView {
    /// `paper` or `live`.
    pub mode: String,
    /// The account's reference.
    pub account_ref: String,
    /// The broker's order id.
    pub order_id: String,
    /// The state before.
    pub from: Option<String>,
    /// The state after.
    pub to: String,
    /// The quantity filled, as a decimal string.
    pub filled_quantity: String,
    /// The average fill price, when known.
    pub average_price: Option<String>,
    /// The broker's (or the gateway's) reason.
    pub reason: Option<String>,
}

/// One anomaly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AnomalyView {
    /// `overfill` or `unknown_client_order_id`.
    pub kind: String,
    /// `paper` or `live`.
    pub mode: String,
    /// The account's reference.
    pub account_ref: String,
    /// The broker's order id.
    pub order_id: String,
    /// What was seen, naming no account id.
    pub detail: String,
    /// True when live writes are now halted because of it.
    pub halted: bool,
}

impl TransitionView {
    fn of(event: &LifecycleEvent) -> Self {
        Self {
            mode: event.key.mode.as_str().to_owned(),
            account_ref: event.key.account_ref.clone(),
            order_id: event.key.order_id.to_string(),
            from: event.from.map(|state| state.as_str().to_owned()),
            to: event.to.as_str().to_owned(),
            filled_quantity: event.filled_quantity.value().to_string(),
            average_price: event.average_price.map(|price| price.value().to_string()),
            reason: event.reason.clone(),
        }
    }
}

/// The due orders of one account.
struct AccountBatch {
    mode: TradingMode,
    account_ref: String,
    orders: Vec<TrackedOrder>,
}

/// The anomalies already acted on, so an order that stays in the broker's list (IBKR lists
/// the day's finished orders too) halts once, not on every pass after an operator allowed
/// writes again. The loop keeps one for as long as it runs; a single pass starts afresh.
#[derive(Debug, Default)]
struct AnomalyMemory(BTreeSet<(HaltTrigger, String, String)>);

/// One pass's report and the memory it consults.
struct Pass<'a> {
    report: ReconcileReport,
    memory: &'a mut AnomalyMemory,
}

impl Pass<'_> {
    /// True the first time this anomaly of this order is seen.
    fn first_sighting(&mut self, trigger: HaltTrigger, account_ref: &str, order_id: &str) -> bool {
        self.memory
            .0
            .insert((trigger, account_ref.to_owned(), order_id.to_owned()))
    }
}

/// The facts of a listed order the lifecycle rules use.
fn report_of(order: &LiveOrder) -> BrokerReport {
    BrokerReport {
        status: order.status,
        filled_quantity: order.filled_quantity,
        average_price: order.average_price,
        reason: order.reason.clone(),
    }
}

/// True when `execution` filled `order`: by the broker's order id when the execution names
/// one, else by the client order id, which only the leg that was sent with it carries (a
/// bracket's children have their parent's).
fn fills(execution: &Execution, order: &TrackedOrder) -> bool {
    match &execution.order_id {
        Some(order_id) => *order_id == order.key.order_id,
        None => {
            matches!(order.leg.as_str(), "order" | "entry")
                && execution.client_order_id.is_some()
                && execution.client_order_id == order.client_order_id
        }
    }
}

/// What the executions say of `order`; `None` when their sum overflows.
fn executed_total(executions: &[Execution], order: &TrackedOrder) -> Option<ExecutedTotal> {
    let fills: Vec<(Quantity, Price)> = executions
        .iter()
        .filter(|execution| fills(execution, order))
        .map(|execution| (execution.quantity, execution.price))
        .collect();
    ExecutedTotal::of(&fills)
}

impl Gateway {
    /// The reconciler's timing, from `live_trading.reconciler_*`.
    fn poll_timing(&self) -> PollTiming {
        let settings = self.live_trading().reconciler;
        let seconds = |duration: StdDuration| {
            Duration::seconds(i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 1_000))
        };
        PollTiming {
            interval: seconds(settings.interval),
            missing_grace: seconds(settings.missing_grace),
        }
    }

    /// One reconciler pass (see the module docs).
    ///
    /// # Errors
    /// `WORKFLOW_STORE_FAILED` when the backlog cannot be read. Everything after that is
    /// per order or per account: a broker that cannot be read backs the orders off, a store
    /// or audit failure on one order is logged and the pass goes on.
    pub async fn reconcile_once(&self) -> Result<ReconcileReport, GatewayError> {
        self.reconcile_with(&mut AnomalyMemory::default()).await
    }

    /// [`Gateway::reconcile_once`], acting only on anomalies `memory` has not seen yet.
    async fn reconcile_with(
        &self,
        memory: &mut AnomalyMemory,
    ) -> Result<ReconcileReport, GatewayError> {
        let now = self.clock().now();
        let backlog = self.workflow().order_backlog().await?;
        let mut pass = Pass {
            report: ReconcileReport {
                backlog: backlog.len(),
                ..ReconcileReport::default()
            },
            memory,
        };
        let mut batches: BTreeMap<(TradingMode, String), Vec<TrackedOrder>> = BTreeMap::new();
        for order in backlog.into_iter().filter(|order| is_due(order, now)) {
            batches
                .entry((order.key.mode, order.key.account_ref.clone()))
                .or_default()
                .push(order);
        }
        if batches.is_empty() {
            return Ok(pass.report);
        }
        let accounts = match self.broker().accounts().await {
            Ok(accounts) => Some(accounts),
            Err(error) => {
                tracing::warn!(code = %error.code(), "the reconciler could not list the broker's accounts");
                None
            }
        };
        for ((mode, account_ref), orders) in batches {
            pass.report.polled += orders.len();
            let batch = AccountBatch {
                mode,
                account_ref,
                orders,
            };
            let account = accounts
                .as_deref()
                .and_then(|accounts| self.account_of(accounts, &batch.account_ref));
            self.reconcile_account(&batch, account, now, &mut pass)
                .await;
        }
        Ok(pass.report)
    }

    /// The listed account whose reference is `account_ref`.
    fn account_of<'a>(&self, accounts: &'a [Account], account_ref: &str) -> Option<&'a AccountId> {
        accounts
            .iter()
            .map(|account| &account.id)
            .find(|id| self.directory().reference(id) == account_ref)
    }

    /// Polls one account's due orders: one orders read, one executions read when needed.
    async fn reconcile_account(
        &self,
        batch: &AccountBatch,
        account: Option<&AccountId>,
        now: DateTime<Utc>,
        pass: &mut Pass<'_>,
    ) {
        let listed = match account {
            Some(account) => match self.broker().live_orders(account).await {
                Ok(listed) => Some(listed),
                Err(error) => {
                    tracing::warn!(code = %error.code(), "the reconciler could not read an account's orders");
                    None
                }
            },
            None => None,
        };
        let (Some(account), Some(listed)) = (account, listed) else {
            pass.report
                .unreadable_accounts
                .push(batch.account_ref.clone());
            for order in &batch.orders {
                self.apply(order, &Observation::Unreadable, None, now, pass)
                    .await;
            }
            return;
        };
        if batch.mode == TradingMode::Live {
            self.check_client_order_ids(batch, &listed, pass).await;
        }
        let missing: Vec<&TrackedOrder> = batch
            .orders
            .iter()
            .filter(|order| {
                !listed
                    .iter()
                    .any(|seen| seen.order_id == order.key.order_id)
            })
            .collect();
        let executions = match missing.iter().map(|order| order.placed_at).min() {
            None => None,
            Some(earliest) => {
                let since = earliest.checked_sub_signed(EXECUTIONS_MARGIN);
                match self.broker().executions(account, since).await {
                    Ok(executions) => Some(executions),
                    Err(error) => {
                        tracing::warn!(code = %error.code(), "the reconciler could not read an account's executions");
                        pass.report
                            .unreadable_accounts
                            .push(batch.account_ref.clone());
                        None
                    }
                }
            }
        };
        for order in &batch.orders {
            let observation = match listed
                .iter()
                .find(|seen| seen.order_id == order.key.order_id)
            {
                Some(seen) => Observation::Seen(report_of(seen)),
                None => match executions
                    .as_deref()
                    .and_then(|executions| executed_total(executions, order))
                {
                    Some(total) => Observation::Missing(total),
                    None => Observation::Unreadable,
                },
            };
            self.apply(order, &observation, Some(account), now, pass)
                .await;
        }
    }

    /// Applies one observation: stores the order's new standing (with its event), audits the
    /// transition, acts on anomalies.
    async fn apply(
        &self,
        order: &TrackedOrder,
        observation: &Observation,
        account: Option<&AccountId>,
        now: DateTime<Utc>,
        pass: &mut Pass<'_>,
    ) {
        let observed = observe(order, observation, now, self.poll_timing());
        if observed.order != *order || observed.event.is_some() {
            match self
                .workflow()
                .update_tracked_order(&observed.order, observed.event.as_ref())
                .await
            {
                Ok(()) => {}
                // Another process finished it first: its record stands.
                Err(StoreError::WrongState) => return,
                Err(error) => {
                    tracing::warn!(code = %error.code(), "the reconciler could not store an order's status");
                    return;
                }
            }
        }
        if let Some(event) = &observed.event {
            self.record_transition(&observed.order, event, account)
                .await;
            pass.report.changes.push(TransitionView::of(event));
        }
        for anomaly in &observed.anomalies {
            let Anomaly::Overfill { filled, approved } = anomaly;
            let detail = format!(
                "order {} of {} filled {} of {} approved",
                order.key.order_id,
                order.key.account_ref,
                filled.value(),
                approved.value()
            );
            if !pass.first_sighting(
                HaltTrigger::Overfill,
                &order.key.account_ref,
                order.key.order_id.as_str(),
            ) {
                continue;
            }
            let view = self
                .act_on_anomaly(
                    order.key.mode,
                    HaltTrigger::Overfill,
                    &order.key.account_ref,
                    order.key.order_id.as_str(),
                    detail,
                )
                .await;
            pass.report.anomalies.push(view);
        }
    }

    /// Halts on every order in a live account's list that carries a client order id the
    /// gateway never issued.
    async fn check_client_order_ids(
        &self,
        batch: &AccountBatch,
        listed: &[LiveOrder],
        pass: &mut Pass<'_>,
    ) {
        let mut checked = BTreeSet::new();
        for order in listed {
            let Some(client_order_id) = order.client_order_id.as_deref() else {
                continue;
            };
            if !checked.insert(client_order_id.to_owned()) {
                continue;
            }
            match self
                .workflow()
                .client_order_id_issued(client_order_id)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    if !pass.first_sighting(
                        HaltTrigger::UnknownClientOrderId,
                        &batch.account_ref,
                        order.order_id.as_str(),
                    ) {
                        continue;
                    }
                    let detail = format!(
                        "order {} of {} carries a client order id the gateway never issued",
                        order.order_id, batch.account_ref
                    );
                    let view = self
                        .act_on_anomaly(
                            batch.mode,
                            HaltTrigger::UnknownClientOrderId,
                            &batch.account_ref,
                            order.order_id.as_str(),
                            detail,
                        )
                        .await;
                    pass.report.anomalies.push(view);
                }
                Err(error) => {
                    tracing::warn!(code = %error.code(), "the reconciler could not check a client order id");
                }
            }
        }
    }

    /// A live anomaly halts live writes; a paper one is audited and halts nothing.
    async fn act_on_anomaly(
        &self,
        mode: TradingMode,
        trigger: HaltTrigger,
        account_ref: &str,
        order_id: &str,
        detail: String,
    ) -> AnomalyView {
        let halted = match mode {
            TradingMode::Live => match self.auto_halt(trigger, &detail).await {
                Ok(outcome) => outcome == crate::app::auto_halt::AutoHaltOutcome::Halted,
                Err(error) => {
                    tracing::error!(code = %error.code(), "the reconciler could not halt live writes");
                    false
                }
            },
            TradingMode::Paper => {
                let step = self
                    .record_step(
                        &CallContext::system(),
                        "order lifecycle anomaly",
                        None,
                        None,
                        json!({
                            "mode": mode.as_str(),
                            "kind": trigger.as_str(),
                            "account_ref": account_ref,
                            "order_id": order_id,
                            "detail": detail,
                        }),
                        None,
                    )
                    .await;
                if let Err(error) = step {
                    tracing::error!(code = %error.code(), "a paper order anomaly could not be audited");
                }
                false
            }
        };
        AnomalyView {
            kind: trigger.as_str().to_owned(),
            mode: mode.as_str().to_owned(),
            account_ref: account_ref.to_owned(),
            order_id: order_id.to_owned(),
            detail,
            halted,
        }
    }

    /// One durable `order lifecycle transition` event, as the gateway itself.
    async fn record_transition(
        &self,
        order: &TrackedOrder,
        event: &LifecycleEvent,
        account: Option<&AccountId>,
    ) {
        let mut links = AuditLinks::default();
        links.link_broker_order(&order.key.order_id);
        links.link_idempotency_key(&order.idempotency_key);
        if let Some(preview_id) = &order.preview_id {
            links.link_preview(preview_id);
        }
        let step = self
            .record_linked_step(
                &CallContext::system(),
                "order lifecycle transition",
                (None, account),
                json!({
                    "mode": event.key.mode.as_str(),
                    "account_ref": event.key.account_ref,
                    "order_id": event.key.order_id.as_str(),
                    "from": event.from.map(|state| state.as_str()),
                    "to": event.to.as_str(),
                    "filled_quantity": event.filled_quantity.value().to_string(),
                    "average_price": event.average_price.map(|price| price.value().to_string()),
                    "reason": event.reason,
                }),
                None,
                &links,
            )
            .await;
        if let Err(error) = step {
            tracing::error!(code = %error.code(), "an order lifecycle transition could not be audited");
        }
    }

    /// Runs a reconciler pass on every tick of `interval` (the first at once, after start-up
    /// work), late ticks delayed rather than bunched. Never returns; stops when dropped.
    pub async fn run_reconciler(&self, interval: StdDuration) -> Infallible {
        self.start().await;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut memory = AnomalyMemory::default();
        loop {
            ticker.tick().await;
            if let Err(error) = self.reconcile_with(&mut memory).await {
                tracing::warn!(code = %error.code(), "a reconciler pass could not run");
            }
        }
    }

    /// Runs `serving` with the reconciler beside it at `live_trading.reconciler_interval_seconds`;
    /// stops the reconciler when `serving` ends and returns its output.
    pub async fn serve_with_reconciler<F: Future>(&self, serving: F) -> F::Output {
        let interval = self.live_trading().reconciler.interval;
        tokio::select! {
            output = serving => output,
            never = self.run_reconciler(interval) => match never {},
        }
    }
}
