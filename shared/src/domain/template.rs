//! A WhatsApp message template as the Graph API describes it (`message_templates` "data"),
//! reduced to what intake, payloads and previews need.
//!
//! Variables:
//! - Positional templates (`{{1}}`, `{{2}}`): the header and the body are numbered separately
//!   (`{{1}}` in the header and `{{1}}` in the body are two variables). Within a component they
//!   are ordered by number, which is the order WhatsApp expects the parameters in.
//! - Named templates (`parameter_format: NAMED`, `{{nome}}`, lower-case letters, digits and
//!   underscores): ordered by first appearance; a name used twice in one component is one
//!   variable. The same name in the header and in the body is two variables (each component gets
//!   its own parameter) that share one column, [`Variable::column_name`].
//! - A URL button whose URL ends in a placeholder has one variable (component `Button`).
//! - An IMAGE, VIDEO or DOCUMENT header has one media variable, key `Name("header_media")`
//!   ([`MEDIA_VARIABLE`]): its value is the link WhatsApp downloads the media from.
//!
//! Templates that parse but cannot be sent by this system yet (LOCATION headers, copy-code, OTP,
//! flow and other special buttons) say why in [`Template::unsupported_reason`]; intake refuses
//! them. Component types we do not model at all (CAROUSEL, LIMITED_TIME_OFFER…) make
//! [`Template::from_graph`] fail.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::Retryable;

/// The key of the media variable of an IMAGE, VIDEO or DOCUMENT header (its column name too).
pub const MEDIA_VARIABLE: &str = "header_media";

/// Longest placeholder name we accept; longer `{{…}}` texts are literal text.
const MAX_NAME_LEN: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TemplateStatus {
    Approved,
    Pending,
    Rejected,
    Paused,
    Disabled,
    InAppeal,
    PendingDeletion,
    Deleted,
    LimitExceeded,
    Other(String),
}

impl TemplateStatus {
    /// From the Graph API's text ("APPROVED", "IN_APPEAL"…), case-insensitively.
    pub fn from_graph(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "APPROVED" => Self::Approved,
            "PENDING" => Self::Pending,
            "REJECTED" => Self::Rejected,
            "PAUSED" => Self::Paused,
            "DISABLED" => Self::Disabled,
            "IN_APPEAL" => Self::InAppeal,
            "PENDING_DELETION" => Self::PendingDeletion,
            "DELETED" => Self::Deleted,
            "LIMIT_EXCEEDED" => Self::LimitExceeded,
            _ => Self::Other(s.trim().to_owned()),
        }
    }

    /// The Graph API's text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Approved => "APPROVED",
            Self::Pending => "PENDING",
            Self::Rejected => "REJECTED",
            Self::Paused => "PAUSED",
            Self::Disabled => "DISABLED",
            Self::InAppeal => "IN_APPEAL",
            Self::PendingDeletion => "PENDING_DELETION",
            Self::Deleted => "DELETED",
            Self::LimitExceeded => "LIMIT_EXCEEDED",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for TemplateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TemplateStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TemplateStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(Self::from_graph(&s))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParameterFormat {
    Positional,
    Named,
}

