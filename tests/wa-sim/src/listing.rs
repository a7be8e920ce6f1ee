//! `GET /{version}/{waba-id}/message_templates`: the catalogue, cursor-paged like Graph.
//!
//! Query: `limit` (default 25, 1..=1000), `after` / `before` (opaque cursors from
//! `paging.cursors`), `fields` (top-level field names; `id` is always kept), and the filters
//! `name` (substring), `status`, `category`, `language` (comma-separated values allowed).
//! The answer: `{"data": [...], "paging": {"cursors": {"before", "after"}, "next"?, "previous"?}}`
//! with `next` only when more templates follow and `previous` only when some precede.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::HOST;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::GraphError;
use crate::state::SimState;
use crate::templates::Template;
use crate::{graph, ids};

const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 1000;

type Params = Vec<(String, String)>;

pub async fn list(
    State(state): State<Arc<SimState>>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match answer(&state, path, query, &uri, &headers) {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

fn answer(
    state: &SimState,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<Params>, QueryRejection>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Value, GraphError> {
    let Ok(Path((version, waba_id))) = path else {
        return Err(GraphError::unknown_path(uri.path()));
    };
    graph::check_version(&version, uri.path())?;
    graph::authorize(headers, &state.access_token)?;
    if waba_id != state.waba_id {
        return Err(GraphError::unknown_object("GET", &waba_id));
    }
    let Ok(Query(params)) = query else {
        return Err(GraphError::invalid_parameter("Malformed query string"));
    };
    let get = |key: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };

    let limit = match get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                GraphError::invalid_parameter(format!(
                    "Param limit must be an integer from 1 to {MAX_LIMIT} - got {l:?}"
                ))
            })?,
    };

    let matching: Vec<&Template> = state
        .catalog
        .all()
        .iter()
        .filter(|t| filters_match(t, get))
        .collect();

    let position = |cursor: &str| -> Result<usize, GraphError> {
        ids::template_id_from_cursor(cursor)
            .and_then(|id| matching.iter().position(|t| t.id == id))
            .ok_or_else(|| GraphError::invalid_parameter(format!("Invalid cursor {cursor:?}")))
    };
    let (start, end) = match (get("after"), get("before")) {
        (Some(after), _) => {
            let start = position(after)? + 1;
            (start, (start + limit).min(matching.len()))
        }
        (None, Some(before)) => {
            let end = position(before)?;
            (end.saturating_sub(limit), end)
        }
        (None, None) => (0, limit.min(matching.len())),
    };
    let page = &matching[start..end];

    let fields = get("fields").map(top_level_fields);
    let data: Vec<Value> = page
        .iter()
        .map(|t| project(&t.raw, fields.as_deref()))
        .collect();

    let (Some(first), Some(last)) = (page.first(), page.last()) else {
        return Ok(json!({ "data": data }));
    };
    let before = ids::cursor_for(&first.id);
    let after = ids::cursor_for(&last.id);
    let mut paging = Map::new();
    paging.insert(
        "cursors".into(),
        json!({ "before": before, "after": after }),
    );
    let base = format!("{}{}", origin(state, headers), uri.path());
    if end < matching.len() {
        paging.insert("next".into(), link(&base, &params, "after", &after).into());
    }
    if start > 0 {
        paging.insert(
            "previous".into(),
            link(&base, &params, "before", &before).into(),
        );
    }
    Ok(json!({ "data": data, "paging": paging }))
}

/// The `name`, `status`, `category` and `language` filters.
fn filters_match<'a>(t: &Template, get: impl Fn(&str) -> Option<&'a str>) -> bool {
    let one_of = |key: &str, value: &str| {
        get(key).is_none_or(|wanted| {
            wanted
                .split(',')
                .any(|w| w.trim().eq_ignore_ascii_case(value))
        })
    };
    get("name").is_none_or(|n| t.name.contains(n))
        && one_of("status", &t.status)
        && one_of("category", &t.category)
        && one_of("language", &t.language)
}

/// `name,components{type,text},status` → `[name, components, status]`.
fn top_level_fields(fields: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in fields.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current).trim().to_owned());
            }
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    out.push(current.trim().to_owned());
    out.retain(|f| !f.is_empty());
    out
}

/// Keeps only the requested fields (and `id`, which Graph always returns).
fn project(raw: &Value, fields: Option<&[String]>) -> Value {
    match (fields, raw) {
        (Some(fields), Value::Object(obj)) => Value::Object(
            obj.iter()
                .filter(|(k, _)| *k == "id" || fields.iter().any(|f| f == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => raw.clone(),
    }
}

/// `http://host:port` for links: the request's Host when it looks like one, else where the
/// server listens.
fn origin(state: &SimState, headers: &HeaderMap) -> String {
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).filter(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    });
    match host {
        Some(h) => format!("http://{h}"),
        None => crate::server::base_url_for(state.local_addr),
    }
}

/// The same query with the paging cursor replaced.
fn link(base: &str, params: &Params, key: &str, cursor: &str) -> String {
    let mut query: Vec<String> = params
        .iter()
        .filter(|(k, _)| k != "after" && k != "before")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    query.push(format!("{key}={}", encode(cursor)));
    format!("{base}?{}", query.join("&"))
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_split_at_top_level() {
        assert_eq!(
            top_level_fields("name, components{type,text},status,,"),
            vec!["name", "components", "status"]
        );
    }

    #[test]
    fn encode_reserved() {
        assert_eq!(encode("a b,c{d}"), "a%20b%2Cc%7Bd%7D");
        assert_eq!(encode("Zm9v-_"), "Zm9v-_");
    }
}
