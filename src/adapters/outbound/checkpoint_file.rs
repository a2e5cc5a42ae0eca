//! The files of signed audit checkpoints: the append-only checkpoint file (one JSON line per
//! checkpoint, owner-only, fsynced after every line) and the owner-only file an operator may
//! keep the signing secret in.
//!
//! Errors name the operation and the I/O error's kind, never the path: paths are local and
//! stay local.

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::private_files::{create_private_dir, open_private};
use crate::domain::secret::SecretBytes;
use crate::ports::secret_source::SecretError;

/// The longest signing-key file read (a secret, not a document).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Appends `line` and a newline to the checkpoint file at `path` in one write, creating the
/// file owner-only (0600) and its directory owner-only (0700) when absent, and syncs it to
/// disk before returning. The file is opened in append mode, so an existing line is never
/// rewritten, and two processes appending at once never interleave within a line.
///
/// # Errors
/// An I/O error when the directory or file cannot be created, written or synced; its message
/// names no path. A line holding a newline is refused (`InvalidInput`): one line per
/// checkpoint.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    if line.contains('\n') || line.contains('\r') {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a checkpoint line must not hold a line break",
        ));
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty())
        && !dir.is_dir()
    {
        create_private_dir(dir)?;
    }
    // Created owner-only, never truncated: `open_private` then switched to append mode.
    drop(open_private(path, false)?);
    let mut file = OpenOptions::new().append(true).open(path)?;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    file.write_all(&bytes)?;
    file.sync_all()
}

/// Every line of the checkpoint file at `path`, in order (without their newlines; empty lines
/// are skipped). A missing file has no lines.
///
/// # Errors
/// An I/O error when the file exists but cannot be read, or is not UTF-8 text.
pub fn read_all(path: &Path) -> io::Result<Vec<String>> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut lines = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// The last lines of the checkpoint file at `path`, oldest first, read from at most its last
/// `max_bytes` bytes (a line cut by that limit is dropped), so the cost does not grow with the
/// file. A missing file has no lines.
///
/// # Errors
/// An I/O error when the file exists but cannot be read.
pub fn read_tail(path: &Path, max_bytes: u64) -> io::Result<Vec<String>> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let length = file.metadata()?.len();
    // One byte before the window as well: the first piece is then the end of a line that
    // started earlier, or empty when the window starts a line; either way it is dropped.
    let start = length.saturating_sub(max_bytes).saturating_sub(1);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.split('\n');
    if start > 0 || length > max_bytes {
        lines.next();
    }
    Ok(lines
        .filter(|line| !line.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// Reads the checkpoint signing secret from an operator's key file. The file must be a
/// regular file that neither group nor others may read, write or run (mode `0600` or
/// stricter), holding at least `min_bytes` bytes; trailing line breaks are dropped, so a
/// secret written with `echo` works. `key_path` is the configuration key the file came from,
/// and it is the only name an error gives (never the path).
///
/// # Errors
/// [`SecretError::Store`] when the file is missing, not a regular file, open to group or
/// others, or unreadable; [`SecretError::TooShort`] when it holds fewer than `min_bytes`.
pub fn read_signing_key_file(
    path: &Path,
    key_path: &str,
    min_bytes: usize,
) -> Result<SecretBytes, SecretError> {
    let refuse = |detail: &str| SecretError::Store {
        name: key_path.to_owned(),
        detail: detail.to_owned(),
    };
    let metadata = fs::metadata(path).map_err(|error| match error.kind() {
        ErrorKind::NotFound => refuse("the key file does not exist"),
        _ => refuse("cannot read the key file"),
    })?;
    if !metadata.is_file() {
        return Err(refuse("the key file is not a regular file"));
    }
    let file = fs::File::open(path).map_err(|_| refuse("cannot read the key file"))?;
    // Judge the file that was opened, not the name (which may have changed since).
    let opened = file
        .metadata()
        .map_err(|_| refuse("cannot read the key file"))?;
    if !opened.is_file() {
        return Err(refuse("the key file is not a regular file"));
    }
    if open_to_others(&opened) {
        return Err(refuse(
            "the key file is open to group or others; restrict it to its owner (chmod 600)",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|_| refuse("cannot read the key file"))?;
    while bytes
        .last()
        .is_some_and(|byte| *byte == b'\n' || *byte == b'\r')
    {
        bytes.pop();
    }
    let secret = SecretBytes::new(bytes);
    if secret.len() < min_bytes {
        return Err(SecretError::TooShort {
            name: key_path.to_owned(),
            min_bytes,
        });
    }
    Ok(secret)
}

#[cfg(unix)]
fn open_to_others(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o077 != 0
}

#[cfg(not(unix))]
fn open_to_others(_metadata: &fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_in_order_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("checkpoints.jsonl");
        assert!(read_all(&path).unwrap().is_empty());
        append_line(&path, "{\"a\":1}").unwrap();
        let first = fs::read(&path).unwrap();
        append_line(&path, "{\"b\":2}").unwrap();
        let both = fs::read(&path).unwrap();
        assert!(both.starts_with(&first), "the first line was rewritten");
        assert_eq!(both, b"{\"a\":1}\n{\"b\":2}\n");
        assert_eq!(read_all(&path).unwrap(), vec!["{\"a\":1}", "{\"b\":2}"]);
        assert_eq!(
            append_line(&path, "two\nlines").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn the_tail_holds_the_last_whole_lines_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.jsonl");
        assert!(read_tail(&path, 64).unwrap().is_empty());
        for index in 0..10 {
            append_line(&path, &format!("line-{index}")).unwrap();
        }
        // Each line is 7 bytes and a newline: 20 bytes reach into line 7.
        assert_eq!(read_tail(&path, 20).unwrap(), vec!["line-8", "line-9"]);
        assert_eq!(
            read_tail(&path, 24).unwrap(),
            vec!["line-7", "line-8", "line-9"]
        );
        assert_eq!(read_tail(&path, 4096).unwrap(), read_all(&path).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn the_checkpoint_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.jsonl");
        append_line(&path, "x").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_open_to_others_missing_or_short_is_refused_without_its_path() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        let secret = "k".repeat(40);
        fs::write(&path, format!("{secret}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let read = read_signing_key_file(&path, "audit.signing_key_file", 32).unwrap();
        assert_eq!(read.expose(), secret.as_bytes());

        for mode in [0o640, 0o604, 0o620, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let error = read_signing_key_file(&path, "audit.signing_key_file", 32).unwrap_err();
            let text = error.to_string();
            assert!(text.contains("audit.signing_key_file"), "{text}");
            assert!(text.contains("group or others"), "{text}");
            assert!(!text.contains(&dir.path().display().to_string()), "{text}");
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(read_signing_key_file(&path, "audit.signing_key_file", 32).is_ok());

        let missing = read_signing_key_file(&dir.path().join("none"), "k", 32).unwrap_err();
        assert!(matches!(missing, SecretError::Store { .. }));
        assert!(matches!(
            read_signing_key_file(dir.path(), "k", 32).unwrap_err(),
            SecretError::Store { .. }
        ));
        let short = dir.path().join("short.key");
        fs::write(&short, "short").unwrap();
        fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            read_signing_key_file(&short, "k", 32).unwrap_err(),
            SecretError::TooShort { .. }
        ));
    }
}
