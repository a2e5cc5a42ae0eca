//! The `previews` table: storing a preview and reading it back.
//!
//! The legs are stored as their canonical encodings and the digest as computed when the
//! preview was made. Loading never recomputes the digest: a row whose legs were edited but
//! still parse loads, and the caller's `Preview::digest_matches` check refuses it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{corrupt, insert_failed, timestamps, unavailable, what_if_json};
use crate::domain::audit::{Actor, Surface};
use crate::domain::ids::{BrokerOrderId, PreviewId};
use crate::domain::order_intent::{OrderDigest, OrderIntent};
use crate::domain::preview::{Preview, PreviewKind};
use crate::ports::workflow_store::StoreError;

/// The columns every query reads, in [`PreviewRow::read`]'s order.
const COLUMNS: &str = "id, kind, modify_order_id, legs, digest, symbol, what_if, created_at, \
     expires_at, created_by, surface";

/// Stores `preview`.
pub(super) fn insert(connection: &Connection, preview: &Preview) -> Result<(), StoreError> {
    let what_if = what_if_json::to_json(&preview.what_if).ok_or(StoreError::Unavailable {
        detail: "cannot encode the what-if figures".to_owned(),
    })?;
    // The `modify_order_id` column holds the target of a `modify` or a `cancel` preview (the
    // column predates cancels; the kind says which).
    let modify_order_id = preview.kind.target_order().map(BrokerOrderId::as_str);
    connection
        .execute(
            "INSERT INTO previews (id, kind, modify_order_id, account_id, legs, digest, symbol, \
             what_if, created_at, expires_at, created_by, surface) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                preview.id.as_str(),
                preview.kind.as_str(),
                modify_order_id,
                // A preview without legs (never made by the app) is stored with no account.
                preview
                    .account_id()
                    .map(|id| id.expose())
                    .unwrap_or_default(),
                encode_legs(&preview.legs),
                preview.digest.to_hex(),
                preview.symbol,
                what_if,
                timestamps::to_text(preview.created_at),
                timestamps::to_text(preview.expires_at),
                preview.created_by.to_stored(),
                preview.surface.as_str(),
            ],
        )
        .map(|_| ())
        .map_err(insert_failed("store the preview"))
}

/// The preview stored under `id`.
pub(super) fn get(connection: &Connection, id: &PreviewId) -> Result<Option<Preview>, StoreError> {
    connection
        .query_row(
            &format!("SELECT {COLUMNS} FROM previews WHERE id = ?1"),
            params![id.as_str()],
            PreviewRow::read,
        )
        .optional()
        .map_err(unavailable("read the preview"))?
        .map(PreviewRow::into_preview)
        .transpose()
}

/// The canonical encodings, entry first, joined by `\n` (as the digest hashes them).
fn encode_legs(legs: &[OrderIntent]) -> String {
    legs.iter()
        .map(OrderIntent::canonical)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses what [`encode_legs`] wrote; `None` when any leg does not parse.
fn decode_legs(text: &str) -> Option<Vec<OrderIntent>> {
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split('\n')
        .map(|leg| OrderIntent::from_canonical(leg).ok())
        .collect()
}

/// A `previews` row as stored, before parsing.
struct PreviewRow {
    id: String,
    kind: String,
    modify_order_id: Option<String>,
    legs: String,
    digest: String,
    symbol: String,
    what_if: String,
    created_at: String,
    expires_at: String,
    created_by: String,
    surface: String,
}

impl PreviewRow {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            kind: row.get(1)?,
            modify_order_id: row.get(2)?,
            legs: row.get(3)?,
            digest: row.get(4)?,
            symbol: row.get(5)?,
            what_if: row.get(6)?,
            created_at: row.get(7)?,
            expires_at: row.get(8)?,
            created_by: row.get(9)?,
            surface: row.get(10)?,
        })
    }

    /// The domain preview; a column that does not parse is [`StoreError::Corrupt`] naming the
    /// preview id and the column, never the stored text (the legs hold the account id).
    fn into_preview(self) -> Result<Preview, StoreError> {
        let id = PreviewId::parse(&self.id)
            .map_err(|_| corrupt("a preview row has a malformed id".to_owned()))?;
        let bad = |column: &str| corrupt(format!("preview {id}: malformed {column}"));
        let kind = match (self.kind.as_str(), self.modify_order_id) {
            ("order", None) => PreviewKind::Order,
            ("bracket", None) => PreviewKind::Bracket,
            ("modify", Some(order_id)) => PreviewKind::Modify {
                order_id: BrokerOrderId::parse(&order_id).map_err(|_| bad("modify_order_id"))?,
            },
            ("cancel", Some(order_id)) => PreviewKind::Cancel {
                order_id: BrokerOrderId::parse(&order_id).map_err(|_| bad("modify_order_id"))?,
            },
            _ => return Err(bad("kind")),
        };
        Ok(Preview {
            kind,
            legs: decode_legs(&self.legs).ok_or_else(|| bad("legs"))?,
            digest: OrderDigest::from_hex(&self.digest).map_err(|_| bad("digest"))?,
            symbol: self.symbol,
            what_if: what_if_json::from_json(&self.what_if).ok_or_else(|| bad("what_if"))?,
            created_at: timestamps::from_text(&self.created_at).ok_or_else(|| bad("created_at"))?,
            expires_at: timestamps::from_text(&self.expires_at).ok_or_else(|| bad("expires_at"))?,
            created_by: Actor::from_stored(&self.created_by).ok_or_else(|| bad("created_by"))?,
            surface: Surface::parse(&self.surface).ok_or_else(|| bad("surface"))?,
            id,
        })
    }
}
