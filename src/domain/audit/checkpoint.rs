//! Signed audit checkpoints: "at time T the log held rows up to sequence N, the row at N had
//! chain hash H, and the public digest of every row up to N was D", signed with Ed25519.
//!
//! The chain itself is an HMAC, so only a holder of the HMAC secret can check it. A checkpoint
//! adds what anyone holding the public key can check:
//! - the signature, over a fixed, length-free text encoding of every field
//!   ([`Checkpoint::signing_bytes`]);
//! - that the log still holds row N with the signed head H (a truncated or replaced log does not);
//! - with the rows at hand (the database, or an export), that their public prefix digest
//!   ([`digest_link`]) reaches the signed D at N, so no row up to N was rewritten, added, removed
//!   or reordered.
//!
//! The prefix digest is a SHA-256 chain over the same canonical row encoding the HMAC chain
//! uses, plus each row's stored chain hash. It starts at [`DIGEST_GENESIS`] before sequence 1,
//! or, after a purge, at the digest the purge checkpoint signed.
//!
//! The signing key is derived from a secret of at least 32 bytes (from the environment or an
//! owner-only file) by SHA-256 under a domain-separation tag, so any secret a secret manager
//! hands out works and the same secret always gives the same key.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::chain::{ChainHash, TEXT_COLUMNS, encode_row, parse_hash, to_hex};
use crate::domain::secret::SecretBytes;

/// The digest before the first row.
pub const DIGEST_GENESIS: ChainHash = [0; 32];

/// The version of the checkpoint encoding.
pub const VERSION: u64 = 1;

/// Separates the signing-key derivation from every other use of the secret.
const SEED_TAG: &[u8] = b"ibkr-agent-gateway/audit-signing-seed/v1\0";

/// Opens the signed text, so a signature over it means nothing in any other context.
const SIGNING_TAG: &str = "ibkr-agent-gateway/audit-checkpoint/v1";

/// Separates the prefix digest from any other SHA-256 of the same bytes.
const DIGEST_TAG: &[u8] = b"ibkr-agent-gateway/audit-prefix-digest/v1\0";

/// The shortest secret a signing key is derived from.
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a checkpoint, a public key or a signing secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a checkpoint of this version.
    #[error("not a valid audit checkpoint: {detail}")]
    Malformed {
        /// What is wrong, naming the field.
        detail: String,
    },
    /// The checkpoint names another signing key than the one given.
    #[error(
        "the checkpoint at sequence {sequence} was signed by key {found}, not by key {expected}"
    )]
    OtherKey {
        /// The checkpoint's sequence.
        sequence: u64,
        /// The key id the checkpoint names.
        found: String,
        /// The key id of the public key given.
        expected: String,
    },
    /// The signature does not verify: a field was changed after signing, or it was never signed
    /// by this key.
    #[error("the signature of the checkpoint at sequence {sequence} does not verify")]
    BadSignature {
        /// The checkpoint's sequence.
        sequence: u64,
    },
    /// A public key that is not 64 hex digits of a valid Ed25519 point.
    #[error("not an Ed25519 public key (expected 64 hex digits)")]
    BadPublicKey,
    /// A signing secret shorter than [`MIN_SECRET_BYTES`].
    #[error("the audit signing secret must be at least {MIN_SECRET_BYTES} bytes")]
    WeakSecret,
}

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckpointKind {
    /// On the serving interval.
    Periodic,
    /// By `audit checkpoint`.
    Manual,
    /// When the server stopped.
    Shutdown,
    /// Rows up to the sequence were purged after a verified export; the log now starts after it.
    Purge,
}

impl CheckpointKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Periodic => "periodic",
            Self::Manual => "manual",
            Self::Shutdown => "shutdown",
            Self::Purge => "purge",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Periodic, Self::Manual, Self::Shutdown, Self::Purge]
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }
}

/// What a checkpoint states (everything the signature covers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Why it was written.
    pub kind: CheckpointKind,
    /// The last sequence of the prefix.
    pub sequence: u64,
    /// The chain hash of the row at `sequence`.
    pub head: ChainHash,
    /// The public prefix digest through `sequence`.
    pub digest: ChainHash,
    /// When it was signed, RFC 3339 UTC with microseconds.
    pub at: String,
    /// The signing key's id ([`PublicKey::key_id`]).
    pub key_id: String,
}

