//! A small PDF writer: Markdown's blocks laid out as wrapped text in the standard Type 1 fonts
//! (Helvetica, Helvetica-Bold, Courier; WinAnsiEncoding), A4 pages, with a correct cross
//! reference table. Enough for a readable report without a heavy dependency.

use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 56.0;

#[derive(Clone, Copy, PartialEq)]
enum Font {
    Regular,
    Bold,
    Mono,
}

impl Font {
    fn resource(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
            Font::Mono => "F3",
        }
    }
}

// Advance widths (1/1000 em) of ASCII 32..=126 from Adobe's AFM files.
const HELVETICA: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667,
    611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500,
    222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];
const HELVETICA_BOLD: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556,
    556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667,
    611, 778, 722, 278, 556, 722, 611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667,
    667, 611, 333, 278, 333, 584, 556, 333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556,
    278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

fn char_width(font: Font, c: u8) -> f32 {
    let w = match font {
        Font::Mono => 600,
        Font::Regular | Font::Bold if (32..=126).contains(&c) => {
            let t = if font == Font::Bold {
                &HELVETICA_BOLD
            } else {
                &HELVETICA
            };
            t[(c - 32) as usize]
        }
        _ => 556,
    };
    w as f32 / 1000.0
}

/// Text to WinAnsi bytes (Latin-1 plus a few punctuation marks; others become `?`).
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201C}' => 0x93,
            '\u{201D}' => 0x94,
            '\u{2022}' => 0x95,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\u{20AC}' => 0x80,
            '\t' => b' ',
            c if (c as u32) < 0x20 => b' ',
            c if (c as u32) < 0x7f || (0xa0..=0xff).contains(&(c as u32)) => c as u32 as u8,
            _ => b'?',
        })
        .collect()
}

fn width(font: Font, size: f32, bytes: &[u8]) -> f32 {
    bytes.iter().map(|&b| char_width(font, b)).sum::<f32>() * size
}

