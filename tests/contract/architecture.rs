//! The architecture test: dependencies point one way (`domain ← ports ← app ← adapters ← bin`),
//! outbound adapters never reach into the app, inbound adapters never reach around it to the
//! outbound adapters, and only the composition root names concrete adapters. Fails with a
//! readable list.

use std::fs;
use std::path::{Path, PathBuf};

use regex::Regex;

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

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Where `needle` occurs as a whole path or identifier (not inside a longer name).
fn token_starts<'a>(code: &'a str, needle: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(needle)
        .map(|(start, _)| start)
        .filter(move |&start| {
            let before = code[..start].chars().next_back();
            let after = code[start + needle.len()..].chars().next();
            before.is_none_or(|c| !is_ident(c)) && after.is_none_or(|c| !is_ident(c))
        })
}

/// True when `needle` occurs as a whole path or identifier (not inside a longer name).
fn contains_token(code: &str, needle: &str) -> bool {
    token_starts(code, needle).next().is_some()
}

/// The module a source file defines: `src/adapters/inbound/cli/run.rs` is
/// `adapters::inbound::cli::run`; a `mod.rs` (and `lib.rs`) is its folder's module.
fn module_of(file: &str) -> Vec<String> {
    let inner = file.strip_prefix("src/").unwrap_or(file);
    let inner = inner.strip_suffix(".rs").unwrap_or(inner);
    let mut segments: Vec<String> = inner.split('/').map(str::to_owned).collect();
    if segments
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        segments.pop();
    }
    segments
}

/// A path written inside `module`, as a path from the crate root (`app::config::Settings`).
/// `None` for a path that does not start at `crate`, `super` or `self`: the standard library,
/// a dependency, or a name already in scope.
fn resolve(module: &[String], path: &str) -> Option<String> {
    let mut segments = path.split("::").peekable();
    let mut base = match segments.next()? {
        "crate" | "$crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => {
            let mut parent = module.to_vec();
            parent.pop()?;
            parent
        }
        _ => return None,
    };
    while segments.next_if_eq(&"super").is_some() {
        base.pop()?;
    }
    base.extend(
        segments
            .filter(|segment| !segment.is_empty() && *segment != "self")
            .map(str::to_owned),
    );
    Some(base.join("::"))
}

