//! The Python client's quickstart, step for step, in Rust.
//!
//! With `EVENTDBX_TOKEN` (and optionally `EVENTDBX_HOST`, `EVENTDBX_PORT`, `EVENTDBX_TENANT_ID`,
//! `EVENTDBX_NO_NOISE`) set it talks to that server; otherwise it starts a throwaway local
//! server (the pinned `dbx` binary, through edbx-testkit) and says so.
//!
//! Run it with `scripts/quickstart.sh`, or `cargo run -p edbx --example quickstart`.

use edbx::{Client, Config, PatchOp, Written};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the embedded server alive for the whole run.
    let (config, _server) = if std::env::var("EVENTDBX_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        let config = Config::from_env()?;
        println!(
            "Using the server from EVENTDBX_*: {}:{} (noise requested: {})",
            config.get_host(),
            config.get_port(),
            config.get_noise()
        );
        (config, None)
    } else {
        println!("EVENTDBX_TOKEN is not set: starting a local EventDBX server for this run…");
        let server = edbx_testkit::TestServer::start_default()?;
        println!(
            "Local server {} listening on {}",
            edbx_testkit::SERVER_VERSION,
            server.addr()
        );
        let config = Config::new()
            .host(server.host())
            .port(server.port())
            .token(server.token())
            .tenant_id(server.tenant());
        (config, Some(server))
    };

    let client = Client::connect(config).await?;
    let session = if client.is_encrypted() {
        "Noise-encrypted session"
    } else {
        "plaintext session (asked for, and allowed by the server)"
    };
    println!("Connected: {session}.\n");

    // A fresh id per run, so the quickstart can run again against the same server.
    let id = format!("ord_{}", std::process::id());

    // Create a brand-new aggregate via the control plane.
    let created = client
        .create("orders", &id, "created", &json!({"total": 42.15}))
        .await?;
    show(
        "create",
        echo(&created, |a| {
            format!("{} v{} state={:?}", a.aggregate_id, a.version, a.state)
        }),
    );

    // Append follow-up events to the aggregate.
    let updated = client
        .apply("orders", &id, "paid", &json!({"status": "paid"}))
        .await?;
    show(
        "apply",
        echo(&updated, |e| {
            format!("{} v{} payload={}", e.event_type, e.version, e.payload)
        }),
    );

    // List aggregates or fetch events for a specific aggregate.
    let aggregates = client.list().take(50).await?;
    show(
        "list",
        format!(
            "{} aggregate(s): {:?}; next cursor {:?}",
            aggregates.items.len(),
            aggregates
                .items
                .iter()
                .map(|a| format!("{}/{}", a.aggregate_type, a.aggregate_id))
                .collect::<Vec<_>>(),
            aggregates.next_cursor
        ),
    );
    let events_page = client.events("orders", &id).await?;
    show(
        "events",
        format!(
            "{:?}",
            events_page
                .items
                .iter()
                .map(|e| format!("v{} {}", e.version, e.event_type))
                .collect::<Vec<_>>()
        ),
    );

    // Fetch the full aggregate, run projections, or verify integrity.
    let latest = client
        .get("orders", &id)
        .await?
        .ok_or("the aggregate just created is missing")?;
    show(
        "get",
        format!("v{} state={}", latest.version, json!(latest.state_json())),
    );
    let projection = client
        .select("orders", &id, &["total", "status", "metadata.region"])
        .await?;
    show("select", format!("{}", json!(projection)));
    let check = client.verify("orders", &id).await?;
    show(
        "verify",
        format!(
            "root {} over {} events: {}",
            check.merkle_root,
            check.events,
            if check.is_intact() {
                "intact"
            } else {
                "MISMATCH"
            }
        ),
    );

    // Apply a JSON Patch to the current state (appends a new event).
    let patched = client
        .patch(
            "orders",
            &id,
            "created",
            &[PatchOp::replace("/total", json!(45.10))],
        )
        .await?;
    show(
        "patch",
        echo(&patched, |e| {
            format!("v{} payload={}", e.version, e.payload)
        }),
    );

    // Archive / restore lifecycle management.
    let archived = client
        .archive("orders", &id)
        .comment("customer request")
        .await?;
    show(
        "archive",
        echo(&archived, |a| format!("archived={}", a.archived)),
    );
    let restored = client.restore("orders", &id).await?;
    show(
        "restore",
        echo(&restored, |a| format!("archived={}", a.archived)),
    );

    client.close();
    println!("\nDone.");
    Ok(())
}

fn show(step: &str, result: String) {
    println!("{step:>8}: {result}");
}

fn echo<T>(written: &Written<T>, describe: impl Fn(&T) -> String) -> String {
    match written {
        Written::Echo(value) => describe(value),
        Written::NoEcho => "ok (the server runs without verbose responses: no echo)".to_owned(),
    }
}
