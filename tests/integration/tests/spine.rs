//! The spine end to end: a spreadsheet dropped into S3 reaches WhatsApp (wa-sim), every row
//! tracked in DynamoDB (moto) — through the real handlers, fed real SQS records by the same
//! event-source emulation the local runner uses.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anna_integration_tests::{TestStack, fixture};
use anna_shared::aws::dynamo::now_rfc3339;
use anna_shared::aws::sqs::SqsSendQueue;
use anna_shared::domain::dispatch::{Dispatch, DispatchSource, DispatchState};
use anna_shared::domain::message::{MessageId, MessageRecord, MessageStatus};
use anna_shared::ports::{DispatchStore, MessageStore, SendQueue, WriteMode};
use anna_shared::sheet::{ReadOptions, read_sheet};
use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::Value;

const QUIET: Duration = Duration::from_secs(90);

async fn upload(stack: &TestStack, template: &str, file: &str, bytes: Vec<u8>) -> String {
    let id = stack
        .put_file(&format!("inbox/{template}/pt_BR/{file}"), bytes)
        .await;
    stack.run_until_quiet(QUIET).await;
    id
}

async fn upload_fixture(stack: &TestStack, template: &str, file: &str) -> String {
    let bytes = std::fs::read(fixture(&format!("sheets/{file}"))).expect("fixture file");
    upload(stack, template, file, bytes).await
}

fn count_by_status(messages: &[MessageRecord]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for m in messages {
        *counts.entry(m.status.as_str()).or_insert(0) += 1;
    }
    counts
}

/// Body parameter texts of a send, in order.
fn body_texts(send: &wa_sim::AcceptedSend) -> Vec<String> {
    send.payload["template"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "body")
        .flat_map(|c| c["parameters"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["text"].as_str().map(str::to_owned))
        .collect()
}

/// What every format of `boas_vindas` must produce: 4 rows sent, 3 rejected with reasons.
async fn assert_boas_vindas_outcome(stack: &TestStack, id: &str) {
    let dispatch = stack.dispatch(id).await;
    assert_eq!(dispatch.state, DispatchState::Sending, "{dispatch:?}");
    assert_eq!(
        (dispatch.rows, dispatch.accepted, dispatch.rejected),
        (7, 4, 3)
    );
    assert_eq!(
        dispatch.columns.first().map(String::as_str),
        Some("telefone")
    );

    let messages = stack.messages(id).await;
    assert_eq!(messages.len(), 7, "every row is recorded");
    assert_eq!(
        count_by_status(&messages),
        BTreeMap::from([("rejected", 3), ("sent", 4)])
    );
    let rejected: BTreeSet<&str> = messages
        .iter()
        .filter(|m| m.status == MessageStatus::Rejected)
        .map(|m| m.reason_code.as_deref().unwrap_or("?"))
        .collect();
    assert_eq!(
        rejected,
        BTreeSet::from(["duplicate", "invalid_phone", "missing_variable"])
    );
    assert!(
        messages
            .iter()
            .filter(|m| m.status == MessageStatus::Rejected)
            .all(|m| m.reason.as_deref().is_some_and(|r| !r.is_empty())),
        "rejected rows carry a reason an operator can read"
    );

    let sends = stack.sends_for(id);
    assert_eq!(
        sends.len(),
        4,
        "exactly one WhatsApp message per accepted row"
    );
    let sent: Vec<&MessageRecord> = messages
        .iter()
        .filter(|m| m.status == MessageStatus::Sent)
        .collect();
    for message in &sent {
        let send = sends
            .iter()
            .find(|s| Some(&s.wamid) == message.wamid.as_ref())
            .unwrap_or_else(|| panic!("no accepted send for {message:?}"));
        assert_eq!(
            send.biz_opaque_callback_data.as_deref(),
            Some(message.id.to_string().as_str())
        );
        assert_eq!(Some(format!("+{}", send.to)), message.phone);
        assert_eq!(message.wa_id.as_deref(), Some(send.wa_id.as_str()));
        let texts = body_texts(send);
        assert_eq!(texts.len(), 2, "body has name and date: {texts:?}");
        assert!(
            is_ddmmyyyy(&texts[1]),
            "dates reach WhatsApp as dd/mm/yyyy, got {texts:?}"
        );
    }
    // A Brazilian mobile outside the old nine-digit areas: WhatsApp answers with the
    // eight-digit wa_id, and both are kept.
    let minas = sent
        .iter()
        .find(|m| m.phone.as_deref() == Some("+5531987654321"))
        .expect("the number stored as a numeric cell was read as 5531987654321");
    assert_eq!(minas.wa_id.as_deref(), Some("553187654321"));
}

fn is_ddmmyyyy(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[2] == b'/'
        && b[5] == b'/'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit())
}

