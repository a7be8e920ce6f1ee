//! The deployable stack (`infra/template.yaml`) against the local one.
//!
//! - Drift: the template declares the same table keys, attributes, indexes and TTL, the same
//!   queues with the same DLQs, receive counts and retention, and the same bucket notification
//!   as the definitions `functions/local/src/provision.rs` provisions from — both ways.
//! - Consistency: visibility timeouts cover function timeouts, the sender's concurrency and
//!   pace come from the rate parameter, secrets only ever come from SSM, every function role
//!   names its resources and actions.
//! - Secrets: `anna_shared::secrets` against SSM SecureString parameters in moto.
//! - Start-up: each function's real binary, given exactly the environment the template gives
//!   it (secrets in moto's SSM), reads its configuration and answers an invocation from a fake
//!   Lambda Runtime API.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anna_integration_tests::{moto_endpoint, sdk_config, workspace_root};
use anna_local::provision::{
    IndexSpec, QUEUES, SEND_QUEUE, StackNames, TABLE, UPLOAD_EVENTS_QUEUE, UPLOAD_NOTIFICATION,
    Visibility, provision,
};
use anna_shared::secrets::{self, SecretError};
use aws_sdk_ssm::types::ParameterType;
use serde_json::{Value, json};

// ---------------------------------------------------------------- reading the template

/// The template as JSON, CloudFormation's short-form tags (`!Ref X`, `!GetAtt A.B`, `!Sub s`)
/// turned into their long forms (`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, ...).
fn template() -> Value {
    let path = workspace_root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).expect("infra/template.yaml");
    let yaml: serde_norway::Value = serde_norway::from_str(&text).expect("the template is YAML");
    to_json(yaml)
}

fn to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).expect("a YAML number"),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!').to_owned();
            let inner = to_json(tagged.value);
            match name.as_str() {
                "Ref" | "Condition" => json!({ name: inner }),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) =
                            s.split_once('.').expect("!GetAtt Resource.Attribute");
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                _ => json!({ format!("Fn::{name}"): inner }),
            }
        }
    }
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"].as_object().expect("Resources")
}

fn of_type<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .map(|(id, r)| (id.as_str(), &r["Properties"]))
        .collect()
}

fn get_att(resource: &str, attribute: &str) -> Value {
    json!({ "Fn::GetAtt": [resource, attribute] })
}

fn reference(name: &str) -> Value {
    json!({ "Ref": name })
}

fn number(value: &Value) -> u64 {
    match value {
        Value::Number(n) => n.as_u64().expect("a whole number"),
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{s:?} is not a number")),
        other => panic!("{other} is not a number"),
    }
}

/// The logical id of the queue named `${AWS::StackName}-<suffix>`.
fn queue_named(template: &Value, suffix: &str) -> String {
    let wanted = json!({ "Fn::Sub": format!("${{AWS::StackName}}-{suffix}") });
    let found: Vec<&str> = of_type(template, "AWS::SQS::Queue")
        .into_iter()
        .filter(|(_, p)| p["QueueName"] == wanted)
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one queue named ${{AWS::StackName}}-{suffix}, found {found:?}"
    );
    found[0].to_owned()
}

/// The template's functions with the binary each is built from.
fn functions(template: &Value) -> Vec<(String, String, Value)> {
    resources(template)
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id} names no Metadata.BuildProperties.Binary"))
                .to_owned();
            (id.clone(), binary, r["Properties"].clone())
        })
        .collect()
}

fn function_built_from<'a>(template: &'a Value, binary: &str) -> (String, &'a Value) {
    resources(template)
        .iter()
        .find(|(_, r)| r["Metadata"]["BuildProperties"]["Binary"] == binary)
        .map(|(id, r)| (id.clone(), &r["Properties"]))
        .unwrap_or_else(|| panic!("no function is built from {binary}"))
}

/// A function's setting, falling back to the template's Globals.
fn setting<'a>(template: &'a Value, function: &'a Value, name: &str) -> Option<&'a Value> {
    function
        .get(name)
        .or_else(|| template["Globals"]["Function"].get(name))
}

