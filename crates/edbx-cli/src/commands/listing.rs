//! Listings: one page, `--all` (cursors followed without skipping rows), and `events --follow`.

use std::io::IsTerminal;
use std::time::Duration;

use edbx::{Aggregate, Event, Page};

use super::Ctx;
use super::ops::raw;
use crate::cli::{EventsArgs, ListArgs};
use crate::exit::{Exit, Failure, Outcome};
use crate::output::Shape;

/// After one page, on a terminal: how to see more (the rows are on stdout; scripts use
/// `--all` or `--cursor`).
fn page_note<T>(page: &Page<T>) {
    if !std::io::stderr().is_terminal() || page.items.is_empty() {
        return;
    }
    match &page.next_cursor {
        Some(cursor) if !page.complete => eprintln!(
            "edbx: one page ({} rows); --all lists everything, --cursor '{cursor}' continues",
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

pub async fn list(args: &ListArgs, ctx: &mut Ctx) -> Outcome<Exit> {
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
    if let Some(take) = args.page.take {
        list = list.take(take);
    }
    if let Some(cursor) = &args.page.cursor {
        list = list.cursor(cursor.as_str());
    }
    ctx.out.begin(Shape::Aggregates);
    if args.page.all {
        let mut stream = list.stream();
        if let Some(limit) = args.limit {
            stream = stream.limit(limit);
        }
        while let Some(row) = stream.next().await {
            let row: Aggregate = row?;
            ctx.out.row(&raw(row.raw.as_deref()))?;
        }
    } else {
        if args.limit.is_some() {
            return Err(
                Failure::usage("--limit goes with --all").hint("or use --take for one page")
            );
        }
        let page = list.await?;
        for row in &page.items {
            ctx.out.row(&raw(row.raw.as_deref()))?;
        }
        page_note(&page);
    }
    ctx.out.end()?;
    Ok(Exit::Ok)
}

pub async fn events(args: &EventsArgs, ctx: &mut Ctx) -> Outcome<Exit> {
    let client = ctx.client().await?;
    let build = |after: Option<u64>| {
        let mut events = client.events(&args.aggregate_type, &args.aggregate_id);
        if let Some(take) = args.page.take {
            events = events.take(take);
        }
        if let Some(cursor) = &args.page.cursor {
            events = events.cursor(cursor.as_str());
        }
        if let Some(version) = after.or(args.after_version) {
            events = events.after_version(version);
        }
        events
    };
    ctx.out.begin(Shape::Events);
    if !(args.page.all || args.follow) {
        let page = build(None).await?;
        for row in &page.items {
            ctx.out.row(&raw(row.raw.as_deref()))?;
        }
        page_note(&page);
        ctx.out.end()?;
        return Ok(Exit::Ok);
    }
    if !args.follow {
        let mut stream = build(None).stream();
        while let Some(event) = stream.next().await {
            ctx.out.row(&raw(event?.raw.as_deref()))?;
        }
        ctx.out.end()?;
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
                out.row(&raw(event.raw.as_deref()))?;
            }
            tokio::time::sleep(interval).await;
        }
    };
    let followed: Outcome = tokio::select! {
        result = follow => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    followed?;
    ctx.out.end()?;
    Ok(Exit::Ok)
}
