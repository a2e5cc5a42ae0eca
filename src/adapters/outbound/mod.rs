//! Outbound adapters: the fake broker, clocks, secret sources and the process environment.

pub mod client_portal;
pub mod clock;
pub mod fake_broker;
pub mod key_file_secrets;
pub mod memory_audit;
mod private_files;
pub mod process_env;
pub mod sqlite_audit;
