//! The command line, for every subcommand. One clap definition also generates the shell
//! completions and the man page.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::engine::ArgValueCandidates;

use crate::commands::complete;

/// The exit codes, for `--help` and the man page's EXIT STATUS (the values are in
/// `commands::exit`).
pub const EXIT_STATUS: &str = "\
Exit status:
  0   done (status: every environment read; status --check: the flag is in that state)
  1   unexpected failure (config file, audit log, terminal); status --check: it is not
  2   bad command line (also: a rollout percentage out of range, a variant the flag lacks)
  3   the flag already is in the requested state (undo: no change to undo): nothing was changed
  4   refused: read-only, not confirmed, no terminal and no --yes, empty note
  5   no such flag or environment
  6   Vault / credentials error
  7   the vendor failed or refused (unreachable, 5xx, rate limited, auth at the vendor)
  8   applied, but what services see did not agree within the verify timeout
  9   the flag changed since it was read (undo: since the change): nothing was changed
  10  the vendor requires approval: a request was created, nothing is live yet
  11  outcome unknown: the write's answer was lost and the re-read failed; check the flag
A closed output pipe (`killswitch status | head -2`) ends quietly with 0.";

#[derive(Debug, Parser)]
#[command(
    name = "killswitch",
    version,
    about = "Feature-flag kill switches for on-call: see every environment, kill with a note.",
    long_about = "Feature-flag kill switches for on-call.\n\nWith no subcommand, opens the dashboard. \
                  `killswitch --env prod --flag kill_switch_checkout` opens it on that cell, the \
                  form a runbook link uses.",
    after_long_help = EXIT_STATUS
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Open the dashboard focused on this environment's column.
    #[arg(long, global = false, add = ArgValueCandidates::new(complete::environments))]
    pub env: Option<String>,

    /// Open the dashboard focused on this flag's row.
    #[arg(long, global = false, add = ArgValueCandidates::new(complete::flags))]
    pub flag: Option<String>,

    /// Keymap: `default`, `vim`, or a path to a TOML keymap file.
    #[arg(long, value_name = "NAME|PATH")]
    pub keymap: Option<String>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// `killswitch --env prdo --flag x status`: `--env`, `--flag` and `--keymap` before a
    /// subcommand belong to the dashboard, and the subcommand would silently ignore them. The
    /// usage error names the subcommand's own option instead.
    pub fn misplaced_dashboard_option(&self) -> Option<String> {
        let command = self.command.as_ref()?;
        let name = command.name();
        let own = |option: &str, value: &str| -> String {
            match (name, option) {
                ("status" | "audit" | "undo", _)
                | ("runbook" | "kill" | "restore" | "rollout", "--env") => {
                    format!("use `killswitch {name} {option} {value}`")
                }
                ("runbook" | "kill" | "restore" | "rollout", _) => {
                    format!(
                        "`{name}` takes the flag as its argument: `killswitch {name} {value} ...`"
                    )
                }
                _ => format!("`{name}` has no {option}"),
            }
        };
        let given = [("--env", &self.env), ("--flag", &self.flag)];
        for (option, value) in given {
            if let Some(value) = value {
                let value = crate::text::line_max(value, 80);
                return Some(format!(
                    "{option} before `{name}` opens the dashboard on that cell, and `{name}` \
                     would ignore it; {}",
                    own(option, &value)
                ));
            }
        }
        if self.keymap.is_some() {
            return Some(format!(
                "--keymap only applies to the dashboard; `{name}` has no keys to map"
            ));
        }
        None
    }
}

