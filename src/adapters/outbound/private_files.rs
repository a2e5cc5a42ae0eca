//! Files and directories only their owner can read: key files and the audit database.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and its parents, owner-only (0700) on Unix.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

/// Opens `path` for writing, creating it owner-only (0600 on Unix) so it never exists with the
/// umask's wider mode. With `create_new`, an existing file is an `AlreadyExists` error, which
/// lets two racing first starts agree on one file; otherwise an existing file is kept as is.
pub(crate) fn open_private(path: &Path, create_new: bool) -> io::Result<fs::File> {
    let mut options = OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(false);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Restricts an existing file to its owner (0600 on Unix; nothing elsewhere).
pub(crate) fn restrict_to_owner(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}
