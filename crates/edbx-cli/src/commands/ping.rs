//! `edbx ping`: is the server there, is the session encrypted, how fast is it.

use std::time::{Duration, Instant};

use serde_json::json;

use super::Ctx;
use crate::exit::{Exit, Outcome};

pub async fn ping(count: u32, ctx: &mut Ctx) -> Outcome<Exit> {
    let started = Instant::now();
    let client = ctx.client().await?;
    let handshake = started.elapsed();
    let mut round_trips = Vec::with_capacity(count as usize);
    for _ in 0..count.max(1) {
        let started = Instant::now();
        // A read of an aggregate that does not exist: one round trip, nothing returned.
        client.get("edbx_ping", "ping").await?;
        round_trips.push(started.elapsed());
    }
    round_trips.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let median = round_trips[round_trips.len() / 2];
    let report = json!({
        "server": ctx.settings.address(),
        "tenant": ctx.settings.config.get_tenant_id().unwrap_or("(server default)"),
        "encrypted": client.is_encrypted(),
        "session": if client.is_encrypted() { "Noise NNpsk0" } else { "plaintext" },
        "connect_and_handshake_ms": ms(handshake),
        "round_trip_ms": {
            "min": ms(round_trips[0]),
            "median": ms(median),
            "max": ms(*round_trips.last().expect("at least one")),
            "count": round_trips.len(),
        },
    });
    ctx.out.value(&report)?;
    Ok(Exit::Ok)
}
