//! Presigned uploads: a client puts a spreadsheet into the inbox without AWS credentials.

use anna_shared::domain::dispatch::{dispatch_id_for_upload, random_hex};
use anna_shared::domain::intake::Intake;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::context::SharedContext;
use crate::dispatches::Links;
use crate::problem::{ApiError, ApiJson, Problem};

/// Longest file name accepted, in characters.
const MAX_FILENAME_CHARS: usize = 200;

pub(crate) fn s3_error<E, R>(operation: &str, err: SdkError<E, R>) -> ApiError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = match &err {
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some("SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout")
        ),
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    ApiError::Objects {
        message: format!(
            "{operation}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&err)
        ),
        retryable,
    }
}

/// What file is about to be uploaded, and for which template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    #[schema(example = "boas_vindas")]
    pub template: String,
    #[schema(example = "pt_BR")]
    pub language: String,
    /// The file's name (no folders), e.g. `clientes-maio.xlsx`.
    #[schema(example = "clientes-maio.xlsx")]
    pub filename: String,
}

/// Where to put the file, and the dispatch it will become.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadTicket {
    pub upload_id: String,
    /// The dispatch the file becomes once uploaded (GET it a few seconds after the upload).
    pub dispatch_id: String,
    /// Always `PUT`: send the file's bytes as the request body.
    pub method: String,
    /// The presigned URL; no other credentials are needed.
    pub url: String,
    /// The S3 key the file is put at.
    pub key: String,
    /// The URL works until then (RFC 3339).
    pub expires_at: String,
    pub links: Links,
}

fn check_filename(filename: &str) -> Result<&str, ApiError> {
    let name = filename.trim();
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_FILENAME_CHARS
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control());
    if valid {
        Ok(name)
    } else {
        Err(Problem::unprocessable(
            "invalid-filename",
            format!(
                "filename {filename:?} cannot be used: give the file's name alone (no folders, \
                 at most {MAX_FILENAME_CHARS} characters), e.g. clientes-maio.xlsx"
            ),
        )
        .into())
    }
}

/// A presigned S3 PUT URL into the inbox, so a spreadsheet can be uploaded without AWS
/// credentials. The answer names the dispatch the upload will become; uploading through the
/// same URL again does not make a second dispatch.
#[utoipa::path(
    post,
    path = "/v1/uploads",
    tag = "uploads",
    request_body = UploadRequest,
    responses(
        (status = 201, description = "Upload the file to `url` with `method`", body = UploadTicket),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or language", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A template that cannot be sent, or an unusable file name", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn create_upload(
    State(ctx): State<SharedContext>,
    ApiJson(request): ApiJson<UploadRequest>,
) -> Result<(StatusCode, ApiJson<UploadTicket>), ApiError> {
    let filename = check_filename(&request.filename)?;
    let template = ctx
        .template(&request.template, Some(&request.language))
        .await?;
    if let Err(e) = Intake::new(&template, ctx.intake.intake.clone()) {
        return Err(Problem::unprocessable("template-not-sendable", e.to_string()).into());
    }
    let upload_id = random_hex(12);
    let key = upload_key(&template.name, &template.language, &upload_id, filename);
    let ttl = ctx.limits.presign_ttl;
    let presigning = PresigningConfig::expires_in(ttl).map_err(|e| ApiError::Objects {
        message: format!("presigning: {e}"),
        retryable: false,
    })?;
    let presigned = ctx
        .s3
        .put_object()
        .bucket(&ctx.bucket)
        .key(&key)
        .presigned(presigning)
        .await
        .map_err(|e| s3_error("presigning PutObject", e))?;
    let dispatch_id = dispatch_id_for_upload(&upload_id);
    let expires_at = (Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default())
        .to_rfc3339_opts(SecondsFormat::Secs, true);
    tracing::info!(%dispatch_id, %key, "presigned upload issued");
    Ok((
        StatusCode::CREATED,
        ApiJson(UploadTicket {
            links: Links::of(&dispatch_id),
            upload_id,
            dispatch_id,
            method: "PUT".to_owned(),
            url: presigned.uri().to_owned(),
            key,
            expires_at,
        }),
    ))
}

/// `inbox/<template>/<language>/u-<upload id>/<file>`: the upload function takes the dispatch
/// id from the upload id.
pub fn upload_key(template: &str, language: &str, upload_id: &str, filename: &str) -> String {
    format!("inbox/{template}/{language}/u-{upload_id}/{filename}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_to_their_upload_id() {
        let id = random_hex(12);
        let key = upload_key("boas_vindas", "pt_BR", &id, "lista de maio.xlsx");
        let parsed = anna_upload::UploadKey::parse(&key).expect("the upload function reads it");
        assert_eq!(parsed.upload_id.as_deref(), Some(id.as_str()));
        assert_eq!(parsed.file, "lista de maio.xlsx");
        assert_eq!(parsed.template, "boas_vindas");
        assert_eq!(parsed.language, "pt_BR");
    }

    #[test]
    fn file_names_are_names_only() {
        assert_eq!(check_filename(" maio.xlsx ").ok(), Some("maio.xlsx"));
        for bad in [
            "",
            " ",
            "..",
            "a/b.xlsx",
            "a\\b.csv",
            "a\nb.csv",
            &"x".repeat(201),
        ] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
    }
}
