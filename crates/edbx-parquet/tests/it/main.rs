//! Exports of a real server's store, read back with the `parquet` crate and compared with what
//! the client reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use arrow_array::{
    Array, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use edbx::{Client, Config};
use edbx_parquet::{Export, ExportError, PartitionBy, What};
use edbx_testkit::{ServerOptions, TestServer};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;
use serde_json::{Value, json};

fn server() -> TestServer {
    TestServer::start(ServerOptions::default())
        .unwrap_or_else(|e| panic!("cannot start the EventDBX server: {e}"))
}

async fn client(server: &TestServer) -> Client {
    Client::connect(
        Config::new()
            .host(server.host())
            .port(server.port())
            .token(server.token())
            .tenant_id(server.tenant())
            .request_timeout(Duration::from_secs(30)),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"))
}

/// A small store of every kind of event: dotted types, notes, metadata, non-ASCII and large
/// payloads, several versions, two types, and one archived aggregate.
async fn seed(client: &Client) {
    client
        .create(
            "orders",
            "o-1",
            "order.placed",
            &json!({"total": 42.15, "items": [1, 2]}),
        )
        .note("till 3")
        .metadata(&json!({"@trace": {"id": "t-1"}}))
        .await
        .unwrap();
    client
        .apply("orders", "o-1", "order.paid", &json!({"status": "paid"}))
        .await
        .unwrap();
    client
        .apply(
            "orders",
            "o-1",
            "order_shipped",
            &json!({"status": "shipped", "carrier": null}),
        )
        .await
        .unwrap();
    client
        .create(
            "orders",
            "o-2",
            "order.placed",
            &json!({"city": "Zürich ✓ 日本語 🚚", "total": 1}),
        )
        .await
        .unwrap();
    let large: String = (0..6000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    client
        .create(
            "customers",
            "c-1",
            "customer.created",
            &json!({"bio": large}),
        )
        .await
        .unwrap();
    client
        .create(
            "customers",
            "c-2",
            "customer.created",
            &json!({"name": "gone"}),
        )
        .await
        .unwrap();
    client.archive("customers", "c-2").await.unwrap();
}

/// `n` aggregates of `aggregate_type` with one event each (creates are what the server takes
/// fastest), 16 at a time.
async fn bulk(client: &Client, aggregate_type: &'static str, n: usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (client, next) = (client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                // Payloads that do not compress away, so files fill up.
                let noise: String = (0..12)
                    .map(|k| format!("{:08x}", (i * 2_654_435_761 + k * 40_503) as u32))
                    .collect();
                client
                    .create(
                        aggregate_type,
                        &format!("b-{i:06}"),
                        "bulk.loaded",
                        &json!({"i": i, "noise": noise}),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Every row of the Parquet data in `source`, as record batches.
fn read<R: ChunkReader + 'static>(source: R) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(source)
        .unwrap()
        .build()
        .unwrap()
        .map(|batch| batch.unwrap())
        .collect()
}

fn read_file(path: &Path) -> Vec<RecordBatch> {
    read(File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn texts(batch: &RecordBatch, name: &str) -> Vec<Option<String>> {
    let column = batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"));
    let column = column.as_any().downcast_ref::<StringArray>().unwrap();
    (0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i).to_owned()))
        .collect()
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<i64> {
    let column = batch.column_by_name(name).unwrap();
    column
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

fn times(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    let column = batch.column_by_name(name).unwrap();
    let column = column
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(column.timezone(), Some("UTC"));
    (0..column.len())
        .map(|i| column.is_valid(i).then(|| column.value(i)))
        .collect()
}

fn micros(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_micros()
}

/// One exported event row, keyed by (type, id, version).
type Rows = BTreeMap<(String, String, i64), BTreeMap<&'static str, Value>>;

fn event_rows(batches: &[RecordBatch], partition: Option<&str>) -> Rows {
    let mut rows = Rows::new();
    for batch in batches {
        let types = match partition {
            Some(t) => vec![Some(t.to_owned()); batch.num_rows()],
            None => texts(batch, "aggregate_type"),
        };
        let ids = texts(batch, "aggregate_id");
        let versions = ints(batch, "version");
        let event_ids = ints(batch, "event_id");
        let created = times(batch, "created_at");
        let columns: Vec<(&'static str, Vec<Option<String>>)> = [
            "event_type",
            "event_type_normalized",
            "payload",
            "metadata",
            "note",
            "issued_by_group",
            "issued_by_user",
            "hash",
            "merkle_root",
        ]
        .into_iter()
        .map(|name| (name, texts(batch, name)))
        .collect();
        for i in 0..batch.num_rows() {
            let mut row = BTreeMap::new();
            for (name, values) in &columns {
                row.insert(*name, values[i].clone().map_or(Value::Null, Value::String));
            }
            row.insert("event_id", json!(event_ids[i]));
            row.insert("created_at", json!(created[i].unwrap()));
            let key = (
                types[i].clone().unwrap(),
                ids[i].clone().unwrap(),
                versions[i],
            );
            assert!(rows.insert(key, row).is_none(), "a row was written twice");
        }
    }
    rows
}

/// What the client reads of every aggregate's events, in the export's terms.
async fn store_rows(client: &Client) -> Rows {
    let mut rows = Rows::new();
    let aggregates = client.list().stream().collect_all().await.unwrap();
    for aggregate in aggregates {
        let events = client
            .events(&aggregate.aggregate_type, &aggregate.aggregate_id)
            .stream()
            .collect_all()
            .await
            .unwrap();
        for e in events {
            let text = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_owned()));
            let mut row = BTreeMap::new();
            row.insert("event_type", text(Some(e.original_type())));
            row.insert("event_type_normalized", text(Some(&e.event_type)));
            row.insert("payload", Value::String(e.payload.to_string()));
            let metadata = e
                .extensions
                .clone()
                .filter(|m| !m.is_empty())
                .map(|m| Value::Object(m).to_string());
            row.insert("metadata", text(metadata.as_deref()));
            row.insert(
                "note",
                text(e.metadata.note.as_deref().filter(|n| !n.is_empty())),
            );
            let actor = e.metadata.issued_by.as_ref();
            row.insert("issued_by_group", text(actor.map(|a| a.group.as_str())));
            row.insert("issued_by_user", text(actor.map(|a| a.user.as_str())));
            row.insert("hash", text(Some(&e.hash)));
            row.insert("merkle_root", text(Some(&e.merkle_root)));
            row.insert("event_id", json!(e.metadata.event_id as i64));
            row.insert("created_at", json!(micros(&e.metadata.created_at)));
            rows.insert(
                (
                    e.aggregate_type.clone(),
                    e.aggregate_id.clone(),
                    e.version as i64,
                ),
                row,
            );
        }
    }
    rows
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_written_typed_and_read_back_as_the_client_reads_them() {
    let server = server();
    let client = client(&server).await;
    seed(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.parquet");
    let summary = Export::to_path(&out)
        .skip_archived(true)
        .run(&client)
        .await
        .unwrap();
    assert_eq!((summary.rows, summary.aggregates), (5, 3));
    assert_eq!(summary.archived.count, 1);
    assert_eq!(
        summary.archived.first,
        vec![("customers".to_owned(), "c-2".to_owned())]
    );
    assert_eq!(summary.files.len(), 1);
    assert_eq!(summary.files[0].path, out);
    assert_eq!(summary.bytes, std::fs::metadata(&out).unwrap().len());
    assert_eq!(
        files_under(dir.path()),
        vec![out.clone()],
        "no temporary file is left"
    );

    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap()).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .clone();
    assert!(
        metadata
            .iter()
            .any(|kv| kv.key == "edbx.what" && kv.value.as_deref() == Some("events"))
    );
    assert_eq!(
        builder.schema().fields(),
        edbx_parquet::events_schema(true).fields()
    );
    let batches = read_file(&out);
    let written = event_rows(&batches, None);
    assert_eq!(written, store_rows(&client).await);
    // Listing order: type, id, version.
    let keys: Vec<_> = written.keys().cloned().collect();
    let mut in_file = Vec::new();
    for batch in &batches {
        for ((t, id), v) in texts(batch, "aggregate_type")
            .into_iter()
            .zip(texts(batch, "aggregate_id"))
            .zip(ints(batch, "version"))
        {
            in_file.push((t.unwrap(), id.unwrap(), v));
        }
    }
    assert_eq!(in_file, keys);
    let o1 = &written[&("orders".to_owned(), "o-1".to_owned(), 2)];
    assert_eq!(o1["event_type"], "order.paid");
    assert_eq!(o1["event_type_normalized"], "order_paid");
    let first = &written[&("orders".to_owned(), "o-1".to_owned(), 1)];
    assert_eq!(first["note"], "till 3");
    assert_eq!(
        serde_json::from_str::<Value>(first["metadata"].as_str().unwrap()).unwrap(),
        json!({"@trace": {"id": "t-1"}})
    );
    let o2 = &written[&("orders".to_owned(), "o-2".to_owned(), 1)];
    let payload: Value = serde_json::from_str(o2["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["city"], "Zürich ✓ 日本語 🚚");
    let c1 = &written[&("customers".to_owned(), "c-1".to_owned(), 1)];
    let payload: Value = serde_json::from_str(c1["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["bio"].as_str().unwrap().len(), 6000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_that_meets_archived_aggregates_says_so_and_keeps_its_file() {
    let server = server();
    let client = client(&server).await;
    seed(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.parquet");
    let error = Export::to_path(&out).run(&client).await.unwrap_err();
    let message = error.to_string();
    let ExportError::ArchivedLeftOut(summary) = error else {
        panic!("expected ArchivedLeftOut, got {message}");
    };
    assert!(
        message.contains("1 archived aggregate(s)") && message.contains("customers/c-2"),
        "{message}"
    );
    assert_eq!(summary.rows, 5);
    let rows: usize = read_file(&out).iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 5, "the file holds everything else");
    // The same store by type: a type without archived aggregates is whole.
    let orders = dir.path().join("orders.parquet");
    let summary = Export::to_path(&orders)
        .aggregate_type("orders")
        .run(&client)
        .await
        .unwrap();
    assert_eq!(
        (summary.rows, summary.aggregates, summary.archived.count),
        (4, 2, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_are_written_with_their_state_and_times() {
    let server = server();
    let client = client(&server).await;
    seed(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("aggregates.parquet");
    let summary = Export::to_path(&out)
        .what(What::Aggregates)
        .include_archived(true)
        .run(&client)
        .await
        .unwrap();
    assert_eq!((summary.rows, summary.aggregates), (4, 4));
    let listed = client
        .list()
        .include_archived(true)
        .stream()
        .collect_all()
        .await
        .unwrap();
    let batches = read_file(&out);
    let mut written = Vec::new();
    for batch in &batches {
        let archived = batch.column_by_name("archived").unwrap();
        let archived = archived.as_any().downcast_ref::<BooleanArray>().unwrap();
        let types = texts(batch, "aggregate_type");
        let ids = texts(batch, "aggregate_id");
        let versions = ints(batch, "version");
        let states = texts(batch, "state");
        let roots = texts(batch, "merkle_root");
        let created = times(batch, "created_at");
        let updated = times(batch, "updated_at");
        for i in 0..batch.num_rows() {
            written.push((
                types[i].clone().unwrap(),
                ids[i].clone().unwrap(),
                versions[i] as u64,
                serde_json::from_str::<BTreeMap<String, String>>(states[i].as_deref().unwrap())
                    .unwrap(),
                roots[i].clone().unwrap(),
                archived.value(i),
                created[i],
                updated[i],
            ));
        }
    }
    let expected: Vec<_> = listed
        .iter()
        .map(|a| {
            (
                a.aggregate_type.clone(),
                a.aggregate_id.clone(),
                a.version,
                a.state.clone().into_map(),
                a.merkle_root.clone(),
                a.archived,
                a.created_at.as_deref().map(micros),
                a.updated_at.as_deref().map(micros),
            )
        })
        .collect();
    assert_eq!(written, expected);
    assert!(
        written.iter().any(|w| w.1 == "c-2" && w.5),
        "the archived one is marked"
    );
    assert_eq!(
        written.iter().find(|w| w.1 == "o-1").unwrap().3["status"],
        "shipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_export_is_a_directory_per_type_of_bounded_files() {
    let server = server();
    let client = client(&server).await;
    seed(&client).await;
    bulk(&client, "bulk", 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");
    let max = 64 * 1024;
    let summary = Export::to_path(&out)
        .partition_by(Some(PartitionBy::AggregateType))
        .max_file_size(max)
        .row_group_size(500)
        .skip_archived(true)
        .run(&client)
        .await
        .unwrap();
    assert_eq!(summary.rows, 3005);
    let files = files_under(&out);
    assert_eq!(files.len(), summary.files.len());
    assert!(
        files
            .iter()
            .all(|f| f.extension().is_some_and(|e| e == "parquet")),
        "{files:?}"
    );
    assert!(!dir.path().join("lake.partial").exists());
    let mut by_type: BTreeMap<String, Vec<&edbx_parquet::WrittenFile>> = BTreeMap::new();
    for file in &summary.files {
        by_type
            .entry(file.partition.clone().unwrap())
            .or_default()
            .push(file);
    }
    assert_eq!(
        by_type.keys().collect::<Vec<_>>(),
        ["bulk", "customers", "orders"]
    );
    let bulk_files = &by_type["bulk"];
    assert!(
        bulk_files.len() > 2,
        "3000 rows of ~150 bytes fill several 64 KiB files"
    );
    let mut all = Rows::new();
    for (t, files) in &by_type {
        for (n, file) in files.iter().enumerate() {
            assert_eq!(
                file.path,
                out.join(format!("aggregate_type={t}"))
                    .join(format!("part-{n:04}.parquet"))
            );
            assert_eq!(file.bytes, std::fs::metadata(&file.path).unwrap().len());
            // Closed at the limit, overshooting by at most one batch; the last may be short.
            assert!(
                file.bytes < 3 * max,
                "{} is {} bytes",
                file.path.display(),
                file.bytes
            );
            if n + 1 < files.len() {
                assert!(
                    file.bytes >= max / 2,
                    "{} closed early at {} bytes",
                    file.path.display(),
                    file.bytes
                );
            }
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(File::open(&file.path).unwrap()).unwrap();
            assert!(
                builder.schema().field_with_name("aggregate_type").is_err(),
                "the directory names the type"
            );
            assert!(
                builder
                    .metadata()
                    .row_groups()
                    .iter()
                    .all(|g| g.num_rows() <= 500)
            );
            let batches = read_file(&file.path);
            assert_eq!(
                batches.iter().map(RecordBatch::num_rows).sum::<usize>() as u64,
                file.rows
            );
            all.extend(event_rows(&batches, Some(t)));
        }
    }
    assert_eq!(all, store_rows(&client).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_dropped_midway_leaves_nothing() {
    let server = server();
    let client = client(&server).await;
    bulk(&client, "bulk", 3000).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lake");
    // The reader stops (in its progress callback) once more than a batch was handed on, so the
    // export is surely mid-way when its first file appears.
    let (stopped, is_stopped) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let mut sent = 0;
    let export = Export::to_path(&out)
        .partition_by(Some(PartitionBy::AggregateType))
        .on_progress(move |rows| {
            sent += rows;
            if sent > 2000 {
                let _ = stopped.send(());
                let _ = released.lock().unwrap().recv();
            }
        });
    let client2 = client.clone();
    let task = tokio::spawn(async move { export.run(&client2).await });
    tokio::task::spawn_blocking(move || is_stopped.recv().unwrap())
        .await
        .unwrap();
    let staging = dir.path().join("lake.partial");
    let temp = staging.join("aggregate_type=bulk/part-0000.parquet.partial");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !temp.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file appeared"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(staging.join("_edbx_export_in_progress").exists());
    assert!(!out.exists());
    task.abort();
    drop(release); // the callback returns; the reader meets its abort at its next await
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(
        files_under(dir.path()),
        Vec::<PathBuf>::new(),
        "an abandoned export is removed"
    );
    assert!(!staging.exists());
    // And the next export of the same path is whole.
    let summary = Export::to_path(&out)
        .partition_by(Some(PartitionBy::AggregateType))
        .run(&client)
        .await
        .unwrap();
    assert_eq!(summary.rows, 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_export_is_a_readable_file_and_a_stream_is_one_whole_file() {
    let server = server();
    let client = client(&server).await;
    seed(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("none.parquet");
    let summary = Export::to_path(&out)
        .aggregate_type("nothing_here")
        .run(&client)
        .await
        .unwrap();
    assert_eq!((summary.rows, summary.files.len()), (0, 1));
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(&out).unwrap()).unwrap();
    assert_eq!(
        builder.schema().fields(),
        edbx_parquet::events_schema(true).fields()
    );
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    // A partitioned export of nothing is an empty directory.
    let lake = dir.path().join("lake");
    Export::to_path(&lake)
        .partition_by(Some(PartitionBy::AggregateType))
        .aggregate_type("nothing_here")
        .run(&client)
        .await
        .unwrap();
    assert!(lake.is_dir() && files_under(&lake).is_empty());

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let shared = Shared::default();
    let summary = Export::to_writer(shared.clone())
        .what(What::Aggregates)
        .run(&client)
        .await
        .unwrap();
    let bytes = shared.0.lock().unwrap().clone();
    assert_eq!(summary.bytes, bytes.len() as u64);
    let rows: usize = read(bytes::Bytes::from(bytes))
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 3, "the active aggregates");
}

#[test]
fn options_and_paths_are_checked_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let check = |export: Export| export.check().unwrap_err().to_string();
    let file = dir.path().join("x.parquet");
    assert!(check(Export::to_path(&file).row_group_size(0)).contains("row group size"));
    assert!(check(Export::to_path(&file).max_file_size(1000)).contains("at least"));
    assert!(check(Export::to_path(&file).concurrency(0)).contains("concurrency"));
    assert!(check(Export::to_path(&file).include_archived(true)).contains("archived"));
    assert!(
        check(Export::to_writer(Vec::new()).partition_by(Some(PartitionBy::AggregateType)))
            .contains("not a stream")
    );
    assert!(
        check(Export::to_path(dir.path().join("missing/x.parquet"))).contains("does not exist")
    );
    assert!(
        Export::to_path(&file)
            .what(What::Aggregates)
            .include_archived(true)
            .check()
            .is_ok()
    );
    // Nothing was created by checking.
    assert!(files_under(dir.path()).is_empty());
}
