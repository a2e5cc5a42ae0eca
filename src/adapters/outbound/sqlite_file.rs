//! What the two SQLite stores (the audit log and the workflow store) share about their files:
//! setting the file up owner-only before SQLite opens it, and describing SQLite's errors
//! without a path or a stored value.

use std::fmt;
use std::path::Path;

use super::private_files::{create_private_dir, open_private, restrict_to_owner};

/// Which step of [`prepare_private_file`] failed, for the store `database` (`audit`,
/// `workflow`). Its text names the step and the store, never the path; the I/O error is
/// dropped because it may name the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrepareError {
    database: &'static str,
    step: PrepareStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrepareStep {
    Directory,
    File,
    Restrict,
}

impl fmt::Display for PrepareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let database = self.database;
        match self.step {
            PrepareStep::Directory => write!(f, "cannot create the {database} directory"),
            PrepareStep::File => write!(f, "cannot create the {database} database file"),
            PrepareStep::Restrict => {
                write!(f, "cannot restrict the {database} database to its owner")
            }
        }
    }
}

/// Creates the parent directory of `path` (owner-only) if missing, creates the file owner-only
/// if missing, and restricts an existing file to its owner. `database` names the store in the
/// error (`audit`, `workflow`).
///
/// # Errors
/// The first step that failed.
pub(crate) fn prepare_private_file(
    path: &Path,
    database: &'static str,
) -> Result<(), PrepareError> {
    let fail = |step| move |_| PrepareError { database, step };
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        create_private_dir(parent).map_err(fail(PrepareStep::Directory))?;
    }
    // Creating the file ourselves (rather than letting SQLite do it) means it never exists
    // with the umask's wider mode.
    open_private(path, false).map_err(fail(PrepareStep::File))?;
    restrict_to_owner(path).map_err(fail(PrepareStep::Restrict))
}

/// SQLite's error class (e.g. `ConstraintViolation`, `DatabaseBusy`), which names no path and
/// no stored value, unlike some of rusqlite's messages.
pub(crate) fn sqlite_reason(error: &rusqlite::Error) -> String {
    match error {
        rusqlite::Error::SqliteFailure(failure, _) => format!("sqlite {:?}", failure.code),
        _ => "sqlite interface error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn each_failed_step_names_the_store_and_not_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("secret-name");
        fs::write(&blocker, b"a file where a directory should be").unwrap();

        let error = prepare_private_file(&blocker.join("audit.sqlite3"), "audit").unwrap_err();
        assert_eq!(error.to_string(), "cannot create the audit directory");

        // The path is a directory, so it cannot be opened as the database file.
        let error = prepare_private_file(dir.path(), "workflow").unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot create the workflow database file"
        );

        let restrict = PrepareError {
            database: "workflow",
            step: PrepareStep::Restrict,
        };
        assert_eq!(
            restrict.to_string(),
            "cannot restrict the workflow database to its owner"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_and_the_file_end_up_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("state");
        let path = parent.join("store.sqlite3");
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;

        prepare_private_file(&path, "workflow").unwrap();
        assert_eq!(mode(&parent), 0o700);
        assert_eq!(mode(&path), 0o600);

        // An existing, wider file is narrowed and kept.
        fs::write(&path, b"kept").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        prepare_private_file(&path, "workflow").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"kept");
    }

    #[test]
    fn a_sqlite_failure_is_described_by_its_class_only() {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        let error = connection
            .execute(
                "INSERT INTO missing_secret_table VALUES ('stored-value')",
                [],
            )
            .unwrap_err();
        let reason = sqlite_reason(&error);
        assert!(reason.starts_with("sqlite "), "{reason}");
        assert!(!reason.contains("missing_secret_table"), "{reason}");
        assert!(!reason.contains("stored-value"), "{reason}");
        assert_eq!(
            sqlite_reason(&rusqlite::Error::InvalidQuery),
            "sqlite interface error"
        );
    }
}
