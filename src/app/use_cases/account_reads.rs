//! The read use cases for P&L, account metadata and the risk view (issue 16).

use super::Entry;

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    Vec::new()
}
