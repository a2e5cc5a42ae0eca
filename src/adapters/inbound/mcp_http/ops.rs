//! Operations endpoints for whatever runs the server (a process supervisor, a load balancer):
//! `/healthz` answers 200 while the process serves; `/readyz` answers 200 only when the audit
//! log takes writes and the broker answers, else 503 naming the check that failed. Neither
//! needs a token, neither touches MCP, neither writes an audit event, and neither says more
//! than which check failed (no paths, no URLs, no secrets).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::gateway::Gateway;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
}

/// `GET /readyz`: the audit log is writable and the broker reachable.
pub async fn readyz(State(gateway): State<Gateway>) -> Response {
    let readiness = gateway.readiness().await;
    let mut failed = Vec::new();
    if !readiness.audit_writable {
        failed.push("audit_writable");
    }
    if !readiness.broker_reachable {
        failed.push("broker_reachable");
    }
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if readiness.is_ready() { "ready" } else { "not_ready" },
        "checks": {
            "audit_writable": readiness.audit_writable,
            "broker_reachable": readiness.broker_reachable,
        },
        "failed": failed,
    });
    (status, Json(body)).into_response()
}
