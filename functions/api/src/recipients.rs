//! Template variables as JSON clients send them, turned into the cells of a row, so an API
//! recipient goes through exactly the intake a spreadsheet row goes through.
//!
//! `variables` is either a list of values in the template's column order (`columns` of
//! `GET /v1/templates/{name}`), or an object keyed by column name — with or without the
//! braces: `{"nome": "Maria"}`, `{"1": "Maria"}`, `{"{{1}}": "Maria"}`,
//! `{"header 1": "Loja Centro"}`. Values are strings; numbers and booleans are taken as their
//! text.

use anna_shared::domain::template::Template;
use serde_json::Value;

use crate::problem::ProblemItem;

/// What is wrong with the variables of one recipient (or of a preview).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariableProblems {
    /// Keys, or list positions, that name no variable of the template.
    pub unknown: Vec<String>,
    /// Values that are not text, numbers or booleans.
    pub malformed: Vec<String>,
}

impl VariableProblems {
    pub fn is_empty(&self) -> bool {
        self.unknown.is_empty() && self.malformed.is_empty()
    }

    /// Problem items under `pointer` (e.g. `/recipients/3/variables`).
    pub fn items(&self, pointer: &str, template: &Template) -> Vec<ProblemItem> {
        let columns = template.column_names();
        let known = if columns.is_empty() {
            "it has no variables".to_owned()
        } else {
            format!("its variables are {}", quoted(&columns))
        };
        let unknown = self.unknown.iter().map(|key| ProblemItem {
            pointer: format!("{pointer}/{}", escape_pointer(key)),
            detail: format!(
                "template {} has no variable {key:?}; {known}",
                template.name
            ),
        });
        let malformed = self.malformed.iter().map(|key| ProblemItem {
            pointer: format!("{pointer}/{}", escape_pointer(key)),
            detail: "a variable's value must be text (or a number)".to_owned(),
        });
        unknown.chain(malformed).collect()
    }
}

pub fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("{item:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A JSON scalar as the text a spreadsheet cell would hold; `None` for lists and objects.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The column a key names: the column itself, or the column without its braces.
fn column_for<'c>(columns: &'c [String], key: &str) -> Option<&'c String> {
    let key = key.trim();
    columns
        .iter()
        .find(|column| *column == key || column.replace("{{", "").replace("}}", "") == key)
}

/// The values of `variables` in the template's column order (`""` where none was given), and
/// what is wrong with them (empty when nothing is).
pub fn column_values(
    template: &Template,
    variables: Option<&Value>,
) -> (Vec<String>, VariableProblems) {
    let columns = template.column_names();
    let mut values = vec![String::new(); columns.len()];
    let mut problems = VariableProblems::default();
    match variables {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (index, value) in list.iter().enumerate() {
                match (values.get_mut(index), text_of(value)) {
                    (None, _) => problems.unknown.push(index.to_string()),
                    (Some(_), None) => problems.malformed.push(index.to_string()),
                    (Some(slot), Some(text)) => *slot = text,
                }
            }
        }
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let position = column_for(&columns, key)
                    .and_then(|column| columns.iter().position(|c| c == column));
                match (position, text_of(value)) {
                    (None, _) => problems.unknown.push(key.clone()),
                    (Some(_), None) => problems.malformed.push(key.clone()),
                    (Some(position), Some(text)) => values[position] = text,
                }
            }
        }
        Some(_) => problems.malformed.push(String::new()),
    }
    (values, problems)
}

/// The row a recipient becomes: the phone, then the values in column order.
pub fn row_cells(phone: &str, values: Vec<String>) -> Vec<String> {
    std::iter::once(phone.to_owned()).chain(values).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(value: Value) -> Template {
        Template::from_graph(&value).expect("template")
    }

    fn boas_vindas() -> Template {
        template(json!({
            "name": "boas_vindas", "language": "pt_BR", "status": "APPROVED",
            "components": [
                { "type": "HEADER", "format": "TEXT", "text": "{{1}}" },
                { "type": "BODY", "text": "Olá {{1}}, sua consulta é em {{2}}." } ]
        }))
    }

    fn lembrete() -> Template {
        template(json!({
            "name": "lembrete", "language": "pt_BR", "status": "APPROVED",
            "parameter_format": "NAMED",
            "components": [ { "type": "BODY", "text": "Oi {{nome}}, dia {{data}}" } ]
        }))
    }

    #[test]
    fn lists_follow_column_order() {
        let t = boas_vindas();
        let ok = |values: Vec<&str>| {
            (
                values.into_iter().map(str::to_owned).collect::<Vec<_>>(),
                VariableProblems::default(),
            )
        };
        assert_eq!(
            column_values(&t, Some(&json!(["Loja", "Maria", 25]))),
            ok(vec!["Loja", "Maria", "25"])
        );
        assert_eq!(
            column_values(&t, Some(&json!(["Loja"]))),
            ok(vec!["Loja", "", ""])
        );
        let (_, err) = column_values(&t, Some(&json!(["a", "b", "c", "d", {}])));
        assert_eq!(err.unknown, ["3", "4"]);
    }

    #[test]
    fn objects_name_columns_with_or_without_braces() {
        let t = boas_vindas();
        let (values, problems) = column_values(
            &t,
            Some(&json!({"header 1": "Loja", "{{1}}": "Maria", "2": "25/12"})),
        );
        assert!(problems.is_empty());
        assert_eq!(values, ["Loja", "Maria", "25/12"]);
        let named = lembrete();
        let (values, problems) = column_values(&named, Some(&json!({"data": "1/1", "nome": null})));
        assert!(problems.is_empty());
        assert_eq!(values, ["", "1/1"]);
        let (_, err) = column_values(&named, Some(&json!({"nme": "x", "data": ["x"]})));
        assert_eq!(err.unknown, ["nme"]);
        assert_eq!(err.malformed, ["data"]);
        let items = err.items("/recipients/0/variables", &named);
        assert_eq!(items[0].pointer, "/recipients/0/variables/nme");
        assert!(items[0].detail.contains("\"nome\", \"data\""), "{items:?}");
        assert!(!column_values(&named, Some(&json!("text"))).1.is_empty());
        assert_eq!(column_values(&named, None).0, ["", ""]);
    }

    #[test]
    fn pointers_escape_their_segments() {
        assert_eq!(escape_pointer("a/b~c"), "a~1b~0c");
    }
}
