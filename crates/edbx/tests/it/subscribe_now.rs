//! Subscriptions from now, against the real server: every event acknowledged after the
//! subscription reports that it has caught up is delivered, once, in version order per
//! aggregate — written right after that report (the web UI's sequence), by a writer racing
//! the start (so "now" often falls in the millisecond of one of its writes), and to an
//! aggregate whose earlier versions lie below the floor. Each test repeats its sequence many
//! times on one server, so that a race shows up. The millisecond ties the server cannot be
//! made to produce are played by a fake store in `subscribe_ties.rs`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edbx::{Client, Subscribe, SubscribedEvent};
use futures_core::Stream;
use tokio::sync::watch;

use crate::common::{Mode, client, server};
use crate::subscribe::write;

const MODE: Mode = Mode {
    noise: true,
    verbose: true,
};

/// How long a test waits for a state before it fails (a missed event never arrives).
const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) type Key = (String, String);

pub(crate) fn key(t: &str, id: &str) -> Key {
    (t.to_owned(), id.to_owned())
}

/// A subscription driven on a task of its own: what it delivered, and whether it has said
/// it caught up (observed as soon as the subscription takes that message, with no event
/// needed to carry it).
pub(crate) struct Follower {
    events: Arc<Mutex<Vec<SubscribedEvent>>>,
    caught_up: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    pub(crate) fn start(subscribe: Subscribe<'_>) -> Self {
        let mut subscription = subscribe.stream().unwrap();
        let events: Arc<Mutex<Vec<SubscribedEvent>>> = Arc::default();
        let (tell, caught_up) = watch::channel(false);
        let task = {
            let events = events.clone();
            tokio::spawn(async move {
                loop {
                    let next = std::future::poll_fn(|cx| {
                        let next = Pin::new(&mut subscription).poll_next(cx);
                        if subscription.is_caught_up() && !*tell.borrow() {
                            tell.send_replace(true);
                        }
                        next
                    })
                    .await;
                    match next {
                        Some(delivered) => events.lock().unwrap().push(delivered.unwrap()),
                        None => return,
                    }
                }
            })
        };
        Self {
            events,
            caught_up,
            task,
        }
    }

    pub(crate) async fn caught_up(&mut self) {
        tokio::time::timeout(PATIENCE, self.caught_up.wait_for(|yes| *yes))
            .await
            .expect("the subscription did not catch up")
            .unwrap();
    }

    /// Versions delivered per aggregate, in delivery order.
    pub(crate) fn versions(&self) -> BTreeMap<Key, Vec<u64>> {
        let mut out: BTreeMap<Key, Vec<u64>> = BTreeMap::new();
        for e in self.events.lock().unwrap().iter() {
            out.entry(key(&e.event.aggregate_type, &e.event.aggregate_id))
                .or_default()
                .push(e.event.version);
        }
        out
    }

