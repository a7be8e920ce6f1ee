//! The HTTP client for the WhatsApp Cloud API (Graph API): sending messages and listing
//! templates, plus a cached template catalog.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::domain::template::Template;
use crate::error::Retryable;
use crate::whatsapp::errors::{
    ErrorClass, GraphError, GraphErrorEnvelope, classify, describe, is_known,
};

/// Fields asked for when listing templates.
const TEMPLATE_FIELDS: &str = "name,language,status,category,components,parameter_format";
/// Templates per page.
const TEMPLATE_PAGE_SIZE: usize = 100;
/// Safety stop for a paging loop that never ends.
const MAX_TEMPLATE_PAGES: usize = 200;
/// Longest piece of an unexpected response body kept in an error.
const MAX_BODY_CHARS: usize = 500;
/// How long a stale template list keeps serving after a failed refresh before trying again.
const STALE_RETRY: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct CloudApiConfig {
    /// "https://graph.facebook.com", or wa-sim's address.
    pub base_url: String,
    /// "v23.0"
    pub api_version: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub access_token: String,
    /// Whole-request timeout (10 s by default).
    pub timeout: Duration,
}

impl Default for CloudApiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://graph.facebook.com".to_owned(),
            api_version: "v23.0".to_owned(),
            phone_number_id: String::new(),
            waba_id: String::new(),
            access_token: String::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Never prints the access token.
impl fmt::Debug for CloudApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApiConfig")
            .field("base_url", &self.base_url)
            .field("api_version", &self.api_version)
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("access_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("invalid WhatsApp client configuration: {0}")]
    InvalidConfig(String),
    #[error("could not build the HTTP client: {0}")]
    Build(String),
}

impl Retryable for ClientError {
    fn is_retryable(&self) -> bool {
        false
    }
}

/// WhatsApp's answer to an accepted send. Accepted is not delivered: statuses follow by webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendAccepted {
    pub wamid: String,
    /// The recipient's WhatsApp id; for Brazil it may lack the ninth digit.
    pub wa_id: Option<String>,
    /// "accepted", "held_for_quality_assessment", "paused"…
    pub message_status: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// WhatsApp answered with a Graph error object.
    #[error(
        "WhatsApp error {code} (HTTP {http_status}): {details}",
        code = .error.code,
        details = .error.details()
    )]
    Api { http_status: u16, error: GraphError },
    /// The request went out but no complete answer came back (timed out, or the connection
    /// broke after sending). WhatsApp may have accepted the message: the outcome is UNKNOWN.
    #[error("no answer from WhatsApp (timed out or connection lost): the outcome is unknown")]
    Timeout,
    /// WhatsApp could not be reached; nothing was sent.
    #[error("could not connect to WhatsApp: {0}")]
    Connect(String),
    /// An answer that is neither a success nor a Graph error (a proxy's HTML page, a 200
    /// without a message id…). `body` is truncated.
    #[error("unexpected HTTP {http_status} answer from WhatsApp: {body}")]
    UnexpectedResponse { http_status: u16, body: String },
}

impl SendError {
    /// What to do next. Api → the code's class (an unlisted code on a 5xx or 429 is retried);
    /// Timeout, Connect, 5xx, 429 → Retry. A 2xx that could not be read is Permanent: the
    /// message may have been accepted, so it must not be sent blindly again.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { http_status, error } => {
                if is_known(error.code) || !retryable_status(*http_status) {
                    classify(error.code)
                } else {
                    ErrorClass::Retry
                }
            }
            Self::Timeout | Self::Connect(_) => ErrorClass::Retry,
            Self::UnexpectedResponse { http_status, .. } => {
                if retryable_status(*http_status) {
                    ErrorClass::Retry
                } else {
                    ErrorClass::Permanent
                }
            }
        }
    }

    /// True when WhatsApp may have accepted the message despite the error (Timeout, or a 2xx
    /// answer we could not read). The sender must not simply send again.
    pub fn is_unknown_outcome(&self) -> bool {
        match self {
            Self::Timeout => true,
            Self::UnexpectedResponse { http_status, .. } => (200..300).contains(http_status),
            Self::Api { .. } | Self::Connect(_) => false,
        }
    }

    /// The WhatsApp error code, for Api errors.
    pub fn code(&self) -> Option<i64> {
        match self {
            Self::Api { error, .. } => Some(error.code),
            _ => None,
        }
    }

    /// Operator text for the results spreadsheet.
    pub fn detail(&self) -> String {
        match self {
            Self::Api { error, .. } => {
                let description = describe(error.code);
                let details = error.details();
                if details == description {
                    description.to_owned()
                } else {
                    format!("{description}: {details}")
                }
            }
            other => other.to_string(),
        }
    }
}

