//! Domain values for scanners and fundamentals (issue 16).
