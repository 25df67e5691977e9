//! Test harness: a running `sluice` host, a capturing HTTP sink, and the
//! paths of the compiled functions.

#![allow(dead_code)] // each test module uses a different subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::mpsc;

/// How long a host may take to start before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The compiled component of the function `name`.
pub fn function(name: &str) -> PathBuf {
    let dir = std::env::var_os("SLUICE_FUNCTIONS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/functions"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask functions` (or `cargo xtask test`) first",
        path.display()
    );
    path
}

/// An HTTP client for tests: rustls with the built-in roots (and `ca`, a
/// PEM file, when given), so it needs nothing from the system. Idle
/// connections are dropped after 500 ms, well before any host closes them
/// (`header_timeout`), so a request never races a closing connection.
pub fn client_trusting(ca: Option<&Path>) -> reqwest::Client {
    sluice::security::tls::reqwest_builder(ca)
        .unwrap()
        .pool_idle_timeout(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// [`client_trusting`] with the built-in roots only.
pub fn client() -> reqwest::Client {
    client_trusting(None)
}

/// A running `sluice serve` process, killed on drop.
pub struct Host {
    child: Child,
    /// The event listener.
    pub addr: SocketAddr,
    /// The admin listener.
    pub admin_addr: SocketAddr,
    /// `http` or `https` on the event listener.
    pub scheme: &'static str,
    /// `http` or `https` on the admin listener.
    pub admin_scheme: &'static str,
    /// Sent as a bearer token with every admin request of the harness.
    pub admin_token: Option<String>,
    pub data_dir: PathBuf,
    pub logs: Arc<Mutex<Vec<serde_json::Value>>>,
    pub client: reqwest::Client,
    _tmp: Option<tempfile::TempDir>,
}

/// The `[admin]` section of [`Host::start_patient`].
pub const PATIENT_ADMIN: &str = "[admin]\ncompile_timeout = \"10m\"\n";

impl Host {
    /// Start a host with a fresh data directory and no config file.
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut h = Self::start_with(tmp.path(), None, &[]).await;
        h._tmp = Some(tmp);
        h
    }

    /// Start a host like [`Host::start`], but with `admin.compile_timeout`
    /// at 10 minutes instead of 60 s: for tests that upload Python or
    /// JavaScript components, which take Cranelift 15–30 s each on an idle
    /// machine and can pass a minute on a loaded one.
    pub async fn start_patient() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let config = tmp.path().join("sluice.toml");
        std::fs::write(&config, PATIENT_ADMIN).unwrap();
        let mut h = Self::start_with(&tmp.path().join("data"), Some(&config), &[]).await;
        h._tmp = Some(tmp);
        h
    }

    /// Start a host on `data_dir`, with an optional config file and extra
    /// environment.
    pub async fn start_with(data_dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Self {
        Self::start_within(START_TIMEOUT, data_dir, config, env).await
    }

    /// [`Host::start_with`], allowing `timeout` for start-up (a config that
    /// declares Python or JavaScript components compiles each for 15–30 s
    /// before the host serves).
    pub async fn start_within(
        timeout: Duration,
        data_dir: &Path,
        config: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Self {
        sluice::security::tls::install_provider();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--log-json",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "info,sluice=debug")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting sluice");
        let stdout = child.stdout.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    eprintln!("sluice: {line}");
                    continue;
                };
                if v["fields"]["message"] == "sluice is serving" {
                    let f = &v["fields"];
                    let addr = |k: &str| f[k].as_str().and_then(|a| a.parse::<SocketAddr>().ok());
                    if let (Some(a), Some(admin)) = (addr("addr"), addr("admin_addr")) {
                        let tls = |k: &str| if f[k] == true { "https" } else { "http" };
                        let _ = addr_tx.send((a, admin, tls("tls"), tls("admin_tls")));
                    }
                }
                eprintln!("sluice: {line}");
                sink.lock().unwrap().push(v);
            }
        });
        let (addr, admin_addr, scheme, admin_scheme) =
            tokio::task::spawn_blocking(move || addr_rx.recv_timeout(timeout))
                .await
                .unwrap()
                .unwrap_or_else(|_| panic!("sluice did not start within {timeout:?}"));
        Self {
            child,
            addr,
            admin_addr,
            scheme,
            admin_scheme,
            admin_token: None,
            data_dir: data_dir.to_path_buf(),
            logs,
            client: client(),
            _tmp: None,
        }
    }

    /// The event listener's `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    /// The admin listener's `http://ADDR` + `path` (the admin API,
    /// `/metrics`).
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.admin_scheme, self.admin_addr)
    }

    /// A request to the admin listener, with [`Host::admin_token`].
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, self.admin_url(path));
        match &self.admin_token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Upload a component from `functions/` as `name`.
    pub async fn deploy(&self, name: &str, function_name: &str) -> reqwest::Response {
        let bytes = std::fs::read(function(function_name)).unwrap();
        self.upload(name, bytes, "").await
    }

    /// Upload raw bytes as `name`, with a query string (e.g. `?timeout=1s`).
    pub async fn upload(&self, name: &str, bytes: Vec<u8>, query: &str) -> reqwest::Response {
        self.admin(
            reqwest::Method::PUT,
            &format!("/admin/v1/functions/{name}{query}"),
        )
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap()
    }

    /// Deploy, asserting success.
    pub async fn deploy_ok(&self, name: &str, function_name: &str) {
        let r = self.deploy(name, function_name).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
    }

    /// Create a trigger, asserting success.
    pub async fn trigger_ok(&self, name: &str, spec: serde_json::Value) {
        let r = self
            .admin(reqwest::Method::PUT, &format!("/admin/v1/triggers/{name}"))
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
    }

    /// POST a binary-mode event to `path`.
    pub async fn post_binary(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Log records whose message contains `needle`.
    pub fn logs_with(&self, needle: &str) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|v| {
                v["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
            })
            .cloned()
            .collect()
    }

    /// `GET path` on the admin listener, as JSON.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        self.admin(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Wait (bounded) until some log record satisfies `pred`.
    pub async fn wait_for_log(
        &self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = self.logs.lock().unwrap().iter().find(|v| pred(v)).cloned() {
                return v;
            }
            assert!(Instant::now() < deadline, "no log record for: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Send the host SIGTERM without waiting for it to exit.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Whether the host process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stop the host with SIGTERM and wait for it to exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sluice did not stop within 10s of SIGTERM");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a [`Sink`] received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A real HTTP server on loopback that records every POST it receives and
/// answers with a configurable status.
pub struct Sink {
    pub addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Received>,
    status: Arc<Mutex<StatusCode>>,
}

impl Sink {
    /// Start a sink answering 202.
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(Mutex::new(StatusCode::ACCEPTED));
        let answer = status.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let answer = answer.clone();
            async move {
                // Decide the answer before the test can see the request, so
                // `respond_with` after seeing a request applies to later ones
                // only (this server runs on a thread of its own).
                let status = *answer.lock().unwrap();
                let _ = tx.send(Received { headers, body });
                status
            }
        });
        let addr = serve_in_background(app);
        Self { addr, rx, status }
    }

    /// The sink's URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Answer every request with `status` from now on.
    pub fn respond_with(&self, status: StatusCode) {
        *self.status.lock().unwrap() = status;
    }

    /// The next request, failing the test after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Received {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .expect("nothing reached the sink in time")
            .expect("sink closed")
    }

    /// Assert nothing (more) has arrived, without waiting: call it after a
    /// signal that the host is done sending (e.g. [`Host::settled`]), since
    /// a request is recorded here before the host gets its answer.
    pub fn assert_empty(&mut self) {
        if let Ok(r) = self.rx.try_recv() {
            panic!(
                "unexpected request at the sink: {:?} {:?}",
                r.headers, r.body
            );
        }
    }

    /// Take whatever has arrived so far, without waiting.
    pub fn drain(&mut self) -> Vec<Received> {
        std::iter::from_fn(|| self.rx.try_recv().ok()).collect()
    }
}

