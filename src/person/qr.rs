//! The sign-in link as a QR code a phone can scan off the terminal, drawn with Unicode half
//! blocks: two rows of modules per line of text, `█` (both light), `▀` (upper light), `▄` (lower
//! light) and a space (both dark), inside a quiet zone of [`QUIET`] modules.
//!
//! The blocks are drawn in the terminal's text colour and the blanks show its background, so
//! the modules to draw are the light ones on a light-on-dark terminal (as `qrencode -t UTF8`
//! does; the quiet zone is drawn too) and the dark ones on a dark-on-light terminal. Which one a
//! terminal is can only be guessed: `COLORFGBG` (set by rxvt, Konsole, iTerm2 and others) tells;
//! without it, light-on-dark. Drawn the wrong way round the code comes out inverted, which some
//! phone readers cannot scan (the link is printed above it). The encoder is the `qrcodegen`
//! crate; this module only draws.

use qrcodegen::{QrCode, QrCodeEcc};

/// Width of the light border around the code, in modules.
pub const QUIET: usize = 2;

/// Indentation of every line of the drawing, to line up with the instructions.
pub const INDENT: &str = "  ";

/// The QR code of `text`, with the smallest version that holds it (the error correction is
/// raised as far as that version allows). `None` when the text is too long for any version.
pub fn encode(text: &str) -> Option<QrCode> {
    QrCode::encode_text(text, QrCodeEcc::Low).ok()
}

/// Columns the drawing of `code` takes, indentation and quiet zone included.
pub fn width(code: &QrCode) -> usize {
    INDENT.len() + side(code)
}

/// Modules along one side, quiet zone included.
fn side(code: &QrCode) -> usize {
    code.size() as usize + 2 * QUIET
}

/// Which modules the blocks stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ink {
    /// Blocks are light modules: for light text on a dark background.
    Light,
    /// Blocks are dark modules: for dark text on a light background.
    Dark,
}

/// The ink for the terminal: [`Ink::Dark`] when `COLORFGBG` (`"FG;BG"` or `"FG;default;BG"`)
/// names a light background (colour 7 or 15), else [`Ink::Light`].
pub fn ink(env: &dyn Fn(&str) -> Option<String>) -> Ink {
    let bg = env("COLORFGBG").and_then(|v| v.rsplit(';').next()?.trim().parse::<u8>().ok());
    match bg {
        Some(7 | 15) => Ink::Dark,
        _ => Ink::Light,
    }
}

/// Whether module (`x`, `y`) of the drawing (quiet zone included, so (0, 0) is the quiet zone's
/// corner) is light. Outside the code (the quiet zone) every module is light.
fn light(code: &QrCode, x: usize, y: usize) -> bool {
    let (cx, cy) = (x as i32 - QUIET as i32, y as i32 - QUIET as i32);
    // qrcodegen answers "light" (false) for coordinates outside the code.
    !code.get_module(cx, cy)
}

