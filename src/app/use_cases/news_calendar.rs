//! The read use cases for news (FYI notifications) and trading sessions and holidays (issue 16).

use super::Entry;

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    Vec::new()
}