/// The next request at `sink` whose `ce-type` is `ty`, skipping others;
/// fails the test after 10 s.
pub async fn next_of(sink: &mut Sink, ty: &str) -> Received {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no `{ty}` event reached the sink in time");
        let r = sink.next(left).await;
        if r.header("ce-type") == Some(ty) {
            return r;
        }
    }
}

/// Headers of a minimal binary-mode event.
pub fn ce(id: &str, ty: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ce-specversion", "1.0".into()),
        ("ce-id", id.into()),
        ("ce-source", "/tests".into()),
        ("ce-type", ty.into()),
    ]
}

/// POST a binary-mode event with JSON data to `url`.
pub async fn send_event(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    ty: &str,
    data: &str,
) -> reqwest::Response {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(data.to_owned());
    for (k, v) in ce(id, ty) {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

/// POST a binary-mode event from `source` to `host` with data `{}` and
/// the `extra` headers; assert it was accepted (202).
pub async fn send_accepted(host: &Host, source: &str, id: &str, ty: &str, extra: &[(&str, &str)]) {
    let mut req = host
        .client
        .post(host.url("/"))
        .header("ce-specversion", "1.0")
        .header("ce-id", id)
        .header("ce-source", source)
        .header("ce-type", ty)
        .header("content-type", "application/json")
        .body("{}");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

impl Host {
    /// The value of one metric sample from `GET /metrics`, e.g.
    /// `metric("sluice_cold_starts_total", &[("function", "echo")])`;
    /// `None` when the sample is absent.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples(name, labels).await.into_iter().next()
    }

    /// The sum of every sample of `name` whose labels include `labels` (0
    /// when there is none).
    pub async fn metric_sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples(name, labels).await.into_iter().sum()
    }

    /// The samples of `name` whose labels include `labels`, in order.
    async fn samples(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let text = self
            .admin(reqwest::Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
                let all = labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
                (metric == name && all)
                    .then(|| value.parse().ok())
                    .flatten()
            })
            .collect()
    }

    /// Wait (bounded) until a metric sample satisfies `pred`.
    pub async fn wait_for_metric(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        pred: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(v) = self.metric(name, labels).await.filter(|v| pred(*v)) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "metric {name}{labels:?} never reached the expected value"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Host {
    /// Wait (bounded) until every event the broker accepted so far has had
    /// all its deliveries end (retries, replies through the broker and dead
    /// letters included): the durable log holds no entry. A request the
    /// host made by then has reached its server, so a check that nothing
    /// (more) arrived can follow at once ([`Sink::assert_empty`]). Needs
    /// the durable broker (the default) and an accepted event.
    pub async fn settled(&self) {
        assert!(
            self.metric_sum("sluice_durable_log_appended_total", &[])
                .await
                >= 1.0,
            "settled() needs the durable broker and an accepted event"
        );
        self.wait_for_metric("sluice_durable_log_entries", &[], |v| v == 0.0)
            .await;
    }

    /// Wait (bounded) for the debug record saying event `id` matched no
    /// trigger: the positive signal that it was dropped.
    pub async fn wait_unmatched(&self, id: &str) {
        self.wait_for_log(&format!("event {id} matched no trigger"), |v| {
            v["fields"]["message"] == "no trigger matched" && v["fields"]["event_id"] == id
        })
        .await;
    }
}

/// Run `sluice serve` on `data_dir` with `config`, assert that start-up
/// fails, and return what it wrote to stderr (the reason). A host that
/// starts instead fails the test (killed after [`START_TIMEOUT`]) rather
/// than hanging it.
pub fn start_up_error(data_dir: &Path, config: &Path) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "sluice started with {} (still running after {START_TIMEOUT:?})",
                config.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        !status.success(),
        "sluice started with {}",
        config.display()
    );
    reader.join().unwrap()
}