    /// Waits until `done` holds of what was delivered; fails with it otherwise.
    pub(crate) async fn until(&self, what: &str, done: impl Fn(&BTreeMap<Key, Vec<u64>>) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = self.versions();
            if done(&got) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: delivered {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The UI's sequence, 30 times: o1 v1, subscribe from now, wait until it has caught up, then
/// o1 v2, x1 v1 (another type) and o2 v1 at once. Exactly those, once each; and o1's v2
/// before o2's v1, as a round hands on its aggregates oldest change first.
#[tokio::test]
async fn from_now_delivers_every_write_acknowledged_after_it_caught_up() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for i in 0..30 {
        let (o1, o2, x1) = (format!("o1-{i}"), format!("o2-{i}"), format!("x1-{i}"));
        write(&client, "orders", &o1, 0).await;
        let mut follower = Follower::start(
            client
                .subscribe()
                .from_now()
                .poll_interval(Duration::from_millis(50), Duration::from_millis(100)),
        );
        follower.caught_up().await;
        write(&client, "orders", &o1, 1).await;
        write(&client, "other", &x1, 1).await;
        write(&client, "orders", &o2, 2).await;
        let want = BTreeMap::from([
            (key("orders", &o1), vec![2]),
            (key("orders", &o2), vec![1]),
            (key("other", &x1), vec![1]),
        ]);
        follower
            .until(&format!("iteration {i}: o1 v2, x1 v1, o2 v1"), |got| {
                got.len() >= want.len() && want.keys().all(|k| got.contains_key(k))
            })
            .await;
        assert_eq!(follower.versions(), want, "iteration {i}");
        let order: Vec<String> = follower
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event.aggregate_id.clone())
            .collect();
        let at = |id: &str| order.iter().position(|o| o == id);
        assert!(at(&o1) < at(&o2), "iteration {i}: delivered {order:?}");
    }
}

/// A writer appends to one aggregate without pause while subscriptions from now start, so
/// "now" falls in the middle of its writes, often in the same millisecond as one. Each write
/// sent after the subscription said it caught up is delivered; an earlier one may be or not,
/// but the delivered versions run without a gap to the last, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_now_taken_amid_writes_delivers_every_later_one() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for i in 0..20 {
        let hot = format!("hot-{i}");
        let caught_up = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        // Writes until 20 have been sent after the subscription caught up; returns the last
        // version and the first one sent after.
        let writer = {
            let (client, hot) = (client.clone(), hot.clone());
            let (caught_up, acked) = (caught_up.clone(), acked.clone());
            tokio::spawn(async move {
                let mut first_after = None;
                for version in 1.. {
                    let sent_after = caught_up.load(Ordering::SeqCst);
                    write(&client, "hot", &hot, version).await;
                    acked.store(version, Ordering::SeqCst);
                    if sent_after {
                        let first = *first_after.get_or_insert(version);
                        if version >= first + 20 {
                            return (version, first);
                        }
                    }
                }
                unreachable!()
            })
        };
        crate::common::until("the writer is at it", || acked.load(Ordering::SeqCst) >= 2).await;
        let mut follower = Follower::start(
            client
                .subscribe()
                .from_now()
                .poll_interval(Duration::from_millis(20), Duration::from_millis(100)),
        );
        follower.caught_up().await;
        caught_up.store(true, Ordering::SeqCst);
        let (last, first_after) = writer.await.unwrap();
        let k = key("hot", &hot);
        follower
            .until(&format!("iteration {i}: {hot} through v{last}"), |got| {
                got.get(&k).and_then(|v| v.last()) == Some(&last)
            })
            .await;
        let got = follower.versions().remove(&k).unwrap();
        let from = got[0];
        assert!(
            from <= first_after,
            "iteration {i}: v{first_after} was sent after the subscription caught up, \
             delivery started at v{from}"
        );
        assert_eq!(
            got,
            (from..=last).collect::<Vec<_>>(),
            "iteration {i}: a gap or a repeat"
        );
    }
}

/// An aggregate whose earlier versions lie below the subscription's floor (a 1 ms overlap,
/// later writes to other aggregates after it) gets a version after the start: that version,
/// and only it, is delivered.
#[tokio::test]
async fn from_now_delivers_a_new_version_of_an_aggregate_below_the_floor() {
    let server = server(MODE);
    let client = client(&server, true).await;
    for i in 0..20 {
        let old = format!("old-{i}");
        for n in 1..=3 {
            write(&client, "orders", &old, n).await;
        }
        let old_at = updated_at(&client, "orders", &old).await;
        // Later writes, until the store's latest change is more than the overlap after it:
        // then the floor (latest − 1 ms) is above every version of `old`.
        let mut n = 0;
        loop {
            n += 1;
            let filler = format!("filler-{i}-{n}");
            write(&client, "other", &filler, n).await;
            if updated_at(&client, "other", &filler).await > old_at + 1 {
                break;
            }
        }
        let mut follower = Follower::start(
            client
                .subscribe()
                .from_now()
                .overlap(Duration::from_millis(1))
                .poll_interval(Duration::from_millis(20), Duration::from_millis(100)),
        );
        follower.caught_up().await;
        write(&client, "orders", &old, 4).await;
        let k = key("orders", &old);
        follower
            .until(&format!("iteration {i}: {old} v4"), |got| {
                got.contains_key(&k)
            })
            .await;
        assert_eq!(
            follower.versions(),
            BTreeMap::from([(k, vec![4])]),
            "iteration {i}"
        );
    }
}

/// An aggregate's last change (ms since the epoch), as the server lists it.
async fn updated_at(client: &Client, t: &str, id: &str) -> i64 {
    let aggregate = client
        .get(t, id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{t}/{id} not found"));
    let text = aggregate.updated_at.expect("an updated_at");
    let time = humantime::parse_rfc3339(&text).unwrap();
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
