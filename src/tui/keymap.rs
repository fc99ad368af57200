//! Keymaps: `keymaps/*.toml` -> per mode, key -> command, and the help and hints generated
//! from them.
//!
//! A keymap file has one section per mode, yazi style: `[dashboard]`, `[filter]`,
//! `[column_filter]`, `[environments]`, `[dialog]`, `[audit]`, each a `keymap = [ { on, run,
//! desc }, … ]` list. The base keymap is `default` or `vim` (embedded) or a file; a user file
//! overrides single keys per mode. An old flat file (`[[keys]]`) is read as `[dashboard]`.
//! Errors name the file, line and key.
//!
//! Each mode's commands are one enum declared with [`commands!`]: a variant, its help text
//! and (optionally) its hint-line label, in one line. Names come from serde
//! (`rename_all = "snake_case"`): nothing else lists them.
//!
//! - A new command in a mode: one line in that mode's `commands!` enum, one entry in that
//!   section of each shipped keymap (`keymaps/default.toml`, `keymaps/vim.toml`); the compiler
//!   then asks for its arm where the mode's keys are handled (`app::command_effects` for the
//!   dashboard, `app::input` for the others). Help, hints and the keymap docs' check follow.
//! - A new mode: one `commands!` enum, one line in `sections!` (field, `[section]` and help
//!   line), a section in each shipped keymap, its lookup in `app::input` and its hint in
//!   `view::status_bar::hint_line`. docs/keymaps.md says the same with an example.

use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IntoDeserializer};

use crate::config::location_of;

pub const DEFAULT: &str = include_str!("../../keymaps/default.toml");
pub const VIM: &str = include_str!("../../keymaps/vim.toml");

/// The label of a command on the hint line, and how long it stays there when the line is too
/// narrow (lower goes first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    pub label: &'static str,
    pub keep: u8,
}

/// What every mode's command enum offers; [`commands!`] implements it.
pub trait Commands: DeserializeOwned + Copy + Eq + std::fmt::Debug + 'static {
    /// The default help text (a keymap entry's `desc` replaces it).
    fn description(self) -> &'static str;
    /// The label on the hint line, if the command is shown there.
    fn hint(self) -> Option<Hint>;
    /// Changes flags: not offered (nor shown) in read-only mode.
    fn is_dangerous(self) -> bool;

    /// The name in keymap files (`move_up`), from the serde derive.
    fn name(self) -> &'static str {
        names::<Self>()
            .iter()
            .copied()
            .find(|name| parse::<Self>(name) == Some(self))
            .unwrap_or("?")
    }

    /// Every command, in declaration order.
    fn all() -> Vec<Self> {
        names::<Self>()
            .iter()
            .filter_map(|name| parse::<Self>(name))
            .collect()
    }
}

/// Declares one mode's command enum. An entry is `Variant => "help text"`, optionally followed
/// by `, hint("label", keep)` (shown on the hint line); `#[dangerous]` before it marks a
/// command that changes flags.
macro_rules! commands {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$danger:ident])? $variant:ident => $desc:literal
               $(, hint($label:literal, $keep:literal))? ; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $variant, )*
        }

        impl Commands for $name {
            fn description(self) -> &'static str {
                match self {
                    $( $name::$variant => $desc, )*
                }
            }
            fn hint(self) -> Option<Hint> {
                match self {
                    $( $name::$variant => commands!(@hint $( $label, $keep )?), )*
                }
            }
            fn is_dangerous(self) -> bool {
                match self {
                    $( $name::$variant => commands!(@danger $( $danger )?), )*
                }
            }
        }
    };
    (@hint) => { None };
    (@hint $label:literal, $keep:literal) => { Some(Hint { label: $label, keep: $keep }) };
    (@danger) => { false };
    (@danger dangerous) => { true };
}

