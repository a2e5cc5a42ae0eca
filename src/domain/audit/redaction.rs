//! Redaction at write time: what may never reach the audit store is removed before an event
//! exists.
//!
//! Removed: values under sensitive keys (tokens, cookies, authorization, passwords, session
//! material), values that look like credentials (bearer and basic credentials, JWTs, long
//! opaque tokens, cookie pairs), and local filesystem paths. Account ids anywhere, in keys or
//! values, are replaced by their keyed hash. Everything is bounded in depth, width and length.

use serde_json::{Map, Value};

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
                let (safe_key, key_changed) = replace_account_ids(key, hash_account);
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
            let (text, changed) = replace_account_ids(text, hash_account);
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
}

/// Why a string must not be stored at all, if it must not.
pub fn classify_secret(text: &str) -> Option<RedactionReason> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("bearer ") || lower.starts_with("basic ") || lower.starts_with("token ") {
        return Some(RedactionReason::SecretLikeValue);
    }
    if looks_like_jwt(trimmed) || looks_like_opaque_token(trimmed) || looks_like_cookie(trimmed) {
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
