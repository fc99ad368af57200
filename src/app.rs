//! Runs what the command line asked for and turns every failure into a message and an exit code.

use crate::cli::{Cli, Command, ConfigCommand, NotifyCommand};
use crate::commands::{self, exit, print_error};
use crate::provider::Access;
use crate::tui::keymap::Keymap;
use crate::tui::{self, TuiOptions};
use crate::workspace::Dirs;

/// Runs the command and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let launched = std::time::Instant::now();
    if let Some(problem) = cli.misplaced_dashboard_option() {
        print_error(problem);
        return exit::USAGE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            print_error(format!("cannot start the async runtime: {err}"));
            return exit::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Some(Command::Status(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadOnly).await?;
                let mut stdout = std::io::stdout().lock();
                commands::status::run(&session, args, &mut stdout).await
            }
            Some(Command::Kill(args)) | Some(Command::Restore(args)) => {
                let enabled = matches!(cli.command, Some(Command::Restore(_)));
                let session = commands::build_session(&cli.global, Access::ReadWrite).await?;
                let mut stdout = std::io::stdout().lock();
                let mut confirm = commands::kill::TerminalConfirm;
                commands::kill::run(&session, args, enabled, &mut confirm, &mut stdout).await
            }
            Some(Command::Rollout(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadWrite).await?;
                let mut stdout = std::io::stdout().lock();
                let mut confirm = commands::kill::TerminalConfirm;
                commands::rollout::run(&session, args, &mut confirm, &mut stdout).await
            }
            Some(Command::Undo(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadWrite).await?;
                let mut stdout = std::io::stdout().lock();
                let mut confirm = commands::kill::TerminalConfirm;
                commands::undo::run(&session, args, &mut confirm, &mut stdout).await
            }
            Some(Command::Runbook(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadOnly).await?;
                let mut stdout = std::io::stdout().lock();
                let config = cli.global.config.as_deref();
                commands::runbook::run(&session, args, config, &mut stdout).await
            }
            Some(Command::Audit(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadOnly).await?;
                let mut stdout = std::io::stdout().lock();
                commands::audit::run(&session, args, &mut stdout).await
            }
            Some(Command::Stale(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadOnly).await?;
                let mut stdout = std::io::stdout().lock();
                commands::stale::run(&session, args, &mut stdout).await
            }
            Some(Command::Serve(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadWrite).await?;
                crate::serve::run(std::sync::Arc::new(session), args).await
            }
            Some(Command::Notify(args)) => {
                let session = commands::build_session(&cli.global, Access::ReadOnly).await?;
                let mut stdout = std::io::stdout().lock();
                match &args.command {
                    NotifyCommand::Test { name } => {
                        commands::notify::test(&session, name.as_deref(), &mut stdout).await
                    }
                }
            }
            Some(Command::Config(args)) => match &args.command {
                ConfigCommand::Init {
                    from_vault,
                    force,
                    vault_mount,
                    vault_prefix,
                } => {
                    let mut stdout = std::io::stdout().lock();
                    commands::discover::init(
                        &cli.global,
                        *from_vault,
                        *force,
                        vault_mount,
                        vault_prefix,
                        &mut stdout,
                    )
                    .await
                }
            },
            Some(Command::Completions(args)) => {
                let mut stdout = std::io::stdout().lock();
                commands::completions(args.shell, &mut stdout)?;
                Ok(exit::OK)
            }
            Some(Command::Doctor) => {
                let mut stdout = std::io::stdout().lock();
                commands::doctor::run(&cli.global, &mut stdout).await
            }
            Some(Command::Man) => {
                let mut stdout = std::io::stdout().lock();
                commands::man_page(&mut stdout)?;
                Ok(exit::OK)
            }
            None => dashboard(&cli, launched).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) if commands::is_broken_pipe(&err) => exit::OK,
        Err(err) => {
            print_error(format!("{err:#}"));
            let out_of_range = err.chain().any(|cause| {
                cause
                    .downcast_ref::<crate::config::ConfigError>()
                    .is_some_and(crate::config::ConfigError::is_out_of_range)
            });
            if out_of_range {
                exit::USAGE
            } else {
                exit::FAILURE
            }
        }
    }
}

/// The TUI. Bad `--env`, `--flag` or keymap are reported before the terminal is touched.
async fn dashboard(cli: &Cli, launched: std::time::Instant) -> anyhow::Result<i32> {
    let session = commands::build_session(&cli.global, Access::ReadWrite).await?;
    if let Some(env) = cli
        .env
        .as_ref()
        .filter(|env| session.config.environment(env).is_none())
    {
        print_error(session.config.unknown_environment(env));
        return Ok(exit::NOT_FOUND);
    }
    let dirs = Dirs::discover()?;
    let choice = cli.keymap.clone().or_else(|| session.config.keymap.clone());
    let keymap = Keymap::load(choice.as_deref(), Some(&dirs.user_keymap()))?;
    let focus = match (&cli.env, &cli.flag) {
        (_, None) => None,
        (Some(env), Some(flag)) => Some((env.clone(), flag.clone())),
        (None, Some(flag)) => {
            let env = session
                .config
                .environments
                .iter()
                .find(|env| env.protected)
                .or(session.config.environments.first())
                .map(|env| env.name.clone())
                .unwrap_or_default();
            Some((env, flag.clone()))
        }
    };
    let focus = focus.or_else(|| cli.env.clone().map(|env| (env, String::new())));
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        print_error("the dashboard needs a terminal; use `killswitch status` in scripts");
        return Ok(exit::USAGE);
    }
    tui::run(
        std::sync::Arc::new(session),
        TuiOptions {
            keymap,
            focus,
            launched,
        },
    )
    .await
}
