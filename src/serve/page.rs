//! `GET /`: the read-only status page, rendered on the server from the last status document.
//! No JavaScript, no form, no write control: it refreshes itself with a meta refresh. Every
//! text that came from a vendor, the config or an alert goes through the one sanitiser
//! ([`crate::text::line`]) and is then HTML-escaped.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::commands::status::{FlagStatus, StatusReport};
use crate::model::{Removal, Tone};
use crate::text;

/// How one environment's last read went.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadView {
    /// Not read yet (the server just started).
    Loading,
    Loaded {
        at: DateTime<Utc>,
    },
    Failed {
        at: DateTime<Utc>,
        error: String,
        /// When the flags shown were read (the last good read), if ever.
        last_ok: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvView {
    pub name: String,
    pub protected: bool,
    pub load: LoadView,
}

/// A trigger as the page lists it (never its token).
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerView {
    pub name: String,
    pub env: String,
    pub flag: String,
    pub action: &'static str,
}

pub struct Page<'a> {
    pub report: &'a StatusReport,
    pub envs: &'a [EnvView],
    pub triggers: &'a [TriggerView],
    pub refresh_seconds: u64,
    pub origin: &'a str,
}

/// `s` as one inert line, HTML-escaped: safe as element text and inside a quoted attribute.
pub fn escape(s: &str) -> String {
    let line = text::line(s);
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The CSS class of a cell: its tone, from the state (never from the words).
fn tone(status: &FlagStatus) -> &'static str {
    match status.tone() {
        Tone::Serving => "serving",
        Tone::Killed => "killed",
        Tone::PartlyKilled => "partly-killed",
        Tone::Unknown => "unknown",
        Tone::Off => "off",
        Tone::On | Tone::Rollout | Tone::Targeted | Tone::CodeDefault => "on",
    }
}