impl Checkpoint {
    /// The exact bytes signed: one line per field, in fixed order, after a context tag. Every
    /// field is fixed-format text without newlines, so the encoding is unambiguous.
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "{SIGNING_TAG}\nkind={}\nsequence={}\nhead={}\ndigest={}\nat={}\nkey_id={}\n",
            self.kind.as_str(),
            self.sequence,
            to_hex(&self.head),
            to_hex(&self.digest),
            self.at,
            self.key_id,
        )
        .into_bytes()
    }
}

/// A checkpoint and its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// What is stated.
    pub checkpoint: Checkpoint,
    /// Ed25519 over [`Checkpoint::signing_bytes`].
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    /// The JSON object a checkpoint file line (and an export's checkpoint line) holds.
    pub fn to_json(&self) -> Value {
        let checkpoint = &self.checkpoint;
        json!({
            "version": VERSION,
            "kind": checkpoint.kind.as_str(),
            "sequence": checkpoint.sequence,
            "head": to_hex(&checkpoint.head),
            "digest": to_hex(&checkpoint.digest),
            "at": checkpoint.at,
            "key_id": checkpoint.key_id,
            "signature": to_hex(&self.signature),
        })
    }

    /// One line of a checkpoint file (without the newline).
    pub fn to_line(&self) -> String {
        self.to_json().to_string()
    }

    /// Parses what [`SignedCheckpoint::to_json`] wrote. Unknown fields are refused, so nothing
    /// unsigned can ride along.
    ///
    /// # Errors
    /// [`CheckpointError::Malformed`] naming the field.
    pub fn from_json(value: &Value) -> Result<Self, CheckpointError> {
        let object = value
            .as_object()
            .ok_or_else(|| malformed("not a JSON object"))?;
        const FIELDS: [&str; 8] = [
            "version",
            "kind",
            "sequence",
            "head",
            "digest",
            "at",
            "key_id",
            "signature",
        ];
        if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(malformed(&format!("unknown field `{unknown}`")));
        }
        if object.get("version").and_then(Value::as_u64) != Some(VERSION) {
            return Err(malformed("`version` must be 1"));
        }
        let kind = CheckpointKind::parse(text(object, "kind")?)
            .ok_or_else(|| malformed("`kind` is not periodic, manual, shutdown or purge"))?;
        let sequence = object
            .get("sequence")
            .and_then(Value::as_u64)
            .filter(|sequence| *sequence >= 1)
            .ok_or_else(|| malformed("`sequence` must be a positive integer"))?;
        let head = hash(object, "head")?;
        let digest = hash(object, "digest")?;
        let at = text(object, "at")?;
        let parsed = DateTime::parse_from_rfc3339(at)
            .map_err(|_| malformed("`at` is not an RFC 3339 time"))?
            .with_timezone(&Utc);
        if parsed.to_rfc3339_opts(SecondsFormat::Micros, true) != at {
            return Err(malformed("`at` must be UTC with microseconds"));
        }
        let key_id = text(object, "key_id")?;
        if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed("`key_id` must be 16 hex digits"));
        }
        let signature = parse_signature(text(object, "signature")?)
            .ok_or_else(|| malformed("`signature` must be 128 hex digits"))?;
        Ok(Self {
            checkpoint: Checkpoint {
                kind,
                sequence,
                head,
                digest,
                at: at.to_owned(),
                key_id: key_id.to_ascii_lowercase(),
            },
            signature,
        })
    }

    /// Parses one line of a checkpoint file.
    ///
    /// # Errors
    /// [`CheckpointError::Malformed`].
    pub fn parse_line(line: &str) -> Result<Self, CheckpointError> {
        let value: Value =
            serde_json::from_str(line).map_err(|_| malformed("the line is not JSON"))?;
        Self::from_json(&value)
    }
}

fn malformed(detail: &str) -> CheckpointError {
    CheckpointError::Malformed {
        detail: detail.to_owned(),
    }
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<&'a str, CheckpointError> {
    object
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| malformed(&format!("`{field}` must be a string")))
}

