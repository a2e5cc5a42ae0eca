//! The fake broker's answers for P&L, account metadata and the risk view (issue 16).
