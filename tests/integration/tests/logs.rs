//! No full phone number in the logs: an integration run (intake with rejected rows, sends,
//! a WhatsApp refusal, the review) logged at debug level, every line captured and scanned for
//! the phone numbers the run used, in every form they could take.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anna_integration_tests::{TestStack, fixture};
use anna_review::{ReviewRules, run};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every form a number of the run could appear in: E.164, digits, national, as typed.
fn forms(phone_cells: &[&str]) -> Vec<String> {
    let mut forms = Vec::new();
    for cell in phone_cells {
        let digits: String = cell.chars().filter(char::is_ascii_digit).collect();
        forms.push(cell.to_string());
        forms.push(digits.clone());
        if let Some(national) = digits.strip_prefix("55") {
            forms.push(national.to_owned());
        }
    }
    forms.retain(|f| f.chars().filter(char::is_ascii_digit).count() >= 8);
    forms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_never_contain_a_full_phone_number() {
    let captured = Captured::default();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("debug"))
        .with_ansi(false)
        .with_writer(captured.clone())
        .init();

    let stack = TestStack::start().await;
    stack.sim.set_not_on_whatsapp(["5511900000000".to_owned()]);
    let bytes = std::fs::read(fixture("sheets/boas_vindas.xlsx")).expect("fixture");
    let sheet = stack
        .put_file("inbox/boas_vindas/pt_BR/logged.xlsx", bytes)
        .await;
    let refused = stack
        .send_boas_vindas("refused.csv", &["5511900000000", "+55 (21) 99876-1234"])
        .await;
    stack.run_until_quiet(Duration::from_secs(60)).await;
    run(&stack.review(ReviewRules::default()), chrono::Utc::now())
        .await
        .expect("review");
    assert_eq!(stack.sends_for(&sheet).len(), 4, "the run did its work");
    assert_eq!(stack.sends_for(&refused).len(), 1);

    let logs = String::from_utf8_lossy(
        &captured
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned();
    assert!(logs.lines().count() > 50, "the run was logged");
    assert!(logs.contains("****"), "numbers appear masked");
    let used = [
        "+55 11 98765-4321",
        "(21) 99876-5432",
        "5531987654321",
        "5547991234567",
        "(11) 91234-5678",
        "5511900000000",
        "+55 (21) 99876-1234",
    ];
    for form in forms(&used) {
        let hit = logs.lines().find(|line| line.contains(&form));
        assert!(
            hit.is_none(),
            "full phone number {form:?} in the logs: {hit:?}"
        );
    }
}
