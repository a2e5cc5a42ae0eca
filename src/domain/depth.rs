//! Domain values for the one-shot market-depth book (Client Portal WebSocket `sbd` topic) (issue 16).
