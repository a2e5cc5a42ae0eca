//! Signed audit checkpoints at the app layer: the signing key and checkpoint file a gateway
//! was built with (see `domain::audit::checkpoint` for what a checkpoint states).

use std::path::PathBuf;
use std::sync::Arc;

use crate::app::config::DEFAULT_LIVE_WRITE_RETENTION_DAYS;
use crate::domain::audit::checkpoint::CheckpointSigner;

/// How a gateway signs and ships checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSetup {
    /// The signing key; `None` when none is configured (checkpoints are then off).
    pub signer: Option<Arc<CheckpointSigner>>,
    /// The append-only file every checkpoint line is also written to; `None` for none.
    pub file: Option<PathBuf>,
    /// How long live-write events must be kept before a purge may delete them, in days.
    pub live_write_retention_days: u32,
}

impl Default for CheckpointSetup {
    fn default() -> Self {
        Self {
            signer: None,
            file: None,
            live_write_retention_days: DEFAULT_LIVE_WRITE_RETENTION_DAYS,
        }
    }
}
