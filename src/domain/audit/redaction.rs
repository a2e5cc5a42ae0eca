//! Redaction at write time: what may never reach the audit store is removed before an event
//! exists.
//!
//! Removed: values under sensitive keys (tokens, cookies, authorization, passwords, session
//! material); whole values that look like credentials (JWTs, long opaque tokens, cookie pairs)
//! or local filesystem paths; and, anywhere inside a longer text, the secret part of
//! `Authorization:` headers and `Bearer`/`Basic`/`Token` credentials, `key=value` and
//! `key: value` pairs whose key names a secret (`password=`, `token=`, `api_key=` …), the
//! user information of URLs (`https://user:pass@host`, `postgres://user:pass@host/db`), PEM
//! blocks (`-----BEGIN … PRIVATE KEY-----` to its `END` line, or to the end of a cut-off
//! text), and tokens with a well-known prefix ([`WELL_KNOWN_TOKEN_PREFIXES`]: OpenAI/Stripe
//! `sk-`/`sk_`, AWS access key ids `AKIA`/`ASIA`, Slack `xox?-`, GitHub `ghp_` and friends,
//! GitLab `glpat-`, Google `AIza`). Account ids anywhere, in keys or values, are replaced by
//! their keyed hash. Everything is bounded in depth, width and length, after secrets are
//! removed, so a cut never leaves half a secret behind.
//!
//! The gateway's own ids (`prv_…`, `apr_…`) are never secrets: they are exempt from the
//! opaque-token rule and are recorded as typed links outside redaction (`links.rs`).

use serde_json::{Map, Value};

use super::links::{AuditLinks, LINKS_KEY};
use super::principal::{PRINCIPAL_KEY, PrincipalKind};

/// The deepest nesting kept.
pub const MAX_DEPTH: usize = 4;
/// The most entries kept per object or array.
pub const MAX_ENTRIES: usize = 32;
/// The most characters kept per string.
pub const MAX_STRING_CHARS: usize = 256;

/// Why a value was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedactionReason {
    /// The key names secret material.
    SensitiveKey,
    /// The value looks like a credential or secret.
    SecretLikeValue,
    /// The value is a local filesystem path.
    LocalPath,
    /// Account ids in the value were replaced by their hash.
    AccountId,
    /// The value was cut to the length bound.
    Truncated,
    /// Nesting or width beyond the bounds was dropped.
    Omitted,
    /// An input refused as invalid was replaced by its length, keyed hash and an excerpt.
    RefusedInput,
}

impl RedactionReason {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SensitiveKey => "sensitive_key",
            Self::SecretLikeValue => "secret_like_value",
            Self::LocalPath => "local_path",
            Self::AccountId => "account_id",
            Self::Truncated => "truncated",
            Self::Omitted => "omitted",
            Self::RefusedInput => "refused_input",
        }
    }
}

/// One change made by redaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// Where, as a dotted path with redacted keys (`args.token`, `items[2]`).
    pub path: String,
    /// Why.
    pub reason: RedactionReason,
}

/// Redacted, bounded metadata and the record of what was changed. Only [`redact`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    value: Value,
    redactions: Vec<Redaction>,
}

impl Redacted {
    /// Empty metadata.
    pub fn empty() -> Self {
        Self {
            value: Value::Object(Map::new()),
            redactions: Vec::new(),
        }
    }

    /// The redacted value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// What was changed.
    pub fn redactions(&self) -> &[Redaction] {
        &self.redactions
    }

    /// The same metadata with `links` stored under [`LINKS_KEY`] (nothing changes when there
    /// are none). Links bypass redaction: they hold only the gateway's own typed ids (see
    /// `links.rs`). Metadata that is not an object is kept under `input`.
    #[must_use]
    pub fn with_links(mut self, links: &AuditLinks) -> Self {
        if links.is_empty() {
            return self;
        }
        let (stored, redactions) = links.to_stored();
        let mut object = into_object(self.value);
        object.insert(LINKS_KEY.to_owned(), stored);
        self.value = Value::Object(object);
        self.redactions.extend(redactions);
        self
    }