impl Command {
    /// The subcommand's name as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status(_) => "status",
            Command::Kill(_) => "kill",
            Command::Restore(_) => "restore",
            Command::Rollout(_) => "rollout",
            Command::Undo(_) => "undo",
            Command::Runbook(_) => "runbook",
            Command::Audit(_) => "audit",
            Command::Stale(_) => "stale",
            Command::Completions(_) => "completions",
            Command::Man => "man",
            Command::Serve(_) => "serve",
            Command::Notify(_) => "notify",
            Command::Config(_) => "config",
            Command::Doctor => "doctor",
        }
    }
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

    /// With no config file, use the local workspace even when VAULT_ADDR is set (instead of
    /// the environments found in Vault).
    #[arg(long, global = true)]
    pub local: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print every environment's flags without the terminal UI (read-only).
    Status(StatusArgs),
    /// Kill a feature: turn its flag OFF in one environment (same path as the dashboard).
    Kill(FlipArgs),
    /// Restore a killed feature: turn its flag back ON in one environment.
    Restore(FlipArgs),
    /// Step a rollout: the share of the flag's default audience that gets it (`--to 0` aborts,
    /// `--to 100` opens it to everyone), or everyone to one variant (`--variant`). Segment and
    /// identity overrides stay as they are; users keep their buckets.
    Rollout(RolloutArgs),
    /// Revert the last change killswitch made to a flag in one environment (kill -> restore,
    /// restore -> kill, rollout -> the rollout before); refused if the flag moved since.
    Undo(UndoArgs),
    /// Print a ready-to-paste runbook step (markdown) to check, kill and restore a flag.
    Runbook(RunbookArgs),
    /// The local audit log, joined with the vendor's history for a flag.
    Audit(AuditArgs),
    /// The weekly stale-flag report: flags past their expected removal date, by owner.
    Stale(StaleArgs),
    /// Serve alert triggers (`POST /hooks/<name>`) and a read-only status page over HTTP.
    Serve(ServeArgs),
    /// Tell the `[[notify]]` receivers (Slack, webhooks) something.
    Notify(NotifyArgs),
    /// Write a config file.
    Config(ConfigArgs),
    /// Check the setup: config, Vault, each environment's secret and fields, vendor credentials.
    Doctor,
    /// Print shell completions: environment names and flag keys are completed from the
    /// config and the environments (`source <(killswitch completions bash)`).
    Completions(CompletionsArgs),
    /// Print the man page (roff, generated from this command line).
    Man,
}

#[derive(Debug, Args, Clone)]
pub struct FlipArgs {
    /// The flag's key, e.g. kill_switch_checkout.
    #[arg(add = ArgValueCandidates::new(complete::flags))]
    pub flag: String,

    /// The environment to change; repeat it for several (one note, one confirmation, each
    /// environment its own transaction, run concurrently).
    #[arg(long, required = true, add = ArgValueCandidates::new(complete::environments))]
    pub env: Vec<String>,

    /// The audit note (required): why, with the incident or ticket.
    #[arg(long)]
    pub note: String,

    /// Do not ask: needed when there is no terminal (runbooks, scripts).
    #[arg(long)]
    pub yes: bool,

    #[arg(long, value_enum, default_value_t = FlipOutput::Text)]
    pub output: FlipOutput,

    /// Set by a multi-environment kill: the batch id its audit records share.
    #[arg(skip)]
    pub batch: Option<String>,

    /// Set by a multi-environment kill: the state the operator confirmed; the flip stops if
    /// the flag has moved since.
    #[arg(skip)]
    pub seen: Option<crate::model::FlagState>,
}

#[derive(Debug, Args, Clone)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["to", "variant"])))]
pub struct RolloutArgs {
    /// The flag's key, e.g. checkout_stripe_payment_intents_v2024_11.
    #[arg(add = ArgValueCandidates::new(complete::flags))]
    pub flag: String,

    /// The environment to change.
    #[arg(long, required = true, add = ArgValueCandidates::new(complete::environments))]
    pub env: String,

    /// The share of the default audience that gets the flag's on variant: 0 to 100, at most
    /// three decimals (0 aborts the rollout, 100 opens it to everyone).
    #[arg(long, value_name = "PERCENT", allow_hyphen_values = true)]
    pub to: Option<String>,

    /// Everyone in the default audience gets this variant (ends an experiment).
    #[arg(long, value_name = "NAME")]
    pub variant: Option<String>,

