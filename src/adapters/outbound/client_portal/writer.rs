//! `ClientPortalOrderWriter`: the [`OrderWriter`] over the Client Portal Gateway. It
//! places, modifies and cancels orders in paper or live accounts (one [`WriterMode`] per
//! writer) through the broker's own HTTP client, pacing and brokerage session.
//!
//! What it does, and what it refuses to do:
//! - **One kind of account.** A paper writer writes only to paper-shaped accounts the session
//!   does not call live; a live writer only to accounts that are not paper-shaped and that the
//!   session does not call paper. Both only to accounts of the brokerage session.
//! - **Live boundary.** A live writer refuses, before anything is sent (not even the
//!   pre-flight), a market order and any order, bracket leg or replacement without a limit
//!   price ([`WriteError::Refused`]), but a bracket's protective stop-loss, which may be a
//!   plain stop (`order_intent::live_writer_refusal`, ADR 0009).
//! - **Errors say what is known.** A write that provably never reached the order book (no
//!   session, 429, a refused connection) is [`WriteError::NotSent`]; a refusal in the broker's
//!   documented shape (an `{"error": …}` body with a 2xx or 4xx status, reference §1.4 and
//!   §6.3) is [`WriteError::Rejected`]. A write that may have reached it is
//!   [`WriteError::Ambiguous`], and only a lookup by client order id can tell what happened:
//!   a timeout, a malformed or oversize answer, a 4xx without the documented error body, and
//!   **every 5xx**, whatever its body says (a 500 `{"error":"Internal Server Error"}` comes
//!   from a gateway that may have passed the order on before failing).
//! - **Never retried.** No write is sent twice; the caller decides, after a lookup.
//! - **Prompts.** The gateway may answer a placement with a question instead of an order id.
//!   The writer answers it (`POST /iserver/reply/{id}`) only when every message id of the
//!   question is on its confirmable list, for at most its `max_reply_rounds` rounds
//!   ([`MAX_REPLY_ROUNDS`] unless built with another limit); any other question is declined at
//!   the broker (`{"confirmed": false}`, so no reply chain is left open there) and goes back to
//!   the caller as [`WriteError::ConfirmationRequired`]. A decline that fails changes nothing
//!   about that answer (the order was not placed); the prompt text then says the question may
//!   still be open at the gateway.
//! - **One write in flight.** The gateway wants each submission fully acknowledged before the
//!   next (reference §6.3), so writes of one broker are serialized, across modes.
//! - **Nothing logged.** Bodies hold account ids; broker texts passed on are masked.
//!
//! The gateway's `{"error": …}` texts, prompt texts and cancel messages are broker text: every
//! account-shaped word in them is masked before it leaves the adapter.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::Mutex as AsyncMutex;

use super::client::{ApiRequest, Exchange, GatewayClient, error_text};
use super::dto::order_write::{
    self, OrderRefsDto, OrderStatusDto, PlacementAnswer, broker_text, says_order_is_unknown,
};
use super::dto::orders::OrdersDto;
use super::errors::{self, ErrorContext, GatewayFault};
use super::session::SessionCache;
use super::{pacing, preflight_brokerage};
use crate::domain::ids::{AccountId, BrokerOrderId, IdempotencyKey};
use crate::domain::order_intent::{BracketIntent, OrderIntent};
use crate::ports::broker_reader::BrokerError;
use crate::ports::order_writer::{
    CancelAck, OrderWriter, PlacedOrder, WorkingOrder, WriteError, WriterMode,
};

/// The prompts a writer confirms on its own unless configured otherwise. Each is a notice
/// about how an order works, not a limit on what it may do:
/// - `o354`: the account has no market data subscription for the instrument (common on paper
///   accounts; the order's own prices still bound it);
/// - `o10152`: a stop order becomes active only when its trigger is reached;
/// - `o10331`: the risk disclosure for stop orders;
/// - `o382`: the price will be adjusted to the instrument's tick size.
///
/// The price, size and value constraint prompts are deliberately left off: `o163` (price
/// more than a set percentage from the market), `o383` (size over the account's limit) and
/// `o451` (total value over the account's limit) come from the precautionary settings a person
/// set on the IBKR account. Confirming them automatically would switch off a safety check the
/// account owner chose, so they always go back to a person.
pub const DEFAULT_CONFIRMABLE_MESSAGE_IDS: &[&str] = &["o354", "o10152", "o10331", "o382"];