/// Globals' variables overlaid with the function's own, as SAM merges them.
fn environment(template: &Value, function: &Value) -> BTreeMap<String, Value> {
    let mut vars = BTreeMap::new();
    for source in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &function["Environment"]["Variables"],
    ] {
        if let Some(map) = source.as_object() {
            vars.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    vars
}

fn sqs_events(function: &Value) -> Vec<&Value> {
    function["Events"]
        .as_object()
        .map(|events| {
            events
                .values()
                .filter(|e| e["Type"] == "SQS")
                .map(|e| &e["Properties"])
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- drift

#[test]
fn table_matches_the_local_table() {
    let template = template();
    let tables = of_type(&template, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "one table");
    let table = tables[0].1;

    assert_eq!(
        table["KeySchema"],
        json!([
            { "AttributeName": TABLE.partition_key, "KeyType": "HASH" },
            { "AttributeName": TABLE.sort_key, "KeyType": "RANGE" },
        ])
    );
    let attributes: BTreeSet<(String, String)> = table["AttributeDefinitions"]
        .as_array()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap().to_owned(),
                a["AttributeType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = TABLE
        .key_attributes()
        .into_iter()
        .map(|name| (name.to_owned(), "S".to_owned()))
        .collect();
    assert_eq!(attributes, expected, "attribute definitions");

    let indexes: BTreeMap<String, Value> = table["GlobalSecondaryIndexes"]
        .as_array()
        .expect("GlobalSecondaryIndexes")
        .iter()
        .map(|i| (i["IndexName"].as_str().unwrap().to_owned(), i.clone()))
        .collect();
    let expected: BTreeMap<String, Value> = TABLE
        .indexes
        .iter()
        .map(|spec: &IndexSpec| {
            let mut keys = vec![json!({ "AttributeName": spec.partition_key, "KeyType": "HASH" })];
            if let Some(sort_key) = spec.sort_key {
                keys.push(json!({ "AttributeName": sort_key, "KeyType": "RANGE" }));
            }
            let index = json!({
                "IndexName": spec.name,
                "KeySchema": keys,
                "Projection": { "ProjectionType": spec.projection.as_str() },
            });
            (spec.name.to_owned(), index)
        })
        .collect();
    assert_eq!(indexes, expected, "global secondary indexes");

    assert_eq!(
        table["TimeToLiveSpecification"],
        json!({ "AttributeName": TABLE.ttl_attribute, "Enabled": true })
    );
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    assert_eq!(table["SSESpecification"]["SSEEnabled"], true);
}

#[test]
fn queues_and_redrive_match_the_local_queues() {
    let template = template();
    let mut declared: BTreeSet<String> = of_type(&template, "AWS::SQS::Queue")
        .into_iter()
        .map(|(id, _)| id.to_owned())
        .collect();
    for spec in QUEUES {
        let queue_id = queue_named(&template, spec.suffix);
        let dlq_id = queue_named(&template, spec.dlq_suffix);
        let queue = &resources(&template)[&queue_id]["Properties"];
        let dlq = &resources(&template)[&dlq_id]["Properties"];
        assert_eq!(
            queue["RedrivePolicy"],
            json!({
                "deadLetterTargetArn": get_att(&dlq_id, "Arn"),
                "maxReceiveCount": spec.max_receive_count,
            }),
            "{queue_id}: redrive to {dlq_id}"
        );
        assert_eq!(
            number(&queue["MessageRetentionPeriod"]),
            u64::from(spec.retention_seconds),
            "{queue_id}: retention"
        );
        assert_eq!(
            number(&dlq["MessageRetentionPeriod"]),
            u64::from(spec.dlq_retention_seconds),
            "{dlq_id}: retention"
        );
        assert!(dlq.get("RedrivePolicy").is_none(), "{dlq_id} is the end");
        for (id, properties) in [(&queue_id, queue), (&dlq_id, dlq)] {
            assert!(
                properties["SqsManagedSseEnabled"] == true
                    || properties.get("KmsMasterKeyId").is_some(),
                "{id} is encrypted at rest"
            );
            declared.remove(id);
        }
    }
    assert!(
        declared.is_empty(),
        "queues in the template the local stack does not create: {declared:?} \
         (add them to QUEUES in functions/local/src/provision.rs)"
    );
}

#[test]
fn bucket_notification_matches_the_local_bucket() {
    let template = template();
    let buckets = of_type(&template, "AWS::S3::Bucket");
    assert_eq!(buckets.len(), 1, "one bucket");
    let (bucket_id, bucket) = buckets[0];
    let queue_id = queue_named(&template, UPLOAD_NOTIFICATION.queue.suffix);
    assert_eq!(
        bucket["NotificationConfiguration"],
        json!({
            "QueueConfigurations": [{
                "Event": UPLOAD_NOTIFICATION.event,
                "Filter": { "S3Key": { "Rules": [
                    { "Name": "prefix", "Value": UPLOAD_NOTIFICATION.prefix },
                ] } },
                "Queue": get_att(&queue_id, "Arn"),
            }]
        }),
        "{bucket_id} notifies {queue_id} of new {} objects",
        UPLOAD_NOTIFICATION.prefix
    );
    // The queue lets this bucket, and only it, send to it.
    let policy = of_type(&template, "AWS::SQS::QueuePolicy")
        .into_iter()
        .find(|(_, p)| p["Queues"] == json!([reference(&queue_id)]))
        .unwrap_or_else(|| panic!("no queue policy for {queue_id}"))
        .1;
    let statement = policy["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Principal"]["Service"] == "s3.amazonaws.com")
        .expect("a statement for s3.amazonaws.com");
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Action"], "sqs:SendMessage");
    assert!(statement["Condition"]["ArnEquals"]["aws:SourceArn"].is_object());
    assert!(statement["Condition"]["StringEquals"]["aws:SourceAccount"].is_object());
    // Public access blocked, encrypted, TLS only.
    let block = &bucket["PublicAccessBlockConfiguration"];
    for setting in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(block[setting], true, "{setting}");
    }
    assert!(bucket["BucketEncryption"].is_object());
    let tls_only = of_type(&template, "AWS::S3::BucketPolicy")
        .into_iter()
        .any(|(_, p)| {
            p["Bucket"] == reference(bucket_id)
                && p["PolicyDocument"]["Statement"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| {
                        s["Effect"] == "Deny"
                            && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
                    })
        });
    assert!(tls_only, "{bucket_id} refuses requests without TLS");
}

/// The other way round: what `provision` actually creates on moto, read back through the AWS
/// APIs, is what the template declares.
#[tokio::test]
async fn local_provisioning_creates_what_the_template_declares() {
    let template = template();
    let sdk = sdk_config().await;
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let stack = provision(
        &sdk,
        StackNames::with_prefix(&prefix),
        Visibility {
            upload: Duration::from_secs(30),
            send: Duration::from_secs(5),
        },
    )
    .await
    .expect("provisioning on moto");

    // Table: keys, attributes, indexes, TTL.
    let declared = of_type(&template, "AWS::DynamoDB::Table")[0].1.clone();
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let table = dynamo
        .describe_table()
        .table_name(&stack.names.table)
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("a table");
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Value {
        schema
            .iter()
            .map(|k| {
                json!({ "AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str() })
            })
            .collect()
    };
    assert_eq!(keys(table.key_schema()), declared["KeySchema"]);
    let attributes: BTreeSet<String> = table
        .attribute_definitions()
        .iter()
        .map(|a| {
            json!({
                "AttributeName": a.attribute_name(),
                "AttributeType": a.attribute_type().as_str(),
            })
            .to_string()
        })
        .collect();
    let declared_attributes: BTreeSet<String> = as_list(&declared["AttributeDefinitions"])
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(attributes, declared_attributes);
    let indexes: BTreeSet<String> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            json!({
                "IndexName": i.index_name(),
                "KeySchema": keys(i.key_schema()),
                "Projection": {
                    "ProjectionType": i
                        .projection()
                        .and_then(|p| p.projection_type())
                        .map(|t| t.as_str()),
                },
            })
            .to_string()
        })
        .collect();
    let declared_indexes: BTreeSet<String> = as_list(&declared["GlobalSecondaryIndexes"])
        .iter()
        .map(Value::to_string)
        .collect();
    assert_eq!(indexes, declared_indexes);
    let ttl = dynamo
        .describe_time_to_live()
        .table_name(&stack.names.table)
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .expect("a TTL description");
    assert_eq!(
        ttl.attribute_name(),
        declared["TimeToLiveSpecification"]["AttributeName"].as_str()
    );

    // Queues: redrive to the right DLQ after as many receives, retention.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let attributes = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .expect("GetQueueAttributes")
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_owned(), v))
                .collect::<HashMap<String, String>>()
        }
    };
    for (suffix, dlq_suffix, url, dlq_url) in [
        (
            UPLOAD_EVENTS_QUEUE.suffix,
            UPLOAD_EVENTS_QUEUE.dlq_suffix,
            &stack.upload_queue_url,
            &stack.upload_dlq_url,
        ),
        (
            SEND_QUEUE.suffix,
            SEND_QUEUE.dlq_suffix,
            &stack.send_queue_url,
            &stack.send_dlq_url,
        ),
    ] {
        let queue_id = queue_named(&template, suffix);
        let dlq_id = queue_named(&template, dlq_suffix);
        let declared = &resources(&template)[&queue_id]["Properties"];
        let declared_dlq = &resources(&template)[&dlq_id]["Properties"];
        let queue = attributes(url.clone()).await;
        let dlq = attributes(dlq_url.clone()).await;
        let redrive: Value = serde_json::from_str(&queue["RedrivePolicy"]).expect("RedrivePolicy");
        assert_eq!(
            redrive["deadLetterTargetArn"].as_str(),
            Some(dlq["QueueArn"].as_str())
        );
        assert_eq!(
            number(&redrive["maxReceiveCount"]),
            number(&declared["RedrivePolicy"]["maxReceiveCount"]),
            "{queue_id}: maxReceiveCount"
        );
        assert_eq!(
            queue["MessageRetentionPeriod"].parse::<u64>().unwrap(),
            number(&declared["MessageRetentionPeriod"]),
            "{queue_id}: retention"
        );
        assert_eq!(
            dlq["MessageRetentionPeriod"].parse::<u64>().unwrap(),
            number(&declared_dlq["MessageRetentionPeriod"]),
            "{dlq_id}: retention"
        );
    }

    // Bucket notification: ObjectCreated under the prefix, to the upload-events queue.
    let bucket = of_type(&template, "AWS::S3::Bucket")[0].1;
    let declared = &bucket["NotificationConfiguration"]["QueueConfigurations"][0];
    let s3 = anna_shared::aws::s3_client(&sdk);
    let notification = s3
        .get_bucket_notification_configuration()
        .bucket(&stack.names.bucket)
        .send()
        .await
        .expect("GetBucketNotificationConfiguration");
    let configurations = notification.queue_configurations();
    assert_eq!(configurations.len(), 1);
    let upload_queue = attributes(stack.upload_queue_url.clone()).await;
    assert_eq!(configurations[0].queue_arn(), upload_queue["QueueArn"]);
    let events: Vec<&str> = configurations[0]
        .events()
        .iter()
        .map(|e| e.as_str())
        .collect();
    assert_eq!(events, [declared["Event"].as_str().unwrap()]);
    let rules: Vec<Value> = configurations[0]
        .filter()
        .and_then(|f| f.key())
        .map(|k| k.filter_rules())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            json!({
                "Name": r.name().map(|n| n.as_str().to_lowercase()),
                "Value": r.value(),
            })
        })
        .collect();
    assert_eq!(Value::Array(rules), declared["Filter"]["S3Key"]["Rules"]);
}

