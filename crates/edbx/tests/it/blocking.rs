//! The blocking front, from plain threads, against the real server.

use crate::common::{ALL_MODES, config, server};
use edbx::blocking::Client;
use serde_json::json;

#[test]
fn blocking_calls_from_several_threads_land_once_each() {
    let server = server(ALL_MODES[0]);
    let db = Client::connect(config(&server)).unwrap();
    db.wait(db.create("orders", "b-1", "created", &json!({"total": 1})))
        .unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let db = &db;
            scope.spawn(move || {
                for seq in 0..5 {
                    db.wait(db.apply("orders", "b-1", "noted", &json!({"t": t, "seq": seq})))
                        .unwrap();
                }
            });
        }
    });
    let order = db.wait(db.get("orders", "b-1")).unwrap().unwrap();
    assert_eq!(order.version, 21);
    let events = db
        .wait(db.events("orders", "b-1").stream().collect_all())
        .unwrap();
    assert_eq!(events.len(), 21);
    assert!(db.as_async().is_encrypted());
}
