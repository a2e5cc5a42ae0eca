//! The real binary run against a paper-trading configuration: a [`Desk`] is a sandbox with one
//! configuration file, passed to every command with `--config`.

use std::path::PathBuf;

use serde_json::Value;

use crate::cli::Sandbox;

/// A sandbox with a configuration file.
pub(crate) struct Desk {
    pub(crate) sandbox: Sandbox,
    pub(crate) config: PathBuf,
}

impl Desk {
    /// `sandbox` with `yaml` written as its configuration file.
    pub(crate) fn configured(sandbox: Sandbox, yaml: &str) -> Self {
        let config = sandbox.write_config("paper.yaml", yaml);
        Self { sandbox, config }
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        all
    }

    /// Runs with `--json`: (exit code, stdout JSON, stderr).
    pub(crate) fn json(&self, args: &[&str]) -> (i32, Value, String) {
        self.sandbox.json(&self.args(args))
    }

    /// Runs without `--json`: (exit code, stdout, stderr).
    pub(crate) fn human(&self, args: &[&str]) -> (i32, String, String) {
        self.sandbox.human(&self.args(args))
    }

    /// Runs with `--json` and expects success.
    pub(crate) fn ok(&self, args: &[&str]) -> Value {
        let (code, value, stderr) = self.json(args);
        assert_eq!(code, 0, "{args:?} failed: {stderr}\n{value}");
        value
    }

    /// Previews a limit buy of `quantity` AAPL (265598) at 200 in `account`.
    pub(crate) fn preview(&self, account: &str, quantity: &str) -> Value {
        self.ok(&[
            "orders",
            "preview",
            "--account",
            account,
            "--contract-id",
            "265598",
            "--side",
            "BUY",
            "--quantity",
            quantity,
            "--type",
            "LMT",
            "--limit-price",
            "200",
        ])
    }

    /// Approves `preview_id` and returns the approval id.
    pub(crate) fn approve(&self, preview_id: &str) -> String {
        let approval = self.ok(&["approvals", "create", "--preview-id", preview_id]);
        assert_eq!(approval["status"], "approved");
        approval["approval_id"].as_str().unwrap().to_owned()
    }

    /// Submits an approved order to the paper writer: (exit code, stdout JSON, stderr).
    pub(crate) fn submit(
        &self,
        account: &str,
        approval_id: &str,
        key: &str,
    ) -> (i32, Value, String) {
        self.json(&[
            "orders",
            "submit",
            "--paper",
            "--account",
            account,
            "--approval-id",
            approval_id,
            "--idempotency-key",
            key,
        ])
    }

    /// [`Desk::submit`], expecting success; returns the placed order's view.
    pub(crate) fn submitted(&self, account: &str, approval_id: &str, key: &str) -> Value {
        let (code, value, stderr) = self.submit(account, approval_id, key);
        assert_eq!(code, 0, "submit failed: {stderr}\n{value}");
        value
    }

    /// The event lines of `audit export --format jsonl` (the proof line, when checkpoints
    /// cover the range, and the trailer dropped).
    pub(crate) fn export(&self) -> Vec<Value> {
        let output = self
            .sandbox
            .command()
            .args(["--config", self.config.to_str().unwrap()])
            .args(["audit", "export", "--format", "jsonl"])
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = String::from_utf8(output.stdout).unwrap();
        let mut lines: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        lines.pop();
        if lines
            .first()
            .is_some_and(|line| line.get("proof").is_some())
        {
            lines.remove(0);
        }
        lines
    }
}