    /// The same metadata with the caller's `kind` stored under [`PRINCIPAL_KEY`]. Like the
    /// links it bypasses redaction: it is the gateway's own value (see `principal.rs`).
    /// Metadata that is not an object is kept under `input`.
    #[must_use]
    pub fn with_principal(mut self, kind: PrincipalKind) -> Self {
        let mut object = into_object(self.value);
        object.insert(PRINCIPAL_KEY.to_owned(), kind.to_stored());
        self.value = Value::Object(object);
        self
    }
}

/// `value` as an object: itself, or kept under `input`.
fn into_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        other => {
            let mut object = Map::new();
            object.insert("input".to_owned(), other);
            object
        }
    }
}

/// The text that replaces a removed value.
pub const REDACTED: &str = "[redacted]";

const SENSITIVE_KEY_PARTS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "cookie",
    "authorization",
    "auth_header",
    "session",
    "bearer",
    "credential",
    "api_key",
    "apikey",
    "access_key",
    "passphrase",
    "private_key",
    "jwt",
    "signature",
    "hmac",
];

/// Redacts `value`. `hash_account` turns an account id into its keyed hash.
pub fn redact(value: &Value, hash_account: &dyn Fn(&str) -> String) -> Redacted {
    let mut redactions = Vec::new();
    let value = walk(value, "", 0, hash_account, &mut redactions);
    Redacted { value, redactions }
}

/// The most characters of a refused input's excerpt.
pub const REFUSED_EXCERPT_CHARS: usize = 96;

/// What is kept of an input refused as invalid: malformed input is where secrets pasted by
/// mistake turn up, so it is never stored as given. Kept: its length (characters of its
/// canonical JSON), `input_mac` (the caller's keyed hash of that JSON, so a holder of the key
/// can confirm a suspected input without the log holding it) and the first
/// [`REFUSED_EXCERPT_CHARS`] characters of its redacted form. Secrets are removed before the
/// excerpt is cut, so the cut cannot expose part of one.
pub fn redact_refused(
    input: &Value,
    input_mac: &str,
    hash_account: &dyn Fn(&str) -> String,
) -> Redacted {
    let inner = redact(input, hash_account);
    let excerpt: String = inner
        .value
        .to_string()
        .chars()
        .take(REFUSED_EXCERPT_CHARS)
        .collect();
    let mut redactions = inner.redactions;
    redactions.push(Redaction {
        path: "$".to_owned(),
        reason: RedactionReason::RefusedInput,
    });
    let mut summary = Map::new();
    summary.insert(
        "length".to_owned(),
        Value::from(input.to_string().chars().count()),
    );
    summary.insert("hmac_sha256".to_owned(), Value::String(bound(input_mac)));
    summary.insert("excerpt".to_owned(), Value::String(excerpt));
    let mut value = Map::new();
    value.insert("refused_input".to_owned(), Value::Object(summary));
    Redacted {
        value: Value::Object(value),
        redactions,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(
    value: &Value,
    path: &str,
    depth: usize,
    hash_account: &dyn Fn(&str) -> String,
    out: &mut Vec<Redaction>,
) -> Value {
    let note = |out: &mut Vec<Redaction>, path: &str, reason| {
        out.push(Redaction {
            path: if path.is_empty() {
                "$".to_owned()
            } else {
                path.to_owned()
            },
            reason,
        });
    };
    match value {
        Value::Object(map) => {
            if depth >= MAX_DEPTH {
                note(out, path, RedactionReason::Omitted);
                return Value::String("[omitted]".to_owned());
            }
            let mut result = Map::new();
            for (index, (key, child)) in map.iter().enumerate() {
                if index >= MAX_ENTRIES {
                    note(out, path, RedactionReason::Omitted);
                    break;
                }
                if depth == 0 && (key == LINKS_KEY || key == PRINCIPAL_KEY) {
                    // Reserved for the gateway's own links and principal: a caller cannot
                    // forge them.
                    note(out, key, RedactionReason::Omitted);
                    continue;
                }
                let (scrubbed_key, key_secret) = scrub_secrets(key);
                if key_secret.is_some() {
                    note(out, &join(path, REDACTED), RedactionReason::SecretLikeValue);
                }
                let (safe_key, key_changed) = replace_account_ids(&scrubbed_key, hash_account);
                let safe_key = bound(&safe_key);
                let child_path = join(path, &safe_key);
                if key_changed {
                    note(out, &child_path, RedactionReason::AccountId);
                }
                if is_sensitive_key(key) {
                    note(out, &child_path, RedactionReason::SensitiveKey);
                    result.insert(safe_key, Value::String(REDACTED.to_owned()));
                } else {
                    result.insert(
                        safe_key,
                        walk(child, &child_path, depth + 1, hash_account, out),
                    );
                }
            }
            Value::Object(result)
        }
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                note(out, path, RedactionReason::Omitted);
                return Value::String("[omitted]".to_owned());
            }
            if items.len() > MAX_ENTRIES {
                note(out, path, RedactionReason::Omitted);
            }
            Value::Array(
                items
                    .iter()
                    .take(MAX_ENTRIES)
                    .enumerate()
                    .map(|(index, item)| {
                        walk(
                            item,
                            &format!("{path}[{index}]"),
                            depth + 1,
                            hash_account,
                            out,
                        )
                    })
                    .collect(),
            )
        }
        Value::String(text) => {
            if let Some(reason) = classify_secret(text) {
                note(out, path, reason);
                return Value::String(REDACTED.to_owned());
            }
            let (text, secret) = scrub_secrets(text);
            if let Some(reason) = secret {
                note(out, path, reason);
            }
            let (text, changed) = replace_account_ids(&text, hash_account);
            if changed {
                note(out, path, RedactionReason::AccountId);
            }
            if text.chars().count() > MAX_STRING_CHARS {
                note(out, path, RedactionReason::Truncated);
            }
            Value::String(bound(&text))
        }
        Value::Number(number) => {
            // A bare number can be an account's digits only with its letters, so numbers stay.
            Value::Number(number.clone())
        }
        other => other.clone(),
    }
}

