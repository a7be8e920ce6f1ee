//! The template catalogue: Graph-format template objects (as `message_templates` returns them),
//! parsed once at start-up into what the send validation needs.

use anyhow::{Context, bail};
use serde_json::Value;

/// How a template names its variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterFormat {
    /// `{{1}}`, `{{2}}`: parameters in order.
    Positional,
    /// `{{nome}}`: each parameter carries `parameter_name`.
    Named,
}

/// What a template's HEADER holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// `format: TEXT`, with the variables in its text (0 or 1).
    Text {
        text: String,
        variables: Vec<String>,
    },
    /// `format: IMAGE | VIDEO | DOCUMENT`: one parameter of that (lower-case) type.
    Media { kind: String },
    /// `format: LOCATION`: one `location` parameter.
    Location,
}

/// One button of a template's BUTTONS component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, …
    pub kind: String,
    pub text: String,
}

/// A parsed template, plus the Graph object it came from.
#[derive(Debug, Clone)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    pub parameter_format: ParameterFormat,
    pub header: Option<Header>,
    pub body: String,
    /// Body variables in order: `"1"`, `"2"`… or names, each once.
    pub body_variables: Vec<String>,
    pub buttons: Vec<Button>,
    /// The Graph object, as served by `message_templates`.
    pub raw: Value,
}

/// All templates, in the order they were configured (the order `message_templates` pages them).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    templates: Vec<Template>,
}

impl Catalog {
    /// Parses Graph template objects; names the first one that is not usable.
    pub fn from_values(values: &[Value]) -> anyhow::Result<Self> {
        let mut templates: Vec<Template> = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let template = Template::from_value(value).with_context(|| {
                let name = value.get("name").and_then(Value::as_str).unwrap_or("?");
                format!("template #{i} ({name})")
            })?;
            if templates
                .iter()
                .any(|t| t.name == template.name && t.language == template.language)
            {
                bail!(
                    "template #{i}: {} / {} is configured twice",
                    template.name,
                    template.language
                );
            }
            templates.push(template);
        }
        Ok(Self { templates })
    }

    pub fn all(&self) -> &[Template] {
        &self.templates
    }

    pub fn find(&self, name: &str, language: &str) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| t.name == name && t.language == language)
    }

    /// Languages a template name exists in (for error details).
    pub fn languages_of(&self, name: &str) -> Vec<&str> {
        self.templates
            .iter()
            .filter(|t| t.name == name)
            .map(|t| t.language.as_str())
            .collect()
    }
}

impl Template {
    fn from_value(v: &Value) -> anyhow::Result<Self> {
        let field = |name: &str| -> anyhow::Result<String> {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .with_context(|| format!("missing string field `{name}`"))
        };
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => bail!("missing field `id`"),
        };
        let name = field("name")?;
        let language = field("language")?;
        let status = field("status")?;
        let category = field("category")?;
        let parameter_format = match v.get("parameter_format").and_then(Value::as_str) {
            None | Some("POSITIONAL") => ParameterFormat::Positional,
            Some("NAMED") => ParameterFormat::Named,
            Some(other) => bail!("unknown parameter_format {other:?}"),
        };
        let components = v
            .get("components")
            .and_then(Value::as_array)
            .context("missing array `components`")?;

        let mut header = None;
        let mut body = None;
        let mut buttons = Vec::new();
        for c in components {
            let kind = c
                .get("type")
                .and_then(Value::as_str)
                .context("component without `type`")?;
            match kind.to_ascii_uppercase().as_str() {
                "HEADER" => {
                    let format = c.get("format").and_then(Value::as_str).unwrap_or("TEXT");
                    header = Some(match format.to_ascii_uppercase().as_str() {
                        "TEXT" => {
                            let text = c
                                .get("text")
                                .and_then(Value::as_str)
                                .context("TEXT header without `text`")?
                                .to_owned();
                            let variables = variables(&text, parameter_format)?;
                            if variables.len() > 1 {
                                bail!("a TEXT header has at most one variable");
                            }
                            Header::Text { text, variables }
                        }
                        "IMAGE" | "VIDEO" | "DOCUMENT" => Header::Media {
                            kind: format.to_ascii_lowercase(),
                        },
                        "LOCATION" => Header::Location,
                        other => bail!("unknown header format {other:?}"),
                    });
                }
                "BODY" => {
                    let text = c
                        .get("text")
                        .and_then(Value::as_str)
                        .context("BODY without `text`")?;
                    body = Some(text.to_owned());
                }
                "FOOTER" => {}
                "BUTTONS" => {
                    let list = c
                        .get("buttons")
                        .and_then(Value::as_array)
                        .context("BUTTONS without `buttons`")?;
                    for b in list {
                        buttons.push(Button {
                            kind: b
                                .get("type")
                                .and_then(Value::as_str)
                                .context("button without `type`")?
                                .to_ascii_uppercase(),
                            text: b
                                .get("text")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned(),
                        });
                    }
                    if buttons.len() > 10 {
                        bail!("more than 10 buttons");
                    }
                }
                other => bail!("unknown component type {other:?}"),
            }
        }
        let body = body.context("no BODY component")?;
        let body_variables = variables(&body, parameter_format)?;
        Ok(Self {
            id,
            name,
            language,
            status,
            category,
            parameter_format,
            header,
            body,
            body_variables,
            buttons,
            raw: v.clone(),
        })
    }
}

