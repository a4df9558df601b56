"""A read model in SQLite, kept up to date by a catch-up subscription, with the checkpoint in the
same transaction as the rows it covers: each batch of events and the checkpoint after it are
committed together, so whenever the process dies, the model and the checkpoint agree, and the
next run goes on exactly where the last commit left off (effectively exactly once).

    EVENTDBX_HOST=… EVENTDBX_PORT=… EVENTDBX_TOKEN=… EVENTDBX_TENANT_ID=… \\
        python sqlite_read_model.py DATABASE [--type accounts] [--until-caught-up]

The model has one row per aggregate of the type: its version, how many events it had, the sum
of their payloads' ``amount`` and the last ``status``. Each batch commit prints a line
``applied N events through CHECKPOINT`` on stdout.
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Optional

from eventdbx import EventDBXClient, SubscribedEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    aggregate_id TEXT PRIMARY KEY,
    version      INTEGER NOT NULL,
    events       INTEGER NOT NULL,
    total        REAL    NOT NULL,
    status       TEXT
);
CREATE TABLE IF NOT EXISTS checkpoints (
    name       TEXT PRIMARY KEY,
    checkpoint TEXT NOT NULL
);
"""


def apply(db: sqlite3.Connection, delivered: SubscribedEvent) -> None:
    """Folds one event into the model. No duplicate check: the transactional checkpoint makes
    each event arrive once, and a repeat would show as ``events != version``."""
    payload = delivered.payload if isinstance(delivered.payload, dict) else {}
    amount = float(payload.get("amount", 0))
    db.execute(
        """
        INSERT INTO accounts (aggregate_id, version, events, total, status)
        VALUES (?, ?, 1, ?, ?)
        ON CONFLICT (aggregate_id) DO UPDATE SET
            version = excluded.version,
            events  = accounts.events + 1,
            total   = accounts.total + excluded.total,
            status  = COALESCE(excluded.status, accounts.status)
        """,
        (delivered.aggregate_id, delivered.version, amount, payload.get("status")),
    )


def stored_checkpoint(db: sqlite3.Connection, name: str) -> Optional[str]:
    row = db.execute("SELECT checkpoint FROM checkpoints WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database")
    parser.add_argument("--type", default="accounts", help="the aggregate type to follow")
    parser.add_argument("--until-caught-up", action="store_true")
    args = parser.parse_args()

    # Autocommit off: transactions are opened and committed explicitly below.
    db = sqlite3.connect(args.database, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.executescript(SCHEMA)
    name = f"accounts:{args.type}"

    with EventDBXClient.from_env() as client:
        feed = client.subscribe(
            aggregate_types=[args.type],
            checkpoint=stored_checkpoint(db, name),
            until_caught_up=args.until_caught_up,
        )
        while True:
            batch = feed.next_batch(max_events=200, timeout=1.0)
            if batch is None:
                break  # caught up (--until-caught-up)
            if not batch:
                continue  # nothing new for a second
            db.execute("BEGIN IMMEDIATE")
            for delivered in batch:
                apply(db, delivered)
            db.execute(
                "INSERT INTO checkpoints (name, checkpoint) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET checkpoint = excluded.checkpoint",
                (name, batch[-1].checkpoint),
            )
            db.execute("COMMIT")
            print(f"applied {len(batch)} events through {batch[-1].checkpoint[:40]}…", flush=True)
    db.close()


if __name__ == "__main__":
    main()
