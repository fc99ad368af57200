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
    /// Kill a feature: turn its flag OFF in one environment (same path as the dashboard).
    Kill(FlipArgs),
    /// Restore a killed feature: turn its flag back ON in one environment.
    Restore(FlipArgs),
    /// Print a ready-to-paste runbook step (markdown) to check, kill and restore a flag.
    Runbook(RunbookArgs),
    /// The local audit log, joined with the vendor's history for a flag.
    Audit(AuditArgs),
    /// The weekly stale-flag report: flags past their expected removal date, by owner.
    Stale(StaleArgs),
    /// Serve alert triggers (`POST /hooks/<name>`) and a read-only status page over HTTP.
    Serve(ServeArgs),
    /// Print shell completions (generated from this command line).
    Completions(CompletionsArgs),
    /// Print the man page (roff, generated from this command line).
    Man,
}

#[derive(Debug, Args)]
pub struct FlipArgs {
    /// The flag's key, e.g. kill_switch_checkout.
    pub flag: String,

    /// The environment to change.
    #[arg(long)]
    pub env: String,

    /// The audit note (required): why, with the incident or ticket.
    #[arg(long)]
    pub note: String,

    /// Do not ask: needed when there is no terminal (runbooks, scripts).
    #[arg(long)]
    pub yes: bool,

    #[arg(long, value_enum, default_value_t = FlipOutput::Text)]
    pub output: FlipOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlipOutput {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct RunbookArgs {
    /// The flag's key.
    pub flag: String,

    /// The environment the step is for (default: the first protected one).
    #[arg(long)]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only records newer than this: 30m, 12h, 7d, 2w.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<chrono::Duration>,

    /// Only this flag; also reads the vendor's history of it in each environment.
    #[arg(long)]
    pub flag: Option<String>,

    /// Only this environment.
    #[arg(long)]
    pub env: Option<String>,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Args)]
pub struct StaleArgs {
    /// The report's date (default: today), YYYY-MM-DD.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,

    #[arg(long, value_enum, default_value_t = ReportOutput::Markdown)]
    pub output: ReportOutput,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportOutput {
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; loopback by default (port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8686")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// "30m", "12h", "7d", "2w" (also "45s") as a duration.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit: use s, m, h, d or w (e.g. 24h)"))?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number then a unit, e.g. 24h"))?;
    let duration = match unit {
        "s" => chrono::Duration::try_seconds(number),
        "m" => chrono::Duration::try_minutes(number),
        "h" => chrono::Duration::try_hours(number),
        "d" => chrono::Duration::try_days(number),
        "w" => chrono::Duration::try_weeks(number),
        other => return Err(format!("`{other}` is not a unit: use s, m, h, d or w")),
    };
    duration.ok_or_else(|| format!("`{text}` is too long a duration"))
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
