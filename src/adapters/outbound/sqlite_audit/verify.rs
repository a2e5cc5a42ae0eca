//! Verification: every row streamed from SQLite straight into the domain's `ChainVerifier`,
//! borrowed bytes and no allocation per row, in constant memory.
//!
//! A large log is verified in slices, one thread each, because stepping SQLite costs about as
//! much as the HMAC and one core cannot do both at the speed of the HMAC alone. Slicing is
//! sound because a row's hash depends only on its own columns and its predecessor's stored
//! hash: a slice resumes from the stored hash of the row before it. The earliest slice with a
//! break decides the report; a later slice is only consulted when every earlier one is intact,
//! and then the stored hash it resumed from is exactly the hash the chain computes there, so
//! the result is the one a single pass gives.

use std::num::NonZeroUsize;

use rusqlite::Connection;
use rusqlite::types::ValueRef;

use super::reader::{Readers, read_failed, stored_sequence};
use super::schema::{CHAIN_HASH_COLUMN, COLUMNS};
use crate::domain::audit::chain::{
    self, ChainHash, ChainKey, ChainStart, ChainVerifier, Expectations, GENESIS, TEXT_COLUMNS,
    VerifyReport,
};
use crate::ports::audit_log::AuditError;

/// Logs shorter than this are verified on one thread: below it threads cost more than they save.
const PARALLEL_MIN_ROWS: i64 = 8_192;

/// The most threads one verification uses (each holds a read connection and its page cache).
const MAX_THREADS: usize = 4;

/// The rows with `after < sequence <= through`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slice {
    after: i64,
    through: i64,
}

impl Slice {
    const WHOLE: Self = Self {
        after: i64::MIN,
        through: i64::MAX,
    };

    fn is_first(self) -> bool {
        self.after == i64::MIN
    }

    fn is_last(self) -> bool {
        self.through == i64::MAX
    }
}

/// Verifies the whole log with `key`.
pub(super) fn verify(
    readers: &Readers,
    key: &ChainKey,
    start: ChainStart,
    expectations: &Expectations,
) -> Result<VerifyReport, AuditError> {
    let last_sequence = readers.with(last_sequence)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(MAX_THREADS);
    let after = i64::try_from(start.after_sequence).unwrap_or(i64::MAX);
    let slices = plan(after, last_sequence, threads, PARALLEL_MIN_ROWS);
    verify_slices(readers, key, start, expectations, &slices)
}

/// Cuts `start_after + 1 ..= last_sequence` into up to `threads` slices of about equal length,
/// the first open below (it must see any row numbered below the start) and the last open above
/// (it must see rows appended meanwhile, and any numbered past the end).
fn plan(start_after: i64, last_sequence: Option<i64>, threads: usize, min_rows: i64) -> Vec<Slice> {
    let parts = i64::try_from(threads).unwrap_or(1);
    let Some(rows) = last_sequence
        .map(|last| last.saturating_sub(start_after))
        .filter(|rows| parts > 1 && *rows >= min_rows.max(parts))
    else {
        return vec![Slice::WHOLE];
    };
    let step = rows / parts;
    (0..parts)
        .map(|part| Slice {
            after: if part == 0 {
                i64::MIN
            } else {
                start_after + step * part
            },
            through: if part == parts - 1 {
                i64::MAX
            } else {
                start_after + step * (part + 1)
            },
        })
        .collect()
}

