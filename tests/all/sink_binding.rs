//! Knative's SinkBinding contract: `env:NAME` destinations resolve to the
//! URL the variable holds (`K_SINK`), with `K_CE_OVERRIDES`' extensions
//! added to what is sent there.

use axum::http::StatusCode;

use crate::harness::{next_of, send_event, start_up_error, Host, Sink};

#[tokio::test]
async fn sources_and_triggers_sent_to_env_k_sink_reach_it_with_the_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start().await;
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        r#"
        [sources.beat]
        kind = "ping"
        schedule = "* * * * * *"
        sink = "env:K_SINK"

        [triggers.forward]
        filter = { type = "dev.test.bound" }
        subscriber = "env:K_SINK"
        "#,
    )
    .unwrap();
    let sink_url = sink.url();
    let host = Host::start_with(
        &dir.path().join("data"),
        Some(&config),
        &[
            ("K_SINK", sink_url.as_str()),
            (
                "K_CE_OVERRIDES",
                r#"{"extensions": {"boundby": "sinkbinding"}}"#,
            ),
        ],
    )
    .await;

    let ping = next_of(&mut sink, "dev.sluice.sources.ping").await;
    assert_eq!(ping.header("ce-boundby"), Some("sinkbinding"));

    let r = send_event(&host.client, &host.url("/"), "b1", "dev.test.bound", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = next_of(&mut sink, "dev.test.bound").await;
    assert_eq!(got.header("ce-id"), Some("b1"));
    assert_eq!(got.header("ce-boundby"), Some("sinkbinding"));

    // A trigger sent through the admin API resolves `env:` the same way
    // and reads back as written.
    host.trigger_ok(
        "admin-forward",
        serde_json::json!({"filter": {"type": "dev.test.admin"}, "subscriber": "env:K_SINK"}),
    )
    .await;
    let t = host.get_json("/admin/v1/triggers/admin-forward").await;
    assert_eq!(t["subscriber"], "env:K_SINK", "{t}");
    let r = send_event(&host.client, &host.url("/"), "b2", "dev.test.admin", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = next_of(&mut sink, "dev.test.admin").await;
    assert_eq!(got.header("ce-boundby"), Some("sinkbinding"));

    // One the process cannot resolve is refused, naming the variable.
    let r = host
        .admin(reqwest::Method::PUT, "/admin/v1/triggers/unbound")
        .json(&serde_json::json!({"subscriber": "env:SLUICE_TEST_UNSET_SINK"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let body = r.text().await.unwrap();
    assert!(body.contains("SLUICE_TEST_UNSET_SINK"), "{body}");
}

#[tokio::test]
async fn an_env_destination_whose_variable_is_unset_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "[triggers.t]\nsubscriber = \"env:SLUICE_TEST_UNSET_SINK\"\n",
    )
    .unwrap();
    let err = start_up_error(&dir.path().join("data"), &config);
    assert!(
        err.contains("SLUICE_TEST_UNSET_SINK") && err.contains("not set"),
        "{err}"
    );
}
