//! Test support: the real handlers against moto (S3, SQS, DynamoDB) and wa-sim, started by
//! the tests themselves on free ports.
//!
//! One moto server serves every test of a test binary (it takes a second or two to start);
//! each test provisions its own uniquely named bucket, queues and table, and runs its own
//! in-process wa-sim, so tests stay independent and can run in parallel.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anna_local::provision::{Stack, StackNames, Visibility, provision};
use anna_local::runner::poll_once;
use anna_sender::{AwsSender, Pacing, SenderConfig};
use anna_shared::aws::dynamo::DynamoStore;
use anna_shared::config::{IntakeConfig, StoreConfig};
use anna_shared::domain::dispatch::{Dispatch, dispatch_id_for_object};
use anna_shared::domain::message::MessageRecord;
use anna_shared::ports::{DispatchStore, MessageStore};
use anna_shared::whatsapp::client::CloudApiConfig;
use anna_upload::{AwsUpload, UploadConfig};
use aws_config::BehaviorVersion;
use wa_sim::{SimConfig, SimServer};

pub use wa_sim;

pub mod api;

pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WABA_ID: &str = "100000000000001";
pub const ACCESS_TOKEN: &str = "sim-token";

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

/// The moto server of this test process, started on first use.
pub fn moto_endpoint() -> &'static str {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    ENDPOINT.get_or_init(start_moto)
}

fn start_moto() -> String {
    let binary = std::env::var_os("ANNA_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("scripts/moto-server"));
    let installed = if binary.ends_with("scripts/moto-server") {
        workspace_root().join(".venv/bin/moto_server")
    } else {
        binary.clone()
    };
    assert!(
        installed.exists(),
        "moto_server not found at {}: run the tests with `make test`, which installs it",
        installed.display()
    );
    let port = free_port();
    let (started, ready) = std::sync::mpsc::channel();
    // The process is spawned and waited on from a thread that lives as long as the test
    // process, and asks the kernel to kill moto when that thread's process goes away — so
    // no emulator outlives a test run, even one that panics or is interrupted.
    std::thread::spawn(move || {
        let mut command = Command::new(&binary);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        match command.spawn() {
            Ok(mut child) => {
                let _ = started.send(Ok(()));
                let _ = child.wait();
            }
            Err(e) => {
                let _ = started.send(Err(e.to_string()));
            }
        }
    });
    match ready.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("starting moto_server: {e}"),
        Err(_) => panic!("moto_server launcher thread died"),
    }
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on {addr} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    format!("http://{addr}")
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_endpoint())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await
}

