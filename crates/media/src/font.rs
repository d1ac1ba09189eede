//! A hand-made 5x7 bitmap font for the on-screen display of the synthetic camera.
//!
//! Printable ASCII only: digits, `A`-`Z`, `a`-`z` and the punctuation an OSD needs
//! (`: . - / # _ + , ( ) = ? ! %` and space). Any other character is drawn as `?`.
//! Glyphs are drawn at an integer scale into one 8-bit plane (the luma plane of an I420
//! picture), optionally over a solid background box for contrast. No anti-aliasing, no
//! kerning, no allocation.

/// Glyph width in unscaled pixels.
pub const GLYPH_WIDTH: usize = 5;
/// Glyph height in unscaled pixels.
pub const GLYPH_HEIGHT: usize = 7;
/// Horizontal distance from one character to the next, in unscaled pixels (glyph + gap).
pub const ADVANCE: usize = GLYPH_WIDTH + 1;

/// One glyph: seven rows, bit 4 is the leftmost pixel of a row.
pub type Glyph = [u8; GLYPH_HEIGHT];

/// A glyph from seven rows of five characters, `#` for ink (anything else is background).
const fn g(rows: [&str; GLYPH_HEIGHT]) -> Glyph {
    let mut out = [0u8; GLYPH_HEIGHT];
    let mut r = 0;
    while r < GLYPH_HEIGHT {
        let row = rows[r].as_bytes();
        let mut c = 0;
        while c < GLYPH_WIDTH && c < row.len() {
            if row[c] == b'#' {
                out[r] |= 1 << (GLYPH_WIDTH - 1 - c);
            }
            c += 1;
        }
        r += 1;
    }
    out
}

/// Glyphs for ASCII 32..=126, indexed by `code - 32`; all-zero entries are missing glyphs
/// (except space, which is blank on purpose).
static FONT: [Glyph; 95] = build_font();