fn retryable_status(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

impl Retryable for SendError {
    fn is_retryable(&self) -> bool {
        self.class().is_retryable()
    }
}

/// The Cloud API client. Cheap to clone: one connection pool shared by all clones.
#[derive(Clone)]
pub struct CloudApiClient {
    http: Client,
    inner: Arc<ClientInner>,
}

struct ClientInner {
    config: CloudApiConfig,
    messages_url: Url,
    templates_url: Url,
    authorization: HeaderValue,
}

impl fmt::Debug for CloudApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudApiClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl CloudApiClient {
    pub fn new(config: CloudApiConfig) -> Result<Self, ClientError> {
        let invalid = |s: String| ClientError::InvalidConfig(s);
        let base = config.base_url.trim().trim_end_matches('/');
        let base_url = Url::parse(base)
            .map_err(|e| invalid(format!("base_url {base:?} is not a URL: {e}")))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.host_str().is_none() {
            return Err(invalid(format!("base_url {base:?} must be an http(s) URL")));
        }
        for (name, value) in [
            ("api_version", &config.api_version),
            ("phone_number_id", &config.phone_number_id),
            ("waba_id", &config.waba_id),
        ] {
            let ok = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(invalid(format!(
                    "{name} {value:?} must be non-empty letters, digits, '.', '_' or '-'"
                )));
            }
        }
        if config.access_token.trim().is_empty() {
            return Err(invalid("access_token is empty".to_owned()));
        }
        if config.timeout.is_zero() {
            return Err(invalid("timeout must be more than zero".to_owned()));
        }
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", config.access_token.trim())).map_err(
                |_| invalid("access_token contains characters not allowed in a header".to_owned()),
            )?;
        authorization.set_sensitive(true);

        let url = |path: String| {
            Url::parse(&format!("{base}/{path}"))
                .map_err(|e| invalid(format!("cannot build the URL for {path}: {e}")))
        };
        let version = &config.api_version;
        let messages_url = url(format!("{version}/{}/messages", config.phone_number_id))?;
        let templates_url = url(format!("{version}/{}/message_templates", config.waba_id))?;

        let http = Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("anna-notify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;

        Ok(Self {
            http,
            inner: Arc::new(ClientInner {
                config,
                messages_url,
                templates_url,
                authorization,
            }),
        })
    }

    pub fn config(&self) -> &CloudApiConfig {
        &self.inner.config
    }

    /// Sends one message (a payload from [`crate::whatsapp::payload`]).
    pub async fn send(&self, payload: &Value) -> Result<SendAccepted, SendError> {
        let response = self
            .http
            .post(self.inner.messages_url.clone())
            .header(AUTHORIZATION, self.inner.authorization.clone())
            .json(payload)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(error_response(status, &body));
        }
        parse_accepted(&body).ok_or_else(|| SendError::UnexpectedResponse {
            http_status: status.as_u16(),
            body: truncate(&body),
        })
    }

    /// Every template of the WhatsApp Business Account, following the pages. A template that
    /// cannot be read is logged and skipped.
    pub async fn list_templates(&self) -> Result<Vec<Template>, SendError> {
        let mut templates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_TEMPLATE_PAGES {
            let mut request = self
                .http
                .get(self.inner.templates_url.clone())
                .header(AUTHORIZATION, self.inner.authorization.clone())
                .query(&[
                    ("fields", TEMPLATE_FIELDS.to_owned()),
                    ("limit", TEMPLATE_PAGE_SIZE.to_string()),
                ]);
            if let Some(cursor) = &after {
                request = request.query(&[("after", cursor)]);
            }
            let response = request.send().await.map_err(transport_error)?;
            let status = response.status();
            let body = response.bytes().await.map_err(transport_error)?;
            if !status.is_success() {
                return Err(error_response(status, &body));
            }
            let page: TemplatePage =
                serde_json::from_slice(&body).map_err(|_| SendError::UnexpectedResponse {
                    http_status: status.as_u16(),
                    body: truncate(&body),
                })?;
            let count = page.data.len();
            for value in &page.data {
                match Template::from_graph(value) {
                    Ok(template) => templates.push(template),
                    Err(error) => {
                        let name = value.get("name").and_then(Value::as_str).unwrap_or("?");
                        let language = value.get("language").and_then(Value::as_str);
                        tracing::warn!(
                            template = name,
                            language = language.unwrap_or("?"),
                            %error,
                            "skipping a WhatsApp template that cannot be read"
                        );
                    }
                }
            }
            let next = page.paging.as_ref().and_then(|p| p.next.as_deref());
            let cursor = page
                .paging
                .as_ref()
                .and_then(|p| p.cursors.as_ref())
                .and_then(|c| c.after.clone())
                .filter(|c| !c.is_empty());
            // Graph marks the last page by leaving out `next`; a server that only gives cursors
            // is followed while its pages are full.
            let more = count > 0 && (next.is_some() || count >= TEMPLATE_PAGE_SIZE);
            match cursor {
                Some(cursor) if more && after.as_ref() != Some(&cursor) => after = Some(cursor),
                _ => return Ok(templates),
            }
        }
        tracing::warn!(
            pages = MAX_TEMPLATE_PAGES,
            "stopped following template pages; the list may be incomplete"
        );
        Ok(templates)
    }
}

