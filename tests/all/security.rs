//! The two planes, admin and sender authentication, the audit log, and the
//! limits that keep hostile clients from wearing the host down; each
//! against the real binary (see `docs/security.md`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{ce, function, send_event, Host, Sink};

const WRITE: &str = "write-secret-0123456789";
const READ: &str = "read-secret-0123456789";
const SENDER: &str = "sender-secret-0123456789";

/// Start a host whose config file is `toml` (written next to the data).
async fn host_with(toml: &str, env: &[(&str, &str)]) -> (Host, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, toml).unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), env).await;
    (host, dir)
}

/// A host with a write token `ci` and a read token `dash`.
async fn host_with_tokens() -> (Host, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("admin-tokens");
    std::fs::write(
        &tokens,
        format!("# name:scope:secret\nci:write:{WRITE}\ndash:read:{READ}\n"),
    )
    .unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "[admin]\ntokens_file = \"admin-tokens\"\n").unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    (host, dir)
}

/// A raw connection to `to` from the loopback address `from` (all of
/// 127/8 is loopback on Linux, so the host sees different clients).
async fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Read until the peer closes (failing the test after 15 s) and return
/// what was read.
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("reading: {e}"),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the host did not close the connection");
    String::from_utf8_lossy(&out).into_owned()
}

/// Read (failing the test after 15 s) until the end of a response's head,
/// and return what was read.
async fn read_head(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        let mut byte = [0u8; 1];
        while !out.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(0) => break,
                Ok(_) => out.push(byte[0]),
                Err(e) => panic!("reading: {e}"),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer from the host");
    String::from_utf8_lossy(&out).into_owned()
}

/// One binary-mode event request with `Connection: close`.
fn raw_event(id: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nce-specversion: 1.0\r\n\
         ce-id: {id}\r\nce-source: /raw\r\nce-type: t\r\ncontent-length: 2\r\n\r\n{{}}"
    )
}

fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .env_remove("SLUICE_ADMIN_TOKEN")
        .env_remove("SLUICE_ADMIN_TOKEN_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn the_event_listener_serves_only_events_and_the_admin_listener_the_rest() {
    let host = Host::start().await;
    for path in ["/admin/v1/functions", "/metrics"] {
        let r = host.client.get(host.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("--admin-listen"), "{body}");
    }
    // Uploads are not accepted on the event port either.
    let r = host
        .client
        .put(host.url("/admin/v1/functions/echo"))
        .header("content-type", "application/wasm")
        .body(std::fs::read(function("echo")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(host
        .get_json("/admin/v1/functions")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    for url in [host.url("/healthz"), host.admin_url("/healthz")] {
        assert_eq!(
            host.client.get(&url).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
    let metrics = host
        .client
        .get(host.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(metrics.text().await.unwrap().contains("sluice_"));
}

#[tokio::test]
async fn admin_tokens_have_scopes_and_every_change_is_audited() {
    let (mut host, _dir) = host_with_tokens().await;
    // No token: 401 with a challenge and a reason.
    let r = host
        .admin(reqwest::Method::GET, "/admin/v1/functions")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    assert!(r.text().await.unwrap().contains("bearer token"));
    // A wrong token: 401; nothing deployed.
    host.admin_token = Some("not-the-secret-0123456789".into());
    assert_eq!(
        host.deploy("echo", "echo").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The read token reads, and may not write (403, naming the scope).
    host.admin_token = Some(READ.into());
    assert!(host
        .get_json("/admin/v1/functions")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    let r = host.deploy("echo", "echo").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let reason = r.text().await.unwrap();
    assert!(
        reason.contains("`dash`") && reason.contains("write"),
        "{reason}"
    );
    // /metrics needs the read scope too.
    let r = host
        .client
        .get(host.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The write token deploys and routes; each change is in the audit log.
    host.admin_token = Some(WRITE.into());
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "t",
        serde_json::json!({"filter": {"type": "x"}, "function": "echo"}),
    )
    .await;
    let r = host
        .admin(reqwest::Method::DELETE, "/admin/v1/triggers/t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    host.admin_token = Some(READ.into());
    let audit = host.get_json("/admin/v1/audit").await;
    let entries = audit.as_array().unwrap();
    let summary: Vec<(String, String, String, String)> = entries
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("token"), s("action"), s("kind"), s("name"))
        })
        .collect();
    let own = |a: &str, b: &str, c: &str, d: &str| (a.into(), b.into(), c.into(), d.into());
    assert_eq!(
        summary,
        vec![
            own("ci", "put", "function", "echo"),
            own("ci", "put", "trigger", "t"),
            own("ci", "delete", "trigger", "t"),
        ]
    );
    let record = host.get_json("/admin/v1/functions/echo").await;
    assert_eq!(entries[0]["digest"], record["digest"]);
    assert!(entries[0]["time"].as_str().unwrap().ends_with('Z'));
    // The refusals were counted by reason.
    let refused = |reason: &'static str| {
        let host = &host;
        async move {
            host.metric(
                "sluice_auth_refused_total",
                &[("listener", "admin"), ("reason", reason)],
            )
            .await
            .unwrap_or(0.0)
        }
    };
    assert!(refused("missing").await >= 2.0);
    assert_eq!(refused("unknown").await, 1.0);
    assert_eq!(refused("scope").await, 1.0);
    // The audit log is a file under the data directory too.
    let file = std::fs::read_to_string(host.data_dir.join("audit.log")).unwrap();
    assert_eq!(file.lines().count(), 3);
    assert!(!file.contains(WRITE));
}

#[tokio::test]
async fn an_admin_listener_off_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("SLUICE_ADMIN_TOKENS")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not on loopback") && err.contains("SLUICE_ADMIN_TOKENS"),
        "{err}"
    );
    // A token too short to be a secret is refused, without echoing it.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("SLUICE_ADMIN_TOKENS", "ci:write:hunter2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("at least 16") && !err.contains("hunter2"),
        "{err}"
    );
}

#[tokio::test]
async fn the_cli_sends_its_token_and_says_what_failed() {
    let (host, dir) = host_with_tokens().await;
    let admin = host.admin_url("");
    let echo = function("echo");
    let echo = echo.to_str().unwrap();
    let url = [("SLUICE_ADMIN_URL", admin.as_str())];
    let (ok, out) = run_cli(&["ls"], &url);
    assert!(
        !ok && out.contains("401") && out.contains("no token was sent"),
        "{out}"
    );
    let read = [
        ("SLUICE_ADMIN_URL", admin.as_str()),
        ("SLUICE_ADMIN_TOKEN", READ),
    ];
    let (ok, out) = run_cli(&["ls"], &read);
    assert!(ok, "{out}");
    let (ok, out) = run_cli(&["deploy", "echo", echo], &read);
    assert!(
        !ok && out.contains("403") && out.contains("write scope"),
        "{out}"
    );
    let (ok, out) = run_cli(
        &["deploy", "echo", echo],
        &[
            ("SLUICE_ADMIN_URL", admin.as_str()),
            ("SLUICE_ADMIN_TOKEN", "wrong-but-long-enough"),
        ],
    );
    assert!(
        !ok && out.contains("401") && out.contains("was refused"),
        "{out}"
    );
    // From a file, and the secret never on the command line.
    let file = dir.path().join("my-token");
    std::fs::write(&file, format!("{WRITE}\n")).unwrap();
    let (ok, out) = run_cli(
        &["deploy", "echo", echo],
        &[
            ("SLUICE_ADMIN_URL", admin.as_str()),
            ("SLUICE_ADMIN_TOKEN_FILE", file.to_str().unwrap()),
        ],
    );
    assert!(ok, "{out}");
    // Nothing listening: said plainly.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (ok, out) = run_cli(&["ls"], &[("SLUICE_ADMIN_URL", gone.as_str())]);
    assert!(!ok && out.contains("connection refused"), "{out}");
}

#[tokio::test]
async fn sender_tokens_are_checked_before_the_event_is_read() {
    let mut sink = Sink::start().await;
    let (host, _dir) = host_with(
        "",
        &[("SLUICE_SENDER_TOKENS", &format!("partner:{SENDER}"))],
    )
    .await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "t",
        serde_json::json!({"filter": {"type": "t"}, "function": "echo", "sink": sink.url()}),
    )
    .await;
    let r = send_event(&host.client, &host.url("/"), "anon", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("bearer token"));
    let post = |token: &'static str, id: &'static str| {
        let mut req = host
            .client
            .post(host.url("/"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("{}");
        for (k, v) in ce(id, "t") {
            req = req.header(k, v);
        }
        req.send()
    };
    assert_eq!(
        post("some-other-secret-0123", "wrong")
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Direct invocation is guarded too.
    let r = send_event(&host.client, &host.url("/functions/echo"), "f", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(SENDER, "good").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    // Only the authenticated event was routed and delivered.
    let got = sink.next(Duration::from_secs(10)).await;
    assert_eq!(got.header("ce-id"), Some("good"));
    assert_eq!(
        host.metric("sluice_events_accepted_total", &[]).await,
        Some(1.0)
    );
    host.settled().await;
    sink.assert_empty();
    assert_eq!(
        host.metric(
            "sluice_auth_refused_total",
            &[("listener", "events"), ("reason", "missing")]
        )
        .await,
        Some(2.0)
    );
    // The webhook handshake and the health probe need no token.
    let r = host
        .client
        .request(reqwest::Method::OPTIONS, host.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn with_sender_tokens_options_does_not_say_which_functions_exist() {
    let (host, _dir) = host_with(
        "",
        &[("SLUICE_SENDER_TOKENS", &format!("partner:{SENDER}"))],
    )
    .await;
    host.deploy_ok("echo", "echo").await;
    let options = |name: &str, token: Option<&str>| {
        let mut req = host
            .client
            .request(
                reqwest::Method::OPTIONS,
                host.url(&format!("/functions/{name}")),
            )
            .header("webhook-request-origin", "partner.example");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status();
            let mut headers: Vec<(String, String)> = r
                .headers()
                .iter()
                .filter(|(k, _)| *k != "date")
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            (status, headers, r.text().await.unwrap())
        }
    };
    // Without a valid token, a deployed function and a missing one get
    // the same answer: the handshake.
    for token in [None, Some("some-other-secret-0123")] {
        let deployed = options("echo", token).await;
        assert_eq!(deployed.0, StatusCode::OK);
        assert_eq!(deployed, options("missing", token).await, "{token:?}");
    }
    // A known sender learns that nothing is there.
    assert_eq!(options("echo", Some(SENDER)).await.0, StatusCode::OK);
    assert_eq!(
        options("missing", Some(SENDER)).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn senders_past_their_rate_get_429_with_retry_after() {
    let (host, _dir) = host_with(
        "[ingress.rate_limit]\nrequests_per_second = 0.01\nburst = 2\n",
        &[],
    )
    .await;
    let send = |client: &reqwest::Client, id: &str| {
        let (client, url, id) = (client.clone(), host.url("/"), id.to_owned());
        async move { send_event(&client, &url, &id, "t", "{}").await }
    };
    assert_eq!(send(&host.client, "1").await.status(), StatusCode::ACCEPTED);
    assert_eq!(send(&host.client, "2").await.status(), StatusCode::ACCEPTED);
    let r = send(&host.client, "3").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=100).contains(&retry), "{retry}");
    assert!(r.text().await.unwrap().contains("ingress.rate_limit"));
    // Another client address has a bucket of its own.
    let other = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 2]))
        .tls_backend_preconfigured(sluice::security::tls::client_config(None).unwrap())
        .build()
        .unwrap();
    assert_eq!(send(&other, "4").await.status(), StatusCode::ACCEPTED);
    assert_eq!(
        host.metric("sluice_rate_limited_total", &[("listener", "events")])
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn a_spray_of_bad_sender_tokens_from_one_address_gets_429() {
    let (host, _dir) = host_with(
        "[ingress.rate_limit]\nrequests_per_second = 0.01\nburst = 2\n",
        &[("SLUICE_SENDER_TOKENS", &format!("partner:{SENDER}"))],
    )
    .await;
    let post = |token: &str, id: &str| {
        let mut req = host
            .client
            .post(host.url("/"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body("{}");
        for (k, v) in ce(id, "t") {
            req = req.header(k, v);
        }
        req.send()
    };
    // Failed authentications take from the address's bucket...
    for i in 0..2 {
        let r = post("guessed-secret-0123456789", &format!("bad{i}"))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // ...so once it is empty the next guess is not even checked.
    let r = post("guessed-secret-0123456789", "bad2").await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    let r = send_event(&host.client, &host.url("/"), "none", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "no token either");
    // A valid token from the same address has its own bucket.
    assert_eq!(
        post(SENDER, "good").await.unwrap().status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        host.metric("sluice_rate_limited_total", &[("listener", "events")])
            .await,
        Some(2.0)
    );
}

#[tokio::test]
async fn a_trap_is_answered_with_the_event_id_and_its_details_stay_in_the_log() {
    let host = Host::start().await;
    host.deploy_ok("trap", "trap").await;
    let r = send_event(&host.client, &host.url("/functions/trap"), "x1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["event_id"], "x1", "{body}");
    let reason = body["error"].as_str().unwrap();
    assert!(
        reason.contains("trapped") && reason.contains("x1"),
        "{reason}"
    );
    // The guest's stderr (its panic message), backtraces and the host's
    // paths stay out of the answer...
    for leak in [
        "asked to handle",
        "stderr",
        "panicked",
        "backtrace",
        "/",
        ".rs",
    ] {
        assert!(!reason.contains(leak), "`{leak}` in {reason}");
    }
    // ...and are in the log, with the event id.
    host.wait_for_log("the trap's details in the log", |v| {
        v["fields"]["event_id"] == "x1"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("trap function asked to handle x1"))
    })
    .await;
}

#[tokio::test]
async fn slow_headers_stalled_bodies_and_idle_connections_are_cut_off() {
    let (host, _dir) = host_with(
        "[ingress.connections]\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\n",
        &[],
    )
    .await;
    let addr = host.addr;
    // Headers that never finish: the connection is closed.
    let mut slow = connect_from([127, 0, 0, 1], addr).await;
    slow.write_all(b"POST / HTTP/1.1\r\nhost: x\r\nce-id: 1\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut slow).await;
    assert!(!answer.contains("202"), "{answer}");
    // A connection that never sends anything is closed too.
    let mut silent = connect_from([127, 0, 0, 1], addr).await;
    read_to_close(&mut silent).await;
    // A body that stops halfway: 408 with the reason.
    let mut stalled = connect_from([127, 0, 0, 1], addr).await;
    stalled
        .write_all(
            b"POST / HTTP/1.1\r\nhost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\n\
              ce-source: /s\r\nce-type: t\r\ncontent-length: 100\r\n\r\n{\"a\":",
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    // Keep-alive: after a full exchange, an idle connection is closed.
    let mut idle = connect_from([127, 0, 0, 1], addr).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // And the host still serves.
    let r = send_event(&host.client, &host.url("/"), "after", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn oversized_headers_get_431_and_oversized_bodies_413_before_they_are_sent() {
    let host = Host::start().await;
    let addr = host.addr;
    let mut s = connect_from([127, 0, 0, 1], addr).await;
    let big = "a".repeat(20 * 1024);
    s.write_all(format!("POST / HTTP/1.1\r\nhost: x\r\nx-big: {big}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    // 100 MB announced, nothing sent: refused at once.
    let mut s = connect_from([127, 0, 0, 1], addr).await;
    s.write_all(
        b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\nce-specversion: 1.0\r\n\
          ce-id: 1\r\nce-source: /s\r\nce-type: t\r\ncontent-length: 100000000\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("ingress.max_body_bytes"), "{answer}");
    // A chunked body (no length) is cut off once it passes the limit:
    // cloudevents_http::a_chunked_body_without_length_is_cut_at_the_limit.
    drop(host);
}

#[tokio::test]
async fn a_refused_body_is_still_read_so_the_client_gets_the_refusal_not_a_reset() {
    let host = Host::start().await;
    let mut s = connect_from([127, 0, 0, 1], host.addr).await;
    // 4 MiB announced: past the 1 MiB limit, within what the host drains.
    let body = vec![b'x'; 4 * 1024 * 1024];
    s.write_all(
        format!(
            "POST / HTTP/1.1\r\nhost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\n\
             ce-source: /s\r\nce-type: t\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s.write_all(&body[..64 * 1024]).await.unwrap();
    // The host refuses on the length alone: its answer comes before the
    // rest of the body is sent, as on a slower link (a host that did not
    // drain the body would now close and reset the connection).
    let head = read_head(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    s.write_all(&body[64 * 1024..])
        .await
        .expect("the host cut the connection before the body was sent");
    let answer = head + &read_to_close(&mut s).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    // A body announced past what the host drains is refused and closed at
    // once: oversized_headers_get_431_and_oversized_bodies_413_before_they_are_sent.
}

#[tokio::test]
async fn an_idle_flood_from_one_client_leaves_room_for_the_others() {
    let (host, _dir) = host_with(
        "[ingress.connections]\nmax_connections = 8\nmax_connections_per_client = 3\n",
        &[],
    )
    .await;
    let addr = host.addr;
    // 127.0.0.2 holds three idle connections: its fourth is closed.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 2], addr).await);
    }
    let mut fourth = connect_from([127, 0, 0, 2], addr).await;
    let _ = fourth.write_all(raw_event("flood").as_bytes()).await;
    let answer = read_to_close(&mut fourth).await;
    assert!(answer.is_empty(), "{answer}");
    // Another client is served meanwhile.
    let mut other = connect_from([127, 0, 0, 1], addr).await;
    other
        .write_all(raw_event("other").as_bytes())
        .await
        .unwrap();
    let answer = read_to_close(&mut other).await;
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    drop(held);
    assert_eq!(
        host.metric(
            "sluice_connections_refused_total",
            &[("listener", "events"), ("reason", "per_client")]
        )
        .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn connections_past_the_bound_are_closed_until_some_close() {
    let (host, _dir) = host_with(
        "[ingress.connections]\nmax_connections = 4\nmax_connections_per_client = 4\n",
        &[],
    )
    .await;
    let addr = host.addr;
    let mut held = Vec::new();
    for i in 2..6 {
        held.push(connect_from([127, 0, 0, i], addr).await);
    }
    let mut over = connect_from([127, 0, 0, 1], addr).await;
    let _ = over.write_all(raw_event("over").as_bytes()).await;
    assert!(read_to_close(&mut over).await.is_empty());
    drop(held);
    // The host sees the four close on its own time: try again (bounded).
    for attempt in 0.. {
        let mut s = connect_from([127, 0, 0, 1], addr).await;
        let _ = s.write_all(raw_event("later").as_bytes()).await;
        let answer = read_to_close(&mut s).await;
        if answer.starts_with("HTTP/1.1 202") {
            break;
        }
        assert!(attempt < 50, "never served again: {answer:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        host.metric(
            "sluice_connections_refused_total",
            &[("listener", "events"), ("reason", "max_connections")]
        )
        .await
        .map(|n| n >= 1.0),
        Some(true)
    );
}

#[tokio::test]
async fn json_nesting_and_attribute_counts_are_bounded() {
    let (host, _dir) = host_with("[ingress]\nmax_json_depth = 8\nmax_attributes = 10\n", &[]).await;
    let post = |ct: &'static str, body: String| {
        host.client
            .post(host.url("/"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let head = r#""specversion":"1.0","id":"1","source":"/s","type":"t""#;
    let deep = format!(r#"{{{head},"data":{}1{}}}"#, "[".repeat(8), "]".repeat(8));
    let r = post("application/cloudevents+json", deep).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("ingress.max_json_depth"));
    let wide: String = (0..7).map(|i| format!(r#","x{i}":"v""#)).collect();
    let batch = format!(r#"[{{{head}{wide}}}]"#);
    let r = post("application/cloudevents-batch+json", batch)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("ingress.max_attributes"));
    // Within the limits the same shapes pass.
    let ok = format!(r#"{{{head},"data":{}1{}}}"#, "[".repeat(7), "]".repeat(7));
    let r = post("application/cloudevents+json", ok).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    // A body of nothing but open brackets: 400, and the host lives on.
    let r = post("application/cloudevents-batch+json", "[".repeat(900_000))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        host.client
            .get(host.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn uploads_have_a_size_cap_and_a_compile_deadline() {
    let (host, _dir) = host_with("[admin]\nmax_upload_bytes = 10000\n", &[]).await;
    let r = host.deploy("echo", "echo").await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.text().await.unwrap().contains("admin.max_upload_bytes"));
    assert!(host
        .get_json("/admin/v1/functions")
        .await
        .as_array()
        .unwrap()
        .is_empty());
    drop(host);
    let (host, _dir) = host_with("[admin]\ncompile_timeout = \"1ms\"\n", &[]).await;
    let r = host.deploy("echo", "echo").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("admin.compile_timeout"));
    assert!(host
        .get_json("/admin/v1/functions")
        .await
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn an_allow_list_of_digests_limits_what_a_write_token_can_deploy() {
    use sha2::Digest as _;
    let echo = std::fs::read(function("echo")).unwrap();
    let allowed = hex::encode(sha2::Sha256::digest(&echo));
    let (host, _dir) = host_with(
        &format!("[admin]\nallowed_digests = [\"sha256:{allowed}\"]\n"),
        &[],
    )
    .await;
    host.deploy_ok("echo", "echo").await;
    let r = host.deploy("drop", "drop").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("admin.allowed_digests"));
    let names: Vec<String> = host
        .get_json("/admin/v1/functions")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["echo"]);
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost, as PEM
/// files in `dir`: (ca, cert, key).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "sluice test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

/// An HTTPS server on loopback that forwards the `ce-id` of every request
/// it receives and answers 202.
fn tls_sink(cert: &Path, key: &Path) -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let config = sluice::security::tls::server_config(&sluice::config::TlsFiles {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    })
    .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let tx = tx.clone();
        async move {
            let id = headers
                .get("ce-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let _ = tx.send(id.to_owned());
            StatusCode::ACCEPTED
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(
                        move |r: http::Request<hyper::body::Incoming>| {
                            tower::ServiceExt::oneshot(app.clone(), r.map(axum::body::Body::new))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
    });
    (addr, rx)
}

#[tokio::test]
async fn both_listeners_serve_tls_and_https_sinks_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path());
    let (sink_addr, mut sink) = tls_sink(&cert, &key);
    let tls = format!("tls = {{ cert = {cert:?}, key = {key:?} }}\n");
    let (mut host, _d) = host_with(
        &format!("[ingress]\n{tls}[admin]\n{tls}[outbound]\nca_file = {ca:?}\n"),
        &[],
    )
    .await;
    assert_eq!((host.scheme, host.admin_scheme), ("https", "https"));
    // A client that does not trust the CA cannot talk to either listener.
    let r = host.client.get(host.admin_url("/healthz")).send().await;
    assert!(r.is_err(), "{r:?}");
    host.client = crate::harness::client_trusting(Some(&ca));
    host.deploy_ok("echo", "echo").await;
    let sink_url = format!("https://127.0.0.1:{}/", sink_addr.port());
    host.trigger_ok(
        "t",
        serde_json::json!({"filter": {"type": "t"}, "function": "echo", "sink": sink_url}),
    )
    .await;
    let r = send_event(&host.client, &host.url("/"), "tls-1", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = tokio::time::timeout(Duration::from_secs(10), sink.recv())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("tls-1"));
    // Plain HTTP to a TLS port is not served.
    let plain = format!("http://{}/healthz", host.addr);
    assert!(crate::harness::client()
        .get(&plain)
        .send()
        .await
        .map(|r| r.status() != StatusCode::OK)
        .unwrap_or(true));

    // A host that does not trust the CA refuses the sink's certificate.
    let (host, _d) = host_with("", &[]).await;
    host.deploy_ok("echo", "echo").await;
    host.trigger_ok(
        "t",
        serde_json::json!({
            "filter": {"type": "t"}, "function": "echo", "sink": sink_url,
            "delivery": {"retry": 0}
        }),
    )
    .await;
    let r = send_event(&host.client, &host.url("/"), "tls-2", "t", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    host.wait_for_log("the failed delivery", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("delivery failed"))
    })
    .await;
    assert!(sink.try_recv().is_err(), "the untrusted sink got the event");
}

#[tokio::test]
async fn a_full_compile_pool_answers_503_while_events_are_still_served() {
    // One compile slot and no queue.
    let (host, _dir) = host_with(
        "[admin]\ncompile_concurrency = 1\ncompile_queue = 0\ncompile_timeout = \"10m\"\n",
        &[],
    )
    .await;
    host.deploy_ok("echo", "echo").await;
    // A Python component takes Cranelift seconds to compile: it holds the
    // only slot meanwhile.
    let big = std::fs::read(function("echo-py")).unwrap();
    let upload = tokio::spawn(
        host.admin(reqwest::Method::PUT, "/admin/v1/functions/big")
            .header("content-type", "application/wasm")
            .body(big)
            .send(),
    );
    host.wait_for_log("the big upload compiling", |v| {
        v["fields"]["message"] == "compiling an upload"
            && v["fields"]["bytes"].as_u64() > Some(1 << 20)
    })
    .await;
    // The only slot is taken and nothing may wait: 503, retry later.
    let small = std::fs::read(function("echo")).unwrap();
    let r = host.upload("small", small.clone(), "").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let reason = r.text().await.unwrap();
    assert!(reason.contains("admin.compile_concurrency"), "{reason}");
    // Events are answered while the compiler holds the slot.
    for i in 0..10 {
        let url = host.url("/functions/echo");
        let r = send_event(
            &host.client,
            &url,
            &format!("during-compile-{i}"),
            "t",
            "{}",
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert!(
        !upload.is_finished(),
        "the big upload finished before the events were sent: the test proves nothing"
    );
    let r = upload.await.unwrap().unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    // Once the slot is free, the small one goes through.
    assert_eq!(
        host.upload("small", small, "").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn k_ca_certs_is_trusted_for_env_destinations_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path());
    let (sink_addr, mut sink) = tls_sink(&cert, &key);
    let sink_url = format!("https://127.0.0.1:{}/", sink_addr.port());
    let pem = std::fs::read_to_string(&ca).unwrap();
    let (host, _d) = host_with("", &[("K_SINK", &sink_url), ("K_CA_CERTS", &pem)]).await;
    host.trigger_ok(
        "bound",
        serde_json::json!({"filter": {"type": "k"}, "subscriber": "env:K_SINK"}),
    )
    .await;
    let r = send_event(&host.client, &host.url("/"), "ca-1", "k", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let got = tokio::time::timeout(Duration::from_secs(10), sink.recv())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("ca-1"));

    // The same sink written as a URL is not trusted: the CA is the
    // SinkBinding's, not `[outbound] ca_file`.
    host.trigger_ok(
        "plain",
        serde_json::json!({
            "filter": {"type": "u"}, "subscriber": sink_url, "delivery": {"retry": 0}
        }),
    )
    .await;
    let r = send_event(&host.client, &host.url("/"), "ca-2", "u", "{}").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    host.wait_for_log("the failed delivery", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("delivery failed"))
    })
    .await;
    assert!(
        sink.try_recv().is_err(),
        "the URL destination trusted K_CA_CERTS"
    );
}