    /// The audit note (required): why, with the incident or ticket.
    #[arg(long)]
    pub note: String,

    /// Do not ask: needed when there is no terminal (runbooks, scripts).
    #[arg(long)]
    pub yes: bool,

    #[arg(long, value_enum, default_value_t = FlipOutput::Text)]
    pub output: FlipOutput,
}

#[derive(Debug, Args, Clone)]
pub struct UndoArgs {
    /// The environment the change was made in.
    #[arg(long, required = true, add = ArgValueCandidates::new(complete::environments))]
    pub env: String,

    /// The flag whose last change killswitch made is reverted.
    #[arg(long, required = true, add = ArgValueCandidates::new(complete::flags))]
    pub flag: String,

    /// The audit note (required): why the change is taken back.
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
    #[arg(add = ArgValueCandidates::new(complete::flags))]
    pub flag: String,

    /// The environment the step is for (default: the first protected one).
    #[arg(long, add = ArgValueCandidates::new(complete::environments))]
    pub env: Option<String>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only records newer than this: 30m, 12h, 7d, 2w.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub since: Option<chrono::Duration>,

    /// Only this flag; also reads the vendor's history of it in each environment.
    #[arg(long, add = ArgValueCandidates::new(complete::flags))]
    pub flag: Option<String>,