fn bound(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_STRING_CHARS)
        .collect()
}

fn is_sensitive_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase().replace('-', "_");
    SENSITIVE_KEY_PARTS.iter().any(|part| lower.contains(part))
        || lower
            .split(['_', '.'])
            .any(|segment| segment == "pwd" || segment == "pass")
}

/// Why a string must not be stored at all, if it must not.
pub fn classify_secret(text: &str) -> Option<RedactionReason> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("bearer ") || lower.starts_with("basic ") || lower.starts_with("token ") {
        return Some(RedactionReason::SecretLikeValue);
    }
    if looks_like_jwt(trimmed)
        || (looks_like_opaque_token(trimmed) && !is_gateway_id(trimmed))
        || looks_like_cookie(trimmed)
    {
        return Some(RedactionReason::SecretLikeValue);
    }
    if looks_like_local_path(trimmed) {
        return Some(RedactionReason::LocalPath);
    }
    None
}

fn looks_like_jwt(text: &str) -> bool {
    let parts: Vec<&str> = text.split('.').collect();
    parts.len() == 3
        && text.starts_with("eyJ")
        && parts.iter().all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// 24+ characters of token alphabet mixing letters and digits, with no spaces: API keys, session
/// ids, hex or base64 secrets.
fn looks_like_opaque_token(text: &str) -> bool {
    text.len() >= 24
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.'))
        && text.chars().any(|c| c.is_ascii_digit())
        && text.chars().any(|c| c.is_ascii_alphabetic())
        && !text.contains("..")
}

/// The gateway's own generated ids: `prv_` or `apr_` and 32 lower-case hex digits (a UUIDv7).
/// They name records, not capabilities, and are exempt from the opaque-token rule.
pub fn is_gateway_id(text: &str) -> bool {
    ["prv_", "apr_"].iter().any(|prefix| {
        text.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() == 32
                && rest
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        })
    })
}