/// The most prompts a writer built without its own limit answers for one write; a sixth
/// question is refused. IBKR's own clients loop far longer, but a routine order asks one or
/// two questions, and a chain of them is more likely a loop than a reason to keep confirming.
/// `broker.max_reply_rounds` sets another limit.
pub const MAX_REPLY_ROUNDS: usize = 5;

/// The body of a reply that confirms a prompt.
const CONFIRM: &[u8] = br#"{"confirmed":true}"#;

/// The body of a reply that declines a prompt.
const DECLINE: &[u8] = br#"{"confirmed":false}"#;

/// Appended to a prompt's text when declining it at the broker failed.
const DECLINE_FAILED: &str =
    " [the gateway did not take the decline: the question may stay open there until it expires]";

/// An exchange's answer, sorted for order requests (writes, lookups and the what-if).
#[derive(Debug)]
pub(super) enum Reply {
    /// A 2xx JSON body without an `error` (`Null` when the body was empty).
    Body(Value),
    /// An `{"error": …}` text at a 2xx or 4xx status: the broker's documented refusal, so the
    /// request did not act.
    ErrorText(String),
    /// The request did not act: never sent, or refused before acting (401, 429). The fault is
    /// the read mapping.
    NotActed(GatewayFault),
    /// The request may have acted, but no usable answer came back. The fault is the read
    /// mapping.
    Unknown(GatewayFault),
}

impl Reply {
    /// True for the gateway's `Please query /accounts first`.
    pub(super) fn asks_for_preflight(&self) -> bool {
        matches!(self, Self::ErrorText(text)
            if errors::classify_text(text, ErrorContext::default())
                == Some(GatewayFault::PreflightMissing))
    }
}

/// Sorts what an exchange produced.
pub(super) fn sort(exchange: Exchange) -> Reply {
    let (status, body) = match exchange {
        Exchange::NotSent(fault) => return Reply::NotActed(fault),
        Exchange::Unanswered(fault) => return Reply::Unknown(fault),
        Exchange::Answered { status, body } => (status, body),
    };
    let code = status.as_u16();
    let text = body.as_ref().and_then(error_text).map(str::to_owned);
    if status.is_server_error() {
        // The request went out and the gateway failed while handling it: it may have passed
        // the order to IBKR first (a request over 10 s is answered 503, an IBKR restart 500).
        // An `{"error": …}` body does not change that; the text only picks the fault.
        return Reply::Unknown(errors::from_status(
            code,
            text.as_deref(),
            ErrorContext::default(),
        ));
    }
    match (text, body) {
        (Some(text), _) if status.is_success() || status.is_client_error() => {
            Reply::ErrorText(text)
        }
        (None, Some(value)) if status.is_success() => Reply::Body(value),
        (None, None) if status.is_success() => Reply::Unknown(GatewayFault::invalid(
            "the gateway answered with malformed JSON",
        )),
        // A 4xx without the documented `{"error": …}` body, or a status no endpoint documents:
        // not a refusal the adapter can vouch for.
        _ => Reply::Unknown(GatewayFault::invalid(&format!(
            "the gateway answered HTTP {code} without the documented error body"
        ))),
    }
}

/// The outcome-unknown error for a fault, keeping the fault's fixed detail.
fn outcome_unknown(fault: &GatewayFault) -> WriteError {
    let detail = match fault {
        GatewayFault::Broker(
            BrokerError::Unavailable { detail } | BrokerError::InvalidResponse { detail },
        ) => detail.clone(),
        _ => "no usable answer came back".to_owned(),
    };
    WriteError::Ambiguous { detail }
}

