//! The import's result log: NDJSON, one record per event of a line's life, appended as it
//! happens so that a killed import leaves a true account of itself.
//!
//! ```json
//! {"edbx_import":1,"input":"orders.ndjson","sha256":"…","lines":10000,"server":"db1:6363","tenant":"shop"}
//! {"line":1,"status":"sending","sha":"3f2a…"}
//! {"line":1,"status":"acked","version":1}
//! {"line":6,"status":"acked","version":1,"present":true,"sha":"9c0e…"}
//! {"line":2,"status":"rejected","code":"schema_violation","message":"…"}
//! {"line":3,"status":"skipped","reason":"line 2 of orders/ord-1 was not applied"}
//! {"line":4,"status":"unknown","message":"…"}
//! {"line":5,"status":"not_sent","message":"…"}
//! ```
//!
//! The header names the destination (address and tenant as given; the protocol offers no
//! identity of the store): `--resume` refuses another one. `sha` is a digest of the line's
//! text as it was sent (or found `present`, already on the server): `--resume` accepts an edited
//! input as long as the lines the log shows applied or in flight are unchanged.
//!
//! A line's last record is its status. `sending` with nothing after it means the process died
//! with the write in flight: like `unknown`, its outcome is found out by reading the aggregate
//! back before anything else of that aggregate is sent.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::exit::{Failure, Outcome};

/// A line's status as the log tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Applied (the version it produced, when the server echoed it).
    Acked(Option<u64>),
    /// Not sent: the server already held this version with the same content.
    Present(u64),
    /// Refused by the server or the client: not applied.
    Rejected,
    /// Not sent, because an earlier line of its aggregate was not applied.
    Skipped,
    /// Sent; whether it was applied is not known (`unknown`, or `sending` with no result).
    Uncertain,
}

impl Status {
    pub fn is_acked(self) -> bool {
        matches!(self, Status::Acked(_) | Status::Present(_))
    }

    /// The version the line has on the server, when known.
    pub fn version(self) -> Option<u64> {
        match self {
            Status::Acked(version) => version,
            Status::Present(version) => Some(version),
            _ => None,
        }
    }
}

/// A digest of one line of input, as the log records it.
pub fn line_sha(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.trim_end_matches(['\n', '\r']).as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the log's first record says about the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub input: String,
    pub sha256: String,
    pub lines: u64,
    /// Where the lines are written: `host:port` (absent in logs of older versions).
    pub server: Option<String>,
    /// The tenant asked for (`None`: the server's default).
    pub tenant: Option<String>,
}

impl Header {
    fn json(&self) -> Value {
        json!({"edbx_import": 1, "input": self.input, "sha256": self.sha256, "lines": self.lines,
               "server": self.server, "tenant": self.tenant})
    }
}

/// What a log says: its header, each line's status, and each sent line's digest.
pub struct Account {
    pub header: Header,
    pub statuses: HashMap<u64, Status>,
    pub shas: HashMap<u64, String>,
}

pub struct ResultLog {
    file: Mutex<File>,
    path: PathBuf,
}

