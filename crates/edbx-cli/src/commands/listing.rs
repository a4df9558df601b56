//! Listings: one page, `--all` (cursors followed without skipping rows), and `events --follow`.

use std::future::IntoFuture;
use std::io::IsTerminal;
use std::time::Duration;

use edbx::{Aggregate, Event, Page};

use super::Ctx;
use super::ops::raw;
use crate::cli::{EventsArgs, ListArgs};
use crate::exit::{Exit, Failure, Outcome};
use crate::output::Shape;

/// After one page (no `--take`, no `--all`): whether more rows follow and how to see them, on
/// stderr whatever stdout is — a page is never passed off as the whole answer.
fn page_note<T>(page: &Page<T>) {
    if page.items.is_empty() {
        return;
    }
    match &page.next_cursor {
        Some(cursor) if !page.complete => eprintln!(
            "edbx: one page ({} rows), more may follow; --all lists everything, --take N lists \
             N rows, --cursor '{cursor}' continues",
            page.items.len()
        ),
        None if !page.complete => eprintln!(
            "edbx: one page ({} rows), and the server cannot page this sort: --all without \
             --sort, or sort by created_at or updated_at, lists everything",
            page.items.len()
        ),
        _ => {}
    }
}

/// `--take N` (or `--limit N` without `--all`): N rows when N exist, following cursors over
/// the pages the server shortens. `fetch(cursor, rows)` reads one page of at most `rows`.
async fn take_rows<T, F, Fut>(
    wanted: u64,
    start: Option<String>,
    mut fetch: F,
    mut row: impl FnMut(&T) -> Outcome,
) -> Outcome<Exit>
where
    F: FnMut(Option<String>, u64) -> Fut,
    Fut: std::future::Future<Output = edbx::Result<Page<T>>>,
{
    let mut got = 0u64;
    let mut cursor = start;
    while got < wanted {
        let page = fetch(cursor.clone(), wanted - got).await?;
        for item in &page.items {
            row(item)?;
        }
        got += page.items.len() as u64;
        if page.complete || page.items.is_empty() {
            return Ok(Exit::Ok);
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => {
                return Err(Failure::new(
                    Exit::Server,
                    format!(
                        "only {got} of {wanted} rows: the server cut the page and cannot \
                         continue a listing in this sort order"
                    ),
                )
                .hint("sort by one created_at or updated_at key, or drop --sort, to list more"));
            }
        }
    }
    if std::io::stderr().is_terminal() {
        if let Some(cursor) = cursor {
            eprintln!("edbx: {got} rows; --cursor '{cursor}' continues after them");
        }
    }
    Ok(Exit::Ok)
}

pub async fn list(args: &ListArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    // The flags are checked before connecting: a wrong pair is exit 2 whatever the server.
    let wanted_rows = if args.page.all {
        None
    } else {
        wanted(args.page.take, args.limit)?
    };
    let client = ctx.client().await?;
    let mut list = client
        .list()
        .include_archived(args.include_archived)
        .archived_only(args.archived_only);
    if let Some(t) = &args.aggregate_type {
        list = list.aggregate_type(t);
    }
    if let Some(filter) = &args.filter {
        list = list.filter(filter.as_str());
    }
    if let Some(sort) = &args.sort {
        list = list.sort(sort.as_str());
    }
    ctx.out.begin(Shape::Aggregates);
    let exit = if args.page.all {
        if let Some(take) = args.page.take {
            list = list.take(take);
        }
        if let Some(cursor) = &args.page.cursor {
            list = list.cursor(cursor.as_str());
        }
        let mut stream = list.stream();
        if let Some(limit) = args.limit {
            stream = stream.limit(limit);
        }
        while let Some(row) = stream.next().await {
            let row: Aggregate = row?;
            ctx.out.row(&raw(row.raw.as_ref()))?;
        }
        Exit::Ok
    } else if let Some(wanted) = wanted_rows {
        let out = &mut ctx.out;
        let fetch = |cursor: Option<String>, rows: u64| {
            let mut page = list.clone().take(rows);
            if let Some(cursor) = cursor {
                page = page.cursor(cursor);
            }
            page.into_future()
        };
        let row = |row: &Aggregate| -> Outcome { Ok(out.row(&raw(row.raw.as_ref()))?) };
        let taken = take_rows(wanted, args.page.cursor.clone(), fetch, row).await;
        ctx.out.end()?;
        return taken;
    } else {
        if let Some(cursor) = &args.page.cursor {
            list = list.cursor(cursor.as_str());
        }
        let page = list.await?;
        for row in &page.items {
            ctx.out.row(&raw(row.raw.as_ref()))?;
        }
        page_note(&page);
        Exit::Ok
    };
    ctx.out.end()?;
    Ok(exit)
}

