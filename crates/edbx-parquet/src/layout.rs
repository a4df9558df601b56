//! Where an export's files go, under which temporary names, and how they get their final ones.
//!
//! * One file: written as `PATH.partial`, renamed to `PATH` when complete.
//! * A directory (partitioned, or split by size): built as `PATH.partial/`, which holds a marker
//!   file while the export runs and every data file under a `.parquet.partial` name. When the
//!   export is complete the files are renamed to `.parquet`, the marker removed, and the
//!   directory renamed to `PATH`. So until the export succeeds there is no `PATH` and no file
//!   ending in `.parquet`; an export that fails, or is dropped, removes what it wrote.
//! * A stream (stdout, a pipe): written as it goes; the reader sees an invalid file (no footer)
//!   if the export fails.
//!
//! Every file and directory is synced before it is renamed, so a crash never leaves a `PATH`
//! whose data did not reach the disk.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::error::ExportError;
use crate::schema::TYPE_COLUMN;

/// The file that marks `PATH.partial/` as an export in progress (and so safe to remove when an
/// interrupted export left it behind).
pub(crate) const MARKER: &str = "_edbx_export_in_progress";
const TEMP_SUFFIX: &str = ".partial";
/// Hive's name for a partition whose value is null or empty.
const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";
/// Longest directory name the layout writes: most file systems allow 255 bytes.
const MAX_NAME_BYTES: usize = 255;

