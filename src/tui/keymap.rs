//! Keymaps: `keymaps/*.toml` -> key -> [`Command`], and the help generated from them.
//!
//! The base keymap is `default` or `vim` (embedded) or a file; a user file overrides single
//! keys. Errors name the file and line.

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;

use crate::config::location_of;

pub const DEFAULT: &str = include_str!("../../keymaps/default.toml");
pub const VIM: &str = include_str!("../../keymaps/vim.toml");

/// Everything a key can ask for in the dashboard. Dialog and filter input use fixed keys
/// (typing, Enter, Esc) listed in the help too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    MoveUp,
    MoveDown,
    MoveLeft,
    MoveRight,
    PageLeft,
    PageRight,
    PageUp,
    PageDown,
    FirstRow,
    LastRow,
    Flip,
    Mark,
    Filter,
    ColumnFilter,
    ClearFilter,
    Environments,
    Refresh,
    ToggleDetails,
    AuditLog,
    Help,
    Quit,
}

impl Command {
    pub const ALL: &[Command] = &[
        Command::MoveUp,
        Command::MoveDown,
        Command::MoveLeft,
        Command::MoveRight,
        Command::PageLeft,
        Command::PageRight,
        Command::PageUp,
        Command::PageDown,
        Command::FirstRow,
        Command::LastRow,
        Command::Flip,
        Command::Mark,
        Command::Filter,
        Command::ColumnFilter,
        Command::ClearFilter,
        Command::Environments,
        Command::Refresh,
        Command::ToggleDetails,
        Command::AuditLog,
        Command::Help,
        Command::Quit,
    ];

    /// Commands that change flags: not offered in read-only mode.
    pub fn is_dangerous(self) -> bool {
        matches!(self, Command::Flip | Command::Mark)
    }

    /// The short label used in the one-line help bar.
    pub fn short(self) -> &'static str {
        match self {
            Command::Flip => "kill/restore",
            Command::Mark => "mark",
            Command::Filter => "filter",
            Command::Refresh => "refresh",
            Command::Help => "help",
            Command::Quit => "quit",
            Command::AuditLog => "audit",
            Command::ToggleDetails => "details",
            Command::ColumnFilter => "columns",
            Command::Environments => "envs",
            _ => "",
        }
    }
}

/// One key binding, with the help text from the keymap file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub key: KeyEvent,
    pub command: Command,
    pub desc: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Keymap {
    /// Where it came from, for the help screen ("default", "vim + ~/.config/.../keymap.toml").
    pub origin: String,
    pub bindings: Vec<Binding>,
}

