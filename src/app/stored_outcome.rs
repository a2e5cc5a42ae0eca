//! The outcome of a keyed write as the workflow store keeps it under the idempotency key: a
//! versioned record of what happened, not the output view.
//!
//! A replay rebuilds the caller's [`PaperOrderView`] from this record, so the view can change
//! (a field added, renamed or dropped) without breaking the replay of stored records. The
//! stored text is a JSON object with `"version": 2` and `"result": "accepted" | "failed"`.
//!
//! Version 1 is what earlier releases stored: the serialized view itself for an accepted
//! write, and `{"error": {"code", "message"}}` for a failed one. Workflow migration V3 rewrites
//! such rows to version 2; [`decode`] still reads version 1, so a record written by an older
//! process after the migration (or held by the in-memory store) replays too. A version newer
//! than this build knows is refused as corrupt rather than guessed at.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::app::order_views::{PaperOrderView, PlacedOrderView};

/// The version [`encode`] writes.
pub const OUTCOME_VERSION: u64 = 2;

/// What a finished keyed write did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum StoredOutcome {
    /// The broker took the request.
    Accepted(AcceptedWrite),
    /// The broker definitely did not act.
    Failed(FailedWrite),
}

/// An accepted write: the request's labels and what the broker reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedWrite {
    /// `submit`, `bracket_submit`, `modify` or `cancel`.
    pub operation: String,
    /// The account's reference.
    pub account_ref: String,
    /// The account's masked id.
    pub account_display: String,
    /// The idempotency key.
    pub idempotency_key: String,
    /// The approval consumed, if any.
    pub approval_id: Option<String>,
    /// The preview the approval was for.
    pub preview_id: Option<String>,
    /// The writer that acted.
    pub writer: String,
    /// The orders, in leg order.
    pub orders: Vec<StoredLeg>,
    /// The routine prompts confirmed on the way.
    #[serde(default)]
    pub confirmed_prompts: Vec<String>,
    /// The broker's message, when it gave one.
    #[serde(default)]
    pub broker_message: Option<String>,
    /// True when recovery established the outcome.
    #[serde(default)]
    pub recovered: bool,
}

/// One order of an accepted write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLeg {
    /// `order`, `entry`, `take_profit` or `stop_loss`.
    pub leg: String,
    /// The broker's order id.
    pub order_id: String,
    /// The broker's status at the time.
    pub broker_status: String,
}

/// A failed write: the stable code and the message given at the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedWrite {
    /// The stable error code.
    pub code: String,
    /// The message.
    pub message: String,
}

/// Why stored outcome text could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeDecodeError {
    /// Not an outcome of any known shape.
    Malformed,
    /// Written by a newer release.
    UnknownVersion(u64),
}

/// The stored text of `outcome`, at [`OUTCOME_VERSION`].
pub fn encode(outcome: &StoredOutcome) -> Option<String> {
    let Value::Object(fields) = serde_json::to_value(outcome).ok()? else {
        return None;
    };
    let mut object = Map::new();
    object.insert("version".to_owned(), Value::from(OUTCOME_VERSION));
    object.extend(fields);
    serde_json::to_string(&Value::Object(object)).ok()
}

/// Reads stored outcome text of version 2, or of version 1 (no `version` field).
///
/// # Errors
/// [`OutcomeDecodeError`] for text of no known shape or of a newer version.
pub fn decode(text: &str) -> Result<StoredOutcome, OutcomeDecodeError> {
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(text) else {
        return Err(OutcomeDecodeError::Malformed);
    };
    match object.remove("version") {
        Some(version) => match version.as_u64() {
            Some(OUTCOME_VERSION) => serde_json::from_value(Value::Object(object))
                .map_err(|_| OutcomeDecodeError::Malformed),
            Some(other) => Err(OutcomeDecodeError::UnknownVersion(other)),
            None => Err(OutcomeDecodeError::Malformed),
        },
        None => decode_v1(object),
    }
}

/// Version 1: `{"error": {...}}`, or the accepted view's own fields.
fn decode_v1(object: Map<String, Value>) -> Result<StoredOutcome, OutcomeDecodeError> {
    if let Some(error) = object.get("error") {
        return serde_json::from_value(error.clone())
            .map(StoredOutcome::Failed)
            .map_err(|_| OutcomeDecodeError::Malformed);
    }
    serde_json::from_value::<AcceptedWrite>(Value::Object(object))
        .map(StoredOutcome::Accepted)
        .map_err(|_| OutcomeDecodeError::Malformed)
}