/// True for an id IBKR could have assigned: a positive integer. Anything else (notably `-1`,
/// which the cancel endpoint reads as "every open order") is never sent.
fn is_ibkr_order_id(order_id: &BrokerOrderId) -> bool {
    let raw = order_id.as_str();
    raw.bytes().all(|b| b.is_ascii_digit()) && raw.parse::<u64>().is_ok_and(|id| id > 0)
}

fn refused(error: order_write::OrderBodyError) -> WriteError {
    WriteError::Refused {
        reason: error.to_string(),
    }
}

/// The live boundary: every leg must carry a limit price, and none may be a market order. The
/// gateway's live gates refuse these first; this is the second lock, checked before anything
/// is sent.
fn check_live_legs(legs: &[OrderIntent], bracket: bool) -> Result<(), WriteError> {
    match crate::domain::order_intent::live_writer_refusal(legs, bracket) {
        Some(reason) => Err(WriteError::Refused { reason }),
        None => Ok(()),
    }
}

/// The Client Portal order writer. Build it with `ClientPortalBroker::order_writer` (paper) or
/// `ClientPortalBroker::order_writer_for` (either mode); see the module documentation.
pub struct ClientPortalOrderWriter {
    client: Arc<GatewayClient>,
    // Shared with the broker: a pre-flight run by either serves both, and a session seen lost
    // by either is forgotten by both. An async mutex because it is held across the pre-flight.
    session: Arc<AsyncMutex<SessionCache>>,
    // Shared with the broker's other writers: held across one whole write, prompts included,
    // so only one submission is in flight (reference §6.3).
    writes: Arc<AsyncMutex<()>>,
    confirmable: BTreeSet<String>,
    mode: WriterMode,
    // The most prompts answered for one write; the next one is declined.
    max_reply_rounds: usize,
}

impl fmt::Debug for ClientPortalOrderWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientPortalOrderWriter")
            .field("mode", &self.mode)
            .field("confirmable", &self.confirmable)
            .field("max_reply_rounds", &self.max_reply_rounds)
            .finish_non_exhaustive()
    }
}

impl ClientPortalOrderWriter {
    pub(super) fn new(
        client: Arc<GatewayClient>,
        session: Arc<AsyncMutex<SessionCache>>,
        writes: Arc<AsyncMutex<()>>,
        confirmable: BTreeSet<String>,
        mode: WriterMode,
        max_reply_rounds: usize,
    ) -> Self {
        Self {
            client,
            session,
            writes,
            confirmable,
            mode,
            max_reply_rounds,
        }
    }

    /// The message ids this writer confirms on its own.
    pub fn confirmable_message_ids(&self) -> &BTreeSet<String> {
        &self.confirmable
    }

    /// The most prompts this writer answers for one write.
    pub fn max_reply_rounds(&self) -> usize {
        self.max_reply_rounds
    }

    /// In live mode, refuses what a live writer never sends; nothing in paper mode.
    fn check_boundary(&self, legs: &[OrderIntent], bracket: bool) -> Result<(), WriteError> {
        match self.mode {
            WriterMode::Paper => Ok(()),
            WriterMode::Live => check_live_legs(legs, bracket),
        }
    }

    async fn forget_session(&self) {
        *self.session.lock().await = SessionCache::default();
    }

    /// Maps a fault to the port's broker error, dropping the session caches where the session
    /// is gone.
    async fn settle(&self, fault: GatewayFault) -> BrokerError {
        match fault {
            GatewayFault::Broker(error) => error,
            GatewayFault::NoSession => {
                self.forget_session().await;
                super::session::no_session_error(&self.client).await
            }
            GatewayFault::PreflightMissing => {
                self.forget_session().await;
                BrokerError::Unavailable {
                    detail: "the gateway asked for its pre-flight again; nothing was placed"
                        .to_owned(),
                }
            }
            GatewayFault::NothingFound => {
                errors::invalid("the gateway found nothing for a known id")
            }
            GatewayFault::RateLimited { penalty } => pacing::rate_limited(penalty),
        }
    }

