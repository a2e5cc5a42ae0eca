//! The Client Portal mapping for option chains, greeks and implied volatility (issue 16).
