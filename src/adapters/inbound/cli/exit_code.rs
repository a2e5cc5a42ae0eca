//! The CLI's exit-code table: one code per error family, stable across releases.

use std::process::ExitCode;

use crate::domain::error_code::{ErrorCategory, ErrorCode};

/// Success.
pub const OK: u8 = 0;

/// The exit code for an error code.
pub fn for_error(code: ErrorCode) -> u8 {
    match code.category() {
        ErrorCategory::Internal => 1,
        ErrorCategory::Usage => 2,
        ErrorCategory::Refused => 3,
        ErrorCategory::Auth => 4,
        ErrorCategory::BrokerAvailability => 5,
        ErrorCategory::BrokerResponse => 6,
        ErrorCategory::AuditIntegrity => 7,
    }
}

/// The process exit code for an error code.
pub fn exit_code(code: ErrorCode) -> ExitCode {
    ExitCode::from(for_error(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::inbound::cli::args::EXIT_CODE_HELP;

    #[test]
    fn every_exit_code_is_documented_in_help() {
        for code in ErrorCode::ALL {
            let exit = for_error(*code);
            assert!(
                EXIT_CODE_HELP.contains(&format!("  {exit}  ")),
                "{code} -> {exit}"
            );
        }
    }
}
