//! The command line, as clap reads it. `--help`, the man page and the shell completions are all
//! generated from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  edbx profile add local --host 127.0.0.1 --tenant default --token-file ~/.eventdbx.token
  edbx ping
  edbx create orders ord-1 order.placed '{\"total\": 42.15}'
  edbx apply orders ord-1 order.paid @payment.json --note 'paid at the till'
  echo '{\"status\": \"shipped\"}' | edbx apply orders ord-1 order.shipped -
  edbx get orders ord-1
  edbx list --type orders --filter \"status = 'paid'\" --all -o ndjson | jq .aggregate_id
  edbx events orders ord-1 --follow
  edbx subscribe --type orders --checkpoint-file orders.ckpt | jq -c .payload
  edbx export --out backup.ndjson && edbx import backup.ndjson --log import.log
  edbx export --format parquet --out lake --partition-by aggregate_type --skip-archived
  edbx audit
  edbx shell
  edbx ui

For every connection setting, a flag beats its variable (EVENTDBX_HOST, EVENTDBX_PORT,
EVENTDBX_TOKEN, EVENTDBX_TENANT_ID, EVENTDBX_NO_NOISE), which beats the profile (--profile,
EDBX_PROFILE, or the one chosen with `edbx profile use`). Any of --token, --token-file and
--token-stdin (one at most) beats EVENTDBX_TOKEN. The token is never printed.";

/// The filter and sort grammar, in `edbx list --help` (the README says the same; the library's
/// version is `crates/edbx/src/ops/filters.md`, whose examples the test suite runs).
pub const FILTERS: &str = "\
Filters (--filter): a boolean expression the server evaluates on each aggregate while it scans:

    expr       := or
    or         := and ( OR and )*
    and        := not ( AND not )*
    not        := NOT not | '(' expr ')' | comparison
    comparison := field [NOT] op value  |  field [NOT] IN [ value, … ]
    op         := =  |  !=  |  >  |  <  |  LIKE
    value      := 'text' | \"text\" | number | true | false | null | bare_word (a text)

  Keywords are case-insensitive. There is no >=, <=, == or <>; IN takes square brackets.
  Fields: aggregate_type, aggregate_id, merkle_root (texts), version (a number), archived (a
  boolean; naming it also lists archived aggregates), created_at and updated_at (milliseconds
  since the epoch), extensions.<key>… (the @ metadata, e.g. extensions.@trace.id), and anything
  else is a dot path into the state (status, address.city, items.0). State values are stored as
  text and compared as what they spell: \"42\" is the number 42. = and != match values of the
  same type only; > and < compare numbers only; LIKE matches whole texts, % or * for any run, _
  or ? for one character. A field an aggregate lacks matches only `!= null`; a mistyped field
  name is not an error, it matches nothing (the type is aggregate_type, not type).

  Examples:
    --filter \"status = 'paid' AND total > 40\"
    --filter \"(status = 'open' OR total > 40) AND NOT vip = true\"
    --filter \"status IN ['paid', 'open']\"        --filter \"aggregate_id LIKE 'ord-%'\"
    --filter \"addr.city = 'Oslo'\"                --filter \"extensions.@trace.id = 't-1'\"

Sorting (--sort): comma-separated FIELD:asc|desc keys over aggregate_type, aggregate_id,
archived, created_at and updated_at, e.g. \"created_at:desc\" or \"aggregate_id:asc,
updated_at:desc\". Only a single created_at or updated_at key can be paged past the first page:
the server gives other sorts no cursor.";

