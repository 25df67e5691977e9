//! deploy/kubernetes/: every manifest of both shapes is valid against the
//! Kubernetes API's schemas for the oldest and the newest version we
//! support (kubernetes-validate, offline: no cluster, no kubectl), each
//! shape's sluice.toml is one `sluice serve` runs with, and the pods carry
//! the probes and the restricted security profile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;

use crate::harness::Host;
use crate::kafka::Broker;

/// The oldest and the newest Kubernetes the manifests are checked against
/// (kubernetes-validate 1.37.0 ships the schemas of 1.25 to 1.37).
const VERSIONS: [&str; 2] = ["1.25.0", "1.37.0"];

/// Files of a shape that are no Kubernetes API object: kustomize's own,
/// and KEDA's ScaledObject (a CRD, whose schema kubernetes-validate does
/// not have). Every other `.yaml` must be listed in the kustomization.
const NOT_API_OBJECTS: [&str; 2] = ["kustomization.yaml", "keda-scaledobject.yaml"];

/// The venv's python with kubernetes-validate and PyYAML.
fn python() -> PathBuf {
    let p = PathBuf::from(
        std::env::var_os("SLUICE_KUBE_PYTHON")
            .expect("SLUICE_KUBE_PYTHON is not set: run `cargo xtask test`"),
    );
    assert!(
        p.is_file(),
        "{} is missing: run `cargo xtask test`",
        p.display()
    );
    p
}

fn shape(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/kubernetes")
        .join(name)
}

/// What `kube_manifests.py` reads out of a shape.
fn describe(dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/all/kube_manifests.py");
    let out = Command::new(python())
        .arg(script)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kube_manifests.py {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_schemas(name: &str) {
    let dir = shape(name);
    let described = describe(&dir);
    let listed: Vec<String> = described["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    // Nothing is left out of the check unnoticed.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = entry.unwrap().file_name().to_string_lossy().into_owned();
        if Path::new(&file).extension().is_some_and(|e| e == "yaml") {
            assert!(
                listed.contains(&file) || NOT_API_OBJECTS.contains(&file.as_str()),
                "{name}/{file} is neither in kustomization.yaml nor a known non-API file"
            );
        }
    }
    let mut cmd = Command::new(python());
    cmd.args(["-m", "kubernetes_validate", "--strict", "--quiet"]);
    for v in VERSIONS {
        cmd.args(["--kubernetes-version", v]);
    }
    let out = cmd.current_dir(&dir).args(&listed).output().unwrap();
    assert!(
        out.status.success(),
        "deploy/kubernetes/{name} fails validation:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_manifest_of_single_is_valid_for_the_oldest_and_newest_kubernetes() {
    check_schemas("single");
}

#[test]
fn every_manifest_of_fleet_is_valid_for_the_oldest_and_newest_kubernetes() {
    check_schemas("fleet");
}

/// The pod template's probes, grace and security context are what
/// docs/deploy.md promises; `grace` is the host's `[shutdown] grace`.
fn check_pod(name: &str, pod: &Value, grace: Duration) {
    let term = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        Duration::from_secs(term) >= grace + Duration::from_secs(5),
        "{name}: terminationGracePeriodSeconds {term} is not past the shutdown grace {grace:?} plus 5 s"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{name}"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
    assert!(c["startupProbe"]["httpGet"].is_object(), "{name}");
    let s = &c["securityContext"];
    assert_eq!(s["allowPrivilegeEscalation"], false, "{name}");
    assert_eq!(s["readOnlyRootFilesystem"], true, "{name}");
    assert_eq!(
        s["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{name}"
    );
}

/// Every policy rule that opens the admin port names an operator label.
fn check_admin_policy(name: &str, policies: &Value) {
    let rules: Vec<&Value> = policies
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["spec"]["ingress"].as_array().unwrap())
        .filter(|r| {
            r["ports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["port"] == "admin")
        })
        .collect();
    assert!(!rules.is_empty(), "{name}: no rule for the admin port");
    for rule in rules {
        let from = rule["from"].as_array().expect("admin open to everyone");
        assert!(
            from.iter()
                .all(|f| f["podSelector"]["matchLabels"]["sluice.dev/operator"] == "true"),
            "{name}: the admin port is open to pods without the operator label: {rule}"
        );
    }
}

/// Poll the host's `/readyz` until it answers 200 (within 20 s).
async fn until_ready(host: &Host) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = host.client.get(host.url("/readyz")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            return;
        }
        let body = r.text().await.unwrap_or_default();
        assert!(Instant::now() < deadline, "never ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_single_shape_runs_with_its_config_and_pod_spec() {
    let d = describe(&shape("single"));
    assert_eq!(d["workload_kind"], "StatefulSet");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, d["sluice_toml"].as_str().unwrap()).unwrap();
    let parsed = sluice::config::Config::load(&config).unwrap();
    assert!(parsed.durability.enabled);
    check_pod("single", &d["pod"], parsed.shutdown.grace);
    check_admin_policy("single", &d["network_policies"]);
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    until_ready(&host).await;
}

#[tokio::test]
async fn the_fleet_shape_runs_in_kafka_broker_mode_with_its_config_and_pod_spec() {
    let d = describe(&shape("fleet"));
    assert_eq!(d["workload_kind"], "Deployment");
    let text = d["sluice_toml"].as_str().unwrap();
    let placeholder = "my-cluster-kafka-bootstrap.kafka.svc:9092";
    assert!(text.contains(placeholder), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, text).unwrap();
    let parsed = sluice::config::Config::load(&config).unwrap();
    let broker_topic = parsed
        .kafka
        .broker
        .as_ref()
        .expect("not in Kafka-broker mode");
    check_pod("fleet", &d["pod"], parsed.shutdown.grace);
    check_admin_policy("fleet", &d["network_policies"]);

    // The same config, with the brokers pointed at a real (loopback) one.
    let kafka = Broker::start();
    kafka.client(&["create", &broker_topic.topic, "2"]);
    std::fs::write(&config, text.replace(placeholder, &kafka.addr)).unwrap();
    let host = Host::start_with(&dir.path().join("data"), Some(&config), &[]).await;
    until_ready(&host).await;
}
