"""One timed run of the `eventdbx` Python package (distribution `edbx`) for edbx-bench.

Runs the harness's workload with the harness's ids, payloads, warm-up and barriers, from
threads sharing one ``EventDBXClient`` or asyncio tasks sharing one ``AsyncEventDBXClient``
(on asyncio's default event loop, or on uvloop's with ``--loop uvloop``), and prints one JSON
object: ops, errors, first_error, elapsed_ns, cpu_user_ns, cpu_system_ns, context_switches,
latencies_ns. The
harness (src/contenders/python_edbx.rs) starts it and reads that line.

``--client official`` runs the threads mode with the official ``eventdbx`` 0.1.8 instead (it
has the same ``EventDBXClient`` methods and results), in an interpreter that has it installed,
after ``official_0_1_8.patch()`` has fixed its three connection bugs in memory.

``--mode fork`` times a forked child's first call on an inherited client against the first
call of a client the child makes itself.

Also measures the binding's own cost (``--overhead``): a call that the Rust core refuses before
any I/O, timed from Python, against the same refusal timed inside Rust by the harness.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import threading
import time

# The client classes are imported by main(), once --client says which package to use.
EventDBXClient = AsyncEventDBXClient = EventDBXInputError = None

AGGREGATE_TYPE = "bench"
EVENT_TYPE = "bench.updated"


def preload_id(i: int) -> str:
    return f"g-{i:05d}"


def get_id(preload: int, task: int, i: int) -> str:
    return preload_id((task * 7919 + i) % max(preload, 1))


def apply_id(run: str, events_per_aggregate: int, task: int, i: int) -> str:
    return f"a-{run}-t{task}-{i // max(events_per_aggregate, 1)}"


def apply_payload(i: int) -> str:
    return json.dumps({"status": "paid", "seq": i, "amount": 12.5, "method": "card"})


class Tally:
    def __init__(self) -> None:
        self.ops = 0
        self.errors = 0
        self.first_error = None
        self.latencies_ns: list = []

    def error(self, message: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = message


def check_get(result, wanted: str) -> None:
    if not result.found:
        raise RuntimeError(f"aggregate {wanted} not found")
    if f'"aggregate_id":"{wanted}"' not in result.aggregate_json:
        raise RuntimeError(f"asked for {wanted}, got another aggregate")


def cpu_ns() -> tuple:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    switches = usage.ru_nvcsw + usage.ru_nivcsw
    return int(usage.ru_utime * 1e9), int(usage.ru_stime * 1e9), switches


def report(tallies: list, elapsed_ns: int, cpu0: tuple, cpu1: tuple) -> None:
    out = {
        "ops": sum(t.ops for t in tallies),
        "errors": sum(t.errors for t in tallies),
        "first_error": next((t.first_error for t in tallies if t.first_error), None),
        "elapsed_ns": elapsed_ns,
        "cpu_user_ns": cpu1[0] - cpu0[0],
        "cpu_system_ns": cpu1[1] - cpu0[1],
        "context_switches": cpu1[2] - cpu0[2],
        "latencies_ns": [ns for t in tallies for ns in t.latencies_ns],
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


def run_threads(args, options: dict) -> None:
    client = EventDBXClient(**options)
    barrier = threading.Barrier(args.tasks + 1)
    tallies = [Tally() for _ in range(args.tasks)]

    def op(task: int, i: int) -> None:
        if args.op == "get":
            wanted = get_id(args.preload, task, i)
            check_get(client.get(aggregate_type=AGGREGATE_TYPE, aggregate_id=wanted), wanted)
        else:
            client.apply(
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=apply_id(args.run_tag, args.events_per_aggregate, task, i),
                event_type=EVENT_TYPE,
                payload_json=apply_payload(i),
            )

    def worker(task: int) -> None:
        tally, i = tallies[task], 0
        warm_end = time.perf_counter() + args.warmup_ms / 1000
        while time.perf_counter() < warm_end:
            try:
                op(task, i)
            except Exception as e:  # noqa: BLE001 - every failure invalidates the run
                tally.error(f"during warm-up: {e}")
            i += 1
        barrier.wait()
        barrier.wait()
        deadline = time.perf_counter_ns() + args.duration_ms * 1_000_000
        while True:
            started = time.perf_counter_ns()
            if started >= deadline:
                break
            try:
                op(task, i)
                tally.ops += 1
                tally.latencies_ns.append(time.perf_counter_ns() - started)
            except Exception as e:  # noqa: BLE001
                tally.error(str(e))
            i += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(args.tasks)]
    for thread in threads:
        thread.start()
    barrier.wait()
    cpu0, t0 = cpu_ns(), time.perf_counter_ns()
    barrier.wait()
    for thread in threads:
        thread.join()
    elapsed, cpu1 = time.perf_counter_ns() - t0, cpu_ns()
    client.close()
    report(tallies, elapsed, cpu0, cpu1)


async def run_asyncio(args, options: dict) -> None:
    client = await AsyncEventDBXClient(**options).connect()
    tallies = [Tally() for _ in range(args.tasks)]
    warmed = asyncio.Event()
    go = asyncio.Event()
    pending = [args.tasks]

    async def op(task: int, i: int) -> None:
        if args.op == "get":
            wanted = get_id(args.preload, task, i)
            check_get(await client.get(aggregate_type=AGGREGATE_TYPE, aggregate_id=wanted), wanted)
        else:
            await client.apply(
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=apply_id(args.run_tag, args.events_per_aggregate, task, i),
                event_type=EVENT_TYPE,
                payload_json=apply_payload(i),
            )

    async def worker(task: int) -> None:
        tally, i = tallies[task], 0
        warm_end = time.perf_counter() + args.warmup_ms / 1000
        while time.perf_counter() < warm_end:
            try:
                await op(task, i)
            except Exception as e:  # noqa: BLE001
                tally.error(f"during warm-up: {e}")
            i += 1
        pending[0] -= 1
        if pending[0] == 0:
            warmed.set()
        await go.wait()
        deadline = time.perf_counter_ns() + args.duration_ms * 1_000_000
        while True:
            started = time.perf_counter_ns()
            if started >= deadline:
                break
            try:
                await op(task, i)
                tally.ops += 1
                tally.latencies_ns.append(time.perf_counter_ns() - started)
            except Exception as e:  # noqa: BLE001
                tally.error(str(e))
            i += 1

    workers = [asyncio.ensure_future(worker(t)) for t in range(args.tasks)]
    await warmed.wait()
    cpu0, t0 = cpu_ns(), time.perf_counter_ns()
    go.set()
    await asyncio.gather(*workers)
    elapsed, cpu1 = time.perf_counter_ns() - t0, cpu_ns()
    await client.close()
    report(tallies, elapsed, cpu0, cpu1)


def overhead(args, options: dict) -> None:
    """Mean cost of one call that crosses into Rust and back without I/O: the Rust core refuses
    an invalid aggregate type before sending, so this is argument passing, the GIL release and
    the runtime round trip, and raising the exception."""
    client = EventDBXClient(**options)
    n = 20_000
    for _ in range(2):  # the second round is measured
        started = time.perf_counter_ns()
        for _ in range(n):
            try:
                client.get(aggregate_type="Not-Valid", aggregate_id="x")
            except EventDBXInputError:
                pass
        per_call = (time.perf_counter_ns() - started) / n
    client.close()
    json.dump({"per_call_ns": per_call}, sys.stdout)
    sys.stdout.write("\n")


def fork_first_call(args, options: dict) -> None:
    """In a forked child (gunicorn --preload, Celery prefork), the first call on a client it
    inherited, which opens the child's own connection, against the first call of a client the
    child makes itself (constructor and connect included): medians over 20 children each, in
    ns. Both pay the fork's copy-on-write faults, so the difference is the client's."""
    import os
    import statistics

    inherited = EventDBXClient(**options)
    inherited.get(aggregate_type=AGGREGATE_TYPE, aggregate_id="fork-probe")

    def in_child(fresh: bool) -> int:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            code = 1
            try:
                started = time.perf_counter_ns()
                client = EventDBXClient(**options) if fresh else inherited
                client.get(aggregate_type=AGGREGATE_TYPE, aggregate_id="fork-probe")
                os.write(write_end, str(time.perf_counter_ns() - started).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end) as answer:
            elapsed = answer.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not elapsed:
            raise RuntimeError(f"forked child failed (status {status})")
        return int(elapsed)

    fresh_ns, forked_ns = [], []
    for _ in range(20):  # alternating, so that drift hits both alike
        fresh_ns.append(in_child(fresh=True))
        forked_ns.append(in_child(fresh=False))
    inherited.close()
    json.dump(
        {"fresh_ns": statistics.median(fresh_ns), "forked_ns": statistics.median(forked_ns)},
        sys.stdout,
    )
    sys.stdout.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--mode", choices=["threads", "asyncio", "overhead", "fork"], required=True)
    parser.add_argument("--op", choices=["get", "apply"], default="get")
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--duration-ms", type=int, default=2000)
    parser.add_argument("--warmup-ms", type=int, default=300)
    parser.add_argument("--preload", type=int, default=256)
    parser.add_argument("--events-per-aggregate", type=int, default=8)
    parser.add_argument("--run-tag", default="py")
    parser.add_argument("--client", choices=["edbx", "official"], default="edbx")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    global EventDBXClient, AsyncEventDBXClient, EventDBXInputError
    if args.client == "official":
        if args.mode != "threads":
            parser.error("the official client 0.1.8 is blocking: only --mode threads")
        import official_0_1_8  # beside this script

        official_0_1_8.patch()
        from eventdbx import EventDBXClient
    else:
        from eventdbx import AsyncEventDBXClient, EventDBXClient, EventDBXInputError
    # The token comes on stdin, so it is not in the process list.
    token = sys.stdin.readline().strip()
    options = {"token": token, "tenant_id": args.tenant, "host": args.host, "port": args.port}
    if args.mode == "threads":
        run_threads(args, options)
    elif args.mode == "asyncio" and args.loop == "uvloop":
        import uvloop

        uvloop.run(run_asyncio(args, options))
    elif args.mode == "asyncio":
        asyncio.run(run_asyncio(args, options))
    elif args.mode == "fork":
        fork_first_call(args, options)
    else:
        overhead(args, options)


if __name__ == "__main__":
    main()
