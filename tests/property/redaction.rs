//! Redaction: secrets of every supported kind, embedded in random free text and sent through
//! the gateway as ordinary and as refused input, never reach the audit database or its WAL.
//!
//! Each secret's body starts with an upper-case letter and a digit, so it cannot appear by
//! chance in the lower-case surrounding text or in the hex hashes stored beside it: a hit in
//! the raw bytes is a leak.

use std::path::Path;
use std::sync::Arc;

use chrono::DateTime;
use ibkr_agent_gateway::adapters::outbound::clock::FixedClock;
use ibkr_agent_gateway::adapters::outbound::fake_broker::FakeBroker;
use ibkr_agent_gateway::adapters::outbound::sqlite_audit::SqliteAuditLog;
use ibkr_agent_gateway::app::Gateway;
use ibkr_agent_gateway::app::audited::CallContext;
use ibkr_agent_gateway::app::operation::{Operation, RawContractQuery};
use ibkr_agent_gateway::domain::audit::chain::ChainKey;
use ibkr_agent_gateway::domain::audit::redaction::WELL_KNOWN_TOKEN_PREFIXES;
use ibkr_agent_gateway::domain::secret::SecretBytes;
use proptest::prelude::*;

const KEY: &[u8; 32] = b"redaction-property-test-key-0001";

/// One embedded secret: the text to embed and the part that must never be stored.
#[derive(Debug, Clone)]
struct Secret {
    text: String,
    body: String,
}