/// Where a variable lives. `Button { index }` is the button's 0-based index, as in the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Header,
    Body,
    Button { index: u8 },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariableKey {
    Position(u8),
    Name(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub component: Component,
    pub key: VariableKey,
    pub example: Option<String>,
}

impl Variable {
    /// The column label for this variable in spreadsheets and results:
    /// named → the name ("nome"); positional body → "{{1}}"; positional header →
    /// "header {{1}}"; URL button → "button 1 {{1}}" (1-based: the first button);
    /// media header → "header_media".
    pub fn column_name(&self) -> String {
        match (&self.component, &self.key) {
            (_, VariableKey::Name(name)) => name.clone(),
            (Component::Body, VariableKey::Position(n)) => format!("{{{{{n}}}}}"),
            (Component::Header, VariableKey::Position(n)) => format!("header {{{{{n}}}}}"),
            (Component::Button { index }, VariableKey::Position(n)) => {
                format!("button {} {{{{{n}}}}}", u16::from(*index) + 1)
            }
        }
    }

    /// The placeholder as written in the template ("{{1}}", "{{nome}}"); media: "header_media".
    pub fn placeholder(&self) -> String {
        if self.is_media() {
            return MEDIA_VARIABLE.to_owned();
        }
        match &self.key {
            VariableKey::Position(n) => format!("{{{{{n}}}}}"),
            VariableKey::Name(name) => format!("{{{{{name}}}}}"),
        }
    }

    /// The `parameter_name` the payload carries (named variables only, not the media one).
    pub fn parameter_name(&self) -> Option<&str> {
        match &self.key {
            VariableKey::Name(name) if !self.is_media() => Some(name),
            _ => None,
        }
    }

    /// True for the link of an IMAGE, VIDEO or DOCUMENT header.
    pub fn is_media(&self) -> bool {
        self.component == Component::Header
            && matches!(&self.key, VariableKey::Name(name) if name == MEDIA_VARIABLE)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderFormat {
    Text(String),
    Image,
    Video,
    Document,
    Location,
}

impl HeaderFormat {
    /// The payload parameter type of a media header: "image", "video" or "document".
    pub fn media_type(&self) -> Option<&'static str> {
        match self {
            Self::Image => Some("image"),
            Self::Video => Some("video"),
            Self::Document => Some("document"),
            Self::Text(_) | Self::Location => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    QuickReply,
    Url {
        url: String,
    },
    PhoneNumber,
    CopyCode,
    /// The Graph type as given: "OTP", "FLOW", "CATALOG", "MPM", "VOICE_CALL"…
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub index: u8,
    pub kind: ButtonKind,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: Option<String>,
    pub name: String,
    pub language: String,
    pub status: TemplateStatus,
    pub category: String,
    pub parameter_format: ParameterFormat,
    pub header: Option<HeaderFormat>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Vec<Button>,
    /// Header variables, then body variables, then URL-button variables.
    pub variables: Vec<Variable>,
}

/// The text the customer sees, with the variables filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    pub header: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template JSON is not an object")]
    NotAnObject,
    #[error("template {name:?} has no {field}")]
    MissingField { name: String, field: &'static str },
    #[error("template {name:?} has no BODY component")]
    NoBody { name: String },
    #[error("template {name:?} has a {component} component, which is not supported")]
    UnsupportedComponent { name: String, component: String },
    #[error("template {name:?} has an invalid placeholder {placeholder:?}")]
    InvalidPlaceholder { name: String, placeholder: String },
    #[error("template {name:?} has more buttons than WhatsApp allows")]
    TooManyButtons { name: String },
}

impl Retryable for TemplateError {
    fn is_retryable(&self) -> bool {
        false
    }
}

impl Template {
    /// Reads one object of the `message_templates` "data" array.
    pub fn from_graph(value: &Value) -> Result<Template, TemplateError> {
        let object = value.as_object().ok_or(TemplateError::NotAnObject)?;
        let text_of = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let name = text_of("name")
            .ok_or_else(|| TemplateError::MissingField {
                name: String::new(),
                field: "name",
            })?
            .to_owned();
        let language = text_of("language")
            .ok_or_else(|| TemplateError::MissingField {
                name: name.clone(),
                field: "language",
            })?
            .to_owned();
        let id = match object.get("id") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let status = text_of("status")
            .map(TemplateStatus::from_graph)
            .unwrap_or_else(|| TemplateStatus::Other(String::new()));
        let category = text_of("category").unwrap_or_default().to_owned();

        let components: &[Value] = object
            .get("components")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut header_component = None;
        let mut body_component = None;
        let mut footer = None;
        let mut button_values: Vec<&Value> = Vec::new();
        for component in components {
            let kind = component
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_uppercase();
            match kind.as_str() {
                "HEADER" => header_component = Some(component),
                "BODY" => body_component = Some(component),
                "FOOTER" => {
                    footer = component
                        .get("text")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }
                "BUTTONS" => button_values.extend(
                    component
                        .get("buttons")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten(),
                ),
                _ => {
                    return Err(TemplateError::UnsupportedComponent {
                        name,
                        component: if kind.is_empty() {
                            "untyped".to_owned()
                        } else {
                            kind
                        },
                    });
                }
            }
        }
        let body_component =
            body_component.ok_or_else(|| TemplateError::NoBody { name: name.clone() })?;
        let body = body_component
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();

        let parameter_format = match text_of("parameter_format")
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some("NAMED") => ParameterFormat::Named,
            Some(_) => ParameterFormat::Positional,
            // Absent: positional unless the texts use named placeholders.
            None => {
                let header_text = header_component
                    .and_then(|h| h.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let named = [header_text, body.as_str()].iter().any(|text| {
                    pieces(text).iter().any(
                        |p| matches!(p, Piece::Token { token, .. } if !is_digits(token) && is_name(token)),
                    )
                });
                if named {
                    ParameterFormat::Named
                } else {
                    ParameterFormat::Positional
                }
            }
        };

        let mut variables = Vec::new();

        let header = match header_component {
            None => None,
            Some(h) => {
                let format = h
                    .get("format")
                    .and_then(Value::as_str)
                    .unwrap_or("TEXT")
                    .to_ascii_uppercase();
                let example = h.get("example");
                let media = |format| {
                    let example = example
                        .and_then(|e| e.get("header_handle"))
                        .and_then(Value::as_array)
                        .and_then(|a| a.first())
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    (format, example)
                };
                let (format, media_example) = match format.as_str() {
                    "TEXT" => {
                        let text = h
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let keys =
                            component_keys(&name, &text, Component::Header, parameter_format)?;
                        for key in keys {
                            let example = text_example(example, "header_text", false, &key);
                            variables.push(Variable {
                                component: Component::Header,
                                key,
                                example,
                            });
                        }
                        (HeaderFormat::Text(text), None)
                    }
                    "IMAGE" => media(HeaderFormat::Image),
                    "VIDEO" => media(HeaderFormat::Video),
                    "DOCUMENT" => media(HeaderFormat::Document),
                    "LOCATION" => (HeaderFormat::Location, None),
                    other => {
                        return Err(TemplateError::UnsupportedComponent {
                            name,
                            component: format!("HEADER {other}"),
                        });
                    }
                };
                if format.media_type().is_some() {
                    variables.push(Variable {
                        component: Component::Header,
                        key: VariableKey::Name(MEDIA_VARIABLE.to_owned()),
                        example: media_example,
                    });
                }
                Some(format)
            }
        };

        for key in component_keys(&name, &body, Component::Body, parameter_format)? {
            let example = text_example(body_component.get("example"), "body_text", true, &key);
            variables.push(Variable {
                component: Component::Body,
                key,
                example,
            });
        }

        let mut buttons = Vec::with_capacity(button_values.len());
        for (position, button) in button_values.into_iter().enumerate() {
            let index = u8::try_from(position)
                .map_err(|_| TemplateError::TooManyButtons { name: name.clone() })?;
            let kind_text = button
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_ascii_uppercase();
            let text = button
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let kind = match kind_text.as_str() {
                "QUICK_REPLY" => ButtonKind::QuickReply,
                "URL" => {
                    let url = button
                        .get("url")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    let component = Component::Button { index };
                    for key in component_keys(&name, &url, component, parameter_format)? {
                        let example = url_example(&url, button.get("example"));
                        variables.push(Variable {
                            component,
                            key,
                            example,
                        });
                    }
                    ButtonKind::Url { url }
                }
                "PHONE_NUMBER" => ButtonKind::PhoneNumber,
                "COPY_CODE" => ButtonKind::CopyCode,
                _ => ButtonKind::Other(kind_text),
            };
            buttons.push(Button { index, kind, text });
        }

        Ok(Template {
            id,
            name,
            language,
            status,
            category,
            parameter_format,
            header,
            body,
            footer,
            buttons,
            variables,
        })
    }

    /// Only APPROVED templates may be sent.
    pub fn is_sendable(&self) -> bool {
        self.status == TemplateStatus::Approved
    }

    /// Why this system cannot send this template yet, if it cannot.
    pub fn unsupported_reason(&self) -> Option<String> {
        if self.header == Some(HeaderFormat::Location) {
            return Some("LOCATION headers are not supported".to_owned());
        }
        for button in &self.buttons {
            match &button.kind {
                ButtonKind::QuickReply | ButtonKind::PhoneNumber => {}
                ButtonKind::Url { .. } => {
                    let count = self
                        .variables
                        .iter()
                        .filter(|v| {
                            v.component
                                == Component::Button {
                                    index: button.index,
                                }
                        })
                        .count();
                    if count > 1 {
                        return Some(format!(
                            "URL button {:?} has {count} variables; WhatsApp allows one",
                            button.text
                        ));
                    }
                }
                ButtonKind::CopyCode => {
                    return Some("COPY_CODE buttons are not supported".to_owned());
                }
                ButtonKind::Other(kind) => {
                    return Some(format!("{kind} buttons are not supported"));
                }
            }
        }
        None
    }

    pub fn quick_reply_buttons(&self) -> impl Iterator<Item = &Button> {
        self.buttons
            .iter()
            .filter(|b| b.kind == ButtonKind::QuickReply)
    }

    /// The variables' columns without repeats, in variable order (a name shared by the header
    /// and the body is one column).
    pub fn column_names(&self) -> Vec<String> {
        let mut columns: Vec<String> = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let name = variable.column_name();
            if !columns.contains(&name) {
                columns.push(name);
            }
        }
        columns
    }

    /// Fills the variables in; `values` are aligned with [`Template::variables`]. A variable
    /// without a value keeps its placeholder. Media headers render as "[image: <link>]".
    pub fn render(&self, values: &[String]) -> Rendered {
        let lookup: HashMap<(Component, &VariableKey), &str> = self
            .variables
            .iter()
            .zip(values)
            .map(|(v, value)| ((v.component, &v.key), value.as_str()))
            .collect();
        let fill = |text: &str, component: Component| {
            let mut out = String::with_capacity(text.len());
            for piece in pieces(text) {
                match piece {
                    Piece::Text(t) => out.push_str(t),
                    Piece::Token { token, raw } => {
                        let value = key_for(token, component, self.parameter_format)
                            .and_then(|key| lookup.get(&(component, &key)).copied());
                        out.push_str(value.unwrap_or(raw));
                    }
                }
            }
            out
        };
        let media_key = VariableKey::Name(MEDIA_VARIABLE.to_owned());
        let header = self.header.as_ref().map(|h| match h {
            HeaderFormat::Text(text) => fill(text, Component::Header),
            HeaderFormat::Location => "[location]".to_owned(),
            media => {
                let kind = media.media_type().unwrap_or("media");
                let link = lookup.get(&(Component::Header, &media_key));
                match link {
                    Some(link) => format!("[{kind}: {link}]"),
                    None => format!("[{kind}]"),
                }
            }
        });
        Rendered {
            header,
            body: fill(&self.body, Component::Body),
            footer: self.footer.clone(),
            buttons: self.buttons.iter().map(|b| b.text.clone()).collect(),
        }
    }
}

/// A piece of template text: literal text or a `{{token}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Token { token: &'a str, raw: &'a str },
}

/// Splits text into literal text and `{{…}}` placeholders whose content could be a variable
/// (digits, or lower-case letters, digits and underscores). Anything else is literal.
fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut literal_start = 0;
    let mut search = 0;
    while let Some(open) = text[search..].find("{{").map(|i| search + i) {
        let content_start = open + 2;
        let Some(close) = text[content_start..].find("}}").map(|i| content_start + i) else {
            break;
        };
        let token = &text[content_start..close];
        if is_name(token) {
            if literal_start < open {
                out.push(Piece::Text(&text[literal_start..open]));
            }
            out.push(Piece::Token {
                token,
                raw: &text[open..close + 2],
            });
            literal_start = close + 2;
            search = close + 2;
        } else {
            // Not a placeholder; look again from the next brace ("{{{1}}}" finds "{{1}}").
            search = open + 1;
        }
    }
    if literal_start < text.len() {
        out.push(Piece::Text(&text[literal_start..]));
    }
    out
}

fn is_digits(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit())
}

