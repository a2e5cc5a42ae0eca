//! Release hygiene: the package (`cargo package --list`) holds exactly the files in the
//! checked-in `package-files.txt`, and none of them is local state, a secret or an editor
//! file; `ibkr-agent version --json` names the commit, target, profile and features the binary
//! was built from, without reading the configuration.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The files the package is expected to hold, one path a line, sorted.
const EXPECTED_LIST: &str = "tests/contract/package-files.txt";

/// Set to `1` to rewrite [`EXPECTED_LIST`] from what cargo packages now.
const UPDATE_SWITCH: &str = "IBKR_UPDATE_PACKAGE_LIST";

/// What `build.rs` counts as the binary's inputs; `git_dirty` is about these only.
const BUILD_INPUTS: [&str; 5] = ["src", "migrations", "build.rs", "Cargo.toml", "Cargo.lock"];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The paths `cargo package` would put in the tarball, sorted. `.cargo_vcs_info.json` is left
/// out: cargo writes it only when packaging from a git checkout.
fn packaged_files() -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .current_dir(manifest_dir())
        .args([
            "package",
            "--list",
            "--allow-dirty",
            "--offline",
            "--locked",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo package --list failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut files: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .filter(|path| path != ".cargo_vcs_info.json")
        .collect();
    files.sort();
    files
}

fn update_requested() -> bool {
    #[allow(clippy::disallowed_methods)] // a test reads its own switch
    let switch = std::env::var_os(UPDATE_SWITCH);
    switch.is_some_and(|value| value == "1")
}

/// Why `path` must never be packaged, if it is local state, a secret, an editor or OS file,
/// a build directory, or a configuration file other than a committed example.
fn local_state_reason(path: &str) -> Option<&'static str> {
    let components: Vec<&str> = path.split('/').collect();
    let name = components.last().copied().unwrap_or(path);
    let directories = &components[..components.len().saturating_sub(1)];
    if let Some(directory) = directories.iter().find(|directory| {
        matches!(
            **directory,
            "target"
                | "node_modules"
                | ".venv"
                | ".idea"
                | ".vscode"
                | ".claude"
                | ".cursor"
                | ".codex"
                | ".aider"
                | ".ibkr-agent"
                | ".git"
        )
    }) {
        return Some(match *directory {
            "target" | "node_modules" | ".venv" => "a build or tool directory",
            ".idea" | ".vscode" => "editor settings",
            ".claude" | ".cursor" | ".codex" | ".aider" => "a local agent directory",
            _ => "local state",
        });
    }
    let extension = name.rsplit_once('.').map(|(_, extension)| extension);
    if name.contains(".sqlite3") || matches!(extension, Some("sqlite" | "db")) {
        return Some("a database (audit or workflow state)");
    }
    if matches!(extension, Some("key" | "pem" | "p12" | "pfx")) {
        return Some("key material");
    }
    if extension == Some("jsonl") {
        return Some("JSON-lines state (checkpoints, exports)");
    }
    if matches!(extension, Some("token" | "cookie" | "cookies")) || name.contains("cookies") {
        return Some("broker session material or a token");
    }
    if name == "client-portal-pacing.json" {
        return Some("the shared pacing state (state directory)");
    }
    if name == ".env" || name.starts_with(".env.") {
        return Some("an environment file (secrets)");
    }
    if matches!(extension, Some("swp" | "swo")) || name.ends_with('~') || name.starts_with(".#") {
        return Some("an editor file");
    }
    if name == ".DS_Store" {
        return Some("an OS file");
    }
    if matches!(extension, Some("yaml" | "yml")) && !name.ends_with(".example.yaml") {
        return Some("a configuration file (only *.example.yaml are shipped)");
    }
    if extension == Some("toml") && !matches!(name, "Cargo.toml" | "clippy.toml") {
        return Some("a configuration file (only *.example.yaml are shipped)");
    }
    None
}

fn assert_no_local_state(files: &[String]) {
    let offending: Vec<String> = files
        .iter()
        .filter_map(|path| local_state_reason(path).map(|reason| format!("  {path}: {reason}")))
        .collect();
    assert!(
        offending.is_empty(),
        "the package would ship files that must stay local; narrow the `include` list in \
         Cargo.toml (or delete the stray files):\n{}",
        offending.join("\n")
    );
}

