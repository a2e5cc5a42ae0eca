//! Freezes the error-code vocabulary: a rename, removal or category change is a visible diff.

use ibkr_agent_gateway::adapters::inbound::cli::exit_code;
use ibkr_agent_gateway::domain::error_code::ErrorCode;

#[test]
fn error_codes_are_frozen() {
    let table: String = ErrorCode::ALL
        .iter()
        .map(|code| {
            format!(
                "{:<32} {:<20} retryable={:<5} exit={}\n",
                code.as_str(),
                format!("{:?}", code.category()),
                code.retryable(),
                exit_code::for_error(*code)
            )
        })
        .collect();
    insta::assert_snapshot!("error_codes", table);
}
