//! Hostile files through the upload function, against moto: the outcome the corpus test
//! (`shared/tests/hostile_corpus.rs`) expects from the pure intake is what lands on the
//! dispatch — `failed` with the reason, or every row recorded as accepted or rejected with
//! its code — and nothing is left on the upload queue to be retried.

use std::collections::BTreeMap;
use std::time::Duration;

use anna_integration_tests::{TestStack, fixture};
use anna_shared::domain::dispatch::DispatchState;
use anna_shared::domain::message::MessageStatus;
use serde_json::Value;

/// Files of the corpus whose expectation needs no special limits: bombs of each kind,
/// an encrypted file, and files with rows to accept and reject.
const FILES: [&str; 10] = [
    "zip-bomb.xlsx",
    "xls-dimensions-bomb.xls",
    "million-empty-rows-wide.ods",
    "password.xlsx",
    "cfb-noise.xls",
    "formula-errors.xlsx",
    "control-chars.csv",
    "merged-cells.ods",
    "bom-in-middle.csv",
    "unbalanced-quote.csv",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_get_their_expected_outcome_on_the_dispatch() {
    let manifest: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixture("hostile/expected.json")).expect("manifest"),
    )
    .expect("manifest json");
    let stack = TestStack::start().await;
    let mut uploads = Vec::new();
    for file in FILES {
        let case = manifest
            .iter()
            .find(|c| c["file"] == file && c["env"].is_null())
            .unwrap_or_else(|| panic!("{file} is not in the manifest"));
        let bytes = std::fs::read(fixture(&format!("hostile/{file}"))).expect("corpus file");
        let template = case["template"].as_str().unwrap_or("boas_vindas");
        let id = stack
            .put_file(&format!("inbox/{template}/pt_BR/{file}"), bytes)
            .await;
        uploads.push((file, id, case["expect"].clone()));
    }
    stack.run_until_quiet(Duration::from_secs(90)).await;

    for (file, id, expect) in uploads {
        let dispatch = stack.dispatch(&id).await;
        let messages = stack.messages(&id).await;
        if let Some(reason) = expect["failed"].as_str() {
            assert_eq!(
                dispatch.state,
                DispatchState::Failed,
                "{file}: {dispatch:?}"
            );
            let recorded = dispatch.reason.unwrap_or_default();
            assert!(
                recorded.contains(reason),
                "{file}: reason {recorded:?} lacks {reason:?}"
            );
            assert!(messages.is_empty(), "{file}: nothing recorded for a bomb");
            continue;
        }
        assert_ne!(
            dispatch.state,
            DispatchState::Failed,
            "{file}: {dispatch:?}"
        );
        assert_eq!(
            u64::from(dispatch.accepted),
            expect["accepted"].as_u64().unwrap_or(0),
            "{file}: {dispatch:?}"
        );
        let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
        for message in &messages {
            if message.status == MessageStatus::Rejected {
                let code = message.reason_code.clone().unwrap_or_default();
                *rejected.entry(code).or_default() += 1;
                assert!(
                    message.reason.as_deref().is_some_and(|r| !r.is_empty()),
                    "{file}: a rejected row without a reason"
                );
            }
        }
        let expected: BTreeMap<String, u64> = expect["rejected"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(rejected, expected, "{file}");
        assert_eq!(
            messages.len() as u64,
            u64::from(dispatch.rows),
            "{file}: every row is a message"
        );
    }
    assert_eq!(
        stack.queue_depth(&stack.stack.upload_queue_url).await,
        0,
        "hostile files are recorded, not retried"
    );
}