/// Token prefixes that mark a credential wherever they appear, with the fewest characters
/// that must follow for a match.
pub const WELL_KNOWN_TOKEN_PREFIXES: &[(&str, usize)] = &[
    // OpenAI and Stripe style keys: sk-live-…, sk-proj-…, sk_live_…, sk_test_…, rk_live_….
    ("sk-", 16),
    ("sk_", 16),
    ("rk_live_", 8),
    ("rk_test_", 8),
    // AWS access key ids (long-term and temporary).
    ("AKIA", 12),
    ("ASIA", 12),
    // Slack bot, user, app, refresh and legacy tokens.
    ("xoxb-", 8),
    ("xoxp-", 8),
    ("xoxa-", 8),
    ("xoxr-", 8),
    ("xoxs-", 8),
    ("xoxe-", 8),
    ("xapp-", 8),
    // GitHub tokens.
    ("ghp_", 16),
    ("gho_", 16),
    ("ghu_", 16),
    ("ghs_", 16),
    ("ghr_", 16),
    ("github_pat_", 16),
    // GitLab personal access tokens, Google API keys, npm tokens.
    ("glpat-", 16),
    ("AIza", 30),
    ("npm_", 30),
];

/// A character that can be part of a token: letters, digits and the punctuation of base64,
/// base64url and common token formats.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '/' | '=' | '~')
}

/// Where a secret starts at byte `at` of `text`: how many bytes to replace and where the
/// replacement starts (a key or scheme before the secret is kept).
struct SecretSpan {
    keep: usize,
    end: usize,
}

/// The most characters of one string scanned for secrets; the rest is dropped (only
/// [`MAX_STRING_CHARS`] are ever stored).
const MAX_SCRUB_CHARS: usize = 16_384;

/// The longest key name a `key=value` pair is recognized by.
const MAX_KEY_CHARS: usize = 64;

/// The longest JWT looked for inside a text.
const MAX_JWT_CHARS: usize = 4_096;

/// Replaces every secret found inside `text` with [`REDACTED`], keeping the text around it.
/// Returns the text and the reason when anything was replaced.
pub fn scrub_secrets(text: &str) -> (String, Option<RedactionReason>) {
    // Far more than is ever kept, and it keeps the scan's cost bounded for hostile input.
    let text = match text.char_indices().nth(MAX_SCRUB_CHARS) {
        Some((cut, _)) => &text[..cut],
        None => text,
    };
    // PEM blocks first: a pair or header rule must not swallow a block's first line and leave
    // its body behind.
    let (text, mut found) = scrub_pem_blocks(text);
    let text = text.as_str();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < text.len() {
        let boundary = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if let Some(span) = secret_at(text, at, boundary) {
            out.push_str(&text[at..span.keep]);
            out.push_str(REDACTED);
            found = true;
            at = span.end;
            continue;
        }
        let Some(c) = text[at..].chars().next() else {
            break;
        };
        out.push(c);
        at += c.len_utf8();
    }
    let reason = found.then_some(RedactionReason::SecretLikeValue);
    (if found { out } else { text.to_owned() }, reason)
}

/// Replaces every PEM block with [`REDACTED`].
fn scrub_pem_blocks(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut found = false;
    while let Some(start) = rest.find("-----BEGIN") {
        out.push_str(&rest[..start]);
        out.push_str(REDACTED);
        found = true;
        rest = &rest[start + pem_block_len(&rest[start..])..];
    }
    out.push_str(rest);
    (out, found)
}

fn secret_at(text: &str, at: usize, boundary: bool) -> Option<SecretSpan> {
    let rest = &text[at..];
    if rest.starts_with("://") {
        return url_userinfo(text, at);
    }
    if !boundary {
        return None;
    }
    for (prefix, min_body) in WELL_KNOWN_TOKEN_PREFIXES {
        if let Some(body) = rest.strip_prefix(prefix) {
            let body_len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_')))
                .unwrap_or(body.len());
            if body_len >= *min_body {
                return Some(SecretSpan {
                    keep: at,
                    end: at + prefix.len() + body_len,
                });
            }
        }
    }
    if rest.starts_with("eyJ") {
        let window = rest
            .char_indices()
            .nth(MAX_JWT_CHARS)
            .map_or(rest, |(cut, _)| &rest[..cut]);
        let len = window
            .find(|c: char| !is_token_char(c))
            .unwrap_or(window.len());
        if looks_like_jwt(&rest[..len]) {
            return Some(SecretSpan {
                keep: at,
                end: at + len,
            });
        }
    }
    scheme_credential(rest, at).or_else(|| key_value_secret(rest, at))
}

