"""Memory per device: a virtual DeviceActor in a shard vs one Ray actor process per device.

    .venv/bin/python benchmarks/bench_memory.py [--actors 100000] [--full auto|yes|no] [--steady 150000]
                                                [--ray-actors 4]

Goals (issue 13), printed met / not met: 10^6 device actors in < 2 GiB; no full (generation 2) GC
pause over 100 ms while ingesting (activation by first messages, then steady telemetry).

1. Virtual actors, built in fresh subprocesses the way production builds them: envelopes are
   decoded by `pulse.domain.envelope.decode` (JSON from bytes, ids split from the topic) and handled
   by a real `DeviceShard.handle_batch` / `DeviceShard.call`. Only the database is left out:
   `_activate` makes new actors without a snapshot (as for a new device; key and status strings
   copied as a DB driver returns them), registering and settling them with the shard's own
   `_register` / `_settle`, and the first-sight sensor discovery write (`discover_unmodeled_many`)
   is a no-op. Per device: 1 telemetry envelope with 10 metrics and 3 threshold rules evaluated
   (3 rule states), 1 reported-state merge (3 keys), 1 desired patch (2 keys): a twin, 10 latest
   values and 3 rules' state, plus the shard's `actors` / `status` / `last_used` entries.
   - RSS delta of the subprocess after `gc.collect()`, at `--actors` (10^5) and, when it fits
     (free memory > 1.5x the projection, `--full` not `no`), at 10^6 for real; else extrapolated;
   - tracemalloc in its own subprocess (tracing costs memory and time) at min(--actors, 20000):
     bytes per actor do not depend on the count, the largest allocation sites are the point;
   - every full (generation 2) garbage collection while the actors are activated and during
     `--steady` more telemetry messages to the live actors: the shard's event loop stands still
     for each one;
   - BASELINE in the same run (a patch inside the subprocess): `nofreeze`, the shard never calls
     gc.freeze() (`DeviceShard.freeze_every = 0`).
2. One Ray actor per device: a private local Ray cluster, N trivial actors, USS / PSS / RSS of each
   actor process (psutil), and the time it took to start them.
Compare the ratios; absolute numbers depend on the Python and Ray builds.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

TENANT = "acme"
METRICS = 10
RULES = 3
TARGET_GIB = 2.0  # issue 13: 10^6 device actors in < 2 GiB (was < 4 GiB)
TARGET_PAUSE_MS = 100.0  # issue 13: no full (generation 2) GC pause over 100 ms while ingesting
TRACE_MAX = 20_000
GiB = 1024**3
MiB = 1024**2


# ---- the subprocess that builds N virtual actors --------------------------------------------------
async def build(n: int, flags: set[str], trace: bool, steady: int, batch: int = 2000) -> dict[str, Any]:
    import gc
    import tracemalloc

    import psutil

    from pulse.domain.device import DeviceActor
    from pulse.domain.envelope import decode
    from pulse.actors.host import DeviceShard
    from pulse.domain.rules import Rule
    from pulse.storage import sensors

    async def no_discovery(*_: Any) -> None:  # first sight of a metric: a DB write, not memory
        return None

    sensors.discover_unmodeled_many = no_discovery
    rules = [Rule.from_row({"rule_id": f"00000000-0000-4000-8000-00000000000{k}", "tenant_id": TENANT,
                            "name": f"rule {k}", "rule_type": "threshold", "metric": f"metric_{k:02d}",
                            "operator": "GT", "threshold": 90.0, "severity": 3}) for k in range(RULES)]

    class OfflineShard(DeviceShard):
        """A DeviceShard whose activation skips the database (new devices, no snapshot); the actors
        are registered and the collector settled as `DeviceShard._activate` does."""

        async def _activate(self, keys: set[tuple[str, str]]) -> None:
            now, new = time.monotonic(), 0
            for key in keys:
                if key not in self.actors:
                    # new str objects, as rows from the DB driver
                    t, d, status = json.loads(json.dumps([*key, "ACTIVE"]))
                    self._register(DeviceActor(t, d, None), status, now)
                    new += 1
            for t in {t for t, _ in keys} - self.rules.keys():
                self.rules[t] = list(rules)
            self._settle(new)

    if "nofreeze" in flags:
        OfflineShard.freeze_every = 0
    gen2 = Gen2Pauses()

    tmp = tempfile.mkdtemp(prefix="bench-memory-")
    shard = OfflineShard(0, f"sqlite+aiosqlite:///{tmp}/unused.db")  # the engine never connects
    os.rmdir(tmp)
    metric_part = ",".join(f'"metric_{k:02d}":{{v{k}}}' for k in range(METRICS))
    telemetry_tpl = '{{"version":"1","ts":{ts},"seq":{seq},"metrics":{{' + metric_part + "}}}}"
    reported = b'{"reported":{"fw":"1.4.2","interval_s":60,"mode":"normal"}}'

    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    if trace:
        tracemalloc.start(1)
    t0 = time.perf_counter()
    gen2.start()
    now_ms = int(time.time() * 1000)
    for start in range(0, n, batch):
        msgs = []
        ids = range(start, min(n, start + batch))
        for i in ids:
            device = f"dev-{i:07d}"
            payload = telemetry_tpl.format(ts=now_ms - 1000, seq=i, **{f"v{k}": round((i * 7 + k * 13) % 1000 / 10, 1)
                                                                       for k in range(METRICS)})
            ok, bad = decode(f"tenant/{TENANT}/device/{device}/telemetry", payload.encode(), now_ms)
            ok2, bad2 = decode(f"tenant/{TENANT}/device/{device}/shadow/reported", reported, now_ms)
            assert not bad and not bad2, (bad, bad2)
            msgs += ok + ok2
        result = await shard.handle_batch(msgs)
        assert len(result.accepted) == len(msgs), result.rejections[:1]
        for i in ids:
            await shard.call(TENANT, f"dev-{i:07d}", "patch_desired", {"interval_s": 30, "mode": "eco"}, now_ms)
        del msgs, result
    build_s = time.perf_counter() - t0
    gen2.stop()
    gc.collect()
    out: dict[str, Any] = {"n": len(shard.actors), "build_s": build_s, "build_gen2": gen2.summary(build_s)}
    if trace:
        snap = tracemalloc.take_snapshot()
        current, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["traced_bytes"] = current
        sites = snap.statistics("lineno")[:8]
        out["top_sites"] = [(f"{Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}", s.size) for s in sites]
    else:
        out["rss_delta"] = proc.memory_info().rss - rss0
        pauses = []
        for _ in range(3):
            t = time.perf_counter()
            gc.collect()
            pauses.append((time.perf_counter() - t) * 1000)
        out["full_gc_ms"] = sorted(pauses)[1]  # median of 3
        unfrozen = len(gc.get_objects())  # gc.get_objects() leaves out the frozen (permanent) generation
        out["gc_tracked_objects"] = unfrozen + gc.get_freeze_count()
        out["gc_unfrozen_objects"] = unfrozen
    if steady:
        out["steady"] = await steady_state(shard, n, steady, telemetry_tpl, batch)
    sample = shard.actors[(TENANT, "dev-0000000")]
    out["snapshot_json_bytes"] = len(json.dumps(sample.snapshot()))
    out["sample"] = {"latest": len(sample.latest), "rules": len(sample.rule_states),
                     "reported": sorted(sample.twin["reported"]), "desired": sorted(sample.twin["desired"])}
    return out


async def steady_state(shard: Any, n: int, count: int, tpl: str, batch: int) -> dict[str, Any]:
    """`count` more telemetry messages round-robin over the n live actors, as in steady ingest:
    how often the collector runs a full (generation 2) collection, and for how long."""
    from pulse.domain.envelope import decode

    gen2 = Gen2Pauses()
    gen2.start()
    t0 = time.perf_counter()
    try:
        for start in range(0, count, batch):
            now_ms = int(time.time() * 1000)
            msgs = []
            for k in range(start, min(count, start + batch)):
                payload = tpl.format(ts=now_ms, seq=n + k, **{f"v{j}": round((k * 3 + j) % 1000 / 10, 1)
                                                              for j in range(METRICS)})
                ok, _ = decode(f"tenant/{TENANT}/device/dev-{k % n:07d}/telemetry", payload.encode(), now_ms)
                msgs += ok
            await shard.handle_batch(msgs)
    finally:
        gen2.stop()
    return {"messages": count, **gen2.summary(time.perf_counter() - t0)}


class Gen2Pauses:
    """Times every full (generation 2) collection, automatic or explicit, between start and stop."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started: float | None = None

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.pauses.append((time.perf_counter() - self._started) * 1000)
            self._started = None

    def start(self) -> None:
        import gc
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        import gc
        gc.callbacks.remove(self._on_gc)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {"seconds": seconds, "full_collections": len(self.pauses), "pause_total_ms": sum(self.pauses),
                "pause_max_ms": max(self.pauses, default=0.0)}