/// A partition value as a directory name component: bytes other than `a-z`, `0-9`, `_` and `-`
/// are percent-encoded (`%2F`, `%2E`, `%C3%A9`, uppercase `%41`), as Hive escapes path names
/// and as DuckDB, Polars and Spark decode them. So no value can name a parent (`..`), hold a
/// separator, or — upper case being encoded too — collide with another on a case-insensitive
/// file system; distinct values give distinct names. The empty value is Hive's default
/// partition (`__HIVE_DEFAULT_PARTITION__`), and a value that spells that name has its first `_`
/// encoded.
pub fn escape_partition_value(value: &str) -> String {
    if value.is_empty() {
        return DEFAULT_PARTITION.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut bytes = value.bytes();
    // A value that spells the default partition's name (in any case) would meet it on a
    // case-insensitive file system: its first `_` is encoded, which no other value's is.
    if value.eq_ignore_ascii_case(DEFAULT_PARTITION) {
        out.push_str("%5F");
        bytes.next();
    }
    for byte in bytes {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The directory of a partition: `aggregate_type=<escaped value>`.
pub(crate) fn partition_dir(value: &str) -> Result<String, ExportError> {
    let name = format!("{TYPE_COLUMN}={}", escape_partition_value(value));
    if name.len() > MAX_NAME_BYTES {
        return Err(ExportError::Value(format!(
            "aggregate type {value:?} is too long to name a partition directory ({} bytes \
             escaped, at most {MAX_NAME_BYTES})",
            name.len()
        )));
    }
    Ok(name)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// `path` with `suffix` appended to its file name.
fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// What the output path of a one-file export names, decided before anything is sent: the
/// policy `edbx export` applies to NDJSON and Parquet alike.
///
/// ```no_run
/// use edbx_parquet::OutputFile;
///
/// match OutputFile::check("dump.ndjson".as_ref())? {
///     // Written as `dump.ndjson.partial`, renamed over `dump.ndjson` once complete.
///     OutputFile::Replace(path) => println!("writing {}", path.display()),
///     // A pipe or a device: written into as it goes, never replaced.
///     OutputFile::Stream(path) => println!("streaming into {}", path.display()),
/// }
/// # Ok::<(), edbx_parquet::ExportError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFile {
    /// A regular file, or nothing yet: write `PATH.partial` beside it and rename it over `PATH`
    /// when complete. A symbolic link is followed: this is the file it points to, which is
    /// replaced while the link stays.
    Replace(PathBuf),
    /// Something that is not a regular file (a pipe, `/dev/null`, `/dev/stdout`): write into it
    /// as the export goes. Renaming a file over it would destroy it, and its reader would get
    /// nothing.
    Stream(PathBuf),
}

/// How many symbolic links a dangling chain is followed through.
const MAX_LINKS: usize = 40;

impl OutputFile {
    /// Checks `path` for an export into one file: refuses an empty path, a missing directory
    /// and a directory, and says whether the file is replaced or streamed into.
    pub fn check(path: &Path) -> Result<OutputFile, ExportError> {
        Self::check_within(path, MAX_LINKS)
    }

    fn check_within(path: &Path, links: usize) -> Result<OutputFile, ExportError> {
        if path.as_os_str().is_empty() {
            return Err(ExportError::InvalidInput("the output path is empty".into()));
        }
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => Err(ExportError::InvalidInput(format!(
                "{} is a directory: give a file name",
                path.display()
            ))),
            // Opened where it is (through any link): `/dev/stdout` resolves to no path.
            Ok(m) if !m.is_file() => Ok(OutputFile::Stream(path.to_owned())),
            Ok(_) => {
                let real = if is_symlink(path) {
                    fs::canonicalize(path).map_err(io(path))?
                } else {
                    path.to_owned()
                };
                Self::replaceable(real)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !is_symlink(path) {
                    return Self::replaceable(path.to_owned());
                }
                // A dangling link: the new file is made where it points.
                if links == 0 {
                    return Err(ExportError::InvalidInput(format!(
                        "{}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                let target = fs::read_link(path).map_err(io(path))?;
                Self::check_within(&parent_of(path).join(target), links - 1)
            }
            Err(e) => Err(io(path)(e)),
        }
    }

    /// A file to be written beside as `PATH.partial`: its directory must exist, and
    /// `PATH.partial` must not be a directory.
    fn replaceable(path: PathBuf) -> Result<OutputFile, ExportError> {
        let parent = parent_of(&path);
        if !parent.is_dir() {
            return Err(ExportError::InvalidInput(format!(
                "{}: the directory {} does not exist",
                path.display(),
                parent.display()
            )));
        }
        let staging = suffixed(&path, TEMP_SUFFIX);
        if staging.is_dir() {
            return Err(ExportError::InvalidInput(format!(
                "{} is a directory; remove it or choose another path",
                staging.display()
            )));
        }
        Ok(OutputFile::Replace(path))
    }
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The directory `path` is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Where an export writes, decided (and checked) before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One file at this path.
    File(PathBuf),
    /// A directory of part files at this path.
    Dir(PathBuf),
    /// Something that is not a regular file or directory (a pipe, `/dev/stdout`): written
    /// straight through.
    Device(PathBuf),
}

impl Target {
    /// Checks `path` for an export into one file (`dir: false`) or a directory.
    pub(crate) fn check(path: &Path, dir: bool) -> Result<Target, ExportError> {
        if !dir {
            return match OutputFile::check(path) {
                Ok(OutputFile::Replace(path)) => Ok(Target::File(path)),
                Ok(OutputFile::Stream(path)) => {
                    refuse_terminal(&path)?;
                    Ok(Target::Device(path))
                }
                Err(ExportError::InvalidInput(message)) if path.is_dir() => {
                    Err(ExportError::InvalidInput(format!(
                        "{message}, or --partition-by / --max-file-size to write a directory"
                    )))
                }
                Err(e) => Err(e),
            };
        }
        if path.as_os_str().is_empty() {
            return Err(ExportError::InvalidInput("the output path is empty".into()));
        }
        let parent = parent_of(path);
        if !parent.is_dir() {
            return Err(ExportError::InvalidInput(format!(
                "{}: the directory {} does not exist",
                path.display(),
                parent.display()
            )));
        }
        let existing = fs::metadata(path).ok();
        let existing_dir = existing.as_ref().is_some_and(|m| m.is_dir());
        let existing_other = existing
            .as_ref()
            .is_some_and(|m| !m.is_dir() && !m.is_file());
        if existing_other {
            return Err(ExportError::InvalidInput(format!(
                "{} is not a directory: a partitioned or split export writes a directory",
                path.display()
            )));
        }
        let empty = existing_dir && fs::read_dir(path).map_err(io(path))?.next().is_none();
        if existing.is_some() && !empty {
            return Err(ExportError::InvalidInput(format!(
                "{} exists: a partitioned or split export writes a new directory (it never \
                 merges into or replaces an existing one); remove it or choose another path",
                path.display()
            )));
        }
        let staging = suffixed(path, TEMP_SUFFIX);
        if staging.exists() && !staging.join(MARKER).is_file() {
            return Err(ExportError::InvalidInput(format!(
                "{} exists and is not an interrupted export's: remove it or choose another \
                 path",
                staging.display()
            )));
        }
        Ok(Target::Dir(path.to_owned()))
    }
}

/// Refuses a terminal as the output of binary data. A character device may be one; a pipe is
/// not opened here, since its reader would see an end of file when it is closed again.
fn refuse_terminal(path: &Path) -> Result<(), ExportError> {
    if fs::metadata(path).is_ok_and(|m| is_char_device(&m)) {
        let file = File::options().write(true).open(path).map_err(io(path))?;
        if file.is_terminal() {
            return Err(terminal());
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_char_device(metadata: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    metadata.file_type().is_char_device()
}

#[cfg(not(unix))]
fn is_char_device(_: &fs::Metadata) -> bool {
    false
}

/// The error for a terminal as the output.
pub(crate) fn terminal() -> ExportError {
    ExportError::InvalidInput(
        "refusing to write Parquet (binary) to a terminal: give a file, or redirect the output"
            .into(),
    )
}

/// An open output: a file of the layout, or a stream.
pub(crate) enum Out {
    File(File),
    Stream(Box<dyn Write + Send>),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Out::File(f) => f.write(buf),
            Out::Stream(s) => s.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Out::File(f) => f.write_all(buf),
            Out::Stream(s) => s.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Out::File(f) => f.flush(),
            Out::Stream(s) => s.flush(),
        }
    }
}

/// One file the export wrote (or is writing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Its final path.
    pub path: PathBuf,
    /// The partition value it belongs to (`aggregate_type`), when partitioned.
    pub partition: Option<String>,
    /// Rows in it.
    pub rows: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// The files of an export in progress; removes them when dropped unfinished.
pub(crate) struct Layout {
    target: Option<Target>,
    /// `PATH.partial`: the file, or the directory, being written.
    staging: PathBuf,
    /// Files written, with their temporary paths.
    files: Vec<(PathBuf, WrittenFile)>,
    /// The next part number of each partition.
    next_part: HashMap<Option<String>, usize>,
    stream: Option<Box<dyn Write + Send>>,
    finished: bool,
}

impl Layout {
    /// Starts an export to `target` (creating `PATH.partial/` for a directory, and removing one
    /// that an interrupted export left), or to `stream` when there is no target.
    pub(crate) fn start(
        target: Option<Target>,
        stream: Option<Box<dyn Write + Send>>,
    ) -> Result<Layout, ExportError> {
        let staging = match &target {
            Some(Target::File(path)) | Some(Target::Dir(path)) => suffixed(path, TEMP_SUFFIX),
            Some(Target::Device(path)) => path.clone(),
            None => PathBuf::new(),
        };
        if let Some(Target::Dir(_)) = &target {
            if staging.join(MARKER).is_file() {
                fs::remove_dir_all(&staging).map_err(io(&staging))?;
            }
            fs::create_dir(&staging).map_err(io(&staging))?;
            File::create(staging.join(MARKER)).map_err(io(&staging))?;
        }
        Ok(Layout {
            target,
            staging,
            files: Vec::new(),
            next_part: HashMap::new(),
            stream,
            finished: false,
        })
    }

    /// Whether files are grouped in `aggregate_type=…` directories.
    pub(crate) fn is_dir(&self) -> bool {
        matches!(self.target, Some(Target::Dir(_)))
    }

    /// Whether this layout has room for more than one file.
    pub(crate) fn splits(&self) -> bool {
        self.is_dir()
    }

    /// The final path of the export (or `-` for a stream).
    pub(crate) fn destination(&self) -> PathBuf {
        match &self.target {
            Some(Target::File(p)) | Some(Target::Dir(p)) | Some(Target::Device(p)) => p.clone(),
            None => PathBuf::from("-"),
        }
    }

    /// Opens the next file (of `partition`, when partitioned); returns it and its index.
    pub(crate) fn open(&mut self, partition: Option<&str>) -> Result<(Out, usize), ExportError> {
        let index = self.files.len();
        let (temp, path) = match &self.target {
            None => {
                let stream = self
                    .stream
                    .take()
                    .ok_or_else(|| ExportError::Internal("a stream holds one file only".into()))?;
                self.files
                    .push((PathBuf::new(), self.written(PathBuf::from("-"), None)));
                return Ok((Out::Stream(stream), index));
            }
            Some(Target::Device(path)) => {
                let file = File::options().write(true).open(path).map_err(io(path))?;
                self.files
                    .push((path.clone(), self.written(path.clone(), None)));
                return Ok((Out::File(file), index));
            }
            Some(Target::File(path)) => (self.staging.clone(), path.clone()),
            Some(Target::Dir(path)) => {
                let key = partition.map(str::to_owned);
                let part = self.next_part.entry(key).or_insert(0);
                let name = format!("part-{part:04}.parquet");
                *part += 1;
                let (temp_dir, final_dir) = match partition {
                    Some(value) => {
                        let dir = partition_dir(value)?;
                        (self.staging.join(&dir), path.join(&dir))
                    }
                    None => (self.staging.clone(), path.clone()),
                };
                fs::create_dir_all(&temp_dir).map_err(io(&temp_dir))?;
                (
                    suffixed(&temp_dir.join(&name), TEMP_SUFFIX),
                    final_dir.join(&name),
                )
            }
        };
        let file = File::create(&temp).map_err(io(&temp))?;
        let written = self.written(path, partition);
        self.files.push((temp, written));
        Ok((Out::File(file), index))
    }

    fn written(&self, path: PathBuf, partition: Option<&str>) -> WrittenFile {
        WrittenFile {
            path,
            partition: partition.map(str::to_owned),
            rows: 0,
            bytes: 0,
        }
    }

    /// Records a closed file's rows and size, syncing it to disk.
    pub(crate) fn closed(
        &mut self,
        index: usize,
        out: &mut Out,
        rows: u64,
        bytes: u64,
    ) -> Result<(), ExportError> {
        let (temp, written) = &mut self.files[index];
        written.rows = rows;
        written.bytes = bytes;
        match out {
            Out::File(file) if matches!(self.target, Some(Target::Device(_))) => {
                file.flush().map_err(io(temp))?
            }
            Out::File(file) => file.sync_all().map_err(io(temp))?,
            Out::Stream(stream) => stream.flush().map_err(io(Path::new("-")))?,
        }
        Ok(())
    }

    /// The final path of file `index`.
    pub(crate) fn path_of(&self, index: usize) -> &Path {
        &self.files[index].1.path
    }

    /// Whether no file was opened yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Gives every file its final name; returns them.
    pub(crate) fn finish(mut self) -> Result<Vec<WrittenFile>, ExportError> {
        match self.target.clone() {
            Some(Target::File(path)) => {
                fs::rename(&self.staging, &path).map_err(io(&path))?;
                sync_dir(path.parent());
            }
            Some(Target::Dir(path)) => {
                for (temp, written) in &self.files {
                    let name = temp.with_extension("");
                    fs::rename(temp, &name).map_err(io(&written.path))?;
                }
                let mut dirs: Vec<PathBuf> = self
                    .files
                    .iter()
                    .filter_map(|(temp, _)| temp.parent().map(Path::to_owned))
                    .collect();
                dirs.sort();
                dirs.dedup();
                for dir in dirs {
                    sync_dir(Some(&dir));
                }
                let marker = self.staging.join(MARKER);
                fs::remove_file(&marker).map_err(io(&marker))?;
                sync_dir(Some(&self.staging));
                fs::rename(&self.staging, &path).map_err(io(&path))?;
                sync_dir(path.parent());
            }
            Some(Target::Device(_)) | None => {}
        }
        self.finished = true;
        Ok(std::mem::take(&mut self.files)
            .into_iter()
            .map(|(_, written)| written)
            .collect())
    }
}

/// Syncs a directory, so that the names just given in it survive a crash (best effort: not
/// every platform can open a directory).
fn sync_dir(dir: Option<&Path>) {
    let dir = match dir {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// An export that did not finish leaves nothing: its temporary file, or directory, goes.
impl Drop for Layout {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let removed = match &self.target {
            Some(Target::File(_)) if self.staging.exists() => fs::remove_file(&self.staging),
            Some(Target::Dir(_)) if self.staging.exists() => fs::remove_dir_all(&self.staging),
            _ => Ok(()),
        };
        if let Err(e) = removed {
            tracing_warn(&self.staging, &e);
        }
    }
}

fn tracing_warn(path: &Path, error: &std::io::Error) {
    eprintln!(
        "edbx-parquet: could not remove the unfinished export {}: {error}",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_cannot_escape_or_collide() {
        assert_eq!(escape_partition_value("orders"), "orders");
        assert_eq!(escape_partition_value("order_lines-2"), "order_lines-2");
        assert_eq!(escape_partition_value(".."), "%2E%2E");
        assert_eq!(escape_partition_value("."), "%2E");
        assert_eq!(escape_partition_value("../../etc"), "%2E%2E%2F%2E%2E%2Fetc");
        assert_eq!(escape_partition_value("a\\b"), "a%5Cb");
        assert_eq!(escape_partition_value("a=b"), "a%3Db");
        assert_eq!(escape_partition_value("a\0b"), "a%00b");
        assert_eq!(escape_partition_value("Orders"), "%4Frders");
        assert_eq!(escape_partition_value("é"), "%C3%A9");
        assert_eq!(escape_partition_value("%41"), "%2541");
        assert_eq!(escape_partition_value(""), DEFAULT_PARTITION);
        assert_eq!(
            escape_partition_value("__hive_default_partition__"),
            "%5F_hive_default_partition__"
        );
        // Injective, also after case folding, and never a separator or a dot name.
        let values = [
            "",
            "a",
            "A",
            "%41",
            "%2541",
            "..",
            ".",
            "a/b",
            "a%2Fb",
            "ab",
            "aB",
            "Ab",
            "é",
            "É",
            "__HIVE_DEFAULT_PARTITION__",
            "__hive_default_partition__",
            "%",
            "%25",
        ];
        let mut seen = std::collections::HashSet::new();
        for v in values {
            let escaped = escape_partition_value(v);
            assert!(!escaped.contains('/') && !escaped.contains('\\') && !escaped.contains('\0'));
            assert!(escaped != "." && escaped != ".." && !escaped.starts_with('.'));
            assert!(
                seen.insert(escaped.to_lowercase()),
                "{v:?} collides ({escaped})"
            );
        }
    }

    #[test]
    fn overlong_partition_names_are_refused() {
        assert!(partition_dir(&"a".repeat(240)).is_ok());
        let e = partition_dir(&"A".repeat(100)).unwrap_err().to_string();
        assert!(e.contains("too long"), "{e}");
    }

    #[test]
    fn targets_are_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.parquet");
        assert_eq!(
            Target::check(&file, false).unwrap(),
            Target::File(file.clone())
        );
        let missing = dir.path().join("nope/events.parquet");
        assert!(
            Target::check(&missing, false)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        // A directory export never goes into a non-empty directory.
        let out = dir.path().join("lake");
        assert_eq!(Target::check(&out, true).unwrap(), Target::Dir(out.clone()));
        fs::create_dir(&out).unwrap();
        assert!(
            Target::check(&out, true).is_ok(),
            "an empty directory is fine"
        );
        assert!(
            Target::check(&out, false)
                .unwrap_err()
                .to_string()
                .contains("is a directory")
        );
        fs::write(out.join("x"), b"").unwrap();
        assert!(
            Target::check(&out, true)
                .unwrap_err()
                .to_string()
                .contains("exists")
        );
        // A stale `.partial` directory is reused only if an export left it.
        let other = dir.path().join("other");
        fs::create_dir(dir.path().join("other.partial")).unwrap();
        assert!(
            Target::check(&other, true)
                .unwrap_err()
                .to_string()
                .contains("not an interrupted export")
        );
        fs::write(dir.path().join("other.partial").join(MARKER), b"").unwrap();
        assert!(Target::check(&other, true).is_ok());
    }

    #[test]
    fn a_directory_gets_its_name_only_when_finished_and_is_removed_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("lake");
        let mut layout = Layout::start(Some(Target::Dir(out.clone())), None).unwrap();
        let (mut file, i) = layout.open(Some("orders")).unwrap();
        layout.closed(i, &mut file, 0, 0).unwrap();
        let (mut file, j) = layout.open(Some("orders")).unwrap();
        layout.closed(j, &mut file, 0, 0).unwrap();
        let staging = dir.path().join("lake.partial");
        assert!(staging.join(MARKER).is_file());
        assert!(
            staging
                .join("aggregate_type=orders/part-0001.parquet.partial")
                .is_file()
        );
        assert!(!out.exists());
        let files = layout.finish().unwrap();
        assert_eq!(
            files[1].path,
            out.join("aggregate_type=orders/part-0001.parquet")
        );
        assert!(
            out.join("aggregate_type=orders/part-0000.parquet")
                .is_file()
        );
        assert!(!out.join(MARKER).exists() && !staging.exists());

        let again = dir.path().join("again");
        let mut layout = Layout::start(Some(Target::Dir(again.clone())), None).unwrap();
        let (_file, _) = layout.open(None).unwrap();
        assert!(
            dir.path()
                .join("again.partial/part-0000.parquet.partial")
                .is_file()
        );
        drop(layout);
        assert!(!dir.path().join("again.partial").exists() && !again.exists());
    }
}
