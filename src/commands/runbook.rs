//! `killswitch runbook FLAG [--env E]`: a ready-to-paste runbook step in markdown with the exact
//! commands to check, kill and restore the flag, their exit codes, the dashboard deep link and
//! the flag's own runbook link.

use std::io::Write;

use anyhow::Result;

use super::{exit, print_error};
use crate::cli::RunbookArgs;
use crate::flip;
use crate::model::{Flag, FlagKind, Rollout, cell_text};
use crate::session::Session;
use crate::text;

pub async fn run(
    session: &Session,
    args: &RunbookArgs,
    config_arg: Option<&std::path::Path>,
    out: &mut dyn Write,
) -> Result<i32> {
    let env = match &args.env {
        Some(env) => env.clone(),
        None => session
            .config
            .environments
            .iter()
            .find(|env| env.protected)
            .or(session.config.environments.first())
            .map(|env| env.name.clone())
            .unwrap_or_default(),
    };
    let Some(env_config) = session.config.environment(&env) else {
        print_error(session.config.unknown_environment(&env));
        return Ok(exit::NOT_FOUND);
    };
    let flag = match session.load(&env).await {
        Ok(snapshot) => match snapshot.flag(&args.flag) {
            Some(flag) => flag.clone(),
            None => {
                print_error(format!(
                    "no flag `{}` in {env}{}",
                    args.flag,
                    crate::text::did_you_mean(
                        &args.flag,
                        snapshot.flags.iter().map(|flag| flag.meta.key.as_str())
                    )
                ));
                return Ok(exit::NOT_FOUND);
            }
        },
        Err(error) => {
            print_error(format!("cannot read {env}: {error}"));
            // The kind travels with the error: a Vault failure is 6, like `status`'s.
            return Ok(if error.is_credentials() {
                exit::CREDENTIALS
            } else {
                exit::PROVIDER
            });
        }
    };
    let base = match config_arg {
        Some(path) => format!(
            "killswitch --config {}",
            shell_quote(&path.display().to_string())
        ),
        None => "killswitch".to_string(),
    };
    write_step(
        out,
        &base,
        &env,
        env_config.protected,
        &flag,
        &session.config.rollout.steps,
    )?;
    Ok(exit::OK)
}

fn write_step(
    out: &mut dyn Write,
    base: &str,
    env: &str,
    protected: bool,
    flag: &Flag,
    steps: &[f64],
) -> std::io::Result<()> {
    // Vendor text (key, owner, description, runbook link) is rendered so it cannot open or
    // close a code block, a list item or a heading, nor drive a terminal; commands quote the key
    // for the shell on one line.
    let key = text::markdown_code(&flag.meta.key);
    let shown_env = text::markdown_text(env);
    let quoted_key = shell_quote(&flag.meta.key);
    let quoted_env = shell_quote(env);
    let kind = flag.meta.kind;
    let kill_word = flip::action_word(kind, false);
    let restore_word = flip::action_word(kind, true);
    let (on_text, off_text) = match kind {
        FlagKind::KillSwitch => ("SERVING", "KILLED"),
        _ => ("ON…", "OFF"),
    };
    writeln!(out, "### {kill_word} {key} in {shown_env}")?;
    writeln!(out)?;
    let mut facts = vec![format!("kind: {}", kind.label())];
    if let Some(owner) = &flag.meta.owner {
        facts.push(format!("owner: {}", text::markdown_text(owner)));
    }
    facts.push(format!(
        "now: {}",
        text::markdown_text(&cell_text(kind, &flag.state))
    ));
    if let Some(runbook) = &flag.meta.runbook {
        facts.push(format!("runbook: {}", text::markdown_text(runbook)));
    }
    writeln!(out, "{}", facts.join(" · "))?;
    if let Some(description) = &flag.meta.description {
        writeln!(out)?;
        writeln!(out, "> {}", text::markdown_inline(description))?;
    }
    writeln!(out)?;
    writeln!(out, "1. Check what {shown_env} serves now:")?;
    writeln!(out)?;
    writeln!(out, "   ```sh")?;
    writeln!(
        out,
        "   {base} status --env {quoted_env} --flag {quoted_key}"
    )?;
    writeln!(out, "   ```")?;
    writeln!(
        out,
        "   `{on_text}`: the feature serves. `{off_text}`: it is already off."
    )?;
    writeln!(out)?;
    let confirm = if protected {
        format!("it asks you to type {}", text::markdown_code(env))
    } else {
        "it asks `y`".to_string()
    };
    writeln!(
        out,
        "2. {kill_word} it, with the incident in the note ({confirm}; from a script add `--yes`):"
    )?;
    writeln!(out)?;
    writeln!(out, "   ```sh")?;
    writeln!(
        out,
        "   {base} kill {quoted_key} --env {quoted_env} --note \"INC-XXXX: <symptom>\""
    )?;
    writeln!(out, "   ```")?;
    writeln!(
        out,
        "   Exit 0: applied and confirmed by what services see (also when the vendor's answer \
         was lost and a re-read found the change live). 3: already off. 8: applied but not \
         confirmed yet (re-run step 1). 9: someone changed it meanwhile (re-run step 1). 10: \
         approval required, nothing live yet. 4/5/6/7: refused / not found / Vault / provider \
         error: nothing was changed (after a lost answer, the flag was read again and is \
         unchanged). 11: OUTCOME UNKNOWN: the answer was lost and the flag could not be read \
         again; it may or may not be off: re-run step 1 before anything else."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "   Or in the dashboard, already on this cell: `{base} --env {quoted_env} --flag {quoted_key}`, then `f`, the note, and the confirmation."
    )?;
    writeln!(
        out,
        "   Several environments at once (regions, both sides of a migration): repeat `--env` \
         (`--env {quoted_env} --env <other>`): one note, one confirmation typing every protected \
         name, each environment its own change; the exit code is the worst environment's."
    )?;
    writeln!(out)?;
    writeln!(out, "3. {restore_word} it when the incident is over:")?;
    writeln!(out)?;
    writeln!(out, "   ```sh")?;
    writeln!(
        out,
        "   {base} restore {quoted_key} --env {quoted_env} --note \"INC-XXXX resolved\""
    )?;
    writeln!(out, "   ```")?;
    write_rollout_steps(out, base, &quoted_env, &quoted_key, flag, steps)
}