macro_rules! every_format_reaches_whatsapp {
    ($($test:ident => $file:literal),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $test() {
            let stack = TestStack::start().await;
            let id = upload_fixture(&stack, "boas_vindas", $file).await;
            assert_boas_vindas_outcome(&stack, &id).await;
        }
    )*};
}

every_format_reaches_whatsapp! {
    xlsx_reaches_whatsapp => "boas_vindas.xlsx",
    xlsm_reaches_whatsapp => "boas_vindas.xlsm",
    xlsb_reaches_whatsapp => "boas_vindas.xlsb",
    xls_reaches_whatsapp => "boas_vindas.xls",
    ods_reaches_whatsapp => "boas_vindas.ods",
    csv_reaches_whatsapp => "boas_vindas.csv",
    windows_1252_semicolon_csv_reaches_whatsapp => "boas_vindas-win1252-semicolon.csv",
    utf8_bom_csv_reaches_whatsapp => "boas_vindas-utf8-bom.csv",
    tab_separated_csv_reaches_whatsapp => "boas_vindas-tab.csv",
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_template_variables_follow_header_names_not_column_order() {
    let stack = TestStack::start().await;
    let file = "lembrete_consulta.xlsx";
    let id = upload_fixture(&stack, "lembrete_consulta", file).await;

    let bytes = std::fs::read(fixture(&format!("sheets/{file}"))).expect("fixture");
    let rows: Vec<Vec<String>> = read_sheet(&bytes, &ReadOptions::default())
        .expect("readable")
        .map(|row| row.expect("row").cells)
        .collect();
    let header = &rows[0];
    let column = |name: &str| header.iter().position(|h| h == name).expect("column");
    let sends = stack.sends_for(&id);
    assert_eq!(sends.len(), rows.len() - 1);
    for send in &sends {
        let phone_row = rows[1..]
            .iter()
            .find(|row| {
                anna_shared::domain::phone::PhoneNumber::parse(&row[0], &Default::default())
                    .is_ok_and(|p| p.digits() == send.to)
            })
            .expect("a row for every send");
        let body = send.payload["template"]["components"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "body"))
            .expect("body component");
        for parameter in body["parameters"].as_array().expect("parameters") {
            let name = parameter["parameter_name"]
                .as_str()
                .expect("named parameter");
            assert_eq!(
                parameter["text"].as_str(),
                Some(phone_row[column(name)].as_str()),
                "{name} comes from the column headed {name}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_s3_event_creates_nothing_new() {
    let stack = TestStack::start().await;
    let bytes = std::fs::read(fixture("sheets/boas_vindas.csv")).expect("fixture");
    let id = stack
        .put_file("inbox/boas_vindas/pt_BR/again.csv", bytes)
        .await;

    // Take the notification off the queue ourselves, so it can be delivered again verbatim.
    let mut captured: Vec<SqsEvent> = Vec::new();
    while captured.iter().all(|e| {
        !e.records.iter().any(|r| {
            r.body
                .as_deref()
                .is_some_and(|b| b.contains("ObjectCreated"))
        })
    }) {
        anna_local::runner::poll_once(
            &stack.sqs,
            &stack.stack.upload_queue_url,
            Duration::from_secs(1),
            |event| {
                captured.push(event.clone());
                anna_upload::handle(&stack.upload, event)
            },
        )
        .await
        .expect("polling");
    }
    let event = captured.pop().expect("the ObjectCreated event");
    let queued_once = stack.queue_depth(&stack.stack.send_queue_url).await;
    assert_eq!(queued_once, 4);

    let response = anna_upload::handle(&stack.upload, event.clone()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        stack.queue_depth(&stack.stack.send_queue_url).await,
        queued_once,
        "a redelivered event queues nothing new"
    );
    stack.run_until_quiet(QUIET).await;
    let response = anna_upload::handle(&stack.upload, event).await;
    assert!(response.batch_item_failures.is_empty());
    stack.run_until_quiet(QUIET).await;

    assert_eq!(stack.messages(&id).await.len(), 7);
    assert_eq!(stack.sends_for(&id).len(), 4, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_intake_resumes_and_keeps_what_was_already_sent() {
    let stack = TestStack::start().await;
    let bytes = std::fs::read(fixture("sheets/boas_vindas.csv")).expect("fixture");
    let key = "inbox/boas_vindas/pt_BR/crashed.csv";
    // A first run that died mid-intake: the dispatch is still `intake` and row 2 (the first
    // data row) was already recorded and sent.
    let id = stack.put_file(key, bytes).await;
    let mut dispatch = Dispatch::new(
        id.clone(),
        "boas_vindas".into(),
        "pt_BR".into(),
        DispatchSource::Upload {
            bucket: stack.stack.names.bucket.clone(),
            key: key.into(),
        },
        &now_rfc3339(),
    );
    dispatch.state = DispatchState::Intake;
    stack
        .store
        .create_dispatch(&dispatch)
        .await
        .expect("dispatch");
    let mut already_sent = MessageRecord::queued(
        MessageId::new(id.clone(), 2),
        "boas_vindas",
        "pt_BR",
        "+5511987654321".into(),
        "+55 11 98765-4321".into(),
        vec![],
        vec![],
        &now_rfc3339(),
    );
    already_sent.status = MessageStatus::Sent;
    already_sent.wamid = Some("wamid.FROM-THE-FIRST-RUN".into());
    stack
        .store
        .put_messages(&[already_sent.clone()], WriteMode::Fresh)
        .await
        .expect("message");

    stack.run_until_quiet(QUIET).await;

    let messages = stack.messages(&id).await;
    assert_eq!(messages.len(), 7);
    let kept = messages.iter().find(|m| m.id.row == 2).expect("row 2");
    assert_eq!(kept.wamid.as_deref(), Some("wamid.FROM-THE-FIRST-RUN"));
    assert_eq!(kept.status, MessageStatus::Sent);
    assert_eq!(
        stack.sends_for(&id).len(),
        3,
        "the row sent before the crash is not sent again"
    );
    assert_eq!(stack.dispatch(&id).await.state, DispatchState::Sending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_send_records_send_nothing_new() {
    let stack = TestStack::start().await;
    let id = upload_fixture(&stack, "boas_vindas", "boas_vindas.csv").await;
    let before = stack.messages(&id).await;
    assert_eq!(stack.sends_for(&id).len(), 4);

    // Every message's record delivered again (twice), as SQS at-least-once delivery may.
    let ids: Vec<MessageId> = before.iter().map(|m| m.id.clone()).collect();
    let queue = SqsSendQueue::new(stack.sqs.clone(), stack.stack.send_queue_url.clone());
    queue.enqueue(&ids).await.expect("enqueue");
    queue.enqueue(&ids).await.expect("enqueue");
    stack.run_until_quiet(QUIET).await;

    assert_eq!(stack.sends_for(&id).len(), 4, "no second WhatsApp message");
    assert_eq!(
        stack.messages(&id).await,
        before,
        "nothing recorded changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_files_fail_their_dispatch_with_a_reason() {
    let stack = TestStack::start().await;
    let csv = b"telefone;loja;nome;data\n+5511987654321;Loja;Ana;01/01/2027\n".to_vec();
    let fixture_bytes = |name: &str| std::fs::read(fixture(name)).expect("fixture");
    // (key, file, words the recorded reason must contain)
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "inbox/boas_vindas/pt_BR/corrupt.xlsx",
            fixture_bytes("sheets/corrupt.xlsx"),
            "damaged",
        ),
        (
            "inbox/boas_vindas/pt_BR/not-a-sheet.xlsx",
            fixture_bytes("sheets/not-a-sheet.xlsx"),
            "PNG image, not a spreadsheet",
        ),
        ("inbox/boas_vindas/pt_BR/empty.csv", Vec::new(), "empty"),
        (
            "inbox/boas_vindas/pt_BR/header-only.csv",
            b"telefone;loja;nome;data\n".to_vec(),
            "no data rows",
        ),
        (
            "inbox/nao_existe/pt_BR/lista.csv",
            csv.clone(),
            "does not exist",
        ),
        (
            "inbox/boas_vindas/xx_XX/lista.csv",
            csv.clone(),
            "does not exist",
        ),
        (
            "inbox/oferta_pausada/pt_BR/lista.csv",
            csv.clone(),
            "PAUSED",
        ),
        (
            "inbox/campanha_rejeitada/pt_BR/lista.csv",
            csv.clone(),
            "REJECTED",
        ),
        (
            "inbox/lista-sem-template.csv",
            csv.clone(),
            "inbox/<template>/<language>/<file>",
        ),
        (
            "inbox/lembrete_consulta/pt_BR/wrong-header.csv",
            b"telefone;cliente;quando\n+5511987654321;Ana;amanha\n".to_vec(),
            "no column for",
        ),
    ];
    let mut ids = Vec::new();
    for (key, bytes, expected) in cases {
        ids.push((key, stack.put_file(key, bytes).await, expected));
    }
    stack.run_until_quiet(QUIET).await;
    for (key, id, expected) in ids {
        let dispatch = stack.dispatch(&id).await;
        assert_eq!(dispatch.state, DispatchState::Failed, "{key}: {dispatch:?}");
        let reason = dispatch.reason.unwrap_or_default();
        assert!(
            reason.contains(expected),
            "{key}: reason {reason:?} lacks {expected:?}"
        );
        assert!(stack.messages(&id).await.is_empty());
        assert!(stack.sends_for(&id).is_empty());
    }
    assert_eq!(
        stack.queue_depth(&stack.stack.upload_queue_url).await,
        0,
        "unusable files are recorded, not retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_refusal_is_recorded_with_its_code() {
    let stack = TestStack::start().await;
    stack.sim.set_not_on_whatsapp(["5511900000000".to_owned()]);
    let csv = "telefone;loja;nome;data\n\
               5511900000000;Loja Centro;Ana;01/01/2027\n\
               5511987650000;Loja Centro;Bia;02/01/2027\n";
    let id = upload(
        &stack,
        "boas_vindas",
        "refused.csv",
        csv.as_bytes().to_vec(),
    )
    .await;
    let messages = stack.messages(&id).await;
    assert_eq!(
        count_by_status(&messages),
        BTreeMap::from([("failed", 1), ("sent", 1)])
    );
    let failed = messages
        .iter()
        .find(|m| m.status == MessageStatus::Failed)
        .expect("failed message");
    assert_eq!(failed.error_code, Some(131026));
    assert_eq!(failed.reason_code.as_deref(), Some("whatsapp_error"));
    assert!(failed.error_detail.is_some());
    assert_eq!(stack.sends_for(&id).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_send_record_ends_in_the_dlq_not_in_a_loop() {
    let stack = TestStack::start().await;
    for body in [
        "not json",
        r#"{"message_id":"d-unknown:1"}"#,
        r#"{"message_id":"no-row"}"#,
    ] {
        stack
            .sqs
            .send_message()
            .queue_url(&stack.stack.send_queue_url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while stack.queue_depth(&stack.stack.send_dlq_url).await < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "poison records never reached the DLQ"
        );
        stack.pump_sends().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(stack.queue_depth(&stack.stack.send_queue_url).await, 0);
    assert!(stack.sim.sends().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_reaching_whatsapp_is_the_documented_template_message() {
    let stack = TestStack::start().await;
    let csv = "telefone;loja;nome;data\n+55 11 98765-4321;Loja Centro;Maria;25/12/2026\n";
    let id = upload(&stack, "boas_vindas", "one.csv", csv.as_bytes().to_vec()).await;
    let sends = stack.sends_for(&id);
    assert_eq!(sends.len(), 1);
    let payload: &Value = &sends[0].payload;
    assert_eq!(payload["messaging_product"], "whatsapp");
    assert_eq!(payload["to"], "5511987654321");
    assert_eq!(payload["type"], "template");
    assert_eq!(payload["biz_opaque_callback_data"], format!("{id}:2"));
    assert_eq!(payload["template"]["name"], "boas_vindas");
    assert_eq!(payload["template"]["language"]["code"], "pt_BR");
    let components = payload["template"]["components"]
        .as_array()
        .expect("components");
    let texts = |kind: &str| -> Vec<&str> {
        components
            .iter()
            .filter(|c| c["type"] == kind)
            .flat_map(|c| c["parameters"].as_array().into_iter().flatten())
            .filter_map(|p| p["text"].as_str())
            .collect()
    };
    assert_eq!(texts("header"), vec!["Loja Centro"]);
    assert_eq!(texts("body"), vec!["Maria", "25/12/2026"]);
    let buttons: Vec<&Value> = components
        .iter()
        .filter(|c| c["type"] == "button")
        .collect();
    assert_eq!(buttons.len(), 2, "one payload per quick-reply button");
    assert_eq!(buttons[0]["sub_type"], "quick_reply");
    assert_eq!(buttons[0]["index"], "0");
}
