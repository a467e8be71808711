//! `poolbench`: shows the keep-alive reuse race, and what freshpool does
//! about it, side by side with hyper-util in one process.
//!
//! An HTTP/1.1 client that reuses a pooled connection at the moment the
//! server closes it for idleness fails the request, and for a POST cannot
//! know whether the server processed it. `poolbench race` reproduces that
//! against a built-in origin (or any `--target`) and prints, per client,
//! the errors by kind, the requests processed twice, reuse against the
//! oracle (what could safely have been reused), connections, latency and
//! the idle timeout the client learned. `restart` closes every idle
//! connection at once mid-run (or early, for a while) and shows how fast
//! reuse comes back, `throughput` measures loopback keep-alive requests
//! per second, `ablation` switches freshpool's mechanisms off one at a
//! time, and `discover` finds a server's real idle timeout. `poolbench
//! --help` explains each scenario.
//!
//! ```text
//! cargo run --release -p freshpool-bench -- race
//! cargo run --release -p freshpool-bench -- race --plot race.svg
//! cargo run --release -p freshpool-bench -- race --gaps uniform:0.5..1.5
//! cargo run --release -p freshpool-bench -- restart --overload 1s
//! cargo run --release -p freshpool-bench -- discover --target http://127.0.0.1:8080/
//! ```
//!
//! Exit status: 0 when the scenario ran (whatever the clients' errors), 1
//! when it could not run (an unreachable target, an IO error), 2 for bad
//! arguments.

mod cli;
mod clients;
mod discover;
mod gaps;
mod oracle;
mod origin;
mod plot;
mod progress;
mod proxy;
mod race;
mod restart;
mod scenario;
mod table;
mod target;
mod throughput;
mod wire;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Why a scenario did not run.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What to tell the user.
    pub(crate) message: String,
    /// 1 for a failed run, 2 for bad arguments.
    code: u8,
}

impl Failure {
    /// The arguments are wrong.
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 2,
        }
    }

    /// The scenario could not run.
    pub(crate) fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }
}

/// The clients' runtime: one worker thread, so that the built-in origin
/// (on its own runtime) has the other core of a small machine.
pub(crate) fn client_runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("poolbench-clients")
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start a tokio runtime: {e}")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Race(args) => scenario::race(args),
        Command::Ablation(args) => scenario::ablation(args),
        Command::Throughput(args) => throughput::run(args),
        Command::Discover(args) => discover::run(args),
        Command::Restart(args) => restart::run(args),
        Command::Proxy(args) => proxy::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("poolbench: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
