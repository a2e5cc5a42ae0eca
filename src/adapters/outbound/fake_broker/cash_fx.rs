//! The fake broker's answers for FX rates, currency pairs, and transfers and cash movements (issue 16).
