//! The export file `audit purge` writes: created new (never over an existing file), owner-only,
//! synced before the purge goes on, and read back for verification.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use crate::adapters::outbound::private_files::open_private;
use crate::app::audit_purge::ExportDestination;

/// A purge export at a path the operator named.
#[derive(Debug, Clone)]
pub struct ExportFile {
    path: PathBuf,
}

impl ExportFile {
    /// The file at `path` (not created yet).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }
}

impl ExportDestination for ExportFile {
    fn create(&self) -> std::io::Result<Box<dyn Write + Send>> {
        let file = open_private(&self.path, true)?;
        Ok(Box::new(BufWriter::new(file)))
    }

    fn sync(&self) -> std::io::Result<()> {
        File::open(&self.path)?.sync_all()?;
        if let Some(parent) = self.path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            // The directory entry too, so the file survives a power loss after the purge.
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    fn open(&self) -> std::io::Result<Box<dyn BufRead + Send>> {
        Ok(Box::new(BufReader::new(File::open(&self.path)?)))
    }
}