#[derive(Deserialize)]
struct TemplatePage {
    #[serde(default)]
    data: Vec<Value>,
    #[serde(default)]
    paging: Option<Paging>,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}

#[derive(Deserialize)]
struct SendResponse {
    #[serde(default)]
    contacts: Vec<SendContact>,
    #[serde(default)]
    messages: Vec<SendMessage>,
}

#[derive(Deserialize)]
struct SendContact {
    #[serde(default)]
    wa_id: Option<String>,
}

#[derive(Deserialize)]
struct SendMessage {
    id: String,
    #[serde(default)]
    message_status: Option<String>,
}

fn parse_accepted(body: &[u8]) -> Option<SendAccepted> {
    let response: SendResponse = serde_json::from_slice(body).ok()?;
    let message = response.messages.into_iter().next()?;
    if message.id.is_empty() {
        return None;
    }
    Some(SendAccepted {
        wamid: message.id,
        wa_id: response.contacts.into_iter().next().and_then(|c| c.wa_id),
        message_status: message.message_status,
    })
}

fn error_response(status: StatusCode, body: &[u8]) -> SendError {
    match serde_json::from_slice::<GraphErrorEnvelope>(body) {
        Ok(envelope) => SendError::Api {
            http_status: status.as_u16(),
            error: envelope.error,
        },
        Err(_) => SendError::UnexpectedResponse {
            http_status: status.as_u16(),
            body: truncate(body),
        },
    }
}

