//! `sluice serve`.

use anyhow::{Context, Result};
use tracing_subscriber::EnvFilter;

use super::ServeArgs;
use crate::app::App;
use crate::config::Config;
use crate::security::server::Listener;

/// Load the config, take both listen addresses, build the host, listen,
/// start the sources, and serve until Ctrl-C or SIGTERM; then stop the sources, finish running deliveries, release the
/// clients, and return.
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

    // Take over SIGTERM before anything else, so a stop requested while the
    // host is still starting is a graceful one, not the default kill.
    let shutdown = shutdown_signal()?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "sluice is starting");
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // Refuse an exposed, unauthenticated admin listener before anything
    // is deployed or bound.
    crate::security::check_admin_exposure(
        args.admin_listen,
        &crate::security::admin_tokens(&config)?,
    )?;
    let events_limits = config.ingress.connections.clone();
    let admin_limits = config.admin.connections.clone();
    let grace = config.shutdown.grace;
    // Take both addresses before anything is deployed, written or started:
    // a host that cannot listen changes nothing. They accept connections
    // only once the app is built.
    if args.listen == args.admin_listen && args.listen.port() != 0 {
        anyhow::bail!(
            "--listen and --admin-listen are both {}: give each listener its own address",
            args.listen
        );
    }
    let events_socket = reserve(args.listen)?;
    let admin_socket = reserve(args.admin_listen)?;
    let app = App::build(config, args.data_dir.clone()).await?;
    let events = Listener {
        name: "events",
        tcp: listen(events_socket, args.listen)?,
        tls: app.security.events_tls.clone(),
        limits: events_limits,
    };
    let admin = Listener {
        name: "admin",
        tcp: listen(admin_socket, args.admin_listen)?,
        tls: app.security.admin_tls.clone(),
        limits: admin_limits,
    };
    // Both listeners exist: now the sources may fire and the backlog
    // replay.
    app.start();
    let addr = events.tcp.local_addr()?;
    let admin_addr = admin.tcp.local_addr()?;
    tracing::info!(
        %addr,
        %admin_addr,
        tls = events.tls.is_some(),
        admin_tls = admin.tls.is_some(),
        admin_auth = !app.security.admin_tokens.is_empty(),
        sender_auth = !app.security.sender_tokens.is_empty(),
        data_dir = %args.data_dir.display(),
        "sluice is serving"
    );
    // Sources stop first (no new events), then the deliveries drain while
    // the listeners refuse events, then the listeners stop.
    let stopping = app.clone();
    let shutdown = async move {
        shutdown.await;
        // Not ready from the signal on, while the sources stop.
        stopping.readiness.set(crate::readiness::Stage::Draining);
        stopping.sources.stop().await;
    };
    app.serve(events, admin, shutdown, grace).await;
    // Everything durable is closed. What is left is dropping clients, and a
    // Kafka producer's close waits for a broker that may be gone: drop them
    // on a thread of their own, and stop waiting after a bound.
    crate::kafka::release::release("the host's clients", app, TEARDOWN_LIMIT).await;
    tracing::info!("stopped");
    Ok(())
}

/// Pending connections a listener queues before it accepts them.
const BACKLOG: u32 = 1024;

/// Bind a socket to `addr` without listening yet (fails at once when the
/// address is taken).
fn reserve(addr: std::net::SocketAddr) -> Result<tokio::net::TcpSocket> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .with_context(|| format!("listening on {addr}"))?;
    // As `TcpListener::bind` does: a restart may reuse the address while
    // the last run's connections linger in TIME_WAIT.
    #[cfg(unix)]
    socket
        .set_reuseaddr(true)
        .with_context(|| format!("listening on {addr}"))?;
    socket
        .bind(addr)
        .with_context(|| format!("listening on {addr}"))?;
    Ok(socket)
}

/// Start listening on a socket [`reserve`] bound to `addr`.
fn listen(
    socket: tokio::net::TcpSocket,
    addr: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener> {
    socket
        .listen(BACKLOG)
        .with_context(|| format!("listening on {addr}"))
}

/// Longest the process waits, after it stopped serving, for its clients
/// (Kafka producers) to close.
const TEARDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A future that completes on Ctrl-C (SIGINT) or SIGTERM. On Unix the
/// handlers are installed now, when this is called, not when the future is
/// first polled.
///
/// # Errors
/// When a signal handler cannot be installed.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        )
    };
    Ok(async move {
        #[cfg(unix)]
        let (ctrl_c, term) = (
            async move {
                int.recv().await;
            },
            async move {
                term.recv().await;
            },
        );
        #[cfg(not(unix))]
        let (ctrl_c, term) = (
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            std::future::pending::<()>(),
        );
        tokio::select! {
            () = ctrl_c => {},
            () = term => {},
        }
        tracing::info!("shutting down: finishing running deliveries");
    })
}
