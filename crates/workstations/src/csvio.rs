//! The inventory as CSV: reading an import file into workstations or a row-by-row report of what is wrong with it,
//! and writing the export in the same columns, so that an export imports back unchanged. No I/O here.
//!
//! The header names the columns (any order, any case); only `hostname` is required. The delimiter is a comma, or
//! a semicolon or tab when the header uses one (spreadsheets set to Italian write semicolons); a UTF-8 byte-order
//! mark is ignored. A row is the line of the file it starts on, the header being row 1, as a spreadsheet counts.

use std::collections::HashMap;

use serde::Serialize;

use crate::model::{NewWorkstation, WorkstationInput, codes};

/// The columns, in the order the export writes them.
pub const COLUMNS: [&str; 10] = ["hostname", "address", "protocol", "port", "os", "location", "tags", "mac", "mode", "assignee"];
/// More rows than any organisation's quota allows is a mistake, not an inventory.
pub const MAX_ROWS: usize = 20_000;
/// The report lists this many problems at most (and says how many there were).
pub const MAX_REPORTED: usize = 1_000;

/// One problem of an import file: where (row, column) and what (a field error code).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The line of the file the record starts on; the header is row 1.
    pub row: u64,
    /// The column's name as the export writes it, or empty when the problem is the whole row.
    pub column: String,
    pub code: String,
}

impl RowError {
    fn new(row: u64, column: &str, code: &str) -> Self {
        RowError { row, column: column.to_owned(), code: code.to_owned() }
    }
}

/// A valid row of an import file.
#[derive(Clone, Debug)]
pub struct ParsedRow {
    pub row: u64,
    pub ws: NewWorkstation,
}

/// Counts lines as the reader moves forward: the line (from 1) a record starting at a byte offset is on, which
/// is what a spreadsheet calls its row. The reader reports a record as starting on the line terminator before it,
/// so terminators at the offset are skipped first.
struct Lines<'a> {
    bytes: &'a [u8],
    at: usize,
    line: u64,
}

impl Lines<'_> {
    fn of(&mut self, offset: u64) -> u64 {
        let mut start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.bytes.len());
        while start < self.bytes.len() && matches!(self.bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start >= self.at {
            self.line += self.bytes[self.at..start].iter().filter(|&&b| b == b'\n').count() as u64;
            self.at = start;
        }
        self.line
    }
}

fn delimiter(text: &[u8]) -> u8 {
    let first = text.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let count = |d: u8| first.iter().filter(|&&b| b == d).count();
    let (commas, semis, tabs) = (count(b','), count(b';'), count(b'\t'));
    if semis > commas && semis >= tabs {
        b';'
    } else if tabs > commas && tabs > semis {
        b'\t'
    } else {
        b','
    }
}

/// Reads a whole import file: the valid rows, and every problem found in the others (within-file duplicate
/// hostnames included). What the database must say (hostnames already taken, assignees not in the organisation)
/// is the service's to add; the file is imported only when no problem is left.
pub fn read(bytes: &[u8]) -> (Vec<ParsedRow>, Vec<RowError>) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter(bytes))
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.byte_records();

    let header = match records.next() {
        None => return (Vec::new(), vec![RowError::new(1, "", codes::EMPTY_FILE)]),
        Some(Err(_)) => return (Vec::new(), vec![RowError::new(1, "", codes::MALFORMED)]),
        Some(Ok(h)) => h,
    };
    let mut errors = Vec::new();
    let mut columns: Vec<usize> = Vec::with_capacity(header.len());
    for cell in header.iter() {
        let Ok(name) = std::str::from_utf8(cell) else {
            errors.push(RowError::new(1, "", codes::ENCODING));
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        match COLUMNS.iter().position(|c| *c == name) {
            Some(i) if columns.contains(&i) => errors.push(RowError::new(1, &name, codes::DUPLICATE_COLUMN)),
            Some(i) => columns.push(i),
            None => errors.push(RowError::new(1, &name, codes::UNKNOWN_COLUMN)),
        }
    }
    if !columns.contains(&0) {
        errors.push(RowError::new(1, "hostname", codes::MISSING_COLUMN));
    }
    if !errors.is_empty() {
        return (Vec::new(), errors);
    }

    let mut lines = Lines { bytes, at: 0, line: 1 };
    let mut rows = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map_or(0, |p| lines.of(p.byte()));
                errors.push(RowError::new(row, "", codes::MALFORMED));
                continue;
            }
        };
        let row = record.position().map_or(0, |p| lines.of(p.byte()));
        if record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace)) {
            continue;
        }
        if rows.len() + errors.len() >= MAX_ROWS {
            errors.push(RowError::new(row, "", codes::TOO_MANY_ROWS));
            break;
        }
        if record.len() != columns.len() {
            errors.push(RowError::new(row, "", codes::COLUMN_COUNT));
            continue;
        }
        let mut input = WorkstationInput::default();
        let mut bad_encoding = false;
        for (cell, &col) in record.iter().zip(&columns) {
            let Ok(value) = std::str::from_utf8(cell) else {
                errors.push(RowError::new(row, COLUMNS.get(col).copied().unwrap_or(""), codes::ENCODING));
                bad_encoding = true;
                continue;
            };
            let value = value.to_owned();
            match col {
                0 => input.hostname = value,
                1 => input.address = value,
                2 => input.protocol = value,
                3 => input.port = value,
                4 => input.os = value,
                5 => input.location = value,
                6 => input.tags = value,
                7 => input.mac = value,
                8 => input.mode = value,
                _ => input.assignee = value,
            }
        }
        if bad_encoding {
            continue;
        }
        match input.parse() {
            Ok(ws) => {
                match seen.entry(ws.hostname.as_string()) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        errors.push(RowError::new(row, "hostname", codes::DUPLICATE_IN_FILE));
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(row);
                        rows.push(ParsedRow { row, ws });
                    }
                }
            }
            Err(fe) => {
                for e in fe.0 {
                    errors.push(RowError { row, column: e.field, code: e.code });
                }
                // A duplicate is worth telling even on a row with other problems.
                if let Ok(h) = crate::model::Host::parse(&input.hostname)
                    && seen.insert(h.as_string(), row).is_some()
                {
                    errors.push(RowError::new(row, "hostname", codes::DUPLICATE_IN_FILE));
                }
            }
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(RowError::new(1, "", codes::EMPTY_FILE));
    }
    (rows, errors)
}