#[rustfmt::skip]
const fn build_font() -> [Glyph; 95] {
    let mut t = [[0u8; GLYPH_HEIGHT]; 95];
    macro_rules! set {
        ($c:expr, $rows:expr) => {
            t[($c - b' ') as usize] = g($rows);
        };
    }
    set!(b'!', ["..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."]);
    set!(b'#', [".#.#.", ".#.#.", "#####", ".#.#.", "#####", ".#.#.", ".#.#."]);
    set!(b'%', ["##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"]);
    set!(b'(', ["...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."]);
    set!(b')', [".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."]);
    set!(b'+', [".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."]);
    set!(b',', [".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."]);
    set!(b'-', [".....", ".....", ".....", "#####", ".....", ".....", "....."]);
    set!(b'.', [".....", ".....", ".....", ".....", ".....", ".##..", ".##.."]);
    set!(b'/', [".....", "....#", "...#.", "..#..", ".#...", "#....", "....."]);
    set!(b'0', [".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."]);
    set!(b'1', ["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]);
    set!(b'2', [".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"]);
    set!(b'3', ["#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."]);
    set!(b'4', ["...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."]);
    set!(b'5', ["#####", "#....", "####.", "....#", "....#", "#...#", ".###."]);
    set!(b'6', ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."]);
    set!(b'7', ["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]);
    set!(b'8', [".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."]);
    set!(b'9', [".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."]);
    set!(b':', [".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."]);
    set!(b'=', [".....", ".....", "#####", ".....", "#####", ".....", "....."]);
    set!(b'?', [".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."]);
    set!(b'A', [".###.", "#...#", "#...#", "#...#", "#####", "#...#", "#...#"]);
    set!(b'B', ["####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."]);
    set!(b'C', [".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."]);
    set!(b'D', ["###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."]);
    set!(b'E', ["#####", "#....", "#....", "####.", "#....", "#....", "#####"]);
    set!(b'F', ["#####", "#....", "#....", "####.", "#....", "#....", "#...."]);
    set!(b'G', [".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"]);
    set!(b'H', ["#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"]);
    set!(b'I', [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]);
    set!(b'J', ["..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."]);
    set!(b'K', ["#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"]);
    set!(b'L', ["#....", "#....", "#....", "#....", "#....", "#....", "#####"]);
    set!(b'M', ["#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"]);
    set!(b'N', ["#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"]);
    set!(b'O', [".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]);
    set!(b'P', ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."]);
    set!(b'Q', [".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"]);
    set!(b'R', ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"]);
    set!(b'S', [".####", "#....", "#....", ".###.", "....#", "....#", "####."]);
    set!(b'T', ["#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."]);
    set!(b'U', ["#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."]);
    set!(b'V', ["#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."]);
    set!(b'W', ["#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."]);
    set!(b'X', ["#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"]);
    set!(b'Y', ["#...#", "#...#", "#...#", ".#.#.", "..#..", "..#..", "..#.."]);
    set!(b'Z', ["#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"]);
    set!(b'_', [".....", ".....", ".....", ".....", ".....", ".....", "#####"]);
    set!(b'a', [".....", ".....", ".###.", "....#", ".####", "#...#", ".####"]);
    set!(b'b', ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."]);
    set!(b'c', [".....", ".....", ".###.", "#....", "#....", "#...#", ".###."]);
    set!(b'd', ["....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"]);
    set!(b'e', [".....", ".....", ".###.", "#...#", "#####", "#....", ".###."]);
    set!(b'f', ["..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."]);
    set!(b'g', [".....", ".####", "#...#", "#...#", ".####", "....#", ".###."]);
    set!(b'h', ["#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"]);
    set!(b'i', ["..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."]);
    set!(b'j', ["...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."]);
    set!(b'k', ["#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."]);
    set!(b'l', [".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."]);
    set!(b'm', [".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"]);
    set!(b'n', [".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"]);
    set!(b'o', [".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."]);
    set!(b'p', [".....", ".....", "####.", "#...#", "####.", "#....", "#...."]);
    set!(b'q', [".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"]);
    set!(b'r', [".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."]);
    set!(b's', [".....", ".....", ".###.", "#....", ".###.", "....#", "####."]);
    set!(b't', [".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."]);
    set!(b'u', [".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"]);
    set!(b'v', [".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."]);
    set!(b'w', [".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."]);
    set!(b'x', [".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"]);
    set!(b'y', [".....", ".....", "#...#", "#...#", ".####", "....#", ".###."]);
    set!(b'z', [".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"]);
    t
}

/// The glyph for `c`; characters without one get `?`.
pub fn glyph(c: char) -> &'static Glyph {
    let fallback = &FONT[(b'?' - b' ') as usize];
    if c == ' ' {
        return &FONT[0];
    }
    match u32::from(c) {
        code @ 33..=126 => {
            let gl = &FONT[(code - 32) as usize];
            if gl.iter().all(|&row| row == 0) {
                fallback
            } else {
                gl
            }
        }
        _ => fallback,
    }
}

/// Width in pixels of `text` drawn at `scale` (no trailing gap).
pub fn text_width(text: &str, scale: usize) -> usize {
    let n = text.chars().count();
    if n == 0 {
        0
    } else {
        (n * ADVANCE - 1) * scale
    }
}

/// Height in pixels of a line of text drawn at `scale`.
pub fn text_height(scale: usize) -> usize {
    GLYPH_HEIGHT * scale
}

/// One 8-bit image plane: `height` rows of `width` pixels, `stride` bytes apart.
pub struct Plane<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
    pub width: usize,
    pub height: usize,
}

impl Plane<'_> {
    /// Fills the rectangle with `value`, clipped to the plane.
    pub fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, value: u8) {
        let x1 = (x.saturating_add(w)).min(self.width);
        let y1 = (y.saturating_add(h)).min(self.height);
        if x >= x1 {
            return;
        }
        for row in y..y1 {
            let start = row * self.stride;
            if let Some(line) = self.data.get_mut(start + x..start + x1) {
                line.fill(value);
            }
        }
    }

    /// Draws `text` with its top-left corner at (`x`, `y`), each font pixel a
    /// `scale` x `scale` square of `value`; background pixels are left alone. Clipped.
    pub fn draw_text(&mut self, x: usize, y: usize, text: &str, scale: usize, value: u8) {
        let scale = scale.max(1);
        let mut cx = x;
        for c in text.chars() {
            if cx >= self.width {
                break;
            }
            let gl = glyph(c);
            for (r, &bits) in gl.iter().enumerate() {
                if bits == 0 {
                    continue;
                }
                for col in 0..GLYPH_WIDTH {
                    if bits & (1 << (GLYPH_WIDTH - 1 - col)) != 0 {
                        self.fill_rect(cx + col * scale, y + r * scale, scale, scale, value);
                    }
                }
            }
            cx += ADVANCE * scale;
        }
    }

    /// Draws `text` over a solid `bg` box with a margin of `scale` pixels around it and
    /// returns the box as (x, y, width, height), clipped to the plane.
    pub fn draw_label(
        &mut self,
        x: usize,
        y: usize,
        text: &str,
        scale: usize,
        fg: u8,
        bg: u8,
    ) -> (usize, usize, usize, usize) {
        let scale = scale.max(1);
        let w = text_width(text, scale) + 2 * scale;
        let h = text_height(scale) + 2 * scale;
        self.fill_rect(x, y, w, h, bg);
        self.draw_text(x + scale, y + scale, text, scale, fg);
        let w = w.min(self.width.saturating_sub(x));
        let h = h.min(self.height.saturating_sub(y));
        (x, y, w, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_osd_character_has_a_glyph() {
        let question = glyph('?');
        for c in ('0'..='9')
            .chain('A'..='Z')
            .chain('a'..='z')
            .chain(":.-/#_".chars())
        {
            let gl = glyph(c);
            assert!(gl.iter().any(|&r| r != 0), "{c:?} is blank");
            if c != '?' {
                assert_ne!(gl, question, "{c:?} falls back to '?'");
            }
        }
        assert!(glyph(' ').iter().all(|&r| r == 0));
        assert_eq!(glyph('é'), question);
        assert_eq!(glyph('~'), question);
    }

    #[test]
    fn glyph_rows_fit_five_columns() {
        for gl in FONT.iter() {
            assert!(gl.iter().all(|&r| r < 1 << GLYPH_WIDTH));
        }
    }

    #[test]
    fn draws_scaled_and_clipped() {
        let mut buf = vec![0u8; 20 * 10];
        let mut p = Plane {
            data: &mut buf,
            stride: 20,
            width: 20,
            height: 10,
        };
        // '-' at scale 2: row 3 of the glyph, all five columns -> rows 6..8, cols 0..10.
        p.draw_text(0, 0, "-", 2, 255);
        for y in 0..10 {
            for x in 0..20 {
                let ink = (6..8).contains(&y) && x < 10;
                assert_eq!(buf[y * 20 + x] == 255, ink, "({x},{y})");
            }
        }
        // Far off the plane: nothing happens, nothing panics.
        let mut p = Plane {
            data: &mut buf,
            stride: 20,
            width: 20,
            height: 10,
        };
        p.draw_label(15, 5, "88:88", 3, 200, 10);
        p.draw_label(100, 100, "x", 3, 200, 10);
        assert_eq!(text_width("ab", 3), 33);
        assert_eq!(text_width("", 3), 0);
    }
}
