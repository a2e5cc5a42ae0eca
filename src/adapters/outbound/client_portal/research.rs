//! The Client Portal mapping for scanners and fundamentals (issue 16).