/// Run the `sluice` CLI with `args`, assert it succeeded, and return its
/// stdout.
pub fn sluice_cli(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Serve `app` on a loopback port from a thread and runtime of its own, so
/// it keeps answering while the test's own thread blocks (as
/// [`Host::stop`] does, waiting for the host, whose last deliveries may be
/// waiting for this server).
pub fn serve_in_background(app: axum::Router) -> SocketAddr {
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
            axum::serve(listener, app).await.unwrap();
        });
    });
    addr
}

/// POST events `{prefix}0000`, `{prefix}0001`, … (binary mode, source
/// `source`, type `ty`) to `host`'s `POST /` from `senders` concurrent
/// senders, SIGKILL the host once a third of `n` got a 202, and return the
/// ids that got one. Fails if the stream ended before the kill.
pub async fn stream_until_killed(
    host: Host,
    n: usize,
    senders: usize,
    prefix: &str,
    source: &str,
    ty: &str,
) -> std::collections::BTreeSet<String> {
    let accepted = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let url = host.url("/");
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (accepted, url) = (accepted.clone(), url.clone());
        let (prefix, source, ty) = (prefix.to_owned(), source.to_owned(), ty.to_owned());
        tasks.push(tokio::spawn(async move {
            let client = client();
            for i in (s..n).step_by(senders) {
                let id = format!("{prefix}{i:04}");
                let r = client
                    .post(&url)
                    .header("ce-specversion", "1.0")
                    .header("ce-id", &id)
                    .header("ce-source", &source)
                    .header("ce-type", &ty)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"i":{i}}}"#))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == StatusCode::ACCEPTED => {
                        accepted.lock().unwrap().insert(id);
                    }
                    Ok(r) => panic!("unexpected status {} for {id}", r.status()),
                    Err(_) => return, // the host is gone
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted.lock().unwrap().len() < n / 3 {
        assert!(Instant::now() < deadline, "the host accepted too little");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(host); // SIGKILL
    for t in tasks {
        t.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() < n,
        "the stream ended before the kill; nothing was tested"
    );
    accepted
}
