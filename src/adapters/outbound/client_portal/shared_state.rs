//! The pacing record shared by every process of one installation: one small JSON file in the
//! state directory, read and rewritten under an exclusive file lock.
//!
//! Two CLI commands typed back to back are two processes talking to one gateway, and the
//! gateway's pacing windows (`/portfolio/accounts` once per 5 s, 10 requests per second) count
//! both. Keeping the reservations in a file lets the second process wait for the window the
//! first one opened instead of drawing a 429.
//!
//! What the file holds is deliberately thin: send times keyed by endpoint templates (variable
//! path segments such as account ids are written as `*`), back-off deadlines, and the broker
//! session as a SHA-256 digest with the times its pre-flights ran. No account id, no raw
//! session token, no URL, no response body (ADR 0010).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::adapters::outbound::private_files;

/// The file's name inside the state directory.
pub(crate) const FILE_NAME: &str = "client-portal-pacing.json";

/// A 429 seen at the gateway, kept for the penalty-box rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RateLimitSeen {
    /// The endpoint template that drew it.
    pub(crate) endpoint: String,
    /// When, in microseconds of the pacing clock.
    pub(crate) at: u64,
}

/// The broker session as last seen by any process, and the pre-flights made in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    /// SHA-256 of the gateway's session token (hex, truncated); never the token itself.
    pub(crate) session_digest: String,
    /// When `/iserver/accounts` last ran in this session.
    #[serde(default)]
    pub(crate) brokerage_preflight_at: Option<u64>,
    /// When `/portfolio/accounts` last ran in this session.
    #[serde(default)]
    pub(crate) portfolio_preflight_at: Option<u64>,
}

/// Every time is in microseconds since the Unix epoch (the file store) or since the limiter
/// started (the in-memory store); zero means "none".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PacingRecord {
    /// No request of any kind is sent before this (the pause after a 429).
    #[serde(default)]
    pub(crate) global_next: u64,
    /// The send times reserved by requests, ascending, kept while they can still constrain a
    /// new one: every request keeps the global spacing from each of them, so a request waiting
    /// for its endpoint's slot holds only that slot, not every slot before it.
    #[serde(default)]
    pub(crate) global_slots: Vec<u64>,
    /// The earliest time the next request to each paced endpoint may be sent.
    #[serde(default)]
    pub(crate) endpoint_next: BTreeMap<String, u64>,
    /// Endpoints that drew a 429, refused locally until then.
    #[serde(default)]
    pub(crate) endpoint_backoff: BTreeMap<String, u64>,
    /// Every endpoint is refused locally until then (the penalty box).
    #[serde(default)]
    pub(crate) penalty_until: u64,
    /// How many 429s have been seen: a request that reserved its slot under a smaller count
    /// and is still waiting is dropped.
    #[serde(default)]
    pub(crate) rate_limits_seen: u64,
    /// Recent 429s, for telling an endpoint's limit from the penalty box.
    #[serde(default)]
    pub(crate) recent_rate_limits: Vec<RateLimitSeen>,
    /// The broker session and its pre-flights.
    #[serde(default)]
    pub(crate) session: Option<SessionRecord>,
}

impl PacingRecord {
    /// Drops entries that have passed, and any deadline further than `horizon` ahead (the wall
    /// clock was set back, or the file was edited): a stale deadline must not lock the gateway
    /// out for hours.
    pub(crate) fn prune(&mut self, now: u64, horizon: u64) {
        let limit = now.saturating_add(horizon);
        let sane = |at: &u64| *at > now && *at <= limit;
        if !sane(&self.global_next) {
            self.global_next = 0;
        }
        if !sane(&self.penalty_until) {
            self.penalty_until = 0;
        }
        self.endpoint_next.retain(|_, at| sane(at));
        // Past sends stay (they still space the next one); implausible future ones go, and
        // the list stays sorted whatever the file held.
        self.global_slots.retain(|at| *at <= limit);
        self.global_slots.sort_unstable();
        self.endpoint_backoff.retain(|_, at| sane(at));
    }
}

/// The shared file. Each [`StateFile::update`] holds the lock only while reading and writing.
#[derive(Debug)]
pub(crate) struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file inside `state_dir` (created owner-only on first use).
    pub(crate) fn in_dir(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// Reads the record under an exclusive lock, lets `change` edit it, writes it back.
    /// An unreadable or malformed record counts as empty: the worst outcome is one request
    /// paced as if no other process had sent anything, never a lock-out.
    ///
    /// # Errors
    /// The I/O error when the directory or file cannot be created, locked, read or written.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut PacingRecord) -> R) -> io::Result<R> {
        if let Some(dir) = self.path.parent() {
            private_files::create_private_dir(dir)?;
        }
        let mut file = open_read_write_private(&self.path)?;
        file.lock()?;
        let mut text = String::new();
        let mut record: PacingRecord = match file.read_to_string(&mut text) {
            Ok(_) => serde_json::from_str(&text).unwrap_or_default(),
            Err(_) => PacingRecord::default(),
        };
        let result = change(&mut record);
        let bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
        file.write_all(&bytes)?;
        file.flush()?;
        // Dropping the file releases the lock.
        file.unlock()?;
        Ok(result)
    }
}

/// Opens `path` for reading and writing, creating it owner-only (0600 on Unix).
fn open_read_write_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    private_files::restrict_to_owner(path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_between_openings_and_the_file_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(&dir.path().join("state"));
        file.update(|record| {
            record.global_next = 42;
            record.endpoint_next.insert("/portfolio/accounts".into(), 7);
        })
        .unwrap();
        let again = StateFile::in_dir(&dir.path().join("state"));
        let seen = again.update(|record| record.clone()).unwrap();
        assert_eq!(seen.global_next, 42);
        assert_eq!(seen.endpoint_next["/portfolio/accounts"], 7);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("state").join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }

    #[test]
    fn a_malformed_file_counts_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let seen = StateFile::in_dir(dir.path())
            .update(|record| record.clone())
            .unwrap();
        assert_eq!(seen, PacingRecord::default());
    }

    #[test]
    fn pruning_drops_passed_and_implausible_deadlines() {
        let mut record = PacingRecord {
            global_next: 150,
            penalty_until: 10_000_000,
            ..PacingRecord::default()
        };
        record.endpoint_next.insert("a".into(), 50);
        record.endpoint_next.insert("b".into(), 200);
        record.prune(100, 1_000);
        assert_eq!(record.global_next, 150);
        assert_eq!(record.penalty_until, 0, "beyond the horizon");
        assert_eq!(record.endpoint_next.len(), 1);
    }
}
