//! The fake broker's answers for scanners and fundamentals (issue 16).
