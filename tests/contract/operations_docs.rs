//! The operator's documents (`docs/operations/`) against the code: every `ibkr-agent` command in
//! their `sh` blocks runs against the real binary on the fake broker and must exit as the page
//! says, every configuration key and error code they name must exist, and every relative link
//! (heading included) must resolve.
//!
//! Conventions the pages follow (and this test enforces):
//! - A command runs with exit status 0 unless the line directly above it says `# exits N`.
//! - A command that needs a real broker has `# needs a real broker` directly above it and is
//!   skipped; there may be at most [`MAX_REAL_BROKER_COMMANDS`] of them.
//! - `<NAME>` placeholders are filled from [`Sandbox::placeholder`]: fixed values of the sandbox,
//!   or values an earlier command of the same page printed (a preview id, a public key).
//! - Lines that run other programs must start with one of [`OTHER_PROGRAMS`]; they are not run.
//! - A backticked dotted lower-case name (`audit.sqlite_path`) is a configuration key, and a
//!   backticked UPPER_SNAKE name is an error code, unless it starts with `IBKR_` (an
//!   environment variable).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ibkr_agent_gateway::app::config::Settings;
use ibkr_agent_gateway::app::startup_error::StartupError;
use ibkr_agent_gateway::domain::error_code::ErrorCode;
use regex::Regex;
use tempfile::TempDir;

/// The four operator documents.
const DOCUMENTS: [&str; 4] = [
    "docs/operations/production-readiness.md",
    "docs/operations/paper-to-live.md",
    "docs/operations/live-runbook.md",
    "docs/operations/audit-retention.md",
];

/// The most commands the four pages may leave untested as needing a real broker.
const MAX_REAL_BROKER_COMMANDS: usize = 6;

/// Programs other than `ibkr-agent` a page may show; their lines are not run.
const OTHER_PROGRAMS: &[&str] = &["cargo", "git", "sha256sum", "scp"];

/// The marker of a command that is not run.
const REAL_BROKER_MARKER: &str = "# needs a real broker";

/// A test-only deployment audit key (at least 32 bytes), also used as the "old" key of the
/// rotation example.
const DEPLOYMENT_KEY: &str = "operations-docs-deployment-audit-key-0123456789";

/// A test-only audit signing secret (at least 32 bytes).
const SIGNING_SECRET: &str = "operations-docs-audit-signing-secret-0123456789";

/// The fake broker's paper and live accounts.
const PAPER_ACCOUNT: &str = "DU1234567";
const LIVE_ACCOUNT: &str = "U7654321";

/// One `ibkr-agent` line of a page.
#[derive(Debug)]
struct DocCommand {
    /// `path:line`, for messages.
    origin: String,
    /// The words after `ibkr-agent`, shell-split, placeholders unfilled.
    words: Vec<String>,
    /// What the line above it says.
    marker: Marker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    /// Runs, and must exit with this status.
    Exits(i32),
    /// `# needs a real broker`: not run.
    RealBroker,
}

fn read_document(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The logical lines of every ```sh block (continuations joined), with their line numbers.
fn shell_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if !in_block {
            in_block = trimmed == "```sh";
            continue;
        }
        if trimmed.starts_with("```") {
            in_block = false;
            assert!(
                pending.is_none(),
                "line {}: a continuation ends the block",
                index + 1
            );
            continue;
        }
        let (number, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((number, joined));
            }
            None => {
                joined.push_str(trimmed);
                lines.push((number, joined));
            }
        }
    }
    assert!(!in_block, "a ```sh block is not closed");
    lines
}

