//! Runs what the command line asked for and turns every failure into a message and an exit code.

use crate::cli::{Cli, Command};
use crate::commands::{self, exit};
use crate::provider::Access;

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("killswitch: cannot start the async runtime: {err}");
            return exit::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Some(Command::Status(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadOnly)?;
                let mut stdout = std::io::stdout().lock();
                commands::status::run(&session, args, &mut stdout).await
            }
            None => anyhow::bail!("the dashboard is not built yet"),
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("killswitch: {err:#}");
            exit::FAILURE
        }
    }
}