/// A random secret body: distinctive (an upper-case letter and a digit first) and long.
fn body(extra: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = String> {
    let pattern = format!("[A-Z][0-9][A-Za-z0-9]{{{},{}}}", extra.start(), extra.end());
    proptest::string::string_regex(&pattern).unwrap()
}

fn bearer() -> impl Strategy<Value = Secret> {
    (
        body(12..=30),
        prop::sample::select(vec![
            "Authorization: Bearer ",
            "authorization: bearer ",
            "Bearer ",
        ]),
    )
        .prop_map(|(body, lead)| Secret {
            text: format!("{lead}{body}"),
            body,
        })
}

fn key_value() -> impl Strategy<Value = Secret> {
    (
        body(8..=24),
        prop::sample::select(vec![
            "password",
            "PASSWORD",
            "passwd",
            "db_password",
            "token",
            "access_token",
            "secret",
            "client_secret",
            "api_key",
            "apikey",
            "API-KEY",
            "private_key",
        ]),
        prop::sample::select(vec!["=", ": ", " = ", "=\"", ": '"]),
    )
        .prop_map(|(body, key, separator)| Secret {
            text: format!("{key}{separator}{body}"),
            body,
        })
}

fn url_userinfo() -> impl Strategy<Value = Secret> {
    (
        body(8..=20),
        prop::sample::select(vec![
            "https",
            "http",
            "postgres",
            "postgresql",
            "mysql",
            "redis",
            "amqp",
        ]),
        "[a-z]{3,8}",
        "[a-z]{3,10}",
        prop::sample::select(vec!["", "/db", ":5432/prod", "/path?x=1"]),
    )
        .prop_map(|(body, scheme, user, host, tail)| Secret {
            text: format!("{scheme}://{user}:{body}@{host}.example{tail}"),
            body,
        })
}

fn pem() -> impl Strategy<Value = Secret> {
    (
        body(24..=48),
        prop::sample::select(vec!["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]),
        any::<bool>(),
    )
        .prop_map(|(body, kind, complete)| {
            let end = if complete {
                format!("\n-----END {kind}PRIVATE KEY-----")
            } else {
                String::new()
            };
            Secret {
                text: format!("-----BEGIN {kind}PRIVATE KEY-----\n{body}\n{body}{end}"),
                body,
            }
        })
}

fn prefixed() -> impl Strategy<Value = Secret> {
    (
        prop::sample::select(WELL_KNOWN_TOKEN_PREFIXES.to_vec()),
        prop::sample::select(vec!["live-", "test_", "proj-", ""]),
        body(30..=40),
    )
        .prop_map(|((prefix, _), infix, body)| {
            let body = if prefix.starts_with("AKIA") || prefix.starts_with("ASIA") {
                // AWS access key ids are 16 upper-case letters and digits after the prefix.
                body.to_ascii_uppercase().chars().take(16).collect()
            } else if prefix.starts_with("sk") {
                format!("{infix}{body}")
            } else {
                body
            };
            Secret {
                text: format!("{prefix}{body}"),
                body,
            }
        })
}

fn any_secret() -> impl Strategy<Value = Secret> {
    prop_oneof![bearer(), key_value(), url_userinfo(), pem(), prefixed()]
}

/// Lower-case words around the secrets.
fn filler() -> impl Strategy<Value = String> {
    "[a-z ,.]{0,24}"
}

fn text_with(secrets: &[Secret], fillers: &[String]) -> String {
    let mut text = String::new();
    for (index, secret) in secrets.iter().enumerate() {
        text.push_str(fillers.get(index).map_or("", String::as_str));
        text.push(' ');
        text.push_str(&secret.text);
        text.push(' ');
    }
    text.push_str(fillers.last().map_or("", String::as_str));
    text
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Sends `text` as ordinary input (a contract search, a free-text filter) and as input refused
/// as invalid (a malformed timestamp, an unknown account), through a gateway whose audit log is
/// the SQLite file at `path`, and returns the bytes of that file and its `-wal`.
fn record(path: &Path, text: &str) -> Vec<(String, Vec<u8>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let secret = SecretBytes::new(KEY.to_vec());
        let audit = Arc::new(SqliteAuditLog::open(path, ChainKey::new(&secret).unwrap()).unwrap());
        let clock = Arc::new(FixedClock::new(
            DateTime::parse_from_rfc3339("2026-11-27T15:30:00Z")
                .unwrap()
                .into(),
        ));
        let gateway = Gateway::builder(Arc::new(FakeBroker::new(clock.clone())))
            .clock(clock)
            .key(secret)
            .audit_log(audit.clone())
            .build()
            .unwrap();
        let context = CallContext::sdk();
        let operations = [
            Operation::ContractsSearch(RawContractQuery {
                query: text.to_owned(),
                asset_class: None,
                currency: None,
                exchange: Some(text.to_owned()),
            }),
            Operation::ExecutionsList {
                account: "DU1234567".to_owned(),
                since: Some(text.to_owned()),
            },
            Operation::PositionsList {
                account: text.to_owned(),
            },
        ];
        for operation in operations {
            // Refusals are expected; every call is recorded either way.
            let _ = gateway.execute_as(&context, operation).await;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path.parent().unwrap()).unwrap() {
            let entry = entry.unwrap();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with(&name) && !file_name.ends_with("-shm") {
                files.push((file_name, std::fs::read(entry.path()).unwrap()));
            }
        }
        drop(gateway);
        files
    })
}

fn assert_nothing_survives(secrets: &[Secret], text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.sqlite3");
    let files = record(&path, text);
    assert!(
        files.iter().any(|(_, bytes)| contains(bytes, "[redacted]")),
        "the scan must see the stored rows"
    );
    assert!(
        files.iter().any(|(name, _)| name.ends_with("-wal")),
        "the WAL is scanned while the log is open"
    );
    for (name, bytes) in &files {
        for secret in secrets {
            assert!(
                !contains(bytes, &secret.body),
                "{name} holds the secret of {:?}",
                secret.text
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_secret_in_free_text_reaches_the_database_or_its_wal(
        secrets in prop::collection::vec(any_secret(), 1..=4),
        fillers in prop::collection::vec(filler(), 5),
    ) {
        let text = text_with(&secrets, &fillers);
        assert_nothing_survives(&secrets, &text);
    }
}

#[test]
fn one_secret_of_every_kind_is_removed() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut secrets = Vec::new();
    for strategy in [
        bearer().boxed(),
        key_value().boxed(),
        url_userinfo().boxed(),
        pem().boxed(),
    ] {
        secrets.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    for (prefix, _) in WELL_KNOWN_TOKEN_PREFIXES {
        let body = "Q7ZX9K2M4N6P8R1T";
        let body = if prefix.starts_with("AIza") || prefix.starts_with("npm_") {
            format!("{body}{body}")
        } else {
            body.to_owned()
        };
        secrets.push(Secret {
            text: format!("{prefix}{body}"),
            body,
        });
    }
    let text = text_with(&secrets, &["see ".to_owned(), "and then".to_owned()]);
    assert_nothing_survives(&secrets, &text);
}
