//! `edbx export --format parquet`: the files read back with the `parquet` crate, the checks
//! made before connecting, and exports interrupted (Ctrl-C, SIGKILL) that leave nothing that
//! looks complete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::json;

use crate::common::{Env, finish, signal, wait_until};

fn batches(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

fn rows(path: &Path) -> usize {
    batches(path).iter().map(RecordBatch::num_rows).sum()
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// `n` one-event aggregates of type `bulk`, through `edbx import` (creates: the fastest writes).
fn bulk(env: &Env, n: usize) {
    let lines: String = (0..n)
        .map(|i| {
            format!(
                "{}\n",
                json!({"aggregate_type": "bulk", "aggregate_id": format!("b-{i:06}"),
                       "event_type": "bulk.loaded", "payload": {"i": i, "label": format!("n° {i}")}})
            )
        })
        .collect();
    let input = env.path("bulk.ndjson");
    std::fs::write(&input, lines).unwrap();
    env.run(&[
        "import",
        input.to_str().unwrap(),
        "--concurrency",
        "16",
        "--progress",
        "never",
    ])
    .ok();
}

#[test]
fn parquet_options_are_checked_before_connecting() {
    let env = Env::start();
    // Nothing listens on port 1: a run that connected would exit 4.
    let run = |args: &[&str]| {
        let mut command = env.cmd();
        command.env("EVENTDBX_PORT", "1").args(args);
        crate::common::Run::of(command.output(), args)
    };
    let e = run(&["export", "--format", "parquet"]).code(2);
    assert!(
        e.stderr.contains("--format parquet needs --out PATH"),
        "{}",
        e.stderr
    );
    let e = run(&["export", "--partition-by", "aggregate_type", "--out", "x"]).code(2);
    assert!(
        e.stderr
            .contains("--partition-by goes with --format parquet"),
        "{}",
        e.stderr
    );
    // `edbx export --format parquet --out OUT …`, each refused with its reason.
    let out = env.path("x.parquet");
    let missing = env.path("missing/x.parquet");
    let lake = env.path("lake");
    std::fs::create_dir(&lake).unwrap();
    std::fs::write(lake.join("keep.txt"), b"mine").unwrap();
    let partitioned = ["--partition-by", "aggregate_type"];
    for (target, extra, reason) in [
        (&out, &["--max-file-size", "1K"][..], "at least 65536 bytes"),
        (&out, &["--max-file-size", "lots"], "is not a size"),
        (
            &out,
            &["--include-archived"],
            "--include-archived goes with --what aggregates",
        ),
        (&missing, &[], "does not exist"),
        (&lake, &partitioned, "never merges into or replaces"),
        (&lake, &[], "is a directory"),
    ] {
        let mut args = vec![
            "export",
            "--format",
            "parquet",
            "--out",
            target.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let e = run(&args).code(2);
        assert!(e.stderr.contains(reason), "{args:?}: {}", e.stderr);
    }
    assert_eq!(std::fs::read(lake.join("keep.txt")).unwrap(), b"mine");
    assert!(!env.path("x.parquet").exists() && !env.path("x.parquet.partial").exists());

    // Binary output is refused on a terminal, before connecting.
    let (terminal, tty) = crate::pty::Terminal::open();
    let child = env
        .cmd()
        .env("EVENTDBX_PORT", "1")
        .args(["export", "--format", "parquet", "--out", "-"])
        .stdout(Stdio::from(tty.try_clone().unwrap()))
        .stderr(Stdio::from(tty))
        .spawn()
        .unwrap();
    terminal.expect("refusing to write Parquet (binary) to a terminal", 0);
    assert_eq!(
        finish(child, Duration::from_secs(30), "export to a terminal").code,
        2
    );
}

#[test]
fn parquet_exports_of_events_and_aggregates_read_back() {
    let env = Env::start();
    let client = env.client();
    for (t, id, event_type, payload) in [
        (
            "orders",
            "o-1",
            "order.placed",
            json!({"total": 42.15, "city": "Zürich ✓"}),
        ),
        ("orders", "o-2", "order.placed", json!({"total": 7})),
        (
            "customers",
            "c-1",
            "customer.joined",
            json!({"name": "Zoë"}),
        ),
        (
            "customers",
            "c-2",
            "customer.joined",
            json!({"name": "gone"}),
        ),
    ] {
        let create = client.as_async().create(t, id, event_type, &payload);
        client.run(create).unwrap();
    }
    env.run(&[
        "apply",
        "orders",
        "o-1",
        "order.paid",
        r#"{"status": "paid"}"#,
        "--note",
        "till",
    ])
    .ok();
    env.run(&["archive", "customers", "c-2"]).ok();

    // Events, one file: archived aggregates are named, and the exit says the file is not whole.
    let out = env.path("events.parquet");
    let path = out.to_str().unwrap();
    let e = env
        .run(&[
            "export",
            "--format",
            "parquet",
            "--out",
            path,
            "--progress",
            "never",
        ])
        .code(7);
    assert!(
        e.stderr
            .contains("does not hold every event: it leaves out 1 archived aggregate(s)")
            && e.stderr.contains("customers/c-2"),
        "{}",
        e.stderr
    );
    let report = e.json();
    assert_eq!(
        (
            &report["format"],
            &report["what"],
            &report["rows"],
            &report["aggregates"],
            &report["files"]
        ),
        (
            &json!("parquet"),
            &json!("events"),
            &json!(4),
            &json!(3),
            &json!(1)
        )
    );
    assert_eq!(
        (&report["archived_left_out"], &report["archived_first"]),
        (&json!(1), &json!(["customers/c-2"]))
    );
    assert_eq!(
        report["bytes"],
        json!(std::fs::metadata(&out).unwrap().len())
    );
    assert_eq!(rows(&out), 4, "the file holds the rest");
    let ok = env
        .run(&[
            "export",
            "--format",
            "parquet",
            "--out",
            path,
            "--skip-archived",
            "--progress",
            "never",
        ])
        .ok();
    assert!(
        ok.stderr.contains("1 archived aggregate(s) skipped"),
        "{}",
        ok.stderr
    );
    assert_eq!(ok.json()["rows"], 4);
    let mut written = Vec::new();
    for batch in batches(&out) {
        let (types, ids) = (
            column::<StringArray>(&batch, "aggregate_type"),
            column::<StringArray>(&batch, "aggregate_id"),
        );
        let (versions, event_types) = (
            column::<Int64Array>(&batch, "version"),
            column::<StringArray>(&batch, "event_type"),
        );
        let notes = column::<StringArray>(&batch, "note");
        for i in 0..batch.num_rows() {
            let note = notes.is_valid(i).then(|| notes.value(i).to_owned());
            written.push((
                types.value(i).to_owned(),
                ids.value(i).to_owned(),
                versions.value(i),
                event_types.value(i).to_owned(),
                note,
            ));
        }
    }
    let s = |v: &str| v.to_owned();
    assert_eq!(
        written,
        vec![
            (s("customers"), s("c-1"), 1, s("customer.joined"), None),
            (s("orders"), s("o-1"), 1, s("order.placed"), None),
            (s("orders"), s("o-1"), 2, s("order.paid"), Some(s("till"))),
            (s("orders"), s("o-2"), 1, s("order.placed"), None),
        ]
    );

    // Aggregates, archived included.
    let aggregates = env.path("aggregates.parquet");
    env.run(&[
        "export",
        "--format",
        "parquet",
        "--what",
        "aggregates",
        "--include-archived",
        "--out",
        aggregates.to_str().unwrap(),
        "--compression",
        "none",
        "--progress",
        "never",
    ])
    .ok();
    assert_eq!(rows(&aggregates), 4);

    // Partitioned: one directory per type, the type in the directory name only.
    let lake = env.path("lake");
    let run = env
        .run(&[
            "export",
            "--format",
            "parquet",
            "--out",
            lake.to_str().unwrap(),
            "--partition-by",
            "aggregate_type",
            "--type",
            "orders",
            "--progress",
            "never",
        ])
        .ok();
    assert_eq!(
        (&run.json()["rows"], &run.json()["aggregates"]),
        (&json!(3), &json!(2))
    );
    let files = files_under(&lake);
    assert_eq!(
        files,
        vec![lake.join("aggregate_type=orders/part-0000.parquet")]
    );
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap()).unwrap();
    assert!(builder.schema().field_with_name("aggregate_type").is_err());
    assert_eq!(rows(&files[0]), 3);
}

#[test]
fn an_interrupted_parquet_export_leaves_nothing_that_looks_complete() {
    let env = Env::start();
    bulk(&env, 20_000);
    let lake = env.path("lake");
    let staging = env.path("lake.partial");
    let args = [
        "export",
        "--format",
        "parquet",
        "--out",
        lake.to_str().unwrap(),
        "--partition-by",
        "aggregate_type",
        "--max-file-size",
        "64K",
        "--progress",
        "never",
    ];
    // The first temporary file of the export's directory.
    let temporary = || {
        files_under(&staging)
            .into_iter()
            .find(|f| f.to_string_lossy().ends_with(".parquet.partial"))
    };

    // Ctrl-C: the export removes what it wrote and exits 130.
    let child = env.spawn(&args);
    wait_until(Duration::from_secs(60), "a temporary file", || {
        temporary().is_some()
    });
    signal(&child, libc::SIGINT);
    let run = finish(child, Duration::from_secs(60), "export (Ctrl-C)");
    assert_eq!(run.code, 130, "{}", run.stderr);
    assert!(
        !staging.exists() && !lake.exists(),
        "Ctrl-C removes the unfinished export"
    );

    // SIGKILL: nothing can be removed, but nothing looks complete either. The process is
    // stopped first, so the temporary file seen is still there when it dies.
    let child = env.spawn(&args);
    wait_until(Duration::from_secs(60), "a temporary file", || {
        temporary().is_some()
    });
    signal(&child, libc::SIGSTOP);
    assert!(
        temporary().is_some(),
        "the export is still under way when stopped"
    );
    signal(&child, libc::SIGKILL);
    finish(child, Duration::from_secs(60), "export (SIGKILL)");
    assert!(!lake.exists(), "no directory by the export's name");
    let left = files_under(env.home.path());
    assert!(
        left.iter()
            .all(|f| !f.to_string_lossy().ends_with(".parquet")),
        "no file named like a finished Parquet file: {left:?}"
    );
    assert!(
        staging.join("_edbx_export_in_progress").is_file(),
        "marked as unfinished"
    );

    // The next export replaces the leftovers and is whole.
    let run = env.run(&args).ok();
    assert_eq!(run.json()["rows"], 20_000, "{}", run.stdout);
    assert_eq!(
        run.json()["files"].as_u64().unwrap() as usize,
        files_under(&lake).len()
    );
    assert!(!staging.exists());
    let files = files_under(&lake);
    assert!(files.len() > 1, "64 KiB files: {files:?}");
    assert_eq!(files.iter().map(|f| rows(f)).sum::<usize>(), 20_000);
    for (n, file) in files.iter().enumerate() {
        assert_eq!(
            file,
            &lake.join(format!("aggregate_type=bulk/part-{n:04}.parquet"))
        );
    }
}

#[test]
fn a_parquet_reader_that_stops_early_is_not_an_error() {
    // `edbx export --format parquet --out - | head -c 4`: more than a pipe holds, so the
    // export is still writing when its reader goes away.
    let env = Env::start();
    let client = env.client();
    // Letters from a xorshift generator: zstd cannot shrink them much.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = |len: usize| -> String {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(b'a' + (state % 26) as u8)
            })
            .collect()
    };
    for i in 0..60 {
        client
            .create(
                "blobs",
                &format!("b-{i}"),
                "created",
                &json!({"blob": noise(4000)}),
            )
            .unwrap();
    }
    let mut child = env
        .cmd()
        .args([
            "export",
            "--format",
            "parquet",
            "--out",
            "-",
            "--progress",
            "never",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut magic = [0u8; 4];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut magic).unwrap();
    assert_eq!(&magic, b"PAR1");
    drop(child.stdout.take());
    let run = finish(child, Duration::from_secs(60), "export | head -c 4");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("edbx: export:"), "{}", run.stderr);
    assert!(
        !run.stderr.to_lowercase().contains("pipe"),
        "{}",
        run.stderr
    );
}