    /// Runs the pre-flight and checks that `account` is an account of the session and of the
    /// writer's mode. The gateway checks the account's mode before handing it over; this is
    /// the second lock.
    async fn checked_account(&self, account: &AccountId) -> Result<(), WriteError> {
        let brokerage = match preflight_brokerage(&self.client, &self.session).await {
            Ok(brokerage) => brokerage,
            Err(fault) => return Err(WriteError::NotSent(self.settle(fault).await)),
        };
        if !brokerage.ids.contains(account) {
            return Err(WriteError::NotSent(BrokerError::UnknownAccount));
        }
        let of_mode = match self.mode {
            WriterMode::Paper => account.is_paper_shaped() && brokerage.is_paper != Some(false),
            // A paper-shaped id or a session that calls itself paper is never a live account.
            WriterMode::Live => !account.is_paper_shaped() && brokerage.is_paper != Some(true),
        };
        if !of_mode {
            return Err(WriteError::Refused {
                reason: format!(
                    "the {mode} Client Portal writer writes only to {mode} accounts",
                    mode = self.mode.as_str()
                ),
            });
        }
        Ok(())
    }

    /// Sends one write and returns its body, or the error that says what is known.
    /// `about_existing` is true for requests about a working order (modify, cancel), where
    /// `… doesn't exist` means [`WriteError::OrderNotFound`].
    async fn write(&self, request: &ApiRequest, about_existing: bool) -> Result<Value, WriteError> {
        match sort(self.client.exchange(request).await) {
            Reply::Body(value) => Ok(value),
            Reply::ErrorText(text) => {
                // Only the session texts are classified: an order refusal may well mention an
                // account or a contract, and is still a refusal.
                let fault = errors::classify_text(&text, ErrorContext::default()).filter(|fault| {
                    matches!(
                        fault,
                        GatewayFault::NoSession | GatewayFault::PreflightMissing
                    )
                });
                Err(match fault {
                    Some(fault) => WriteError::NotSent(self.settle(fault).await),
                    None if about_existing && says_order_is_unknown(&text) => {
                        WriteError::OrderNotFound
                    }
                    None => WriteError::Rejected {
                        reason: broker_text(&text),
                    },
                })
            }
            Reply::NotActed(fault) => Err(WriteError::NotSent(self.settle(fault).await)),
            Reply::Unknown(fault) => Err(outcome_unknown(&fault)),
        }
    }

    /// Sends one lookup; `None` when the gateway says the order does not exist. A lookup
    /// changes nothing, so every failure is [`WriteError::NotSent`], and a missing pre-flight
    /// is run and the lookup asked once more.
    async fn lookup(&self, request: &ApiRequest) -> Result<Option<Value>, WriteError> {
        let mut reply = sort(self.client.exchange(request).await);
        if reply.asks_for_preflight() {
            self.forget_session().await;
            if let Err(fault) = preflight_brokerage(&self.client, &self.session).await {
                return Err(WriteError::NotSent(self.settle(fault).await));
            }
            reply = sort(self.client.exchange(request).await);
        }
        match reply {
            Reply::Body(value) => Ok(Some(value)),
            Reply::ErrorText(text) => match errors::classify_text(&text, ErrorContext::default()) {
                Some(fault @ (GatewayFault::NoSession | GatewayFault::PreflightMissing)) => {
                    Err(WriteError::NotSent(self.settle(fault).await))
                }
                _ if says_order_is_unknown(&text) => Ok(None),
                _ => Err(WriteError::NotSent(errors::invalid(
                    "the gateway answered the lookup with an error",
                ))),
            },
            Reply::NotActed(fault) | Reply::Unknown(fault) => {
                Err(WriteError::NotSent(self.settle(fault).await))
            }
        }
    }

