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
        /// Where to send it (default: the host's ingress, `HOST/`). Use
        /// `HOST/functions/NAME` to invoke one function and see its reply.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        host: HostArg,
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

/// Which host the client commands talk to.
#[derive(Debug, clap::Args)]
pub struct HostArg {
    /// Base URL of the host.
    #[arg(
        long = "host",
        env = "SLUICE_HOST",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
}

/// Options of `sluice serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
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
        } => client::deploy(&host.url, &name, &file, timeout, memory_mib).await,
        Command::Trigger {
            name,
            function,
            ty,
            source,
            sink,
            host,
        } => client::trigger(&host.url, &name, &function, ty, source, sink).await,
        Command::Send {
            ty,
            source,
            id,
            data,
            to,
            host,
        } => client::send(&host.url, ty, source, id, data, to).await,
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
            client::graph(&host.url, config.as_deref(), format).await
        }
        Command::Ls { host } => client::ls(&host.url).await,
        Command::New { lang, name, dir } => scaffold::run(lang, &name, dir.as_deref()),
        Command::Build { dir } => tokio::task::spawn_blocking(move || build::run(&dir)).await?,
    }
}
