//! What goes to stdout: JSON (pretty on a terminal, compact when piped), NDJSON, or a table for
//! listings. Listings stream: rows are written as they arrive, each at once on a terminal, in
//! blocks of 64 KiB otherwise (one `write` per block, not per row), flushed when the command ends.

use std::io::{self, BufWriter, IsTerminal, Write};

use serde_json::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::cli::Format;

/// The kind of rows a listing writes, for the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Aggregates,
    Events,
    /// `subscribe`: events of every aggregate, as export lines.
    Subscribed,
    Snapshots,
    Referrers,
    /// `audit`: severity, check, the whole finding, and the advice under it.
    Findings,
    /// `profile list`: where each profile connects, and where its token comes from.
    Profiles,
    Other,
}

impl Shape {
    /// Column title and how to read it from a row, and its width.
    fn columns(self) -> &'static [(&'static str, &'static str, usize)] {
        match self {
            Shape::Aggregates => &[
                ("TYPE", "aggregate_type", 16),
                ("ID", "aggregate_id", 24),
                ("VER", "version", 5),
                ("UPDATED", "updated_at", 24),
                ("ARCHIVED", "archived", 8),
                ("STATE", "state", 0),
            ],
            Shape::Events => &[
                ("VER", "version", 5),
                ("TYPE", "event_type_raw", 24),
                ("CREATED", "metadata.created_at", 30),
                ("NOTE", "metadata.note", 16),
                ("PAYLOAD", "payload", 0),
            ],
            Shape::Subscribed => &[
                ("TYPE", "aggregate_type", 16),
                ("ID", "aggregate_id", 24),
                ("VER", "version", 5),
                ("EVENT", "event_type", 24),
                ("CREATED", "created_at", 30),
                ("PAYLOAD", "payload", 0),
            ],
            Shape::Snapshots => &[
                ("SNAPSHOT", "snapshot_id", 20),
                ("TYPE", "aggregate_type", 16),
                ("ID", "aggregate_id", 24),
                ("VER", "version", 5),
                ("COMMENT", "comment", 0),
            ],
            Shape::Referrers => &[
                ("TYPE", "aggregate_type", 16),
                ("ID", "aggregate_id", 24),
                ("PATH", "path", 0),
            ],
            Shape::Findings => &[
                ("SEVERITY", "severity", 8),
                ("CHECK", "check", 24),
                ("FINDING", "finding", 0),
            ],
            Shape::Profiles => &[
                ("NAME", "name", 16),
                ("CURRENT", "current", 7),
                ("HOST", "host", 20),
                ("PORT", "port", 5),
                ("TENANT", "tenant", 16),
                ("TOKEN", "token", 0),
            ],
            Shape::Other => &[],
        }
    }
}

pub struct Output {
    format: Option<Format>,
    tty: bool,
    /// Flushed after each write on a terminal, when full or by [`Output::flush`] otherwise.
    stdout: BufWriter<io::Stdout>,
    /// Rows of a JSON-array listing, printed when it ends.
    collected: Vec<Value>,
    header_written: bool,
    listing: Option<Shape>,
}

impl Output {
    pub fn new(format: Option<Format>) -> Self {
        let stdout = io::stdout();
        Self {
            format,
            tty: stdout.is_terminal(),
            stdout: BufWriter::with_capacity(64 * 1024, stdout),
            collected: Vec::new(),
            header_written: false,
            listing: None,
        }
    }

    /// Writes what is buffered: at the end of a command, and by `events --follow` after each
    /// batch of rows so that a reader at the other end of a pipe sees them.
    pub fn flush(&mut self) -> io::Result<()> {
        self.stdout.flush()
    }

    /// After a write: on a terminal, shown at once.
    fn written(&mut self) -> io::Result<()> {
        if self.tty {
            self.stdout.flush()
        } else {
            Ok(())
        }
    }

    fn write_json(&mut self, value: &Value, pretty: bool) -> io::Result<()> {
        let out = &mut self.stdout;
        if pretty {
            serde_json::to_writer_pretty(&mut *out, value)?;
        } else {
            serde_json::to_writer(&mut *out, value)?;
        }
        out.write_all(b"\n")?;
        self.written()
    }

    /// One value: JSON, pretty on a terminal.
    pub fn value(&mut self, value: &Value) -> io::Result<()> {
        match self.format {
            Some(Format::Ndjson) => self.write_json(value, false),
            Some(Format::Table) => self.key_values(value),
            Some(Format::Json) | None => {
                let pretty = self.tty;
                self.write_json(value, pretty)
            }
        }
    }