    /// Sends a place or modify request, answers the confirmable prompts, and returns one
    /// placed order per leg.
    async fn place(
        &self,
        request: &ApiRequest,
        legs: usize,
        about_existing: bool,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        let mut answer = self.write(request, about_existing).await?;
        let mut confirmed: Vec<String> = Vec::new();
        let mut rounds = 0;
        loop {
            let prompt = match order_write::placement_answer(&answer) {
                PlacementAnswer::Placed(acknowledgements) if acknowledgements.len() == legs => {
                    return Ok(acknowledgements
                        .into_iter()
                        .map(|acknowledgement| PlacedOrder {
                            order_id: acknowledgement.order_id,
                            status: acknowledgement.status,
                            confirmed_prompts: confirmed.clone(),
                        })
                        .collect());
                }
                PlacementAnswer::Placed(acknowledgements) => {
                    return Err(WriteError::Ambiguous {
                        detail: format!(
                            "the gateway acknowledged {} orders for a request of {legs}",
                            acknowledgements.len()
                        ),
                    });
                }
                PlacementAnswer::Prompt(prompt) => prompt,
                PlacementAnswer::Unanswerable {
                    message_ids,
                    text,
                    reply_ids,
                } => {
                    return Err(self.decline(&reply_ids, message_ids, text).await);
                }
                PlacementAnswer::Unrecognised(detail) => {
                    return Err(WriteError::Ambiguous {
                        detail: detail.to_owned(),
                    });
                }
            };
            // An empty id list is never "all confirmable".
            let confirmable = !prompt.message_ids.is_empty()
                && prompt
                    .message_ids
                    .iter()
                    .all(|id| self.confirmable.contains(id));
            if !confirmable {
                let reply_ids = [prompt.reply_id];
                return Err(self
                    .decline(&reply_ids, prompt.message_ids, prompt.text)
                    .await);
            }
            if rounds >= self.max_reply_rounds {
                let reply_ids = [prompt.reply_id];
                let text = format!(
                    "{} [not answered: the limit of {} confirmation rounds was hit]",
                    prompt.text, self.max_reply_rounds
                );
                return Err(self.decline(&reply_ids, prompt.message_ids, text).await);
            }
            rounds += 1;
            let reply = ApiRequest::post_json(&["iserver", "reply"], CONFIRM.to_vec())
                .segment(prompt.reply_id);
            answer = self.write(&reply, about_existing).await?;
            for id in prompt.message_ids {
                if !confirmed.contains(&id) {
                    confirmed.push(id);
                }
            }
        }
    }

    /// Declines the questions the writer will not confirm (`{"confirmed": false}`), so no
    /// reply chain is left open at the gateway, and returns the error for the caller: the
    /// order was not placed. A decline the gateway does not take is noted in the text; an
    /// answer to a decline that acknowledges an order makes the outcome unknown.
    async fn decline(
        &self,
        reply_ids: &[String],
        message_ids: Vec<String>,
        mut text: String,
    ) -> WriteError {
        let mut declined = true;
        for reply_id in reply_ids {
            let request =
                ApiRequest::post_json(&["iserver", "reply"], DECLINE.to_vec()).segment(reply_id);
            match sort(self.client.exchange(&request).await) {
                // The documented answer to a decline is an error (`Order not confirmed`).
                Reply::ErrorText(_) => {}
                Reply::Body(value) => {
                    if let PlacementAnswer::Placed(_) = order_write::placement_answer(&value) {
                        return WriteError::Ambiguous {
                            detail: "the gateway acknowledged an order after a declined question"
                                .to_owned(),
                        };
                    }
                }
                Reply::NotActed(_) | Reply::Unknown(_) => declined = false,
            }
        }
        if !declined {
            text.push_str(DECLINE_FAILED);
        }
        WriteError::ConfirmationRequired { message_ids, text }
    }

    async fn read_order(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        if !is_ibkr_order_id(order_id) {
            return Ok(None);
        }
        self.checked_account(account).await?;
        let request =
            ApiRequest::get(&["iserver", "account", "order", "status"]).segment(order_id.as_str());
        let Some(value) = self.lookup(&request).await? else {
            return Ok(None);
        };
        let converted = super::dto::parse::<OrderStatusDto>(value, "order status")
            .and_then(|status| status.try_into_domain(account, order_id));
        match converted {
            Ok(order) => Ok(order),
            Err(fault) => Err(WriteError::NotSent(self.settle(fault).await)),
        }
    }

