//! Reading uploaded spreadsheets from S3.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::ports::{ObjectError, ObjectStore, StoredObject};

fn object_error<E, R>(operation: &str, err: SdkError<E, R>) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            match code {
                "NoSuchKey" | "NotFound" | "NoSuchBucket" => ObjectError::NotFound,
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
                    ObjectError::Unavailable(format!("{operation}: {code}"))
                }
                _ => ObjectError::Rejected(format!(
                    "{operation}: {code}: {}",
                    service.err().message().unwrap_or("")
                )),
            }
        }
        _ => ObjectError::Unavailable(format!(
            "{operation}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&err)
        )),
    }
}

#[derive(Clone, Debug)]
pub struct S3Objects {
    client: Client,
}

impl S3Objects {
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl ObjectStore for S3Objects {
    async fn fetch(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: u64,
    ) -> Result<StoredObject, ObjectError> {
        let output = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| object_error("GetObject", e))?;
        let size = output.content_length.unwrap_or(0).max(0) as u64;
        if size > max_bytes {
            return Err(ObjectError::TooLarge {
                size,
                max: max_bytes,
            });
        }
        let version = output
            .version_id
            .clone()
            .or_else(|| {
                output
                    .e_tag
                    .clone()
                    .map(|etag| etag.trim_matches('"').to_owned())
            })
            .unwrap_or_default();
        let mut body = output.body;
        let mut bytes = Vec::with_capacity(size as usize);
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| ObjectError::Unavailable(format!("reading object body: {e}")))?
        {
            if bytes.len() as u64 + chunk.len() as u64 > max_bytes {
                return Err(ObjectError::TooLarge {
                    size: bytes.len() as u64 + chunk.len() as u64,
                    max: max_bytes,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(StoredObject { bytes, version })
    }
}
