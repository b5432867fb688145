//! A small PDF writer for the receipt: one A4 page of text in the standard Helvetica fonts (no font embedded),
//! WinAnsi encoding so that Italian accented letters come out right, no compression (the receipt is a few hundred
//! bytes of text, and a plain stream is easy to check). Enough for a receipt; not a layout engine.

/// A line of the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub bold: bool,
    /// Points.
    pub size: u8,
}

impl Line {
    pub fn title(text: impl Into<String>) -> Line {
        Line { text: text.into(), bold: true, size: 16 }
    }
    pub fn label(text: impl Into<String>) -> Line {
        Line { text: text.into(), bold: true, size: 10 }
    }
    pub fn text(text: impl Into<String>) -> Line {
        Line { text: text.into(), bold: false, size: 11 }
    }
    pub fn gap() -> Line {
        Line { text: String::new(), bold: false, size: 6 }
    }
}

/// A character in WinAnsiEncoding (PDF 1.7, annex D): Latin-1 where it agrees, the typographic marks and the euro
/// sign at their Windows-1252 places; anything else a question mark.
pub fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        '„' => 0x84,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '™' => 0x99,
        'Š' => 0x8a,
        'š' => 0x9a,
        'Ž' => 0x8e,
        'ž' => 0x9e,
        'Œ' => 0x8c,
        'œ' => 0x9c,
        _ => b'?',
    }
}

/// A PDF literal string `(…)` of `s` in WinAnsi, with `\`, `(` and `)` escaped.
fn literal(s: &str) -> Vec<u8> {
    let mut out = vec![b'('];
    for c in s.chars() {
        let b = win_ansi(c);
        if matches!(b, b'\\' | b'(' | b')') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b')');
    out
}

/// Splits a long line at spaces so that it fits the page (Helvetica's average width is about half the size).
fn wrap(text: &str, size: u8) -> Vec<String> {
    let max = (480 * 2 / usize::from(size.max(1))).max(20);
    let mut out = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > max {
            out.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
        while cur.chars().count() > max {
            let head: String = cur.chars().take(max).collect();
            let tail: String = cur.chars().skip(max).collect();
            out.push(head);
            cur = tail;
        }
    }
    out.push(cur);
    out
}

/// One A4 page with `lines` from the top, and `title` in the document's information.
pub fn page(title: &str, lines: &[Line]) -> Vec<u8> {
    let mut content: Vec<u8> = Vec::new();
    let mut y: i32 = 842 - 64;
    for l in lines {
        for part in wrap(&l.text, l.size) {
            y -= i32::from(l.size) + 5;
            if y < 40 {
                break;
            }
            if part.is_empty() {
                continue;
            }
            content.extend_from_slice(format!("BT /{} {} Tf 56 {} Td ", if l.bold { "F2" } else { "F1" }, l.size, y).as_bytes());
            content.extend(literal(&part));
            content.extend_from_slice(b" Tj ET\n");
        }
    }
    let mut info = b"<< /Title ".to_vec();
    info.extend(literal(title));
    info.extend_from_slice(b" /Producer (agilekit) >>");
    let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    stream.extend_from_slice(&content);
    stream.extend_from_slice(b"endstream");
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>".to_vec(),
        stream,
        info,
    ];
    // The header's second line has bytes above 127: tools then treat the file as binary.
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<< /Size {} /Root 1 0 R /Info {} 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1, objects.len()).as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn the_cross_reference_table_points_at_each_object() {
        let pdf = page("Ricevuta", &[Line::title("Ricevuta di protocollo"), Line::text("Protocollo n. 42")]);
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        let start: usize = text.rsplit("startxref\n").next().unwrap().lines().next().unwrap().parse().unwrap();
        assert_eq!(&pdf[start..start + 4], b"xref");
        let table = String::from_utf8_lossy(&pdf[start..]);
        let entries: Vec<&str> = table.lines().skip(3).take_while(|l| l.ends_with(" n ")).collect();
        assert_eq!(entries.len(), 7);
        for (i, e) in entries.iter().enumerate() {
            let off: usize = e[..10].parse().unwrap();
            assert!(pdf[off..].starts_with(format!("{} 0 obj", i + 1).as_bytes()), "object {}", i + 1);
        }
        // The stream's declared length is its length.
        let s = find(&pdf, b"stream\n").unwrap() + 7;
        let e = find(&pdf, b"endstream").unwrap();
        let declared: usize = text.split("/Length ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert_eq!(e - s, declared);
        assert!(find(&pdf, b"(Protocollo n. 42) Tj").is_some());
    }

    #[test]
    fn accented_letters_are_win_ansi_and_parentheses_escaped() {
        let pdf = page("t", &[Line::text("Attività (sede) — 7.500,00 €, perché")]);
        let want: Vec<u8> = [&b"(Attivit"[..], &[0xe0], b" \\(sede\\) ", &[0x97], b" 7.500,00 ", &[0x80], b", perch", &[0xe9], b")"].concat();
        assert!(find(&pdf, &want).is_some());
        assert_eq!(win_ansi('ò'), 0xf2);
        assert_eq!(win_ansi('あ'), b'?');
    }

    #[test]
    fn long_lines_wrap_at_spaces() {
        let w = wrap(&"parola ".repeat(40), 11);
        assert!(w.len() > 1);
        assert!(w.iter().all(|l| l.chars().count() <= 87));
        assert_eq!(wrap("", 11), vec![String::new()]);
    }
}
