//! The export file `audit purge` writes: created new (never over an existing file), owner-only,
//! synced with its directory before the purge goes on, and read back for verification.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::Path;

use super::private_files::open_private;

/// Creates the file, which must not exist yet, owner-only.
///
/// # Errors
/// `AlreadyExists` for an existing file; any other I/O error.
pub fn create(path: &Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::new(open_private(path, true)?))
}

/// Flushes the file and its directory entry to stable storage.
///
/// # Errors
/// Any I/O error.
pub fn sync(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()?;
    if let Some(parent) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        // The directory entry too, so the file survives a power loss after the purge.
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Opens the file for reading back.
///
/// # Errors
/// Any I/O error.
pub fn open(path: &Path) -> io::Result<BufReader<File>> {
    Ok(BufReader::new(File::open(path)?))
}