fn hash(object: &Map<String, Value>, field: &str) -> Result<ChainHash, CheckpointError> {
    parse_hash(text(object, field)?)
        .ok_or_else(|| malformed(&format!("`{field}` must be 64 hex digits")))
}

fn parse_signature(text: &str) -> Option<[u8; 64]> {
    if text.len() != 128 {
        return None;
    }
    let (high, low) = text.split_at(64);
    let mut out = [0_u8; 64];
    out[..32].copy_from_slice(&parse_hash(high)?);
    out[32..].copy_from_slice(&parse_hash(low)?);
    Some(out)
}

/// An Ed25519 public key that checks checkpoints.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl PublicKey {
    /// Parses 64 hex digits.
    ///
    /// # Errors
    /// [`CheckpointError::BadPublicKey`].
    pub fn parse_hex(text: &str) -> Result<Self, CheckpointError> {
        let bytes = parse_hash(text.trim()).ok_or(CheckpointError::BadPublicKey)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| CheckpointError::BadPublicKey)?;
        if key.is_weak() {
            return Err(CheckpointError::BadPublicKey);
        }
        Ok(Self { key })
    }

    /// The key as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(self.key.as_bytes())
    }

    /// A short id: the first 16 hex digits of SHA-256 of the key.
    pub fn key_id(&self) -> String {
        let mut id = to_hex(&Sha256::digest(self.key.as_bytes()));
        id.truncate(16);
        id
    }

    /// Checks that `signed` names this key and that its signature holds over its fields.
    ///
    /// # Errors
    /// [`CheckpointError::OtherKey`] or [`CheckpointError::BadSignature`].
    pub fn verify(&self, signed: &SignedCheckpoint) -> Result<(), CheckpointError> {
        let checkpoint = &signed.checkpoint;
        let expected = self.key_id();
        if checkpoint.key_id != expected {
            return Err(CheckpointError::OtherKey {
                sequence: checkpoint.sequence,
                found: checkpoint.key_id.clone(),
                expected,
            });
        }
        let signature = Signature::from_bytes(&signed.signature);
        self.key
            .verify_strict(&checkpoint.signing_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature {
                sequence: checkpoint.sequence,
            })
    }
}

/// The private half: signs checkpoints. Never printed.
pub struct CheckpointSigner {
    key: SigningKey,
    public: PublicKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointSigner(<redacted>, {})", self.public.key_id())
    }
}

impl CheckpointSigner {
    /// Derives the key from a secret of at least [`MIN_SECRET_BYTES`] bytes.
    ///
    /// # Errors
    /// [`CheckpointError::WeakSecret`].
    pub fn from_secret(secret: &SecretBytes) -> Result<Self, CheckpointError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(CheckpointError::WeakSecret);
        }
        let mut hasher = Sha256::new();
        hasher.update(SEED_TAG);
        hasher.update(secret.expose());
        let mut seed: [u8; 32] = hasher.finalize().into();
        let key = SigningKey::from_bytes(&seed);
        zeroize::Zeroize::zeroize(&mut seed);
        let public = PublicKey {
            key: key.verifying_key(),
        };
        Ok(Self { key, public })
    }

    /// The public key that verifies this signer's checkpoints.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs a statement about the prefix through `sequence`.
    pub fn sign(
        &self,
        kind: CheckpointKind,
        sequence: u64,
        head: ChainHash,
        digest: ChainHash,
        at: DateTime<Utc>,
    ) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            kind,
            sequence,
            head,
            digest,
            at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
            key_id: self.public.key_id(),
        };
        let signature = self.key.sign(&checkpoint.signing_bytes()).to_bytes();
        SignedCheckpoint {
            checkpoint,
            signature,
        }
    }
}

/// The prefix digest after one more row: SHA-256 over a tag, the previous digest, the row's
/// canonical encoding and its stored chain hash (as stored, length-prefixed).
pub fn digest_link(
    previous: &ChainHash,
    sequence: u64,
    columns: &[Option<&[u8]>; TEXT_COLUMNS],
    stored_hash: &[u8],
) -> ChainHash {
    let mut hasher = Sha256::new();
    hasher.update(DIGEST_TAG);
    hasher.update(previous);
    encode_row(sequence, columns, |bytes| hasher.update(bytes));
    let length = u32::try_from(stored_hash.len()).unwrap_or(u32::MAX);
    hasher.update(length.to_be_bytes());
    hasher.update(stored_hash);
    hasher.finalize().into()
}

