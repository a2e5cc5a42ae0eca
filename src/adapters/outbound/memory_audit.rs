//! `MemoryAuditLog`: the audit log in memory, with the same chain as the SQLite log, for tests
//! and for embedders that keep their own records. Nothing survives the process.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::domain::audit::chain::{
    self, ChainHash, ChainKey, ChainVerifier, Expectations, GENESIS, VerifyReport,
};
use crate::domain::audit::{AuditEvent, AuditRecord};
use crate::ports::audit_log::{AppendReceipt, AuditError, AuditLog, RecordSink};

/// How many records a scan copies out per lock, so the sink runs without the lock held.
const SCAN_BATCH: usize = 256;

/// The audit log in memory.
#[derive(Debug)]
pub struct MemoryAuditLog {
    key: ChainKey,
    // A std mutex: no method holds it across an await or while calling a sink.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Record `i` has sequence `i + 1`.
    records: Vec<AuditRecord>,
    head: ChainHash,
    failing: bool,
}

impl MemoryAuditLog {
    /// An empty log chained with `key`.
    pub fn new(key: ChainKey) -> Self {
        Self {
            key,
            state: Mutex::new(State {
                records: Vec::new(),
                head: GENESIS,
                failing: false,
            }),
        }
    }

    /// Makes every later append and writability check fail with [`AuditError::WriteFailed`]
    /// (or succeed again), to test that callers fail closed.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// A copy of every stored record, oldest first.
    pub fn records(&self) -> Vec<AuditRecord> {
        self.lock().records.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a single push and assignment, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl AuditLog for MemoryAuditLog {
    fn describe(&self) -> String {
        "memory".to_owned()
    }

    async fn append(&self, event: AuditEvent) -> Result<AppendReceipt, AuditError> {
        let mut state = self.lock();
        if state.failing {
            return Err(AuditError::WriteFailed {
                detail: "the in-memory audit log is set to fail".to_owned(),
            });
        }
        let sequence = u64::try_from(state.records.len())
            .ok()
            .and_then(|count| count.checked_add(1))
            .ok_or_else(|| AuditError::WriteFailed {
                detail: "sequence exhausted".to_owned(),
            })?;
        let columns = event.to_columns(sequence);
        let hash = self.key.link_columns(&state.head, &columns);
        let chain_hash = chain::to_hex(&hash);
        state.records.push(AuditRecord {
            columns,
            chain_hash: chain_hash.clone(),
        });
        state.head = hash;
        Ok(AppendReceipt {
            sequence,
            chain_hash,
        })
    }

    async fn check_writable(&self) -> Result<(), AuditError> {
        // The flag is the only way an in-memory append fails, so reading it now is the check.
        if self.lock().failing {
            return Err(AuditError::WriteFailed {
                detail: "the in-memory audit log is set to fail".to_owned(),
            });
        }
        Ok(())
    }

    async fn newest(&self, limit: usize) -> Result<Vec<AuditRecord>, AuditError> {
        Ok(self
            .lock()
            .records
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn scan(
        &self,
        from: u64,
        to: u64,
        mut sink: Box<dyn RecordSink>,
    ) -> Result<Box<dyn RecordSink>, AuditError> {
        // Sequence `s` is at index `s - 1`.
        let mut next = usize::try_from(from.max(1) - 1).unwrap_or(usize::MAX);
        let end = usize::try_from(to).unwrap_or(usize::MAX);
        while next < end {
            let batch: Vec<AuditRecord> = {
                let state = self.lock();
                let stop = end
                    .min(state.records.len())
                    .min(next.saturating_add(SCAN_BATCH));
                state.records.get(next..stop).unwrap_or_default().to_vec()
            };
            if batch.is_empty() {
                break;
            }
            next += batch.len();
            for record in &batch {
                sink.accept(record)?;
            }
        }
        Ok(sink)
    }

    async fn verify(&self, expectations: &Expectations) -> Result<VerifyReport, AuditError> {
        let state = self.lock();
        let mut verifier = ChainVerifier::new(self.key.clone()).watching(expectations);
        for record in &state.records {
            verifier.feed_record(record);
        }
        Ok(verifier.finish(expectations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::redaction::Redacted;
    use crate::domain::audit::{Actor, Decision, Durability, ResultStatus, Surface};
    use crate::domain::secret::SecretBytes;

    fn event(n: u64) -> AuditEvent {
        AuditEvent {
            event_id: format!("evt-{n}"),
            occurred_at: chrono::DateTime::UNIX_EPOCH,
            actor: Actor::LocalOperator,
            surface: Surface::Cli,
            operation: "accounts list".to_owned(),
            scope: None,
            decision: Decision::Allow,
            status: ResultStatus::Completed,
            error_code: None,
            account_id_hash: None,
            input_hash: "0".repeat(64),
            output_hash: None,
            metadata: Redacted::empty(),
            durability: Durability::Relaxed,
        }
    }

    #[tokio::test]
    async fn a_failing_log_stores_nothing_and_resumes_without_a_gap() {
        let log = MemoryAuditLog::new(ChainKey::new(&SecretBytes::new(vec![7; 32])).unwrap());
        assert_eq!(log.append(event(1)).await.unwrap().sequence, 1);
        log.set_failing(true);
        assert!(matches!(
            log.append(event(2)).await,
            Err(AuditError::WriteFailed { .. })
        ));
        log.set_failing(false);
        assert_eq!(log.append(event(3)).await.unwrap().sequence, 2);
        assert_eq!(log.records().len(), 2);
        assert!(
            log.verify(&Expectations::default())
                .await
                .unwrap()
                .chain_valid
        );
    }
}
