//! Validation of `type: template` messages against the template catalogue.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::GraphError;
use crate::templates::{Catalog, Header, ParameterFormat, Template, render};

/// Longest header text after substitution.
const MAX_HEADER_CHARS: usize = 60;
/// Longest body text after substitution.
const MAX_BODY_CHARS: usize = 1024;

/// The template a valid message uses.
#[derive(Debug)]
pub struct TemplateSend {
    pub name: String,
    pub language: String,
}

pub fn validate(catalog: &Catalog, msg: &Map<String, Value>) -> Result<TemplateSend, GraphError> {
    let Some(t) = msg.get("template").and_then(Value::as_object) else {
        return Err(GraphError::invalid_parameter(
            "The parameter template is required and must be an object.",
        ));
    };
    let name = match t.get("name") {
        Some(Value::String(n)) if !n.is_empty() => n.as_str(),
        _ => {
            return Err(GraphError::invalid_parameter(
                "The parameter template.name is required.",
            ));
        }
    };
    let language = match t
        .get("language")
        .and_then(Value::as_object)
        .and_then(|l| l.get("code"))
    {
        Some(Value::String(c)) if !c.is_empty() => c.as_str(),
        _ => {
            return Err(GraphError::invalid_parameter(
                "The parameter template.language.code is required.",
            ));
        }
    };

    let Some(template) = catalog.find(name, language) else {
        let others = catalog.languages_of(name);
        let details = if others.is_empty() {
            format!("template name ({name}) does not exist in {language}")
        } else {
            format!(
                "template name ({name}) does not exist in {language}; it exists in {}",
                others.join(", ")
            )
        };
        return Err(GraphError::template_missing(details));
    };
    check_status(template)?;

    let components: &[Value] = match t.get("components") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param template.components must be an array",
            ));
        }
    };
    let mut header: Option<&[Value]> = None;
    let mut body: Option<&[Value]> = None;
    let mut buttons: Vec<&Map<String, Value>> = Vec::new();
    for (i, c) in components.iter().enumerate() {
        let Some(c) = c.as_object() else {
            return Err(GraphError::invalid_parameter(format!(
                "template.components[{i}] must be an object"
            )));
        };
        let Some(kind) = c.get("type").and_then(Value::as_str) else {
            return Err(GraphError::invalid_parameter(format!(
                "template.components[{i}].type is required"
            )));
        };
        match kind.to_ascii_lowercase().as_str() {
            "header" => {
                if header.replace(parameters(c, "header")?).is_some() {
                    return Err(GraphError::invalid_parameter(
                        "template.components has more than one header",
                    ));
                }
            }
            "body" => {
                if body.replace(parameters(c, "body")?).is_some() {
                    return Err(GraphError::invalid_parameter(
                        "template.components has more than one body",
                    ));
                }
            }
            "button" => buttons.push(c),
            other => {
                return Err(GraphError::invalid_parameter(format!(
                    "template.components[{i}].type must be one of header, body, button - got {other:?}"
                )));
            }
        }
    }

    check_header(template, header.unwrap_or_default())?;
    let values = bind(
        "body",
        template,
        &template.body_variables,
        body.unwrap_or_default(),
        &["text", "currency", "date_time"],
    )?;
    let rendered = render(&template.body, &values).chars().count();
    if rendered > MAX_BODY_CHARS {
        return Err(GraphError::text_too_long(format!(
            "body: {rendered} characters after substituting the parameters; the limit is {MAX_BODY_CHARS}"
        )));
    }
    check_buttons(template, &buttons)?;

    Ok(TemplateSend {
        name: template.name.clone(),
        language: template.language.clone(),
    })
}

/// Only APPROVED templates may be sent: PAUSED → 132015, DISABLED → 132016, any other
/// status (PENDING, REJECTED, …) → 132001.
fn check_status(t: &Template) -> Result<(), GraphError> {
    match t.status.as_str() {
        "APPROVED" => Ok(()),
        "PAUSED" => Err(GraphError::template_paused(format!(
            "template ({}) in {} is paused",
            t.name, t.language
        ))),
        "DISABLED" => Err(GraphError::template_disabled(format!(
            "template ({}) in {} is disabled",
            t.name, t.language
        ))),
        other => Err(GraphError::template_missing(format!(
            "template ({}) in {} is not approved (status {other})",
            t.name, t.language
        ))),
    }
}