/// Where a prefix digest starts: after `after_sequence` (0 for the whole log), at `digest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestStart {
    /// The last sequence before the rows fed (the purge point, or 0).
    pub after_sequence: u64,
    /// The digest through `after_sequence`.
    pub digest: ChainHash,
}

impl DigestStart {
    /// The start of a log that was never purged.
    pub const GENESIS: Self = Self {
        after_sequence: 0,
        digest: DIGEST_GENESIS,
    };

    /// The start after a purge checkpoint.
    pub fn after(checkpoint: &Checkpoint) -> Self {
        Self {
            after_sequence: checkpoint.sequence,
            digest: checkpoint.digest,
        }
    }
}

/// What a public prefix check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixReport {
    /// Rows read.
    pub events_scanned: u64,
    /// Checkpoints whose prefix the rows reproduced.
    pub checkpoints_verified: u64,
    /// The last checkpointed sequence verified, if any.
    pub verified_through: Option<u64>,
    /// The first sequence where the rows stop matching the checkpoints: a gap, a changed row,
    /// or (past the end) a checkpointed row that is missing.
    pub first_break_at_sequence: Option<u64>,
}

/// Checks rows fed in sequence order against checkpoints whose signatures were already
/// verified, in constant memory, using no secret.
#[derive(Debug, Clone)]
pub struct PrefixVerifier {
    /// Sorted by sequence, ascending; the next one to reach is at `next`.
    checkpoints: Vec<Checkpoint>,
    next: usize,
    digest: ChainHash,
    expected_sequence: u64,
    scanned: u64,
    verified: u64,
    verified_through: Option<u64>,
    first_break: Option<u64>,
}

impl PrefixVerifier {
    /// Starts at `start` with the given (signature-checked) checkpoints. Checkpoints at or
    /// before the start say nothing about the rows fed and are set aside.
    pub fn new(start: DigestStart, mut checkpoints: Vec<Checkpoint>) -> Self {
        checkpoints.retain(|checkpoint| checkpoint.sequence > start.after_sequence);
        checkpoints.sort_by_key(|checkpoint| checkpoint.sequence);
        Self {
            checkpoints,
            next: 0,
            digest: start.digest,
            expected_sequence: start.after_sequence.saturating_add(1),
            scanned: 0,
            verified: 0,
            verified_through: None,
            first_break: None,
        }
    }

    /// The last checkpointed sequence: rows after it need not be fed.
    pub fn last_checkpointed(&self) -> Option<u64> {
        self.checkpoints
            .last()
            .map(|checkpoint| checkpoint.sequence)
    }

    /// True while rows up to the last checkpoint remain to be fed and nothing broke.
    pub fn wants_more(&self) -> bool {
        self.first_break.is_none() && self.next < self.checkpoints.len()
    }