/// The schema set `edbx schemas replace` takes, in its long help.
pub const SCHEMAS: &str = "\
Schema set: a JSON object keyed by aggregate type, each value one schema, in the shape `edbx
schemas list` prints (start from its output, edit, replace):

    {\"orders\": {
        \"aggregate\": \"orders\",
        \"events\": {\"order.placed\": {\"fields\": [\"total\", \"status\"]}},
        \"snapshot_threshold\": null,
        \"locked\": false, \"field_locks\": [],
        \"hidden\": false, \"hidden_fields\": [],
        \"created_at\": \"2026-01-01T00:00:00Z\", \"updated_at\": \"2026-01-01T00:00:00Z\"}}

  events maps each event type to the fields its payload carries. Keep the other keys
  (snapshot_threshold, locked, field_locks, hidden, hidden_fields, created_at, updated_at) as
  `edbx schemas list` prints them unless you mean to change them. Every schema not in the set
  is removed. `edbx tenant publish TENANT` stores the live set as a new version.";

#[derive(Debug, Parser)]
#[command(
    name = "edbx",
    version,
    about = "Work with an EventDBX server from a shell: every operation, bulk import and export, \
             a REPL, and a security audit",
    after_help = EXAMPLES,
    after_long_help = format!("{EXAMPLES}\n\n{}", crate::exit::EXIT_CODES),
)]
pub struct Cli {
    #[command(flatten)]
    pub out: OutArgs,
    /// More detail on stderr: where the settings came from, connecting, timings, and the
    /// client's events (connecting again, requests resent on another connection, listing
    /// cursors repaired); -vv adds its traces. The token is never shown.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Last: their heading holds for the flags after them.
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the server is and who we are: under their own heading in every command's help, after
/// the command's own flags.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Connection (every command)")]
pub struct ConnArgs {
    /// Server host [env: EVENTDBX_HOST; default 127.0.0.1].
    #[arg(long, global = true, env = "EVENTDBX_HOST", hide_env = true)]
    pub host: Option<String>,
    /// Control port [env: EVENTDBX_PORT; default 6363].
    #[arg(long, global = true, env = "EVENTDBX_PORT", hide_env = true)]
    pub port: Option<u16>,
    /// Token (prefer --token-file or --token-stdin: a flag shows in the process list and the
    /// shell history). Any of the three token flags beats EVENTDBX_TOKEN, which beats the
    /// profile [env: EVENTDBX_TOKEN].
    #[arg(long, global = true, conflicts_with_all = ["token_file", "token_stdin"])]
    pub token: Option<String>,
    /// Read the token from this file (surrounding whitespace is ignored; a file other users
    /// can read draws a warning).
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        conflicts_with = "token_stdin"
    )]
    pub token_file: Option<PathBuf>,
    /// Read the token from the first line of stdin.
    #[arg(long, global = true)]
    pub token_stdin: bool,
    /// Tenant [env: EVENTDBX_TENANT_ID; default: the server's default tenant].
    #[arg(long, global = true, env = "EVENTDBX_TENANT_ID", hide_env = true)]
    pub tenant: Option<String>,
    /// Ask for a plaintext session (used only if the server allows it) [env: EVENTDBX_NO_NOISE].
    #[arg(long, global = true, overrides_with = "noise")]
    pub no_noise: bool,
    /// Ask for a Noise session even if EVENTDBX_NO_NOISE or the profile asks for plaintext.
    #[arg(long, global = true, overrides_with = "no_noise")]
    pub noise: bool,
    /// Deadline of each call, in seconds [default 10].
    #[arg(long, global = true, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Use this profile of the config file [env: EDBX_PROFILE].
    #[arg(long, global = true, env = "EDBX_PROFILE", hide_env = true)]
    pub profile: Option<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct OutArgs {
    /// Output format: JSON (pretty on a terminal, compact when piped), NDJSON (one value per
    /// line), or a table (lists and events). Default: a table for listings on a terminal,
    /// NDJSON when piped; JSON for single values.
    #[arg(short, long, global = true, value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Ndjson,
    Table,
}

/// Options of an event write.
#[derive(Debug, Clone, Default, Args)]
pub struct WriteArgs {
    /// A note stored with the event (at most 128 characters).
    #[arg(long)]
    pub note: Option<String>,
    /// Metadata: a JSON object of `@`-keys, inline, @file, or - for stdin.
    #[arg(long, value_name = "JSON")]
    pub metadata: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(flatten)]
    Op(Op),
    /// List aggregates: one page, or --all of them (`edbx list --help`: the filter and sort
    /// grammar).
    #[command(after_long_help = FILTERS)]
    List(ListArgs),
    /// List an aggregate's events: one page, --take N, --all, or --follow new ones as they
    /// come (exit 3 if the aggregate does not exist or is archived).
    Events(EventsArgs),
    /// Every event of the store (or of --type), in order per aggregate, one line each: from
    /// the beginning, from now, or on from a --checkpoint-file; catches up, then follows.
    ///
    /// Lines are `edbx export`'s (aggregate_type, aggregate_id, event_type as written,
    /// payload, note, metadata, version, created_at, event_id, issued_by), so a subscription
    /// saved to a file imports with `edbx import`. An aggregate's events come in version order;
    /// aggregates interleave. No event is skipped, also while many clients write and across
    /// server restarts (connection failures are retried until the server is back).
    ///
    /// With --checkpoint-file, the subscription starts from the file when it exists (--from
    /// applies only when it does not) and saves its checkpoint there — atomically, and only
    /// after the lines it covers are flushed: a run killed at any point and started again
    /// with the same file prints nothing less (some lines may come twice). Ctrl-C saves and
    /// exits 130. Archived aggregates, whose events the server does not serve, are named on
    /// stderr. `docs/SUBSCRIPTIONS.md` has the guarantees.
    Subscribe(SubscribeArgs),
    /// Connect, and report the server's address, the session's security, the handshake and
    /// round-trip times.
    #[command(visible_alias = "status")]
    Ping {
        /// Round trips to time.
        #[arg(long, default_value_t = 5)]
        count: u32,
    },
    /// Check the server from outside, read-only, as an attacker would: exit 7 on a serious
    /// finding, 4 if no control port answers. Severity follows where the port listens (loopback
    /// only, or beyond) and where the audit runs from.
    Audit,
    /// Bulk-apply events from NDJSON (one event per line), with a result log and --resume.
    ///
    /// Every line is checked before the first is sent, by the rules a write applies (aggregate
    /// type and id, event type, payload object, note, metadata keys) and, for lines with a
    /// version, each aggregate's versions in order; a file with a bad line sends nothing.
    ///
    /// A line with a "version" (as export writes them) is idempotent: the aggregate is read on
    /// the target once; a version it already holds with the same event type (as written),
    /// payload, note and metadata is skipped (counted as "present"), one it holds with other
    /// content is rejected as "conflict", one past its end as "gap" — neither is written, and
    /// the aggregate's later lines are skipped. Importing an export into the server it came
    /// from changes nothing. A line without a version is created (an aggregate's first line)
    /// or appended, whatever is there.
    ///
    /// The result log records the destination (address and tenant): --resume refuses another
    /// one, and one that does not hold the writes the log records. Lines the log shows
    /// rejected or not sent may be edited before --resume; lines it shows applied may not.
    Import(ImportArgs),
    /// Write aggregates or their events as NDJSON (events import back with `edbx import`) or
    /// as Parquet (for DuckDB, Polars, pandas, Spark).
    ///
    /// NDJSON: each event line carries its version (which makes importing it again
    /// idempotent) and the original event's created_at, event_id and issued_by. Importing into
    /// another server keeps every aggregate's events, their order, versions, types as written,
    /// payloads, notes and metadata; the target gives each event its own time, id, writer (the
    /// importing token) and hashes.
    ///
    /// Parquet (--format parquet --out PATH): typed columns (version and event_id as int64,
    /// created_at as a UTC timestamp, payload and metadata as JSON text; docs/PARQUET.md lists
    /// them), zstd, written in row groups as the store is read, so memory stays bounded.
    /// --partition-by aggregate_type writes a Hive-style directory
    /// (PATH/aggregate_type=orders/part-0000.parquet, …) with files of at most
    /// --max-file-size, which DuckDB, Polars and Spark read as one dataset. Written under
    /// temporary names (PATH.partial) and renamed when complete: an interrupted export leaves
    /// no file ending in .parquet.
    ///
    /// The server does not serve the events of archived aggregates: an export of events that
    /// meets one writes the rest, names it and exits 7, unless --skip-archived. `dbx backup`
    /// on the server host (server stopped) keeps everything, archived aggregates included.
    Export(ExportArgs),
    /// Serve a web UI for the server: aggregate types and counts, aggregates with filters, an
    /// aggregate's state, timeline and state at any version, Merkle checks, live events and
    /// charts. It listens on loopback only and prints a one-time login link (Ctrl-C stops it).
    ///
    /// The link logs one browser in, once (it sets a session cookie, then stops working);
    /// every other request is refused, as is any request whose Host header is not this
    /// loopback address. The EventDBX token never reaches the browser. Read-only unless
    /// --allow-writes. More in docs/UI.md.
    Ui(UiArgs),
    /// An interactive shell over one connection: history, line editing, completion. Reads
    /// commands from a pipe too. Exits with the code of the last command that failed (0 if
    /// none did).
    Shell(ShellArgs),
    /// Named connection settings in the config file.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// The commands that are one call to the server (`commands/ops.rs`).
#[derive(Debug, Subcommand)]
pub enum Op {
    /// Create an aggregate with its first event (fails if it exists).
    Create {
        aggregate_type: String,
        aggregate_id: String,
        event_type: String,
        /// The payload: a JSON object, inline, @file, or - for stdin.
        payload: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Append an event (creates the aggregate if it does not exist).
    Apply {
        aggregate_type: String,
        aggregate_id: String,
        event_type: String,
        /// The payload: a JSON object, inline, @file, or - for stdin.
        payload: String,
        #[command(flatten)]
        write: WriteArgs,
        /// Write the event even if the server could not list it afterwards (its stored row
        /// would exceed 7,605 bytes, or the aggregate's JSON 7,597 bytes).
        #[arg(long)]
        allow_unlistable: bool,
    },
    /// Append an event computed from RFC 6902 operations on the current state.
    Patch {
        aggregate_type: String,
        aggregate_id: String,
        event_type: String,
        /// A JSON array of add/replace/remove operations, inline, @file, or - for stdin.
        patch: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Show an aggregate (exit 3 if there is none).
    Get {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// Show an aggregate with its references resolved.
    Resolve {
        aggregate_type: String,
        aggregate_id: String,
        /// How deep to follow references (server default 2, at most 5).
        #[arg(long)]
        depth: Option<u32>,
    },
    /// Show fields of an aggregate's state by dot path.
    Select {
        aggregate_type: String,
        aggregate_id: String,
        /// Dot paths: `total`, `address.city`, `items.0`.
        #[arg(required = true)]
        fields: Vec<String>,
    },
    /// Check an aggregate's history against its Merkle root: exit 0 intact, 7 on a mismatch, 8
    /// if it cannot be checked (archived, or too large for the server to send). Appends running
    /// meanwhile are fine: the events up to the version the root was stored for are checked.
    Verify {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// Archive an aggregate.
    Archive {
        aggregate_type: String,
        aggregate_id: String,
        /// Why (stored with the archive).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Restore an archived aggregate.
    Restore {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// Snapshots: create, list, get.
    #[command(subcommand)]
    Snapshots(SnapshotCommand),
    /// Aggregates whose reference fields point at this one.
    Referrers {
        aggregate_type: String,
        aggregate_id: String,
    },
    /// The tenant's schemas.
    #[command(subcommand)]
    Schemas(SchemaCommand),
    /// Tenant administration (needs a token with `tenant.manage`).
    #[command(subcommand)]
    Tenant(TenantCommand),
}

#[derive(Debug, Clone, Args)]
pub struct UiArgs {
    /// Where to listen: a loopback address and port (port 0 picks a free one). Other
    /// addresses are refused; reach the UI from elsewhere through a tunnel (ssh -L).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// Offer apply, patch, archive and restore in the pages (each confirmed, CSRF-protected),
    /// with this command's token.
    #[arg(long)]
    pub allow_writes: bool,
    /// How often new events are looked for while none come, in milliseconds (at least 50;
    /// sooner after some came). Live events come from the engine's subscription.
    #[arg(long, value_name = "MS", default_value_t = 500)]
    pub poll_interval: u64,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct ShellArgs {
    /// Stop at the first command that fails, exiting with its code (for scripts).
    #[arg(long)]
    pub stop_on_error: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Only aggregates of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub aggregate_type: Option<String>,
    /// A filter expression, e.g. "status = 'paid' AND total > 40" (the grammar: `edbx list
    /// --help`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Sort keys, e.g. "created_at:desc" (only one created_at/updated_at key pages past the
    /// first page).
    #[arg(long)]
    pub sort: Option<String>,
    /// Also list archived aggregates.
    #[arg(long)]
    pub include_archived: bool,
    /// Only archived aggregates.
    #[arg(long)]
    pub archived_only: bool,
    #[command(flatten)]
    pub page: PageArgs,
    /// This many rows when that many exist (the same as --take N; with --all: stop after N
    /// rows).
    #[arg(long)]
    pub limit: Option<u64>,
}