/// Splits a line as a POSIX shell would for the simple lines the pages use: whitespace
/// separates words, quotes group, `\` escapes outside single quotes, and an unquoted `#` at
/// the start of a word starts a comment. Expansions (`$`, backquotes) are kept as text; an
/// `ibkr-agent` line that holds one is refused when it runs.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        match character {
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' if !in_word => break,
            '\'' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('\'') => break,
                        Some(inner) => word.push(inner),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match characters.next() {
                        Some('"') => break,
                        Some('\\') => match characters.next() {
                            Some(escaped @ ('"' | '\\' | '$' | '`')) => word.push(escaped),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err("unclosed double quote".into()),
                        },
                        Some(inner) => word.push(inner),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.extend(characters.next());
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// Every `ibkr-agent` command of a page, with its marker; other lines are checked against
/// [`OTHER_PROGRAMS`].
fn document_commands(relative: &str) -> Vec<DocCommand> {
    let text = read_document(relative);
    let mut commands = Vec::new();
    let mut previous = String::new();
    for (number, line) in shell_lines(&text) {
        let origin = format!("{relative}:{number}");
        let marker_line = std::mem::replace(&mut previous, line.clone());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = shell_words(&line).unwrap_or_else(|error| panic!("{origin}: {error}"));
        let program = words
            .iter()
            .find(|word| !is_assignment(word))
            .unwrap_or_else(|| panic!("{origin}: no program on the line"));
        if program != "ibkr-agent" {
            assert!(
                OTHER_PROGRAMS.contains(&program.as_str()),
                "{origin}: `{program}` is neither ibkr-agent nor one of {OTHER_PROGRAMS:?}"
            );
            continue;
        }
        assert_eq!(
            words[0], "ibkr-agent",
            "{origin}: an ibkr-agent line takes no environment assignments; use a placeholder"
        );
        let marker = if marker_line == REAL_BROKER_MARKER {
            Marker::RealBroker
        } else if let Some(status) = marker_line.strip_prefix("# exits ") {
            Marker::Exits(
                status
                    .split_whitespace()
                    .next()
                    .and_then(|status| status.parse().ok())
                    .unwrap_or_else(|| panic!("{origin}: unreadable `{marker_line}`")),
            )
        } else {
            Marker::Exits(0)
        };
        commands.push(DocCommand {
            origin,
            words: words[1..].to_vec(),
            marker,
        });
    }
    commands
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    })
}