fn verify_slices(
    readers: &Readers,
    key: &ChainKey,
    start: ChainStart,
    expectations: &Expectations,
    slices: &[Slice],
) -> Result<VerifyReport, AuditError> {
    let [first, rest @ ..] = slices else {
        return readers
            .with(|connection| verify_slice(connection, key, start, Slice::WHOLE, expectations));
    };
    if rest.is_empty() {
        // One pass: the domain's verifier applies the expectations itself.
        return readers
            .with(|connection| verify_slice(connection, key, start, *first, expectations));
    }
    let reports = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(rest.len());
        for slice in rest {
            let spawned = std::thread::Builder::new()
                .name("audit-verify".to_owned())
                .spawn_scoped(scope, move || {
                    readers.with(|connection| {
                        verify_slice(connection, key, start, *slice, &Expectations::default())
                    })
                });
            match spawned {
                Ok(handle) => handles.push(handle),
                // The scope joins whatever was started before returning.
                Err(_) => return Err(stopped("cannot start a verification thread")),
            }
        }
        let mut reports = Vec::with_capacity(slices.len());
        reports.push(readers.with(|connection| {
            verify_slice(connection, key, start, *first, &Expectations::default())
        })?);
        for handle in handles {
            reports.push(
                handle
                    .join()
                    .map_err(|_| stopped("a verification thread stopped"))??,
            );
        }
        Ok(reports)
    })?;
    let mut report = combine(&reports);
    if report.chain_valid && !expectations.is_empty() {
        // Every row 1..=events_scanned verified, so a stored hash there is the computed one.
        let anchored_hash = match expectations.count.map(i64::try_from) {
            Some(Ok(sequence)) if expectations.head.is_some() => readers.with(|connection| {
                stored_hash_at(connection, sequence)
                    .map_err(|error| read_failed("cannot read the anchored event", &error))
            })?,
            _ => None,
        };
        let head_at = match expectations.head {
            Some(head) if expectations.count.is_none() => {
                readers.with(|connection| sequence_with_hash(connection, &head))?
            }
            _ => None,
        };
        // The last sequence verified: the rows after the start, all intact.
        let scanned = start.after_sequence.saturating_add(report.events_scanned);
        let anchored = chain::anchor_break(
            expectations,
            scanned,
            |sequence| {
                (Some(sequence) == expectations.count)
                    .then_some(anchored_hash)
                    .flatten()
            },
            |_| head_at.is_some_and(|sequence| sequence <= scanned),
        );
        if let Some(at) = anchored {
            report.chain_valid = false;
            report.first_break_at_sequence = Some(at);
        }
    }
    Ok(report)
}

/// Verifies one slice. An inner slice must hold exactly the rows of its range: a slice that
/// ends short reports the first missing sequence, as a single pass would when it meets the
/// next slice's first row.
fn verify_slice(
    connection: &Connection,
    key: &ChainKey,
    start: ChainStart,
    slice: Slice,
    expectations: &Expectations,
) -> Result<VerifyReport, AuditError> {
    let fail = |error: rusqlite::Error| read_failed("cannot verify the events", &error);
    let mut verifier = if slice.is_first() {
        ChainVerifier::resume(
            key.clone(),
            start.head,
            start.after_sequence.saturating_add(1),
        )
        .watching(expectations)
    } else {
        // A missing or malformed predecessor is the previous slice's break; this slice's
        // result is then never consulted.
        let previous = stored_hash_at(connection, slice.after)
            .map_err(fail)?
            .unwrap_or(GENESIS);
        let next = u64::try_from(slice.after).unwrap_or(0).saturating_add(1);
        ChainVerifier::resume(key.clone(), previous, next).watching(expectations)
    };
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_events \
             WHERE sequence > ?1 AND sequence <= ?2 ORDER BY sequence"
        ))
        .map_err(fail)?;
    let mut rows = statement
        .query([slice.after, slice.through])
        .map_err(fail)?;
    let mut intact = true;
    while let Some(row) = rows.next().map_err(fail)? {
        let sequence = stored_sequence(row).map_err(fail)?;
        if !intact {
            // Past the first break the verifier only counts rows.
            verifier.feed(sequence, &[None; TEXT_COLUMNS], b"");
            continue;
        }
        let mut columns: [Option<&[u8]>; TEXT_COLUMNS] = [None; TEXT_COLUMNS];
        let mut well_typed = true;
        for (index, column) in columns.iter_mut().enumerate() {
            *column = match row.get_ref(index + 1).map_err(fail)? {
                ValueRef::Null => None,
                ValueRef::Text(bytes) => Some(bytes),
                // The writer stores only text: any other type is an edit.
                ValueRef::Integer(_) | ValueRef::Real(_) | ValueRef::Blob(_) => {
                    well_typed = false;
                    None
                }
            };
        }
        let stored_hash = match row.get_ref(CHAIN_HASH_COLUMN).map_err(fail)? {
            ValueRef::Text(bytes) if well_typed => bytes,
            // An unparsable stored hash makes the verifier report this row.
            _ => &b""[..],
        };
        intact = verifier.feed(sequence, &columns, stored_hash);
    }
    let own_expectations;
    let expectations = if slice.is_last() {
        expectations
    } else {
        // The rows up to the slice's end must all be there (sequences are absolute).
        own_expectations = Expectations {
            head: None,
            count: u64::try_from(slice.through).ok(),
        };
        &own_expectations
    };
    Ok(verifier.finish(expectations))
}