#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct KeymapError {
    pub location: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeymapFile {
    #[serde(default)]
    keys: Vec<toml::Spanned<Entry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    on: toml::Spanned<Keys>,
    run: toml::Spanned<String>,
    desc: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Keys {
    One(String),
    Many(Vec<String>),
}

impl Keymap {
    /// Parses one keymap file's text; `name` is used in errors ("keymaps/vim.toml").
    pub fn parse(text: &str, name: &str) -> Result<Keymap, KeymapError> {
        let file: KeymapFile = toml::from_str(text).map_err(|err| KeymapError {
            location: location_of(name, text, err.span().map(|s| s.start)),
            message: err.message().to_string(),
        })?;
        let mut bindings = Vec::new();
        for entry in &file.keys {
            let entry = entry.get_ref();
            let run = entry.run.get_ref();
            let command = parse_command(run).ok_or_else(|| KeymapError {
                location: location_of(name, text, Some(entry.run.span().start)),
                message: format!(
                    "unknown action `{run}` (known: {})",
                    Command::ALL
                        .iter()
                        .map(|c| command_name(*c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
            let keys = match entry.on.get_ref() {
                Keys::One(key) => vec![key.clone()],
                Keys::Many(keys) => keys.clone(),
            };
            if keys.is_empty() {
                return Err(KeymapError {
                    location: location_of(name, text, Some(entry.on.span().start)),
                    message: format!("no key given for `{run}`"),
                });
            }
            for key in keys {
                let event = parse_key(&key).ok_or_else(|| KeymapError {
                    location: location_of(name, text, Some(entry.on.span().start)),
                    message: format!("unknown key `{key}` (use a character, or names like enter, esc, up, pagedown, f5, ctrl-r)"),
                })?;
                bindings.push(Binding {
                    key: event,
                    command,
                    desc: entry
                        .desc
                        .clone()
                        .unwrap_or_else(|| command_name(command).replace('_', " ")),
                });
            }
        }
        Ok(Keymap {
            origin: name.to_string(),
            bindings,
        })
    }

    /// The embedded `default` or `vim` keymap.
    pub fn builtin(name: &str) -> Option<Keymap> {
        match name {
            "default" => Keymap::parse(DEFAULT, "keymaps/default.toml").ok(),
            "vim" => Keymap::parse(VIM, "keymaps/vim.toml").ok(),
            _ => None,
        }
    }

    /// `--keymap NAME|PATH` (or the config's `keymap`), then the user's override file.
    /// A path is laid over the default keymap, so it may hold only the keys it changes.
    pub fn load(choice: Option<&str>, user_file: Option<&Path>) -> Result<Keymap, KeymapError> {
        let choice = choice.unwrap_or("default");
        let mut keymap = match Keymap::builtin(choice) {
            Some(keymap) => keymap,
            None => {
                let base = Keymap::builtin("default").unwrap_or_default();
                base.overlaid(Keymap::from_file(Path::new(choice))?)
            }
        };
        if let Some(user) = user_file.filter(|path| path.exists()) {
            keymap = keymap.overlaid(Keymap::from_file(user)?);
        }
        Ok(keymap)
    }

    pub fn from_file(path: &Path) -> Result<Keymap, KeymapError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| KeymapError {
            location: name.clone(),
            message: format!("cannot read the keymap: {err}"),
        })?;
        Keymap::parse(&text, &name)
    }

    /// This keymap with `user`'s keys winning: each key the user binds loses its old binding.
    pub fn overlaid(mut self, user: Keymap) -> Keymap {
        self.bindings
            .retain(|base| !user.bindings.iter().any(|u| u.key == base.key));
        self.bindings.extend(user.bindings);
        self.origin = format!("{} + {}", self.origin, user.origin);
        self
    }

    pub fn command_for(&self, key: &KeyEvent) -> Option<Command> {
        let wanted = normalise(*key);
        self.bindings
            .iter()
            .find(|b| b.key == wanted)
            .map(|b| b.command)
    }

    /// The keys bound to a command, as the help shows them ("f, enter").
    pub fn keys_for(&self, command: Command) -> Vec<String> {
        self.bindings
            .iter()
            .filter(|b| b.command == command)
            .map(|b| key_label(&b.key))
            .collect()
    }

    /// Help lines, one per command in keymap order: (keys, description).
    pub fn help_lines(&self, read_only: bool) -> Vec<(String, String)> {
        let mut lines: Vec<(String, String)> = Vec::new();
        let mut done: Vec<Command> = Vec::new();
        for binding in &self.bindings {
            if done.contains(&binding.command) || (read_only && binding.command.is_dangerous()) {
                continue;
            }
            done.push(binding.command);
            lines.push((
                self.keys_for(binding.command).join(", "),
                binding.desc.clone(),
            ));
        }
        lines
    }
}

fn parse_command(name: &str) -> Option<Command> {
    Command::ALL
        .iter()
        .copied()
        .find(|c| command_name(*c) == name)
}

pub fn command_name(command: Command) -> &'static str {
    match command {
        Command::MoveUp => "move_up",
        Command::MoveDown => "move_down",
        Command::MoveLeft => "move_left",
        Command::MoveRight => "move_right",
        Command::PageLeft => "page_left",
        Command::PageRight => "page_right",
        Command::PageUp => "page_up",
        Command::PageDown => "page_down",
        Command::FirstRow => "first_row",
        Command::LastRow => "last_row",
        Command::Flip => "flip",
        Command::Mark => "mark",
        Command::Filter => "filter",
        Command::ColumnFilter => "column_filter",
        Command::Environments => "environments",
        Command::ClearFilter => "clear_filter",
        Command::Refresh => "refresh",
        Command::ToggleDetails => "toggle_details",
        Command::AuditLog => "audit_log",
        Command::Help => "help",
        Command::Quit => "quit",
    }
}

/// "ctrl-r", "G", "pagedown", "f5", "?" -> a key event.
pub fn parse_key(text: &str) -> Option<KeyEvent> {
    let mut modifiers = KeyModifiers::NONE;
    let mut rest = text;
    loop {
        if let Some(tail) = rest.strip_prefix("ctrl-").filter(|t| !t.is_empty()) {
            modifiers |= KeyModifiers::CONTROL;
            rest = tail;
        } else if let Some(tail) = rest.strip_prefix("alt-").filter(|t| !t.is_empty()) {
            modifiers |= KeyModifiers::ALT;
            rest = tail;
        } else {
            break;
        }
    }
    let code = match rest {
        "enter" => KeyCode::Enter,
        "esc" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "space" => KeyCode::Char(' '),
        "backspace" => KeyCode::Backspace,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pageup" => KeyCode::PageUp,
        "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        other if other.chars().count() == 1 => KeyCode::Char(other.chars().next()?),
        other => {
            let number: u8 = other.strip_prefix('f')?.parse().ok()?;
            if !(1..=12).contains(&number) {
                return None;
            }
            KeyCode::F(number)
        }
    };
    Some(normalise(KeyEvent::new(code, modifiers)))
}

/// Terminals report "G" as Char('G') with SHIFT; bindings are written without SHIFT.
fn normalise(key: KeyEvent) -> KeyEvent {
    let mut modifiers = key.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT);
    if let KeyCode::Char(c) = key.code {
        if modifiers.contains(KeyModifiers::CONTROL) {
            return KeyEvent::new(KeyCode::Char(c.to_ascii_lowercase()), modifiers);
        }
    } else if key.modifiers.contains(KeyModifiers::SHIFT) && key.code != KeyCode::BackTab {
        modifiers |= KeyModifiers::SHIFT;
    }
    KeyEvent::new(key.code, modifiers)
}

pub fn key_label(key: &KeyEvent) -> String {
    let mut label = String::new();
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        label.push_str("ctrl-");
    }
    if key.modifiers.contains(KeyModifiers::ALT) {
        label.push_str("alt-");
    }
    label.push_str(&match key.code {
        KeyCode::Char(' ') => "space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("f{n}"),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::PageUp => "pageup".into(),
        KeyCode::PageDown => "pagedown".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        other => format!("{other:?}").to_lowercase(),
    });
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn builtin_keymaps_parse_and_bind_every_command() {
        for name in ["default", "vim"] {
            let keymap = Keymap::builtin(name).expect("builtin parses");
            for command in Command::ALL {
                assert!(
                    !keymap.keys_for(*command).is_empty(),
                    "{name} binds {command:?}"
                );
            }
        }
        let vim = Keymap::builtin("vim").expect("vim");
        assert_eq!(
            vim.command_for(&KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(Command::LastRow)
        );
        assert_eq!(
            vim.command_for(&KeyEvent::new(KeyCode::Char('d'), KeyModifiers::CONTROL)),
            Some(Command::PageDown)
        );
    }

    #[test]
    fn user_file_overrides_single_keys() {
        let base = Keymap::builtin("default").expect("default");
        let user = Keymap::parse("[[keys]]\non = \"x\"\nrun = \"flip\"\ndesc = \"Kill\"\n\n[[keys]]\non = \"f\"\nrun = \"filter\"\n", "user.toml")
            .expect("user parses");
        let merged = base.overlaid(user);
        assert_eq!(
            merged.command_for(&key(KeyCode::Char('x'))),
            Some(Command::Flip)
        );
        assert_eq!(
            merged.command_for(&key(KeyCode::Char('f'))),
            Some(Command::Filter)
        );
        assert_eq!(
            merged.command_for(&key(KeyCode::Enter)),
            Some(Command::Flip),
            "untouched keys stay"
        );
        assert_eq!(
            merged.command_for(&key(KeyCode::Char('q'))),
            Some(Command::Quit)
        );
    }

    #[test]
    fn unknown_action_and_key_name_file_and_line() {
        let text = "[[keys]]\non = \"j\"\nrun = \"move_down\"\n\n[[keys]]\non = \"x\"\nrun = \"explode\"\n";
        let err = Keymap::parse(text, "my.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("my.toml:7:"), "{err}");
        assert!(err.contains("unknown action `explode`"), "{err}");
        let text = "[[keys]]\non = [\"j\", \"hyper-j\"]\nrun = \"move_down\"\n";
        let err = Keymap::parse(text, "my.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("my.toml:2:"), "{err}");
        assert!(err.contains("unknown key `hyper-j`"), "{err}");
        let err = Keymap::parse("[[keys]]\non = 3\nrun = \"quit\"\n", "my.toml")
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().starts_with("my.toml:2:"));
    }

    #[test]
    fn help_hides_dangerous_commands_when_read_only() {
        let keymap = Keymap::builtin("default").expect("default");
        let live = keymap.help_lines(false);
        let read_only = keymap.help_lines(true);
        assert!(live.iter().any(|(keys, _)| keys == "f, enter"));
        assert!(!read_only.iter().any(|(keys, _)| keys.contains("enter")));
        // flip and mark (marking only serves a flip).
        assert!(live.iter().any(|(keys, _)| keys == "space"));
        assert!(!read_only.iter().any(|(keys, _)| keys == "space"));
        assert_eq!(live.len(), read_only.len() + 2);
    }

    #[test]
    fn key_names_round_trip() {
        for name in [
            "ctrl-r", "G", "pagedown", "f5", "?", "esc", "space", "alt-x",
        ] {
            let parsed = parse_key(name).expect(name);
            assert_eq!(key_label(&parsed), name);
        }
        assert!(parse_key("f13").is_none());
        assert!(parse_key("ctrl-").is_none());
    }
}