/// A state directory, a configuration with paper and live trading on the fake broker, a
/// working directory for the files the pages write, and the values earlier commands printed.
struct Sandbox {
    root: TempDir,
    config: PathBuf,
    captured: BTreeMap<&'static str, String>,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        for directory in ["state", "work", "home"] {
            std::fs::create_dir_all(root.path().join(directory)).unwrap();
        }
        let audit = root.path().join("state/audit.sqlite3");
        let config = root.path().join("gateway.yaml");
        std::fs::write(
            &config,
            format!(
                "broker:\n  backend: fake\n\
                 auth:\n  enabled_scopes: [ibkr:health:read, ibkr:accounts:read, \
                 ibkr:portfolio:read, ibkr:positions:read, ibkr:marketdata:read, \
                 ibkr:orders:read, ibkr:risk:read, ibkr:audit:read, ibkr:audit:export, \
                 ibkr:orders:preview, ibkr:orders:paper:submit, ibkr:orders:paper:modify, \
                 ibkr:orders:paper:cancel, ibkr:orders:live:submit, ibkr:orders:live:cancel, \
                 ibkr:orders:live:modify, ibkr:orders:live:bracket:submit, ibkr:killswitch]\n\
                 audit:\n  sqlite_path: {audit}\n  live_write_retention_days: 2555\n\
                 paper_trading:\n  enabled: true\n  allowed_accounts: [{PAPER_ACCOUNT}]\n\
                 \x20 writer: local_candidate\n\
                 safety:\n  live_trading_enabled: true\n\
                 live_trading:\n  enabled: true\n  allowed_accounts: [{LIVE_ACCOUNT}]\n\
                 \x20 risk_policy_id: main\n  paper_to_live_checklist_acknowledged: true\n\
                 \x20 writer: local_candidate\n\
                 \x20 policies:\n    main:\n      currency: USD\n      max_notional: \"5000\"\n\
                 \x20     max_quantity: \"20\"\n      allowed_symbols: [AAPL]\n\
                 \x20     allowed_asset_classes: [STK]\n\
                 \x20     frequency: {{max_orders: 5, window_seconds: 60}}\n\
                 \x20     session: {{max_orders: 20, max_notional: \"20000\"}}\n\
                 \x20     max_price_deviation_bps: 500\n      max_quote_age_seconds: 60\n",
                audit = audit.display(),
            ),
        )
        .unwrap();
        Self {
            root,
            config,
            captured: BTreeMap::new(),
        }
    }

    fn path(&self, relative: &str) -> String {
        self.root.path().join(relative).display().to_string()
    }

    /// The value of `<NAME>`: fixed by the sandbox, or printed by an earlier command.
    fn placeholder(&self, name: &str) -> Option<String> {
        let fixed = match name {
            "CONFIG" | "PAPER_CONFIG" => self.config.display().to_string(),
            "PAPER_ACCOUNT" => PAPER_ACCOUNT.to_owned(),
            "LIVE_ACCOUNT" => LIVE_ACCOUNT.to_owned(),
            "AUDIT_DB" | "OLD_AUDIT_DB" => self.path("state/audit.sqlite3"),
            "CHECKPOINT_FILE" => self.path("state/audit-checkpoints.jsonl"),
            // After every event of the sandbox: the purge example purges up to the page's
            // last checkpoint.
            "DATE" => "2999-01-01".to_owned(),
            _ => return self.captured.get(name).cloned(),
        };
        Some(fixed)
    }

    fn fill(&self, origin: &str, word: &str) -> String {
        static PLACEHOLDER: std::sync::LazyLock<Regex> =
            std::sync::LazyLock::new(|| Regex::new(r"<([A-Z_]+)>").unwrap());
        PLACEHOLDER
            .replace_all(word, |found: &regex::Captures<'_>| {
                self.placeholder(&found[1]).unwrap_or_else(|| {
                    panic!(
                        "{origin}: no value for <{}>: neither fixed by the test nor printed by an \
                         earlier command of the page",
                        &found[1]
                    )
                })
            })
            .into_owned()
    }

    /// Remembers the ids, heads and keys a command printed, for later placeholders.
    fn capture(&mut self, output: &str) {
        static CAPTURES: std::sync::LazyLock<Vec<(&'static str, Regex, bool)>> =
            std::sync::LazyLock::new(|| {
                [
                    ("PREVIEW_ID", r"(prv_[0-9a-f]{32})", false),
                    ("APPROVAL_ID", r"(apr_[0-9a-f]{32})", false),
                    ("ORDER_ID", r#""order_id"\s*:\s*"([^"]+)""#, false),
                    ("CHAIN_HEAD", r#""chain_head"\s*:\s*"([0-9a-f]{64})""#, true),
                    ("LAST_SEQUENCE", r#""last_sequence"\s*:\s*([0-9]+)"#, true),
                    (
                        "PUBLIC_KEY",
                        r#"public_key"?\s*[:\s]\s*"?([0-9a-f]{64})"#,
                        false,
                    ),
                ]
                .into_iter()
                .map(|(name, pattern, last)| (name, Regex::new(pattern).unwrap(), last))
                .collect()
            });
        for (name, pattern, last) in CAPTURES.iter() {
            let mut found = pattern.captures_iter(output).map(|c| c[1].to_owned());
            let value = if *last { found.last() } else { found.next() };
            if let Some(value) = value {
                self.captured.insert(name, value);
            }
        }
    }

    /// Runs one command as a page shows it; returns its exit status, or a message.
    fn run(&mut self, command: &DocCommand) -> Result<i32, String> {
        let origin = &command.origin;
        let mut arguments = Vec::new();
        let mut redirect = None;
        let mut words = command.words.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                ">" => {
                    let target = words
                        .next()
                        .ok_or_else(|| format!("{origin}: `>` without a file"))?;
                    redirect = Some(
                        self.root
                            .path()
                            .join("work")
                            .join(self.fill(origin, target)),
                    );
                }
                "|" | "||" | "&&" | ";" | "<" | ">>" | "2>" | "&" => {
                    return Err(format!(
                        "{origin}: `{word}` is not supported in a page command"
                    ));
                }
                _ if word.contains('$') || word.contains('`') => {
                    return Err(format!("{origin}: shell expansion in `{word}`"));
                }
                _ => arguments.push(self.fill(origin, word)),
            }
        }
        let output = assert_cmd::Command::new(env!("CARGO_BIN_EXE_ibkr-agent"))
            .args(&arguments)
            .current_dir(self.root.path().join("work"))
            .env("IBKR_AGENT_STATE_DIR", self.path("state"))
            .env("HOME", self.path("home"))
            .env_remove("XDG_STATE_HOME")
            .env_remove("RUST_LOG")
            .env("IBKR_AUDIT_HMAC_SECRET", DEPLOYMENT_KEY)
            .env("IBKR_AUDIT_HMAC_SECRET_OLD", DEPLOYMENT_KEY)
            .env("IBKR_AUDIT_SIGNING_KEY", SIGNING_SECRET)
            .output()
            .map_err(|error| format!("{origin}: cannot run the binary: {error}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if let Some(path) = redirect {
            std::fs::write(&path, &output.stdout)
                .map_err(|error| format!("{origin}: cannot write {}: {error}", path.display()))?;
        }
        self.capture(&stdout);
        let status = output.status.code().unwrap_or(-1);
        if Marker::Exits(status) == command.marker {
            Ok(status)
        } else {
            Err(format!(
                "{origin}: `ibkr-agent {}` exited {status}, the page says {:?}\n\
                 stdout:\n{stdout}\nstderr:\n{}",
                arguments.join(" "),
                command.marker,
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }
}

#[test]
fn every_command_in_the_operator_documents_runs_as_documented() {
    let mut ran = 0;
    let mut real_broker = Vec::new();
    let mut failures = Vec::new();
    for document in DOCUMENTS {
        let commands = document_commands(document);
        assert!(
            !commands.is_empty(),
            "{document} shows no ibkr-agent command"
        );
        // Each page starts from a fresh state directory holding one event, as a deployment's
        // never is empty; its commands run in page order.
        let mut sandbox = Sandbox::new();
        let seed = DocCommand {
            origin: format!("{document} (seed)"),
            words: vec!["--config".into(), "<CONFIG>".into(), "health".into()],
            marker: Marker::Exits(0),
        };
        sandbox.run(&seed).unwrap();
        for command in &commands {
            if command.marker == Marker::RealBroker {
                real_broker.push(command.origin.clone());
                continue;
            }
            ran += 1;
            if let Err(failure) = sandbox.run(command) {
                failures.push(failure);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        real_broker.len() <= MAX_REAL_BROKER_COMMANDS,
        "{} commands need a real broker (at most {MAX_REAL_BROKER_COMMANDS}): {real_broker:?}",
        real_broker.len()
    );
    assert!(
        ran >= 30,
        "only {ran} commands ran; the extraction is broken"
    );
}

/// The backticked spans of a page's prose (fenced blocks left out).
fn inline_code(text: &str) -> Vec<String> {
    static SPAN: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"`([^`\n]+)`").unwrap());
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    SPAN.captures_iter(&prose)
        .map(|found| found[1].to_owned())
        .collect()
}

/// File names that look like dotted keys.
const FILE_EXTENSIONS: &[&str] = &[
    "md", "rs", "yaml", "yml", "json", "jsonl", "key", "toml", "txt", "sh",
];

fn is_config_key_shaped(span: &str) -> bool {
    static KEY: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$").unwrap());
    KEY.is_match(span)
        && !span
            .rsplit('.')
            .next()
            .is_some_and(|extension| FILE_EXTENSIONS.contains(&extension))
}

fn is_code_shaped(span: &str) -> bool {
    static CODE: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$").unwrap());
    CODE.is_match(span) && !span.starts_with("IBKR_")
}

/// True when the configuration parser knows `key`: some value of it parses, or is refused
/// as a bad value of that very key (never as an unknown field).
fn config_key_exists(key: &str) -> bool {
    const CANDIDATES: &[&str] = &[
        "true",
        "30",
        "2555",
        "\"x\"",
        "[]",
        "{}",
        "\"https://localhost:5000/v1/api\"",
    ];
    let segments: Vec<&str> = key.split('.').collect();
    CANDIDATES.iter().any(|value| {
        let mut yaml = String::new();
        for (depth, segment) in segments.iter().enumerate() {
            let indent = "  ".repeat(depth);
            if depth + 1 == segments.len() {
                yaml.push_str(&format!("{indent}{segment}: {value}\n"));
            } else {
                yaml.push_str(&format!("{indent}{segment}:\n"));
            }
        }
        match Settings::from_yaml(&yaml) {
            Ok(_) => true,
            Err(StartupError::Config { key_path, message }) => {
                !message.contains("unknown field")
                    && (key_path == key
                        || key_path.starts_with(&format!("{key}."))
                        || key_path.starts_with(&format!("{key}[")))
            }
            Err(_) => false,
        }
    })
}

#[test]
fn the_key_check_tells_known_keys_from_unknown_ones() {
    assert!(config_key_exists("audit.live_write_retention_days"));
    assert!(config_key_exists("live_trading.auto_halt.overfill"));
    assert!(config_key_exists("broker.base_url"));
    assert!(!config_key_exists("audit.no_such_key"));
    assert!(!config_key_exists("no_such_section.key"));
    assert!(!config_key_exists("audit.hmac_secret_env.extra"));
    assert!(
        ErrorCode::ALL
            .iter()
            .all(|code| !code.as_str().starts_with("IBKR_")),
        "a code starts with IBKR_, which the documents' check reads as an environment variable"
    );
}

#[test]
fn every_config_key_and_error_code_the_operator_documents_name_exists() {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    let mut keys_checked = 0;
    let mut codes_checked = 0;
    let mut unknown = Vec::new();
    for document in DOCUMENTS {
        for span in inline_code(&read_document(document)) {
            if is_config_key_shaped(&span) {
                keys_checked += 1;
                if !config_key_exists(&span) {
                    unknown.push(format!("{document}: configuration key `{span}`"));
                }
            } else if is_code_shaped(&span) {
                codes_checked += 1;
                if !codes.contains(&span.as_str()) {
                    unknown.push(format!("{document}: error code `{span}`"));
                }
            }
        }
    }
    assert!(unknown.is_empty(), "unknown names:\n{}", unknown.join("\n"));
    assert!(keys_checked >= 15, "only {keys_checked} keys found");
    assert!(codes_checked >= 20, "only {codes_checked} codes found");
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as `-`.
fn heading_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors_of(text: &str) -> Vec<String> {
    let mut anchors = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            anchors.push(heading_anchor(line.trim_start_matches('#')));
        }
    }
    anchors
}

#[test]
fn every_link_in_the_operator_documents_resolves() {
    static LINK: std::sync::LazyLock<Regex> =
        std::sync::LazyLock::new(|| Regex::new(r"\]\(([^)\s]+)\)").unwrap());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    let mut checked = 0;
    for document in DOCUMENTS {
        let path = root.join(document);
        let text = read_document(document);
        for found in LINK.captures_iter(&text) {
            let link = &found[1];
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            checked += 1;
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            let Ok(target_text) = std::fs::read_to_string(&target) else {
                broken.push(format!("{document}: `{link}`: no such file"));
                continue;
            };
            if !anchor.is_empty() && !anchors_of(&target_text).iter().any(|a| a == anchor) {
                broken.push(format!("{document}: `{link}`: no such heading"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 10, "only {checked} links found");
}
