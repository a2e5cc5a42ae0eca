//! The audit chain: each row's hash is an HMAC over the previous row's hash and a canonical
//! encoding of every stored column, so editing, deleting, inserting or reordering rows breaks
//! verification from that row on.
//!
//! Canonical encoding: the sequence as 8 big-endian bytes, then for each text column in fixed
//! order either `0x00` (NULL) or `0x01`, its length as 4 big-endian bytes, and its bytes. The
//! length prefix makes the encoding unambiguous; the NULL tag tells NULL from empty.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::AuditColumns;
use crate::domain::secret::SecretBytes;

/// How many text columns follow the sequence in the canonical encoding.
pub const TEXT_COLUMNS: usize = 14;

/// The chain hash that precedes the first row.
pub const GENESIS: [u8; 32] = [0; 32];

/// A chain hash.
pub type ChainHash = [u8; 32];

/// Why a chain key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit key must be at least {min} bytes")]
pub struct WeakKeyError {
    /// The minimum length.
    pub min: usize,
}

/// A keyed HMAC-SHA256 state, prepared once and cloned per row.
#[derive(Clone)]
pub struct ChainKey {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

impl ChainKey {
    /// The shortest accepted key.
    pub const MIN_BYTES: usize = 32;

    /// Prepares the key.
    ///
    /// # Errors
    /// [`WeakKeyError`] for a key shorter than [`ChainKey::MIN_BYTES`].
    pub fn new(secret: &SecretBytes) -> Result<Self, WeakKeyError> {
        if secret.len() < Self::MIN_BYTES {
            return Err(WeakKeyError {
                min: Self::MIN_BYTES,
            });
        }
        let keyed = Hmac::<Sha256>::new_from_slice(secret.expose()).map_err(|_| WeakKeyError {
            min: Self::MIN_BYTES,
        })?;
        Ok(Self { keyed })
    }

    /// HMAC-SHA256 of `message`, for keyed hashes of identifiers (e.g. account ids).
    pub fn tag(&self, message: &[u8]) -> ChainHash {
        let mut mac = self.keyed.clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// The chain hash of a row given its predecessor's hash.
    pub fn link(
        &self,
        previous: &ChainHash,
        sequence: u64,
        columns: &[Option<&[u8]>; TEXT_COLUMNS],
    ) -> ChainHash {
        let mut mac = self.keyed.clone();
        mac.update(previous);
        encode_row(sequence, columns, |bytes| mac.update(bytes));
        mac.finalize().into_bytes().into()
    }

    /// The chain hash of stored columns.
    pub fn link_columns(&self, previous: &ChainHash, columns: &AuditColumns) -> ChainHash {
        self.link(previous, columns.sequence, &columns.text_columns())
    }
}

/// Feeds the canonical encoding of a row (its sequence and text columns) to `feed`: the bytes
/// both the keyed chain and the public prefix digest
/// ([`checkpoint`](super::checkpoint)) hash.
pub fn encode_row(
    sequence: u64,
    columns: &[Option<&[u8]>; TEXT_COLUMNS],
    mut feed: impl FnMut(&[u8]),
) {
    feed(&sequence.to_be_bytes());
    for column in columns {
        match column {
            None => feed(&[0]),
            Some(bytes) => {
                feed(&[1]);
                // Columns are bounded far below 4 GiB; saturate rather than wrap if not.
                let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
                feed(&length.to_be_bytes());
                feed(bytes);
            }
        }
    }
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Parses 64 lower- or upper-case hex digits.
pub fn parse_hash(text: &str) -> Option<ChainHash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0_u8; 32];
    for (index, pair) in bytes.chunks_exact(2).enumerate() {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        out[index] = u8::try_from(high * 16 + low).ok()?;
    }
    Some(out)
}

/// The result of verifying a chain (or a range of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Rows read.
    pub events_scanned: u64,
    /// True when every row links to its predecessor and every expectation holds.
    pub chain_valid: bool,
    /// The sequence of the first row that does not verify (or where the log falls short of an
    /// expectation), when the chain is broken.
    pub first_break_at_sequence: Option<u64>,
    /// The hash of the last row read (hex), or `None` for an empty log.
    pub head: Option<String>,
}