/// A component's `parameters` (absent means none).
fn parameters<'a>(c: &'a Map<String, Value>, section: &str) -> Result<&'a [Value], GraphError> {
    match c.get("parameters") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(GraphError::invalid_parameter(format!(
            "{section}: parameters must be an array"
        ))),
    }
}

fn count_mismatch(section: &str, got: usize, expected: usize) -> GraphError {
    GraphError::param_count_mismatch(format!(
        "{section}: number of localizable_params ({got}) does not match the expected number of params ({expected})"
    ))
}

fn check_header(t: &Template, params: &[Value]) -> Result<(), GraphError> {
    match &t.header {
        None => {
            if params.is_empty() {
                Ok(())
            } else {
                Err(count_mismatch("header", params.len(), 0))
            }
        }
        Some(Header::Text { text, variables }) => {
            let values = bind("header", t, variables, params, &["text"])?;
            let rendered = render(text, &values).chars().count();
            if rendered > MAX_HEADER_CHARS {
                return Err(GraphError::text_too_long(format!(
                    "header: {rendered} characters after substituting the parameters; the limit is {MAX_HEADER_CHARS}"
                )));
            }
            Ok(())
        }
        Some(Header::Media { kind }) => check_media_header(params, kind),
        Some(Header::Location) => {
            let [p] = params else {
                return Err(count_mismatch("header", params.len(), 1));
            };
            if param_type(p) != Some("location") {
                return Err(GraphError::param_format_mismatch(
                    "header: the template's header is a LOCATION; send one parameter of type location",
                ));
            }
            match p.get("location") {
                Some(Value::Object(_)) => Ok(()),
                _ => Err(GraphError::invalid_parameter(
                    "header: parameter of type location needs a location object",
                )),
            }
        }
    }
}

fn check_media_header(params: &[Value], kind: &str) -> Result<(), GraphError> {
    let [p] = params else {
        return Err(count_mismatch("header", params.len(), 1));
    };
    if param_type(p) != Some(kind) {
        return Err(GraphError::param_format_mismatch(format!(
            "header: the template's header is {}; send one parameter of type {kind}",
            kind.to_ascii_uppercase()
        )));
    }
    let media = p.get(kind).and_then(Value::as_object);
    let has = |field: &str| {
        media
            .and_then(|m| m.get(field))
            .and_then(Value::as_str)
            .is_some_and(|s| !s.trim().is_empty())
    };
    if has("link") || has("id") {
        Ok(())
    } else {
        Err(GraphError::invalid_parameter(format!(
            "header: parameter of type {kind} needs {kind}.link or {kind}.id"
        )))
    }
}

fn param_type(p: &Value) -> Option<&str> {
    p.get("type").and_then(Value::as_str)
}

/// Matches a section's parameters to the template's variables (count, then names for NAMED
/// templates), checks each value and answers `(variable, value)` pairs for rendering.
fn bind(
    section: &str,
    t: &Template,
    variables: &[String],
    params: &[Value],
    allowed_types: &[&str],
) -> Result<Vec<(String, String)>, GraphError> {
    if params.len() != variables.len() {
        return Err(count_mismatch(section, params.len(), variables.len()));
    }

    let keys: Vec<String> = match t.parameter_format {
        ParameterFormat::Positional => variables.to_vec(),
        ParameterFormat::Named => {
            let got: Vec<Option<&str>> = params
                .iter()
                .map(|p| {
                    p.get("parameter_name")
                        .and_then(Value::as_str)
                        .filter(|n| !n.is_empty())
                })
                .collect();
            let distinct: HashSet<&str> = got.iter().flatten().copied().collect();
            let expected: HashSet<&str> = variables.iter().map(String::as_str).collect();
            if got.iter().any(Option::is_none)
                || distinct.len() != got.len()
                || distinct != expected
            {
                let shown: Vec<&str> = got.iter().map(|n| n.unwrap_or("<missing>")).collect();
                return Err(GraphError::param_count_mismatch(format!(
                    "{section}: template {} ({}) has NAMED parameters [{}], got parameter_name [{}]",
                    t.name,
                    t.language,
                    variables.join(", "),
                    shown.join(", ")
                )));
            }
            got.iter().flatten().map(|n| (*n).to_owned()).collect()
        }
    };

    let mut values = Vec::with_capacity(params.len());
    for (i, (p, key)) in params.iter().zip(keys).enumerate() {
        let n = i + 1;
        let kind = param_type(p).unwrap_or_default();
        if !allowed_types.contains(&kind) {
            return Err(GraphError::invalid_parameter(format!(
                "{section}: parameter {n} has type {kind:?}; expected one of {}",
                allowed_types.join(", ")
            )));
        }
        let text = match kind {
            "text" => p.get("text").and_then(Value::as_str),
            "currency" => currency_fallback(p),
            _ => p
                .get("date_time")
                .and_then(|d| d.get("fallback_value"))
                .and_then(Value::as_str),
        };
        let Some(text) = text else {
            let what = match kind {
                "text" => "text",
                "currency" => "currency {fallback_value, code, amount_1000}",
                _ => "date_time.fallback_value",
            };
            return Err(GraphError::invalid_parameter(format!(
                "{section}: parameter {n} of type {kind} needs {what}"
            )));
        };
        check_text(section, n, text)?;
        values.push((key, text.to_owned()));
    }
    Ok(values)
}

