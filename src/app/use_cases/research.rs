//! The read use cases for scanners and fundamentals (issue 16).

use super::Entry;

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    Vec::new()
}
