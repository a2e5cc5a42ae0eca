//! The application layer: use cases, the [`Gateway`] facade, configuration, output views and
//! the composition root.
//!
//! Use cases follow one order: check the scope, gather inputs through ports, apply the pure
//! domain, convert to views. The app never names a concrete adapter outside [`wiring`].

pub mod account_directory;
pub mod api;
pub mod approvals;
pub mod audit_proof;
pub mod audit_purge;
pub mod audit_reads;
pub mod audited;
pub mod auto_halt;
pub mod checkpoints;
pub mod config;
pub mod error;
pub mod export_check;
pub mod frame_refusals;
pub mod gateway;
pub mod halt_triggers;
pub mod input;
pub mod live_controls;
pub mod live_orders;
pub mod live_settings;
pub mod live_startup;
pub mod live_views;
pub mod operation;
pub mod order_history;
pub mod order_history_views;
pub mod order_input;
pub mod order_tracking;
pub mod order_views;
pub mod paper_orders;
pub mod previews;
pub mod principal;
pub mod reads;
pub mod reconciler;
pub mod recovery;
pub mod remote_settings;
pub mod remote_startup;
pub mod session_monitor;
pub mod startup_error;
pub mod stored_outcome;
pub mod use_cases;
pub mod views;
pub mod wiring;
pub mod write_pipeline;

pub use error::GatewayError;
pub use gateway::Gateway;
pub use wiring::GatewayBuilder;
