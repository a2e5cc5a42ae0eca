//! The read use cases for the one-shot market-depth book (Client Portal WebSocket `sbd` topic) (issue 16).

use super::Entry;

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    Vec::new()
}
