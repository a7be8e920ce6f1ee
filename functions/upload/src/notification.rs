//! The S3 event notification inside an upload-events record, and the upload key convention.
//!
//! Parsed with a struct of our own rather than `aws_lambda_events::s3::S3Event`: that type
//! requires fields (`userIdentity`, `requestParameters`) which only matter for auditing and
//! which local emulators leave out, and the upload function needs five fields.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
    /// `s3:TestEvent`, sent once when the notification is configured.
    #[serde(rename = "Event", default)]
    event: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    #[serde(default)]
    event_name: String,
    s3: Entity,
}

#[derive(Debug, Deserialize)]
struct Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Debug, Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Object {
    key: String,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    e_tag: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// An object that was created in the uploads bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    pub bucket: String,
    /// Decoded: S3 sends keys URL-encoded, with `+` for spaces.
    pub key: String,
    /// Version id, else ETag, else sequencer: what distinguishes this upload of the key from
    /// an earlier one, so the same file uploaded again is a new dispatch.
    pub version: String,
}

/// The created objects named by a notification; empty for test events and other event types.
pub fn parse_notification(body: &str) -> Result<Vec<ObjectCreated>, String> {
    let notification: Notification = serde_json::from_str(body).map_err(|e| e.to_string())?;
    if notification.records.is_empty() && notification.event.is_none() {
        return Err("no Records and no Event".to_owned());
    }
    Ok(notification
        .records
        .into_iter()
        .filter(|record| record.event_name.starts_with("ObjectCreated"))
        .map(|record| ObjectCreated {
            bucket: record.s3.bucket.name,
            key: decode_key(&record.s3.object.key),
            version: record
                .s3
                .object
                .version_id
                .filter(|v| !v.is_empty() && v != "null")
                .or(record.s3.object.e_tag)
                .or(record.s3.object.sequencer)
                .unwrap_or_default(),
        })
        .collect())
}

fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// `inbox/<template>/<language>/<file>`: what an uploaded file asks to be sent.
///
/// A file uploaded through a presigned URL of the API is put at
/// `inbox/<template>/<language>/u-<upload id>/<file>`: its dispatch id derives from the upload
/// id alone, so the API could name the dispatch when it issued the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadKey {
    pub template: String,
    pub language: String,
    /// The upload id of a `u-<upload id>/` segment (16 to 64 lower-case hex digits).
    pub upload_id: Option<String>,
    pub file: String,
}

/// Marks the key segment that carries an upload id.
pub const UPLOAD_ID_PREFIX: &str = "u-";

impl UploadKey {
    pub fn parse(key: &str) -> Result<Self, String> {
        let wrong = || {
            format!(
                "the file must be uploaded as inbox/<template>/<language>/<file> \
                 (e.g. inbox/boas_vindas/pt_BR/clientes.xlsx), not {key:?}"
            )
        };
        let mut parts = key.splitn(4, '/');
        let (Some("inbox"), Some(template), Some(language), Some(file)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(wrong());
        };
        let template_ok = !template.is_empty()
            && template.len() <= 512
            && template
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let language_ok = (2..=8).contains(&language.len())
            && language
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || b == b'_');
        if !template_ok || !language_ok || file.is_empty() || file.ends_with('/') {
            return Err(wrong());
        }
        let (upload_id, file) = match file.split_once('/') {
            Some((segment, rest)) => match segment.strip_prefix(UPLOAD_ID_PREFIX) {
                Some(id) if is_upload_id(id) => (Some(id.to_owned()), rest),
                _ => (None, file),
            },
            None => (None, file),
        };
        Ok(Self {
            template: template.to_owned(),
            language: language.to_owned(),
            upload_id,
            file: file.to_owned(),
        })
    }
}

/// 16 to 64 lower-case hex digits: what the API issues (24), with room to change.
fn is_upload_id(id: &str) -> bool {
    (16..=64).contains(&id.len()) && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_created_objects_and_decodes_keys() {
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"up"},"object":{"key":"inbox%2Fboas_vindas%2Fpt_BR%2Fa+b%2B%C3%A7.xlsx","size":5,"eTag":"abc"}}}]}"#;
        let objects = parse_notification(body).expect("valid notification");
        assert_eq!(
            objects,
            vec![ObjectCreated {
                bucket: "up".into(),
                key: "inbox/boas_vindas/pt_BR/a b+ç.xlsx".into(),
                version: "abc".into()
            }]
        );
    }

    #[test]
    fn version_id_wins_over_etag() {
        let body = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"up"},
            "object":{"key":"k","versionId":"v1","eTag":"e"}}}]}"#;
        assert_eq!(parse_notification(body).expect("valid")[0].version, "v1");
    }

    #[test]
    fn test_events_and_deletions_name_no_objects() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"up"}"#;
        assert_eq!(parse_notification(test_event), Ok(vec![]));
        let removed = r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"up"},"object":{"key":"k"}}}]}"#;
        assert_eq!(parse_notification(removed), Ok(vec![]));
    }

    #[test]
    fn rejects_bodies_that_are_not_notifications() {
        for body in ["", "{", "[]", "{}", r#"{"Records":"x"}"#, "null"] {
            assert!(parse_notification(body).is_err(), "{body:?} accepted");
        }
    }

    #[test]
    fn upload_keys_name_template_and_language() {
        let key = UploadKey::parse("inbox/boas_vindas/pt_BR/lista de maio.xlsx").expect("valid");
        assert_eq!(key.template, "boas_vindas");
        assert_eq!(key.language, "pt_BR");
        assert_eq!(key.file, "lista de maio.xlsx");
        assert_eq!(
            UploadKey::parse("inbox/t/en/sub/dir.csv")
                .expect("valid")
                .file,
            "sub/dir.csv"
        );
        assert_eq!(key.upload_id, None);
        for bad in [
            "a.xlsx",
            "inbox/a.xlsx",
            "inbox/t/pt_BR/",
            "outbox/t/pt_BR/a",
            "inbox/Bad-Name/pt_BR/a",
            "inbox/t/p/a",
        ] {
            assert!(UploadKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn upload_ids_come_from_their_segment() {
        let key = UploadKey::parse("inbox/boas_vindas/pt_BR/u-0123456789abcdef01234567/maio.xlsx")
            .expect("valid");
        assert_eq!(key.upload_id.as_deref(), Some("0123456789abcdef01234567"));
        assert_eq!(key.file, "maio.xlsx");
        assert_eq!(key.template, "boas_vindas");
        // Not an upload id: an ordinary folder of the file name.
        for (raw, file) in [
            ("inbox/t/pt_BR/u-maria/lista.csv", "u-maria/lista.csv"),
            (
                "inbox/t/pt_BR/u-0123456789ABCDEF/lista.csv",
                "u-0123456789ABCDEF/lista.csv",
            ),
            ("inbox/t/pt_BR/u-0123/lista.csv", "u-0123/lista.csv"),
            (
                "inbox/t/pt_BR/x/u-0123456789abcdef01234567/l.csv",
                "x/u-0123456789abcdef01234567/l.csv",
            ),
        ] {
            let key = UploadKey::parse(raw).expect("valid");
            assert_eq!((key.upload_id, key.file.as_str()), (None, file), "{raw}");
        }
        // The upload id segment alone is not a file.
        assert!(UploadKey::parse("inbox/t/pt_BR/u-0123456789abcdef01234567/").is_err());
        let bare =
            UploadKey::parse("inbox/t/pt_BR/u-0123456789abcdef01234567").expect("a file name");
        assert_eq!(
            (bare.upload_id, bare.file.as_str()),
            (None, "u-0123456789abcdef01234567")
        );
    }
}
