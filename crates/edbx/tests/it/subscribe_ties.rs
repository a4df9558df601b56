//! Millisecond ties the real server cannot be made to produce on demand, played by a fake
//! store: a write that lands in the same millisecond as the newest change, with a key that
//! sorts after a first page whose rows all carry that millisecond. An unchanged first page
//! then does not prove that nothing was written; the subscription must still deliver it, and
//! without any later write to bring it up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use edbx::Client;
use edbx_wire::{ListAggregatesReply, ListEventsReply, Request, Response};
use serde_json::json;

use crate::fake_peer::{Session, config, granted, listener};
use crate::subscribe_now::{Follower, Key, key};

/// A time in the server's clock (ms since the epoch).
const T: i64 = 1_767_225_600_000;

/// The fake store: each aggregate's events (their times), the index of last changes, and
/// writes to make when a given aggregate's events are read (to land one mid-round).
#[derive(Default)]
struct Store {
    aggregates: BTreeMap<Key, Vec<i64>>,
    on_read: Vec<(Key, Key, i64)>,
    listings: usize,
}

impl Store {
    fn write(&mut self, k: &Key, at: i64) {
        self.aggregates.entry(k.clone()).or_default().push(at);
    }

    /// The index of last changes, newest first (by time, then type and id, descending).
    fn newest_first(&self) -> Vec<(i64, &Key, u64)> {
        let mut rows: Vec<(i64, &Key, u64)> = self
            .aggregates
            .iter()
            .map(|(k, events)| (*events.last().unwrap(), k, events.len() as u64))
            .collect();
        rows.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)));
        rows
    }

    fn answer(&mut self, request: Request) -> Response {
        match request {
            Request::ListAggregates(list) => {
                self.listings += 1;
                assert_eq!(list.sort.as_deref(), Some("updated_at:desc"));
                // `ts:updated_at:desc:a:<ms>:<type>:<id>`: rows strictly below that place.
                let below = list.cursor.as_deref().map(|c| {
                    let parts: Vec<&str> = c.splitn(7, ':').collect();
                    assert_eq!(parts[..4], ["ts", "updated_at", "desc", "a"], "{c}");
                    (parts[4].parse::<i64>().unwrap(), key(parts[5], parts[6]))
                });
                let rows: Vec<_> = self
                    .newest_first()
                    .into_iter()
                    .filter(|(at, k, _)| {
                        below
                            .as_ref()
                            .is_none_or(|(b_at, b_k)| (*at, *k) < (*b_at, b_k))
                    })
                    .take(list.take.unwrap_or(10) as usize)
                    .map(|(at, (t, i), version)| {
                        json!({"aggregate_type": t, "aggregate_id": i, "version": version,
                               "updated_at": time(at), "archived": false})
                    })
                    .collect();
                Response::ListAggregates(ListAggregatesReply::new(json!(rows).to_string()))
            }
            Request::ListEvents(list) => {
                let k = key(&list.aggregate_type, &list.aggregate_id);
                let due: Vec<_> = self.on_read.iter().filter(|w| w.0 == k).cloned().collect();
                self.on_read.retain(|w| w.0 != k);
                for (_, target, at) in due {
                    self.write(&target, at);
                }
                let after: u64 = list
                    .cursor
                    .as_deref()
                    .and_then(|c| c.rsplit(':').next())
                    .map_or(0, |v| v.parse().unwrap());
                let events: Vec<_> = self.aggregates[&k]
                    .iter()
                    .enumerate()
                    .map(|(n, at)| (n as u64 + 1, *at))
                    .filter(|(v, _)| *v > after)
                    .take(list.take.unwrap_or(1000) as usize)
                    .map(|(v, at)| {
                        json!({"aggregate_type": k.0, "aggregate_id": k.1, "event_type": "noted",
                               "payload": {}, "version": v,
                               "metadata": {"event_id": v.to_string(), "created_at": time(at)}})
                    })
                    .collect();
                Response::ListEvents(ListEventsReply::new(json!(events).to_string()))
            }
            other => panic!("the fake store does not answer {other:?}"),
        }
    }
}

fn time(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms as u64)).to_string()
}

/// Serves the store to every connection; the client for it.
async fn serve(store: Arc<Mutex<Store>>) -> (Client, tokio::task::JoinHandle<()>) {
    let (listener, addr) = listener().await;
    let server = tokio::spawn(async move {
        loop {
            let (mut session, _) = Session::accept(&listener, granted(true)).await;
            let store = store.clone();
            tokio::spawn(async move {
                while let Some((id, request)) = session.read_request().await {
                    let response = store.lock().unwrap().answer(request);
                    session.reply(id, &response).await;
                }
            });
        }
    });
    let client = Client::connect(config(addr).noise(false)).await.unwrap();
    (client, server)
}

/// Waits until the store has answered `n` more listings: the subscription has gone round.
async fn listings_after(store: &Arc<Mutex<Store>>, n: usize) {
    let start = store.lock().unwrap().listings;
    crate::common::until("the subscription lists again", || {
        store.lock().unwrap().listings >= start + n
    })
    .await;
}

/// A store holding `z` (v1 at `T`), and a subscription to it from now with one-row pages,
/// polling as fast as it may, once it has caught up.
async fn caught_up_on_z() -> (Arc<Mutex<Store>>, Follower, tokio::task::JoinHandle<()>) {
    let store = Arc::new(Mutex::new(Store::default()));
    store.lock().unwrap().write(&key("ties", "z"), T);
    let (client, server) = serve(store.clone()).await;
    let mut follower = Follower::start(
        client
            .subscribe()
            .from_now()
            .page_size(1)
            .poll_interval(Duration::from_millis(1), Duration::from_millis(2)),
    );
    follower.caught_up().await;
    (store, follower, server)
}

/// Caught up on `z` (the only aggregate, first page full), the store gets `a` in the same
/// millisecond: it sorts after `z`, so the first page still shows only `z`.
#[tokio::test]
async fn a_write_hidden_behind_an_unchanged_first_page_is_delivered() {
    let (store, follower, server) = caught_up_on_z().await;
    // Idle rounds first, so that the first page is the one the subscription settled on.
    listings_after(&store, 4).await;
    store.lock().unwrap().write(&key("ties", "a"), T);
    let a = key("ties", "a");
    follower
        .until("a v1, written in z's millisecond", |got| {
            got.contains_key(&a)
        })
        .await;
    listings_after(&store, 4).await;
    assert_eq!(follower.versions(), BTreeMap::from([(a, vec![1])]));
    server.abort();
}

/// A round delivers `y` (a new top); while it reads `y`'s events, `a` is written in `y`'s
/// millisecond, sorting after it. The round's second look at the top must see that.
#[tokio::test]
async fn a_write_in_the_top_millisecond_during_a_round_is_delivered() {
    let (store, follower, server) = caught_up_on_z().await;
    {
        let mut store = store.lock().unwrap();
        store
            .on_read
            .push((key("ties", "y"), key("ties", "a"), T + 5));
        store.write(&key("ties", "y"), T + 5);
    }
    let (a, y) = (key("ties", "a"), key("ties", "y"));
    follower
        .until(
            "y v1, and a v1 written in its millisecond while it was read",
            |got| got.contains_key(&a) && got.contains_key(&y),
        )
        .await;
    listings_after(&store, 4).await;
    assert_eq!(
        follower.versions(),
        BTreeMap::from([(a, vec![1]), (y, vec![1])])
    );
    server.abort();
}