/// The distinct `{{…}}` variables of a text, in order: positional ones sorted by number
/// (and required to be `1..=n`), named ones in order of first appearance.
pub fn variables(text: &str, format: ParameterFormat) -> anyhow::Result<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        match format {
            ParameterFormat::Positional => {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
                    bail!("positional template with variable {{{{{name}}}}}");
                }
            }
            ParameterFormat::Named => {
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !valid {
                    bail!("named template with variable {{{{{name}}}}}");
                }
            }
        }
        if !found.iter().any(|f| f == name) {
            found.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    if format == ParameterFormat::Positional {
        let mut numbers: Vec<usize> = found.iter().filter_map(|n| n.parse().ok()).collect();
        numbers.sort_unstable();
        if numbers.iter().enumerate().any(|(i, n)| *n != i + 1) {
            bail!("positional variables must be {{{{1}}}}..{{{{n}}}}, got {found:?}");
        }
        found = numbers.iter().map(usize::to_string).collect();
    }
    Ok(found)
}

/// Replaces each `{{var}}` with its value (for the rendered-length checks).
pub fn render(text: &str, values: &[(String, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let name = after[..end].trim();
        match values.iter().find(|(n, _)| n == name) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_variables() {
        let v = variables(
            "Olá {{1}}, sua consulta é em {{2}}.",
            ParameterFormat::Positional,
        );
        assert_eq!(v.ok(), Some(vec!["1".to_owned(), "2".to_owned()]));
        let v = variables("{{2}} e {{1}} e {{1}}", ParameterFormat::Positional);
        assert_eq!(v.ok(), Some(vec!["1".to_owned(), "2".to_owned()]));
        assert!(variables("{{1}} {{3}}", ParameterFormat::Positional).is_err());
        assert!(variables("{{nome}}", ParameterFormat::Positional).is_err());
        assert_eq!(
            variables("sem variáveis", ParameterFormat::Positional).ok(),
            Some(vec![])
        );
    }

    #[test]
    fn named_variables() {
        let v = variables(
            "Oi, {{nome}}! Sua consulta é dia {{data}} às {{hora}}. {{nome}}",
            ParameterFormat::Named,
        );
        assert_eq!(
            v.ok(),
            Some(vec![
                "nome".to_owned(),
                "data".to_owned(),
                "hora".to_owned()
            ])
        );
        assert!(variables("{{1}}", ParameterFormat::Named).is_err());
        assert!(variables("{{Nome}}", ParameterFormat::Named).is_err());
    }

    #[test]
    fn render_substitutes() {
        let values = vec![
            ("1".to_owned(), "Maria".to_owned()),
            ("2".to_owned(), "25/12".to_owned()),
        ];
        assert_eq!(
            render("Olá {{1}}, em {{2}} {{3}}.", &values),
            "Olá Maria, em 25/12 {{3}}."
        );
    }

    #[test]
    fn default_fixtures_parse() {
        let config = crate::SimConfig::with_default_templates();
        let catalog = Catalog::from_values(&config.templates);
        let catalog = match catalog {
            Ok(c) => c,
            Err(e) => panic!("fixtures: {e:#}"),
        };
        assert!(catalog.all().len() >= 8);
        let t = catalog.find("lembrete_consulta", "pt_BR");
        assert_eq!(
            t.map(|t| t.body_variables.clone()),
            Some(vec![
                "nome".to_owned(),
                "data".to_owned(),
                "hora".to_owned()
            ])
        );
        let t = catalog.find("boas_vindas", "pt_BR");
        assert!(matches!(
            t.and_then(|t| t.header.as_ref()),
            Some(Header::Text { variables, .. }) if variables.len() == 1
        ));
        assert_eq!(t.map(|t| t.buttons.len()), Some(2));
    }
}