def run_build(n: int, flags: set[str], timeout: float, trace: bool = False, steady: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--role", "build", "--n", str(n), "--steady", str(steady),
           "--flags", ",".join(sorted(flags))] + (["--trace"] if trace else [])
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if res.returncode != 0:
        return {"error": (res.stderr or res.stdout).strip().splitlines()[-1:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ---- one Ray actor per device ---------------------------------------------------------------------
class Trivial:
    def pid(self) -> int:
        return os.getpid()


def ray_actor_cost(count: int) -> dict[str, Any]:
    import psutil
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        t0 = time.perf_counter()
        actors = [ray.remote(Trivial).options(num_cpus=0).remote() for _ in range(count)]
        pids = ray.get([a.pid.remote() for a in actors], timeout=120)
        start_s = time.perf_counter() - t0
        time.sleep(2.0)  # let the workers settle after start
        mems = [psutil.Process(p).memory_full_info() for p in pids]
        return {"count": count, "start_s": start_s,
                "uss": sum(m.uss for m in mems) / count, "pss": sum(m.pss for m in mems) / count,
                "rss": sum(m.rss for m in mems) / count}
    finally:
        ray.shutdown()


# ---- report ---------------------------------------------------------------------------------------
def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _pauses(p: dict[str, Any] | None) -> str:
    if not p:
        return "-"
    return (f"{p['full_collections']:>3} full, longest {p['pause_max_ms']:5.0f} ms, "
            f"total {p['pause_total_ms']:6.0f} ms of {1000 * p['seconds']:6.0f} ms")


VARIANTS = [  # label, flags (patches inside the build subprocess), steady phase?
    ("as shipped", set(), True),
    ("BASELINE: shard never calls gc.freeze()", {"nofreeze"}, True),
]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--actors", type=int, default=100_000, help="virtual actors per measurement (100000)")
    p.add_argument("--full", choices=("auto", "yes", "no"), default="auto",
                   help="also build 10^6 for real: auto = if memory allows (default)")
    p.add_argument("--steady", type=int, default=150_000,
                   help="telemetry messages sent to the live actors afterwards, timing full GCs (150000)")
    p.add_argument("--ray-actors", type=int, default=4, help="trivial Ray actors to measure (4)")
    p.add_argument("--timeout", type=float, default=240.0, help="upper bound per build subprocess (s)")
    p.add_argument("--role", default="main", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--flags", default="", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.role == "build":
        flags = {f for f in args.flags.split(",") if f}
        print(json.dumps(asyncio.run(build(args.n, flags, args.trace, args.steady))), flush=True)
        return 0

    import psutil

    started = time.monotonic()
    n = args.actors

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    results: dict[str, dict[str, Any]] = {}
    for label, flags, steady in VARIANTS:
        log(f"building {n:,} virtual actors: {label}")
        results[label] = run_build(n, flags, args.timeout, steady=args.steady if steady else 0)
    n_trace = min(n, TRACE_MAX)
    log(f"building {n_trace:,} virtual actors under tracemalloc")
    traced = run_build(n_trace, set(), args.timeout, trace=True)
    for label, r in [*results.items(), ("tracemalloc", traced)]:
        if "error" in r:
            print(f"build ({label}) failed: {r['error']}", file=sys.stderr)
            return 1
    rss = results["as shipped"]
    per_rss = rss["rss_delta"] / n
    projected = per_rss * 1_000_000
    available = psutil.virtual_memory().available
    full: dict[str, Any] | None = None
    if args.full == "yes" or (args.full == "auto" and available > 1.5 * projected and n < 1_000_000):
        log("building 1,000,000 virtual actors: as shipped")
        full = run_build(1_000_000, set(), args.timeout, steady=args.steady)
    log(f"starting {args.ray_actors} trivial Ray actors")
    rc = ray_actor_cost(args.ray_actors)

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nPulse memory benchmark  {now}  (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / GiB:.0f} GiB RAM)")
    s = rss["sample"]
    print(f"virtual DeviceActor in a DeviceShard: {s['latest']} latest metrics, {s['rules']} threshold rule states, "
          f"twin reported {s['reported']} desired {s['desired']}; its snapshot is {rss['snapshot_json_bytes']} B of JSON")
    print(f"  RSS delta per actor at {n:,} actors (fresh subprocess each), full gc.collect() pause, GC-tracked objects "
          f"(not frozen):")
    for label, r in results.items():
        vs = "" if r is rss else f"  ({100 * (r['rss_delta'] / rss['rss_delta'] - 1):+.0f}% vs shipped)"
        print(f"    {label:<44}{r['rss_delta'] / n:>7,.0f} B/actor   gc {r['full_gc_ms']:5.0f} ms   "
              f"{r['gc_tracked_objects'] / n:4.1f} objects/actor ({r['gc_unfrozen_objects'] / n:4.1f}){vs}")
    print(f"  tracemalloc at {n_trace:,} actors: {traced['traced_bytes'] / n_trace:,.0f} B/actor of Python heap; "
          f"largest allocation sites per actor:")
    print("    " + ", ".join(f"{site} {size / n_trace:.0f} B" for site, size in traced["top_sites"]))
    print(f"  full (generation 2) collections, each of which stops the shard's event loop: while activating the "
          f"{n:,} actors, then during {args.steady:,} more telemetry messages round-robin to them (steady ingest):")
    for label, r in results.items():
        print(f"    {label:<44}{_pauses(r['build_gen2'])}  |  steady: {_pauses(r.get('steady'))}")
    if full and "error" not in full:
        per_full = full["rss_delta"] / full["n"]
        gib_1m, basis = full["rss_delta"] / GiB, "measured: 10^6 actors built"
        print(f"  1,000,000 actors BUILT (as shipped): {per_full:,.0f} B/actor = {gib_1m:.2f} GiB RSS delta, built in "
              f"{full['build_s']:.0f} s; full gc.collect() {full['full_gc_ms']:,.0f} ms over "
              f"{full['gc_unfrozen_objects']:,} objects not frozen ({full['gc_tracked_objects']:,} tracked)")
        print(f"    activating: {_pauses(full['build_gen2'])}  |  steady: {_pauses(full.get('steady'))}")
        pause_runs, pause_basis = [full["build_gen2"], full.get("steady")], "at 10^6"
    else:
        why = full["error"] if full else ("not attempted (--full no)" if args.full == "no" else
                                          f"not built: {available / GiB:.1f} GiB available")
        per_full, gib_1m, basis = per_rss, projected / GiB, f"extrapolated from {n:,}"
        print(f"  1,000,000 actors: {why}")
        pause_runs, pause_basis = [rss["build_gen2"], rss.get("steady")], f"at {n:,} only"
    longest = max(p["pause_max_ms"] for p in pause_runs if p)
    base = results["BASELINE: shard never calls gc.freeze()"]
    base_longest = max(p["pause_max_ms"] for p in (base["build_gen2"], base.get("steady")) if p)
    print(f"  GOAL 10^6 devices as shipped: {gib_1m:.2f} GiB ({basis}; snapshot {rss['snapshot_json_bytes']} B/device, "
          f"one Ray actor per device below)   goal < {TARGET_GIB:.0f} GiB   {_met(gib_1m < TARGET_GIB)}")
    print(f"  GOAL longest full GC pause while ingesting: {longest:,.0f} ms ({pause_basis}; without gc.freeze "
          f"{base_longest:,.0f} ms at {n:,})   goal < {TARGET_PAUSE_MS:.0f} ms   {_met(longest < TARGET_PAUSE_MS)}")
    print(f"\none Ray actor process (trivial actor, mean of {rc['count']}): USS {rc['uss'] / MiB:.1f} MiB, "
          f"PSS {rc['pss'] / MiB:.1f} MiB, RSS {rc['rss'] / MiB:.1f} MiB; {rc['start_s']:.1f} s to start "
          f"{rc['count']} ({rc['start_s'] / rc['count']:.2f} s each)")
    print(f"  one Ray actor per device costs {rc['uss'] / per_full:,.0f}x the memory of a virtual actor as shipped "
          f"(USS per process / RSS per virtual actor); 10^6 of them: {rc['uss'] * 1e6 / GiB / 1024:.0f} TiB "
          f"and ~{rc['start_s'] / rc['count'] * 1e6 / 86400:.0f} days of start-up on this host")
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
