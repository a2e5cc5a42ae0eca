//! Domain values for option chains, greeks and implied volatility (issue 16).