/// A PEM block's length from its `-----BEGIN` line through its `-----END …-----` line, or to
/// the end of the text when it was cut off.
fn pem_block_len(rest: &str) -> usize {
    let Some(end_marker) = rest.find("-----END") else {
        return rest.len();
    };
    let after_marker = end_marker + "-----END".len();
    match rest[after_marker..].find("-----") {
        Some(close) => after_marker + close + "-----".len(),
        None => rest.len(),
    }
}

/// The user information of a URL at `at` (which points at `://`): everything between `://`
/// and the last `@` of the authority.
fn url_userinfo(text: &str, at: usize) -> Option<SecretSpan> {
    let start = at + "://".len();
    let authority_len = text[start..]
        .find(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>'))
        .unwrap_or(text.len() - start);
    let authority = &text[start..start + authority_len];
    let userinfo_len = authority.rfind('@')?;
    (userinfo_len > 0).then_some(SecretSpan {
        keep: start,
        end: start + userinfo_len,
    })
}

/// `Bearer …`, `Basic …` or `Token …` credentials: the scheme is kept, the credential replaced.
fn scheme_credential(rest: &str, at: usize) -> Option<SecretSpan> {
    let lower_head: String = rest
        .chars()
        .take(7)
        .collect::<String>()
        .to_ascii_lowercase();
    let (scheme_len, min_len) = if lower_head.starts_with("bearer") {
        (6, 1)
    } else if lower_head.starts_with("basic") {
        (5, 8)
    } else if lower_head.starts_with("token") {
        (5, 16)
    } else {
        return None;
    };
    let after = &rest[scheme_len..];
    let spaces = after.len() - after.trim_start_matches([' ', '\t']).len();
    if spaces == 0 {
        return None;
    }
    let value = &after[spaces..];
    let value_len = value
        .find(|c: char| !is_token_char(c))
        .unwrap_or(value.len());
    // `Basic`/`Token` are ordinary words too: only an encoded-looking value follows a scheme.
    let encoded = min_len == 1 || looks_encoded(&value[..value_len]);
    (value_len >= min_len && encoded).then_some(SecretSpan {
        keep: at + scheme_len + spaces,
        end: at + scheme_len + spaces + value_len,
    })
}

/// HTTP authorization schemes, lower-case.
const AUTH_SCHEMES: &[&str] = &[
    "bearer",
    "basic",
    "digest",
    "token",
    "negotiate",
    "ntlm",
    "apikey",
];

/// Letters mixed with digits or base64 padding, or both cases: not a plain word.
fn looks_encoded(value: &str) -> bool {
    let digits_or_symbols = value
        .chars()
        .any(|c| c.is_ascii_digit() || matches!(c, '=' | '+' | '/'));
    let upper = value.chars().any(|c| c.is_ascii_uppercase());
    let lower = value.chars().any(|c| c.is_ascii_lowercase());
    digits_or_symbols || (upper && lower && value.len() >= 16)
}

/// `key=value` or `key: value` whose key names a secret (`password=…`, `api_key: …`, `token=…`,
/// `Authorization: …`): the key is kept, the value replaced (for authorization headers, the
/// rest of the line).
fn key_value_secret(rest: &str, at: usize) -> Option<SecretSpan> {
    let key_len = rest
        .char_indices()
        .take(MAX_KEY_CHARS + 1)
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map(|(index, _)| index)?;
    if key_len == 0 || !is_sensitive_key(&rest[..key_len]) {
        return None;
    }
    let after_key = &rest[key_len..];
    let gap = after_key.len() - after_key.trim_start_matches([' ', '\t']).len();
    let mut cursor = key_len + gap;
    let separator = rest[cursor..].chars().next()?;
    if !matches!(separator, '=' | ':') {
        return None;
    }
    cursor += 1;
    if rest[cursor..].starts_with("//") {
        // A scheme (`token://…`), not a pair.
        return None;
    }
    let after_separator = &rest[cursor..];
    cursor += after_separator.len() - after_separator.trim_start_matches([' ', '\t']).len();
    if rest[cursor..].starts_with(['"', '\'']) {
        cursor += 1;
    }
    let value = &rest[cursor..];
    let value_end = |text: &str| {
        text.find(|c: char| {
            c.is_whitespace() || matches!(c, '"' | '\'' | '&' | ';' | ',' | ')' | '}')
        })
        .unwrap_or(text.len())
    };
    let mut value_len = value_end(value);
    if rest[..key_len]
        .to_ascii_lowercase()
        .contains("authorization")
    {
        // `Authorization: <scheme> <credential>`: the credential goes with its scheme.
        let scheme = value[..value_len].to_ascii_lowercase();
        let after = &value[value_len..];
        let spaces = after.len() - after.trim_start_matches([' ', '\t']).len();
        if AUTH_SCHEMES.contains(&scheme.as_str()) && spaces > 0 {
            value_len += spaces + value_end(&after[spaces..]);
        }
    }
    (value_len > 0).then_some(SecretSpan {
        keep: at + cursor,
        end: at + cursor + value_len,
    })
}

/// `name=value` pairs as in a Cookie header.
fn looks_like_cookie(text: &str) -> bool {
    text.split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .any(|pair| {
            pair.split_once('=').is_some_and(|(name, value)| {
                !name.is_empty() && !name.contains(' ') && value.len() >= 8 && !value.contains(' ')
            })
        })
}

fn looks_like_local_path(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    text.starts_with('/')
        || text.starts_with("~/")
        || text.starts_with("./")
        || text.starts_with("../")
        || lower.starts_with("file:")
        || text
            .get(1..3)
            .is_some_and(|drive| drive == ":\\" || drive == ":/")
        || text.starts_with("\\\\")
        || ["/home/", "/root/", "/users/", "/tmp/", "/var/", "\\users\\"]
            .iter()
            .any(|part| lower.contains(part))
        || lower.ends_with(".yaml")
        || lower.ends_with(".yml")
        || lower.ends_with(".sqlite3")
        || lower.ends_with(".key")
}

/// Replaces every account-id-shaped run (`DU`, `DF`, `U`, `F` or `I` + 3..12 digits, not inside
/// a longer word) with `acct#<hash>`. Returns the text and whether anything changed.
pub fn replace_account_ids(text: &str, hash_account: &dyn Fn(&str) -> String) -> (String, bool) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut index = 0;
    while index < chars.len() {
        let boundary_before = index == 0 || !chars[index - 1].is_ascii_alphanumeric();
        if boundary_before && let Some(length) = account_id_at(&chars[index..]) {
            let id: String = chars[index..index + length].iter().collect();
            out.push_str("acct#");
            out.push_str(&hash_account(&id));
            changed = true;
            index += length;
            continue;
        }
        out.push(chars[index]);
        index += 1;
    }
    (out, changed)
}

