//! The read use cases for FX rates, currency pairs, and transfers and cash movements (issue 16).

use super::Entry;

/// This module's use cases, in `tools/list` order.
pub(super) fn entries() -> Vec<Entry> {
    Vec::new()
}