// ---------------------------------------------------------------- consistency

#[test]
fn each_queue_is_consumed_by_its_function_within_its_visibility_timeout() {
    let template = template();
    for (binary, spec) in [
        ("anna-upload", UPLOAD_EVENTS_QUEUE),
        ("anna-sender", SEND_QUEUE),
    ] {
        let (function_id, function) = function_built_from(&template, binary);
        let events = sqs_events(function);
        assert_eq!(events.len(), 1, "{function_id} has one SQS event source");
        let event = events[0];
        let queue_id = queue_named(&template, spec.suffix);
        assert_eq!(event["Queue"], get_att(&queue_id, "Arn"), "{function_id}");
        assert_eq!(
            event["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"]),
            "{function_id} reports partial batch failures"
        );
        let timeout = number(setting(&template, function, "Timeout").expect("a Timeout"));
        let visibility =
            number(&resources(&template)[&queue_id]["Properties"]["VisibilityTimeout"]);
        assert!(
            visibility >= 2 * timeout,
            "{queue_id}: VisibilityTimeout {visibility} s must be at least twice \
             {function_id}'s Timeout {timeout} s"
        );
    }
}

/// How many sends per second one sender invocation may be asked for (DESIGN.md section 6):
/// 10 sends in flight cover a Cloud API latency of up to 400 ms.
const MAX_RATE_PER_INVOCATION: u64 = 25;

