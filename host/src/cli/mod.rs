//! The command line: `sluice serve` runs a host; the other commands are
//! conveniences over a running host's admin API and ingress.

mod build;
mod client;
mod progress;
mod scaffold;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Sluice: a WebAssembly function host for CloudEvents.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `sluice` subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a host.
    Serve(ServeArgs),
    /// Upload a compiled component as function NAME.
    Deploy {
        /// The function's name.
        name: String,
        /// The component (.wasm) to upload.
        file: PathBuf,
        /// CPU deadline per invocation, e.g. `500ms`.
        #[arg(long)]
        timeout: Option<String>,
        /// Memory cap per instance, in MiB.
        #[arg(long)]
        memory_mib: Option<u32>,
        #[command(flatten)]
        host: HostArg,
    },
    /// Create or replace trigger NAME.
    Trigger {
        /// The trigger's name.
        name: String,
        /// The function that handles matching events.
        #[arg(long)]
        function: String,
        /// Only events of this type (omit to take every event).
        #[arg(long = "type")]
        ty: Option<String>,
        /// Only events from this source.
        #[arg(long)]
        source: Option<String>,
        /// Where replies go: an http(s) URL or `log`.
        #[arg(long)]
        sink: Option<String>,
        #[command(flatten)]
        host: HostArg,
    },
    /// Send one CloudEvent (binary mode) and print the answer.
    Send {
        /// The event's type.
        #[arg(long = "type")]
        ty: String,
        /// The event's source.
        #[arg(long, default_value = "/sluice/cli")]
        source: String,
        /// The event's id (default: a fresh one).
        #[arg(long)]
        id: Option<String>,
        /// JSON data.
        #[arg(long)]
        data: Option<String>,
        /// Where to send it (default: the event listener's `URL/`). Use
        /// `URL/functions/NAME` to invoke one function and see its reply.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        events: EventsArg,
    },
    /// Print the routing (triggers, functions, sequences, parallels, sinks,
    /// replies, dead letters) as a Mermaid or DOT diagram, from a config
    /// file or a running host.
    Graph {
        /// Draw this sluice.toml instead of asking a running host.
        #[arg(long)]
        config: Option<PathBuf>,
        /// `mermaid` or `dot`.
        #[arg(long, default_value = "mermaid", value_parser = ["mermaid", "dot"])]
        format: String,
        #[command(flatten)]
        host: HostArg,
    },
    /// List deployed functions and triggers.
    Ls {
        #[command(flatten)]
        host: HostArg,
    },
    /// Start a handler project: source, build file, test event, README.
    New {
        /// The project's language.
        #[arg(value_enum)]
        lang: scaffold::Language,
        /// The project's (and function's) name.
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build the handler project in DIR into DIR/dist/NAME.wasm.
    Build {
        /// The project directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

/// Which admin API the client commands talk to, and with which token.
/// The token is read from `SLUICE_ADMIN_TOKEN` or the file
/// `SLUICE_ADMIN_TOKEN_FILE` names, never from an argument (`ps` shows
/// arguments).
#[derive(Debug, clap::Args)]
pub struct HostArg {
    /// Base URL of the host's admin listener.
    #[arg(
        long = "host",
        env = "SLUICE_ADMIN_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub url: String,
    /// A file holding the admin token (default: `$SLUICE_ADMIN_TOKEN`).
    #[arg(long, env = "SLUICE_ADMIN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Extra CA certificates (PEM) to trust for an HTTPS admin listener.
    #[arg(long, env = "SLUICE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Which event listener `sluice send` talks to. A sender token, when the
/// host wants one, is read from `SLUICE_SENDER_TOKEN`.
#[derive(Debug, clap::Args)]
pub struct EventsArg {
    /// Base URL of the host's event listener.
    #[arg(
        long = "url",
        env = "SLUICE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Extra CA certificates (PEM) to trust for an HTTPS event listener.
    #[arg(long, env = "SLUICE_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Options of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address of the event listener (events only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the admin listener (admin API, `/metrics`). Off loopback
    /// it needs admin tokens (see docs/security.md).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// Where deployed functions and triggers are kept.
    #[arg(long, default_value = "./.sluice")]
    pub data_dir: PathBuf,
    /// A sluice.toml to apply at start-up.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
}

/// Run a parsed command line.
///
/// # Errors
/// Whatever made the command fail, with context.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::Deploy {
            name,
            file,
            timeout,
            memory_mib,
            host,
        } => {
            client::deploy(
                &client::Admin::new(&host)?,
                &name,
                &file,
                timeout,
                memory_mib,
            )
            .await
        }
        Command::Trigger {
            name,
            function,
            ty,
            source,
            sink,
            host,
        } => {
            client::trigger(
                &client::Admin::new(&host)?,
                &name,
                &function,
                ty,
                source,
                sink,
            )
            .await
        }
        Command::Send {
            ty,
            source,
            id,
            data,
            to,
            events,
        } => client::send(&events, ty, source, id, data, to).await,
        Command::Graph {
            config,
            format,
            host,
        } => {
            let format = if format == "dot" {
                crate::routing::graph::Format::Dot
            } else {
                crate::routing::graph::Format::Mermaid
            };
            client::graph(&host, config.as_deref(), format).await
        }
        Command::Ls { host } => client::ls(&client::Admin::new(&host)?).await,
        Command::New { lang, name, dir } => scaffold::run(lang, &name, dir.as_deref()),
        Command::Build { dir } => tokio::task::spawn_blocking(move || build::run(&dir)).await?,
    }
}