/// For a rollout flag (not a kill switch, serving a percentage of its default audience): the
/// abort step (`--to 0`) and the step back to the previous of the config's `[rollout] steps`.
fn write_rollout_steps(
    out: &mut dyn Write,
    base: &str,
    quoted_env: &str,
    quoted_key: &str,
    flag: &Flag,
    steps: &[f64],
) -> std::io::Result<()> {
    let percent = match flag.state.rollout {
        Rollout::Percentage { percent } if flag.meta.kind != FlagKind::KillSwitch => percent,
        _ => return Ok(()),
    };
    let shown = |p: f64| Rollout::Percentage { percent: p }.summary();
    writeln!(out)?;
    writeln!(
        out,
        "4. It is a rollout at {}: abort it (only its segments and overrides keep it; users keep their buckets for later):",
        shown(percent)
    )?;
    writeln!(out)?;
    writeln!(out, "   ```sh")?;
    writeln!(
        out,
        "   {base} rollout {quoted_key} --env {quoted_env} --to 0 --note \"INC-XXXX: <symptom>\""
    )?;
    writeln!(out, "   ```")?;
    if let Some(back) = crate::rollout::previous_step(steps, percent).filter(|p| *p > 0.0) {
        writeln!(out)?;
        writeln!(
            out,
            "5. Or step back to the previous step, {} (the same users as when it was there):",
            shown(back)
        )?;
        writeln!(out)?;
        writeln!(out, "   ```sh")?;
        writeln!(
            out,
            "   {base} rollout {quoted_key} --env {quoted_env} --to {} --note \"INC-XXXX: <symptom>\"",
            crate::rollout::percent_arg(back)
        )?;
        writeln!(out, "   ```")?;
    }
    writeln!(
        out,
        "   Exit codes as for step 2 (2: a percentage out of range). To take back the last change \
         killswitch made instead: `{base} undo --env {quoted_env} --flag {quoted_key} --note \"INC-XXXX\"` \
         (refused with 9 if the flag moved since)."
    )?;
    Ok(())
}

/// Quotes a word for a POSIX shell when it needs it. A word with control characters or line
/// breaks is written in bash's `$'…'` form with every such character escaped, so the command
/// stays on one line and nothing in it can close the code block it is shown in.
pub fn shell_quote(word: &str) -> String {
    if text::line(word) != word {
        let mut quoted = String::from("$'");
        for c in word.chars() {
            match c {
                '\\' => quoted.push_str("\\\\"),
                '\'' => quoted.push_str("\\'"),
                '\n' => quoted.push_str("\\n"),
                '\r' => quoted.push_str("\\r"),
                '\t' => quoted.push_str("\\t"),
                '\x1b' => quoted.push_str("\\e"),
                c if text::line(&c.to_string()) != c.to_string() => {
                    quoted.push_str(&format!("\\U{:08x}", u32::from(c)));
                }
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        return quoted;
    }
    let safe = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@'));
    if safe {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("kill_switch_checkout"), "kill_switch_checkout");
        assert_eq!(shell_quote("my flag"), "'my flag'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a\n```\u{1b}[2J'"), r"$'a\n```\e[2J\''");
        assert_eq!(shell_quote("x\u{202e}"), r"$'x\U0000202e'");
    }
}
