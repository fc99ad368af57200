//! killswitch's entry point: parse the command line, build, run. No logic lives here.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `COMPLETE=<shell> killswitch -- …` is the shell asking for completions: answer and exit.
    clap_complete::CompleteEnv::with_factory(
        <killswitch::cli::Cli as clap::CommandFactory>::command,
    )
    .complete();
    let cli = killswitch::cli::Cli::parse();
    let code = killswitch::app::run(cli);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