/// Paging of `list` and `events`.
#[derive(Debug, Clone, Args)]
pub struct PageArgs {
    /// This many rows when that many exist, following cursors over the pages the server cuts
    /// short (a shortfall it cannot continue fails with exit 3); with --all, the page size.
    /// Without --take or --all: one page, and a note on stderr when more may follow.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub take: Option<u64>,
    /// Start after this cursor.
    #[arg(long)]
    pub cursor: Option<String>,
    /// Every row, following cursors to the end (never skipping rows where the server shortens
    /// pages).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    pub aggregate_type: String,
    pub aggregate_id: String,
    #[command(flatten)]
    pub page: PageArgs,
    /// Start after this version.
    #[arg(long)]
    pub after_version: Option<u64>,
    /// Keep polling and print new events as they arrive, like `tail -f` (Ctrl-C stops it,
    /// exit 130).
    #[arg(long)]
    pub follow: bool,
    /// Polling interval of --follow, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub interval: u64,
}

#[derive(Debug, Clone, Args)]
pub struct SubscribeArgs {
    /// Only aggregates of this type (repeat for more types).
    #[arg(long = "type", value_name = "TYPE")]
    pub aggregate_types: Vec<String>,
    /// Where to start when there is no checkpoint file: the first event of every aggregate,
    /// or the events written from now on.
    #[arg(long, value_enum, default_value = "beginning")]
    pub from: StartFrom,
    /// Start from the checkpoint in this file when it exists, and keep saving it there.
    #[arg(long, value_name = "PATH")]
    pub checkpoint_file: Option<PathBuf>,
    /// Exit 0 once caught up: every event written before some moment after the start is
    /// printed (and the checkpoint saved).
    #[arg(long)]
    pub until_caught_up: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartFrom {
    Beginning,
    Now,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot an aggregate's current state.
    Create {
        aggregate_type: String,
        aggregate_id: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// List snapshots (all, or of a type, an aggregate, a version).
    List {
        #[arg(long = "type", value_name = "TYPE")]
        aggregate_type: Option<String>,
        /// Needs --type.
        #[arg(long = "id", value_name = "ID", requires = "aggregate_type")]
        aggregate_id: Option<String>,
        #[arg(long)]
        version: Option<u64>,
    },
    /// Show one snapshot.
    Get { snapshot_id: u64 },
}

/// Confirmation of a command that removes something.
#[derive(Debug, Clone, Copy, Args)]
pub struct Confirm {
    /// Do it without asking (needed when stdin or stderr is not a terminal).
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum SchemaCommand {
    /// Show the tenant's schemas.
    List,
    /// Replace the tenant's whole schema set (aggregate type → schema): inline, @file or -.
    /// Every schema not in the new set is removed: asks on a terminal, needs --yes otherwise.
    /// (`edbx schemas replace --help`: the format.)
    #[command(after_long_help = SCHEMAS)]
    Replace {
        schemas: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Assign a tenant to a shard.
    Assign { tenant_id: String, shard_id: String },
    /// Remove a tenant's shard assignment (asks on a terminal, needs --yes otherwise).
    Unassign {
        tenant_id: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Set a tenant's storage quota, in MiB.
    QuotaSet {
        tenant_id: String,
        max_storage_mb: u64,
    },
    /// Remove a tenant's quota (asks on a terminal, needs --yes otherwise).
    QuotaClear {
        tenant_id: String,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Recompute a tenant's storage use.
    QuotaRecalc { tenant_id: String },
    /// Reopen a tenant's store.
    Reload { tenant_id: String },
    /// Publish the tenant's schemas as a new version.
    Publish {
        tenant_id: String,
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        #[arg(long = "label")]
        labels: Vec<String>,
        #[arg(long)]
        activate: bool,
        #[arg(long)]
        force: bool,
        #[arg(long)]
        reload: bool,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// NDJSON file, or - for stdin. Each line: {"aggregate_type", "aggregate_id",
    /// "event_type", "payload", and optionally "note", "metadata" and "version" (plus
    /// "created_at", "event_id", "issued_by" from export, kept for the record, not restored)}.
    pub file: String,
    /// Aggregates written at the same time (each aggregate's lines stay in order).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The result log (NDJSON: one record per line of input) [default: FILE.log].
    #[arg(long, value_name = "PATH")]
    pub log: Option<PathBuf>,
    /// Continue an interrupted import: skip the lines the log shows applied, and check the
    /// ones whose outcome was unknown against the server before sending them. Refused when
    /// the connection goes to another server or tenant than the log's.
    #[arg(long)]
    pub resume: bool,
    /// Progress on stderr: a bar on a terminal, periodic lines otherwise.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
    /// Write events even if the server could not list them afterwards (a stored row over
    /// 7,605 bytes, or an aggregate's JSON over 7,597 bytes); such lines are rejected otherwise.
    #[arg(long)]
    pub allow_unlistable: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Only aggregates of this type.
    #[arg(long = "type", value_name = "TYPE")]
    pub aggregate_type: Option<String>,
    /// What to write: every event (the import format), or the aggregates' current state.
    #[arg(long, value_enum, default_value = "events")]
    pub what: ExportWhat,
    /// The file format: NDJSON (importable with `edbx import`) or Parquet (needs --out).
    #[arg(long, value_enum, default_value = "ndjson")]
    pub format: ExportFormat,
    /// Output file, written whole or not at all (as PATH.partial, renamed when complete; a
    /// symlink is followed and kept) [default: stdout, for NDJSON]. A pipe or device is
    /// written into, never replaced. For Parquet, a directory with --partition-by or
    /// --max-file-size; `-` is stdout (refused on a terminal).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Parquet: one directory per aggregate type, Hive style
    /// (PATH/aggregate_type=orders/part-0000.parquet); the files then leave the column out.
    #[arg(long, value_enum, value_name = "COLUMN")]
    pub partition_by: Option<PartitionColumn>,
    /// Parquet: close a file at about this size and go on in the next (part-0001.parquet, …);
    /// makes PATH a directory. Bytes, or with K, M or G (powers of 1024)
    /// [default with --partition-by: 256M].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_file_size: Option<u64>,
    /// Parquet: rows per row group (memory holds one, compressed) [default: 65536].
    #[arg(long, value_name = "ROWS")]
    pub row_group_size: Option<usize>,
    /// Parquet: how data pages are compressed.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compression: ParquetCompression,
    /// With --what aggregates: archived aggregates too. (The events of archived aggregates
    /// cannot be read: restore them to export their events.)
    #[arg(long)]
    pub include_archived: bool,
    /// With --what events: leave archived aggregates out and exit 0. Without it, an export
    /// that meets an archived aggregate (whose events the server does not serve) writes the
    /// rest, names what it left out and exits 7; `dbx backup` on the server host keeps
    /// everything.
    #[arg(long)]
    pub skip_archived: bool,
    /// Aggregates whose events are read at the same time.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Progress on stderr: a bar on a terminal, periodic lines otherwise.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: Progress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportWhat {
    Events,
    Aggregates,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PartitionColumn {
    #[value(name = "aggregate_type")]
    AggregateType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ParquetCompression {
    Zstd,
    None,
}

/// A size in bytes: `1048576`, `512K`, `256M`, `1G` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, ""),
    };
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        _ => {
            return Err(format!(
                "{text:?} is not a size (bytes, or a number with K, M or G)"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size (bytes, or a number with K, M or G)"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Progress {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Add (or replace) a profile: the connection flags given here are stored. A token from
    /// --token-file is stored as that path; from --token or --token-stdin, in the file itself
    /// (which is kept readable by you only).
    Add { name: String },
    /// List the profiles (tokens are never shown).
    List,
    /// Make a profile the default.
    Use { name: String },
    /// Remove a profile.
    Remove { name: String },
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_are_bytes_or_powers_of_1024() {
        assert_eq!(parse_size("65536"), Ok(65_536));
        assert_eq!(parse_size("64K"), Ok(65_536));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
        for bad in ["", "K", "lots", "1T", "-1", "99999999999999999999G"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