impl ResultLog {
    /// Starts a new log; refuses to overwrite one that has records (that import may be
    /// unfinished).
    pub fn create(path: &Path, header: &Header) -> Outcome<Self> {
        if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
            return Err(Failure::usage(format!(
                "the result log {} exists already",
                path.display()
            ))
            .hint(
                "add --resume to continue that import, or give another --log (or remove the \
                 file) to start over",
            ));
        }
        let file = File::create(path).map_err(|e| {
            Failure::usage(format!(
                "cannot create the result log {}: {e}",
                path.display()
            ))
        })?;
        let log = Self {
            file: Mutex::new(file),
            path: path.to_owned(),
        };
        log.write(&header.json())?;
        Ok(log)
    }

    /// Opens a log to continue it: its header and each line's status.
    pub fn resume(path: &Path) -> Outcome<(Self, Account)> {
        let (account, whole) = read_records(path)?;
        let file = OpenOptions::new().append(true).open(path).map_err(|e| {
            Failure::usage(format!(
                "cannot open the result log {}: {e}",
                path.display()
            ))
        })?;
        // A record cut short by a kill never happened: cut it off, so that the next record
        // starts on its own line.
        if let Some(whole) = whole {
            file.set_len(whole)?;
        }
        Ok((
            Self {
                file: Mutex::new(file),
                path: path.to_owned(),
            },
            account,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record, in one write: it is in the file before the write it announces is
    /// sent.
    pub fn write(&self, record: &Value) -> std::io::Result<()> {
        let mut text = serde_json::to_vec(record).map_err(std::io::Error::other)?;
        text.push(b'\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.write_all(&text)
    }

    /// Makes the records durable (at the end of a run).
    pub fn sync(&self) -> std::io::Result<()> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        file.sync_data()
    }
}

/// Reads a log: its header and each line's last status.
pub fn read(path: &Path) -> Outcome<HashMap<u64, Status>> {
    read_records(path).map(|(account, _)| account.statuses)
}

/// [`read`], and the length of the log without a last record cut short, if there is one.
fn read_records(path: &Path) -> Outcome<(Account, Option<u64>)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::usage(format!(
            "cannot read the result log {}: {e}",
            path.display()
        ))
    })?;
    let torn = (!text.is_empty() && !text.ends_with('\n'))
        .then(|| text.rfind('\n').map_or(0, |i| i + 1) as u64);
    let corrupt = |number: usize, why: &str| {
        Failure::usage(format!(
            "the result log {} is damaged at its line {number}: {why}",
            path.display()
        ))
        .hint("it must be the log written by `edbx import`; give the right one with --log")
    };
    let mut header = None;
    let mut statuses = HashMap::new();
    let mut shas = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.len();
    for (index, text) in lines.iter().enumerate() {
        let number = index + 1;
        if text.trim().is_empty() {
            continue;
        }
        let record: Value = match serde_json::from_str(text) {
            Ok(record) => record,
            // The last record may have been cut short by a kill: it then never happened.
            Err(_) if number == last => continue,
            Err(e) => return Err(corrupt(number, &e.to_string())),
        };
        if header.is_none() {
            let field = |key: &str| record.get(key).cloned().unwrap_or(Value::Null);
            if field("edbx_import") != json!(1) {
                return Err(corrupt(number, "no header"));
            }
            header = Some(Header {
                input: field("input").as_str().unwrap_or_default().to_owned(),
                sha256: field("sha256").as_str().unwrap_or_default().to_owned(),
                lines: field("lines").as_u64().unwrap_or_default(),
                server: field("server").as_str().map(str::to_owned),
                tenant: field("tenant").as_str().map(str::to_owned),
            });
            continue;
        }
        let line = record
            .get("line")
            .and_then(Value::as_u64)
            .ok_or_else(|| corrupt(number, "a record without a line number"))?;
        if let Some(sha) = record.get("sha").and_then(Value::as_str) {
            shas.insert(line, sha.to_owned());
        }
        let status = match record.get("status").and_then(Value::as_str) {
            // Found unsent after all: the line is still to be done.
            Some("not_sent") => {
                statuses.remove(&line);
                continue;
            }
            Some("sending" | "unknown") => Status::Uncertain,
            Some("acked") => match record.get("version").and_then(Value::as_u64) {
                Some(version) if record.get("present") == Some(&json!(true)) => {
                    Status::Present(version)
                }
                version => Status::Acked(version),
            },
            Some("rejected") => Status::Rejected,
            Some("skipped") => Status::Skipped,
            _ => return Err(corrupt(number, "a record without a known status")),
        };
        statuses.insert(line, status);
    }
    let header = header.ok_or_else(|| corrupt(1, "the log is empty"))?;
    Ok((
        Account {
            header,
            statuses,
            shas,
        },
        torn,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_record_of_a_line_is_its_status_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("import.log");
        let header = Header {
            input: "in.ndjson".into(),
            sha256: "ab".into(),
            lines: 4,
            server: Some("db:6363".into()),
            tenant: None,
        };
        let log = ResultLog::create(&path, &header).unwrap();
        log.write(&json!({"line": 1, "status": "sending", "sha": "s1"}))
            .unwrap();
        log.write(&json!({"line": 1, "status": "acked", "version": 3}))
            .unwrap();
        log.write(&json!({"line": 2, "status": "sending"})).unwrap();
        log.write(&json!({"line": 3, "status": "sending"})).unwrap();
        log.write(&json!({"line": 3, "status": "rejected", "code": "x"}))
            .unwrap();
        drop(log);
        // A kill in the middle of a record.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(br#"{"line":4,"sta"#).unwrap();
        drop(file);

        let (log, account) = ResultLog::resume(&path).unwrap();
        assert_eq!(account.header, header);
        assert_eq!(account.shas.get(&1).map(String::as_str), Some("s1"));
        let statuses = account.statuses;
        assert_eq!(statuses.get(&1), Some(&Status::Acked(Some(3))));
        assert_eq!(statuses.get(&2), Some(&Status::Uncertain));
        assert_eq!(statuses.get(&3), Some(&Status::Rejected));
        assert_eq!(statuses.get(&4), None);
        log.write(&json!({"line": 4, "status": "skipped"})).unwrap();
        log.write(&json!({"line": 2, "status": "acked", "version": 7, "present": true}))
            .unwrap();
        drop(log);
        let statuses = read(&path).unwrap();
        assert_eq!(statuses.get(&4), Some(&Status::Skipped));
        assert_eq!(statuses.get(&2), Some(&Status::Present(7)));
    }

    #[test]
    fn an_existing_log_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("import.log");
        let header = Header {
            input: "in".into(),
            sha256: "ab".into(),
            lines: 1,
            server: None,
            tenant: None,
        };
        drop(ResultLog::create(&path, &header).unwrap());
        let e = ResultLog::create(&path, &header).err().unwrap();
        assert!(e.message.contains("exists already"), "{}", e.message);
    }
}