fn account_id_at(chars: &[char]) -> Option<usize> {
    let prefix = if chars.starts_with(&['D', 'U']) || chars.starts_with(&['D', 'F']) {
        2
    } else if matches!(chars.first(), Some('U' | 'F' | 'I')) {
        1
    } else {
        return None;
    };
    let digits = chars[prefix..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let end = prefix + digits;
    let boundary_after = chars.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
    ((3..=12).contains(&digits) && boundary_after).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hasher(id: &str) -> String {
        format!("h{}", id.len())
    }

    fn run(value: Value) -> Redacted {
        redact(&value, &hasher)
    }

    #[test]
    fn sensitive_keys_are_removed_whatever_their_value() {
        let redacted =
            run(json!({"Authorization": "x", "api-key": 5, "nested": {"session_id": "abc"}}));
        let text = redacted.value().to_string();
        assert!(!text.contains("\"x\"") && !text.contains("abc"), "{text}");
        assert_eq!(redacted.redactions().len(), 3);
        assert_eq!(redacted.redactions()[2].path, "nested.session_id");
    }

    #[test]
    fn secret_looking_values_and_paths_are_removed() {
        for value in [
            "Bearer abc.def",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "sk_live_51H8xYzABCDEFGHIJKLMNOPQRSTuvw",
            "x-sess-id=0123456789abcdef; path=/",
            "/home/alice/.config/ibkr.yaml",
            "C:\\Users\\alice\\key.txt",
            "config/local.yaml",
        ] {
            let redacted = run(json!({ "arg": value }));
            assert_eq!(redacted.value()["arg"], REDACTED, "{value}");
        }
        for value in [
            "AAPL",
            "STK",
            "buy 100 at 189.50",
            "2026-11-27T09:00:00Z",
            "ibkr:accounts:read",
        ] {
            assert_eq!(
                run(json!({ "arg": value })).value()["arg"],
                value,
                "{value}"
            );
        }
    }

    #[test]
    fn secrets_inside_longer_text_are_removed_and_the_text_around_them_kept() {
        let cases = [
            (
                "curl -H 'Authorization: Bearer abc123.def' https://x",
                "abc123.def",
            ),
            (
                "header Authorization: Basic dXNlcjpwYXNzd29yZA== sent",
                "dXNlcjpwYXNzd29yZA",
            ),
            ("use bearer Zm9vYmFy now", "Zm9vYmFy"),
            ("login with password=hunter2secret please", "hunter2secret"),
            ("cfg: db_password: 'c0rrect-h0rse' ok", "c0rrect-h0rse"),
            ("token=abcdef0123 and more", "abcdef0123"),
            ("?secret=s3cr3tvalue&x=1", "s3cr3tvalue"),
            ("API_KEY = k-998877665544", "k-998877665544"),
            (
                "clone https://alice:pa55word@github.com/x/y.git",
                "pa55word",
            ),
            (
                "db postgres://svc:Sup3rS3cret@db.internal:5432/prod",
                "Sup3rS3cret",
            ),
            (
                "key sk-live-4eC39HqLyjWDarjtT1zdp7dc here",
                "4eC39HqLyjWDarjtT1zdp7dc",
            ),
            (
                "openai sk-proj-abcdefghijklmnop1234",
                "abcdefghijklmnop1234",
            ),
            ("aws AKIAIOSFODNN7EXAMPLE key", "IOSFODNN7EXAMPLE"),
            ("aws ASIAY34FZKBOKMUTVV7A temp", "Y34FZKBOKMUTVV7A"),
            ("slack xoxb-1234567890-abcdefghij", "1234567890-abcdefghij"),
            ("slack xoxp-9876543210-zyxwvutsrq", "9876543210-zyxwvutsrq"),
            (
                "gh ghp_16C7e42F292c6912E7710c838347Ae178B4a",
                "16C7e42F292c6912E7710c838347Ae178B4a",
            ),
            (
                "key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\nbye",
                "b3BlbnNzaC1rZXktdjEAAAAA",
            ),
            (
                "cut -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA",
                "MIIEowIBAAKCAQEA",
            ),
            (
                "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl end",
                "c2lnbmF0dXJl",
            ),
        ];
        for (text, secret) in cases {
            let redacted = run(json!({ "note": text }));
            let stored = redacted.value()["note"].as_str().unwrap().to_owned();
            assert!(!stored.contains(secret), "{text} -> {stored}");
            assert!(stored.contains(REDACTED), "{text} -> {stored}");
            assert_eq!(
                redacted.redactions()[0].reason,
                RedactionReason::SecretLikeValue
            );
        }
        // The text around the secret stays readable.
        assert_eq!(
            run(json!({"n": "login with password=hunter2 please"})).value()["n"],
            "login with password=[redacted] please"
        );
        assert_eq!(
            run(json!({"n": "see https://bob:pw@example.com/x"})).value()["n"],
            "see https://[redacted]@example.com/x"
        );
        // A secret in a key is removed too.
        let text = run(json!({"sk-live-4eC39HqLyjWDarjtT1zdp7dc": 1}))
            .value()
            .to_string();
        assert!(!text.contains("4eC39HqLyjWDarjtT1zdp7dc"), "{text}");
    }

    #[test]
    fn a_refused_input_keeps_only_its_length_hash_and_a_redacted_excerpt() {
        let key_block = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ".repeat(4)
        );
        let input = json!({ "since": key_block, "account": "DU1234567" });
        let redacted = redact_refused(&input, "ab12", &hasher);
        let text = redacted.value().to_string();
        assert!(!text.contains("b3BlbnNzaC1rZXktdjE"), "{text}");
        assert!(!text.contains("1234567"), "{text}");
        let summary = &redacted.value()["refused_input"];
        assert_eq!(summary["length"], input.to_string().chars().count());
        assert_eq!(summary["hmac_sha256"], "ab12");
        assert!(
            summary["excerpt"].as_str().unwrap().chars().count() <= REFUSED_EXCERPT_CHARS,
            "{text}"
        );
        assert!(
            redacted
                .redactions()
                .iter()
                .any(|r| r.reason == RedactionReason::RefusedInput)
        );
    }

    #[test]
    fn a_caller_cannot_forge_links_and_the_gateways_links_bypass_redaction() {
        let forged = run(json!({"links": {"approval_id": "apr_forged"}, "x": 1}));
        assert!(
            forged.value().get(LINKS_KEY).is_none(),
            "{:?}",
            forged.value()
        );
        let mut links = AuditLinks::default();
        links.link_preview(
            &crate::domain::ids::PreviewId::parse("prv_0190f5e2a3b47c8d9e0f1a2b3c4d5e6f").unwrap(),
        );
        let linked = forged.with_links(&links);
        assert_eq!(
            linked.value()[LINKS_KEY]["preview_id"],
            "prv_0190f5e2a3b47c8d9e0f1a2b3c4d5e6f"
        );
        assert_eq!(linked.value()["x"], 1);
    }

    #[test]
    fn a_caller_cannot_forge_the_principal_and_the_gateways_is_stored_as_it_is() {
        let forged = run(json!({"principal": {"kind": "operator"}, "x": 1}));
        assert!(
            forged.value().get(PRINCIPAL_KEY).is_none(),
            "{:?}",
            forged.value()
        );
        assert!(
            forged
                .redactions()
                .iter()
                .any(|r| r.path == PRINCIPAL_KEY && r.reason == RedactionReason::Omitted)
        );
        let recorded = forged.with_principal(PrincipalKind::Agent);
        assert_eq!(recorded.value()[PRINCIPAL_KEY], json!({"kind": "agent"}));
        assert_eq!(recorded.value()["x"], 1);
        // A nested field of the same name is the caller's, kept (and redacted) as input.
        let nested = run(json!({"order": {"principal": "someone"}}));
        assert_eq!(nested.value()["order"]["principal"], "someone");
        let wrapped = run(json!("text")).with_principal(PrincipalKind::System);
        assert_eq!(wrapped.value()["input"], "text");
        assert_eq!(wrapped.value()[PRINCIPAL_KEY]["kind"], "system");
    }

    #[test]
    fn the_gateways_own_ids_and_ordinary_text_are_kept() {
        for value in [
            "prv_0190f5e2a3b47c8d9e0f1a2b3c4d5e6f",
            "apr_0190f5e2a3b47c8d9e0f1a2b3c4d5e6f",
            "a basic limit order for the session",
            "the token bucket refilled",
            "https://example.com/path?x=1",
            "buy 100 AAPL at 189.50, see sk-learn",
            "ASIA markets open",
            "order-1.retry_2",
            "2026-11-27T09:00:00Z",
        ] {
            assert_eq!(run(json!({ "v": value })).value()["v"], value, "{value}");
        }
    }

    #[test]
    fn account_ids_are_hashed_in_keys_and_values() {
        let redacted =
            run(json!({"account": "DU1234567", "note": "move U7654321 cash", "DF123456": 1}));
        let text = redacted.value().to_string();
        assert!(
            !text.contains("1234567") && !text.contains("7654321") && !text.contains("123456\""),
            "{text}"
        );
        assert_eq!(redacted.value()["account"], "acct#h9");
        assert_eq!(redacted.value()["note"], "move acct#h8 cash");
        assert!(
            redacted
                .redactions()
                .iter()
                .all(|r| r.reason == RedactionReason::AccountId)
        );
        // Not inside longer words.
        assert_eq!(run(json!({"a": "SKU12345"})).value()["a"], "SKU12345");
    }

    #[test]
    fn size_is_bounded() {
        let long = "a ".repeat(400);
        let redacted = run(
            json!({"text": long, "list": (0..100).collect::<Vec<_>>(), "deep": {"a": {"b": {"c": {"d": 1}}}}}),
        );
        assert_eq!(
            redacted.value()["text"].as_str().unwrap().chars().count(),
            MAX_STRING_CHARS
        );
        assert_eq!(
            redacted.value()["list"].as_array().unwrap().len(),
            MAX_ENTRIES
        );
        assert_eq!(redacted.value()["deep"]["a"]["b"]["c"], "[omitted]");
    }
}
