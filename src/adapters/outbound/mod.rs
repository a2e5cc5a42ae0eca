//! Outbound adapters: the fake broker, clocks, secret sources, the process environment, the
//! workflow stores (SQLite and in-memory), and the audit checkpoint files.

pub mod checkpoint_file;
pub mod client_portal;
pub mod clock;
pub mod export_file;
pub mod fake_broker;
pub mod key_file_secrets;
pub mod local_candidate;
pub mod memory_audit;
pub mod memory_workflow;
mod private_files;
pub mod process_env;
pub mod refusing_writer;
pub mod sqlite_audit;
mod sqlite_file;
pub mod sqlite_workflow;
