//! Build facts the binary reports with `ibkr-agent version --json`, so an operator can match a
//! running binary to a reviewed commit: the git commit and whether the tree differed from it,
//! the target triple, the profile and the enabled features. Also rebuilds the crate when a
//! migration file is added, so `embed_migrations!` picks it up.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Names the commit when the sources come without a `.git` (a tarball, a vendored copy).
const COMMIT_OVERRIDE: &str = "IBKR_AGENT_GIT_COMMIT";

/// What the binary is compiled from. `git_dirty` says whether one of these differed from the
/// commit: an edited document does not change the binary, so it does not make it dirty.
const BUILD_INPUTS: [&str; 5] = ["src", "migrations", "build.rs", "Cargo.toml", "Cargo.lock"];

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-env-changed={COMMIT_OVERRIDE}");

    let manifest_dir = PathBuf::from(build_env("CARGO_MANIFEST_DIR").unwrap_or_default());
    let (commit, dirty) = match git_facts(&manifest_dir) {
        Some((commit, dirty)) => (commit, dirty.to_string()),
        None => (commit_from_override(), "unknown".to_owned()),
    };
    println!("cargo:rustc-env=IBKR_AGENT_BUILD_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=IBKR_AGENT_BUILD_GIT_DIRTY={dirty}");
    println!(
        "cargo:rustc-env=IBKR_AGENT_BUILD_TARGET={}",
        build_env("TARGET").unwrap_or_else(|| "unknown".to_owned())
    );
    println!(
        "cargo:rustc-env=IBKR_AGENT_BUILD_PROFILE={}",
        build_env("PROFILE").unwrap_or_else(|| "unknown".to_owned())
    );
    println!(
        "cargo:rustc-env=IBKR_AGENT_BUILD_FEATURES={}",
        enabled_features().join(",")
    );
}

/// A variable cargo (or the person building) set for this build script. The build script is
/// its own gate to the environment: the crate's `process_env` does not exist yet here.
fn build_env(name: &str) -> Option<String> {
    #[allow(clippy::disallowed_methods)]
    std::env::var(name).ok()
}

/// The commit named by [`COMMIT_OVERRIDE`], when it is one (40 hex digits), else `unknown`.
fn commit_from_override() -> String {
    match build_env(COMMIT_OVERRIDE) {
        Some(commit) if is_commit(&commit) => commit.to_ascii_lowercase(),
        Some(_) => {
            println!("cargo:warning={COMMIT_OVERRIDE} is not a 40-hex-digit commit; ignored");
            "unknown".to_owned()
        }
        None => "unknown".to_owned(),
    }
}

fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

/// `HEAD`'s commit and whether a tracked build input differs from it, when the package root is
/// a git checkout (its own `.git`, not a parent's: a vendored copy inside another repository
/// must not report that repository's commit) and git answers.
fn git_facts(root: &Path) -> Option<(String, bool)> {
    if !root.join(".git").exists() {
        return None;
    }
    watch_git_state(root);
    let commit = git(root, &["rev-parse", "HEAD"])?;
    if !is_commit(&commit) {
        return None;
    }
    // Untracked files are left out: a new module is declared in a tracked file, which then
    // differs. `--no-optional-locks`: a build never takes the index lock from a git command
    // the developer is running at the same time.
    let mut arguments = vec![
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
    ];
    arguments.extend(BUILD_INPUTS);
    let status = git(root, &arguments)?;
    Some((commit, !status.is_empty()))
}

/// Reruns this script when the commit can have changed (`HEAD`, the branch it points to, the
/// packed refs) and when a build input can have become dirty or clean.
fn watch_git_state(root: &Path) {
    let mut watched = vec![git_path(root, "HEAD"), git_path(root, "packed-refs")];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git_path(root, &branch));
    }
    // A path that does not exist (no packed refs yet, a branch that lives only in them) would
    // make cargo rerun this script on every build; a branch packed later vanishes, which
    // cargo notices.
    for path in watched.into_iter().flatten().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for input in BUILD_INPUTS {
        println!("cargo:rerun-if-changed={input}");
    }
}

/// Where git keeps `name` for this checkout (a worktree keeps `HEAD` apart from the refs).
fn git_path(root: &Path, name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(git(root, &["rev-parse", "--git-path", name])?);
    Some(if path.is_absolute() {
        path
    } else {
        root.join(path)
    })
}

fn git(root: &Path, arguments: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(arguments)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_owned())
}

/// The enabled cargo features, by their names in `Cargo.toml` (cargo hands them over upper-cased
/// with `-` turned into `_`; the crate's feature names use `-` only), sorted.
fn enabled_features() -> Vec<String> {
    #[allow(clippy::disallowed_methods)]
    let mut features: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| {
            let name = name.to_str()?;
            let feature = name.strip_prefix("CARGO_FEATURE_")?;
            Some(feature.to_ascii_lowercase().replace('_', "-"))
        })
        .collect();
    features.sort();
    features
}