/// The rows `--take`/`--limit` ask for outside `--all` (they mean the same there).
fn wanted(take: Option<u64>, limit: Option<u64>) -> Outcome<Option<u64>> {
    match (take, limit) {
        (Some(a), Some(b)) if a != b => Err(Failure::usage(
            "--take and --limit differ; without --all both mean \"this many rows\"",
        )),
        (_, Some(0)) => Err(Failure::usage("--limit must be at least 1")),
        (take, limit) => Ok(take.or(limit)),
    }
}

pub async fn events(args: &EventsArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    let client = ctx.client().await?;
    let build = |after: Option<u64>| {
        let mut events = client.events(&args.aggregate_type, &args.aggregate_id);
        if let Some(version) = after.or(args.after_version) {
            events = events.after_version(version);
        }
        events
    };
    ctx.out.begin(Shape::Events);
    if !args.follow {
        let mut rows = 0u64;
        if args.page.all {
            let mut events = build(None);
            if let Some(take) = args.page.take {
                events = events.take(take);
            }
            if let Some(cursor) = &args.page.cursor {
                events = events.cursor(cursor.as_str());
            }
            let mut stream = events.stream();
            while let Some(event) = stream.next().await {
                ctx.out.row(&raw(event?.raw.as_ref()))?;
                rows += 1;
            }
        } else if let Some(wanted) = args.page.take {
            let out = &mut ctx.out;
            let fetch = |cursor: Option<String>, take: u64| {
                let mut page = build(None).take(take);
                if let Some(cursor) = cursor {
                    page = page.cursor(cursor);
                }
                page.into_future()
            };
            let row = |row: &Event| -> Outcome {
                rows += 1;
                Ok(out.row(&raw(row.raw.as_ref()))?)
            };
            let taken = take_rows(wanted, args.page.cursor.clone(), fetch, row).await;
            taken?;
        } else {
            let mut events = build(None);
            if let Some(cursor) = &args.page.cursor {
                events = events.cursor(cursor.as_str());
            }
            let page = events.await?;
            for row in &page.items {
                ctx.out.row(&raw(row.raw.as_ref()))?;
            }
            rows = page.items.len() as u64;
            page_note(&page);
        }
        ctx.out.end()?;
        if rows == 0 {
            // No events at all: the server lists none for an aggregate that does not exist
            // (or is archived), which a script must not take for an empty history.
            absent_or_archived(&client, &args.aggregate_type, &args.aggregate_id).await?;
        }
        return Ok(Exit::Ok);
    }
    // Everything so far, then a poll for what comes after the last event seen, like `tail -f`.
    // Ctrl-C ends it at any point: the signal is watched from the start, so none is missed.
    let out = &mut ctx.out;
    let follow = async {
        let mut last = args.after_version;
        let interval = Duration::from_millis(args.interval.max(50));
        loop {
            let mut stream = build(last).stream();
            while let Some(event) = stream.next().await {
                let event: Event = event?;
                last = Some(event.version);
                out.row(&raw(event.raw.as_ref()))?;
            }
            // Piped output is block-buffered: what arrived is passed on before waiting.
            out.flush()?;
            tokio::time::sleep(interval).await;
        }
    };
    let followed: Outcome = tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    followed?;
    ctx.out.end()?;
    // Ctrl-C is how a follow ends, and it exits 130 as every interrupted command does (what
    // was printed is complete: rows are whole lines).
    Err(Failure::new(Exit::Interrupted, String::new()))
}

/// Fails (exit 3, as `get`) when the aggregate does not exist or is archived.
async fn absent_or_archived(
    client: &edbx::Client,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Outcome {
    match client.get(aggregate_type, aggregate_id).await {
        Ok(Some(aggregate)) if aggregate.archived => Err(Failure::new(
            Exit::Server,
            format!(
                "{aggregate_type}/{aggregate_id} is archived: the server lists none of its events"
            ),
        )
        .hint(format!(
            "restore it first (`edbx restore {aggregate_type} {aggregate_id}`)"
        ))),
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(Failure::new(
            Exit::Server,
            format!("no aggregate {aggregate_type}/{aggregate_id}"),
        )
        .hint(format!(
            "`edbx list --type {aggregate_type}` shows what exists"
        ))),
        // Too large to get means it exists.
        Err(e) if e.kind() == edbx::ErrorKind::ReplyTooLarge => Ok(()),
        Err(e) => Err(e.into()),
    }
}