    /// Feeds the next row. Returns false once the rows stopped matching.
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
        if sequence != self.expected_sequence {
            self.first_break = Some(self.expected_sequence.min(sequence));
            return false;
        }
        self.digest = digest_link(&self.digest, sequence, columns, stored_hash);
        while let Some(checkpoint) = self.checkpoints.get(self.next) {
            if checkpoint.sequence != sequence {
                break;
            }
            let head = std::str::from_utf8(stored_hash).ok().and_then(parse_hash);
            if checkpoint.digest != self.digest || head != Some(checkpoint.head) {
                self.first_break = Some(sequence);
                return false;
            }
            self.verified += 1;
            self.verified_through = Some(sequence);
            self.next += 1;
        }
        self.expected_sequence = sequence.saturating_add(1);
        true
    }

    /// The digest through the last row fed (meaningful while nothing broke).
    pub fn digest(&self) -> ChainHash {
        self.digest
    }

    /// Ends the scan: a checkpoint not yet reached means its row is missing.
    pub fn finish(self) -> PrefixReport {
        let first_break = self
            .first_break
            .or_else(|| (self.next < self.checkpoints.len()).then_some(self.expected_sequence));
        PrefixReport {
            events_scanned: self.scanned,
            checkpoints_verified: self.verified,
            verified_through: self.verified_through,
            first_break_at_sequence: first_break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::chain::{ChainKey, GENESIS};

    fn signer_of(byte: u8) -> CheckpointSigner {
        CheckpointSigner::from_secret(&SecretBytes::new(vec![byte; 32])).unwrap()
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn row(sequence: u64) -> String {
        format!("row {sequence}")
    }

    fn columns(text: &str) -> [Option<&[u8]>; TEXT_COLUMNS] {
        let mut columns = [Some(text.as_bytes()); TEXT_COLUMNS];
        columns[3] = None;
        columns
    }

    /// `rows` rows: (sequence, text, stored hash hex) and the digest after each.
    fn log(rows: u64) -> (Vec<(u64, String, String)>, Vec<ChainHash>) {
        let key = ChainKey::new(&SecretBytes::new(vec![5; 32])).unwrap();
        let mut previous = GENESIS;
        let mut digest = DIGEST_GENESIS;
        let mut out = Vec::new();
        let mut digests = Vec::new();
        for sequence in 1..=rows {
            let text = row(sequence);
            previous = key.link(&previous, sequence, &columns(&text));
            let stored = to_hex(&previous);
            digest = digest_link(&digest, sequence, &columns(&text), stored.as_bytes());
            out.push((sequence, text, stored));
            digests.push(digest);
        }
        (out, digests)
    }

    fn checkpoint_at(
        signer: &CheckpointSigner,
        rows: &[(u64, String, String)],
        digests: &[ChainHash],
        sequence: u64,
    ) -> SignedCheckpoint {
        let index = usize::try_from(sequence - 1).unwrap();
        signer.sign(
            CheckpointKind::Periodic,
            sequence,
            parse_hash(&rows[index].2).unwrap(),
            digests[index],
            at(),
        )
    }

    fn check(rows: &[(u64, String, String)], checkpoints: &[Checkpoint]) -> PrefixReport {
        let mut verifier = PrefixVerifier::new(DigestStart::GENESIS, checkpoints.to_vec());
        for (sequence, text, stored) in rows {
            verifier.feed(*sequence, &columns(text), stored.as_bytes());
        }
        verifier.finish()
    }

    #[test]
    fn a_signature_covers_every_field() {
        let signer = signer_of(1);
        let (rows, digests) = log(3);
        let signed = checkpoint_at(&signer, &rows, &digests, 3);
        let public = signer.public_key();
        public.verify(&signed).unwrap();
        // Round trip through the file line.
        let parsed = SignedCheckpoint::parse_line(&signed.to_line()).unwrap();
        assert_eq!(parsed, signed);
        public.verify(&parsed).unwrap();

        let mut changed = Vec::new();
        let mut edit = signed.clone();
        edit.checkpoint.sequence = 2;
        changed.push(edit);
        let mut edit = signed.clone();
        edit.checkpoint.head[0] ^= 1;
        changed.push(edit);
        let mut edit = signed.clone();
        edit.checkpoint.digest[31] ^= 0x80;
        changed.push(edit);
        let mut edit = signed.clone();
        edit.checkpoint.kind = CheckpointKind::Purge;
        changed.push(edit);
        let mut edit = signed.clone();
        edit.checkpoint.at = "2026-12-03T10:00:01.000000Z".to_owned();
        changed.push(edit);
        let mut edit = signed.clone();
        edit.signature[10] ^= 1;
        changed.push(edit);
        for edit in changed {
            assert!(
                matches!(
                    public.verify(&edit),
                    Err(CheckpointError::BadSignature { .. })
                ),
                "{edit:?}"
            );
        }
        // Another key's checkpoint is named as such, and a forged key id does not help.
        let other = signer_of(2);
        let theirs = checkpoint_at(&other, &rows, &digests, 3);
        assert!(matches!(
            public.verify(&theirs),
            Err(CheckpointError::OtherKey { .. })
        ));
        let mut forged = theirs;
        forged.checkpoint.key_id = public.key_id();
        assert!(matches!(
            public.verify(&forged),
            Err(CheckpointError::BadSignature { .. })
        ));
    }

    #[test]
    fn the_same_secret_gives_the_same_key_and_short_secrets_are_refused() {
        assert_eq!(signer_of(3).public_key(), signer_of(3).public_key());
        assert_ne!(signer_of(3).public_key(), signer_of(4).public_key());
        assert_eq!(
            CheckpointSigner::from_secret(&SecretBytes::new(vec![1; 31])).unwrap_err(),
            CheckpointError::WeakSecret
        );
        let public = signer_of(3).public_key().clone();
        assert_eq!(PublicKey::parse_hex(&public.to_hex()).unwrap(), public);
        assert!(PublicKey::parse_hex("00").is_err());
        assert!(PublicKey::parse_hex(&"0".repeat(64)).is_err(), "weak key");
        assert!(!format!("{:?}", signer_of(3)).contains(&public.to_hex()[..20]));
    }

    #[test]
    fn lines_with_unknown_or_malformed_fields_are_refused() {
        let signer = signer_of(1);
        let (rows, digests) = log(2);
        let line = checkpoint_at(&signer, &rows, &digests, 2).to_json();
        let mut extra = line.clone();
        extra["note"] = json!("unsigned");
        assert!(SignedCheckpoint::from_json(&extra).is_err());
        for (field, value) in [
            ("version", json!(2)),
            ("kind", json!("other")),
            ("sequence", json!(0)),
            ("sequence", json!(-1)),
            ("head", json!("xyz")),
            ("at", json!("2026-12-03T10:00:00+01:00")),
            ("key_id", json!("abc")),
            ("signature", json!("00")),
        ] {
            let mut edit = line.clone();
            edit[field] = value;
            assert!(SignedCheckpoint::from_json(&edit).is_err(), "{field}");
        }
        assert!(SignedCheckpoint::parse_line("not json").is_err());
    }

    #[test]
    fn the_prefix_digest_catches_rewrites_truncation_and_gaps_before_a_checkpoint() {
        let signer = signer_of(1);
        let (rows, digests) = log(10);
        let checkpoints: Vec<Checkpoint> = [4, 8]
            .iter()
            .map(|sequence| checkpoint_at(&signer, &rows, &digests, *sequence).checkpoint)
            .collect();
        let report = check(&rows, &checkpoints);
        assert_eq!(report.first_break_at_sequence, None);
        assert_eq!(report.checkpoints_verified, 2);
        assert_eq!(report.verified_through, Some(8));

        // A changed row before the last checkpoint, even with its stored hash kept.
        let mut edited = rows.clone();
        edited[5].1 = "changed".to_owned();
        assert_eq!(
            check(&edited, &checkpoints).first_break_at_sequence,
            Some(8)
        );
        // A replaced stored hash at a checkpoint.
        let mut edited = rows.clone();
        edited[3].2 = "ab".repeat(32);
        assert_eq!(
            check(&edited, &checkpoints).first_break_at_sequence,
            Some(4)
        );
        // A truncated log: row 8 is gone.
        assert_eq!(
            check(&rows[..7], &checkpoints).first_break_at_sequence,
            Some(8)
        );
        // A removed row.
        let mut gap = rows.clone();
        gap.remove(2);
        assert_eq!(check(&gap, &checkpoints).first_break_at_sequence, Some(3));
        // Rows after the last checkpoint are not its business.
        let mut tail = rows.clone();
        tail[9].1 = "after".to_owned();
        assert_eq!(check(&tail, &checkpoints).first_break_at_sequence, None);
    }

    #[test]
    fn a_digest_resumes_after_a_purge_point() {
        let signer = signer_of(1);
        let (rows, digests) = log(10);
        let base = checkpoint_at(&signer, &rows, &digests, 5).checkpoint;
        let last = checkpoint_at(&signer, &rows, &digests, 9).checkpoint;
        let mut verifier = PrefixVerifier::new(DigestStart::after(&base), vec![base, last]);
        for (sequence, text, stored) in &rows[5..] {
            verifier.feed(*sequence, &columns(text), stored.as_bytes());
        }
        let report = verifier.finish();
        assert_eq!(report.first_break_at_sequence, None);
        assert_eq!(report.checkpoints_verified, 1);
    }
}