fn removal_mark(removal: Removal) -> String {
    match removal {
        Removal::Stale(days) => format!("STALE ({days} days past removal date)"),
        Removal::Overdue(days) => format!("overdue {days} d"),
        Removal::NoDate => "no removal date".to_string(),
        Removal::NotDue => String::new(),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#111}\
table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left}\
th{background:#eee}td{white-space:nowrap}.killed{background:#fdd;font-weight:bold}.serving{color:#060}\
.unknown{background:#ffd;font-weight:bold}.partly-killed{background:#fde;color:#808;font-weight:bold}.off{color:#666}.failed{color:#a00;font-weight:bold}\
.stale{color:#a50}.muted{color:#666}";

pub fn render(page: &Page) -> String {
    let report = page.report;
    // One pass: cells by (flag, env), rows in the document's order (kill switches first),
    // each flag's first known owner. Linear in the number of cells (5,000 flags x 6 envs).
    let mut cells: HashMap<(&str, &str), &FlagStatus> = HashMap::new();
    let mut owners: HashMap<&str, &str> = HashMap::new();
    let mut keys: Vec<&str> = Vec::new();
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for status in &report.flags {
        if seen.insert(status.flag.as_str()) {
            keys.push(&status.flag);
        }
        if let Some(owner) = status.owner.as_deref() {
            owners.entry(status.flag.as_str()).or_insert(owner);
        }
        cells.insert((&status.flag, &status.env), status);
    }
    let mut html = String::with_capacity(4096 + report.flags.len() * 96);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.push_str(&format!(
        "<meta http-equiv=\"refresh\" content=\"{}\">",
        page.refresh_seconds
    ));
    html.push_str("<meta name=\"viewport\" content=\"width=device-width\">");
    html.push_str("<title>killswitch status</title>");
    html.push_str(&format!("<style>{STYLE}</style></head><body>\n"));
    html.push_str("<h1>killswitch status</h1>\n");
    html.push_str(&format!(
        "<p class=\"muted\">Read-only. Generated {} from {}; this page reloads every {} s. \
         Kills are made from the killswitch dashboard, the CLI or an alert trigger.</p>\n",
        time(&report.generated_at),
        escape(page.origin),
        page.refresh_seconds
    ));

    html.push_str("<h2>Environments</h2>\n<table id=\"environments\"><tr><th>Environment</th><th>State</th><th>Last refresh</th></tr>\n");
    for env in page.envs {
        let protected = if env.protected { " (protected)" } else { "" };
        let (state, class, at) = match &env.load {
            LoadView::Loading => ("loading".to_string(), "muted", "-".to_string()),
            LoadView::Loaded { at } => ("loaded".to_string(), "", time(at)),
            LoadView::Failed { at, error, last_ok } => (
                format!(
                    "ERROR: {}{}",
                    crate::redact::text(error),
                    match last_ok {
                        Some(ok) => format!(" (flags shown as read at {})", time(ok)),
                        None => " (never read)".to_string(),
                    }
                ),
                "failed",
                time(at),
            ),
        };
        html.push_str(&format!(
            "<tr data-env=\"{name}\"><td>{name}{protected}</td><td class=\"{class}\">{}</td><td>{at}</td></tr>\n",
            escape(&state),
            name = escape(&env.name),
        ));
    }
    html.push_str("</table>\n");

    html.push_str("<h2>Flags</h2>\n<table id=\"flags\"><tr><th>Flag</th>");
    for env in page.envs {
        html.push_str(&format!("<th>{}</th>", escape(&env.name.to_uppercase())));
    }
    html.push_str("<th>Owner</th><th>Removal</th></tr>\n");
    for key in &keys {
        html.push_str(&format!(
            "<tr data-flag=\"{k}\"><td>{k}</td>",
            k = escape(key)
        ));
        let mut any: Option<&FlagStatus> = None;
        for env in page.envs {
            match cells.get(&(*key, env.name.as_str())) {
                Some(status) => {
                    any = any.or(Some(status));
                    html.push_str(&format!(
                        "<td class=\"{}\" data-env=\"{}\">{}</td>",
                        tone(status),
                        escape(&env.name),
                        escape(&status.state)
                    ));
                }
                None => {
                    let shown = match env.load {
                        LoadView::Loading => "…",
                        LoadView::Failed { last_ok: None, .. } => "ERROR",
                        _ => "-",
                    };
                    html.push_str(&format!(
                        "<td class=\"muted\" data-env=\"{}\">{shown}</td>",
                        escape(&env.name)
                    ));
                }
            }
        }
        let owner = owners
            .get(key)
            .map(|owner| escape(owner))
            .unwrap_or_else(|| "-".to_string());
        let removal = any.map(|s| removal_mark(s.removal)).unwrap_or_default();
        let class = if any.is_some_and(|s| s.stale) {
            " class=\"stale\""
        } else {
            ""
        };
        html.push_str(&format!(
            "<td>{owner}</td><td{class}>{}</td></tr>\n",
            escape(&removal)
        ));
    }
    html.push_str("</table>\n");
    if keys.is_empty() {
        html.push_str("<p class=\"muted\">No flags read yet.</p>\n");
    }
    if !page.triggers.is_empty() {
        html.push_str("<h2>Alert triggers</h2>\n<table id=\"triggers\"><tr><th>Trigger</th><th>Action</th><th>Flag</th><th>Environment</th></tr>\n");
        for trigger in page.triggers {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&trigger.name),
                trigger.action,
                escape(&trigger.flag),
                escape(&trigger.env)
            ));
        }
        html.push_str("</table>\n");
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_kill_is_not_drawn_as_killed() {
        use crate::model::{FlagKind, Override, OverrideKind, Rollout};
        let status = |overrides: Vec<Override>| FlagStatus {
            env: "prod".into(),
            flag: "kill_switch_checkout".into(),
            kind: FlagKind::KillSwitch,
            state: String::new(),
            enabled: false,
            value: Some(false.into()),
            rollout: Rollout::Everyone,
            rollout_summary: String::new(),
            overrides,
            owner: None,
            expected_removal_date: None,
            removal: Removal::NoDate,
            stale: false,
            provider: "flagsmith".into(),
            fetched_at: Utc::now(),
        };
        assert_eq!(tone(&status(Vec::new())), "killed");
        let beta = Override {
            target: "segment beta".into(),
            kind: OverrideKind::Segment,
            enabled: true,
            value: None,
            rollout: Rollout::Everyone,
        };
        assert_eq!(tone(&status(vec![beta])), "partly-killed");
    }

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape("<script>alert('x')</script>&\"\u{1b}[2J\n"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\e[2J⏎"
        );
    }
}
