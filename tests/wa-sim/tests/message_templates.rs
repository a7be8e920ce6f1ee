//! `GET /{version}/{waba-id}/message_templates`: cursor paging, fields, errors.

mod common;

use common::*;
use serde_json::Value;

fn names(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|t| {
                    format!(
                        "{}/{}",
                        t["name"].as_str().unwrap_or("?"),
                        t["language"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn pages_follow_next_links() {
    let sim = start().await;
    let (status, everything) = get_json(&templates_url(&sim)).await;
    assert_eq!(status, 200, "{everything}");
    let all = names(&everything);
    assert_eq!(all.len(), 10, "default limit 25 gives everything");
    assert!(everything["paging"].get("next").is_none());
    assert!(all.contains(&"boas_vindas/pt_BR".to_owned()));
    assert!(all.contains(&"boas_vindas/en_US".to_owned()));

    let mut url = format!(
        "{}?limit=5&fields=name,language,status,category,components,parameter_format",
        templates_url(&sim)
    );
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, page) = get_json(&url).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        assert!(page["data"].as_array().is_some_and(|d| d.len() <= 5));
        assert!(page["paging"]["cursors"]["before"].is_string());
        assert!(page["paging"]["cursors"]["after"].is_string());
        seen.extend(names(&page));
        match page["paging"]["next"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 2);
    assert_eq!(seen, all);
    sim.shutdown().await;
}

#[tokio::test]
async fn cursors_page_forwards_and_backwards() {
    let sim = start().await;
    let base = templates_url(&sim);
    let (_, first) = get_json(&format!("{base}?limit=3")).await;
    assert!(first["paging"].get("previous").is_none());
    let after = first["paging"]["cursors"]["after"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, second) = get_json(&format!("{base}?limit=3&after={after}")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(names(&second).len(), 3);
    assert_ne!(names(&first), names(&second));
    let previous = second["paging"]["previous"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, back) = get_json(&previous).await;
    assert_eq!(names(&back), names(&first));

    // Past the end: empty data.
    let (_, all) = get_json(&base).await;
    let last = all["paging"]["cursors"]["after"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, end) = get_json(&format!("{base}?after={last}")).await;
    assert_eq!(status, 200);
    assert_eq!(names(&end).len(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn fields_and_filters() {
    let sim = start().await;
    let base = templates_url(&sim);
    let (_, page) = get_json(&format!("{base}?fields=name,status&limit=1")).await;
    let keys: Vec<&String> = page["data"][0]
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 3, "{page}");
    assert!(page["data"][0]["id"].is_string());
    assert!(page["data"][0]["components"].is_null());

    let (_, approved) = get_json(&format!("{base}?status=APPROVED")).await;
    assert_eq!(names(&approved).len(), 6);
    let (_, named) = get_json(&format!("{base}?name=boas_vindas")).await;
    assert_eq!(names(&named), ["boas_vindas/pt_BR", "boas_vindas/en_US"]);

    let (_, full) = get_json(&format!("{base}?name=lembrete_consulta")).await;
    let t = &full["data"][0];
    assert_eq!(t["parameter_format"], "NAMED");
    assert_eq!(t["components"][0]["type"], "BODY");
    assert_eq!(
        t["components"][0]["example"]["body_text_named_params"][0]["param_name"],
        "nome"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn listing_errors() {
    let sim = start().await;
    let base = templates_url(&sim);
    let (status, answer) = read(client().get(&base).send().await).await;
    assert_graph_error(status, &answer, 401, 190);
    let (status, answer) =
        get_json(&format!("{}/v23.0/42/message_templates", sim.base_url())).await;
    assert_graph_error(status, &answer, 400, 100);
    for query in ["limit=0", "limit=abc", "after=garbage", "before=Zm9v"] {
        let (status, answer) = get_json(&format!("{base}?{query}")).await;
        assert_graph_error(status, &answer, 400, 100);
    }
    sim.shutdown().await;
}