    /// A line of text for people (status reports).
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.stdout, "{text}")?;
        self.written()
    }

    fn key_values(&mut self, value: &Value) -> io::Result<()> {
        let out = &mut self.stdout;
        match value {
            Value::Object(map) => {
                let width = map.keys().map(|k| k.width()).max().unwrap_or(0);
                for (key, value) in map {
                    writeln!(out, "{}  {}", pad(key, width), cell(value, 0))?;
                }
            }
            other => writeln!(out, "{}", cell(other, 0))?,
        }
        self.written()
    }

    /// Starts a listing of `shape` rows.
    pub fn begin(&mut self, shape: Shape) {
        self.listing = Some(shape);
        self.header_written = false;
        self.collected.clear();
    }

    fn listing_format(&self) -> Format {
        match self.format {
            Some(Format::Table) if self.listing == Some(Shape::Other) => Format::Json,
            Some(format) => format,
            None if self.tty && self.listing != Some(Shape::Other) => Format::Table,
            None => Format::Ndjson,
        }
    }

    /// Whether rows are written as they come (NDJSON, table), not collected into one JSON
    /// array written by [`end`](Self::end).
    pub fn streams_rows(&self) -> bool {
        self.listing_format() != Format::Json
    }

    /// One row of the listing.
    pub fn row(&mut self, row: &Value) -> io::Result<()> {
        match self.listing_format() {
            Format::Json => {
                self.collected.push(row.clone());
                Ok(())
            }
            Format::Ndjson => self.write_json(row, false),
            Format::Table => {
                let shape = self.listing.unwrap_or(Shape::Other);
                let out = &mut self.stdout;
                if !self.header_written {
                    self.header_written = true;
                    let header: Vec<String> = shape
                        .columns()
                        .iter()
                        .map(|(title, _, width)| pad(title, *width))
                        .collect();
                    writeln!(out, "{}", header.join("  ").trim_end())?;
                }
                if shape == Shape::Findings {
                    // Findings are read in full: nothing is cut, the advice goes under them.
                    let text = |key: &str| cell(&lookup(row, key), usize::MAX);
                    writeln!(
                        out,
                        "{}  {}  {}",
                        pad(&text("severity"), 8),
                        pad(&text("check"), 24),
                        text("finding")
                    )?;
                    writeln!(out, "{}→ {}", " ".repeat(36), text("advice"))?;
                    return self.written();
                }
                let cells: Vec<String> = shape
                    .columns()
                    .iter()
                    .map(|(_, path, width)| pad(&cell(&lookup(row, path), *width), *width))
                    .collect();
                writeln!(out, "{}", cells.join("  ").trim_end())?;
                self.written()
            }
        }
    }

    /// Ends the listing (a JSON array is written now).
    pub fn end(&mut self) -> io::Result<()> {
        if self.listing_format() == Format::Json {
            let rows = Value::Array(std::mem::take(&mut self.collected));
            let pretty = self.tty;
            self.write_json(&rows, pretty)?;
        }
        self.listing = None;
        Ok(())
    }
}

fn lookup(row: &Value, path: &str) -> Value {
    path.split('.')
        .try_fold(row, |value, key| value.get(key))
        .cloned()
        .unwrap_or(Value::Null)
}

/// A value as table text, at most `width` columns wide on a terminal (0: unbounded but
/// single-line, 60). Widths are display widths: a CJK character or an emoji takes two columns.
fn cell(value: &Value, width: usize) -> String {
    let text = match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = text.replace('\n', " ");
    let limit = if width == 0 { 60 } else { width };
    if text.width() <= limit {
        return text;
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > limit.saturating_sub(1) {
            break;
        }
        used += w;
        cut.push(c);
    }
    cut.push('…');
    cut
}

/// `text` followed by spaces up to `width` display columns.
fn pad(text: &str, width: usize) -> String {
    let used = text.width();
    if width == 0 || used >= width {
        text.to_owned()
    } else {
        format!("{text}{}", " ".repeat(width - used))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_measured_in_display_columns() {
        // Two columns per CJK character: "注文" fills four.
        assert_eq!(pad("注文", 6), "注文  ");
        assert_eq!(pad("ab", 6), "ab    ");
        // Cut to fit, the ellipsis included, never past the column.
        let cut = cell(&Value::String("東京都千代田区".into()), 8);
        assert_eq!(cut, "東京都…");
        assert!(cut.width() <= 8);
        assert_eq!(cell(&Value::String("abcdefghij".into()), 5), "abcd…");
    }
}