/// Joins the slices' reports, in order, into the report of a single pass (before the anchor
/// is checked).
fn combine(reports: &[VerifyReport]) -> VerifyReport {
    let events_scanned: u64 = reports.iter().map(|report| report.events_scanned).sum();
    let broken = reports
        .iter()
        .position(|report| report.first_break_at_sequence.is_some());
    let considered = broken.map_or(reports, |index| &reports[..=index]);
    // A single pass's head is the last hash it verified: before the break, if there is one.
    let head = considered
        .iter()
        .rev()
        .find_map(|report| report.head.clone());
    let first_break = broken.and_then(|index| reports[index].first_break_at_sequence);
    VerifyReport {
        events_scanned,
        chain_valid: first_break.is_none(),
        first_break_at_sequence: first_break,
        head,
    }
}

fn last_sequence(connection: &Connection) -> Result<Option<i64>, AuditError> {
    connection
        .query_row("SELECT max(sequence) FROM audit_events", [], |row| {
            row.get(0)
        })
        .map_err(|error| read_failed("cannot find the last event", &error))
}

fn stored_hash_at(connection: &Connection, sequence: i64) -> rusqlite::Result<Option<ChainHash>> {
    let mut statement =
        connection.prepare_cached("SELECT chain_hash FROM audit_events WHERE sequence = ?1")?;
    let mut rows = statement.query([sequence])?;
    Ok(match rows.next()? {
        Some(row) => match row.get_ref(0)? {
            ValueRef::Text(bytes) => std::str::from_utf8(bytes).ok().and_then(chain::parse_hash),
            _ => None,
        },
        None => None,
    })
}

/// The sequence of the row whose stored chain hash is `hash`, if any.
fn sequence_with_hash(
    connection: &Connection,
    hash: &ChainHash,
) -> Result<Option<u64>, AuditError> {
    let fail = |error: rusqlite::Error| read_failed("cannot look up the anchored event", &error);
    let mut statement = connection
        .prepare_cached(
            "SELECT sequence FROM audit_events WHERE lower(chain_hash) = ?1 \
             ORDER BY sequence LIMIT 1",
        )
        .map_err(fail)?;
    let mut rows = statement.query([chain::to_hex(hash)]).map_err(fail)?;
    match rows.next().map_err(fail)? {
        Some(row) => Ok(u64::try_from(row.get::<_, i64>(0).map_err(fail)?).ok()),
        None => Ok(None),
    }
}