fn currency_fallback(p: &Value) -> Option<&str> {
    let c = p.get("currency")?;
    c.get("code").and_then(Value::as_str)?;
    c.get("amount_1000").and_then(Value::as_i64)?;
    c.get("fallback_value").and_then(Value::as_str)
}

/// A parameter's text: not empty, no new-line or tab, at most 4 consecutive spaces.
fn check_text(section: &str, n: usize, text: &str) -> Result<(), GraphError> {
    if text.trim().is_empty() {
        return Err(GraphError::invalid_parameter(format!(
            "{section}: parameter {n} is empty"
        )));
    }
    if text.contains(['\n', '\r', '\t']) || text.contains("     ") {
        return Err(GraphError::invalid_param_text(format!(
            "{section}: parameter {n}: Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
        )));
    }
    Ok(())
}

fn check_buttons(t: &Template, buttons: &[&Map<String, Value>]) -> Result<(), GraphError> {
    let mut seen = HashSet::new();
    for b in buttons {
        match b.get("sub_type").and_then(Value::as_str) {
            Some(s) if s.eq_ignore_ascii_case("quick_reply") => {}
            Some(s) => {
                return Err(GraphError::invalid_parameter(format!(
                    "button: sub_type {s:?} is not supported by wa-sim; use quick_reply"
                )));
            }
            None => {
                return Err(GraphError::invalid_parameter(
                    "button: sub_type is required",
                ));
            }
        }
        let index = match b.get("index") {
            Some(Value::String(s)) if s.len() == 1 => s.parse::<usize>().ok(),
            Some(Value::Number(n)) => n.as_u64().filter(|i| *i <= 9).map(|i| i as usize),
            _ => None,
        };
        let Some(index) = index else {
            return Err(GraphError::invalid_parameter(
                "button: index is required and must be \"0\"..\"9\"",
            ));
        };
        if !seen.insert(index) {
            return Err(GraphError::invalid_parameter(format!(
                "button: index {index} appears more than once"
            )));
        }
        let Some(button) = t.buttons.get(index) else {
            return Err(GraphError::param_count_mismatch(format!(
                "button: index {index} does not exist; template {} ({}) has {} buttons",
                t.name,
                t.language,
                t.buttons.len()
            )));
        };
        if button.kind != "QUICK_REPLY" {
            return Err(GraphError::invalid_parameter(format!(
                "button: index {index} is a {} button, not QUICK_REPLY",
                button.kind
            )));
        }
        let params = parameters(b, "button")?;
        let [p] = params else {
            return Err(count_mismatch(&format!("button {index}"), params.len(), 1));
        };
        let payload_ok =
            param_type(p) == Some("payload") && p.get("payload").and_then(Value::as_str).is_some();
        if !payload_ok {
            return Err(GraphError::invalid_parameter(format!(
                "button {index}: the parameter must be {{\"type\": \"payload\", \"payload\": \"…\"}}"
            )));
        }
    }
    Ok(())
}