/// Splits text into lines no wider than `max` points, breaking at spaces (a word longer than
/// a line is cut).
fn wrap(text: &[u8], font: Font, size: f32, max: f32) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    for word in text.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
        let mut word = word.to_vec();
        loop {
            let candidate_w = if line.is_empty() {
                width(font, size, &word)
            } else {
                width(font, size, &line) + width(font, size, b" ") + width(font, size, &word)
            };
            if candidate_w <= max {
                if !line.is_empty() {
                    line.push(b' ');
                }
                line.extend_from_slice(&word);
                break;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word wider than the line: cut it.
            let mut cut = word.len();
            while cut > 1 && width(font, size, &word[..cut]) > max {
                cut -= 1;
            }
            lines.push(word[..cut].to_vec());
            word = word[cut..].to_vec();
            if word.is_empty() {
                break;
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

struct Block {
    font: Font,
    size: f32,
    indent: f32,
    text: String,
    space_before: f32,
    preformatted: bool,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut cur: Option<Block> = None;
    let mut list_depth = 0usize;
    let mut ordered: Vec<Option<u64>> = Vec::new();
    let new = |font, size, indent, space| Block {
        font,
        size,
        indent,
        text: String::new(),
        space_before: space,
        preformatted: false,
    };
    let flush = |cur: &mut Option<Block>, out: &mut Vec<Block>| {
        if let Some(b) = cur.take()
            && !b.text.trim().is_empty()
        {
            out.push(b);
        }
    };
    for ev in Parser::new_ext(markdown, pulldown_cmark::Options::ENABLE_TABLES) {
        match ev {
            Event::Start(Tag::Heading { level, .. }) => {
                flush(&mut cur, &mut out);
                let size = match level {
                    HeadingLevel::H1 => 20.0,
                    HeadingLevel::H2 => 16.0,
                    HeadingLevel::H3 => 13.5,
                    _ => 12.0,
                };
                cur = Some(new(Font::Bold, size, 0.0, size * 0.8));
            }
            // A paragraph inside a list item continues the item's block.
            Event::Start(Tag::Paragraph)
                if cur
                    .as_ref()
                    .is_none_or(|b| !b.text.is_empty() && list_depth == 0) =>
            {
                flush(&mut cur, &mut out);
                cur = Some(new(Font::Regular, 11.0, 18.0 * list_depth as f32, 6.0));
            }
            Event::Start(Tag::CodeBlock(_)) => {
                flush(&mut cur, &mut out);
                let mut b = new(Font::Mono, 9.5, 12.0, 6.0);
                b.preformatted = true;
                cur = Some(b);
            }
            Event::Start(Tag::List(start)) => {
                flush(&mut cur, &mut out);
                list_depth += 1;
                ordered.push(start);
            }
            Event::End(TagEnd::List(_)) => {
                flush(&mut cur, &mut out);
                list_depth = list_depth.saturating_sub(1);
                ordered.pop();
            }
            Event::Start(Tag::Item) => {
                flush(&mut cur, &mut out);
                let mut b = new(Font::Regular, 11.0, 18.0 * list_depth as f32, 3.0);
                b.text = match ordered.last_mut() {
                    Some(Some(n)) => {
                        let s = format!("{n}. ");
                        *n += 1;
                        s
                    }
                    _ => "\u{2022} ".into(),
                };
                cur = Some(b);
            }
            Event::Start(t @ (Tag::TableRow | Tag::TableHead)) => {
                flush(&mut cur, &mut out);
                let font = if matches!(t, Tag::TableHead) {
                    Font::Bold
                } else {
                    Font::Regular
                };
                cur = Some(new(font, 10.0, 0.0, 2.0));
            }
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => {
                if let Some(b) = cur.as_mut() {
                    let kept = b.text.trim_end_matches(" | ").len();
                    b.text.truncate(kept);
                }
                flush(&mut cur, &mut out);
            }
            Event::End(TagEnd::TableCell) => {
                if let Some(b) = cur.as_mut() {
                    b.text.push_str(" | ");
                }
            }
            Event::End(
                TagEnd::Heading(_) | TagEnd::Paragraph | TagEnd::CodeBlock | TagEnd::Item,
            ) => flush(&mut cur, &mut out),
            Event::Text(t) | Event::Code(t) => {
                cur.get_or_insert_with(|| new(Font::Regular, 11.0, 0.0, 6.0))
                    .text
                    .push_str(&t);
            }
            Event::SoftBreak => {
                if let Some(b) = cur.as_mut() {
                    b.text.push(' ');
                }
            }
            Event::HardBreak => {
                if let Some(b) = cur.as_mut() {
                    b.text.push('\n');
                }
            }
            Event::Rule => {
                flush(&mut cur, &mut out);
            }
            _ => {}
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn escape(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if matches!(b, b'(' | b')' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// Renders Markdown as a PDF document.
pub fn markdown_to_pdf(markdown: &str, title: &str) -> Vec<u8> {
    let max_w = PAGE_W - 2.0 * MARGIN;
    let mut pages: Vec<Vec<u8>> = vec![Vec::new()];
    let mut y = PAGE_H - MARGIN;
    for b in blocks(markdown) {
        let leading = b.size * 1.3;
        let lines: Vec<Vec<u8>> = b
            .text
            .split('\n')
            .flat_map(|para| {
                if b.preformatted {
                    vec![win_ansi(para)]
                } else {
                    wrap(&win_ansi(para.trim()), b.font, b.size, max_w - b.indent)
                }
            })
            .collect();
        y -= b.space_before;
        for line in lines {
            if y - leading < MARGIN {
                pages.push(Vec::new());
                y = PAGE_H - MARGIN;
            }
            y -= leading;
            let page = pages.last_mut().expect("a page");
            page.extend_from_slice(
                format!(
                    "BT /{} {} Tf {:.2} {:.2} Td (",
                    b.font.resource(),
                    b.size,
                    MARGIN + b.indent,
                    y
                )
                .as_bytes(),
            );
            page.extend_from_slice(&escape(&line));
            page.extend_from_slice(b") Tj ET\n");
        }
    }
    write_pdf(&pages, title)
}

fn write_pdf(pages: &[Vec<u8>], title: &str) -> Vec<u8> {
    // Objects: 1 catalog, 2 pages, 3-5 fonts, 6 info, then a page and its content per page.
    let n_pages = pages.len();
    let mut objects: Vec<Vec<u8>> = Vec::new();
    let kids: Vec<String> = (0..n_pages).map(|i| format!("{} 0 R", 7 + 2 * i)).collect();
    objects.push(b"<< /Type /Catalog /Pages 2 0 R >>".to_vec());
    objects.push(
        format!(
            "<< /Type /Pages /Kids [{}] /Count {n_pages} >>",
            kids.join(" ")
        )
        .into_bytes(),
    );
    for base in ["Helvetica", "Helvetica-Bold", "Courier"] {
        objects.push(
            format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{base} /Encoding /WinAnsiEncoding >>"
            )
            .into_bytes(),
        );
    }
    let mut info = b"<< /Producer (agentry) /Title (".to_vec();
    info.extend_from_slice(&escape(&win_ansi(title)));
    info.extend_from_slice(b") >>");
    objects.push(info);
    for (i, content) in pages.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] /Resources << /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >> /Contents {} 0 R >>",
                8 + 2 * i
            )
            .into_bytes(),
        );
        let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xref_offsets_point_at_their_objects() {
        let long = "word ".repeat(4000);
        let pdf = markdown_to_pdf(&format!("# Title (1)\n\n{long}\n\n- a\n- b\n"), "T");
        let find = |pat: &[u8]| pdf.windows(pat.len()).rposition(|w| w == pat).unwrap();
        let tail = String::from_utf8(pdf[find(b"startxref\n")..].to_vec()).unwrap();
        let start: usize = tail.lines().nth(1).unwrap().parse().unwrap();
        assert!(pdf[start..].starts_with(b"xref\n"));
        let table = String::from_utf8(pdf[start..].to_vec()).unwrap();
        let entries: Vec<&str> = table
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n "))
            .collect();
        assert!(entries.len() > 8, "several pages expected");
        for (i, e) in entries.iter().enumerate() {
            let off: usize = e[..10].parse().unwrap();
            assert!(
                pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()),
                "object {}",
                i + 1
            );
        }
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("(Title \\(1\\)) Tj"));
    }

    #[test]
    fn wrapping_respects_the_width() {
        let lines = wrap(
            b"the quick brown fox jumps over the lazy dog",
            Font::Regular,
            11.0,
            100.0,
        );
        assert!(lines.len() > 2);
        for l in &lines {
            assert!(width(Font::Regular, 11.0, l) <= 100.0);
        }
        assert_eq!(
            lines.join(&b' ').as_slice(),
            b"the quick brown fox jumps over the lazy dog"
        );
    }
}
