//! The fake broker's answers for option chains, greeks and implied volatility (issue 16).