/// A whole anna-notify stack for one test.
pub struct TestStack {
    pub sdk: aws_config::SdkConfig,
    pub stack: Stack,
    pub sim: SimServer,
    pub upload: AwsUpload,
    pub sender: AwsSender,
    pub store: DynamoStore,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

pub struct Options {
    pub sim: SimConfig,
    pub pacing: Pacing,
    pub max_attempts: u32,
    pub send_visibility: Duration,
    /// How long the sender waits for WhatsApp before the outcome is unknown.
    pub whatsapp_timeout: Duration,
    /// How long a sender's claim is held.
    pub lease: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sim: SimConfig::default(),
            pacing: Pacing {
                rate_per_second: 1_000,
                max_concurrency: 1,
                sends_in_flight: 10,
            },
            max_attempts: 5,
            send_visibility: Duration::from_secs(1),
            whatsapp_timeout: Duration::from_secs(5),
            lease: Duration::from_secs(30),
        }
    }
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        anna_shared::telemetry::init();
        let sdk = sdk_config().await;
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let stack = provision(
            &sdk,
            StackNames::with_prefix(&prefix),
            Visibility {
                upload: Duration::from_secs(30),
                send: options.send_visibility,
            },
        )
        .await
        .expect("provisioning on moto");
        let sim = SimServer::start(options.sim, ([127, 0, 0, 1], 0).into())
            .await
            .expect("starting wa-sim");
        let store_config = StoreConfig {
            table: stack.names.table.clone(),
            retention_days: 1,
        };
        let cloud_api = CloudApiConfig {
            base_url: sim.base_url(),
            api_version: "v23.0".to_owned(),
            phone_number_id: PHONE_NUMBER_ID.to_owned(),
            waba_id: WABA_ID.to_owned(),
            access_token: ACCESS_TOKEN.to_owned(),
            timeout: options.whatsapp_timeout,
        };
        let upload = AwsUpload::connect(
            &sdk,
            UploadConfig {
                store: store_config.clone(),
                send_queue_url: stack.send_queue_url.clone(),
                cloud_api: cloud_api.clone(),
                template_ttl: Duration::from_secs(60),
                intake: IntakeConfig::default(),
            },
        )
        .expect("upload context");
        let sender = AwsSender::connect(
            &sdk,
            SenderConfig {
                store: store_config.clone(),
                send_queue_url: stack.send_queue_url.clone(),
                cloud_api,
                template_ttl: Duration::from_secs(60),
                pacing: options.pacing,
                lease: options.lease,
                max_attempts: options.max_attempts,
                max_receive_count: anna_local::provision::MAX_RECEIVE_COUNT,
            },
        )
        .expect("sender context");
        Self {
            store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &store_config),
            s3: anna_shared::aws::s3_client(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sdk,
            stack,
            sim,
            upload,
            sender,
        }
    }

    /// Puts a file into the uploads bucket; returns the dispatch id it will become.
    pub async fn put_file(&self, key: &str, bytes: Vec<u8>) -> String {
        let output = self
            .s3
            .put_object()
            .bucket(&self.stack.names.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("PutObject");
        let version = output
            .version_id
            .or_else(|| output.e_tag.map(|e| e.trim_matches('"').to_owned()))
            .unwrap_or_default();
        dispatch_id_for_object(&self.stack.names.bucket, key, &version)
    }

    /// One batch from the upload-events queue through the upload handler.
    pub async fn pump_uploads(&self) -> usize {
        poll_once(
            &self.sqs,
            &self.stack.upload_queue_url,
            Duration::ZERO,
            |event| anna_upload::handle(&self.upload, event),
        )
        .await
        .expect("polling upload-events")
    }

    /// One batch from the send queue through the sender handler.
    pub async fn pump_sends(&self) -> usize {
        poll_once(
            &self.sqs,
            &self.stack.send_queue_url,
            Duration::ZERO,
            |event| anna_sender::handle(&self.sender, event),
        )
        .await
        .expect("polling send queue")
    }

    /// Runs both event sources until neither queue has anything left, waiting out
    /// visibility timeouts of records handed back for retry (bounded by `limit`).
    pub async fn run_until_quiet(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut quiet_rounds = 0;
        while quiet_rounds < 3 {
            assert!(
                Instant::now() < deadline,
                "queues still busy after {limit:?}"
            );
            let handled = self.pump_uploads().await + self.pump_sends().await;
            if handled == 0 && self.in_flight().await == 0 {
                quiet_rounds += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else if handled == 0 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            } else {
                quiet_rounds = 0;
            }
        }
    }

    /// Records not yet deleted, over both queues: visible, received, or delayed.
    async fn in_flight(&self) -> u64 {
        let mut total = 0;
        for url in [&self.stack.upload_queue_url, &self.stack.send_queue_url] {
            total += self.queue_depth(url).await;
        }
        total
    }

    pub async fn dispatch(&self, id: &str) -> Dispatch {
        self.store
            .get_dispatch(id)
            .await
            .expect("GetItem")
            .unwrap_or_else(|| panic!("no dispatch {id}"))
    }

    pub async fn messages(&self, dispatch_id: &str) -> Vec<MessageRecord> {
        self.store
            .list_messages(dispatch_id)
            .await
            .expect("listing messages")
    }

    /// Sends wa-sim accepted for one dispatch.
    pub fn sends_for(&self, dispatch_id: &str) -> Vec<wa_sim::AcceptedSend> {
        let prefix = format!("{dispatch_id}:");
        self.sim
            .sends()
            .into_iter()
            .filter(|s| {
                s.biz_opaque_callback_data
                    .as_deref()
                    .is_some_and(|c| c.starts_with(&prefix))
            })
            .collect()
    }

    /// Uploads a `;`-separated CSV for `boas_vindas` (phone, store, name, date) with one row
    /// per phone, and runs the queues until quiet; returns the dispatch id.
    pub async fn send_boas_vindas(&self, file: &str, phones: &[&str]) -> String {
        let mut csv = String::from("telefone;loja;nome;data\n");
        for (i, phone) in phones.iter().enumerate() {
            csv.push_str(&format!("{phone};Loja Centro;Cliente {i};25/12/2026\n"));
        }
        let id = self
            .put_file(&format!("inbox/boas_vindas/pt_BR/{file}"), csv.into_bytes())
            .await;
        self.run_until_quiet(Duration::from_secs(120)).await;
        id
    }

    /// The review function's context against this stack.
    pub fn review(&self, rules: anna_review::ReviewRules) -> anna_review::AwsReview {
        anna_review::Review {
            store: self.store.clone(),
            queue: anna_shared::aws::sqs::SqsSendQueue::new(
                self.sqs.clone(),
                self.stack.send_queue_url.clone(),
            ),
            whatsapp: anna_shared::whatsapp::cloud::CloudWhatsApp::new(
                CloudApiConfig {
                    base_url: self.sim.base_url(),
                    api_version: "v23.0".to_owned(),
                    phone_number_id: PHONE_NUMBER_ID.to_owned(),
                    waba_id: WABA_ID.to_owned(),
                    access_token: ACCESS_TOKEN.to_owned(),
                    timeout: Duration::from_secs(5),
                },
                Duration::from_secs(60),
            )
            .expect("WhatsApp client"),
            rules,
        }
    }

    /// Records of a queue not yet deleted: visible, received (in flight) and delayed.
    pub async fn queue_depth(&self, url: &str) -> u64 {
        queue_depth(&self.sqs, url).await
    }
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let counts = [
        Name::ApproximateNumberOfMessages,
        Name::ApproximateNumberOfMessagesNotVisible,
        Name::ApproximateNumberOfMessagesDelayed,
    ];
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .set_attribute_names(Some(counts.to_vec()))
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    let count = |name: &Name| {
        attributes
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    counts.iter().map(count).sum()
}
