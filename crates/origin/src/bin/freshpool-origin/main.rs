//! `freshpool-origin`: serve the programmable origin from the command line.
//!
//! ```text
//! freshpool-origin --listen 127.0.0.1:8090 --idle 200ms --close rst
//! ```
//!
//! Prints the bound address, serves until Ctrl-C, then prints the counters.

mod args;

use std::process::ExitCode;

use args::Command;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match args::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(options)) => options,
        Err(err) => {
            eprintln!("freshpool-origin: {err}");
            return ExitCode::from(2);
        }
    };
    let origin = match options.builder().start().await {
        Ok(origin) => origin,
        Err(err) => {
            eprintln!(
                "freshpool-origin: cannot start on {}: {err}",
                options.listen
            );
            return ExitCode::FAILURE;
        }
    };
    println!(
        "freshpool-origin listening on {} (idle {:?}, close {}, keep-alive {:?})",
        origin.base_url(),
        options.idle,
        options.close.as_str(),
        options.keep_alive,
    );
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("freshpool-origin: cannot wait for Ctrl-C: {err}");
    }
    origin.shutdown().await;
    let stats = origin.stats();
    println!("{stats:#?}");
    if stats.duplicate_requests > 0 {
        println!("duplicates: {:?}", origin.duplicates());
    }
    ExitCode::SUCCESS
}
