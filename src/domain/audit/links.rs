//! Typed links from an audit event to the records it concerns: which approval and preview,
//! which order (its digest), under which idempotency key, which broker order ids, and who
//! approved it through which surface.
//!
//! Links are stored in the event's metadata under the reserved key [`LINKS_KEY`], beside the
//! redacted input but not through redaction: the gateway's own ids are not secrets, and the
//! opaque-token rule would otherwise replace every one of them. They can only be built from
//! validated domain values (an [`Approval`] the store holds, parsed ids), never from caller
//! text, and `redact` drops any caller-supplied key of the same name, so a link in the log was
//! put there by the gateway. The metadata column is covered by the chain hash like every other.
//!
//! The one caller-chosen value is the idempotency key: it is still checked by the secret
//! detectors (not by the opaque-token rule, which any long key would match) and replaced when
//! one fires.

use serde_json::{Map, Value};

use super::Surface;
use super::checkpoint::SignedCheckpoint;
use super::redaction::{REDACTED, Redaction, RedactionReason, scrub_secrets};
use crate::domain::approval::Approval;
use crate::domain::ids::{ApprovalId, BrokerOrderId, IdempotencyKey, PreviewId};

/// The metadata key links are stored under.
pub const LINKS_KEY: &str = "links";

/// The most broker order ids one event links (a bracket has three).
pub const MAX_LINKED_ORDERS: usize = 8;

/// What an event is about, by the gateway's own typed ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditLinks {
    approval_id: Option<ApprovalId>,
    preview_id: Option<PreviewId>,
    order_digest: Option<String>,
    idempotency_key: Option<IdempotencyKey>,
    broker_order_ids: Vec<BrokerOrderId>,
    approved_by: Option<String>,
    approved_via: Option<Surface>,
    checkpoint: Option<SignedCheckpoint>,
}

impl AuditLinks {
    /// True when nothing is linked.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Links a stored approval: its id, its preview, the digest of the order it approves, who
    /// created it and through which surface.
    pub fn link_approval(&mut self, approval: &Approval) {
        self.approval_id = Some(approval.id.clone());
        self.preview_id = Some(approval.preview_id.clone());
        self.order_digest = Some(approval.digest.to_hex());
        self.approved_by = Some(approval.created_by.to_stored());
        self.approved_via = Some(approval.surface);
    }

    /// Links a stored preview (before any approval exists).
    pub fn link_preview(&mut self, preview_id: &PreviewId) {
        self.preview_id = Some(preview_id.clone());
    }

    /// Links the write's idempotency key.
    pub fn link_idempotency_key(&mut self, key: &IdempotencyKey) {
        self.idempotency_key = Some(key.clone());
    }

    /// Links a broker order id (the order placed, modified or cancelled); repeats are kept once.
    pub fn link_broker_order(&mut self, order_id: &BrokerOrderId) {
        if !self.broker_order_ids.contains(order_id)
            && self.broker_order_ids.len() < MAX_LINKED_ORDERS
        {
            self.broker_order_ids.push(order_id.clone());
        }
    }

    /// Links a signed checkpoint this event records (`audit checkpoint`, a purge). It is
    /// stored whole under `checkpoint`, as its file line holds it: signed, so nothing in it is
    /// caller text, and public (a chain head, a digest, a signature, a key id).
    pub fn link_checkpoint(&mut self, checkpoint: &SignedCheckpoint) {
        self.checkpoint = Some(checkpoint.clone());
    }

    /// The stored form (an object with only the linked fields) and what was redacted in it
    /// (an idempotency key that looks like a secret).
    pub fn to_stored(&self) -> (Value, Vec<Redaction>) {
        let mut object = Map::new();
        let mut redactions = Vec::new();
        let mut text = |name: &str, value: Option<&str>| {
            if let Some(value) = value {
                object.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        };
        text(
            "approval_id",
            self.approval_id.as_ref().map(ApprovalId::as_str),
        );
        text(
            "preview_id",
            self.preview_id.as_ref().map(PreviewId::as_str),
        );
        text("order_digest", self.order_digest.as_deref());
        text("approved_by", self.approved_by.as_deref());
        text("approved_via", self.approved_via.map(Surface::as_str));
        if let Some(key) = &self.idempotency_key {
            let stored = if scrub_secrets(key.as_str()).1.is_some() {
                redactions.push(Redaction {
                    path: format!("{LINKS_KEY}.idempotency_key"),
                    reason: RedactionReason::SecretLikeValue,
                });
                REDACTED
            } else {
                key.as_str()
            };
            object.insert(
                "idempotency_key".to_owned(),
                Value::String(stored.to_owned()),
            );
        }
        if !self.broker_order_ids.is_empty() {
            object.insert(
                "broker_order_ids".to_owned(),
                Value::Array(
                    self.broker_order_ids
                        .iter()
                        .map(|id| Value::String(id.as_str().to_owned()))
                        .collect(),
                ),
            );
        }
        if let Some(checkpoint) = &self.checkpoint {
            object.insert("checkpoint".to_owned(), checkpoint.to_json());
        }
        (Value::Object(object), redactions)
    }
}

/// The signed checkpoint an event's stored metadata links, if it links one that parses.
pub fn linked_checkpoint(metadata: &Value) -> Option<SignedCheckpoint> {
    metadata
        .get(LINKS_KEY)
        .and_then(|links| links.get("checkpoint"))
        .and_then(|value| SignedCheckpoint::from_json(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stored_as_given_and_a_secret_shaped_key_is_not() {
        let mut links = AuditLinks::default();
        assert!(links.is_empty());
        links.link_preview(&PreviewId::parse("prv_0190f5e2a3b47c8d9e0f1a2b3c4d5e6f").unwrap());
        links.link_idempotency_key(&IdempotencyKey::parse("order-2026-11-27-0001").unwrap());
        let order = BrokerOrderId::parse("1234567890").unwrap();
        links.link_broker_order(&order);
        links.link_broker_order(&order);
        let (value, redactions) = links.to_stored();
        assert_eq!(value["preview_id"], "prv_0190f5e2a3b47c8d9e0f1a2b3c4d5e6f");
        assert_eq!(value["idempotency_key"], "order-2026-11-27-0001");
        assert_eq!(value["broker_order_ids"], serde_json::json!(["1234567890"]));
        assert!(redactions.is_empty());

        for smuggled in [
            "sk-live-4eC39HqLyjWDarjtT1zdp7dc",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "xoxb-1234567890-abcdefghij",
        ] {
            let mut links = AuditLinks::default();
            links.link_idempotency_key(&IdempotencyKey::parse(smuggled).unwrap());
            let (value, redactions) = links.to_stored();
            assert_eq!(value["idempotency_key"], REDACTED, "{smuggled}");
            assert_eq!(redactions[0].path, "links.idempotency_key");
        }
    }
}