#[test]
fn sender_concurrency_and_batches_derive_from_the_rate() {
    let template = template();
    let (sender_id, sender) = function_built_from(&template, "anna-sender");
    let lookup =
        |key: &str| json!({ "Fn::FindInMap": ["Throughput", reference("MessagesPerSecond"), key] });
    let event = sqs_events(sender)[0];
    assert_eq!(
        event["ScalingConfig"]["MaximumConcurrency"],
        lookup("SenderMaxConcurrency")
    );
    assert_eq!(event["BatchSize"], lookup("SenderBatchSize"));
    assert_eq!(
        event["MaximumBatchingWindowInSeconds"],
        lookup("SenderBatchingWindow")
    );
    let env = environment(&template, sender);
    let send_queue = &resources(&template)[&queue_named(&template, SEND_QUEUE.suffix)];
    assert_eq!(
        number(&env["ANNA_SEND_MAX_RECEIVE_COUNT"]),
        number(&send_queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]),
        "{sender_id} knows when its send queue dead-letters a record"
    );
    assert_eq!(
        env["ANNA_SENDER_MAX_CONCURRENCY"],
        lookup("SenderMaxConcurrency"),
        "{sender_id} paces at rate / the same concurrency its event source allows"
    );
    assert_eq!(env["ANNA_SEND_RATE"], reference("MessagesPerSecond"));

    let rates: BTreeSet<String> = template["Parameters"]["MessagesPerSecond"]["AllowedValues"]
        .as_array()
        .expect("MessagesPerSecond has AllowedValues")
        .iter()
        .map(|v| v.as_str().expect("rates are strings").to_owned())
        .collect();
    let mapping = template["Mappings"]["Throughput"]
        .as_object()
        .expect("Throughput mapping");
    let keys: BTreeSet<String> = mapping.keys().cloned().collect();
    assert_eq!(rates, keys, "every allowed rate has its Throughput entry");
    for (rate, row) in mapping {
        let rate_value: u64 = rate.parse().expect("a rate");
        let concurrency = number(&row["SenderMaxConcurrency"]);
        let batch = number(&row["SenderBatchSize"]);
        let window = number(&row["SenderBatchingWindow"]);
        assert!(concurrency >= 2, "{rate}/s: AWS's minimum concurrency is 2");
        assert!(
            concurrency <= rate_value,
            "{rate}/s: at least 1/s per invocation"
        );
        assert!(
            rate_value.div_ceil(concurrency) <= MAX_RATE_PER_INVOCATION,
            "{rate}/s over {concurrency} invocations is more than {MAX_RATE_PER_INVOCATION}/s each"
        );
        assert!(
            (1..=10_000).contains(&batch),
            "{rate}/s: batch size {batch}"
        );
        assert!(
            batch <= 10 || window >= 1,
            "{rate}/s: batches above 10 need a batching window"
        );
        let api_rate = number(&row["ApiRateLimit"]);
        assert!(
            api_rate >= 3 * rate_value,
            "{rate}/s: the HTTP API must take three status webhooks per message sent"
        );
        assert!(number(&row["ApiBurstLimit"]) >= api_rate, "{rate}/s: burst");
    }
}