    async fn read_by_client_order_id(
        &self,
        account: &AccountId,
        client_order_id: &IdempotencyKey,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        self.checked_account(account).await?;
        let request =
            ApiRequest::get(&["iserver", "account", "orders"]).query("accountId", account.expose());
        let read =
            |value: Option<Value>| -> Result<Option<(OrdersDto, OrderRefsDto)>, GatewayFault> {
                match value {
                    // An empty answer says nothing about whether the order exists.
                    None | Some(Value::Null) => Ok(None),
                    Some(value) => {
                        let orders: OrdersDto = super::dto::parse(value.clone(), "live orders")?;
                        if orders.is_unprimed() {
                            return Ok(None);
                        }
                        Ok(Some((orders, super::dto::parse(value, "live orders")?)))
                    }
                }
            };
        let mut lists = None;
        // The first answer of a session can be empty before the gateway has its snapshot; a
        // false "no such order" could lead to a second placement, so it is asked again and
        // then reported as not ready rather than as absent.
        for _ in 0..2 {
            match read(self.lookup(&request).await?) {
                Ok(Some(found)) => {
                    lists = Some(found);
                    break;
                }
                Ok(None) => {}
                Err(fault) => return Err(WriteError::NotSent(self.settle(fault).await)),
            }
        }
        let Some((orders, refs)) = lists else {
            return Err(WriteError::NotSent(BrokerError::Unavailable {
                detail: "the gateway's order list is not ready yet; ask again shortly".to_owned(),
            }));
        };
        let Some(order_id) = refs.order_id_for(account, client_order_id.as_str()) else {
            return Ok(None);
        };
        let live = match orders.try_into_domain(account) {
            Ok(live) => live,
            Err(fault) => return Err(WriteError::NotSent(self.settle(fault).await)),
        };
        let Some(order) = live
            .into_iter()
            .find(|order| order.order_id.as_str() == order_id)
        else {
            return Err(WriteError::NotSent(errors::invalid(
                "the order list names an order it does not describe",
            )));
        };
        match order_write::working_order(order, Some(client_order_id.to_string())) {
            Ok(working) => Ok(Some(working)),
            Err(fault) => Err(WriteError::NotSent(self.settle(fault).await)),
        }
    }
}