fn stopped(detail: &str) -> AuditError {
    AuditError::ReadFailed {
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::params;

    use super::*;
    use crate::domain::audit::AuditColumns;
    use crate::domain::secret::SecretBytes;

    const ROWS: i64 = 60;

    fn key() -> ChainKey {
        ChainKey::new(&SecretBytes::new(vec![3; 32])).unwrap()
    }

    fn columns(sequence: u64) -> AuditColumns {
        let optional = sequence
            .is_multiple_of(2)
            .then(|| format!("value {sequence}"));
        AuditColumns {
            sequence,
            event_id: format!("evt-{sequence}"),
            occurred_at: format!("2026-11-27T09:00:{:02}.000000Z", sequence % 60),
            actor: "local_operator".to_owned(),
            surface: "cli".to_owned(),
            operation: "accounts list".to_owned(),
            scope: optional.clone(),
            decision: "allow".to_owned(),
            status: "completed".to_owned(),
            error_code: optional.clone(),
            account_id_hash: optional.clone(),
            input_hash: format!("{sequence:064}"),
            output_hash: optional,
            redactions: "[]".to_owned(),
            metadata: format!("{{\"n\":{sequence}}}"),
        }
    }

    /// A log of `ROWS` rows written straight into the schema (the writer is tested elsewhere).
    fn log(path: &Path) -> (Readers, Vec<ChainHash>) {
        let mut connection = Connection::open(path).unwrap();
        super::super::schema::migrate(&mut connection).unwrap();
        let mut previous = GENESIS;
        let mut hashes = Vec::new();
        let transaction = connection.transaction().unwrap();
        for sequence in 1..=u64::try_from(ROWS).unwrap() {
            let columns = columns(sequence);
            previous = key().link_columns(&previous, &columns);
            hashes.push(previous);
            transaction
                .execute(
                    &format!(
                        "INSERT INTO audit_events ({COLUMNS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
                    ),
                    params![
                        i64::try_from(sequence).unwrap(),
                        columns.event_id,
                        columns.occurred_at,
                        columns.actor,
                        columns.surface,
                        columns.operation,
                        columns.scope,
                        columns.decision,
                        columns.status,
                        columns.error_code,
                        columns.account_id_hash,
                        columns.input_hash,
                        columns.output_hash,
                        columns.redactions,
                        columns.metadata,
                        chain::to_hex(&previous),
                    ],
                )
                .unwrap();
        }
        transaction.commit().unwrap();
        (Readers::new(path.to_path_buf()), hashes)
    }

    /// Every plan from one slice to five must give the single pass's report.
    fn reports_agree(readers: &Readers, expectations: &Expectations, case: &str) -> VerifyReport {
        let last = readers.with(last_sequence).unwrap();
        let single = verify_slices(
            readers,
            &key(),
            ChainStart::GENESIS,
            expectations,
            &[Slice::WHOLE],
        )
        .unwrap();
        for threads in 2..=5 {
            let slices = plan(0, last, threads, 1);
            let sliced =
                verify_slices(readers, &key(), ChainStart::GENESIS, expectations, &slices).unwrap();
            assert_eq!(sliced, single, "{case}: {threads} slices {slices:?}");
        }
        single
    }

    #[test]
    fn plans_cover_every_sequence_once() {
        assert_eq!(plan(0, None, 4, 1), vec![Slice::WHOLE]);
        assert_eq!(plan(0, Some(100), 1, 1), vec![Slice::WHOLE]);
        assert_eq!(plan(0, Some(100), 4, 1_000), vec![Slice::WHOLE]);
        assert_eq!(plan(0, Some(2), 4, 1), vec![Slice::WHOLE]);
        let slices = plan(0, Some(100), 3, 1);
        assert_eq!(
            slices,
            vec![
                Slice {
                    after: i64::MIN,
                    through: 33
                },
                Slice {
                    after: 33,
                    through: 66
                },
                Slice {
                    after: 66,
                    through: i64::MAX
                },
            ]
        );
    }

    #[test]
    fn sliced_verification_reports_what_a_single_pass_reports() {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("pristine.sqlite3");
        let (readers, hashes) = log(&pristine);
        let head = hashes.last().copied();
        let report = reports_agree(&readers, &Expectations::default(), "pristine");
        assert!(report.chain_valid);
        assert_eq!(report.events_scanned, 60);
        let full = Expectations {
            head,
            count: Some(60),
        };
        assert!(reports_agree(&readers, &full, "pristine, expected").chain_valid);

        // Rows at slice edges (for 2..=5 slices of 60: 12, 15, 20, 24, 30, ...) and inside.
        let mut cases: Vec<(String, String)> = Vec::new();
        for row in [1, 12, 13, 20, 21, 30, 31, 45, 59, 60] {
            cases.push((
                format!("edit {row}"),
                format!(
                    "UPDATE audit_events SET metadata = metadata || ' ' WHERE sequence = {row}"
                ),
            ));
            cases.push((
                format!("delete {row}"),
                format!("DELETE FROM audit_events WHERE sequence = {row}"),
            ));
            cases.push((
                format!("hash {row}"),
                format!("UPDATE audit_events SET chain_hash = 'zz' WHERE sequence = {row}"),
            ));
            cases.push((
                format!("move {row}"),
                format!(
                    "UPDATE audit_events SET sequence = {} WHERE sequence = {row}",
                    1000 + row
                ),
            ));
            cases.push((
                format!("negative {row}"),
                format!("UPDATE audit_events SET sequence = -{row} WHERE sequence = {row}"),
            ));
            cases.push((
                format!("blob {row}"),
                format!(
                    "UPDATE audit_events SET actor = CAST(actor AS BLOB) WHERE sequence = {row}"
                ),
            ));
        }
        for row in [1, 14, 15, 20, 29, 30, 59] {
            cases.push((
                format!("swap {row}"),
                format!(
                    "UPDATE audit_events SET sequence = -1 WHERE sequence = {row};
                 UPDATE audit_events SET sequence = {row} WHERE sequence = {row} + 1;
                 UPDATE audit_events SET sequence = {row} + 1 WHERE sequence = -1;"
                ),
            ));
        }
        for keep in [0, 1, 15, 20, 30, 31, 59] {
            cases.push((
                format!("truncate after {keep}"),
                format!("DELETE FROM audit_events WHERE sequence > {keep}"),
            ));
        }
        cases.push((
            "delete a run across a slice edge".to_owned(),
            "DELETE FROM audit_events WHERE sequence BETWEEN 25 AND 35".to_owned(),
        ));

        for (index, (case, sql)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("case-{index}.sqlite3"));
            std::fs::copy(&pristine, &path).unwrap();
            Connection::open(&path).unwrap().execute_batch(sql).unwrap();
            let readers = Readers::new(path);
            let plain = reports_agree(&readers, &Expectations::default(), case);
            let expected = reports_agree(&readers, &full, case);
            assert!(!expected.chain_valid, "{case}: went unnoticed");
            // Deleting the last row is a truncation too.
            if case.starts_with("truncate") || case == "delete 60" {
                assert!(plain.chain_valid, "{case}");
            } else {
                assert!(!plain.chain_valid, "{case}");
            }
        }
    }

    #[test]
    fn an_anchor_inside_the_log_is_checked_by_every_plan() {
        let dir = tempfile::tempdir().unwrap();
        let pristine = dir.path().join("audit.sqlite3");
        let (readers, hashes) = log(&pristine);
        for (anchor_at, case) in [
            (1, "first"),
            (13, "slice edge"),
            (30, "middle"),
            (60, "last"),
        ] {
            let anchor = Expectations {
                head: Some(hashes[anchor_at - 1]),
                count: Some(anchor_at as u64),
            };
            assert!(reports_agree(&readers, &anchor, case).chain_valid, "{case}");
            let head_only = Expectations {
                head: anchor.head,
                count: None,
            };
            assert!(
                reports_agree(&readers, &head_only, case).chain_valid,
                "{case}"
            );
            let misplaced = Expectations {
                head: anchor.head,
                count: Some(anchor_at as u64 + 1),
            };
            let report = reports_agree(&readers, &misplaced, case);
            let expected = if anchor_at == 60 {
                61
            } else {
                anchor_at as u64 + 1
            };
            assert_eq!(report.first_break_at_sequence, Some(expected), "{case}");
        }
        // Cut below the anchor.
        let cut = dir.path().join("cut.sqlite3");
        std::fs::copy(&pristine, &cut).unwrap();
        Connection::open(&cut)
            .unwrap()
            .execute_batch("DELETE FROM audit_events WHERE sequence > 25")
            .unwrap();
        let anchor = Expectations {
            head: Some(hashes[29]),
            count: Some(30),
        };
        let report = reports_agree(&Readers::new(cut), &anchor, "cut");
        assert_eq!(report.first_break_at_sequence, Some(26));
    }

    #[test]
    fn a_wrong_head_or_count_breaks_where_the_anchor_fails() {
        let dir = tempfile::tempdir().unwrap();
        let (readers, hashes) = log(&dir.path().join("audit.sqlite3"));
        let foreign = chain::parse_hash(&"ef".repeat(32)).unwrap();
        for (expectations, at) in [
            (
                Expectations {
                    head: Some(foreign),
                    count: None,
                },
                61,
            ),
            (
                Expectations {
                    head: None,
                    count: Some(61),
                },
                61,
            ),
            (
                Expectations {
                    head: Some(hashes[0]),
                    count: Some(59),
                },
                59,
            ),
        ] {
            let report = reports_agree(&readers, &expectations, "expectations");
            assert_eq!(report.first_break_at_sequence, Some(at), "{expectations:?}");
        }
    }
}