fn is_name(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= MAX_NAME_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The variable a placeholder stands for, if it is one. Positional header and body: digits
/// only (a `{{nome}}` there is literal text); named: any name; URL buttons: by syntax.
fn key_for(token: &str, component: Component, format: ParameterFormat) -> Option<VariableKey> {
    let position = || token.parse::<u8>().ok().filter(|n| *n > 0);
    match (component, format) {
        (Component::Button { .. }, _) if is_digits(token) => position().map(VariableKey::Position),
        (Component::Button { .. }, _) | (_, ParameterFormat::Named) => {
            Some(VariableKey::Name(token.to_owned()))
        }
        (_, ParameterFormat::Positional) if is_digits(token) => {
            position().map(VariableKey::Position)
        }
        (_, ParameterFormat::Positional) => None,
    }
}

/// The distinct variables of one component's text: positional ones by number, named ones by
/// first appearance.
fn component_keys(
    name: &str,
    text: &str,
    component: Component,
    format: ParameterFormat,
) -> Result<Vec<VariableKey>, TemplateError> {
    let mut keys: Vec<VariableKey> = Vec::new();
    for piece in pieces(text) {
        let Piece::Token { token, raw } = piece else {
            continue;
        };
        let positional = is_digits(token)
            && (format == ParameterFormat::Positional
                || matches!(component, Component::Button { .. }));
        let key = key_for(token, component, format);
        if positional && key.is_none() {
            return Err(TemplateError::InvalidPlaceholder {
                name: name.to_owned(),
                placeholder: raw.to_owned(),
            });
        }
        if let Some(key) = key
            && !keys.contains(&key)
        {
            keys.push(key);
        }
    }
    keys.sort_by_key(|key| match key {
        VariableKey::Position(n) => (0, *n),
        VariableKey::Name(_) => (1, 0),
    });
    Ok(keys)
}

/// The example of a header or body variable: positional from `header_text` (a list) or
/// `body_text` (a list of lists), named from `<field>_named_params`.
fn text_example(
    example: Option<&Value>,
    field: &str,
    nested: bool,
    key: &VariableKey,
) -> Option<String> {
    let example = example?;
    match key {
        VariableKey::Position(n) => {
            let mut list = example.get(field)?;
            if nested {
                list = list.get(0)?;
            }
            list.get(usize::from(*n).checked_sub(1)?)?
                .as_str()
                .map(str::to_owned)
        }
        VariableKey::Name(name) => example
            .get(format!("{field}_named_params"))?
            .as_array()?
            .iter()
            .find(|p| p.get("param_name").and_then(Value::as_str) == Some(name))?
            .get("example")?
            .as_str()
            .map(str::to_owned),
    }
}

/// A URL button's example is the whole URL; the variable's example is the part the
/// placeholder stands for.
fn url_example(url: &str, example: Option<&Value>) -> Option<String> {
    let full = match example? {
        Value::Array(items) => items.first()?.as_str()?,
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    let (prefix, suffix) = match pieces(url).as_slice() {
        [Piece::Token { .. }] => ("", ""),
        [Piece::Text(prefix), Piece::Token { .. }] => (*prefix, ""),
        [Piece::Token { .. }, Piece::Text(suffix)] => ("", *suffix),
        [
            Piece::Text(prefix),
            Piece::Token { .. },
            Piece::Text(suffix),
        ] => (*prefix, *suffix),
        _ => return Some(full.to_owned()),
    };
    let middle = full
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .filter(|middle| !middle.is_empty());
    Some(middle.unwrap_or(full).to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn boas_vindas_json() -> Value {
        json!({
            "id": "1667192013751005", "name": "boas_vindas", "language": "pt_BR",
            "status": "APPROVED", "category": "UTILITY", "parameter_format": "POSITIONAL",
            "components": [
              { "type": "HEADER", "format": "TEXT", "text": "{{1}}",
                "example": { "header_text": ["Loja Centro"] } },
              { "type": "BODY", "text": "Olá {{1}}, sua consulta é em {{2}}.",
                "example": { "body_text": [ [ "Maria", "25/12/2026" ] ] } },
              { "type": "FOOTER", "text": "Responda SAIR para não receber mais" },
              { "type": "BUTTONS", "buttons": [ { "type": "QUICK_REPLY", "text": "Sim" },
                                                { "type": "QUICK_REPLY", "text": "Não" } ] } ]
        })
    }

    pub(crate) fn lembrete_json() -> Value {
        json!({
            "id": "2", "name": "lembrete_consulta", "language": "pt_BR",
            "status": "APPROVED", "category": "UTILITY", "parameter_format": "NAMED",
            "components": [
              { "type": "BODY", "text": "Oi, {{nome}}! Sua consulta é dia {{data}} às {{hora}}.",
                "example": { "body_text_named_params": [
                    { "param_name": "nome", "example": "Maria" },
                    { "param_name": "data", "example": "25/12/2026" },
                    { "param_name": "hora", "example": "14:30" } ] } } ]
        })
    }

    pub(crate) fn pedido_json() -> Value {
        json!({
            "id": "3", "name": "pedido_enviado", "language": "pt_BR",
            "status": "APPROVED", "category": "UTILITY", "parameter_format": "POSITIONAL",
            "components": [
              { "type": "HEADER", "format": "IMAGE",
                "example": { "header_handle": ["https://scontent.example/h.jpg"] } },
              { "type": "BODY", "text": "Seu pedido {{1}} saiu para entrega." },
              { "type": "BUTTONS", "buttons": [
                  { "type": "URL", "text": "Rastrear",
                    "url": "https://loja.example/rastreio/{{1}}",
                    "example": ["https://loja.example/rastreio/ABC123"] },
                  { "type": "PHONE_NUMBER", "text": "Ligar", "phone_number": "+5511987654321" },
                  { "type": "QUICK_REPLY", "text": "Parar" } ] } ]
        })
    }

    pub(crate) fn parse(value: Value) -> Template {
        Template::from_graph(&value).unwrap()
    }

    #[test]
    fn parses_a_positional_template() {
        let t = parse(boas_vindas_json());
        assert_eq!(t.id.as_deref(), Some("1667192013751005"));
        assert_eq!(t.name, "boas_vindas");
        assert_eq!(t.language, "pt_BR");
        assert_eq!(t.status, TemplateStatus::Approved);
        assert!(t.is_sendable());
        assert_eq!(t.category, "UTILITY");
        assert_eq!(t.parameter_format, ParameterFormat::Positional);
        assert_eq!(t.header, Some(HeaderFormat::Text("{{1}}".into())));
        assert_eq!(t.body, "Olá {{1}}, sua consulta é em {{2}}.");
        assert_eq!(
            t.footer.as_deref(),
            Some("Responda SAIR para não receber mais")
        );
        assert_eq!(
            t.buttons,
            vec![
                Button {
                    index: 0,
                    kind: ButtonKind::QuickReply,
                    text: "Sim".into()
                },
                Button {
                    index: 1,
                    kind: ButtonKind::QuickReply,
                    text: "Não".into()
                },
            ]
        );
        assert_eq!(
            t.variables,
            vec![
                Variable {
                    component: Component::Header,
                    key: VariableKey::Position(1),
                    example: Some("Loja Centro".into())
                },
                Variable {
                    component: Component::Body,
                    key: VariableKey::Position(1),
                    example: Some("Maria".into())
                },
                Variable {
                    component: Component::Body,
                    key: VariableKey::Position(2),
                    example: Some("25/12/2026".into())
                },
            ]
        );
        let columns: Vec<String> = t.variables.iter().map(Variable::column_name).collect();
        assert_eq!(columns, ["header {{1}}", "{{1}}", "{{2}}"]);
        assert_eq!(t.quick_reply_buttons().count(), 2);
        assert_eq!(t.unsupported_reason(), None);
    }

    #[test]
    fn parses_a_named_template() {
        let t = parse(lembrete_json());
        assert_eq!(t.parameter_format, ParameterFormat::Named);
        assert_eq!(t.header, None);
        let names: Vec<String> = t.variables.iter().map(Variable::column_name).collect();
        assert_eq!(names, ["nome", "data", "hora"]);
        assert_eq!(t.variables[2].example.as_deref(), Some("14:30"));
        assert_eq!(t.variables[0].parameter_name(), Some("nome"));
        assert_eq!(t.variables[0].placeholder(), "{{nome}}");
        assert!(t.buttons.is_empty());
    }

    #[test]
    fn named_variable_used_twice_is_one_variable() {
        let t = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED", "parameter_format": "NAMED",
            "components": [
              { "type": "HEADER", "format": "TEXT", "text": "Para {{nome}}" },
              { "type": "BODY", "text": "{{nome}}, {{data}} — até {{data}}, {{nome}}!" } ]
        }));
        let vars: Vec<(Component, String)> = t
            .variables
            .iter()
            .map(|v| (v.component, v.column_name()))
            .collect();
        assert_eq!(
            vars,
            vec![
                (Component::Header, "nome".into()),
                (Component::Body, "nome".into()),
                (Component::Body, "data".into()),
            ]
        );
        assert_eq!(t.column_names(), ["nome", "data"]);
        let r = t.render(&["Ana".into(), "Ana".into(), "1/1".into()]);
        assert_eq!(r.header.as_deref(), Some("Para Ana"));
        assert_eq!(r.body, "Ana, 1/1 — até 1/1, Ana!");
    }

    #[test]
    fn positional_variables_are_ordered_by_number() {
        let t = parse(json!({
            "name": "t", "language": "en_US", "status": "APPROVED",
            "components": [ { "type": "BODY", "text": "{{2}} before {{1}}, {{2}} again" } ]
        }));
        let keys: Vec<&VariableKey> = t.variables.iter().map(|v| &v.key).collect();
        assert_eq!(keys, [&VariableKey::Position(1), &VariableKey::Position(2)]);
        let r = t.render(&["one".into(), "two".into()]);
        assert_eq!(r.body, "two before one, two again");
    }

    #[test]
    fn missing_parameter_format_is_inferred() {
        let named = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED",
            "components": [ { "type": "BODY", "text": "Oi {{nome}}" } ]
        }));
        assert_eq!(named.parameter_format, ParameterFormat::Named);
        let positional = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED",
            "components": [ { "type": "BODY", "text": "Oi {{1}}" } ]
        }));
        assert_eq!(positional.parameter_format, ParameterFormat::Positional);
    }

    #[test]
    fn literal_braces_are_not_variables() {
        let t = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED",
            "parameter_format": "POSITIONAL",
            "components": [ { "type": "BODY",
                "text": "{{ 1 }} {{Nome}} {{nome}} {{}} {{1} {{{1}}} }}{{" } ]
        }));
        assert_eq!(t.variables.len(), 1);
        let r = t.render(&["X".into()]);
        assert_eq!(r.body, "{{ 1 }} {{Nome}} {{nome}} {{}} {{1} {X} }}{{");
    }

    #[test]
    fn invalid_positions_are_errors() {
        for text in ["{{0}}", "{{256}}"] {
            let err = Template::from_graph(&json!({
                "name": "t", "language": "pt_BR", "status": "APPROVED",
                "components": [ { "type": "BODY", "text": text } ]
            }))
            .unwrap_err();
            assert!(
                matches!(err, TemplateError::InvalidPlaceholder { .. }),
                "{text}: {err:?}"
            );
        }
    }

    #[test]
    fn media_header_and_url_button() {
        let t = parse(pedido_json());
        assert_eq!(t.header, Some(HeaderFormat::Image));
        let vars: Vec<(Component, String, Option<&str>)> = t
            .variables
            .iter()
            .map(|v| (v.component, v.column_name(), v.example.as_deref()))
            .collect();
        assert_eq!(
            vars,
            vec![
                (
                    Component::Header,
                    "header_media".into(),
                    Some("https://scontent.example/h.jpg")
                ),
                (Component::Body, "{{1}}".into(), None),
                (
                    Component::Button { index: 0 },
                    "button 1 {{1}}".into(),
                    Some("ABC123")
                ),
            ]
        );
        assert!(t.variables[0].is_media());
        assert_eq!(t.variables[0].parameter_name(), None);
        assert_eq!(
            t.buttons[0].kind,
            ButtonKind::Url {
                url: "https://loja.example/rastreio/{{1}}".into()
            }
        );
        assert_eq!(t.buttons[1].kind, ButtonKind::PhoneNumber);
        assert_eq!(
            t.quick_reply_buttons().map(|b| b.index).collect::<Vec<_>>(),
            [2]
        );
        assert_eq!(t.unsupported_reason(), None);
        let r = t.render(&[
            "https://cdn.example/p.jpg".into(),
            "#42".into(),
            "XYZ".into(),
        ]);
        assert_eq!(
            r.header.as_deref(),
            Some("[image: https://cdn.example/p.jpg]")
        );
        assert_eq!(r.body, "Seu pedido #42 saiu para entrega.");
        assert_eq!(r.buttons, ["Rastrear", "Ligar", "Parar"]);
    }

    #[test]
    fn unsupported_parts_are_reported() {
        let location = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED",
            "components": [ { "type": "HEADER", "format": "LOCATION" },
                            { "type": "BODY", "text": "Aqui" } ]
        }));
        assert!(location.unsupported_reason().is_some());
        let copy = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED",
            "components": [ { "type": "BODY", "text": "Cupom" },
                            { "type": "BUTTONS", "buttons": [ { "type": "COPY_CODE", "example": "X" } ] } ]
        }));
        assert_eq!(copy.buttons[0].kind, ButtonKind::CopyCode);
        assert!(copy.unsupported_reason().is_some());
        let otp = parse(json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED", "category": "AUTHENTICATION",
            "components": [ { "type": "BODY", "text": "{{1}} is your code" },
                            { "type": "BUTTONS", "buttons": [ { "type": "OTP", "otp_type": "COPY_CODE" } ] } ]
        }));
        assert_eq!(otp.buttons[0].kind, ButtonKind::Other("OTP".into()));
        assert!(otp.unsupported_reason().is_some_and(|r| r.contains("OTP")));
        let carousel = Template::from_graph(&json!({
            "name": "t", "language": "pt_BR", "status": "APPROVED",
            "components": [ { "type": "BODY", "text": "x" }, { "type": "CAROUSEL", "cards": [] } ]
        }));
        assert!(matches!(
            carousel,
            Err(TemplateError::UnsupportedComponent { component, .. }) if component == "CAROUSEL"
        ));
    }

    #[test]
    fn malformed_json_gives_errors_not_panics() {
        assert_eq!(
            Template::from_graph(&json!([1, 2])),
            Err(TemplateError::NotAnObject)
        );
        assert!(matches!(
            Template::from_graph(&json!({"language": "pt_BR"})),
            Err(TemplateError::MissingField { field: "name", .. })
        ));
        assert!(matches!(
            Template::from_graph(&json!({"name": "x"})),
            Err(TemplateError::MissingField {
                field: "language",
                ..
            })
        ));
        assert!(matches!(
            Template::from_graph(&json!({"name": "x", "language": "en", "components": []})),
            Err(TemplateError::NoBody { .. })
        ));
        // Wrong types everywhere are tolerated where a default makes sense.
        let t = parse(json!({
            "name": "x", "language": "en", "status": 7, "id": 12,
            "components": [ { "type": "body", "text": "hi", "example": "nope" },
                            { "type": "BUTTONS", "buttons": "nope" } ]
        }));
        assert_eq!(t.id.as_deref(), Some("12"));
        assert!(!t.is_sendable());
        assert_eq!(t.body, "hi");
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "APPROVED",
            "PENDING",
            "REJECTED",
            "PAUSED",
            "DISABLED",
            "IN_APPEAL",
            "PENDING_DELETION",
            "DELETED",
            "LIMIT_EXCEEDED",
            "ARCHIVED",
        ] {
            let status = TemplateStatus::from_graph(s);
            assert_eq!(status.as_str(), s);
            assert_eq!(status.to_string(), s);
        }
        assert_eq!(
            TemplateStatus::from_graph("approved"),
            TemplateStatus::Approved
        );
        assert_eq!(
            TemplateStatus::from_graph("ARCHIVED"),
            TemplateStatus::Other("ARCHIVED".into())
        );
        let mut t = parse(boas_vindas_json());
        t.status = TemplateStatus::Paused;
        assert!(!t.is_sendable());
    }

    #[test]
    fn template_serde_round_trips() {
        for value in [boas_vindas_json(), lembrete_json(), pedido_json()] {
            let t = parse(value);
            let json = serde_json::to_value(&t).unwrap();
            assert_eq!(json["status"], "APPROVED");
            let back: Template = serde_json::from_value(json).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn render_fills_header_body_and_keeps_missing_placeholders() {
        let t = parse(boas_vindas_json());
        let r = t.render(&["Loja Centro".into(), "Maria".into(), "25/12/2026".into()]);
        assert_eq!(
            r,
            Rendered {
                header: Some("Loja Centro".into()),
                body: "Olá Maria, sua consulta é em 25/12/2026.".into(),
                footer: Some("Responda SAIR para não receber mais".into()),
                buttons: vec!["Sim".into(), "Não".into()],
            }
        );
        let partial = t.render(&["Loja".into()]);
        assert_eq!(partial.body, "Olá {{1}}, sua consulta é em {{2}}.");
    }
}