#[async_trait]
impl OrderWriter for ClientPortalOrderWriter {
    fn name(&self) -> &'static str {
        "client_portal"
    }

    fn mode(&self) -> WriterMode {
        self.mode
    }

    async fn submit(
        &self,
        order: &OrderIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<PlacedOrder, WriteError> {
        self.check_boundary(std::slice::from_ref(order), false)?;
        let account = order.account_id();
        let body = order_write::orders_body(
            account,
            std::slice::from_ref(order),
            Some(client_order_id.as_str()),
        )
        .map_err(refused)?;
        let _one_write_in_flight = self.writes.lock().await;
        self.checked_account(account).await?;
        let request = ApiRequest::post_json(&["iserver", "account"], body)
            .segment(account.expose())
            .segment("orders");
        self.place(&request, 1, false)
            .await?
            .pop()
            .ok_or_else(|| WriteError::Ambiguous {
                detail: "the gateway acknowledged no order".to_owned(),
            })
    }

    async fn submit_bracket(
        &self,
        bracket: &BracketIntent,
        client_order_id: &IdempotencyKey,
    ) -> Result<Vec<PlacedOrder>, WriteError> {
        let legs = bracket.legs();
        self.check_boundary(legs, true)?;
        let [entry, _, _] = legs;
        let account = entry.account_id();
        let body = order_write::orders_body(account, legs, Some(client_order_id.as_str()))
            .map_err(refused)?;
        let _one_write_in_flight = self.writes.lock().await;
        self.checked_account(account).await?;
        let request = ApiRequest::post_json(&["iserver", "account"], body)
            .segment(account.expose())
            .segment("orders");
        self.place(&request, legs.len(), false).await
    }

    async fn modify(
        &self,
        order_id: &BrokerOrderId,
        replacement: &OrderIntent,
    ) -> Result<PlacedOrder, WriteError> {
        self.check_boundary(std::slice::from_ref(replacement), false)?;
        if !is_ibkr_order_id(order_id) {
            return Err(WriteError::OrderNotFound);
        }
        let account = replacement.account_id();
        let body = order_write::modify_body(replacement).map_err(refused)?;
        let _one_write_in_flight = self.writes.lock().await;
        self.checked_account(account).await?;
        let request = ApiRequest::post_json(&["iserver", "account"], body)
            .segment(account.expose())
            .segment("order")
            .segment(order_id.as_str());
        self.place(&request, 1, true)
            .await?
            .pop()
            .ok_or_else(|| WriteError::Ambiguous {
                detail: "the gateway acknowledged no order".to_owned(),
            })
    }

    async fn cancel(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<CancelAck, WriteError> {
        if !is_ibkr_order_id(order_id) {
            return Err(WriteError::OrderNotFound);
        }
        let _one_write_in_flight = self.writes.lock().await;
        self.checked_account(account).await?;
        let request = ApiRequest::delete(&["iserver", "account"])
            .segment(account.expose())
            .segment("order")
            .segment(order_id.as_str());
        let value = self.write(&request, true).await?;
        let answer = order_write::cancel_answer(&value).ok_or_else(|| WriteError::Ambiguous {
            detail: "the gateway's cancel answer has an unexpected shape".to_owned(),
        })?;
        if answer
            .order_id
            .as_deref()
            .is_some_and(|echoed| echoed != order_id.as_str())
        {
            return Err(WriteError::Ambiguous {
                detail: "the gateway acknowledged the cancel of another order".to_owned(),
            });
        }
        Ok(CancelAck {
            order_id: order_id.clone(),
            message: answer.message,
        })
    }

    async fn order(
        &self,
        account: &AccountId,
        order_id: &BrokerOrderId,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        self.read_order(account, order_id).await
    }

    async fn find_by_client_order_id(
        &self,
        account: &AccountId,
        client_order_id: &IdempotencyKey,
    ) -> Result<Option<WorkingOrder>, WriteError> {
        self.read_by_client_order_id(account, client_order_id).await
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;

    fn answered(status: u16, body: Option<Value>) -> Reply {
        sort(Exchange::Answered {
            status: StatusCode::from_u16(status).unwrap(),
            body,
        })
    }

    #[test]
    fn answers_are_sorted_by_what_they_prove() {
        assert!(matches!(
            answered(200, Some(json!([{"order_id": "1"}]))),
            Reply::Body(_)
        ));
        // The documented refusal: an `{"error": …}` body at 200 or 400.
        for status in [200, 400] {
            assert!(
                matches!(
                    answered(status, Some(json!({"error": "no", "statusCode": status}))),
                    Reply::ErrorText(_)
                ),
                "{status}"
            );
        }
        // Any 5xx may come after the gateway acted, whatever its body says.
        for status in [500, 502, 503, 504, 599] {
            assert!(
                matches!(answered(status, None), Reply::Unknown(_)),
                "{status}"
            );
            assert!(
                matches!(
                    answered(status, Some(json!({"error": "Internal Server Error"}))),
                    Reply::Unknown(_)
                ),
                "{status}"
            );
        }
        assert!(matches!(answered(200, None), Reply::Unknown(_)));
        // A 4xx without the documented body is not a refusal the adapter can vouch for.
        assert!(matches!(answered(404, None), Reply::Unknown(_)));
        assert!(matches!(
            answered(403, Some(json!({"message": "nope"}))),
            Reply::Unknown(_)
        ));
        assert!(
            answered(400, Some(json!({"error": "Please query /accounts first"})))
                .asks_for_preflight()
        );
    }

    #[test]
    fn only_positive_integer_order_ids_are_sent() {
        for good in ["1", "1584220473"] {
            assert!(
                is_ibkr_order_id(&BrokerOrderId::parse(good).unwrap()),
                "{good}"
            );
        }
        for bad in ["-1", "0", "abc", "12-3", "strat-a-0001"] {
            assert!(
                !is_ibkr_order_id(&BrokerOrderId::parse(bad).unwrap()),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_default_list_leaves_out_the_constraint_prompts() {
        for id in ["o163", "o383", "o451"] {
            assert!(!DEFAULT_CONFIRMABLE_MESSAGE_IDS.contains(&id), "{id}");
        }
    }
}
