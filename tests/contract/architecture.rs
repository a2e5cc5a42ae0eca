//! The architecture test: dependencies point one way (`domain ← ports ← app ← adapters ← bin`)
//! and only the composition root names concrete adapters. Fails with a readable list.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Source text without comment lines and without the trailing `#[cfg(test)]` module, so prose
/// and unit tests may mention what production code must not use.
fn code_of(text: &str) -> String {
    text.lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Forbidden in `src/domain`: I/O crates, the process, the clock, randomness, outer layers.
const DOMAIN_FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "rusqlite",
    "refinery",
    "rmcp",
    "axum",
    "hyper",
    "tower",
    "clap",
    "serde_yaml",
    "getrandom",
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::thread",
    "SystemTime",
    "Instant::now",
    "Utc::now",
    "Local::now",
    "crate::ports",
    "crate::app",
    "crate::adapters",
];

/// Forbidden in `src/ports`: outer layers and I/O crates.
const PORTS_FORBIDDEN: &[&str] = &[
    "crate::app",
    "crate::adapters",
    "reqwest",
    "rusqlite",
    "axum",
    "rmcp",
    "clap",
    "std::fs",
];

/// Forbidden in `src/app` outside the composition root.
const APP_FORBIDDEN: &[&str] = &["crate::adapters", "reqwest", "rusqlite", "rmcp", "clap"];

fn violations_in(files: &[(String, String)], forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, text) in files {
        let code = code_of(text);
        for needle in forbidden {
            if contains_token(&code, needle) {
                found.push(format!("{name} uses `{needle}`"));
            }
        }
    }
    found
}

/// True when `needle` occurs as a whole path or identifier (not inside a longer name).
fn contains_token(code: &str, needle: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    code.match_indices(needle).any(|(start, _)| {
        let before = code[..start].chars().next_back();
        let after = code[start + needle.len()..].chars().next();
        before.is_none_or(|c| !is_ident(c)) && after.is_none_or(|c| !is_ident(c))
    })
}

fn load(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    rust_files(&root)
        .into_iter()
        .map(|path| (relative(&path), fs::read_to_string(&path).unwrap()))
        .collect()
}

/// Public struct names declared under `src/adapters/outbound`, with the folder that owns them.
fn concrete_adapters() -> Vec<(String, String)> {
    let mut adapters = Vec::new();
    for (file, text) in load("src/adapters/outbound") {
        // An adapter in its own folder owns the folder; a single-file adapter owns its file.
        let parent = Path::new(&file).parent().unwrap();
        let owner = if parent.ends_with("outbound") {
            file.clone()
        } else {
            parent.display().to_string()
        };
        for line in code_of(&text).lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub struct ") {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                adapters.push((name, owner.clone()));
            }
        }
    }
    adapters
}

fn adapter_name_violations(
    files: &[(String, String)],
    adapters: &[(String, String)],
) -> Vec<String> {
    let mut found = Vec::new();
    for (file, text) in files {
        let is_root = file == "src/app/wiring.rs" || file.starts_with("src/bin/");
        if is_root {
            continue;
        }
        let code = code_of(text);
        for (adapter, owner) in adapters {
            if file.starts_with(owner.as_str()) {
                continue;
            }
            if contains_token(&code, adapter) {
                found.push(format!("{file} names the concrete adapter `{adapter}`"));
            }
        }
    }
    found
}

#[test]
fn domain_is_pure() {
    let violations = violations_in(&load("src/domain"), DOMAIN_FORBIDDEN);
    assert!(
        violations.is_empty(),
        "the domain must stay sans-IO:\n{}",
        violations.join("\n")
    );
}

#[test]
fn ports_depend_only_on_the_domain() {
    let violations = violations_in(&load("src/ports"), PORTS_FORBIDDEN);
    assert!(
        violations.is_empty(),
        "ports may depend only on the domain:\n{}",
        violations.join("\n")
    );
}

#[test]
fn app_reaches_adapters_only_through_the_composition_root() {
    let files: Vec<_> = load("src/app")
        .into_iter()
        .filter(|(name, _)| name != "src/app/wiring.rs")
        .collect();
    let violations = violations_in(&files, APP_FORBIDDEN);
    assert!(
        violations.is_empty(),
        "only src/app/wiring.rs may name adapters:\n{}",
        violations.join("\n")
    );
}

#[test]
fn only_the_composition_root_names_concrete_adapters() {
    let adapters = concrete_adapters();
    assert!(
        adapters.iter().any(|(name, _)| name == "FakeBroker"),
        "adapter scan found {adapters:?}"
    );
    let files = load("src");
    let violations = adapter_name_violations(&files, &adapters);
    assert!(
        violations.is_empty(),
        "concrete adapters leak outside the composition root:\n{}",
        violations.join("\n")
    );
}

#[test]
fn only_the_mcp_adapter_uses_the_mcp_sdk() {
    let files: Vec<_> = load("src")
        .into_iter()
        .filter(|(name, _)| !name.starts_with("src/adapters/inbound/mcp/"))
        .collect();
    let violations = violations_in(&files, &["rmcp"]);
    assert!(
        violations.is_empty(),
        "rmcp types stay inside src/adapters/inbound/mcp:\n{}",
        violations.join("\n")
    );
}

#[test]
fn only_the_client_portal_adapter_uses_the_http_client() {
    let files: Vec<_> = load("src")
        .into_iter()
        .filter(|(name, _)| !name.starts_with("src/adapters/outbound/client_portal/"))
        .collect();
    let violations = violations_in(&files, &["reqwest"]);
    assert!(
        violations.is_empty(),
        "reqwest stays inside the Client Portal adapter:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checks_catch_violations() {
    let domain = vec![(
        "src/domain/x.rs".to_owned(),
        "use tokio::fs;\nuse crate::adapters::y;\n".to_owned(),
    )];
    assert_eq!(violations_in(&domain, DOMAIN_FORBIDDEN).len(), 2);
    let commented = vec![(
        "src/domain/x.rs".to_owned(),
        "// tokio is not used here\n".to_owned(),
    )];
    assert!(violations_in(&commented, DOMAIN_FORBIDDEN).is_empty());
    let adapters = vec![(
        "FakeBroker".to_owned(),
        "src/adapters/outbound/fake_broker".to_owned(),
    )];
    let leaking = vec![
        (
            "src/app/reads.rs".to_owned(),
            "let b = FakeBroker::new();".to_owned(),
        ),
        (
            "src/app/wiring.rs".to_owned(),
            "let b = FakeBroker::new();".to_owned(),
        ),
        (
            "src/adapters/outbound/fake_broker/mod.rs".to_owned(),
            "pub struct FakeBroker;".to_owned(),
        ),
        (
            "src/app/other.rs".to_owned(),
            "let b = FakeBrokerage::new();".to_owned(),
        ),
    ];
    assert_eq!(
        adapter_name_violations(&leaking, &adapters),
        vec!["src/app/reads.rs names the concrete adapter `FakeBroker`"]
    );
}
