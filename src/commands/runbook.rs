//! `killswitch runbook FLAG [--env E]`: a ready-to-paste runbook step in markdown with the exact
//! commands to check, kill and restore the flag, their exit codes, the dashboard deep link and
//! the flag's own runbook link.

use std::io::Write;

use anyhow::Result;

use super::exit;
use crate::cli::RunbookArgs;
use crate::flip;
use crate::model::{Flag, FlagKind, cell_text};
use crate::session::Session;

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
        eprintln!("killswitch: {}", session.config.unknown_environment(&env));
        return Ok(exit::NOT_FOUND);
    };
    let flag = match session.load(&env).await {
        Ok(snapshot) => match snapshot.flag(&args.flag) {
            Some(flag) => flag.clone(),
            None => {
                eprintln!("killswitch: no flag `{}` in {env}", args.flag);
                return Ok(exit::NOT_FOUND);
            }
        },
        Err(error) => {
            eprintln!("killswitch: cannot read {env}: {error}");
            return Ok(exit::PROVIDER);
        }
    };
    let base = match config_arg {
        Some(path) => format!(
            "killswitch --config {}",
            shell_quote(&path.display().to_string())
        ),
        None => "killswitch".to_string(),
    };
    write_step(out, &base, &env, env_config.protected, &flag)?;
    Ok(exit::OK)
}

fn write_step(
    out: &mut dyn Write,
    base: &str,
    env: &str,
    protected: bool,
    flag: &Flag,
) -> std::io::Result<()> {
    let key = flag.meta.key.as_str();
    let quoted_key = shell_quote(key);
    let quoted_env = shell_quote(env);
    let kind = flag.meta.kind;
    let kill_word = flip::action_word(kind, false);
    let restore_word = flip::action_word(kind, true);
    let (on_text, off_text) = match kind {
        FlagKind::KillSwitch => ("SERVING", "KILLED"),
        _ => ("ON…", "OFF"),
    };
    writeln!(out, "### {kill_word} `{key}` in {env}")?;
    writeln!(out)?;
    let mut facts = vec![format!("kind: {}", kind.label())];
    if let Some(owner) = &flag.meta.owner {
        facts.push(format!("owner: {owner}"));
    }
    facts.push(format!("now: {}", cell_text(kind, &flag.state)));
    if let Some(runbook) = &flag.meta.runbook {
        facts.push(format!("runbook: {runbook}"));
    }
    writeln!(out, "{}", facts.join(" · "))?;
    if let Some(description) = &flag.meta.description {
        writeln!(out)?;
        writeln!(out, "> {description}")?;
    }
    writeln!(out)?;
    writeln!(out, "1. Check what {env} serves now:")?;
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
        format!("it asks you to type `{env}`")
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
        "   Exit 0: applied and confirmed by what services see. 3: already off. 8: applied but \
         not confirmed yet (re-run step 1). 9: someone changed it meanwhile (re-run step 1). \
         10: approval required, nothing live yet. 4/5/6/7: refused / not found / Vault / provider \
         error: nothing was changed."
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "   Or in the dashboard, already on this cell: `{base} --env {quoted_env} --flag {quoted_key}`, then `f`, the note, and the confirmation."
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
    Ok(())
}

/// Quotes a word for a POSIX shell when it needs it.
pub fn shell_quote(word: &str) -> String {
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
    }
}
