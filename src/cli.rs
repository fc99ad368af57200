//! The command line, for every subcommand. One clap definition also generates the shell
//! completions and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "killswitch",
    version,
    about = "Feature-flag kill switches for on-call: see every environment, kill with a note.",
    long_about = "Feature-flag kill switches for on-call.\n\nWith no subcommand, opens the dashboard. \
                  `killswitch --env prod --flag kill_switch_checkout` opens it on that cell, the \
                  form a runbook link uses."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Open the dashboard focused on this environment's column.
    #[arg(long, global = false)]
    pub env: Option<String>,

    /// Open the dashboard focused on this flag's row.
    #[arg(long, global = false)]
    pub flag: Option<String>,

    /// Keymap: `default`, `vim`, or a path to a TOML keymap file.
    #[arg(long, value_name = "NAME|PATH")]
    pub keymap: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Config file (default: $XDG_CONFIG_HOME/killswitch/config.toml, else the local workspace).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// No write path is built: flips are impossible.
    #[arg(long, global = true)]
    pub read_only: bool,

    /// Audit log file (default: $XDG_STATE_HOME/killswitch/audit.jsonl).
    #[arg(long, global = true, value_name = "PATH")]
    pub audit_log: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every environment's flags without the terminal UI (read-only).
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment.
    #[arg(long)]
    pub env: Option<String>,

    /// Only this flag.
    #[arg(long)]
    pub flag: Option<String>,

    /// Only kill switches.
    #[arg(long)]
    pub kill_switches: bool,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}