/// One `use` tree without whitespace, flattened: `crate::{app::x,ports::{y,z}}` gives
/// `crate::app::x`, `crate::ports::y` and `crate::ports::z`.
fn flatten(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else {
        return vec![tree.to_owned()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..];
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let mut items = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (index, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(flatten)
        .map(|path| format!("{prefix}{path}"))
        .collect()
}

/// Every path named by a `use` item in `code`, flattened, renames (`as`) dropped.
fn use_paths(code: &str) -> Vec<String> {
    let rename = Regex::new(r"\s+as\s+[A-Za-z0-9_]+").unwrap();
    let mut paths = Vec::new();
    for start in token_starts(code, "use") {
        let tree = &code[start + "use".len()..];
        let Some(end) = tree.find(';') else { continue };
        let tree: String = rename
            .replace_all(&tree[..end], "")
            .split_whitespace()
            .collect();
        paths.extend(flatten(&tree));
    }
    paths
}

/// Every path in `code` (an expression, a type, a `use` item) that starts at `crate`, `super`
/// or `self`, up to its first brace.
fn rooted_paths(code: &str) -> Vec<String> {
    let in_path = |c: char| is_ident(c) || c == ':' || c == '$';
    let mut paths = Vec::new();
    for root in ["crate::", "super::", "self::"] {
        for (start, _) in code.match_indices(root) {
            if code[..start].chars().next_back().is_some_and(in_path) {
                continue;
            }
            let path: String = code[start..].chars().take_while(|&c| in_path(c)).collect();
            paths.push(path.trim_end_matches(':').to_owned());
        }
    }
    paths
}

/// Every module path a file reaches, resolved from the crate root, sorted and without repeats.
fn crate_paths(file: &str, text: &str) -> Vec<String> {
    let code = code_of(text);
    let module = module_of(file);
    let mut paths: Vec<String> = use_paths(&code)
        .into_iter()
        .chain(rooted_paths(&code))
        .filter_map(|path| resolve(&module, &path))
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Files that reach the module `forbidden` (a path from the crate root) or anything inside it,
/// by `crate::`, by `super::` or through a `use` group.
fn import_violations(files: &[(String, String)], forbidden: &str) -> Vec<String> {
    let inside = format!("{forbidden}::");
    let mut found = Vec::new();
    for (file, text) in files {
        for path in crate_paths(file, text) {
            if path == forbidden || path.starts_with(&inside) {
                found.push(format!("{file} imports `crate::{path}`"));
            }
        }
    }
    found
}

fn load(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    rust_files(&root)
        .into_iter()
        .map(|path| (relative(&path), fs::read_to_string(&path).unwrap()))
        .collect()
}

/// The name declared by a struct item visible outside its module: `pub struct X`, and also
/// `pub(crate) struct X` (or any other `pub(..)`), since a crate-visible type leaks as easily.
fn visible_struct_name(line: &str) -> Option<String> {
    let rest = line.trim_start().strip_prefix("pub")?;
    let rest = match rest.strip_prefix('(') {
        Some(scoped) => &scoped[scoped.find(')')? + 1..],
        None => rest,
    };
    let rest = rest.strip_prefix(" struct ")?;
    Some(rest.chars().take_while(|&c| is_ident(c)).collect())
}

/// Struct names declared under `src/adapters/outbound` with `pub` or `pub(..)`, with the
/// adapter that owns them: an adapter in its own folder owns the whole folder (sub-folders
/// such as `dto/` included); a single-file adapter owns its file.
fn concrete_adapters_in(files: &[(String, String)]) -> Vec<(String, String)> {
    const OUTBOUND: &str = "src/adapters/outbound/";
    let mut adapters = Vec::new();
    for (file, text) in files {
        let Some(inside) = file.strip_prefix(OUTBOUND) else {
            continue;
        };
        let owner = match inside.split_once('/') {
            Some((folder, _)) => format!("{OUTBOUND}{folder}/"),
            None => file.clone(),
        };
        for line in code_of(text).lines() {
            if let Some(name) = visible_struct_name(line) {
                adapters.push((name, owner.clone()));
            }
        }
    }
    adapters
}

fn concrete_adapters() -> Vec<(String, String)> {
    concrete_adapters_in(&load("src/adapters/outbound"))
}

fn adapter_name_violations(
    files: &[(String, String)],
    adapters: &[(String, String)],
) -> Vec<String> {
    let mut found = Vec::new();
    for (file, text) in files {
        // `test_support` (feature `unstable-internal-test-support`) wires the fake adapters
        // for an embedder's tests: a composition root of its own, like the binary.
        let is_root = file == "src/app/wiring.rs"
            || file == "src/test_support.rs"
            || file.starts_with("src/bin/");
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
fn outbound_adapters_never_import_the_app() {
    let violations = import_violations(&load("src/adapters/outbound"), "app");
    assert!(
        violations.is_empty(),
        "outbound adapters depend on ports and the domain, never on the app:\n{}",
        violations.join("\n")
    );
}

#[test]
fn inbound_adapters_never_import_outbound_adapters() {
    let violations = import_violations(&load("src/adapters/inbound"), "adapters::outbound");
    assert!(
        violations.is_empty(),
        "inbound adapters reach the outbound ones only through the app:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_net_module_depends_on_nothing_in_the_crate() {
    let files = load("src");
    let (file, text) = files.iter().find(|(name, _)| name == "src/net.rs").unwrap();
    let outside: Vec<String> = crate_paths(file, text)
        .into_iter()
        .filter(|path| path != "net" && !path.starts_with("net::"))
        .collect();
    assert!(
        outside.is_empty(),
        "src/net.rs is shared by app and adapters, so it imports neither: {outside:?}"
    );
}

#[test]
fn only_the_composition_root_names_concrete_adapters() {
    let adapters = concrete_adapters();
    for expected in ["FakeBroker", "GatewayClient", "OrdersDto"] {
        assert!(
            adapters.iter().any(|(name, _)| name == expected),
            "adapter scan missed {expected}: {adapters:?}"
        );
    }
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
    // The one other user: the remote-MCP JWKS fetch (issue 15, ADR 0014), a single file.
    let files: Vec<_> = load("src")
        .into_iter()
        .filter(|(name, _)| !name.starts_with("src/adapters/outbound/client_portal/"))
        .filter(|(name, _)| name != "src/adapters/inbound/mcp_http/jwks.rs")
        .collect();
    let violations = violations_in(&files, &["reqwest"]);
    assert!(
        violations.is_empty(),
        "reqwest stays inside the Client Portal adapter and the JWKS fetch:\n{}",
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
        "src/adapters/outbound/fake_broker/".to_owned(),
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

#[test]
fn the_checks_catch_adapters_reaching_across_layers() {
    let file = |name: &str, text: &str| vec![(name.to_owned(), text.to_owned())];
    let client = "src/adapters/outbound/client_portal/client.rs";
    // A plain import, a group, a path in an expression and a climb by `super` all count.
    for text in [
        "use crate::app::config::is_loopback;\n",
        "use crate::{\n    app::config::{self, is_loopback},\n    ports::clock::Clock,\n};\n",
        "fn f(url: &Url) -> bool { crate::app::config::is_loopback(url) }\n",
        "use super::super::super::super::app::config::is_loopback as near;\n",
    ] {
        assert!(
            !import_violations(&file(client, text), "app").is_empty(),
            "missed in:\n{text}"
        );
    }
    for text in [
        "use crate::net::is_loopback;\nuse crate::ports::clock::Clock;\n",
        "use super::errors::{self, ErrorContext};\n",
        "// crate::app::config::is_loopback moved\n",
        "use crate::application::Thing;\n",
    ] {
        assert!(
            import_violations(&file(client, text), "app").is_empty(),
            "false alarm in:\n{text}"
        );
    }

    let run = "src/adapters/inbound/cli/run.rs";
    for text in [
        "use crate::adapters::outbound::fake_broker::FakeBroker;\n",
        "use crate::adapters::{inbound::cli::render, outbound::clock::SystemClock};\n",
        "use super::super::super::outbound::clock::SystemClock;\n",
    ] {
        assert!(
            !import_violations(&file(run, text), "adapters::outbound").is_empty(),
            "missed in:\n{text}"
        );
    }
    for text in [
        "use crate::app::Gateway;\nuse super::render;\n",
        "use super::super::mcp::registry;\n",
    ] {
        assert!(
            import_violations(&file(run, text), "adapters::outbound").is_empty(),
            "false alarm in:\n{text}"
        );
    }

    // Crate-visible structs are adapters too, owned by their adapter's whole folder.
    let declared = vec![
        (
            "src/adapters/outbound/client_portal/dto/orders.rs".to_owned(),
            "pub(crate) struct OrdersDto {\n    orders: Vec<Value>,\n}\n".to_owned(),
        ),
        (
            "src/adapters/outbound/clock.rs".to_owned(),
            "pub struct SystemClock;\nstruct Private;\n".to_owned(),
        ),
    ];
    let adapters = concrete_adapters_in(&declared);
    assert_eq!(
        adapters,
        vec![
            (
                "OrdersDto".to_owned(),
                "src/adapters/outbound/client_portal/".to_owned()
            ),
            (
                "SystemClock".to_owned(),
                "src/adapters/outbound/clock.rs".to_owned()
            ),
        ]
    );
    let naming = vec![
        (
            "src/adapters/outbound/client_portal/writer.rs".to_owned(),
            "let orders: OrdersDto = body;".to_owned(),
        ),
        (
            "src/adapters/inbound/cli/run.rs".to_owned(),
            "let orders: OrdersDto = body;".to_owned(),
        ),
    ];
    assert_eq!(
        adapter_name_violations(&naming, &adapters),
        vec!["src/adapters/inbound/cli/run.rs names the concrete adapter `OrdersDto`"]
    );
}
