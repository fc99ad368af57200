//! The rollout dialog's own lines inside the flip dialog: what the default audience gets now,
//! the configured steps with the chosen one marked, the percentage being typed (or the variant
//! chosen), and which other environments the write reaches. The rest (sentence, note,
//! confirmation, outcome) is drawn by `dialog`, the same for a rollout as for a kill.

use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use crate::redact;
use crate::rollout::RolloutTarget;
use crate::text;
use crate::tui::app::{DialogStage, FlipDialog};
use crate::tui::rollout::{RolloutPart, Shared, is_step, percent_text};

/// The lines under the sentence, for the current step.
pub fn lines(dialog: &FlipDialog, part: &RolloutPart, text_width: usize) -> Vec<Line<'static>> {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let reversed = Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD);
    let mut lines = Vec::new();
    if dialog.stage == DialogStage::Target {
        let mut now = vec![
            Span::styled("Now: ", bold),
            Span::raw(text::line(&part.now)),
        ];
        if part.variants.is_empty() {
            // The steps, the one typed shown reversed (a word, not a colour: NO_COLOR).
            let typed = RolloutTarget::parse_percent(part.percent.value()).ok();
            now.push(Span::styled(" · Steps: ", bold));
            for (index, step) in part.steps.iter().enumerate() {
                if index > 0 {
                    now.push(Span::raw(" "));
                }
                let chosen = typed.is_some_and(|typed| is_step(&[*step], typed));
                let label = format!("{}%", percent_text(*step));
                now.push(if chosen {
                    Span::styled(format!("[{label}]"), reversed)
                } else {
                    Span::raw(label)
                });
            }
            lines.push(Line::from(now));
            let label = "New percentage (0-100):";
            let room = text_width.saturating_sub(label.len() + 3).max(4);
            lines.push(Line::from(vec![
                Span::styled(format!("{label} "), bold),
                Span::raw(format!(
                    "{}█",
                    text::cut_end(&text::line(part.percent.value()), room)
                )),
            ]));
        } else {
            lines.push(Line::from(now));
            lines.push(Line::styled("Everyone to variant:", bold));
            for (index, variant) in part.variants.iter().enumerate() {
                let shown = text::cut_middle(&text::line(variant), text_width.saturating_sub(4));
                lines.push(if index == part.variant {
                    Line::styled(format!("▶ {shown}"), reversed)
                } else {
                    Line::from(format!("  {shown}"))
                });
            }
        }
        return lines;
    }
    match &part.shared {
        Shared::NotAsked | Shared::Known(_) if matches!(dialog.stage, DialogStage::Done { .. }) => {
        }
        Shared::NotAsked => {}
        Shared::Checking => {
            lines.push(Line::from(
                "asking the vendor which environments this change reaches…",
            ));
        }
        Shared::Known(names) if names.is_empty() => {}
        Shared::Known(names) => {
            let names: Vec<String> = names.iter().map(|name| text::line(name)).collect();
            lines.push(Line::styled(
                format!(
                    "! this segment is shared with: {} — the change reaches them too",
                    names.join(", ")
                ),
                bold,
            ));
        }
        Shared::Failed(error) => {
            lines.push(Line::styled(
                format!(
                    "! cannot tell which environments this change reaches: {}",
                    redact::line(error)
                ),
                bold,
            ));
        }
    }
    lines
}
