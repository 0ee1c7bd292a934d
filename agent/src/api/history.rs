//! `GET /api/system/versions` (generations, with their apps) and `POST /api/system/rollback`
//! (queued like installs; administrators, with the password again).

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::admin_only::Caller;
use super::apps::{run, WaitQuery};
use super::{error, stepup, Api};
use crate::history;
use crate::queue::{OpKind, Operation, ROLLBACK_APP};

pub async fn versions(State(api): State<Api>) -> Response {
    match history::list(&api.service) {
        Ok(list) => Json(serde_json::json!({
            "generations": list,
            "source": if api.service.config.system_profile.is_some() { "nixos" } else { "demo" },
        }))
        .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Only a number: anything else (a string, a negative, a float) is refused by the parser
/// before it can reach a command line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    generation: u32,
}

pub async fn rollback(
    State(api): State<Api>,
    headers: HeaderMap,
    caller: Caller,
    Query(q): Query<WaitQuery>,
    body: Bytes,
) -> Response {
    let body: RollbackBody = match super::parse(&body, r#"{"generation": <number>}"#) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err((code, msg)) = history::check(&api.service, body.generation) {
        return error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            msg,
        );
    }
    let action = format!("system.rollback:{}", body.generation);
    if let Err(r) = stepup::require(&api, &headers, &caller, &action) {
        return r;
    }
    let op = Operation {
        app: ROLLBACK_APP.to_string(),
        kind: OpKind::Rollback {
            generation: body.generation,
        },
    };
    run(&api, op, q.wait.unwrap_or(true)).await
}
