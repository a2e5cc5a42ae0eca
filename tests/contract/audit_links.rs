//! Audit links: from `audit export` alone (the JSON lines, nothing else) an auditor can answer
//! "who approved which order, and what was placed": every write event carries the approval,
//! the preview, the order digest, the idempotency key, the broker order ids and the approver
//! as typed links, stored outside redaction; the gateway's own ids are never `[redacted]`. Every
//! event also records the kind of caller (operator, agent, system) as its principal, which no
//! caller-supplied field can forge.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cli::Sandbox;
use crate::mcp_stdio::{StdioServer, initialize};
use crate::support::cli::Desk;

const PAPER: &str = "DU1234567";

const SCOPES: &str = "[ibkr:health:read, ibkr:accounts:read, ibkr:orders:read, \
ibkr:audit:read, ibkr:audit:export, ibkr:orders:preview, ibkr:orders:paper:submit, \
ibkr:orders:paper:cancel, ibkr:orders:paper:modify]";

fn desk() -> Desk {
    desk_granting(SCOPES)
}

/// A desk whose configuration grants `scopes` (a YAML list).
fn desk_granting(scopes: &str) -> Desk {
    let yaml = format!(
        "auth:\n  enabled_scopes: {scopes}\n\
         paper_trading:\n  enabled: true\n  allowed_accounts: [{PAPER}]\n  writer: local_candidate\n"
    );
    Desk::configured(Sandbox::new(), &yaml)
}

/// What the export says about one placed order.
#[derive(Debug, PartialEq, Eq)]
struct Placement {
    approved_by: String,
    approved_via: String,
    approval_id: String,
    preview_id: String,
    order_digest: String,
    idempotency_key: String,
    broker_order_ids: Vec<String>,
}