/// An anchor the caller kept from an earlier export trailer: the log must still hold that
/// prefix, unchanged. The log may have grown since (every call, `audit export` and
/// `audit verify` included, appends an event), so an anchor never pins the end of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// The chain hash the anchored row must have. With `count`, the row at sequence `count`
    /// must have it; alone, some row of the log must have it.
    pub head: Option<ChainHash>,
    /// The anchored row's sequence (the trailer's `last_sequence`, which is its `count` for a
    /// whole-log export): the log must hold at least this many rows.
    pub count: Option<u64>,
}

impl Expectations {
    /// True when there is nothing to check beyond the chain itself.
    pub fn is_empty(&self) -> bool {
        self.head.is_none() && self.count.is_none()
    }
}

/// Where a chain starts: after `after_sequence` (0 for a log never purged), linking to `head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStart {
    /// The last sequence before the first stored row.
    pub after_sequence: u64,
    /// The chain hash the first stored row links to.
    pub head: ChainHash,
}

impl ChainStart {
    /// The start of a log that was never purged.
    pub const GENESIS: Self = Self {
        after_sequence: 0,
        head: GENESIS,
    };
}

/// Verifies rows fed in sequence order, in constant memory.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    key: ChainKey,
    previous: ChainHash,
    expected_sequence: u64,
    scanned: u64,
    first_break: Option<u64>,
    /// The anchor to look out for while rows go by (see [`ChainVerifier::watching`]).
    watch: Expectations,
    /// The verified hash at the watched sequence, once passed.
    watched_hash: Option<ChainHash>,
    /// Whether a verified row had the watched head (for a head without a sequence).
    head_seen: bool,
}

impl ChainVerifier {
    /// Starts at the genesis, expecting sequence 1.
    pub fn new(key: ChainKey) -> Self {
        Self::resume(key, GENESIS, 1)
    }

    /// Starts after a known row: its hash and the next sequence expected.
    pub fn resume(key: ChainKey, previous: ChainHash, next_sequence: u64) -> Self {
        Self {
            key,
            previous,
            expected_sequence: next_sequence,
            scanned: 0,
            first_break: None,
            watch: Expectations::default(),
            watched_hash: None,
            head_seen: false,
        }
    }

    /// Looks out for `anchor` while rows are fed, so [`ChainVerifier::finish`] can confirm an
    /// anchored row anywhere in the log, not only at its end. Give `finish` the same value.
    #[must_use]
    pub fn watching(mut self, anchor: &Expectations) -> Self {
        self.watch = anchor.clone();
        self
    }

    /// Feeds the next row: its sequence, text columns and stored chain hash (hex text).
    /// Returns false once the chain has broken (later rows are still counted).
    pub fn feed(
        &mut self,
        sequence: u64,
        columns: &[Option<&[u8]>; TEXT_COLUMNS],
        stored_hash: &[u8],
    ) -> bool {
        self.scanned += 1;
        if self.first_break.is_some() {
            return false;
        }
        let computed = self.key.link(&self.previous, sequence, columns);
        let stored = std::str::from_utf8(stored_hash).ok().and_then(parse_hash);
        if sequence != self.expected_sequence || stored != Some(computed) {
            // A gap, a duplicate, a reorder or an edit: report where the chain stops holding.
            self.first_break = Some(self.expected_sequence.min(sequence));
            return false;
        }
        if self.watch.count == Some(sequence) {
            self.watched_hash = Some(computed);
        }
        if self.watch.head == Some(computed) {
            self.head_seen = true;
        }
        self.previous = computed;
        self.expected_sequence = sequence.saturating_add(1);
        true
    }

    /// Feeds a stored record.
    pub fn feed_record(&mut self, record: &super::AuditRecord) -> bool {
        self.feed(
            record.columns.sequence,
            &record.columns.text_columns(),
            record.chain_hash.as_bytes(),
        )
    }

