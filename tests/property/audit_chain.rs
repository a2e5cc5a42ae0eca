//! The audit chain: any single change to a stored row (any of its sixteen columns, including the
//! sequence and the chain hash) is reported as a break at that row, and deleting or swapping
//! rows is reported at the first row out of place. Rows come from random events through the
//! real `to_columns` and `link_columns`; the edits are made on the stored bytes, as an attacker
//! with the file would make them.

use chrono::DateTime;
use ibkr_agent_gateway::adapters::outbound::memory_audit::MemoryAuditLog;
use ibkr_agent_gateway::domain::audit::chain::{
    self, ChainKey, ChainVerifier, Expectations, GENESIS, TEXT_COLUMNS, VerifyReport,
};
use ibkr_agent_gateway::domain::audit::redaction;
use ibkr_agent_gateway::domain::audit::{
    Actor, AuditEvent, Decision, Durability, ResultStatus, Surface,
};
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use ibkr_agent_gateway::domain::scope::Scope;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use ibkr_agent_gateway::ports::audit_log::AuditLog;
use proptest::prelude::*;

/// Columns of a stored row: the sequence, fourteen text columns, the chain hash.
const STORED_COLUMNS: usize = TEXT_COLUMNS + 2;

fn key() -> ChainKey {
    ChainKey::new(&SecretBytes::new(vec![7; 32])).unwrap()
}

/// A row as it sits in the store: owned bytes, so any byte can be changed.
#[derive(Debug, Clone)]
struct StoredRow {
    sequence: u64,
    text: [Option<Vec<u8>>; TEXT_COLUMNS],
    chain_hash: Vec<u8>,
}

impl StoredRow {
    fn columns(&self) -> [Option<&[u8]>; TEXT_COLUMNS] {
        std::array::from_fn(|index| self.text[index].as_deref())
    }
}

fn any_hex(length: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"0123456789abcdef".to_vec()), length)
        .prop_map(|digits| String::from_utf8(digits).unwrap())
}

fn any_event() -> impl Strategy<Value = AuditEvent> {
    let who = (
        "[a-z0-9-]{1,36}",
        0_i64..4_000_000_000,
        prop_oneof![
            Just(Actor::LocalOperator),
            Just(Actor::System),
            any_hex(16).prop_map(|subject_hash| Actor::RemoteSubject { subject_hash }),
        ],
        prop::sample::select(vec![
            Surface::Cli,
            Surface::McpStdio,
            Surface::McpHttp,
            Surface::Sdk,
            Surface::System,
        ]),
        "[ -~é€😀]{0,40}",
        prop::option::of(prop::sample::select(Scope::ALL.to_vec())),
    );
    let what = (
        prop::sample::select(vec![Decision::Allow, Decision::Deny, Decision::Refuse]),
        prop::sample::select(vec![
            ResultStatus::Completed,
            ResultStatus::Refused,
            ResultStatus::DeniedScope,
            ResultStatus::Failed,
        ]),
        prop::option::of(prop::sample::select(ErrorCode::ALL.to_vec())),
        prop::option::of(any_hex(64)),
        any_hex(64),
        prop::option::of(any_hex(64)),
        prop::collection::btree_map("[a-z_]{1,10}", "[ -~é€😀]{0,20}", 0..4),
        any::<bool>(),
    );
    (who, what).prop_map(
        |(
            (event_id, seconds, actor, surface, operation, scope),
            (
                decision,
                status,
                error_code,
                account_id_hash,
                input_hash,
                output_hash,
                arguments,
                durable,
            ),
        )| {
            let arguments = serde_json::to_value(arguments).unwrap();
            AuditEvent {
                event_id,
                occurred_at: DateTime::from_timestamp(seconds, 0).unwrap(),
                actor,
                surface,
                operation,
                scope,
                decision,
                status,
                error_code,
                account_id_hash,
                input_hash,
                output_hash,
                metadata: redaction::redact(&arguments, &|id| format!("h{}", id.len())),
                durability: if durable {
                    Durability::Durable
                } else {
                    Durability::Relaxed
                },
            }
        },
    )
}

/// A chained log of 1..=40 rows.
fn any_log() -> impl Strategy<Value = Vec<StoredRow>> {
    prop::collection::vec(any_event(), 1..=40).prop_map(|events| {
        let key = key();
        let mut previous = GENESIS;
        let mut rows = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let sequence = u64::try_from(index).unwrap() + 1;
            let columns = event.to_columns(sequence);
            previous = key.link_columns(&previous, &columns);
            rows.push(StoredRow {
                sequence,
                text: std::array::from_fn(|column| {
                    columns.text_columns()[column].map(<[u8]>::to_vec)
                }),
                chain_hash: chain::to_hex(&previous).into_bytes(),
            });
        }
        rows
    })
}

fn verify(rows: &[StoredRow], expectations: &Expectations) -> VerifyReport {
    let mut verifier = ChainVerifier::new(key());
    for row in rows {
        verifier.feed(row.sequence, &row.columns(), &row.chain_hash);
    }
    verifier.finish(expectations)
}

/// One change to one stored value.
#[derive(Debug, Clone)]
enum Edit {
    /// Flip one bit of one byte (or, for an empty or NULL value, give it a byte).
    FlipBit {
        position: prop::sample::Index,
        bit: u8,
    },
    /// Append a character.
    Append(char),
    /// NULL becomes a value and a value becomes NULL.
    ToggleNull(Vec<u8>),
}

