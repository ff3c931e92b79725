"""Memory per device: a virtual DeviceActor in a shard vs one Ray actor process per device.

    .venv/bin/python benchmarks/bench_memory.py [--actors 100000] [--full auto|yes|no] [--ray-actors 4]

1. Virtual actors, each built in a fresh subprocess the way production builds them: envelopes are
   decoded by `pulse.actors.envelope.decode` (JSON from bytes, ids split from the topic) and handled
   by a real `DeviceShard.handle_batch` / `DeviceShard.call`; only `_activate` is replaced (no
   database: a fresh device starts from no snapshot, as in production, with its key strings copied
   as a DB driver would return them). Per device: 1 telemetry envelope with 10 metrics, 3 threshold
   rules evaluated (3 rule states), 1 reported-state merge (3 keys), 1 desired patch (2 keys), i.e.
   a twin, 10 latest values and 3 rules' state, plus the shard's `status` and `last_used` entries.
   Measured as (a) RSS delta of the subprocess after `gc.collect()`, (b) tracemalloc (separate
   subprocess: tracing costs memory and time), (c) EXPERIMENTS (benchmark-local patches, not
   shipped code): metric keys interned; + latest values as tuples; gc.freeze() after activation.
   Then `--steady` more telemetry messages go to the live actors, and every full (generation 2)
   garbage collection is timed: with 10^5+ actors a shard stalls for the whole collection.
   10^6 is built for real when it fits (free memory > 1.5x the projection and `--full` is not
   `no`); otherwise it is extrapolated from 10^5 and the output says so.
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
TARGET_GIB = 4.0
GiB = 1024**3
MiB = 1024**2


# ---- the subprocess that builds N virtual actors --------------------------------------------------
def use_tuples_for_latest() -> None:
    """EXPERIMENT (not shipped): DeviceActor.on_telemetry storing latest values as (value, ts) tuples.
    A tuple of a float and an int is smaller than a list and CPython stops GC-tracking it."""
    from pulse.actors.device import DeviceActor
    from pulse.actors.rules import RuleState, step

    def on_telemetry(self: Any, msg: Any, rules: Any) -> list:
        self._seen(msg.ts_ms, "last_telemetry_ms")
        for metric, value in msg.metrics.items():
            cur = self.latest.get(metric)
            if cur is None or msg.ts_ms >= cur[1]:
                self.latest[metric] = (value, msg.ts_ms)
        effects = []
        for rule in rules:
            value = msg.metrics.get(rule.metric)
            if value is None or not rule.applies_to(self.device_id):
                continue
            state = self.rule_states.setdefault(rule.rule_id, RuleState())
            event = step(rule, state, self.device_id, value, msg.ts_ms)
            if event is not None:
                effects.append(event)
        self.dirty = True
        return effects

    DeviceActor.on_telemetry = on_telemetry


async def build(n: int, intern: bool, trace: bool, tuples: bool = False, steady: int = 0, freeze: bool = False,
                batch: int = 2000) -> dict[str, Any]:
    import gc
    import tracemalloc

    import psutil

    from pulse.actors.device import DeviceActor
    from pulse.actors.envelope import decode
    from pulse.actors.host import DeviceShard
    from pulse.actors.messages import Telemetry
    from pulse.actors.rules import Rule

    if tuples:
        use_tuples_for_latest()
    rules = [Rule(rule_id=f"00000000-0000-4000-8000-00000000000{k}", tenant_id=TENANT, name=f"rule {k}",
                  metric=f"metric_{k:02d}", operator="GT", threshold=90.0) for k in range(RULES)]

    class OfflineShard(DeviceShard):
        """A DeviceShard whose activation skips the database (new devices, no snapshot)."""

        async def _activate(self, keys: set[tuple[str, str]]) -> None:
            for key in keys:
                if key not in self.actors:
                    t, d = json.loads(json.dumps(key))  # new str objects, as rows from the DB driver
                    self.actors[(t, d)] = DeviceActor(t, d, None)
                    self.status[(t, d)] = "ACTIVE"
            for t in {t for t, _ in keys} - self.rules.keys():
                self.rules[t] = list(rules)

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
        if intern:  # EXPERIMENT: what `sys.intern` on metric keys at decode time would save
            for m in msgs:
                if isinstance(m, Telemetry):
                    m.metrics = {sys.intern(k): v for k, v in m.metrics.items()}
        result = await shard.handle_batch(msgs)
        assert len(result.accepted) == len(msgs), result.rejections[:1]
        for i in ids:
            await shard.call(TENANT, f"dev-{i:07d}", "patch_desired", {"interval_s": 30, "mode": "eco"}, now_ms)
        del msgs, result
    build_s = time.perf_counter() - t0
    gc.collect()
    out: dict[str, Any] = {"n": len(shard.actors), "build_s": build_s}
    if trace:
        snap = tracemalloc.take_snapshot()
        current, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["traced_bytes"] = current
        sites = snap.statistics("lineno")[:8]
        out["top_sites"] = [(f"{Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}", s.size) for s in sites]
    else:
        out["rss_delta"] = proc.memory_info().rss - rss0
        out["uss"] = proc.memory_full_info().uss
        pauses = []
        for _ in range(3):
            t = time.perf_counter()
            gc.collect()
            pauses.append((time.perf_counter() - t) * 1000)
        out["full_gc_ms"] = sorted(pauses)[1]  # median of 3
        out["gc_tracked_objects"] = len(gc.get_objects())
        gc.freeze()  # EXPERIMENT: long-lived actor state moved out of the collector's generations
        t = time.perf_counter()
        gc.collect()
        out["frozen_gc_ms"] = (time.perf_counter() - t) * 1000
        gc.unfreeze()
    if freeze:  # EXPERIMENT: what a gc.freeze() after activating the actors does to steady-state pauses
        gc.freeze()
    if steady:
        out["steady"] = await steady_state(shard, n, steady, telemetry_tpl, intern, batch)
    sample = shard.actors[(TENANT, "dev-0000000")]
    out["snapshot_json_bytes"] = len(json.dumps(sample.snapshot()))
    out["sample"] = {"latest": len(sample.latest), "rules": len(sample.rule_states),
                     "reported": sorted(sample.twin["reported"]), "desired": sorted(sample.twin["desired"])}
    return out


async def steady_state(shard: Any, n: int, count: int, tpl: str, intern: bool, batch: int) -> dict[str, Any]:
    """`count` more telemetry messages round-robin over the n live actors, as in steady ingest:
    how often the collector runs a full (generation 2) collection, and for how long."""
    import gc

    from pulse.actors.envelope import decode
    from pulse.actors.messages import Telemetry

    pauses: list[float] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started.append(time.perf_counter())
            elif started:
                pauses.append((time.perf_counter() - started.pop()) * 1000)

    gc.callbacks.append(on_gc)
    t0 = time.perf_counter()
    try:
        for start in range(0, count, batch):
            now_ms = int(time.time() * 1000)
            msgs = []
            for k in range(start, min(count, start + batch)):
                i = k % n
                payload = tpl.format(ts=now_ms, seq=n + k, **{f"v{j}": round((k * 3 + j) % 1000 / 10, 1)
                                                              for j in range(METRICS)})
                ok, _ = decode(f"tenant/{TENANT}/device/dev-{i:07d}/telemetry", payload.encode(), now_ms)
                msgs += ok
            if intern:
                for m in msgs:
                    if isinstance(m, Telemetry):
                        m.metrics = {sys.intern(x): v for x, v in m.metrics.items()}
            await shard.handle_batch(msgs)
    finally:
        gc.callbacks.remove(on_gc)
    return {"messages": count, "seconds": time.perf_counter() - t0, "full_collections": len(pauses),
            "pause_total_ms": sum(pauses), "pause_max_ms": max(pauses, default=0.0)}


def run_build(n: int, intern: bool, trace: bool, timeout: float, tuples: bool = False, steady: int = 0,
              freeze: bool = False) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--role", "build", "--n", str(n), "--steady", str(steady)]
    cmd += ["--freeze"] if freeze else []
    cmd += ["--intern"] if intern else []
    cmd += ["--tuples"] if tuples else []
    cmd += ["--trace"] if trace else []
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
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--actors", type=int, default=100_000, help="virtual actors per measurement (100000)")
    p.add_argument("--full", choices=("auto", "yes", "no"), default="auto",
                   help="also build 10^6 for real: auto = if memory allows (default)")
    p.add_argument("--ray-actors", type=int, default=4, help="trivial Ray actors to measure (4)")
    p.add_argument("--timeout", type=float, default=240.0, help="upper bound per build subprocess (s)")
    p.add_argument("--role", default="main", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--intern", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tuples", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--freeze", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--steady", type=int, default=300_000,
                   help="telemetry messages sent to the live actors afterwards, counting full GC pauses (300000)")
    args = p.parse_args()
    if args.role == "build":
        print(json.dumps(asyncio.run(build(args.n, args.intern, args.trace, args.tuples, args.steady,
                                                args.freeze))), flush=True)
        return 0

    import psutil

    started = time.monotonic()
    n = args.actors

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    log(f"building {n:,} virtual actors (RSS)")
    rss = run_build(n, False, False, args.timeout, steady=args.steady)
    log(f"building {n:,} virtual actors (tracemalloc)")
    traced = run_build(n, False, True, args.timeout * 2)
    log(f"building {n:,} virtual actors (metric keys interned)")
    interned = run_build(n, True, False, args.timeout)
    log(f"building {n:,} virtual actors (metric keys interned + latest values as tuples)")
    compact = run_build(n, True, False, args.timeout, tuples=True, steady=args.steady)
    log(f"building {n:,} virtual actors (as shipped, gc.freeze() after activation)")
    frozen = run_build(n, False, False, args.timeout, steady=args.steady, freeze=True)
    for name, r in (("RSS", rss), ("tracemalloc", traced), ("interned", interned), ("compact", compact),
                    ("frozen", frozen)):
        if "error" in r:
            print(f"build ({name}) failed: {r['error']}", file=sys.stderr)
            return 1

    per_rss = rss["rss_delta"] / n
    projected = per_rss * 1_000_000
    full: dict[str, Any] | None = None
    available = psutil.virtual_memory().available
    build_full = args.full == "yes" or (args.full == "auto" and available > 1.5 * projected and n < 1_000_000)
    if build_full:
        log("building 1,000,000 virtual actors (RSS)")  # no steady phase: it would take minutes
        full = run_build(1_000_000, False, False, args.timeout)
    log(f"starting {args.ray_actors} trivial Ray actors")
    ray_cost = ray_actor_cost(args.ray_actors)

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nPulse memory benchmark  {now}  (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / GiB:.0f} GiB RAM)")
    s = rss["sample"]
    print(f"virtual DeviceActor in a DeviceShard: {s['latest']} latest metrics, {s['rules']} rule states, twin "
          f"reported {s['reported']} desired {s['desired']}; snapshot JSON {rss['snapshot_json_bytes']} B")
    print(f"  {n:,} actors, RSS delta (fresh subprocess)    {per_rss:>7,.0f} B/actor   "
          f"({rss['rss_delta'] / MiB:,.0f} MiB, built in {rss['build_s']:.1f} s)")
    print(f"  {n:,} actors, tracemalloc (Python heap)       {traced['traced_bytes'] / n:>7,.0f} B/actor")
    print(f"    largest allocation sites: " + ", ".join(f"{site} {size / n:.0f} B" for site, size in traced["top_sites"]))
    for label, r in (("EXPERIMENT metric keys interned", interned),
                     ("EXPERIMENT + latest as (value, ts) tuples", compact)):
        print(f"  {n:,} actors, {label:<42}{r['rss_delta'] / n:>7,.0f} B/actor   "
              f"(saves {100 * (1 - r['rss_delta'] / rss['rss_delta']):.0f}%; full gc.collect() {r['full_gc_ms']:.0f} ms, "
              f"{r['gc_tracked_objects']:,} GC-tracked objects)")
    print(f"  full gc.collect() with {n:,} actors as shipped: {rss['full_gc_ms']:.0f} ms "
          f"({rss['gc_tracked_objects']:,} GC-tracked objects in the process, "
          f"{rss['gc_tracked_objects'] / n:.0f} per actor); after gc.freeze(): {rss['frozen_gc_ms']:.1f} ms")
    for label, r in (("as shipped", rss), ("EXPERIMENT interned + tuples", compact),
                     ("EXPERIMENT gc.freeze() after build", frozen)):
        st = r.get("steady")
        if st:
            print(f"  steady ingest, {label:<34}: {st['messages']:,} more messages to the {n:,} actors in "
                  f"{st['seconds']:.1f} s -> {st['full_collections']} full GC collections, longest "
                  f"{st['pause_max_ms']:.0f} ms, {st['pause_total_ms']:.0f} ms in total (the shard's event loop "
                  f"stands still meanwhile)")
    if full and "error" not in full:
        per_full = full["rss_delta"] / full["n"]
        print(f"  1,000,000 actors BUILT, RSS delta              {per_full:>7,.0f} B/actor   "
              f"= {full['rss_delta'] / GiB:.2f} GiB (built in {full['build_s']:.0f} s; full gc.collect() "
              f"{full['full_gc_ms']:.0f} ms over {full['gc_tracked_objects']:,} objects, "
              f"{full['frozen_gc_ms']:.0f} ms after gc.freeze())")
        gib_1m = full["rss_delta"] / GiB
        basis = "measured"
    else:
        why = full["error"] if full else ("not attempted (--full no)" if args.full == "no" else
                                          f"not built: {available / GiB:.1f} GiB available")
        print(f"  1,000,000 actors: {why}; extrapolated from {n:,}")
        gib_1m = projected / GiB
        basis = "extrapolated"
    verdict = "meets target" if gib_1m < TARGET_GIB else "ABOVE target"
    print(f"  10^6 devices: {gib_1m:.2f} GiB ({basis})   target < {TARGET_GIB:.0f} GiB   {verdict}")

    rc = ray_cost
    print(f"\none Ray actor process (trivial actor, mean of {rc['count']}): USS {rc['uss'] / MiB:.1f} MiB, "
          f"PSS {rc['pss'] / MiB:.1f} MiB, RSS {rc['rss'] / MiB:.1f} MiB; {rc['start_s']:.1f} s to start "
          f"{rc['count']} ({rc['start_s'] / rc['count']:.2f} s each)")
    per_virtual = (full["rss_delta"] / full["n"]) if full and "error" not in full else per_rss
    print(f"  one Ray actor per device costs {rc['uss'] / per_virtual:,.0f}x the memory of a virtual actor "
          f"(USS per process / RSS per virtual actor); 10^6 of them: {rc['uss'] * 1e6 / GiB / 1024:.0f} TiB "
          f"and ~{rc['start_s'] / rc['count'] * 1e6 / 86400:.0f} days of start-up on this host")
    print(f"\ntotal wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