/// One workstation as the export writes it: the columns of [`COLUMNS`], as text.
pub type ExportRow = [String; 10];

/// The export: a header and one line per workstation, comma-separated, quoted where needed (RFC 4180).
pub fn write(rows: &[ExportRow]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::with_capacity(64 + rows.len() * 96));
    // Writing to a Vec cannot fail.
    let _ = w.write_record(COLUMNS);
    for r in rows {
        let _ = w.write_record(r);
    }
    w.into_inner().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<(u64, String, String)> {
        read(text.as_bytes()).1.into_iter().map(|e| (e.row, e.column, e.code)).collect()
    }

    #[test]
    fn a_valid_file_reads_every_row() {
        let text = "\u{feff}Hostname;Protocol;Port;Tags;Mode;Assignee\r\npc-1;rdp;;piano-1 cad;pooled;\r\npc-2;vnc;5901;;dedicated;Sara@Regione.example\r\n\r\n";
        let (rows, errors) = read(text.as_bytes());
        assert_eq!(errors, []);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].row, rows[0].ws.port, rows[0].ws.tags.as_slice().len()), (2, 3389, 2));
        assert_eq!((rows[1].row, rows[1].ws.port, rows[1].ws.assignee.as_deref()), (3, 5901, Some("sara@regione.example")));
    }

    #[test]
    fn bad_rows_are_reported_by_row_and_column() {
        let text = "hostname,address,port,mac\npc-1,10.0.0.1,3389,\npc 2,10.0.0.999,70000,\nPC-1,,,zz\npc-4,,\n";
        let (valid, _) = read(text.as_bytes());
        assert_eq!(valid.iter().map(|r| r.row).collect::<Vec<_>>(), [2]);
        assert_eq!(errs(text), [
            (3, "hostname".into(), "invalid-host".into()),
            (3, "address".into(), "invalid-address".into()),
            (3, "port".into(), "invalid-port".into()),
            (4, "mac".into(), "invalid-mac".into()),
            (4, "hostname".into(), "duplicate-in-file".into()),
            (5, "".into(), "column-count".into()),
        ]);
    }

    #[test]
    fn the_header_must_name_known_columns_once() {
        assert_eq!(errs("hostname,colour,hostname\n"), [(1, "colour".into(), "unknown-column".into()), (1, "hostname".into(), "duplicate-column".into())]);
        assert_eq!(errs("address\n10.0.0.1\n"), [(1, "hostname".into(), "missing-column".into())]);
        assert_eq!(errs(""), [(1, "".into(), "empty-file".into())]);
        assert_eq!(errs("hostname\n"), [(1, "".into(), "empty-file".into())]);
    }

    #[test]
    fn a_cell_that_is_not_utf8_is_named() {
        let mut bytes = b"hostname,location\npc-1,Citt".to_vec();
        bytes.push(0xE0); // "à" in Windows-1252
        bytes.extend_from_slice(b"\n");
        assert_eq!(read(&bytes).1, [RowError::new(2, "location", "encoding")]);
    }

    #[test]
    fn the_export_reads_back_the_same() {
        let row: ExportRow = [
            "pc-1.regione.example".into(), "10.0.0.1".into(), "rdp".into(), "3389".into(), "Windows 11, 23H2".into(),
            "Milano, \"Palazzo Lombardia\" piano 3".into(), "cad piano-3".into(), "00:1a:2b:3c:4d:5e".into(),
            "dedicated".into(), "sara@regione.example".into(),
        ];
        let bytes = write(std::slice::from_ref(&row));
        let (rows, errors) = read(&bytes);
        assert_eq!(errors, []);
        let ws = &rows[0].ws;
        assert_eq!(ws.hostname.as_string(), row[0]);
        assert_eq!(ws.location.as_deref(), Some(row[5].as_str()));
        assert_eq!(ws.os.as_deref(), Some(row[4].as_str()));
        assert_eq!(ws.tags.as_slice(), ["cad", "piano-3"]);
        assert_eq!(ws.mac.map(|m| m.to_string()).as_deref(), Some(row[7].as_str()));
    }
}
