//! `sluice serve`.

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use super::ServeArgs;
use crate::app::App;
use crate::config::Config;

/// Load the config, build the host, listen, and serve until Ctrl-C or
/// SIGTERM; then finish running deliveries and exit.
pub async fn run(args: ServeArgs) -> Result<()> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }

    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let app = App::build(config, args.data_dir.clone()).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %args.data_dir.display(), "sluice is serving");
    crate::ingress::serve(app, listener, shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing running deliveries");
}
