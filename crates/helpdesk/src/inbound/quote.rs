//! Quoted history out of an inbound reply, kept simple: lines quoted with `>` go, and everything from the first
//! reply header ("On … wrote:", "Il giorno … ha scritto:", "-----Original Message-----", "Messaggio originale")
//! or signature separator ("-- ") on. A forwarded message's text stays: forwarding is how a colleague hands a
//! problem over.

/// Whether `line` (trimmed) opens the quoted original: a reply header on one line, or its first line when the
/// client folded it (`next` is then the rest).
fn is_reply_header(line: &str, next: Option<&str>) -> bool {
    let l = line.trim();
    let lower = l.to_lowercase();
    let joined = match next {
        Some(n) => format!("{lower} {}", n.trim().to_lowercase()),
        None => lower.clone(),
    };
    let opens = |prefix: &str, ends: &str| {
        lower.starts_with(prefix)
            && (lower.ends_with(ends) || (joined.ends_with(ends) && !lower.contains(ends)))
    };
    opens("on ", "wrote:")
        || opens("il ", "ha scritto:")
        || opens("in data ", "ha scritto:")
        || opens("le ", "a écrit :")
        || opens("am ", "schrieb:")
        || (lower.starts_with("-----")
            && (lower.contains("original message") || lower.contains("messaggio originale")))
        || (lower.starts_with("----- ") && lower.contains("messaggio originale"))
}

/// The new text of a reply: quoted lines and the quoted original after a reply header removed, trailing blank
/// lines trimmed.
pub fn strip(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if *line == "-- " || is_reply_header(line, lines.get(i + 1).copied()) {
            break;
        }
        if line.trim_start().starts_with('>') {
            continue;
        }
        out.push(line.trim_end());
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn quoted_lines_and_reply_headers_go() {
        let t = "Grazie, ora funziona.\r\n\r\nIl giorno ven 4 dic 2026 alle 10:00 Help desk <hd@x.example> ha scritto:\r\n> Provi a riavviare.\r\n> Saluti\r\n";
        assert_eq!(strip(t), "Grazie, ora funziona.");
        let t = "Still broken.\n\nOn Fri, Dec 4, 2026 at 10:00 AM Help desk <hd@x.example>\nwrote:\n> Try again.\n";
        assert_eq!(strip(t), "Still broken.");
        let t = "Sì\n\n-----Messaggio originale-----\nDa: Help desk\nOggetto: [HD#3] VPN\n\nTesto vecchio";
        assert_eq!(strip(t), "Sì");
        let t = "Inline:\n> domanda 1\nrisposta 1\n> domanda 2\nrisposta 2\n\n-- \nSara Dipendente\nRegione";
        assert_eq!(strip(t), "Inline:\nrisposta 1\nrisposta 2");
    }

    #[test]
    fn plain_text_and_forwards_stay() {
        assert_eq!(
            strip("La VPN non si connette.\nErrore 809.\n"),
            "La VPN non si connette.\nErrore 809."
        );
        let fwd = "Vedi sotto.\n\n---------- Forwarded message ---------\nFrom: Luca <l@x.example>\nSubject: VPN\n\nNon va.";
        assert_eq!(strip(fwd), fwd.trim_end());
        // A sentence that merely starts like a header is not one.
        assert_eq!(
            strip("On Monday the VPN failed twice.\nIl PC è lento."),
            "On Monday the VPN failed twice.\nIl PC è lento."
        );
        assert_eq!(strip("> solo citazione\n"), "");
    }
}
