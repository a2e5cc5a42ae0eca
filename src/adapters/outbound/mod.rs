//! Outbound adapters: the fake broker, clocks, secret sources, the process environment, and the
//! workflow stores (SQLite and in-memory).

pub mod client_portal;
pub mod clock;
pub mod fake_broker;
pub mod key_file_secrets;
pub mod local_candidate;
pub mod memory_audit;
pub mod memory_workflow;
pub(crate) mod private_files;
pub mod process_env;
pub mod refusing_writer;
pub mod sqlite_audit;
mod sqlite_file;
pub mod sqlite_workflow;