commands! {
    /// Everything a key can ask for on the dashboard (`[dashboard]`).
    pub enum Command {
        MoveUp => "Previous flag";
        MoveDown => "Next flag";
        MoveLeft => "Previous environment";
        MoveRight => "Next environment";
        PageLeft => "Page environment columns left";
        PageRight => "Page environment columns right";
        PageUp => "Page up";
        PageDown => "Page down";
        FirstRow => "First flag";
        LastRow => "Last flag";
        #[dangerous] Flip => "Kill / restore the selected cell (note + confirmation)", hint("kill/restore", 9);
        #[dangerous] Rollout => "Roll out the selected cell to a percentage (or everyone to one variant)";
        #[dangerous] Undo => "Undo killswitch's last change of the selected cell (refused if it moved since)";
        #[dangerous] Mark => "Mark / unmark the cell (flip acts on all marked)";
        Filter => "Fuzzy filter flags", hint("filter", 8);
        ColumnFilter => "Filter environment columns (prod*, eu, a group name)", hint("columns", 7);
        ClearFilter => "Clear the flag and column filters and the marks";
        Environments => "Every environment's state (enter jumps to its column)", hint("envs", 6);
        AuditLog => "Audit log and vendor history of the selected flag", hint("audit", 3);
        Refresh => "Reload every environment", hint("refresh", 2);
        ToggleDetails => "Show / hide the details pane", hint("details", 1);
        Help => "Help", hint("help", 10);
        Quit => "Quit", hint("quit", 4);
    }
}

commands! {
    /// Keys while typing the flag filter (`[filter]`); keys bound to nothing edit the line.
    pub enum FilterCommand {
        Accept => "Keep the filter and go back to the dashboard", hint("keep", 2);
        Cancel => "Clear the filter and go back", hint("clear", 2);
        MoveUp => "Previous flag";
        MoveDown => "Next flag";
    }
}

commands! {
    /// Keys while typing the column filter (`[column_filter]`); keys bound to nothing edit the
    /// line.
    pub enum ColumnFilterCommand {
        Accept => "Keep the column filter and go back to the dashboard", hint("keep", 2);
        Cancel => "Clear the column filter and go back", hint("clear", 2);
        MoveLeft => "Previous environment";
        MoveRight => "Next environment";
    }
}

commands! {
    /// Keys in the list of every environment (`[environments]`); keys bound to nothing close it.
    pub enum ListCommand {
        MoveDown => "Next environment", hint("move", 2);
        MoveUp => "Previous environment", hint("move", 2);
        First => "First environment";
        Last => "Last environment";
        Jump => "Go to that environment's column (clears a column filter that hides it)", hint("go to that column", 2);
        Close => "Close the list";
    }
}

commands! {
    /// Keys in the flip dialog (`[dialog]`). While the note or a protected environment's name
    /// is typed, character keys are text (in the confirmation, `help`'s still open the help).
    pub enum DialogCommand {
        Accept => "Next step; apply once the name is typed; close the result";
        Yes => "Apply (the y/n confirmation of an unprotected environment)";
        No => "Cancel at the y/n confirmation";
        Back => "From the confirmation back to the note (backspace: when the field is empty)";
        Help => "This help, then back to the dialog";
        Cancel => "Cancel: nothing changes (the note is kept as a draft); close the result";
        Close => "Close the result";
        NextStep => "Rollout target: the next of [rollout] steps (variants: the one above)";
        PreviousStep => "Rollout target: the previous step (variants: the one below)";
    }
}

commands! {
    /// Keys in the audit view (`[audit]`); keys bound to nothing do nothing.
    pub enum AuditCommand {
        ScrollDown => "Scroll down a line", hint("scroll", 2);
        ScrollUp => "Scroll up a line", hint("scroll", 2);
        PageDown => "Scroll down a page", hint("page", 2);
        PageUp => "Scroll up a page", hint("page", 2);
        Top => "The top", hint("top/end", 2);
        Bottom => "The end", hint("top/end", 2);
        Close => "Close the audit view", hint("close", 2);
    }
}

/// The serde names of `C`'s variants (`rename_all` applied), read from its derive.
pub fn names<C: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::value::Error;
    use serde::de::{Error as _, Visitor};

    /// A deserializer that only records the variant list serde hands to `deserialize_enum`.
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Error> {
            Err(Error::custom("not an enum"))
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _name: &'static str,
            variants: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Error> {
            *self.0 = variants;
            Err(Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
            ignored_any
        }
    }
    let mut names: &'static [&'static str] = &[];
    let _ = C::deserialize(Probe(&mut names));
    names
}