    /// Ends the scan, checking the anchor: the row at `count` must have been verified (the log
    /// may hold more), and its hash must be `head`. An anchor that was not announced with
    /// [`ChainVerifier::watching`] can only be confirmed at the last row; anywhere else it is
    /// reported as not holding, never as holding.
    pub fn finish(self, expectations: &Expectations) -> VerifyReport {
        let mut first_break = self.first_break;
        let head = if self.scanned == 0 {
            None
        } else {
            Some(self.previous)
        };
        // The last sequence verified, when the chain held from 1 (0 for an empty log).
        let last_verified = self.expected_sequence.saturating_sub(1);
        if first_break.is_none() {
            first_break = anchor_break(
                expectations,
                last_verified,
                |sequence| {
                    if sequence == last_verified {
                        head
                    } else if self.watch.count == Some(sequence) {
                        self.watched_hash
                    } else {
                        None
                    }
                },
                |expected| {
                    Some(expected) == head || (self.watch.head == Some(expected) && self.head_seen)
                },
            );
        }
        VerifyReport {
            events_scanned: self.scanned,
            chain_valid: first_break.is_none(),
            first_break_at_sequence: first_break,
            head: head.map(|hash| to_hex(&hash)),
        }
    }
}

/// Where an intact chain of rows `1..=last_verified` fails `anchor`, if it does. `hash_at`
/// gives the verified hash of a row (`None` when unknown), `has_head` whether some verified
/// row has a hash. A missing anchored row is reported as the first sequence past the end; a
/// row whose hash differs, at its own sequence.
pub fn anchor_break(
    anchor: &Expectations,
    last_verified: u64,
    hash_at: impl Fn(u64) -> Option<ChainHash>,
    has_head: impl Fn(ChainHash) -> bool,
) -> Option<u64> {
    let past_end = last_verified.saturating_add(1);
    match (anchor.count, anchor.head) {
        (None, None) => None,
        (Some(count), _) if count > last_verified => Some(past_end),
        (Some(0), Some(_)) => Some(1),
        (Some(_), None) => None,
        (Some(count), Some(expected)) => (hash_at(count) != Some(expected)).then_some(count),
        (None, Some(expected)) => (!has_head(expected)).then_some(past_end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ChainKey {
        ChainKey::new(&SecretBytes::new(vec![9; 32])).unwrap()
    }

    fn columns(text: &str) -> [Option<&[u8]>; TEXT_COLUMNS] {
        let mut columns = [Some(text.as_bytes()); TEXT_COLUMNS];
        columns[5] = None;
        columns
    }

    #[test]
    fn weak_keys_are_refused() {
        assert!(ChainKey::new(&SecretBytes::new(vec![1; 31])).is_err());
    }

    #[test]
    fn null_and_empty_and_shifted_bytes_hash_differently() {
        let key = key();
        let mut a = [Some(&b""[..]); TEXT_COLUMNS];
        let b = [Some(&b""[..]); TEXT_COLUMNS];
        a[0] = None;
        assert_ne!(key.link(&GENESIS, 1, &a), key.link(&GENESIS, 1, &b));
        let mut c = b;
        let mut d = b;
        c[0] = Some(b"ab");
        d[1] = Some(b"ab");
        assert_ne!(key.link(&GENESIS, 1, &c), key.link(&GENESIS, 1, &d));
    }

    #[test]
    fn a_valid_chain_verifies_and_an_edit_breaks_it_at_that_row() {
        let key = key();
        let mut hashes = Vec::new();
        let mut previous = GENESIS;
        for sequence in 1..=5 {
            previous = key.link(&previous, sequence, &columns("row"));
            hashes.push(to_hex(&previous));
        }
        let mut verifier = ChainVerifier::new(key.clone());
        for (index, hash) in hashes.iter().enumerate() {
            assert!(verifier.feed(index as u64 + 1, &columns("row"), hash.as_bytes()));
        }
        let report = verifier.finish(&Expectations::default());
        assert!(report.chain_valid);
        assert_eq!(report.head.as_deref(), hashes.last().map(String::as_str));

        let mut verifier = ChainVerifier::new(key);
        for (index, hash) in hashes.iter().enumerate() {
            let text = if index == 2 { "edited" } else { "row" };
            verifier.feed(index as u64 + 1, &columns(text), hash.as_bytes());
        }
        let report = verifier.finish(&Expectations::default());
        assert_eq!(report.first_break_at_sequence, Some(3));
        assert_eq!(report.events_scanned, 5);
    }

    #[test]
    fn expectations_catch_a_truncated_tail() {
        let key = key();
        let first = key.link(&GENESIS, 1, &columns("row"));
        let second = key.link(&first, 2, &columns("row"));
        let mut verifier = ChainVerifier::new(key);
        verifier.feed(1, &columns("row"), to_hex(&first).as_bytes());
        let report = verifier.finish(&Expectations {
            head: Some(second),
            count: Some(2),
        });
        assert!(!report.chain_valid);
        assert_eq!(report.first_break_at_sequence, Some(2));
    }

    /// A chain of `rows` rows and its hashes.
    fn chain_of(key: &ChainKey, rows: u64) -> Vec<ChainHash> {
        let mut previous = GENESIS;
        (1..=rows)
            .map(|sequence| {
                previous = key.link(&previous, sequence, &columns("row"));
                previous
            })
            .collect()
    }

    fn verify_anchor(key: &ChainKey, hashes: &[ChainHash], anchor: &Expectations) -> VerifyReport {
        let mut verifier = ChainVerifier::new(key.clone()).watching(anchor);
        for (index, hash) in hashes.iter().enumerate() {
            verifier.feed(index as u64 + 1, &columns("row"), to_hex(hash).as_bytes());
        }
        verifier.finish(anchor)
    }

    #[test]
    fn an_anchor_holds_in_a_log_that_grew_and_fails_in_a_truncated_one() {
        let key = key();
        let hashes = chain_of(&key, 6);
        let anchor = Expectations {
            head: Some(hashes[3]),
            count: Some(4),
        };
        // Grown since the anchor: rows 5 and 6 were appended.
        assert!(verify_anchor(&key, &hashes, &anchor).chain_valid);
        // Exactly the anchored prefix.
        assert!(verify_anchor(&key, &hashes[..4], &anchor).chain_valid);
        // Cut below the anchor: the first missing row is the break.
        let cut = verify_anchor(&key, &hashes[..3], &anchor);
        assert_eq!(cut.first_break_at_sequence, Some(4));
        // Another log (or a rewritten prefix): the anchored row is the break.
        let other = chain_of(&ChainKey::new(&SecretBytes::new(vec![8; 32])).unwrap(), 6);
        let wrong_head = Expectations {
            head: Some(other[3]),
            count: Some(4),
        };
        assert_eq!(
            verify_anchor(&key, &hashes, &wrong_head).first_break_at_sequence,
            Some(4)
        );
        // A head alone must be somewhere in the log; a count alone needs that many rows.
        let head_only = Expectations {
            head: Some(hashes[1]),
            count: None,
        };
        assert!(verify_anchor(&key, &hashes, &head_only).chain_valid);
        let head_only = Expectations {
            head: Some(other[1]),
            count: None,
        };
        assert_eq!(
            verify_anchor(&key, &hashes, &head_only).first_break_at_sequence,
            Some(7)
        );
        let count_only = Expectations {
            head: None,
            count: Some(7),
        };
        assert_eq!(
            verify_anchor(&key, &hashes, &count_only).first_break_at_sequence,
            Some(7)
        );
        // An empty log holds no anchor.
        assert_eq!(
            verify_anchor(&key, &[], &anchor).first_break_at_sequence,
            Some(1)
        );
    }

    #[test]
    fn an_unannounced_anchor_inside_the_log_is_never_confirmed() {
        let key = key();
        let hashes = chain_of(&key, 3);
        let anchor = Expectations {
            head: Some(hashes[1]),
            count: Some(2),
        };
        let mut verifier = ChainVerifier::new(key);
        for (index, hash) in hashes.iter().enumerate() {
            verifier.feed(index as u64 + 1, &columns("row"), to_hex(hash).as_bytes());
        }
        assert_eq!(verifier.finish(&anchor).first_break_at_sequence, Some(2));
    }

    #[test]
    fn hex_round_trips() {
        let hash = key().tag(b"x");
        assert_eq!(parse_hash(&to_hex(&hash)), Some(hash));
        assert_eq!(parse_hash("zz"), None);
    }
}