    /// Only this environment.
    #[arg(long, add = ArgValueCandidates::new(complete::environments))]
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
pub struct NotifyArgs {
    #[command(subcommand)]
    pub command: NotifyCommand,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message to each receiver (or the one named) and report how each took it.
    Test {
        /// Only this receiver (its `name` in `[[notify]]`).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Write a config file (default: $XDG_CONFIG_HOME/killswitch/config.toml, or --config).
    Init {
        /// Find the environments in Vault: every `<provider>/<env>` secret under
        /// `kv/metadata/feature-flags/` (VAULT_ADDR and a token with `list` needed).
        #[arg(long)]
        from_vault: bool,
        /// Overwrite an existing config file.
        #[arg(long)]
        force: bool,
        /// The KV v2 mount to list (default: kv).
        #[arg(long, default_value = "kv")]
        vault_mount: String,
        /// The folder inside the mount (default: feature-flags).
        #[arg(long, default_value = "feature-flags")]
        vault_prefix: String,
    },
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    pub shell: clap_complete::Shell,
}

/// The longest `--since` accepted: 100 years (the audit log is not older; a larger value is a
/// typo, and subtracting it from now would leave the calendar).
pub const MAX_DURATION_DAYS: i64 = 36_500;

/// "30m", "12h", "7d", "2w" (also "45s") as a duration, between 0 and 100 years.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let shown = crate::text::line_max(text, 40);
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{shown}` has no unit: use s, m, h, d or w (e.g. 24h)"))?;
    let (number, unit) = text.split_at(split);
    let number: i64 = match number.parse() {
        Ok(number) => number,
        Err(_) if number.is_empty() => {
            return Err(format!(
                "`{shown}`: expected a number then a unit, e.g. 24h"
            ));
        }
        Err(_) => {
            return Err(format!(
                "`{shown}` is out of range: at most {MAX_DURATION_DAYS}d (100 years)"
            ));
        }
    };
    let duration = match unit {
        "s" => chrono::Duration::try_seconds(number),
        "m" => chrono::Duration::try_minutes(number),
        "h" => chrono::Duration::try_hours(number),
        "d" => chrono::Duration::try_days(number),
        "w" => chrono::Duration::try_weeks(number),
        _ => {
            return Err(format!(
                "`{}` is not a unit: use s, m, h, d or w",
                crate::text::line_max(unit, 20)
            ));
        }
    };
    duration
        .filter(|duration| duration.num_days() <= MAX_DURATION_DAYS)
        .ok_or_else(|| {
            format!("`{shown}` is out of range: at most {MAX_DURATION_DAYS}d (100 years)")
        })
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this environment (repeat for several).
    #[arg(long, add = ArgValueCandidates::new(complete::environments))]
    pub env: Vec<String>,

    /// Only this flag.
    #[arg(long, add = ArgValueCandidates::new(complete::flags))]
    pub flag: Option<String>,

    /// Exit 0 when the flag is in this state in the environment, 1 when it is not (a
    /// runbook's verify step). Needs --flag and --env.
    #[arg(long, value_enum, requires_all = ["flag", "env"])]
    pub check: Option<Check>,

    /// Only kill switches.
    #[arg(long)]
    pub kill_switches: bool,

    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// The state `status --check` expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Check {
    /// Off: a kill switch KILLED, any other flag OFF.
    Killed,
    /// On: a kill switch SERVING, any other flag ON.
    Serving,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use proptest::prelude::*;

    #[test]
    fn durations_have_a_unit_and_a_range() {
        assert_eq!(parse_duration("24h"), Ok(chrono::Duration::hours(24)));
        assert_eq!(parse_duration("5200w"), Ok(chrono::Duration::weeks(5200)));
        for text in ["20000000w", "36501d", "99999999999999999999s"] {
            let err = parse_duration(text).err().unwrap_or_default();
            assert!(err.contains("out of range"), "{text}: {err}");
        }
        assert!(parse_duration("12").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("3y").is_err());
    }

    /// Pieces the property test builds command lines from: every option and subcommand, and
    /// values that are empty, huge, negative, odd dates and odd characters.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "status",
                "kill",
                "restore",
                "rollout",
                "undo",
                "--to",
                "--variant",
                "runbook",
                "audit",
                "stale",
                "completions",
                "man",
                "--since",
                "--as-of",
                "--env",
                "--flag",
                "--note",
                "--yes",
                "--output",
                "--keymap",
                "--config",
                "--read-only",
                "--audit-log",
                "--kill-switches",
                "json",
                "table",
                "markdown",
                "bash",
                "prod",
                "kill_switch_checkout",
                "--",
                "-",
                "",
            ])
            .prop_map(str::to_string),
            (
                any::<i64>(),
                prop::sample::select(vec!["s", "m", "h", "d", "w", "", "x"])
            )
                .prop_map(|(n, unit)| format!("{n}{unit}")),
            (
                any::<u64>(),
                prop::sample::select(vec!["s", "m", "h", "d", "w"])
            )
                .prop_map(|(n, unit)| format!("{n}{unit}")),
            (any::<i32>(), 0u32..20, 0u32..40).prop_map(|(y, m, d)| format!("{y}-{m:02}-{d:02}")),
            ".{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// No command line makes the parsers panic, and every duration they accept can be
        /// subtracted from any date killswitch will meet.
        #[test]
        fn no_command_line_panics_the_parsers(tokens in prop::collection::vec(token(), 0..7)) {
            let argv = std::iter::once("killswitch".to_string()).chain(tokens);
            if let Ok(cli) = Cli::try_parse_from(argv) {
                let _ = cli.misplaced_dashboard_option();
                if let Some(Command::Audit(args)) = &cli.command
                    && let Some(since) = args.since
                {
                    let far = chrono::DateTime::parse_from_rfc3339("2999-12-31T23:59:59Z")
                        .map(|t| t.with_timezone(&chrono::Utc))
                        .unwrap_or_default();
                    prop_assert!(chrono::Utc::now().checked_sub_signed(since).is_some());
                    prop_assert!(far.checked_sub_signed(since).is_some());
                }
            }
        }

        #[test]
        fn durations_never_panic_and_stay_in_range(text in ".{0,24}", n in any::<i64>()) {
            for input in [text.clone(), format!("{n}w"), format!("{n}d"), format!("{n}s")] {
                if let Ok(duration) = parse_duration(&input) {
                    prop_assert!(duration.num_days() <= MAX_DURATION_DAYS);
                    prop_assert!(duration >= chrono::Duration::zero());
                }
            }
        }
    }
}