/// A failed exchange: not connected (nothing sent) or no complete answer (outcome unknown).
fn transport_error(error: reqwest::Error) -> SendError {
    if error.is_connect() {
        SendError::Connect(error_chain(&error))
    } else {
        if !error.is_timeout() {
            tracing::warn!(error = %error_chain(&error), "WhatsApp request failed after connecting");
        }
        SendError::Timeout
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn truncate(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(MAX_BODY_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// The template list, fetched at most once per `ttl`. Concurrent callers that find it stale
/// share one fetch. If a refresh fails while an older list exists, the older list keeps serving
/// (with a warning) and the refresh is tried again after 30 s. Cheap to clone.
#[derive(Clone)]
pub struct TemplateCatalog {
    inner: Arc<CatalogInner>,
}

struct CatalogInner {
    client: CloudApiClient,
    ttl: Duration,
    cache: Mutex<Option<Cached>>,
}

struct Cached {
    templates: Arc<Vec<Template>>,
    expires: Instant,
}

impl fmt::Debug for TemplateCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateCatalog")
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl TemplateCatalog {
    pub fn new(client: CloudApiClient, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(CatalogInner {
                client,
                ttl,
                cache: Mutex::new(None),
            }),
        }
    }

    /// All templates (every status).
    pub async fn all(&self) -> Result<Arc<Vec<Template>>, SendError> {
        let mut cache = self.inner.cache.lock().await;
        let now = Instant::now();
        if let Some(cached) = cache.as_ref()
            && now < cached.expires
        {
            return Ok(Arc::clone(&cached.templates));
        }
        match self.inner.client.list_templates().await {
            Ok(list) => {
                let templates = Arc::new(list);
                *cache = Some(Cached {
                    templates: Arc::clone(&templates),
                    expires: Instant::now() + self.inner.ttl,
                });
                Ok(templates)
            }
            Err(error) => match cache.as_mut() {
                Some(stale) => {
                    tracing::warn!(%error, "could not refresh the WhatsApp templates; using the previous list");
                    stale.expires = Instant::now() + self.inner.ttl.min(STALE_RETRY);
                    Ok(Arc::clone(&stale.templates))
                }
                None => Err(error),
            },
        }
    }

    /// The template with this name and language (any status; check
    /// [`Template::is_sendable`]). Languages match exactly first, then ignoring case and
    /// '-' versus '_' ("pt-br" finds "pt_BR").
    pub async fn get(&self, name: &str, language: &str) -> Result<Option<Template>, SendError> {
        let templates = self.all().await?;
        let exact = templates
            .iter()
            .find(|t| t.name == name && t.language == language);
        let found = exact.or_else(|| {
            let wanted = normalize_language(language);
            templates
                .iter()
                .find(|t| t.name == name.trim() && normalize_language(&t.language) == wanted)
        });
        Ok(found.cloned())
    }

    /// Forgets the freshness of the list: the next lookup fetches it again (e.g. after a
    /// 132001 "template does not exist" or 132015 "template paused" from a send).
    pub async fn invalidate(&self) {
        if let Some(cached) = self.inner.cache.lock().await.as_mut() {
            cached.expires = Instant::now();
        }
    }
}

fn normalize_language(language: &str) -> String {
    language.trim().replace('-', "_").to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::template::tests::{boas_vindas_json, lembrete_json};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// One request as the mock server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    struct Reply {
        status: u16,
        body: String,
        delay: Duration,
    }

    fn reply(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// A minimal HTTP/1.1 server answering each request with `handler`'s reply.
    struct Mock {
        base: String,
        seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    }

    impl Mock {
        async fn start<F>(handler: F) -> Mock
        where
            F: Fn(&Seen) -> Reply + Send + Sync + 'static,
        {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let handler = Arc::new(handler);
            let log = Arc::clone(&seen);
            tokio::spawn(async move {
                loop {
                    let Ok((mut socket, _)) = listener.accept().await else {
                        return;
                    };
                    let handler = Arc::clone(&handler);
                    let log = Arc::clone(&log);
                    tokio::spawn(async move {
                        let Some(request) = read_request(&mut socket).await else {
                            return;
                        };
                        log.lock().unwrap().push(request.clone());
                        let reply = handler(&request);
                        tokio::time::sleep(reply.delay).await;
                        let response = format!(
                            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
                            reply.status,
                            reply.body.len(),
                            reply.body
                        );
                        let _ = socket.write_all(response.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    });
                }
            });
            Mock { base, seen }
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        fn client(&self, timeout: Duration) -> CloudApiClient {
            CloudApiClient::new(config(&self.base, timeout)).unwrap()
        }
    }

    async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Seen> {
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        let header_end = loop {
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next()?.split(' ');
        let method = request_line.next()?.to_owned();
        let target = request_line.next()?.to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buffer[header_end..].to_vec();
        while body.len() < length {
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Seen {
            method,
            target,
            headers,
            body,
        })
    }

    fn config(base: &str, timeout: Duration) -> CloudApiConfig {
        CloudApiConfig {
            base_url: format!("{base}/"),
            api_version: "v23.0".into(),
            phone_number_id: "106540352242922".into(),
            waba_id: "102290129340398".into(),
            access_token: "secret-token".into(),
            timeout,
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn config_is_validated_and_token_never_printed() {
        let good = config("https://graph.facebook.com", SECOND);
        assert!(CloudApiClient::new(good.clone()).is_ok());
        assert!(!format!("{good:?}").contains("secret-token"));
        let client = CloudApiClient::new(good.clone()).unwrap();
        assert!(!format!("{client:?}").contains("secret-token"));

        let cases: Vec<CloudApiConfig> = vec![
            CloudApiConfig {
                base_url: "graph.facebook.com".into(),
                ..good.clone()
            },
            CloudApiConfig {
                base_url: "ftp://x".into(),
                ..good.clone()
            },
            CloudApiConfig {
                phone_number_id: "".into(),
                ..good.clone()
            },
            CloudApiConfig {
                waba_id: "12/../34".into(),
                ..good.clone()
            },
            CloudApiConfig {
                access_token: " ".into(),
                ..good.clone()
            },
            CloudApiConfig {
                access_token: "a\nb".into(),
                ..good.clone()
            },
            CloudApiConfig {
                timeout: Duration::ZERO,
                ..good.clone()
            },
        ];
        for bad in cases {
            let err = CloudApiClient::new(bad.clone()).unwrap_err();
            assert!(matches!(err, ClientError::InvalidConfig(_)), "{bad:?}");
            assert!(!err.to_string().contains("secret-token"));
            assert!(!err.is_retryable());
        }
    }

    #[tokio::test]
    async fn send_posts_the_payload_and_reads_the_answer() {
        let mock = Mock::start(|_| {
            reply(
                200,
                json!({ "messaging_product": "whatsapp",
                    "contacts": [ { "input": "5511987654321", "wa_id": "551187654321" } ],
                    "messages": [ { "id": "wamid.HBgM", "message_status": "accepted" } ] })
                .to_string(),
            )
        })
        .await;
        let payload = json!({"messaging_product": "whatsapp", "to": "5511987654321"});
        let accepted = mock.client(SECOND).send(&payload).await.unwrap();
        assert_eq!(
            accepted,
            SendAccepted {
                wamid: "wamid.HBgM".into(),
                wa_id: Some("551187654321".into()),
                message_status: Some("accepted".into()),
            }
        );
        let seen = mock.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].target, "/v23.0/106540352242922/messages");
        assert_eq!(seen[0].header("authorization"), Some("Bearer secret-token"));
        assert!(
            seen[0]
                .header("content-type")
                .is_some_and(|v| v.contains("json"))
        );
        let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
        assert_eq!(body, payload);
    }

    #[tokio::test]
    async fn send_maps_graph_errors() {
        let mock = Mock::start(|_| {
            reply(
                400,
                json!({ "error": { "message": "(#131026) Message undeliverable",
                    "type": "OAuthException", "code": 131026,
                    "error_data": { "details": "Receiver is incapable of receiving this message" },
                    "fbtrace_id": "A1" } })
                .to_string(),
            )
        })
        .await;
        let err = mock.client(SECOND).send(&json!({})).await.unwrap_err();
        assert!(matches!(
            err,
            SendError::Api {
                http_status: 400,
                ..
            }
        ));
        assert_eq!(err.code(), Some(131026));
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(!err.is_retryable());
        assert!(!err.is_unknown_outcome());
        assert_eq!(
            err.detail(),
            "undeliverable (not on WhatsApp, old app, or terms not accepted): Receiver is incapable of receiving this message"
        );
        assert!(err.to_string().contains("131026"));
    }

    #[tokio::test]
    async fn throughput_and_unknown_server_errors_are_retried() {
        let mock = Mock::start(|seen| {
            if seen.body.starts_with(b"{\"n\":1") {
                reply(
                    400,
                    r#"{"error":{"message":"(#130429) Rate limit hit","code":130429}}"#,
                )
            } else if seen.body.starts_with(b"{\"n\":2") {
                reply(503, "<html>Service Unavailable</html>")
            } else if seen.body.starts_with(b"{\"n\":3") {
                reply(500, r#"{"error":{"message":"?","code":987654}}"#)
            } else {
                reply(400, r#"{"error":{"message":"?","code":987654}}"#)
            }
        })
        .await;
        let client = mock.client(SECOND);
        let throughput = client.send(&json!({"n": 1})).await.unwrap_err();
        assert_eq!(throughput.class(), ErrorClass::Retry);
        assert!(throughput.is_retryable());
        let html = client.send(&json!({"n": 2})).await.unwrap_err();
        assert!(matches!(
            html,
            SendError::UnexpectedResponse { http_status: 503, ref body } if body.contains("Service")
        ));
        assert_eq!(html.class(), ErrorClass::Retry);
        assert_eq!(html.code(), None);
        let unknown_5xx = client.send(&json!({"n": 3})).await.unwrap_err();
        assert_eq!(unknown_5xx.class(), ErrorClass::Retry);
        let unknown_4xx = client.send(&json!({"n": 4})).await.unwrap_err();
        assert_eq!(unknown_4xx.class(), ErrorClass::Permanent);
    }

    #[tokio::test]
    async fn unreadable_success_is_an_unknown_outcome() {
        let long = "x".repeat(2000);
        let mock = Mock::start(move |_| reply(200, format!("{{\"ok\":\"{long}\"}}"))).await;
        let err = mock.client(SECOND).send(&json!({})).await.unwrap_err();
        match &err {
            SendError::UnexpectedResponse { http_status, body } => {
                assert_eq!(*http_status, 200);
                assert!(body.chars().count() <= MAX_BODY_CHARS + 1);
            }
            other => panic!("{other:?}"),
        }
        assert!(err.is_unknown_outcome());
        assert_eq!(err.class(), ErrorClass::Permanent);
    }

    #[tokio::test]
    async fn a_slow_answer_is_a_timeout() {
        let mock = Mock::start(|_| Reply {
            status: 200,
            body: "{}".into(),
            delay: Duration::from_secs(3),
        })
        .await;
        let err = mock
            .client(Duration::from_millis(200))
            .send(&json!({}))
            .await
            .unwrap_err();
        assert_eq!(err, SendError::Timeout);
        assert!(err.is_unknown_outcome());
        assert_eq!(err.class(), ErrorClass::Retry);
    }

    #[tokio::test]
    async fn nobody_listening_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let client = CloudApiClient::new(config(&base, SECOND)).unwrap();
        let err = client.send(&json!({})).await.unwrap_err();
        assert!(matches!(err, SendError::Connect(_)), "{err:?}");
        assert!(!err.is_unknown_outcome());
        assert!(err.is_retryable());
    }

    fn page(data: Vec<Value>, after: Option<&str>, next: bool) -> String {
        let mut paging = json!({ "cursors": { "before": "B" } });
        if let Some(after) = after {
            paging["cursors"]["after"] = json!(after);
        }
        if next {
            paging["next"] = json!("https://graph.facebook.com/v23.0/x/message_templates?after=A");
        }
        json!({ "data": data, "paging": paging }).to_string()
    }

    #[tokio::test]
    async fn list_templates_follows_pages_and_skips_unreadable_ones() {
        let mock = Mock::start(|seen| {
            if seen.target.contains("after=CURSOR1") {
                reply(200, page(vec![lembrete_json()], Some("CURSOR2"), false))
            } else {
                reply(
                    200,
                    page(
                        vec![boas_vindas_json(), json!({"name": "broken"})],
                        Some("CURSOR1"),
                        true,
                    ),
                )
            }
        })
        .await;
        let templates = mock.client(SECOND).list_templates().await.unwrap();
        let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["boas_vindas", "lembrete_consulta"]);
        let seen = mock.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].method, "GET");
        assert!(
            seen[0]
                .target
                .starts_with("/v23.0/102290129340398/message_templates?")
        );
        assert!(seen[0].target.contains(
            "fields=name%2Clanguage%2Cstatus%2Ccategory%2Ccomponents%2Cparameter_format"
        ));
        assert!(seen[0].target.contains("limit=100"));
        assert!(!seen[0].target.contains("after="));
        assert!(seen[1].target.contains("after=CURSOR1"));
        assert_eq!(seen[1].header("authorization"), Some("Bearer secret-token"));
    }

    #[tokio::test]
    async fn list_templates_stops_on_a_repeated_cursor_and_reports_errors() {
        let looping =
            Mock::start(|_| reply(200, page(vec![boas_vindas_json()], Some("SAME"), true))).await;
        let templates = looping.client(SECOND).list_templates().await.unwrap();
        assert_eq!(templates.len(), 2);
        assert_eq!(looping.seen().len(), 2);

        let failing = Mock::start(|_| {
            reply(
                401,
                r#"{"error":{"message":"Invalid OAuth access token","code":190}}"#,
            )
        })
        .await;
        let err = failing.client(SECOND).list_templates().await.unwrap_err();
        assert_eq!(err.code(), Some(190));
        assert_eq!(err.class(), ErrorClass::PauseDispatch);
    }

    #[tokio::test]
    async fn catalog_caches_and_shares_one_fetch() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fetches);
        let mock = Mock::start(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Reply {
                status: 200,
                body: page(vec![boas_vindas_json(), lembrete_json()], None, false),
                delay: Duration::from_millis(50),
            }
        })
        .await;
        let catalog = TemplateCatalog::new(mock.client(SECOND), Duration::from_secs(60));
        let lookups = (0..8).map(|_| {
            let catalog = catalog.clone();
            tokio::spawn(async move { catalog.get("boas_vindas", "pt_BR").await })
        });
        for lookup in lookups {
            let found = lookup.await.unwrap().unwrap();
            assert_eq!(found.map(|t| t.name).as_deref(), Some("boas_vindas"));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        assert!(catalog.get("boas_vindas", "en_US").await.unwrap().is_none());
        assert!(catalog.get("nope", "pt_BR").await.unwrap().is_none());
        let tolerant = catalog.get("lembrete_consulta", "pt-br").await.unwrap();
        assert_eq!(tolerant.map(|t| t.language).as_deref(), Some("pt_BR"));
        assert_eq!(catalog.all().await.unwrap().len(), 2);
        assert_eq!(fetches.load(Ordering::SeqCst), 1);

        catalog.invalidate().await;
        catalog.all().await.unwrap();
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn catalog_refetches_after_ttl_and_serves_stale_on_error() {
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&fetches);
        let mock = Mock::start(move |_| {
            if counter.fetch_add(1, Ordering::SeqCst) == 0 {
                reply(200, page(vec![boas_vindas_json()], None, false))
            } else {
                reply(500, r#"{"error":{"message":"boom","code":1}}"#)
            }
        })
        .await;
        let catalog = TemplateCatalog::new(mock.client(SECOND), Duration::ZERO);
        assert_eq!(catalog.all().await.unwrap().len(), 1);
        // Expired at once (ttl 0): the refresh fails, the previous list serves.
        assert_eq!(catalog.all().await.unwrap().len(), 1);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);

        let empty = TemplateCatalog::new(mock.client(SECOND), Duration::from_secs(60));
        let err = empty.all().await.unwrap_err();
        assert_eq!(err.code(), Some(1));
    }
}