fn any_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0_u8..8)
            .prop_map(|(position, bit)| Edit::FlipBit { position, bit }),
        any::<char>().prop_map(Edit::Append),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Edit::ToggleNull),
    ]
}

fn apply_to_text(value: &mut Option<Vec<u8>>, edit: &Edit) {
    match (edit, value.as_mut()) {
        (Edit::FlipBit { position, bit }, Some(bytes)) if !bytes.is_empty() => {
            let index = position.index(bytes.len());
            bytes[index] ^= 1 << bit;
        }
        (Edit::FlipBit { bit, .. }, _) => *value = Some(vec![1 << bit]),
        (Edit::Append(character), Some(bytes)) => {
            bytes.extend_from_slice(character.encode_utf8(&mut [0; 4]).as_bytes());
        }
        (Edit::Append(character), None) => *value = Some(character.to_string().into_bytes()),
        (Edit::ToggleNull(replacement), _) => {
            *value = match value {
                Some(_) => None,
                None => Some(replacement.clone()),
            }
        }
    }
}

/// Changes the stored hash's value (hex digits are case-insensitive, so a case flip is not a
/// change): a different digit, an extra character, or nothing at all.
fn apply_to_hash(hash: &mut Vec<u8>, edit: &Edit) {
    match edit {
        Edit::FlipBit { position, bit } => {
            let index = position.index(hash.len());
            let digit = char::from(hash[index]).to_digit(16).unwrap();
            let other = (digit + 1 + u32::from(*bit)) % 16;
            hash[index] = u8::try_from(char::from_digit(other, 16).unwrap()).unwrap();
        }
        Edit::Append(character) => {
            hash.extend_from_slice(character.encode_utf8(&mut [0; 4]).as_bytes())
        }
        Edit::ToggleNull(_) => hash.clear(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn an_untouched_log_verifies(rows in any_log()) {
        let report = verify(&rows, &Expectations::default());
        prop_assert!(report.chain_valid);
        prop_assert_eq!(report.events_scanned, rows.len() as u64);
        let head = rows.last().map(|row| String::from_utf8(row.chain_hash.clone()).unwrap());
        prop_assert_eq!(report.head, head);
    }

    #[test]
    fn any_edit_to_any_column_breaks_the_chain_at_that_row(
        rows in any_log(),
        row_pick in any::<prop::sample::Index>(),
        column in 0..STORED_COLUMNS,
        edit in any_edit(),
        moved_to in any::<u64>(),
    ) {
        let mut rows = rows;
        let index = row_pick.index(rows.len());
        let sequence = rows[index].sequence;
        let expected_break = match column {
            0 => {
                // A new sequence: the row claims to be elsewhere, so the break is at whichever
                // of its real and claimed places comes first.
                let new_sequence = if moved_to == sequence { sequence + 1 } else { moved_to };
                rows[index].sequence = new_sequence;
                sequence.min(new_sequence)
            }
            column if column <= TEXT_COLUMNS => {
                apply_to_text(&mut rows[index].text[column - 1], &edit);
                sequence
            }
            _ => {
                apply_to_hash(&mut rows[index].chain_hash, &edit);
                sequence
            }
        };
        let report = verify(&rows, &Expectations::default());
        prop_assert!(!report.chain_valid, "column {column} edited by {edit:?} went unnoticed");
        prop_assert_eq!(report.first_break_at_sequence, Some(expected_break));
        prop_assert!(expected_break <= sequence);
        prop_assert_eq!(report.events_scanned, rows.len() as u64);
    }

    #[test]
    fn a_deleted_row_is_the_break(rows in any_log(), row_pick in any::<prop::sample::Index>()) {
        let full = verify(&rows, &Expectations::default());
        let expectations = Expectations {
            head: full.head.as_deref().and_then(chain::parse_hash),
            count: Some(full.events_scanned),
        };
        let mut rows = rows;
        let removed = rows.remove(row_pick.index(rows.len()));
        // A removed last row leaves a valid, shorter chain: only the expectations catch it.
        let report = verify(&rows, &expectations);
        prop_assert!(!report.chain_valid);
        prop_assert_eq!(report.first_break_at_sequence, Some(removed.sequence));
    }

    #[test]
    fn swapped_rows_break_at_the_first_of_them(rows in any_log(), row_pick in any::<prop::sample::Index>()) {
        prop_assume!(rows.len() >= 2);
        let mut rows = rows;
        let first = row_pick.index(rows.len() - 1);
        rows.swap(first, first + 1);
        let report = verify(&rows, &Expectations::default());
        prop_assert!(!report.chain_valid);
        prop_assert_eq!(report.first_break_at_sequence, Some(first as u64 + 1));
    }

    #[test]
    fn the_memory_log_stores_the_chain_it_reports(events in prop::collection::vec(any_event(), 0..=20)) {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let log = MemoryAuditLog::new(key());
        let mut last = None;
        for event in events.iter().cloned() {
            last = Some(runtime.block_on(log.append(event)).unwrap());
        }
        let report = runtime.block_on(log.verify(&Expectations::default())).unwrap();
        prop_assert!(report.chain_valid);
        prop_assert_eq!(report.events_scanned, events.len() as u64);
        prop_assert_eq!(report.head, last.map(|receipt| receipt.chain_hash));
        for (index, (record, event)) in log.records().iter().zip(&events).enumerate() {
            prop_assert_eq!(&record.columns, &event.to_columns(index as u64 + 1));
        }
    }
}