/// The drawing: one line per two rows of modules, each ending in `\n`. The number of rows is
/// odd, so the last line's lower halves are blank.
pub fn draw(code: &QrCode, ink: Ink) -> String {
    let n = side(code);
    let inked = |x: usize, y: usize| light(code, x, y) == (ink == Ink::Light);
    let mut out = String::with_capacity(n.div_ceil(2) * (INDENT.len() + 3 * n + 1));
    for top in (0..n).step_by(2) {
        out.push_str(INDENT);
        for x in 0..n {
            let upper = inked(x, top);
            let lower = top + 1 < n && inked(x, top + 1);
            out.push(match (upper, lower) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out
}

/// Whether to draw the code: `forced` (`--qr`/`--no-qr`) decides when given; otherwise only on a
/// terminal at least `width` columns wide.
pub fn should_show(forced: Option<bool>, terminal: bool, columns: usize, width: usize) -> bool {
    forced.unwrap_or(terminal && width <= columns)
}

/// The terminal's width: `COLUMNS` when it holds a positive number (an explicit override), else
/// what the terminal says (`measured`), else 80 (which holds the code of any sign-in link of up
/// to about 100 characters).
pub fn columns(env: &dyn Fn(&str) -> Option<String>, measured: Option<usize>) -> usize {
    env("COLUMNS")
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or(measured)
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a drawing back into rows of modules (`true` = inked), checking its shape.
    fn parse(drawing: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in drawing.lines() {
            let line = line.strip_prefix(INDENT).expect("indented");
            let (mut upper, mut lower) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (u, l) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected character {other:?} in the drawing"),
                };
                upper.push(u);
                lower.push(l);
            }
            rows.push(upper);
            rows.push(lower);
        }
        rows
    }

    const URL: &str = "https://iam.example.org/device?user_code=ABCD-EFGH";

    #[test]
    fn drawing_reads_back_as_the_encoders_matrix_with_a_quiet_zone() {
        let code = encode(URL).unwrap();
        let size = code.size() as usize;
        let n = size + 2 * QUIET;
        for ink in [Ink::Light, Ink::Dark] {
            let rows = parse(&draw(&code, ink));
            assert_eq!(
                rows.len(),
                n + 1,
                "odd row count: one blank half row at the end"
            );
            assert!(rows[n].iter().all(|&m| !m), "the padding half row is blank");
            for (y, row) in rows.iter().take(n).enumerate() {
                assert_eq!(row.len(), n, "row {y}");
                for (x, &inked) in row.iter().enumerate() {
                    let inside =
                        (QUIET..QUIET + size).contains(&x) && (QUIET..QUIET + size).contains(&y);
                    let is_light = if inside {
                        !code.get_module((x - QUIET) as i32, (y - QUIET) as i32)
                    } else {
                        true // quiet zone
                    };
                    assert_eq!(inked, is_light == (ink == Ink::Light), "{ink:?} ({x}, {y})");
                }
            }
            // The finder pattern's corner is dark.
            assert_eq!(rows[QUIET][QUIET], ink == Ink::Dark);
        }
        assert_eq!(width(&code), INDENT.len() + n);
    }

    #[test]
    fn ink_follows_colorfgbg() {
        let with = |v: &'static str| move |k: &str| (k == "COLORFGBG").then(|| v.to_string());
        assert_eq!(ink(&|_| None), Ink::Light);
        assert_eq!(ink(&with("15;0")), Ink::Light);
        assert_eq!(ink(&with("0;15")), Ink::Dark);
        assert_eq!(ink(&with("0;default;7")), Ink::Dark);
        assert_eq!(ink(&with("garbage")), Ink::Light);
    }

    #[test]
    fn a_typical_link_fits_eighty_columns() {
        let code = encode(URL).unwrap();
        assert!(width(&code) <= 80, "{}", width(&code));
        let long = format!("{URL}&{}", "x".repeat(3000));
        assert!(encode(&long).is_none(), "too long for any QR version");
    }

    #[test]
    fn shown_on_wide_terminals_unless_forced() {
        assert!(should_show(None, true, 80, 41));
        assert!(!should_show(None, true, 40, 41), "too narrow");
        assert!(!should_show(None, false, 200, 41), "not a terminal");
        assert!(should_show(Some(true), false, 10, 41), "--qr");
        assert!(!should_show(Some(false), true, 200, 41), "--no-qr");
    }

    #[test]
    fn columns_from_the_environment_else_eighty() {
        assert_eq!(columns(&|_| None, None), 80);
        assert_eq!(columns(&|_| None, Some(40)), 40);
        assert_eq!(
            columns(&|k| (k == "COLUMNS").then(|| "132".into()), Some(40)),
            132
        );
        assert_eq!(
            columns(&|k| (k == "COLUMNS").then(|| "wide".into()), None),
            80
        );
        assert_eq!(
            columns(&|k| (k == "COLUMNS").then(|| "0".into()), Some(100)),
            100
        );
    }
}