/// The command named `name` in keymap files, through the serde derive.
pub fn parse<C: DeserializeOwned>(name: &str) -> Option<C> {
    C::deserialize(IntoDeserializer::<serde::de::value::Error>::into_deserializer(name)).ok()
}

/// One key binding, with the help text the keymap file gave it (`desc`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding<C> {
    pub key: KeyEvent,
    pub command: C,
    pub desc: Option<String>,
}

/// One mode's bindings, in keymap order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer<C> {
    pub bindings: Vec<Binding<C>>,
}

impl<C> Default for Layer<C> {
    fn default() -> Self {
        Layer {
            bindings: Vec::new(),
        }
    }
}

impl<C: Commands> Layer<C> {
    pub fn command_for(&self, key: &KeyEvent) -> Option<C> {
        let wanted = normalise(*key);
        self.bindings
            .iter()
            .find(|b| b.key == wanted)
            .map(|b| b.command)
    }

    /// The keys bound to a command, in keymap order.
    pub fn keys(&self, command: C) -> impl Iterator<Item = &KeyEvent> {
        self.bindings
            .iter()
            .filter(move |b| b.command == command)
            .map(|b| &b.key)
    }

    /// The keys bound to a command, as the help shows them ("f", "enter").
    pub fn keys_for(&self, command: C) -> Vec<String> {
        self.keys(command).map(key_label).collect()
    }

    /// A command's help text: the `desc` of its last binding that has one (a user file's
    /// wins over the base's), else the command's own description.
    pub fn desc(&self, command: C) -> &str {
        self.bindings
            .iter()
            .rev()
            .filter(|b| b.command == command)
            .find_map(|b| b.desc.as_deref())
            .unwrap_or(command.description())
    }

    /// Help lines, one per command in keymap order: (keys, description).
    pub fn help_lines(&self, read_only: bool) -> Vec<(String, String)> {
        let mut lines = Vec::new();
        let mut done: Vec<C> = Vec::new();
        for binding in &self.bindings {
            if done.contains(&binding.command) || (read_only && binding.command.is_dangerous()) {
                continue;
            }
            done.push(binding.command);
            lines.push((
                self.keys_for(binding.command).join(", "),
                self.desc(binding.command).to_string(),
            ));
        }
        lines
    }

    /// The hint line's items for the commands `offered` (in declaration order): the first key
    /// of each, commands with the same label joined (`j/k: move`), each with its label and how
    /// long it is kept.
    pub fn hints(&self, offered: impl Fn(C) -> bool) -> Vec<(String, Hint)> {
        let mut items: Vec<(Vec<String>, Hint)> = Vec::new();
        for command in C::all() {
            let Some(hint) = command.hint() else { continue };
            if !offered(command) {
                continue;
            }
            let Some(key) = self.keys(command).next() else {
                continue;
            };
            let key = key_display(key);
            match items.iter_mut().find(|(_, h)| h.label == hint.label) {
                Some((keys, _)) => keys.push(key),
                None => items.push((vec![key], hint)),
            }
        }
        items
            .into_iter()
            .map(|(keys, hint)| (keys.join("/"), hint))
            .collect()
    }

    /// This mode in short: each command's keys and name (`enter accept`, `j/down move down`),
    /// in declaration order.
    pub fn summary(&self, read_only: bool) -> Vec<String> {
        C::all()
            .into_iter()
            .filter(|command| !(read_only && command.is_dangerous()))
            .filter_map(|command| {
                let keys: Vec<String> = self.keys(command).map(key_label).collect();
                (!keys.is_empty())
                    .then(|| format!("{} {}", keys.join("/"), command.name().replace('_', " ")))
            })
            .collect()
    }