impl AcceptedWrite {
    /// What to store for the view a write answered with.
    pub fn from_view(view: &PaperOrderView) -> Self {
        Self {
            operation: view.operation.clone(),
            account_ref: view.account_ref.clone(),
            account_display: view.account_display.clone(),
            idempotency_key: view.idempotency_key.clone(),
            approval_id: view.approval_id.clone(),
            preview_id: view.preview_id.clone(),
            writer: view.writer.clone(),
            orders: view
                .orders
                .iter()
                .map(|order| StoredLeg {
                    leg: order.leg.clone(),
                    order_id: order.order_id.clone(),
                    broker_status: order.broker_status.clone(),
                })
                .collect(),
            confirmed_prompts: view.confirmed_prompts.clone(),
            broker_message: view.broker_message.clone(),
            recovered: view.recovered,
        }
    }

    /// The view a replay answers with (`replayed: true`).
    pub fn replay_view(&self) -> PaperOrderView {
        PaperOrderView {
            operation: self.operation.clone(),
            outcome: "accepted".to_owned(),
            replayed: true,
            account_ref: self.account_ref.clone(),
            account_display: self.account_display.clone(),
            idempotency_key: self.idempotency_key.clone(),
            approval_id: self.approval_id.clone(),
            preview_id: self.preview_id.clone(),
            writer: self.writer.clone(),
            orders: self
                .orders
                .iter()
                .map(|order| PlacedOrderView {
                    leg: order.leg.clone(),
                    order_id: order.order_id.clone(),
                    broker_status: order.broker_status.clone(),
                })
                .collect(),
            confirmed_prompts: self.confirmed_prompts.clone(),
            broker_message: self.broker_message.clone(),
            recovered: self.recovered,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn accepted() -> AcceptedWrite {
        AcceptedWrite {
            operation: "bracket_submit".into(),
            account_ref: "acct_1".into(),
            account_display: "DU•••4567".into(),
            idempotency_key: "k-1".into(),
            approval_id: Some("apr_1".into()),
            preview_id: Some("prv_1".into()),
            writer: "local_candidate".into(),
            orders: vec![StoredLeg {
                leg: "entry".into(),
                order_id: "lc-1".into(),
                broker_status: "Submitted".into(),
            }],
            confirmed_prompts: vec!["o163".into()],
            broker_message: None,
            recovered: false,
        }
    }

    #[test]
    fn version_2_round_trips_and_says_its_version() {
        for outcome in [
            StoredOutcome::Accepted(accepted()),
            StoredOutcome::Failed(FailedWrite {
                code: "BROKER_ORDER_REJECTED".into(),
                message: "no".into(),
            }),
        ] {
            let text = encode(&outcome).unwrap();
            let value: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(value["version"], 2);
            assert_eq!(decode(&text), Ok(outcome));
        }
    }

    #[test]
    fn version_1_texts_still_decode() {
        let view = json!({
            "operation": "bracket_submit", "outcome": "accepted", "replayed": false,
            "account_ref": "acct_1", "account_display": "DU•••4567", "idempotency_key": "k-1",
            "approval_id": "apr_1", "preview_id": "prv_1", "writer": "local_candidate",
            "orders": [{"leg": "entry", "order_id": "lc-1", "broker_status": "Submitted"}],
            "confirmed_prompts": ["o163"], "broker_message": null, "recovered": false
        });
        assert_eq!(
            decode(&view.to_string()),
            Ok(StoredOutcome::Accepted(accepted()))
        );
        let failed = json!({"error": {"code": "BROKER_ORDER_REJECTED", "message": "no"}});
        assert_eq!(
            decode(&failed.to_string()),
            Ok(StoredOutcome::Failed(FailedWrite {
                code: "BROKER_ORDER_REJECTED".into(),
                message: "no".into(),
            }))
        );
    }

    #[test]
    fn unknown_shapes_and_newer_versions_are_refused() {
        assert_eq!(decode("{}"), Err(OutcomeDecodeError::Malformed));
        assert_eq!(decode("[1]"), Err(OutcomeDecodeError::Malformed));
        assert_eq!(decode("not json"), Err(OutcomeDecodeError::Malformed));
        assert_eq!(
            decode(r#"{"version": 3, "result": "accepted"}"#),
            Err(OutcomeDecodeError::UnknownVersion(3))
        );
        assert_eq!(
            decode(r#"{"version": 2, "result": "maybe"}"#),
            Err(OutcomeDecodeError::Malformed)
        );
    }

    #[test]
    fn a_replay_view_is_the_original_view_marked_replayed() {
        let view = accepted().replay_view();
        assert!(view.replayed);
        assert_eq!(AcceptedWrite::from_view(&view), accepted());
    }
}
