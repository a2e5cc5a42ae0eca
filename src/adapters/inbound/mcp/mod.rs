//! The MCP tool server (being built; see issue 4).

use crate::app::config::Settings;
use crate::app::error::GatewayError;
use crate::app::gateway::Gateway;

/// Serves MCP over stdio until stdin closes.
///
/// # Errors
/// Not available yet.
pub async fn serve_stdio(_gateway: Gateway, _settings: &Settings) -> Result<(), GatewayError> {
    Err(GatewayError::Internal {
        message: "the MCP server is not built yet".into(),
    })
}
