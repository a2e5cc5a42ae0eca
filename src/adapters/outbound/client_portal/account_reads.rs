//! The Client Portal mapping for P&L, account metadata and the risk view (issue 16).
