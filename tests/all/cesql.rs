//! CESQL filters on triggers, end to end: declared in sluice.toml, set
//! through the admin API, refused with their position when they do not
//! parse.

use std::time::Duration;

use axum::http::StatusCode;

use crate::harness::{start_up_error, Host, Sink};

#[tokio::test]
async fn a_cesql_filter_delivers_matching_events_only_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [triggers.big-orders]
            filters = [{{ cesql = "type LIKE 'dev.sluice.%' AND INT(amount) > 100" }}]
            subscriber = "{}"
            "#,
            sink.url()
        ),
    )
    .unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    let send = |id: &'static str, ty: &'static str, amount: Option<&'static str>| {
        let mut headers = vec![
            ("ce-specversion", "1.0"),
            ("ce-id", id),
            ("ce-source", "/shop"),
            ("ce-type", ty),
            ("content-type", "application/json"),
        ];
        if let Some(a) = amount {
            headers.push(("ce-amount", a));
        }
        let host = &host;
        async move {
            let r = host.post_binary("/", &headers, "{}").await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        }
    };

    send("big", "dev.sluice.order", Some("250")).await;
    let got = sink.next(Duration::from_secs(10)).await;
    assert_eq!(got.header("ce-id"), Some("big"));
    assert_eq!(got.header("ce-amount"), Some("250"));

    // Too small, and the wrong type: no match.
    send("small", "dev.sluice.order", Some("50")).await;
    host.wait_unmatched("small").await;
    send("other", "com.example.order", Some("250")).await;
    host.wait_unmatched("other").await;
    // No `amount`: an evaluation error, so no match, counted by kind.
    send("no-amount", "dev.sluice.order", None).await;
    host.wait_unmatched("no-amount").await;
    assert_eq!(filter_errors(&host, "missing_attribute").await, 1.0);
    // Not an integer: a cast error.
    send("bad-amount", "dev.sluice.order", Some("lots")).await;
    host.wait_unmatched("bad-amount").await;
    assert_eq!(filter_errors(&host, "cast").await, 1.0);
    host.settled().await;
    sink.assert_empty();

    // Through the admin API: a bad expression is a 400 naming its column,
    // a good one takes effect.
    let put = |name: &str, cesql: &str| {
        host.admin(reqwest::Method::PUT, &format!("/admin/v1/triggers/{name}"))
            .json(&serde_json::json!({
                "filters": [{ "cesql": cesql }],
                "subscriber": sink.url(),
            }))
            .send()
    };
    let r = put("bad", "type = 'x' AND CAST(amount AS INTEGER) > 1")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("column 16") && body.contains("INT(x)"),
        "{body}"
    );
    let r = put("admin-orders", "subject = 'vip'").await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let listed = host.get_json("/admin/v1/triggers/admin-orders").await;
    assert_eq!(listed["filters"][0]["cesql"], "subject = 'vip'");
    let r = host
        .post_binary(
            "/",
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", "vip"),
                ("ce-source", "/shop"),
                ("ce-type", "com.example.order"),
                ("ce-subject", "vip"),
            ],
            "",
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = sink.next(Duration::from_secs(10)).await;
    assert_eq!(got.header("ce-id"), Some("vip"));
}

/// `sluice_routing_filter_errors_total` of trigger `big-orders` for `error`.
async fn filter_errors(host: &Host, error: &str) -> f64 {
    host.metric_sum(
        "sluice_routing_filter_errors_total",
        &[
            ("kind", "trigger"),
            ("name", "big-orders"),
            ("error", error),
        ],
    )
    .await
}

#[tokio::test]
async fn a_bad_cesql_filter_stops_start_up_with_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        r#"
        [triggers.t]
        filters = [{ cesql = "type = 'a' AND amount >" }]
        subscriber = "log"
        "#,
    )
    .unwrap();
    let err = start_up_error(&dir.path().join("data"), &config);
    assert!(
        err.contains("cesql expression `type = 'a' AND amount >`") && err.contains("column 24"),
        "{err}"
    );
}
