//! The template gallery, previews, and the spreadsheet layout a template needs.

use anna_shared::domain::intake::{Intake, RowOutcome};
use anna_shared::domain::template::{
    ButtonKind, Component, HeaderFormat, ParameterFormat, Template,
};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::context::SharedContext;
use crate::problem::{ApiError, ApiJson, ApiPath, ApiQuery, Problem, ProblemItem};
use crate::recipients::{column_values, escape_pointer, quoted, row_cells};
use crate::sheets::{SheetFormat, SheetWriter};

/// The phone column of spreadsheets, and the example number of layouts and previews.
pub const PHONE_COLUMN: &str = "phone";
pub const EXAMPLE_PHONE: &str = "5511987654321";

/// A WhatsApp message template, as the gallery shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateView {
    pub name: String,
    pub language: String,
    /// APPROVED, PAUSED, … Only APPROVED templates can be sent.
    pub status: String,
    /// MARKETING, UTILITY or AUTHENTICATION.
    pub category: String,
    /// POSITIONAL (`{{1}}`) or NAMED (`{{nome}}`).
    pub parameter_format: String,
    pub header: Option<HeaderView>,
    pub body: String,
    pub footer: Option<String>,
    pub buttons: Vec<ButtonView>,
    /// The variables, in the order WhatsApp takes them.
    pub variables: Vec<VariableView>,
    /// The columns a spreadsheet needs after the phone column, and the keys of a recipient's
    /// `variables` (a name shared by the header and the body is one column).
    pub columns: Vec<String>,
    /// Whether anna-notify can send it (approved, and no unsupported parts).
    pub sendable: bool,
    /// Why it cannot be sent, when it cannot.
    pub unsendable_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeaderView {
    /// TEXT, IMAGE, VIDEO, DOCUMENT or LOCATION.
    pub format: String,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ButtonView {
    /// QUICK_REPLY, URL, PHONE_NUMBER, COPY_CODE, …
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VariableView {
    /// Its column (and `variables` key): `nome`, `{{1}}`, `header {{1}}`, `button 1 {{1}}`,
    /// `header_media`.
    pub column: String,
    /// As written in the template: `{{nome}}`, `{{1}}`.
    pub placeholder: String,
    /// header, body or button.
    pub component: String,
    /// The button's position (0-based) for a URL-button variable.
    pub button_index: Option<u8>,
    /// The example value the template was approved with.
    pub example: Option<String>,
    /// True for the link of an image, video or document header.
    pub media: bool,
}

impl TemplateView {
    pub fn of(template: &Template) -> Self {
        let header = template.header.as_ref().map(|header| match header {
            HeaderFormat::Text(text) => HeaderView {
                format: "TEXT".to_owned(),
                text: Some(text.clone()),
            },
            HeaderFormat::Image => media_header("IMAGE"),
            HeaderFormat::Video => media_header("VIDEO"),
            HeaderFormat::Document => media_header("DOCUMENT"),
            HeaderFormat::Location => media_header("LOCATION"),
        });
        let buttons = template
            .buttons
            .iter()
            .map(|button| {
                let (kind, url) = match &button.kind {
                    ButtonKind::QuickReply => ("QUICK_REPLY".to_owned(), None),
                    ButtonKind::Url { url } => ("URL".to_owned(), Some(url.clone())),
                    ButtonKind::PhoneNumber => ("PHONE_NUMBER".to_owned(), None),
                    ButtonKind::CopyCode => ("COPY_CODE".to_owned(), None),
                    ButtonKind::Other(kind) => (kind.clone(), None),
                };
                ButtonView {
                    kind,
                    text: button.text.clone(),
                    url,
                }
            })
            .collect();
        let variables = template
            .variables
            .iter()
            .map(|variable| {
                let (component, button_index) = match variable.component {
                    Component::Header => ("header", None),
                    Component::Body => ("body", None),
                    Component::Button { index } => ("button", Some(index)),
                };
                VariableView {
                    column: variable.column_name(),
                    placeholder: variable.placeholder(),
                    component: component.to_owned(),
                    button_index,
                    example: variable.example.clone(),
                    media: variable.is_media(),
                }
            })
            .collect();
        let unsendable_reason = if template.is_sendable() {
            template.unsupported_reason()
        } else {
            Some(format!("the template is {}, not APPROVED", template.status))
        };
        Self {
            name: template.name.clone(),
            language: template.language.clone(),
            status: template.status.to_string(),
            category: template.category.clone(),
            parameter_format: match template.parameter_format {
                ParameterFormat::Positional => "POSITIONAL",
                ParameterFormat::Named => "NAMED",
            }
            .to_owned(),
            header,
            body: template.body.clone(),
            footer: template.footer.clone(),
            buttons,
            variables,
            columns: template.column_names(),
            sendable: unsendable_reason.is_none(),
            unsendable_reason,
        }
    }
}

fn media_header(format: &str) -> HeaderView {
    HeaderView {
        format: format.to_owned(),
        text: None,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    pub templates: Vec<TemplateView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GalleryQuery {
    /// Read the list from WhatsApp again instead of the cached one.
    #[serde(default)]
    pub refresh: bool,
    /// Also list templates that are not approved (paused, rejected, pending, …).
    #[serde(default)]
    pub all: bool,
}

/// The template gallery: the approved templates of the WhatsApp account.
///
/// The list is cached for `ANNA_TEMPLATE_CACHE_SECONDS`; `refresh=true` reads it again.
#[utoipa::path(
    get,
    path = "/v1/templates",
    tag = "templates",
    params(GalleryQuery),
    responses(
        (status = 200, description = "The templates", body = TemplateList),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "WhatsApp could not be reached", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_templates(
    State(ctx): State<SharedContext>,
    ApiQuery(query): ApiQuery<GalleryQuery>,
) -> Result<ApiJson<TemplateList>, ApiError> {
    if query.refresh {
        ctx.templates.invalidate().await;
    }
    let all = ctx.templates.all().await?;
    let mut templates: Vec<TemplateView> = all
        .iter()
        .filter(|t| query.all || t.is_sendable())
        .map(TemplateView::of)
        .collect();
    templates.sort_by(|a, b| (&a.name, &a.language).cmp(&(&b.name, &b.language)));
    Ok(ApiJson(TemplateList { templates }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LanguageQuery {
    /// The template's language (e.g. `pt_BR`); may be left out when it has only one.
    pub language: Option<String>,
}

/// One template, in any status.
#[utoipa::path(
    get,
    path = "/v1/templates/{name}",
    tag = "templates",
    params(("name" = String, Path, description = "The template's name"), LanguageQuery),
    responses(
        (status = 200, description = "The template", body = TemplateView),
        (status = 400, description = "The template has several languages and none was given", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or language", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_template(
    State(ctx): State<SharedContext>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<LanguageQuery>,
) -> Result<ApiJson<TemplateView>, ApiError> {
    let template = ctx.template(&name, query.language.as_deref()).await?;
    Ok(ApiJson(TemplateView::of(&template)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The template's language; may be left out when it has only one.
    pub language: Option<String>,
    /// The values: a list in `columns` order, or an object keyed by column
    /// (`{"nome": "Maria"}`, `{"1": "Maria", "header 1": "Loja"}`).
    #[schema(value_type = Object)]
    pub variables: Option<Value>,
}

/// The message as the customer will see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preview {
    pub name: String,
    pub language: String,
    /// The header text, or `[image: <link>]` for a media header.
    pub header: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    /// The buttons' labels.
    pub buttons: Vec<String>,
}

/// The message with the variables filled in, as the customer will see it. Missing and unknown
/// variables, and values WhatsApp would refuse, are named in a 422.
#[utoipa::path(
    post,
    path = "/v1/templates/{name}/preview",
    tag = "templates",
    params(("name" = String, Path, description = "The template's name")),
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The rendered message", body = Preview),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or language", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing, unknown or invalid variables", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn preview(
    State(ctx): State<SharedContext>,
    ApiPath(name): ApiPath<String>,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> Result<ApiJson<Preview>, ApiError> {
    let template = ctx.template(&name, request.language.as_deref()).await?;
    let columns = template.column_names();
    let (values, problems) = column_values(&template, request.variables.as_ref());
    let missing: Vec<String> = columns
        .iter()
        .zip(&values)
        .filter(|(_, value)| value.trim().is_empty())
        .map(|(column, _)| column.clone())
        .collect();
    if !missing.is_empty() || !problems.is_empty() {
        let mut errors: Vec<ProblemItem> = missing
            .iter()
            .map(|column| ProblemItem {
                pointer: format!("/variables/{}", escape_pointer(column)),
                detail: format!("no value for {column:?}"),
            })
            .collect();
        errors.extend(problems.items("/variables", &template));
        return Err(variables_problem(&template, &missing, &problems.unknown)
            .with_errors(errors)
            .into());
    }
    // The values go through the same checks as a recipient's (length, line breaks, links).
    if let Ok(mut intake) = Intake::new(&template, ctx.intake.intake.clone())
        && let RowOutcome::Rejected(rejected) =
            intake.row(1, &row_cells(EXAMPLE_PHONE, values.clone()))
    {
        return Err(
            Problem::unprocessable("invalid-variables", rejected.reason.to_string()).into(),
        );
    }
    let aligned: Vec<String> = template
        .variables
        .iter()
        .map(|variable| {
            let column = variable.column_name();
            columns
                .iter()
                .position(|c| *c == column)
                .and_then(|i| values.get(i).cloned())
                .unwrap_or_default()
        })
        .collect();
    let rendered = template.render(&aligned);
    Ok(ApiJson(Preview {
        name: template.name.clone(),
        language: template.language.clone(),
        header: rendered.header,
        body: rendered.body,
        footer: rendered.footer,
        buttons: rendered.buttons,
    }))
}

fn variables_problem(template: &Template, missing: &[String], unknown: &[String]) -> Problem {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing variables: {}", quoted(missing)));
    }
    if !unknown.is_empty() {
        parts.push(format!("unknown variables: {}", quoted(unknown)));
    }
    if parts.is_empty() {
        parts.push("some values are not text".to_owned());
    }
    let columns = template.column_names();
    Problem::unprocessable(
        "invalid-variables",
        format!(
            "{}; template {} takes {}",
            parts.join("; "),
            template.name,
            if columns.is_empty() {
                "no variables".to_owned()
            } else {
                quoted(&columns)
            }
        ),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SheetQuery {
    /// The template's language; may be left out when it has only one.
    pub language: Option<String>,
    /// `xlsx` (default) or `csv`.
    #[param(inline)]
    pub format: Option<SheetFormat>,
}

/// The spreadsheet layout a template needs: the header row (phone, then one column per
/// variable, named as the intake matches them) and an example row from the template's
/// examples. Fill it in and upload it through `POST /v1/uploads`.
#[utoipa::path(
    get,
    path = "/v1/templates/{name}/sheet",
    tag = "templates",
    params(("name" = String, Path, description = "The template's name"), SheetQuery),
    responses(
        (status = 200, description = "The spreadsheet", content(
            ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            ("text/csv"),
        )),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or language", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn template_sheet(
    State(ctx): State<SharedContext>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<SheetQuery>,
) -> Result<Response, ApiError> {
    let template = ctx.template(&name, query.language.as_deref()).await?;
    let format = query.format.unwrap_or_default();
    let (header, example) = layout(&template);
    let mut writer =
        SheetWriter::new(format, &header).map_err(|e| ApiError::Spreadsheet(e.to_string()))?;
    writer
        .write_row(&example)
        .map_err(|e| ApiError::Spreadsheet(e.to_string()))?;
    let bytes = writer
        .finish()
        .map_err(|e| ApiError::Spreadsheet(e.to_string()))?;
    let filename = format!(
        "{}-{}.{}",
        template.name,
        template.language,
        format.extension()
    );
    Ok(attachment(bytes, format, &filename))
}

/// The header row and the example row of a template's spreadsheet.
pub fn layout(template: &Template) -> (Vec<String>, Vec<String>) {
    let columns = template.column_names();
    let examples = columns.iter().map(|column| {
        template
            .variables
            .iter()
            .filter(|v| v.column_name() == *column)
            .find_map(|v| v.example.clone())
            .unwrap_or_else(|| "example".to_owned())
    });
    let header = std::iter::once(PHONE_COLUMN.to_owned())
        .chain(columns.iter().cloned())
        .collect();
    let example = std::iter::once(EXAMPLE_PHONE.to_owned())
        .chain(examples)
        .collect();
    (header, example)
}

/// A file download.
pub fn attachment(bytes: Vec<u8>, format: SheetFormat, filename: &str) -> Response {
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn layouts_have_the_phone_then_the_columns_and_examples() {
        let template = Template::from_graph(&json!({
            "name": "lembrete", "language": "pt_BR", "status": "APPROVED",
            "parameter_format": "NAMED",
            "components": [ { "type": "BODY", "text": "Oi {{nome}}, dia {{data}}",
                "example": { "body_text_named_params": [
                    { "param_name": "nome", "example": "Maria" } ] } } ]
        }))
        .expect("template");
        let (header, example) = layout(&template);
        assert_eq!(header, ["phone", "nome", "data"]);
        assert_eq!(example, ["5511987654321", "Maria", "example"]);
        let view = TemplateView::of(&template);
        assert_eq!(view.columns, ["nome", "data"]);
        assert!(view.sendable);
        assert_eq!(view.variables[0].placeholder, "{{nome}}");
    }
}
