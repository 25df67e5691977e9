//! The `sluice` binary: see `sluice --help`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Longest the process waits, once the command returned, for tasks that
/// are still ending (a client close that waits for a gone Kafka broker).
const RUNTIME_SHUTDOWN_LIMIT: Duration = Duration::from_secs(1);

/// Per-request allocations (headers, events, WIT values) are many and
/// small; mimalloc serves them faster than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = sluice::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(async {
        match sluice::cli::run(cli).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        }
    });
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_LIMIT);
    code
}
