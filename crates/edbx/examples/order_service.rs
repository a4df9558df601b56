//! An order service, the way a first application uses edbx: 100 orders written concurrently
//! from tasks sharing one client, read back page by page into a typed struct, paid, corrected
//! with a patch, verified, archived — then the same with the blocking client from threads.
//!
//! With `EVENTDBX_TOKEN` set it uses that server (see `Config::from_env`); otherwise it starts a
//! throwaway local one. `cargo run -p edbx --example order_service`.

use std::time::Duration;

use edbx::{Client, Config, ErrorKind, PatchOp, ServerCode};
use serde::Deserialize;
use serde_json::json;

/// An order as the application sees it. The server keeps state as text: the caller's type
/// decides how each field is read (`zip` stays the text "01234").
#[derive(Debug, Deserialize)]
struct Order {
    customer: String,
    zip: String,
    total: f64,
    status: String,
    note: Option<String>,
}

const ORDERS: usize = 100;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (config, _server) = config()?;
    let run = std::process::id();
    let kind = format!("orders_{run}");

    // ----- async: one client shared by every task (a cheap clone) -----
    let client = Client::connect(config.clone().request_timeout(Duration::from_secs(30))).await?;
    let mut tasks = Vec::new();
    for i in 0..ORDERS {
        let client = client.clone();
        let kind = kind.clone();
        tasks.push(tokio::spawn(async move {
            let version: edbx::Result<_> = client
                .create(
                    &kind,
                    &format!("o-{i:03}"),
                    "order.placed",
                    &json!({"customer": format!("c{}", i % 7), "zip": "01234",
                            "total": 10.0 + i as f64, "status": "open", "note": null}),
                )
                .await
                // The server echoes the new aggregate unless it runs without verbose responses.
                .map(|written| written.map(|aggregate| aggregate.version));
            version
        }));
    }
    for task in tasks {
        task.await??;
    }
    println!("async: created {ORDERS} orders from {ORDERS} tasks");

    // Page through them (take is the page size) into typed orders.
    let mut listed = 0;
    let mut pages = client.list().aggregate_type(&kind).take(25).stream();
    while let Some(aggregate) = pages.next().await {
        let order: Order = aggregate?.state_as()?;
        assert_eq!(order.zip, "01234", "text state stays text");
        assert_eq!(
            order.note, None,
            "null is stored as \"\" and read back as None"
        );
        listed += 1;
    }
    assert_eq!(listed, ORDERS);
    println!("async: listed {listed} orders, 25 per page, as typed structs");

    // Pay the first ten, then correct one with a patch.
    for i in 0..10 {
        client
            .apply(
                &kind,
                &format!("o-{i:03}"),
                "order.paid",
                &json!({"status": "paid"}),
            )
            .await?;
    }
    client
        .patch(
            &kind,
            "o-000",
            "order.corrected",
            &[PatchOp::replace("/total", json!(9.5))],
        )
        .await?;
    let paid = client
        .list()
        .aggregate_type(&kind)
        .filter("status = 'paid'")
        .take(100)
        .stream()
        .collect_all()
        .await?;
    assert_eq!(paid.len(), 10);
    let first: Order = client
        .get(&kind, "o-000")
        .await?
        .expect("exists")
        .state_as()?;
    assert_eq!((first.total, first.status.as_str()), (9.5, "paid"));
    println!(
        "async: paid 10, corrected o-000 to {} (customer {})",
        first.total, first.customer
    );

    let selection = client.select(&kind, "o-001", &["total", "status"]).await?;
    println!("async: select o-001 -> {}", json!(selection));
    let check = client.verify(&kind, "o-000").await?;
    assert!(check.is_intact());
    println!("async: o-000 verified over {} events", check.events);

    // Errors a caller branches on.
    client.archive(&kind, "o-099").comment("cancelled").await?;
    let refused = client
        .apply(&kind, "o-099", "order.paid", &json!({"status": "paid"}))
        .await
        .unwrap_err();
    assert_eq!(refused.server_code(), Some(ServerCode::AggregateArchived));
    let invalid = client
        .apply(&kind, "o-098", "Not Valid", &json!({}))
        .await
        .unwrap_err();
    assert!(invalid.is_invalid_input());
    let missing = client.verify(&kind, "nope").await.unwrap_err();
    assert!(missing.is_not_found() && missing.kind() == ErrorKind::Server);
    println!(
        "async: archived o-099; an append to it, a bad event type and a missing order fail as expected"
    );
    client.close();

    // ----- blocking: the same client type, from plain threads -----
    let blocking_kind = format!("{kind}_blocking");
    let result = std::thread::spawn(move || blocking_flow(config, &blocking_kind)).join();
    result.expect("blocking flow panicked")?;
    println!("order service: done");
    Ok(())
}

fn blocking_flow(config: Config, kind: &str) -> Result<(), edbx::Error> {
    let db = edbx::blocking::Client::connect(config)?;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let db = &db;
            scope.spawn(move || {
                for i in (t..ORDERS).step_by(4) {
                    db.create(
                        kind,
                        &format!("o-{i:03}"),
                        "order.placed",
                        &json!({"customer": "c", "zip": "01234", "total": i, "status": "open"}),
                    )
                    .expect("create");
                }
            });
        }
    });
    let mut count = 0;
    for aggregate in db.list().aggregate_type(kind).take(30) {
        let order: Order = aggregate?.state_as()?;
        assert_eq!(order.status, "open");
        count += 1;
    }
    assert_eq!(count, ORDERS);
    db.apply(kind, "o-007", "order.paid", &json!({"status": "paid"}))?;
    let events: Vec<_> = db
        .events(kind, "o-007")
        .into_iter()
        .collect::<Result<_, _>>()?;
    assert!(events[1].is_type("order.paid"));
    assert!(db.verify(kind, "o-007")?.is_intact());
    println!("blocking: created {count} orders from 4 threads, listed them, paid and verified one");
    Ok(())
}

/// The server from `EVENTDBX_*`, or a throwaway local one (kept alive by the returned guard).
fn config() -> Result<(Config, Option<edbx_testkit::TestServer>), Box<dyn std::error::Error>> {
    if std::env::var("EVENTDBX_TOKEN").is_ok_and(|t| !t.trim().is_empty()) {
        return Ok((Config::from_env()?, None));
    }
    let server = edbx_testkit::TestServer::start_default()?;
    let config = Config::new()
        .host(server.host())
        .port(server.port())
        .token(server.token())
        .tenant_id(server.tenant());
    Ok((config, Some(server)))
}