/// What differs between the expected list and the packaged files, as a message naming both
/// sides and how to update the list; `None` when they agree.
fn list_mismatch(expected: &[String], packaged: &[String]) -> Option<String> {
    let expected: BTreeSet<&String> = expected.iter().collect();
    let packaged: BTreeSet<&String> = packaged.iter().collect();
    let extra: Vec<&str> = packaged
        .difference(&expected)
        .map(|path| path.as_str())
        .collect();
    let missing: Vec<&str> = expected
        .difference(&packaged)
        .map(|path| path.as_str())
        .collect();
    if extra.is_empty() && missing.is_empty() {
        return None;
    }
    let mut message = format!("`cargo package --list` differs from {EXPECTED_LIST}\n");
    if !extra.is_empty() {
        message.push_str("packaged but not listed:\n");
        for path in &extra {
            message.push_str(&format!("  + {path}\n"));
        }
    }
    if !missing.is_empty() {
        message.push_str("listed but not packaged:\n");
        for path in &missing {
            message.push_str(&format!("  - {path}\n"));
        }
    }
    message.push_str(&format!(
        "If the change is intended, rewrite the list and review its diff:\n  \
         {UPDATE_SWITCH}=1 cargo test --test contract release:: && git diff {EXPECTED_LIST}\n\
         Otherwise fix the `include` list in Cargo.toml or remove the stray files."
    ));
    Some(message)
}

#[test]
fn the_package_holds_exactly_the_listed_files() {
    let packaged = packaged_files();
    // Checked before anything is written, so regenerating the list cannot bless a secret.
    assert_no_local_state(&packaged);
    let list_path = manifest_dir().join(EXPECTED_LIST);
    if update_requested() {
        std::fs::write(&list_path, format!("{}\n", packaged.join("\n"))).unwrap();
        eprintln!(
            "{UPDATE_SWITCH}=1: rewrote {EXPECTED_LIST}; review `git diff` before committing"
        );
        return;
    }
    let text = std::fs::read_to_string(&list_path).unwrap_or_default();
    let expected: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut sorted = expected.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        expected, sorted,
        "{EXPECTED_LIST} must be sorted without duplicates; rewrite it with {UPDATE_SWITCH}=1"
    );
    if let Some(message) = list_mismatch(&expected, &packaged) {
        panic!("{message}");
    }
}

#[test]
fn the_package_keeps_the_files_a_reviewer_relies_on() {
    let packaged = packaged_files();
    for needed in [
        "Cargo.lock",
        "build.rs",
        "src/lib.rs",
        "src/bin/ibkr-agent.rs",
        "migrations/audit/V1__audit_events.sql",
        "config/paper.example.yaml",
        "docs/adr/0019-publication-and-release-checks.md",
        EXPECTED_LIST,
    ] {
        assert!(
            packaged.iter().any(|path| path == needed),
            "{needed} is missing from the package"
        );
    }
}

#[test]
fn local_state_secrets_and_editor_files_are_recognised() {
    for path in [
        "audit.sqlite3",
        "state/workflow.sqlite3-wal",
        "audit-hmac.key",
        "config/audit-signing.key",
        "tls/server.pem",
        "audit-checkpoints.jsonl",
        "exports/2026-11.jsonl",
        ".env",
        "config/.env.live",
        "src/.lib.rs.swp",
        "README.md~",
        "src/.#lib.rs",
        ".idea/workspace.xml",
        ".claude/settings.local.json",
        "state/client-portal-pacing.json",
        "gateway/cookies.txt",
        "ibkr.token",
        ".vscode/settings.json",
        "target/debug/ibkr-agent",
        "docs/.DS_Store",
        ".ibkr-agent/audit.sqlite3",
        "tools/mcp-e2e/.venv/bin/python",
        "config/live.yaml",
        "config/paper.yml",
        "ibkr-agent.toml",
    ] {
        assert!(
            local_state_reason(path).is_some(),
            "{path} should be refused"
        );
    }
    for path in [
        "Cargo.toml",
        "Cargo.toml.orig",
        "clippy.toml",
        "config/live.example.yaml",
        "src/adapters/outbound/key_file_secrets.rs",
        "docs/operations/audit-retention.md",
        "tests/contract/fixtures/client_portal/tickle_usable.json",
        "tests/contract/snapshots/contract__mcp__mcp_tool_surface.snap",
    ] {
        assert_eq!(local_state_reason(path), None, "{path} should be allowed");
    }
    assert!(std::panic::catch_unwind(|| assert_no_local_state(&["a/.env".to_owned()])).is_err());
}

