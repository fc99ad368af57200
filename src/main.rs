//! killswitch's entry point: parse the command line, build, run. No logic lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = killswitch::cli::Cli::parse();
    let code = killswitch::app::run(cli);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
