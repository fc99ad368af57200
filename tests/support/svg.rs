//! A drawn screen as an SVG picture: each run of cells with one style becomes a monospace
//! `<text>` (its background a `<rect>`), colours and bold/dim/underline/reversed as the terminal
//! shows them. Every text goes through the one sanitiser (`text::line`) and XML escaping.
//! `docs/dashboard.svg` is made with it from the dashboard snapshot test's buffer.

use killswitch::text;
use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};

/// Cell size in pixels (a 14 px monospace font).
const CELL_W: f64 = 8.4;
const CELL_H: f64 = 18.0;
const FONT: &str = "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
const BACKGROUND: &str = "#1d1f21";
const FOREGROUND: &str = "#d0d3d0";

/// `&`, `<`, `>`, `"` and `'` as XML entities.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A terminal colour as the picture draws it; `None` is the default.
fn colour(color: Color) -> Option<String> {
    let named = |hex: &str| Some(hex.to_string());
    match color {
        Color::Reset => None,
        Color::Black => named("#1d1f21"),
        Color::Red => named("#cc6666"),
        Color::Green => named("#b5bd68"),
        Color::Yellow => named("#f0c674"),
        Color::Blue => named("#81a2be"),
        Color::Magenta => named("#b294bb"),
        Color::Cyan => named("#8abeb7"),
        Color::Gray => named("#c5c8c6"),
        Color::DarkGray => named("#666666"),
        Color::LightRed => named("#ff7b7b"),
        Color::LightGreen => named("#d0f08a"),
        Color::LightYellow => named("#ffe08a"),
        Color::LightBlue => named("#a5c8ff"),
        Color::LightMagenta => named("#e0b0ff"),
        Color::LightCyan => named("#a8f0e8"),
        Color::White => named("#ffffff"),
        Color::Rgb(r, g, b) => Some(format!("#{r:02x}{g:02x}{b:02x}")),
        Color::Indexed(i) => {
            // The 6x6x6 cube and the grey ramp; the first 16 as their names.
            let i = u32::from(i);
            if i >= 232 {
                let v = 8 + (i - 232) * 10;
                Some(format!("#{v:02x}{v:02x}{v:02x}"))
            } else if i >= 16 {
                let step = |n: u32| if n == 0 { 0 } else { 55 + n * 40 };
                let (r, g, b) = ((i - 16) / 36, ((i - 16) / 6) % 6, (i - 16) % 6);
                Some(format!("#{:02x}{:02x}{:02x}", step(r), step(g), step(b)))
            } else {
                Some(FOREGROUND.to_string())
            }
        }
    }
}

/// How one cell is drawn: (foreground, background, bold, dim, underlined).
type Look = (String, Option<String>, bool, bool, bool);

fn look(cell: &Cell) -> Look {
    let mut fg = colour(cell.fg);
    let mut bg = colour(cell.bg);
    let modifier = cell.modifier;
    if modifier.contains(Modifier::REVERSED) {
        let shown_fg = fg.clone().unwrap_or_else(|| FOREGROUND.to_string());
        fg = Some(bg.unwrap_or_else(|| BACKGROUND.to_string()));
        bg = Some(shown_fg);
    }
    (
        fg.unwrap_or_else(|| FOREGROUND.to_string()),
        bg,
        modifier.contains(Modifier::BOLD),
        modifier.contains(Modifier::DIM),
        modifier.contains(Modifier::UNDERLINED),
    )
}

/// The buffer as a standalone SVG document titled `title`.
pub fn render(buffer: &Buffer, title: &str) -> String {
    let area = buffer.area;
    let width = f64::from(area.width) * CELL_W + 16.0;
    let height = f64::from(area.height) * CELL_H + 16.0;
    let mut out = String::new();
    out.push_str(&format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"{FONT}\" font-size=\"14\">\n"
    ));
    out.push_str(&format!(
        "<title>{}</title>\n",
        xml_escape(&text::line(title))
    ));
    out.push_str(&format!(
        "<rect width=\"100%\" height=\"100%\" rx=\"6\" fill=\"{BACKGROUND}\"/>\n"
    ));
    out.push_str("<g transform=\"translate(8 8)\">\n");
    for y in area.top()..area.bottom() {
        let mut x = area.left();
        while x < area.right() {
            let first = look(&buffer[(x, y)]);
            let start = x;
            while x < area.right() && look(&buffer[(x, y)]) == first {
                x += 1;
            }
            let cells = f64::from(x - start);
            let (fg, bg, bold, dim, underlined) = &first;
            let left = f64::from(start - area.left()) * CELL_W;
            let top = f64::from(y - area.top()) * CELL_H;
            if let Some(bg) = bg {
                out.push_str(&format!(
                    "<rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{CELL_H:.1}\" fill=\"{bg}\"/>\n",
                    cells * CELL_W
                ));
            }
            let mut attributes = format!("fill=\"{fg}\"");
            if *bold {
                attributes.push_str(" font-weight=\"bold\"");
            }
            if *dim {
                attributes.push_str(" opacity=\"0.6\"");
            }
            if *underlined {
                attributes.push_str(" text-decoration=\"underline\"");
            }
            // One <text> per stretch of non-blank cells, placed at its own cell: viewers that
            // collapse blanks cannot shift anything.
            let symbols: Vec<&str> = (start..x).map(|col| buffer[(col, y)].symbol()).collect();
            let mut col = 0;
            while col < symbols.len() {
                if symbols[col].trim().is_empty() {
                    col += 1;
                    continue;
                }
                let from = col;
                while col < symbols.len() && !symbols[col].trim().is_empty() {
                    col += 1;
                }
                let words: String = symbols[from..col].concat();
                out.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" textLength=\"{:.1}\" lengthAdjust=\"spacingAndGlyphs\" {attributes}>{}</text>\n",
                    left + from as f64 * CELL_W,
                    top + CELL_H * 0.75,
                    (col - from) as f64 * CELL_W,
                    xml_escape(&text::line(&words))
                ));
            }
        }
    }
    out.push_str("</g>\n</svg>\n");
    out
}