#[test]
fn a_mismatch_names_the_extra_and_missing_files_and_the_update_switch() {
    let expected = vec!["README.md".to_owned(), "src/lib.rs".to_owned()];
    let packaged = vec!["src/lib.rs".to_owned(), "src/scratch.rs".to_owned()];
    let message = list_mismatch(&expected, &packaged).unwrap();
    assert!(message.contains("  + src/scratch.rs"), "{message}");
    assert!(message.contains("  - README.md"), "{message}");
    assert!(!message.contains("src/lib.rs"), "{message}");
    assert!(message.contains(UPDATE_SWITCH), "{message}");
    assert_eq!(list_mismatch(&expected, &expected), None);
}

/// `git` in the package root, when it is a checkout of its own and git answers.
fn git(arguments: &[&str]) -> Option<String> {
    if !manifest_dir().join(".git").exists() {
        return None;
    }
    let output = Command::new("git")
        .arg("-C")
        .arg(manifest_dir())
        .args(arguments)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Runs `ibkr-agent version` with a configuration file that does not parse: the command must
/// not read it.
fn version(json: bool) -> (i32, String) {
    let directory = tempfile::tempdir().unwrap();
    let config = directory.path().join("broken.yaml");
    std::fs::write(&config, "broker: [this is not: a configuration\n").unwrap();
    let mut command = assert_cmd::Command::cargo_bin("ibkr-agent").unwrap();
    command
        .arg("--config")
        .arg(&config)
        .arg("version")
        .env("IBKR_AGENT_STATE_DIR", directory.path().join("state"));
    if json {
        command.arg("--json");
    }
    let output = command.output().unwrap();
    assert!(
        !directory.path().join("state").exists(),
        "version must not create any state"
    );
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
    )
}

#[test]
fn version_json_names_the_build_without_reading_the_configuration() {
    let (code, stdout) = version(true);
    assert_eq!(code, 0, "{stdout}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    let fields: BTreeSet<&str> = document
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "version",
            "git_commit",
            "git_dirty",
            "target",
            "profile",
            "features"
        ])
    );
    assert_eq!(document["version"], env!("CARGO_PKG_VERSION"));

    let commit = document["git_commit"].as_str().unwrap();
    match git(&["rev-parse", "HEAD"]) {
        Some(head) => {
            assert_eq!(commit, head, "the binary names a stale or wrong commit");
            let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
            status.extend(BUILD_INPUTS);
            let changed = git(&status).unwrap();
            assert_eq!(
                document["git_dirty"],
                !changed.is_empty(),
                "git_dirty disagrees with `git status` of the build inputs:\n{changed}"
            );
        }
        None => {
            assert!(
                commit == "unknown"
                    || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
                "{commit}"
            );
        }
    }

    let target = document["target"].as_str().unwrap();
    assert!(
        target.split('-').count() >= 3,
        "not a target triple: {target}"
    );
    let expected_profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    assert_eq!(document["profile"], expected_profile);

    // The features this test binary was built with are the package's features, so the
    // binary built beside it has them too.
    let features: Vec<&str> = document["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|feature| feature.as_str().unwrap())
        .collect();
    let mut expected_features = Vec::new();
    if cfg!(feature = "unstable-internal-test-support") {
        expected_features.push("unstable-internal-test-support");
    }
    assert_eq!(features, expected_features);
}

#[test]
fn version_without_json_is_one_line_naming_version_and_commit() {
    let (code, stdout) = version(false);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(stdout.trim_end().lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "ibkr-agent {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
    if let Some(head) = git(&["rev-parse", "HEAD"]) {
        assert!(stdout.contains(&head), "{stdout}");
    }
}