    /// `user`'s keys win: each key the user binds loses its old binding.
    fn overlay(&mut self, user: Layer<C>) {
        self.bindings
            .retain(|base| !user.bindings.iter().any(|u| u.key == base.key));
        self.bindings.extend(user.bindings);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct KeymapError {
    pub location: String,
    pub message: String,
}

/// Declares the keymap's sections: each becomes a field of [`Keymap`] (a [`Layer`] of its
/// command enum), a `[section]` a keymap file may have, an entry of [`SECTIONS`], and a line
/// of the help (titled as given).
macro_rules! sections {
    ( $( $(#[$doc:meta])* $field:ident: $commands:ty => $title:literal, )* ) => {
        /// The active keymap: one layer per mode.
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct Keymap {
            /// Where it came from, for the help screen ("default", "vim + ~/.config/.../keymap.toml").
            pub origin: String,
            $( $(#[$doc])* pub $field: Layer<$commands>, )*
        }

        /// The sections a keymap file may have.
        pub const SECTIONS: &[&str] = &[ $( stringify!($field), )* ];

        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct KeymapFile {
            /// The flat format before sections: dashboard keys.
            #[serde(default)]
            keys: Option<toml::Spanned<Vec<toml::Spanned<Entry>>>>,
            $( $field: Option<Section>, )*
        }

        impl Keymap {
            /// Every section of a parsed file, each checked (see [`layer`]).
            fn from_file_sections(
                file: &KeymapFile,
                name: &str,
                text: &str,
            ) -> Result<Keymap, KeymapError> {
                Ok(Keymap {
                    origin: name.to_string(),
                    $( $field: layer(entries(&file.$field), stringify!($field), name, text)?, )*
                })
            }

            /// Each section's keys from `user` win over this keymap's in that section.
            fn overlay_sections(&mut self, user: Keymap) {
                $( self.$field.overlay(user.$field); )*
            }

            /// Every section in short, in declaration order: (section, help title, each
            /// command's keys and name).
            pub fn summaries(&self, read_only: bool) -> Vec<(&'static str, &'static str, Vec<String>)> {
                vec![ $( (stringify!($field), $title, self.$field.summary(read_only)), )* ]
            }
        }
    };
}

sections! {
    /// `[dashboard]` (an old flat file's `[[keys]]`).
    dashboard: Command => "dashboard",
    /// `[filter]`: typing the flag filter.
    filter: FilterCommand => "filter /",
    /// `[column_filter]`: typing the column filter.
    column_filter: ColumnFilterCommand => "columns :",
    /// `[environments]`: the list of every environment.
    environments: ListCommand => "env list",
    /// `[dialog]`: the flip dialog.
    dialog: DialogCommand => "flip dialog",
    /// `[audit]`: the audit and vendor-history view.
    audit: AuditCommand => "audit view",
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    keymap: Vec<toml::Spanned<Entry>>,
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

/// Reads one section's entries into a layer: unknown actions and keys, and a key bound twice
/// in the section, are errors naming the file, line, section and key.
fn layer<C: Commands>(
    entries: &[toml::Spanned<Entry>],
    section: &str,
    name: &str,
    text: &str,
) -> Result<Layer<C>, KeymapError> {
    let at = |offset: usize| location_of(name, text, Some(offset));
    let mut bindings: Vec<Binding<C>> = Vec::new();
    // Where each key was bound, for the "bound twice" error.
    let mut lines: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.get_ref();
        let run = entry.run.get_ref();
        let command = parse::<C>(run).ok_or_else(|| KeymapError {
            location: at(entry.run.span().start),
            message: format!(
                "unknown action `{}` in [{section}]{} (known there: {})",
                crate::text::line(run),
                crate::text::did_you_mean(run, names::<C>().iter().copied()),
                names::<C>().join(", ")
            ),
        })?;
        let keys = match entry.on.get_ref() {
            Keys::One(key) => vec![key.clone()],
            Keys::Many(keys) => keys.clone(),
        };
        let on = at(entry.on.span().start);
        if keys.is_empty() {
            return Err(KeymapError {
                location: on,
                message: format!("no key given for `{run}` in [{section}]"),
            });
        }
        for key in keys {
            let event = parse_key(&key).ok_or_else(|| KeymapError {
                location: on.clone(),
                message: format!(
                    "unknown key `{}` (use a character, or names like enter, esc, up, pagedown, f5, ctrl-r)",
                    crate::text::line(&key)
                ),
            })?;
            if section.ends_with("filter") && is_text_key(&event) {
                // In the filters every character is typed: such a key would never act.
                return Err(KeymapError {
                    location: on.clone(),
                    message: format!(
                        "key `{}` in [{section}] would be typed into the filter, never act: \
                         bind a named key (enter, up, f2) or ctrl-/alt-<key>",
                        key_label(&event)
                    ),
                });
            }
            if let Some(index) = bindings.iter().position(|b| b.key == event) {
                return Err(KeymapError {
                    location: on.clone(),
                    message: format!(
                        "key `{}` is bound twice in [{section}]: to `{}` (at {}) and to `{}`; keep one",
                        key_label(&event),
                        bindings[index].command.name(),
                        lines[index],
                        command.name()
                    ),
                });
            }
            bindings.push(Binding {
                key: event,
                command,
                desc: entry.desc.clone(),
            });
            lines.push(on.clone());
        }
    }
    Ok(Layer { bindings })
}

/// A section's entries (none when the file leaves the section out).
fn entries(section: &Option<Section>) -> &[toml::Spanned<Entry>] {
    section.as_ref().map_or(&[], |section| &section.keymap)
}

impl Keymap {
    /// Parses one keymap file's text; `name` is used in errors ("keymaps/vim.toml"). Sections
    /// a file leaves out are empty (a user file overlays only what it has).
    pub fn parse(text: &str, name: &str) -> Result<Keymap, KeymapError> {
        let file: KeymapFile = toml::from_str(text).map_err(|err| KeymapError {
            location: location_of(name, text, err.span().map(|s| s.start)),
            message: err.message().to_string(),
        })?;
        let mut keymap = Keymap::from_file_sections(&file, name, text)?;
        if let Some(keys) = &file.keys {
            if file.dashboard.is_some() {
                return Err(KeymapError {
                    location: location_of(name, text, Some(keys.span().start)),
                    message: "both `[[keys]]` (the old flat format) and `[dashboard]`: move \
                              the [[keys]] entries into [dashboard] keymap = [ … ]"
                        .to_string(),
                });
            }
            keymap.dashboard = layer(keys.get_ref(), "dashboard", name, text)?;
        }
        Ok(keymap)
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

    /// This keymap with `user`'s keys winning, per mode: each key the user binds in a section
    /// loses its old binding in that section.
    pub fn overlaid(mut self, user: Keymap) -> Keymap {
        self.origin = format!("{} + {}", self.origin, user.origin);
        self.overlay_sections(user);
        self
    }

    /// The dashboard command a key means.
    pub fn command_for(&self, key: &KeyEvent) -> Option<Command> {
        self.dashboard.command_for(key)
    }

    /// The keys bound to a dashboard command, as the help shows them ("f", "enter").
    pub fn keys_for(&self, command: Command) -> Vec<String> {
        self.dashboard.keys_for(command)
    }

    /// The dashboard's help lines, one per command in keymap order: (keys, description).
    pub fn help_lines(&self, read_only: bool) -> Vec<(String, String)> {
        self.dashboard.help_lines(read_only)
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

/// A key that types a character into a field: no ctrl or alt.
pub fn is_text_key(key: &KeyEvent) -> bool {
    matches!(key.code, KeyCode::Char(_))
        && !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
}

/// A key as hint lines show it: `Enter`, `Esc`, `Shift-Tab`, `PgDn`, `F1`, `Ctrl-r`, `j`.
pub fn key_display(key: &KeyEvent) -> String {
    let mut label = String::new();
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        label.push_str("Ctrl-");
    }
    if key.modifiers.contains(KeyModifiers::ALT) {
        label.push_str("Alt-");
    }
    label.push_str(&match key.code {
        KeyCode::Char(' ') => "Space".to_string(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::F(n) => format!("F{n}"),
        KeyCode::Enter => "Enter".into(),
        KeyCode::Esc => "Esc".into(),
        KeyCode::Tab => "Tab".into(),
        KeyCode::BackTab => "Shift-Tab".into(),
        KeyCode::Backspace => "Backspace".into(),
        KeyCode::Up => "↑".into(),
        KeyCode::Down => "↓".into(),
        KeyCode::Left => "←".into(),
        KeyCode::Right => "→".into(),
        KeyCode::PageUp => "PgUp".into(),
        KeyCode::PageDown => "PgDn".into(),
        KeyCode::Home => "Home".into(),
        KeyCode::End => "End".into(),
        other => key_label(&KeyEvent::new(other, KeyModifiers::NONE)),
    });
    label
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn error(text: &str) -> String {
        Keymap::parse(text, "my.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    /// Every command of `C` has a key in `layer`.
    fn binds_all<C: Commands>(layer: &Layer<C>, what: &str) {
        for command in C::all() {
            assert!(
                layer.keys(command).next().is_some(),
                "{what} binds {command:?}"
            );
        }
    }

    #[test]
    fn names_come_from_the_serde_derive() {
        assert_eq!(Command::Flip.name(), "flip");
        assert_eq!(Command::ToggleDetails.name(), "toggle_details");
        assert_eq!(parse::<Command>("audit_log"), Some(Command::AuditLog));
        assert_eq!(parse::<Command>("AuditLog"), None);
        assert_eq!(Command::all().len(), 23);
        assert_eq!(names::<DialogCommand>().len(), 9);
        assert_eq!(DialogCommand::Back.name(), "back");
        assert_eq!(AuditCommand::all().first(), Some(&AuditCommand::ScrollDown));
        for command in Command::all() {
            assert_eq!(parse::<Command>(command.name()), Some(command));
            assert!(!command.description().is_empty());
        }
    }

    #[test]
    fn builtin_keymaps_parse_and_bind_every_command_of_every_mode() {
        for name in ["default", "vim"] {
            let keymap = Keymap::builtin(name).expect("builtin parses");
            binds_all(&keymap.dashboard, name);
            binds_all(&keymap.filter, name);
            binds_all(&keymap.column_filter, name);
            binds_all(&keymap.environments, name);
            binds_all(&keymap.dialog, name);
            binds_all(&keymap.audit, name);
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
        let default = Keymap::builtin("default").expect("default");
        assert_eq!(
            default
                .dialog
                .command_for(&KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(DialogCommand::Back)
        );
        assert_eq!(
            default
                .audit
                .command_for(&KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT)),
            Some(AuditCommand::Bottom)
        );
    }

    #[test]
    fn the_shipped_descriptions_are_the_commands_own() {
        // default.toml gives no desc: the help text is the enum's description.
        let default = Keymap::builtin("default").expect("default");
        assert!(default.dashboard.bindings.iter().all(|b| b.desc.is_none()));
        assert_eq!(
            default.dashboard.desc(Command::Flip),
            Command::Flip.description()
        );
        // vim says what its page keys do differently.
        let vim = Keymap::builtin("vim").expect("vim");
        assert!(
            vim.dashboard
                .help_lines(false)
                .iter()
                .any(|(keys, desc)| keys == "ctrl-d, pagedown" && desc == "Half page down")
        );
    }

    #[test]
    fn user_file_overrides_single_keys_per_mode() {
        let base = Keymap::builtin("default").expect("default");
        let user = Keymap::parse(
            "[dashboard]\nkeymap = [\n  { on = \"x\", run = \"flip\", desc = \"Kill\" },\n  { on = \"f\", run = \"filter\" },\n]\n\n[dialog]\nkeymap = [ { on = \"ctrl-y\", run = \"yes\" } ]\n",
            "user.toml",
        )
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
        let ctrl_y = KeyEvent::new(KeyCode::Char('y'), KeyModifiers::CONTROL);
        assert_eq!(merged.dialog.command_for(&ctrl_y), Some(DialogCommand::Yes));
        assert_eq!(
            merged.dialog.command_for(&key(KeyCode::Char('y'))),
            Some(DialogCommand::Yes),
            "the dialog's other keys stay"
        );
        assert_eq!(
            merged.audit.command_for(&key(KeyCode::Esc)),
            Some(AuditCommand::Close),
            "a mode the user file leaves out is the base's"
        );
        assert_eq!(merged.origin, "keymaps/default.toml + user.toml");
    }

    #[test]
    fn an_old_flat_file_is_the_dashboard_section() {
        let old = "[[keys]]\non = \"x\"\nrun = \"flip\"\ndesc = \"Kill\"\n\n[[keys]]\non = [\"j\", \"down\"]\nrun = \"move_down\"\n";
        let keymap = Keymap::parse(old, "old.toml").expect("the old format still loads");
        assert_eq!(
            keymap.command_for(&key(KeyCode::Char('x'))),
            Some(Command::Flip)
        );
        assert_eq!(keymap.keys_for(Command::MoveDown), ["j", "down"]);
        assert!(keymap.dialog.bindings.is_empty());
        let both = format!("{old}\n[dashboard]\nkeymap = []\n");
        let err = error(&both);
        assert!(err.starts_with("my.toml:1:"), "{err}");
        assert!(
            err.contains("move the [[keys]] entries into [dashboard]"),
            "{err}"
        );
    }

    #[test]
    fn unknown_action_and_key_name_file_line_and_mode() {
        let text = "[dashboard]\nkeymap = [\n  { on = \"j\", run = \"move_down\" },\n  { on = \"x\", run = \"explode\" },\n]\n";
        let err = error(text);
        assert!(err.starts_with("my.toml:4:"), "{err}");
        assert!(
            err.contains("unknown action `explode` in [dashboard]"),
            "{err}"
        );
        // An action of another mode is unknown in this one, with a suggestion.
        let err = error("[dialog]\nkeymap = [ { on = \"x\", run = \"flipp\" } ]\n");
        assert!(err.starts_with("my.toml:2:"), "{err}");
        assert!(err.contains("unknown action `flipp` in [dialog]"), "{err}");
        assert!(
            err.contains("known there: accept, yes, no, back, help, cancel, close"),
            "{err}"
        );
        let err = error("[audit]\nkeymap = [ { on = \"x\", run = \"scrol_up\" } ]\n");
        assert!(err.contains("did you mean `scroll_up`?"), "{err}");
        let err = error(
            "[dashboard]\nkeymap = [\n  { on = [\"j\", \"hyper-j\"], run = \"move_down\" },\n]\n",
        );
        assert!(err.starts_with("my.toml:3:"), "{err}");
        assert!(err.contains("unknown key `hyper-j`"), "{err}");
        let err = error("[dashboard]\nkeymap = [ { on = 3, run = \"quit\" } ]\n");
        assert!(err.starts_with("my.toml:2:"), "{err}");
        let err = error("[dashbord]\nkeymap = []\n");
        assert!(err.starts_with("my.toml:1:"), "{err}");
        assert!(err.contains("dashbord"), "{err}");
        let err = error("[[keys]]\non = \"j\"\nrun = \"explode\"\n");
        assert!(err.starts_with("my.toml:3:"), "{err}");
    }

    #[test]
    fn a_key_bound_twice_in_one_mode_is_an_error_naming_it() {
        let text = "[dashboard]\nkeymap = [\n  { on = \"x\", run = \"flip\" },\n  { on = [\"r\", \"x\"], run = \"refresh\" },\n]\n";
        let err = error(text);
        assert!(err.starts_with("my.toml:4:"), "{err}");
        assert!(
            err.contains("key `x` is bound twice in [dashboard]: to `flip` (at my.toml:3:"),
            "{err}"
        );
        assert!(err.contains("and to `refresh`"), "{err}");
        // The same key in two modes is fine.
        let text = "[dashboard]\nkeymap = [ { on = \"x\", run = \"flip\" } ]\n[audit]\nkeymap = [ { on = \"x\", run = \"close\" } ]\n";
        assert!(Keymap::parse(text, "my.toml").is_ok());
        // A character in a filter would be typed, never act.
        let err = error("[filter]\nkeymap = [ { on = \"q\", run = \"cancel\" } ]\n");
        assert!(err.starts_with("my.toml:2:"), "{err}");
        assert!(err.contains("key `q` in [filter] would be typed"), "{err}");
    }

    #[test]
    fn help_hides_dangerous_commands_when_read_only() {
        let keymap = Keymap::builtin("default").expect("default");
        let live = keymap.help_lines(false);
        let read_only = keymap.help_lines(true);
        assert!(live.iter().any(|(keys, _)| keys == "f, enter"));
        assert!(!read_only.iter().any(|(keys, _)| keys.contains("enter")));
        // flip, rollout, undo and mark (marking only serves a flip).
        assert!(live.iter().any(|(keys, _)| keys == "space"));
        assert!(!read_only.iter().any(|(keys, _)| keys == "space"));
        assert!(live.iter().any(|(keys, _)| keys == "p"));
        assert!(!read_only.iter().any(|(keys, _)| keys == "p"));
        assert!(live.iter().any(|(keys, _)| keys == "u"));
        assert!(!read_only.iter().any(|(keys, _)| keys == "u"));
        assert_eq!(live.len(), read_only.len() + 4);
    }

    #[test]
    fn hints_follow_the_keymap_and_join_commands_with_one_label() {
        let keymap = Keymap::builtin("default").expect("default");
        let hints: Vec<String> = keymap
            .audit
            .hints(|_| true)
            .into_iter()
            .map(|(keys, hint)| format!("{keys}: {}", hint.label))
            .collect();
        assert_eq!(
            hints,
            [
                "j/k: scroll",
                "PgDn/PgUp: page",
                "g/G: top/end",
                "Esc: close"
            ]
        );
        let user = Keymap::parse(
            "[audit]\nkeymap = [ { on = \"ctrl-x\", run = \"close\" } ]\n",
            "user.toml",
        )
        .expect("parses");
        // Bound first, the user's key leads the hint.
        let mut merged = keymap.overlaid(user);
        merged.audit.bindings.rotate_right(1);
        let close = merged.audit.hints(|command| command == AuditCommand::Close);
        assert_eq!(close.first().map(|(keys, _)| keys.as_str()), Some("Ctrl-x"));
    }

    /// The table rows of docs/keymaps.md under the heading naming `[section]`: each action of
    /// the section is in one (a row naming another section in its first cell does not count).
    fn documented<C: Commands>(doc: &str, section: &str) -> Vec<&'static str> {
        let tag = format!("`[{section}]`");
        let block: Vec<&str> = doc
            .split("\n### ")
            .filter(|block| block.lines().next().is_some_and(|h| h.contains(&tag)))
            .flat_map(|block| block.lines())
            .filter(|line| line.starts_with('|'))
            .filter(|line| {
                let first = line.split('|').nth(1).unwrap_or_default();
                !first.contains("`[") || first.contains(&tag)
            })
            .collect();
        names::<C>()
            .iter()
            .copied()
            .filter(|name| !block.iter().any(|line| line.contains(&format!("`{name}`"))))
            .collect()
    }

    #[test]
    fn the_keymap_docs_list_every_action() {
        let doc = include_str!("../../docs/keymaps.md");
        let missing = [
            ("dashboard", documented::<Command>(doc, "dashboard")),
            ("filter", documented::<FilterCommand>(doc, "filter")),
            (
                "column_filter",
                documented::<ColumnFilterCommand>(doc, "column_filter"),
            ),
            (
                "environments",
                documented::<ListCommand>(doc, "environments"),
            ),
            ("dialog", documented::<DialogCommand>(doc, "dialog")),
            ("audit", documented::<AuditCommand>(doc, "audit")),
        ];
        for (section, missing) in missing {
            assert!(
                missing.is_empty(),
                "docs/keymaps.md does not list {missing:?} under [{section}]"
            );
        }
        for section in SECTIONS {
            assert!(
                doc.contains(&format!("`[{section}]`")),
                "{section} documented"
            );
        }
    }

    #[test]
    fn key_names_round_trip() {
        for name in [
            "ctrl-r", "G", "pagedown", "f5", "?", "esc", "space", "alt-x", "backtab",
        ] {
            let parsed = parse_key(name).expect(name);
            assert_eq!(key_label(&parsed), name);
        }
        assert!(parse_key("f13").is_none());
        assert!(parse_key("ctrl-").is_none());
        assert_eq!(key_display(&key(KeyCode::BackTab)), "Shift-Tab");
        assert_eq!(key_display(&key(KeyCode::F(1))), "F1");
    }
}