/// Reconstructs every completed submit from the export lines alone: the submit's links name
/// the approval; the approval's own `approvals create` event confirms who created it, for which
/// preview and order digest.
fn placements(events: &[Value]) -> Vec<Placement> {
    let approvals: BTreeMap<String, &Value> = events
        .iter()
        .filter(|event| event["operation"] == "approvals create" && event["status"] == "completed")
        .map(|event| {
            let id = event["metadata"]["links"]["approval_id"].as_str().unwrap();
            (id.to_owned(), event)
        })
        .collect();
    events
        .iter()
        .filter(|event| {
            event["operation"] == "paper order submit" && event["status"] == "completed"
        })
        .map(|submit| {
            let links = &submit["metadata"]["links"];
            let approval_id = links["approval_id"].as_str().unwrap().to_owned();
            let approval = approvals
                .get(&approval_id)
                .unwrap_or_else(|| panic!("no approvals create event for {approval_id}"));
            let created = &approval["metadata"]["links"];
            // The approval event and the submit agree on what was approved, and the approver
            // recorded in the link is the actor and surface of the approval's own event.
            assert_eq!(created["preview_id"], links["preview_id"]);
            assert_eq!(created["order_digest"], links["order_digest"]);
            assert_eq!(links["approved_by"], approval["actor"]);
            assert_eq!(links["approved_via"], approval["surface"]);
            Placement {
                approved_by: links["approved_by"].as_str().unwrap().to_owned(),
                approved_via: links["approved_via"].as_str().unwrap().to_owned(),
                approval_id,
                preview_id: links["preview_id"].as_str().unwrap().to_owned(),
                order_digest: links["order_digest"].as_str().unwrap().to_owned(),
                idempotency_key: links["idempotency_key"].as_str().unwrap().to_owned(),
                broker_order_ids: links["broker_order_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| id.as_str().unwrap().to_owned())
                    .collect(),
            }
        })
        .collect()
}

#[test]
fn who_approved_which_order_and_what_was_placed_comes_from_the_export_alone() {
    let desk = desk();
    let mut truth = Vec::new();
    for (quantity, key) in [("5", "links-key-0001"), ("7", "links-key-0002")] {
        let preview = desk.preview(PAPER, quantity);
        let preview_id = preview["preview_id"].as_str().unwrap();
        let approval = desk.ok(&["approvals", "create", "--preview-id", preview_id]);
        let approval_id = approval["approval_id"].as_str().unwrap();
        let placed = desk.submitted(PAPER, approval_id, key);
        truth.push(Placement {
            approved_by: "local_operator".to_owned(),
            approved_via: "cli".to_owned(),
            approval_id: approval_id.to_owned(),
            preview_id: preview_id.to_owned(),
            order_digest: preview["order_digest"].as_str().unwrap().to_owned(),
            idempotency_key: key.to_owned(),
            broker_order_ids: placed["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|order| order["order_id"].as_str().unwrap().to_owned())
                .collect(),
        });
    }
    let events = desk.export();
    assert_eq!(placements(&events), truth);

    // The intent recorded before the writer was called and the approval's consumption carry
    // the same links, so the trail holds even when the outcome event is missing.
    for placement in &truth {
        for operation in ["paper order intent", "approval consumed"] {
            let step = events
                .iter()
                .find(|event| {
                    event["operation"] == operation
                        && event["metadata"]["links"]["approval_id"] == placement.approval_id
                })
                .unwrap_or_else(|| panic!("no {operation} event for {}", placement.approval_id));
            let links = &step["metadata"]["links"];
            assert_eq!(links["order_digest"], placement.order_digest);
            assert_eq!(links["idempotency_key"], placement.idempotency_key);
        }
    }
    // The preview's own event (the order as it was priced) joins its approval by preview id.
    for placement in &truth {
        assert!(
            events.iter().any(|event| {
                event["operation"] == "orders preview"
                    && event["status"] == "completed"
                    && event["metadata"]["links"]["preview_id"] == placement.preview_id
            }),
            "no linked preview event for {}",
            placement.preview_id
        );
    }
    // The gateway's own ids are stored as they are, never redacted.
    let text = events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for placement in &truth {
        assert!(text.contains(&placement.preview_id));
        assert!(text.contains(&placement.approval_id));
    }
}

#[test]
fn a_secret_smuggled_in_an_idempotency_key_is_not_stored() {
    let desk = desk();
    let preview = desk.preview(PAPER, "3");
    let approval = desk.ok(&[
        "approvals",
        "create",
        "--preview-id",
        preview["preview_id"].as_str().unwrap(),
    ]);
    let smuggled = "sk-live-4eC39HqLyjWDarjtT1zdp7dc";
    desk.submitted(PAPER, approval["approval_id"].as_str().unwrap(), smuggled);
    let events = desk.export();
    let submit = events
        .iter()
        .find(|event| event["operation"] == "paper order submit")
        .unwrap();
    assert_eq!(submit["metadata"]["links"]["idempotency_key"], "[redacted]");
    assert_eq!(
        submit["metadata"]["links"]["approval_id"],
        approval["approval_id"]
    );
    for event in &events {
        assert!(
            !event.to_string().contains("4eC39HqLyjWDarjtT1zdp7dc"),
            "{event}"
        );
    }
}

#[test]
fn an_operators_approval_and_an_agents_are_told_apart_by_the_recorded_principal() {
    let granted = SCOPES.replace(']', ", ibkr:approvals:create]");
    let desk = desk_granting(&granted);
    let by_operator = desk.preview(PAPER, "2");
    let by_agent = desk.preview(PAPER, "4");
    desk.ok(&[
        "approvals",
        "create",
        "--preview-id",
        by_operator["preview_id"].as_str().unwrap(),
    ]);

    let mut server = StdioServer::start_with(
        &desk.sandbox,
        &["--config", desk.config.to_str().unwrap()],
        &[],
    );
    initialize(&mut server, "2025-11-25");
    let approved = server.call_tool(
        2,
        "ibkr_approvals_create",
        json!({"preview_id": by_agent["preview_id"]}),
    );
    assert_eq!(
        approved["result"]["structuredContent"]["status"], "approved",
        "{approved}"
    );
    // A caller naming a field after the principal claims nothing: the call is refused as
    // input, and its event still records the agent it came from.
    let forged = server.call_tool(
        3,
        "ibkr_approvals_create",
        json!({"preview_id": by_agent["preview_id"], "principal": {"kind": "operator"}}),
    );
    assert_eq!(forged["result"]["isError"], true, "{forged}");
    let (status, _rest, stderr) = server.finish();
    assert!(status.success(), "{stderr}");

    let events = desk.export();
    let approval_of = |preview: &Value| {
        events
            .iter()
            .find(|event| {
                event["status"] == "completed"
                    && event["metadata"]["links"]["preview_id"] == preview["preview_id"]
                    && event["metadata"]["links"]["approval_id"].is_string()
            })
            .unwrap_or_else(|| panic!("no approval event for {preview}"))
    };
    let operator_event = approval_of(&by_operator);
    let agent_event = approval_of(&by_agent);
    // The actor column cannot tell them apart (a local MCP client is the local operator's);
    // the recorded principal does.
    assert_eq!(operator_event["actor"], agent_event["actor"]);
    assert_eq!(
        operator_event["metadata"]["principal"],
        json!({"kind": "operator"})
    );
    assert_eq!(
        agent_event["metadata"]["principal"],
        json!({"kind": "agent"})
    );

    let refused = events
        .iter()
        .find(|event| event["status"] == "refused" && event["operation"] == "ibkr_approvals_create")
        .unwrap_or_else(|| panic!("no refused approval event in {events:#?}"));
    assert_eq!(
        refused["metadata"]["principal"],
        json!({"kind": "agent"}),
        "{refused}"
    );

    // Every event names its principal: the operator's CLI calls, the agent's MCP calls, and
    // the gateway's own shutdown checkpoint when serving ended.
    for event in &events {
        let expected = match event["surface"].as_str() {
            Some("mcp_stdio") => "agent",
            Some("system") => "system",
            _ => "operator",
        };
        assert_eq!(event["metadata"]["principal"]["kind"], expected, "{event}");
    }
}
