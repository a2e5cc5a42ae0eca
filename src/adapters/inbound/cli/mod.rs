//! The `ibkr-agent` command-line front end: argument types, dispatch to the gateway, output
//! rendering and the exit-code table. `src/bin/ibkr-agent.rs` only glues these together.

pub mod args;
pub mod exit_code;
pub mod generated;
pub mod orders;
pub mod render;
pub mod run;