#[test]
fn secrets_come_only_from_ssm_parameters() {
    let template = template();
    for (function_id, _, function) in functions(&template) {
        let env = environment(&template, &function);
        for secret in secrets::ALL {
            assert!(
                !env.contains_key(secret),
                "{function_id} has the secret {secret} in its environment; \
                 use {secret}{} (an SSM parameter name)",
                secrets::PARAMETER_SUFFIX
            );
        }
        let role_id = function["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{function_id} has an explicit Role"));
        let granted = allowed_statements(&template, role_id)
            .into_iter()
            .filter(|s| actions(s).contains(&"ssm:GetParameters".to_owned()))
            .flat_map(|s| as_list(&s["Resource"]))
            .map(|r| r["Fn::Sub"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>();
        for (name, value) in &env {
            let Some(secret) = name.strip_suffix(secrets::PARAMETER_SUFFIX) else {
                continue;
            };
            assert!(
                secrets::ALL.contains(&secret),
                "{function_id}: {name} names an unknown secret"
            );
            let parameter = value["Fn::Sub"]
                .as_str()
                .unwrap_or_else(|| panic!("{function_id}: {name} is a !Sub of ${{SecretsPath}}"));
            assert!(
                parameter.starts_with("${SecretsPath}/"),
                "{name}: {parameter}"
            );
            let arn = format!(
                "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter{parameter}"
            );
            assert!(
                granted.contains(&arn),
                "{role_id} may not read {parameter}: granted {granted:?}"
            );
        }
    }
}

fn as_list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn actions(statement: &Value) -> Vec<String> {
    as_list(&statement["Action"])
        .into_iter()
        .map(|a| a.as_str().expect("an action name").to_owned())
        .collect()
}

/// A role's Allow statements; those under `!If [condition, statement, AWS::NoValue]` included.
fn allowed_statements(template: &Value, role_id: &str) -> Vec<Value> {
    let role = &resources(template)[role_id];
    assert_eq!(role["Type"], "AWS::IAM::Role", "{role_id}");
    let mut statements = Vec::new();
    for policy in as_list(&role["Properties"]["Policies"]) {
        for statement in as_list(&policy["PolicyDocument"]["Statement"]) {
            let statement = match statement.get("Fn::If") {
                Some(branches) => branches[1].clone(),
                None => statement,
            };
            if statement["Effect"] == "Allow" {
                statements.push(statement);
            }
        }
    }
    statements
}

#[test]
fn function_roles_name_their_actions_and_resources() {
    let template = template();
    for (function_id, _, function) in functions(&template) {
        assert!(
            function.get("Policies").is_none(),
            "{function_id}: permissions belong in its explicit role, where SAM adds nothing"
        );
        let role_id = function["Role"]["Fn::GetAtt"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{function_id} has an explicit Role"));
        let role = &resources(&template)[role_id]["Properties"];
        assert!(
            role.get("ManagedPolicyArns").is_none(),
            "{role_id}: managed policies grant on every resource"
        );
        let statements = allowed_statements(&template, role_id);
        assert!(!statements.is_empty(), "{role_id} grants something");
        for statement in statements {
            for action in actions(&statement) {
                assert!(!action.contains('*'), "{role_id}: wildcard action {action}");
            }
            for resource in as_list(&statement["Resource"]) {
                assert_ne!(resource, "*", "{role_id}: {statement}");
                if let Some(text) = resource.as_str() {
                    assert!(text.starts_with("arn:"), "{role_id}: resource {text}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------- secrets against moto's SSM

async fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config().await)
}

fn unique_path() -> String {
    format!("/t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

async fn put_secure(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .expect("PutParameter on moto");
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn secure_string_parameters_are_read_with_decryption() {
    let ssm = ssm().await;
    let path = unique_path();
    put_secure(&ssm, &format!("{path}/wa-access-token"), "EAAG-token").await;
    put_secure(&ssm, &format!("{path}/api-keys"), "k1,k2").await;
    let env = vars(&[
        (
            "WA_ACCESS_TOKEN_PARAMETER",
            &format!("{path}/wa-access-token"),
        ),
        ("ANNA_API_KEYS_PARAMETER", &format!("{path}/api-keys")),
        ("WA_VERIFY_TOKEN", "given-directly"),
    ]);
    let mut resolved = secrets::resolve(
        &ssm,
        &env,
        &[
            secrets::WA_ACCESS_TOKEN,
            secrets::ANNA_API_KEYS,
            secrets::WA_VERIFY_TOKEN,
            secrets::WA_APP_SECRET,
        ],
    )
    .await
    .expect("both parameters exist");
    resolved.sort();
    assert_eq!(
        resolved,
        [
            ("ANNA_API_KEYS".to_owned(), "k1,k2".to_owned()),
            ("WA_ACCESS_TOKEN".to_owned(), "EAAG-token".to_owned()),
        ],
        "read from SSM only what names a parameter; direct and absent secrets are left alone"
    );
}

#[tokio::test]
async fn a_missing_parameter_names_the_variable_and_the_parameter() {
    let ssm = ssm().await;
    let path = unique_path();
    put_secure(&ssm, &format!("{path}/wa-access-token"), "token").await;
    let env = vars(&[
        (
            "WA_ACCESS_TOKEN_PARAMETER",
            &format!("{path}/wa-access-token"),
        ),
        ("WA_APP_SECRET_PARAMETER", &format!("{path}/nope")),
    ]);
    let err = secrets::resolve(
        &ssm,
        &env,
        &[secrets::WA_ACCESS_TOKEN, secrets::WA_APP_SECRET],
    )
    .await
    .expect_err("one parameter is missing");
    match &err {
        SecretError::NotFound {
            variable,
            parameter,
        } => {
            assert_eq!(variable, "WA_APP_SECRET");
            assert_eq!(parameter, &format!("{path}/nope"));
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn more_secrets_than_one_request_takes_are_all_read() {
    let ssm = ssm().await;
    let path = unique_path();
    let names: Vec<String> = (0..12).map(|i| format!("SECRET_{i:02}")).collect();
    let mut env = HashMap::new();
    for name in &names {
        let parameter = format!("{path}/{name}");
        put_secure(&ssm, &parameter, &format!("value of {name}")).await;
        env.insert(format!("{name}_PARAMETER"), parameter);
    }
    let wanted: Vec<&str> = names.iter().map(String::as_str).collect();
    let resolved: BTreeMap<String, String> = secrets::resolve(&ssm, &env, &wanted)
        .await
        .expect("all twelve exist")
        .into_iter()
        .collect();
    assert_eq!(resolved.len(), 12);
    assert_eq!(resolved["SECRET_11"], "value of SECRET_11");
}

// ---------------------------------------------------------------- start-up, template environment

/// What the fake Runtime API saw.
#[derive(Default)]
struct Runtime {
    responses: Vec<Value>,
    errors: Vec<String>,
    served: bool,
}

/// A Lambda Runtime API that hands out one invocation with `event` and records the answer.
async fn fake_runtime_api(event: Value) -> (String, Arc<Mutex<Runtime>>) {
    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};

    type Shared = (Arc<Mutex<Runtime>>, Value);

    async fn next(State((runtime, event)): State<Shared>) -> (HeaderMap, String) {
        let first = {
            let mut runtime = runtime.lock().unwrap();
            !std::mem::replace(&mut runtime.served, true)
        };
        if !first {
            // One invocation per test: the next poll waits until the process is killed.
            std::future::pending::<()>().await;
        }
        let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
        let mut headers = HeaderMap::new();
        headers.insert("lambda-runtime-aws-request-id", "req-1".parse().unwrap());
        headers.insert(
            "lambda-runtime-deadline-ms",
            deadline.to_string().parse().unwrap(),
        );
        headers.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:anna"
                .parse()
                .unwrap(),
        );
        headers.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000".parse().unwrap(),
        );
        (headers, event.to_string())
    }
    async fn response(State((runtime, _)): State<Shared>, body: String) -> StatusCode {
        let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
        runtime.lock().unwrap().responses.push(value);
        StatusCode::ACCEPTED
    }
    async fn error(State((runtime, _)): State<Shared>, body: String) -> StatusCode {
        runtime.lock().unwrap().errors.push(body);
        StatusCode::ACCEPTED
    }

    let runtime = Arc::new(Mutex::new(Runtime::default()));
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state((runtime.clone(), event));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, runtime)
}

/// What the template's values evaluate to in a start-up test: parameters, the local stack's
/// resources in moto for `!Ref`, placeholders for anything else.
struct Bindings {
    parameters: HashMap<&'static str, String>,
    resources: HashMap<String, String>,
}

impl Bindings {
    fn lookup(&self, template: &Value, name: &str) -> String {
        match name {
            "AWS::Region" => return "us-east-1".into(),
            "AWS::AccountId" => return "123456789012".into(),
            "AWS::Partition" => return "aws".into(),
            "AWS::StackName" => return "anna-test".into(),
            "AWS::URLSuffix" => return "amazonaws.com".into(),
            _ => {}
        }
        if let Some(value) = self.parameters.get(name) {
            return value.clone();
        }
        if let Some(parameter) = template["Parameters"].get(name) {
            let default = &parameter["Default"];
            assert!(!default.is_null(), "give the test a value for {name}");
            return match default {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
        }
        assert!(
            template["Resources"].get(name).is_some(),
            "{name} is neither a parameter nor a resource"
        );
        self.resources
            .get(name)
            .cloned()
            .unwrap_or_else(|| format!("placeholder-{name}"))
    }

    /// A template value with !Ref, !Sub, !FindInMap and !GetAtt resolved.
    fn evaluate(&self, template: &Value, value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Object(map) if map.len() == 1 => {
                let (function, argument) = map.iter().next().unwrap();
                match function.as_str() {
                    "Ref" => self.lookup(template, argument.as_str().expect("!Ref name")),
                    "Fn::GetAtt" => format!("placeholder-{}", argument[0].as_str().unwrap()),
                    "Fn::FindInMap" => {
                        let map = argument[0].as_str().unwrap();
                        let key = self.evaluate(template, &argument[1]);
                        let field = self.evaluate(template, &argument[2]);
                        self.evaluate(template, &template["Mappings"][map][&key][&field])
                    }
                    "Fn::Sub" => {
                        let mut text = argument.as_str().expect("!Sub with a string").to_owned();
                        while let Some(start) = text.find("${") {
                            let end = start + text[start..].find('}').expect("closing }");
                            let name = text[start + 2..end].to_owned();
                            let replacement = match name.split_once('.') {
                                Some((resource, _)) => format!("placeholder-{resource}"),
                                None => self.lookup(template, &name),
                            };
                            text.replace_range(start..=end, &replacement);
                        }
                        text
                    }
                    other => panic!("the start-up test cannot evaluate {other}"),
                }
            }
            other => panic!("the start-up test cannot evaluate {other}"),
        }
    }
}

/// The function's debug binary, beside this test's executable: `make test` builds every binary
/// (`cargo build --workspace --bins`) before it runs the tests.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run `make test`, or `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

const API_KEY: &str = "start-up-test-key";

/// An invocation from the function's event source, and what a healthy answer looks like.
fn invocation(function: &Value) -> (Value, fn(&Value) -> bool) {
    let kinds: BTreeSet<&str> = function["Events"]
        .as_object()
        .map(|e| e.values().filter_map(|e| e["Type"].as_str()).collect())
        .unwrap_or_default();
    if kinds.contains("SQS") {
        // An empty batch: nothing to fail.
        (json!({ "Records": [] }), |answer| {
            *answer == json!({ "batchItemFailures": [] })
        })
    } else if kinds.contains("HttpApi") {
        // A /v1 request: the API key and the WhatsApp token (for the template list) must both
        // have come from SSM for it to succeed.
        let event = json!({
            "version": "2.0",
            "routeKey": "ANY /v1/{proxy+}",
            "rawPath": "/v1/templates",
            "rawQueryString": "",
            "headers": {
                "host": "api.example.com",
                "accept": "application/json",
                "authorization": format!("Bearer {API_KEY}"),
            },
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "domainName": "api.example.com",
                "domainPrefix": "api",
                "http": {
                    "method": "GET",
                    "path": "/v1/templates",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                    "userAgent": "infra-test",
                },
                "requestId": "req-1",
                "routeKey": "ANY /v1/{proxy+}",
                "stage": "$default",
                "time": "25/Nov/2026:00:00:00 +0000",
                "timeEpoch": 1_795_564_800_000_u64,
            },
            "pathParameters": { "proxy": "templates" },
            "isBase64Encoded": false,
        });
        (event, |answer| answer["statusCode"] == 200)
    } else if kinds.contains("Schedule") {
        let event = json!({
            "version": "0",
            "id": "00000000-0000-0000-0000-000000000000",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-11-25T00:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/anna-review"],
            "detail": {},
        });
        (event, |answer| answer.is_object())
    } else {
        panic!("the start-up test has no invocation for event sources {kinds:?} yet")
    }
}

/// The value the test stores for each secret parameter: wa-sim's token, the test's API key.
fn secret_value(variable: &str) -> String {
    match variable.strip_suffix(secrets::PARAMETER_SUFFIX) {
        Some(secrets::WA_ACCESS_TOKEN) => anna_integration_tests::ACCESS_TOKEN.to_owned(),
        Some(secrets::ANNA_API_KEYS) => API_KEY.to_owned(),
        _ => format!("secret for {variable}"),
    }
}

struct Started {
    responses: Vec<Value>,
    errors: Vec<String>,
    stderr: String,
}

/// The local stack in moto and wa-sim, bound to the template's logical ids.
async fn bindings(secrets_path: &str) -> (Bindings, wa_sim::SimServer) {
    let template = template();
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let stack = provision(
        &sdk_config().await,
        StackNames::with_prefix(&prefix),
        Visibility {
            upload: Duration::from_secs(30),
            send: Duration::from_secs(5),
        },
    )
    .await
    .expect("provisioning on moto");
    let table_id = of_type(&template, "AWS::DynamoDB::Table")[0].0.to_owned();
    let bucket_id = of_type(&template, "AWS::S3::Bucket")[0].0.to_owned();
    let resources = HashMap::from([
        (table_id, stack.names.table.clone()),
        (bucket_id, stack.names.bucket.clone()),
        (
            queue_named(&template, UPLOAD_EVENTS_QUEUE.suffix),
            stack.upload_queue_url.clone(),
        ),
        (
            queue_named(&template, UPLOAD_EVENTS_QUEUE.dlq_suffix),
            stack.upload_dlq_url.clone(),
        ),
        (
            queue_named(&template, SEND_QUEUE.suffix),
            stack.send_queue_url.clone(),
        ),
        (
            queue_named(&template, SEND_QUEUE.dlq_suffix),
            stack.send_dlq_url.clone(),
        ),
    ]);
    let parameters = HashMap::from([
        (
            "PhoneNumberId",
            anna_integration_tests::PHONE_NUMBER_ID.to_owned(),
        ),
        ("WabaId", anna_integration_tests::WABA_ID.to_owned()),
        ("SecretsPath", secrets_path.to_owned()),
    ]);
    let sim = wa_sim::SimServer::start(wa_sim::SimConfig::default(), ([127, 0, 0, 1], 0).into())
        .await
        .expect("starting wa-sim");
    (
        Bindings {
            parameters,
            resources,
        },
        sim,
    )
}

/// Runs the function's binary with the environment the template gives it, bound to the local
/// stack, with moto as AWS, wa-sim as the Cloud API and a fake Runtime API handing it `event`,
/// until it has answered or exited.
async fn start_function(
    function: &Value,
    binary_name: &str,
    bindings: &Bindings,
    wa_base_url: &str,
    event: Value,
) -> Started {
    let template = template();
    let (runtime_api, runtime) = fake_runtime_api(event).await;
    let default_memory = json!(128);
    let memory = setting(&template, function, "MemorySize").unwrap_or(&default_memory);
    let mut command = tokio::process::Command::new(binary(binary_name));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(
            environment(&template, function)
                .iter()
                .map(|(k, v)| (k.clone(), bindings.evaluate(&template, v))),
        )
        // Not in the template (the default is Meta's Graph API): wa-sim here.
        .env("WA_API_BASE_URL", wa_base_url)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_RUNTIME_API", &runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", binary_name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            bindings.evaluate(&template, memory),
        )
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/anna-notify/test")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("starting the function binary");
    let mut stderr = child.stderr.take().unwrap();
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text).await;
        text
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answered = {
            let runtime = runtime.lock().unwrap();
            !runtime.responses.is_empty() || !runtime.errors.is_empty()
        };
        if answered || tokio::time::Instant::now() > deadline {
            let _ = child.kill().await;
            break;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.wait().await;
    let stderr = stderr_text.await.unwrap_or_default();
    let runtime = runtime.lock().unwrap();
    Started {
        responses: runtime.responses.clone(),
        errors: runtime.errors.clone(),
        stderr,
    }
}

#[tokio::test]
async fn every_function_starts_with_the_environment_the_template_gives_it() {
    let template = template();
    let ssm = ssm().await;
    let path = unique_path();
    let (bindings, sim) = bindings(&path).await;
    let mut stored = BTreeSet::new();
    let functions = functions(&template);
    for (_, _, function) in &functions {
        for (name, value) in environment(&template, function) {
            if name.ends_with(secrets::PARAMETER_SUFFIX) {
                let parameter = bindings.evaluate(&template, &value);
                if stored.insert(parameter.clone()) {
                    put_secure(&ssm, &parameter, &secret_value(&name)).await;
                }
            }
        }
    }
    // The functions start one after another on two cores; all at once they would compete
    // with the rest of the suite for the minute each may take.
    for (function_id, binary_name, function) in &functions {
        let (event, healthy) = invocation(function);
        let started =
            start_function(function, binary_name, &bindings, &sim.base_url(), event).await;
        assert!(
            started.errors.is_empty(),
            "{function_id} ({binary_name}) reported errors: {:?}\n{}",
            started.errors,
            started.stderr
        );
        assert!(
            started.responses.len() == 1 && healthy(&started.responses[0]),
            "{function_id} ({binary_name}) did not answer the invocation as expected: {:?}\n\
             its log:\n{}",
            started.responses,
            started.stderr
        );
    }
}

#[tokio::test]
async fn a_function_whose_secret_parameter_is_missing_says_which() {
    let template = template();
    let (_, function) = function_built_from(&template, "anna-sender");
    // Nothing stored under this path: reading the access token fails at start-up.
    let path = unique_path();
    let (bindings, sim) = bindings(&path).await;
    let (event, _) = invocation(function);
    let started = start_function(function, "anna-sender", &bindings, &sim.base_url(), event).await;
    assert!(started.responses.is_empty(), "{}", started.stderr);
    let expected = format!("SSM parameter \"{path}/wa-access-token\" does not exist");
    assert!(
        started.stderr.contains("WA_ACCESS_TOKEN") && started.stderr.contains(&expected),
        "start-up error should name the variable and the parameter:\n{}",
        started.stderr
    );
}
