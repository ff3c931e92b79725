"""End-to-end MQTT ingest benchmark: Mosquitto -> IngestBridge -> DeviceShards (and their lake WALs).

    .venv/bin/python benchmarks/bench_ingest.py [--devices N] [--messages M] [--metrics K]
    .venv/bin/python benchmarks/bench_ingest.py --sweep settings --repeat 2   # shipped code, other settings
    .venv/bin/python benchmarks/bench_ingest.py --sweep changes --repeat 2    # shipped code vs gc.freeze() EXPERIMENT
    .venv/bin/python benchmarks/bench_ingest.py --sweep scale                 # defaults (1+1), 1+2, 2 bridges + 2 shards
    .venv/bin/python benchmarks/bench_ingest.py --sweep intake --repeat 3     # bridge in the shard vs its own actor

Everything runs on 127.0.0.1 inside this run: a Mosquitto subprocess (dynamic-security, the
config Pulse ships), a temporary data dir with SQLite, a private local Ray cluster, the Pulse
actors (`RayRuntime.deploy()`) and the `IngestBridge`s placed the way `pulse.node` places them
(`deploy_bridges`: inside the device shards by default; the shipped bridge: `pulse.mqtt.subscriber.MqttSubscriber`, MQTT 3.1.1, persistent session,
`$share/pulse-ingest/...`, deadline batches, acks after the lake WAL append; the shards decode).
The load comes from one `mosquitto_pub -l` process per device (each logs in as `{tenant}/{device}`
with its own token, as the broker ACL requires), QoS 1, envelope v1 with K metrics and a `seq`.

Phases (same publishers, same message format, all measured in this run):
0. C ceiling - the same messages to Mosquitto's own C subscriber, `mosquitto_sub -C N`, QoS 1, on
              `$share/cceiling/tenant/+/device/+/#` as the service account: first publish -> it
              exits. The goal is relative to this one (e2e >= 70 %);
1. ceiling  - (a second reference) the same messages to a bare aiomqtt subscriber (subprocess) that only counts:
              aiomqtt's default protocol (MQTT 3.1.1), `$share/ceiling/tenant/+/device/+/#`, QoS 1;
              first publish -> last message received;
2. naive    - one Ray actor call per message: an async Ray actor subscribes the same way (aiomqtt,
              MQTT 3.1.1) and awaits `sink.handle.remote(topic, payload)` for every message (the
              sink only counts);
3. pulse    - first publish -> the bridges' `stats()` report accepted + rejected == published
              (polled every 20 ms). A bridge counts a batch after its telemetry is in the lake WAL;
4. latency  - background load paced at half the measured pulse rate, plus a probe device that
              publishes a unique value every ~50 ms and polls `latest_view` on its device actor
              (through a `RayRuntime` connected in this driver) until the value is there:
              publish -> visible in the device actor's latest values. That is after the device
              shard has handled it, possibly just before its lake WAL append returns
              (goal: p99 < 100 ms).
Figures are ratios against baselines measured in the same run; nothing is asserted on time.

Every phase also prints where the CPU went (per process kind, from psutil / rusage, including
"other processes on this host": on a shared 2-core machine that is the noise to read first) and,
for Pulse, the bridge's batch sizes and the round-trip times of its runtime's actor calls
(`handle_raw`, `handle_events`; a thin subclass of `IngestBridge` with timers around
`process(batch)` and `Runtime._call`, behaviour unchanged). `--profile` adds a py-spy summary.
Between configurations the bridges' persistent sessions are deleted (`retire_sessions`).
The one EXPERIMENT left (`--experiment gcfreeze`, `--sweep changes`) swaps in benchmark-local
subclasses; it is labelled as such in the output.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing

TENANT = "bench"
PROBE = "probe-0"
SHARE_FILTER = "tenant/+/device/+/#"
C_SUBSCRIBER = "/usr/bin/mosquitto_sub"  # Debian mosquitto-clients
TARGETS = {"ceiling_pct": 70.0, "naive_x": 5.0, "p99_ms": 100.0}  # ceiling_pct: of the C subscriber (mosquitto_sub)

def _shipped_defaults() -> dict[str, int]:
    from pulse.config.settings import Settings

    return {name: Settings.model_fields[name].default
            for name in ("ingest_batch_size", "ingest_batch_ms", "ingest_bridges", "device_shards", "ingest_in_shards")}


DEFAULTS = _shipped_defaults()  # the settings Pulse ships with, what "defaults" means below


@dataclass(frozen=True)
class Cfg:
    """One Pulse deployment to measure: settings, plus EXPERIMENTS (none = shipped code)."""

    batch_size: int = DEFAULTS["ingest_batch_size"]
    batch_ms: int = DEFAULTS["ingest_batch_ms"]
    bridges: int = DEFAULTS["ingest_bridges"]
    shards: int = DEFAULTS["device_shards"]
    in_shards: bool = DEFAULTS["ingest_in_shards"]  # bridges run inside the device shards
    experiments: frozenset[str] = frozenset()

    def label(self) -> str:
        out = (f"batch_size={self.batch_size} batch_ms={self.batch_ms} bridges={self.bridges} shards={self.shards} "
               f"intake={'in shard' if self.in_shards else 'bridge actor'}")
        if self.experiments:
            out += " +" + "+".join(sorted(self.experiments))
        return out

    @property
    def shipped(self) -> bool:
        return not self.experiments

    @property
    def defaults(self) -> bool:
        return self.shipped and (self.batch_size, self.batch_ms, self.bridges, self.shards,
                                 self.in_shards) == tuple(DEFAULTS.values())


EXPERIMENTS = {"gcfreeze": "gc.freeze() in the bridge and shard processes once started"}
# --sweep settings: the shipped code under other settings; --sweep changes: shipped vs EXPERIMENTS.
SWEEPS = {
    "settings": [Cfg(), Cfg(batch_ms=5), Cfg(batch_ms=50), Cfg(batch_size=2000), Cfg(batch_size=200),
                 Cfg(bridges=2), Cfg(shards=2), Cfg(shards=4), Cfg(batch_size=3000, batch_ms=50, bridges=2)],
    "changes": [Cfg(), Cfg(experiments=frozenset({"gcfreeze"}))],
    # issue 13: 2 bridges and 2 shards beside 1 and 1 (the defaults), and 1 bridge with 2 shards
    "scale": [Cfg(), Cfg(shards=2), Cfg(bridges=2, shards=2)],
    "batch": [Cfg(), Cfg(batch_size=1000), Cfg(batch_size=3000)],
    "shards": [Cfg(), Cfg(shards=2)],
    # the bridge inside the device shard's process (default) vs a Ray actor of its own
    "intake": [Cfg(), Cfg(in_shards=False)],
    "wait": [Cfg(), Cfg(batch_ms=5), Cfg(batch_ms=20)],  # how long a batch may wait to fill: latency
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- where the CPU goes ------------------------------------------------------------------------
COMPONENTS = ("IngestBridge", "DeviceShard", "TenantShard", "NaiveSubscriber", "Sink")


def _label(p: Any) -> str | None:
    """Component of one of our descendant processes; None for processes measured through rusage."""
    cmd = " ".join(p.cmdline()[:2])
    if "py-spy" in cmd:
        return "py-spy (profiler)"
    for c in COMPONENTS:
        if cmd.startswith("ray::") and c in cmd.split(".")[0]:
            return c
    if "mosquitto_pub" in cmd or "--role ceiling" in " ".join(p.cmdline()):
        return None  # short-lived children: counted when reaped (RUSAGE_CHILDREN)
    if "mosquitto" in cmd:
        return "mosquitto broker"
    for part in ("raylet", "gcs_server", "DashboardAgent", "RuntimeEnvAgent", "log_monitor", "monitor.py"):
        if part in cmd:
            return f"ray {part.removesuffix('.py')}"
    return "ray other (idle workers)"


class CpuMeter:
    """CPU seconds per component over a phase: our descendant processes by name, plus the
    children reaped meanwhile (the mosquitto_pub publishers, the ceiling subscriber)."""

    def __init__(self) -> None:
        import psutil

        self.t0 = time.monotonic()
        self.host0 = psutil.cpu_times()
        self.before = self._snap()
        self.children0 = self._children()

    @staticmethod
    def _children() -> float:
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    @staticmethod
    def _snap() -> dict[int, tuple[str, float]]:
        import psutil

        me = psutil.Process()
        t = me.cpu_times()
        out = {me.pid: ("driver (this script)", t.user + t.system)}
        for p in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                label = _label(p)
                if label:
                    t = p.cpu_times()
                    out[p.pid] = (label, t.user + t.system)
        return out

    def stop(self, subtract_children: float = 0.0, children_label: str = "mosquitto_pub publishers") -> dict[str, Any]:
        import psutil

        after = self._snap()
        host = psutil.cpu_times()
        wall = time.monotonic() - self.t0
        cpu: dict[str, float] = defaultdict(float)
        for pid, (label, secs) in after.items():
            cpu[label] += secs - self.before.get(pid, (label, 0.0))[1]
        cpu[children_label] += self._children() - self.children0 - subtract_children
        def d(name: str) -> float:
            return getattr(host, name, 0.0) - getattr(self.host0, name, 0.0)

        # /proc/stat: guest time is already part of user; irq/softirq (loopback networking!) and
        # steal belong to no process.
        procs = d("user") + d("nice") + d("system")
        kernel, steal = d("irq") + d("softirq"), d("steal")
        ours = sum(cpu.values())
        cpu["(other processes on this host)"] = max(0.0, procs - ours)
        cpu["(kernel irq/softirq: network)"] = kernel
        if steal > 0:
            cpu["(steal: hypervisor)"] = steal
        return {"wall": wall, "cpu": dict(cpu), "host_busy": procs + kernel + steal}


def cpu_line(m: dict[str, Any]) -> str:
    parts = sorted(m["cpu"].items(), key=lambda kv: -kv[1])
    body = ", ".join(f"{k} {100 * v / m['wall']:.0f}%" for k, v in parts if v / m["wall"] >= 0.01)
    others = 100 * m["cpu"].get("(other processes on this host)", 0.0) / m["wall"]
    return (f"CPU over {m['wall']:.1f} s (100% = one core; {os.cpu_count()} cores): {body}; "
            f"host busy {100 * m['host_busy'] / m['wall']:.0f}% of {100 * (os.cpu_count() or 1)}%"
            + (f"  <- DISTURBED: other work on the host took {others:.0f}% of a core" if others > 25 else ""))


def actor_pids() -> dict[str, list[int]]:
    import psutil

    out: dict[str, list[int]] = defaultdict(list)
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            label = _label(p)
            if label in COMPONENTS:
                out[label].append(p.pid)
    return out


class Profiler:
    """py-spy (optional, `pip install py-spy`) on the Pulse actors during the throughput phase."""

    def __init__(self, out_dir: Path, rate: int = 100) -> None:
        self.out_dir, self.rate = out_dir, rate
        self.procs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        self.t0 = 0.0

    def start(self) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.t0 = time.monotonic()
        for label, pids in actor_pids().items():
            for pid in pids:
                out = self.out_dir / f"{label}-{pid}.txt"
                self.procs.append((label, out, subprocess.Popen(
                    [spy, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--nonblocking",
                     "--duration", "600", "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))

    def stop(self) -> str:
        wall = time.monotonic() - self.t0
        for _, _, p in self.procs:
            p.send_signal(signal.SIGINT)
        lines = []
        for label, out, p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            if out.exists():
                lines.append(summarize_profile(label, out, wall * self.rate))
        self.procs = []
        return "\n".join(lines)


def summarize_profile(label: str, path: Path, possible: float, top: int = 14) -> str:
    """Inclusive and self share of samples per function, as % of the wall time of the phase."""
    incl: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split("/")[-1] if " (" in f else f
                  for f in stack.split(";")]
        frames = [f.rsplit(":", 1)[0] + ")" if f.endswith(")") and ":" in f else f for f in frames]
        total += int(n)
        self_[frames[-1]] += int(n)
        for f in set(frames):
            incl[f] += int(n)
    out = [f"  {label} ({path.name}): busy {100 * total / possible:.0f}% of wall time; "
           f"top functions, inclusive / self % of wall:"]
    for f, n in incl.most_common(top * 3)[: top]:
        out.append(f"    {100 * n / possible:5.1f} / {100 * self_[f] / possible:4.1f}  {f}")
    out.append("    top self: " + ", ".join(f"{f} {100 * n / possible:.1f}" for f, n in self_.most_common(8)))
    return "\n".join(out)


# ---- message generation -----------------------------------------------------------------------
def envelope(seq: int, metrics: int, ts_ms: int) -> str:
    ts = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds")
    body = {"version": "1", "ts": ts.replace("+00:00", "Z"), "seq": seq,
            "metrics": {f"metric_{k:02d}": round((seq * 7 + k * 13) % 1000 / 10, 1) for k in range(metrics)}}
    return json.dumps(body, separators=(",", ":"))


def device_blob(first_seq: int, count: int, metrics: int) -> bytes:
    base = int(time.time() * 1000) - count  # ts strictly increasing, never in the future
    return "".join(envelope(first_seq + i, metrics, base + i) + "\n" for i in range(count)).encode()


# ---- load generator: one `mosquitto_pub -l` per device -----------------------------------------
class Publishers:
    """N mosquitto_pub processes reading lines from their stdin; each is one device."""

    def __init__(self, host: str, port: int, devices: list[tuple[str, str]], log_path: Path, inflight: int) -> None:
        self.host, self.port, self.devices, self.log_path, self.inflight = host, port, devices, log_path, inflight
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sent = 0
        self._errs: list[Any] = []

    def spawn(self, timeout: float = 30.0) -> None:
        run = uuid.uuid4().hex[:6]
        ids = []
        for i, (device, secret) in enumerate(self.devices):
            cid = f"pub-{run}-{i}"
            ids.append(cid)
            err = open(self.log_path.parent / f"pub-{run}-{i}.err", "wb")  # noqa: SIM115 - closed in stop()
            self._errs.append(err)
            self.procs.append(subprocess.Popen(
                ["mosquitto_pub", "-h", self.host, "-p", str(self.port), "-i", cid, "-u", f"{TENANT}/{device}",
                 "-P", secret, "-q", "1", "-M", str(self.inflight), "-t", f"tenant/{TENANT}/device/{device}/telemetry",
                 "-l"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err))
        self._wait_connected(ids, timeout)

    def _wait_connected(self, ids: list[str], timeout: float) -> None:
        """The broker logs every connection; wait until all publishers are in (so t0 is the first publish)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            missing = [c for c in ids if f" as {c} " not in text]
            if not missing:
                return
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{len(dead)} mosquitto_pub exited at connect (rc {dead[0].returncode}); "
                                   f"see {self.log_path.parent}")
            time.sleep(0.05)
        raise TimeoutError(f"{len(missing)} publishers not connected after {timeout}s")

    def feed(self, blobs: list[bytes], lines_each: int) -> float:
        """Write every device's lines at once (one thread per pipe), then close stdin. Returns t0 (epoch)."""
        def write(p: subprocess.Popen[bytes], blob: bytes) -> None:
            with contextlib.suppress(BrokenPipeError):
                p.stdin.write(blob)
                p.stdin.close()

        threads = [threading.Thread(target=write, args=(p, b), daemon=True) for p, b in zip(self.procs, blobs)]
        t0 = time.time()
        for t in threads:
            t.start()
        self.sent += lines_each * len(blobs)
        return t0

    def paced(self, rate: float, seconds: float, metrics: int, first_seq: int, stop: threading.Event) -> threading.Thread:
        """Write lines round-robin over the devices at `rate` msg/s for `seconds` (in a thread)."""
        def run() -> None:
            n = len(self.procs)
            start, sent = time.monotonic(), 0
            while not stop.is_set():
                elapsed = time.monotonic() - start
                if elapsed >= seconds:
                    break
                due = min(int(elapsed * rate), int(seconds * rate))
                if due > sent:
                    chunks: dict[int, list[str]] = {}
                    now_ms = int(time.time() * 1000)
                    for k in range(sent, due):
                        chunks.setdefault(k % n, []).append(envelope(first_seq + k // n, metrics, now_ms) + "\n")
                    for i, lines in chunks.items():
                        self.procs[i].stdin.write("".join(lines).encode())
                        self.procs[i].stdin.flush()
                    sent = due
                time.sleep(0.005)
            self.sent += sent
            for p in self.procs:
                with contextlib.suppress(BrokenPipeError):
                    p.stdin.close()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for p in self.procs:
            p.wait(max(0.1, deadline - time.monotonic()))
        bad = [p.returncode for p in self.procs if p.returncode != 0]
        if bad:
            raise RuntimeError(f"{len(bad)} mosquitto_pub failed (rc {bad[0]})")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for f in self._errs:
            f.close()
        self.procs, self._errs = [], []


CLIENT_PROTOCOL = "MQTT 3.1.1"  # aiomqtt's default (paho MQTTv311), what mqtt_client() speaks


def mqtt_client(port: int, user: str, password: str, identifier: str) -> Any:
    """The fastest plain aiomqtt subscriber: aiomqtt's defaults - MQTT 3.1.1, clean session, unbounded
    incoming queue; paho acknowledges each QoS 1 message as soon as it is received."""
    import aiomqtt

    return aiomqtt.Client("127.0.0.1", port, username=user, password=password, identifier=identifier, timeout=10)


def gc_probed(cls: type, freeze: bool = False) -> type:
    """`cls` plus a record of its process's full (generation 2) garbage collections: how many and
    how long the process stood still. Measurement only; the process title keeps the class name.
    `freeze` (EXPERIMENT `gcfreeze`): gc.freeze() once started, so full collections no longer
    traverse the hundreds of thousands of objects Ray, SQLAlchemy, pyarrow... leave at import."""

    class Probed(cls):  # type: ignore[misc, valid-type]
        async def start(self, *args: Any, **kwargs: Any) -> Any:
            import gc

            if not hasattr(self, "_gc_pauses"):
                self._gc_pauses: list[float] = []
                started: list[float] = []

                def on_gc(phase: str, info: dict[str, Any]) -> None:
                    if info["generation"] == 2:
                        if phase == "start":
                            started.append(time.perf_counter())
                        elif started:
                            self._gc_pauses.append((time.perf_counter() - started.pop()) * 1000)

                gc.callbacks.append(on_gc)
            result = await super().start(*args, **kwargs)
            if freeze:
                gc.collect()
                gc.freeze()
            return result

        async def gc_pauses(self, reset: bool = False) -> list[float]:
            out = list(getattr(self, "_gc_pauses", []))
            if reset and hasattr(self, "_gc_pauses"):
                self._gc_pauses.clear()
            return out

    Probed.__name__ = Probed.__qualname__ = cls.__name__
    return Probed


async def gc_report(env: Env, reset: bool = True) -> dict[str, list[float]]:
    shards = [r.gc_pauses.remote(reset) for r in env.runtime.device_refs]
    bridges = [b.call("gc_pauses", reset) for b in env.bridges if b.actor is not None]  # in a shard: counted there
    out: dict[str, list[float]] = {}
    for name, calls in (("IngestBridge", bridges), ("DeviceShard", shards)):
        if calls:
            out[name] = [p for lst in await asyncio.gather(*calls) for p in lst]
    return out


def gc_line(pauses: dict[str, list[float]]) -> str:
    parts = [f"{k} {len(v)}" + (f" (longest {max(v):.0f} ms, total {sum(v):.0f} ms)" if v else "")
             for k, v in pauses.items()]
    return "full GC collections (the process stands still): " + ", ".join(parts)


def bridge_class(experiments: frozenset[str] = frozenset()) -> Any:
    """The shipped IngestBridge with timers around `process(batch)` and around its runtime's shard
    calls (`handle`, one per device shard, in-process when the bridge runs in that shard) and
    `handle_events`. Measurement only; behaviour unchanged (the GC probe and, for EXPERIMENT
    `gcfreeze`, gc.freeze() come from `gc_probed`)."""
    from pulse.actors.ingest import IngestBridge

    def timed(fn: Any, times: dict[str, list[float]], name: str | None = None) -> Any:
        async def wrapper(*args: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*args)
            finally:
                times[name or args[1]].append(time.perf_counter() - t)
        return wrapper

    class TimedIngestBridge(gc_probed(IngestBridge, "gcfreeze" in experiments)):  # type: ignore[misc]
        def _open(self) -> None:
            super()._open()
            if not hasattr(self, "times"):  # once: wrap the runtime's calls on this instance only
                self.times: dict[str, list[float]] = defaultdict(list)
                self.batch_times: list[float] = []
                self.batch_sizes: list[int] = []
                self.batch_starts: list[float] = []
                rt = self.runtime
                rt._handle_on = timed(rt._handle_on, self.times, "handle")
                rt._call = timed(rt._call, self.times)

        async def process(self, batch: list) -> None:
            self.batch_starts.append(time.time())
            t = time.perf_counter()
            try:
                await super().process(batch)
            finally:
                self.batch_times.append(time.perf_counter() - t)
                self.batch_sizes.append(len(batch))

        async def timings(self, reset: bool = False) -> dict[str, Any]:
            out = {"process": list(self.batch_times), "sizes": list(self.batch_sizes),
                   "starts": list(self.batch_starts), "calls": {k: list(v) for k, v in self.times.items()}}
            if reset:
                for kept in (self.batch_starts, self.batch_times, self.batch_sizes):
                    kept.clear()
                self.times.clear()
            return out

    return TimedIngestBridge


def timing_line(timings: list[dict[str, Any]], wall: float) -> str:
    import numpy as np

    proc = np.array([t for b in timings for t in b["process"]] or [0.0]) * 1000
    sizes = np.array([n for b in timings for n in b["sizes"]] or [0])
    calls = defaultdict(list)
    for b in timings:
        for k, v in b["calls"].items():
            calls[k] += v
    parts = [f"{k} p50 {1000 * np.median(v):.1f} / max {1000 * max(v):.0f} ms (x{len(v)})" for k, v in sorted(calls.items())
             if k in ("handle", "handle_events")]
    busy = proc.sum() / 1000 / wall / max(1, len(timings))
    return (f"bridge batches: {len(proc)} of {sizes.mean():.0f} msgs avg (max {sizes.max()}); process() p50 "
            f"{np.median(proc):.1f} ms p99 {np.percentile(proc, 99):.1f} ms max {proc.max():.0f} ms, "
            f"busy {100 * busy:.0f}% of wall per bridge; "
            f"actor calls: {', '.join(parts)}")


# ---- ceiling: a bare aiomqtt subscriber subprocess ---------------------------------------------
async def ceiling_subscriber(args: argparse.Namespace) -> None:
    result = {"count": 0, "t_first": None, "t_last": None}
    async with mqtt_client(args.port, args.user, args.password, f"ceiling-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(f"$share/ceiling/{SHARE_FILTER}", qos=1)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        print("READY", flush=True)

        async def count() -> None:
            async for _ in client.messages:
                now = time.time()
                result["count"] += 1
                result["t_first"] = result["t_first"] or now
                result["t_last"] = now
                if result["count"] >= args.expect:
                    return

        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(count(), args.timeout)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu"] = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    print(json.dumps(result), flush=True)


class Ceiling:
    def __init__(self, port: int, user: str, password: str, expect: int, timeout: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--role", "ceiling", "--port", str(port), "--user", user,
             f"--password={password}", "--expect", str(expect), "--timeout", str(timeout)],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            self.stop()
            raise RuntimeError(f"ceiling subscriber did not start: {line!r}")

    def result(self, timeout: float) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---- C ceiling: mosquitto_sub -C N -------------------------------------------------------------
C_SHARE_GROUP = "cceiling"
READY_TOPIC = f"tenant/{TENANT}/device/ceiling-ready/telemetry"  # matches the filter; no device has this id


class CSubscriber:
    """Mosquitto's own C subscriber (`mosquitto_sub -C N`, QoS 1, MQTT 3.1.1, clean session) on a
    shared subscription, logged in as the service account. It prints only each message's topic (to
    a file), so it does as little per message as a client can.

    Ready check: one marker message on a topic its filter matches, published until it shows in the
    output (a marker sent before the SUBACK reaches no one: a share group without members drops it),
    so exactly one marker is counted and -C is N + 1."""

    def __init__(self, port: int, user: str, password: str, expect: int, out: Path, timeout: float) -> None:
        self.out, self.user, self.password, self.port = out, user, password, port
        self._out_file = open(out, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [C_SUBSCRIBER, "-h", "127.0.0.1", "-p", str(port), "-u", user, "-P", password, "-q", "1",
             "-i", f"cceiling-{uuid.uuid4().hex[:8]}", "-t", f"$share/{C_SHARE_GROUP}/{SHARE_FILTER}",
             "-C", str(expect + 1), "-W", str(int(timeout)), "-F", "%t"],
            stdin=subprocess.DEVNULL, stdout=self._out_file, stderr=subprocess.STDOUT)
        self._ready(timeout=15.0)

    def _ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto_sub exited (rc {self.proc.returncode}): {self.out.read_text()[:300]}")
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-u", self.user, "-P",
                            self.password, "-q", "1", "-t", READY_TOPIC, "-m", "{}"], check=True, timeout=10)
            marker_deadline = time.monotonic() + 1.0  # loopback delivers in < 1 ms; wait long, count it once
            while time.monotonic() < marker_deadline:
                if READY_TOPIC in self.out.read_text(errors="replace"):
                    return
                time.sleep(0.01)
        raise TimeoutError(f"mosquitto_sub not subscribed after {timeout}s")

    def wait(self) -> tuple[float, float, int]:
        """Block until it exits -> (epoch of exit, its CPU seconds, return code)."""
        _, status, ru = os.wait4(self.proc.pid, 0)
        t = time.time()
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return t, ru.ru_utime + ru.ru_stime, self.proc.returncode

    def received(self) -> int:
        self._out_file.flush()
        return sum(1 for line in self.out.read_text(errors="replace").splitlines() if line and line != READY_TOPIC)

    def stop(self) -> None:
        if self.proc.returncode is None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._out_file.close()


# ---- naive: one Ray actor call per message -----------------------------------------------------
class Sink:
    """The trivial per-message actor of the naive design (counts, nothing else)."""

    def __init__(self) -> None:
        self.n = 0

    def handle(self, topic: str, payload: bytes) -> int:
        self.n += 1
        return self.n


class NaiveSubscriber:
    """An async Ray actor like the bridge, but awaiting one actor call per message."""

    def __init__(self, port: int, user: str, password: str, sink: Any) -> None:
        self.port, self.user, self.password, self.sink = port, user, password, sink
        self.count, self.t_last = 0, None
        self.task: asyncio.Task | None = None

    async def start(self) -> bool:
        ready = asyncio.Event()
        self.task = asyncio.create_task(self._run(ready))
        await asyncio.wait_for(ready.wait(), 30)
        return True

    async def _run(self, ready: asyncio.Event) -> None:
        async with mqtt_client(self.port, self.user, self.password, f"naive-{uuid.uuid4().hex[:8]}") as client:
            await client.subscribe(f"$share/naive/{SHARE_FILTER}", qos=1)
            ready.set()
            async for m in client.messages:
                await self.sink.handle.remote(m.topic.value, bytes(m.payload))
                self.count += 1
                self.t_last = time.time()

    async def stats(self) -> dict[str, Any]:
        return {"count": self.count, "t_last": self.t_last}

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


# ---- the harness -------------------------------------------------------------------------------
@dataclass
class Env:
    args: argparse.Namespace
    tmp: Path
    port: int
    service_password: str
    db_url: str
    secrets: dict[str, str] = field(default_factory=dict)  # device -> token
    mosquitto: Any = None
    publishers: list[Publishers] = field(default_factory=list)
    ceiling: Ceiling | None = None
    c_ceiling: CSubscriber | None = None
    ray_started: bool = False
    actors: list[Any] = field(default_factory=list)  # Ray actors to kill at the end
    runtime: Any = None
    bridges: list[Any] = field(default_factory=list)
    configs_run: int = 0

    @property
    def devices(self) -> list[str]:
        return [d for d in self.secrets if d != PROBE]

    @property
    def mqtt_url(self) -> str:
        from pulse.broker.auth_plugin import SERVICE_USERNAME

        return f"mqtt://{SERVICE_USERNAME}:{self.service_password}@127.0.0.1:{self.port}"

    def publishers_for(self, devices: list[str]) -> Publishers:
        p = Publishers("127.0.0.1", self.port, [(d, self.secrets[d]) for d in devices],
                       self.mosquitto.log_path, self.args.inflight)
        self.publishers.append(p)
        p.spawn()
        return p

    def settings(self, cfg: Cfg) -> Any:
        from pulse.config.settings import Settings

        self.configs_run += 1
        extra = dict(kv.split("=", 1) for kv in self.args.set)
        return Settings(data_dir=self.tmp / f"pulse-{self.configs_run}", mqtt_url=self.mqtt_url,
                        database_url=self.db_url, ingest_batch_size=cfg.batch_size, ingest_batch_ms=cfg.batch_ms,
                        ingest_bridges=cfg.bridges, device_shards=cfg.shards, ingest_in_shards=cfg.in_shards,
                        **extra)


async def provision(env: Env, n: int, rules: int) -> None:
    import sqlalchemy as sa

    from pulse.broker.credentials import DynsecCredentials
    from pulse.storage import rules as rule_store
    from pulse.storage import tokens
    from pulse.storage.db import Database, utcnow
    from pulse.storage.tables import devices, tenants

    db = Database(env.db_url)
    await db.migrate()
    creds = DynsecCredentials.from_url(env.mqtt_url)
    try:
        names = [f"dev-{i:05d}" for i in range(n)] + [PROBE]
        now = utcnow()
        async with db.begin() as conn:
            await conn.execute(tenants.insert().values(tenant_id=TENANT, name=TENANT, created_at=now))
            await conn.execute(devices.insert(), [{"tenant_id": TENANT, "device_id": d, "metadata": {},
                                                   "created_at": now, "updated_at": now} for d in names])
            issued = {d: (await tokens.issue(conn, TENANT, d))["token"] for d in names}
        for d, token in issued.items():
            await creds.set_device_secret(TENANT, d, token)
        env.secrets = issued
        _ = sa  # keep the import local and explicit
        for k in range(rules):  # evaluated per message, never firing (no alert storm in a throughput test)
            await rule_store.create(db, TENANT, {"name": f"bench-rule-{k}", "metric": f"metric_{k:02d}",
                                                 "operator": "GT", "threshold": 1e12, "severity": 3})
    finally:
        await creds.close()
        await db.dispose()


def blobs_for(env: Env, per_device: int, first_seq: int = 0) -> list[bytes]:
    return [device_blob(first_seq, per_device, env.args.metrics) for _ in env.devices]


async def run_ceiling(env: Env, per_device: int) -> dict[str, Any]:
    from pulse.broker.auth_plugin import SERVICE_USERNAME

    total = per_device * len(env.devices)
    blobs = blobs_for(env, per_device)
    pubs = env.publishers_for(env.devices)
    env.ceiling = Ceiling(env.port, SERVICE_USERNAME, env.service_password, total, env.args.phase_timeout)
    meter = CpuMeter()
    t0 = pubs.feed(blobs, per_device)
    res = await asyncio.to_thread(env.ceiling.result, env.args.phase_timeout + 30)
    env.ceiling = None
    await asyncio.to_thread(pubs.wait, 30)
    pubs.stop()
    cpu = meter.stop(subtract_children=res["cpu"])
    cpu["cpu"]["ceiling subscriber (aiomqtt)"] = res["cpu"]
    elapsed = (res["t_last"] or time.time()) - t0
    return {"msgs": res["count"], "expected": total, "seconds": elapsed, "rate": res["count"] / elapsed, "cpu": cpu,
            "protocol": CLIENT_PROTOCOL}


async def run_c_ceiling(env: Env, per_device: int) -> dict[str, Any]:
    """Same publishers and load into `mosquitto_sub -C N`: first publish -> it exits after N messages."""
    from pulse.broker.auth_plugin import SERVICE_USERNAME

    total = per_device * len(env.devices)
    blobs = blobs_for(env, per_device)
    pubs = env.publishers_for(env.devices)
    sub = await asyncio.to_thread(CSubscriber, env.port, SERVICE_USERNAME, env.service_password, total,
                                  env.tmp / "c-ceiling.out", env.args.phase_timeout)
    env.c_ceiling = sub
    try:
        meter = CpuMeter()
        t0 = pubs.feed(blobs, per_device)
        t_exit, sub_cpu, rc = await asyncio.to_thread(sub.wait)
        await asyncio.to_thread(pubs.wait, 30)
        pubs.stop()
        cpu = meter.stop(subtract_children=sub_cpu)
        cpu["cpu"]["ceiling subscriber (mosquitto_sub)"] = sub_cpu
        got = sub.received()
    finally:
        sub.stop()
        env.c_ceiling = None
    elapsed = t_exit - t0
    return {"msgs": got, "expected": total, "seconds": elapsed, "rate": got / elapsed, "cpu": cpu,
            "complete": rc == 0 and got >= total, "protocol": "MQTT 3.1.1"}


async def run_naive(env: Env, per_device: int) -> dict[str, Any]:
    import ray

    from pulse.broker.auth_plugin import SERVICE_USERNAME

    total = per_device * len(env.devices)
    blobs = blobs_for(env, per_device)
    sink = ray.remote(Sink).options(num_cpus=0).remote()
    sub = ray.remote(NaiveSubscriber).options(num_cpus=0).remote(env.port, SERVICE_USERNAME, env.service_password, sink)
    env.actors += [sub, sink]
    await sub.start.remote()
    pubs = env.publishers_for(env.devices)
    meter = CpuMeter()
    t0 = pubs.feed(blobs, per_device)
    deadline = time.monotonic() + env.args.phase_timeout
    stats = {"count": 0, "t_last": None}
    while time.monotonic() < deadline:
        stats = await sub.stats.remote()
        if stats["count"] >= total:
            break
        await asyncio.sleep(0.1)
    await asyncio.to_thread(pubs.wait, 30)
    pubs.stop()
    cpu = meter.stop()
    await sub.stop.remote()
    for a in (sub, sink):
        ray.kill(a, no_restart=True)
    elapsed = (stats["t_last"] or time.time()) - t0
    return {"msgs": stats["count"], "expected": total, "seconds": elapsed, "rate": stats["count"] / elapsed,
            "complete": stats["count"] >= total, "cpu": cpu, "protocol": CLIENT_PROTOCOL}


async def deploy_pulse(env: Env, cfg: Cfg) -> Any:
    from pulse.actors import runtime as runtime_module
    from pulse.actors.ingest import deploy_bridges
    from pulse.actors.runtime import NAMESPACE, RayRuntime

    s = env.settings(cfg)
    rt = RayRuntime(s)
    shipped_shard = runtime_module.DeviceShard
    # RayRuntime.deploy() with GC-probed subclasses (gc.freeze() in them for EXPERIMENT gcfreeze)
    freeze = "gcfreeze" in cfg.experiments
    runtime_module.DeviceShard = gc_probed(shipped_shard, freeze)
    try:
        rt.deploy()
    finally:
        runtime_module.DeviceShard = shipped_shard
    env.runtime = rt
    await rt.start()
    def options(name: str) -> dict[str, Any]:  # as pulse.node.Node creates bridge actors
        return {"name": name, "namespace": NAMESPACE, "lifetime": "detached", "get_if_exists": True, "num_cpus": 0,
                "runtime_env": {"env_vars": s.env()}}

    env.bridges = deploy_bridges(s, rt.device_refs, options, bridge_class(cfg.experiments))
    await asyncio.gather(*(b.start() for b in env.bridges))
    await rt.device_call(TENANT, PROBE, "latest_view")  # activate the probe's actor
    return s


async def teardown_pulse(env: Env, s: Any) -> None:
    """Stop bridges and actors, wait until their names are free, and delete the bridges'
    persistent sessions with the shipped `retire_sessions` (a clean-session connect per bridge id):
    Mosquitto would otherwise keep routing shared-subscription messages to an offline member of
    the group, i.e. queue them for a bridge that is gone."""
    import ray

    from pulse.actors.ingest import retire_sessions
    from pulse.actors.runtime import NAMESPACE

    for b in env.bridges:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(b.stop(), 30)
        if b.actor is not None:
            ray.kill(b.actor, no_restart=True)
    if env.runtime is not None:
        await env.runtime.stop()
    deadline = time.monotonic() + 30  # every named actor gone, so the next deploy makes new ones
    while time.monotonic() < deadline and any(
            a.get("namespace") == NAMESPACE for a in ray.util.list_named_actors(all_namespaces=True)):
        await asyncio.sleep(0.1)
    await retire_sessions(s.model_copy(update={"ingest_bridges": 0}))  # ids 0..MAX_BRIDGES-1; raises on failure
    env.bridges, env.runtime = [], None


async def bridge_totals(env: Env) -> dict[str, int]:
    stats = await asyncio.gather(*(b.stats() for b in env.bridges))
    keys = ("received", "accepted", "rejected", "rows", "batches", "acked", "queued")
    return {k: sum(st[k] for st in stats) for k in keys}


async def wait_processed(env: Env, target: int, timeout: float, poll: float = 0.02) -> tuple[float, dict[str, int]]:
    """Poll the bridges until accepted + rejected >= target; -> (epoch when seen, totals)."""
    deadline = time.monotonic() + timeout
    tot = await bridge_totals(env)
    max_queued = 0
    while time.monotonic() < deadline:
        tot = await bridge_totals(env)
        max_queued = max(max_queued, tot["queued"])
        if tot["accepted"] + tot["rejected"] >= target:
            break
        await asyncio.sleep(poll)
    tot["max_queued"] = max_queued
    return time.time(), tot


async def warm_up(env: Env) -> dict[str, Any]:
    """One message per device before measuring: activates every device actor (store read, rules,
    first-sight sensor discovery), so the throughput phase measures steady state. The time it took
    and the first batch's `process()` time are reported as the cold-start cost."""
    base = await bridge_totals(env)
    await asyncio.gather(*(b.call("timings", True) for b in env.bridges))
    pubs = env.publishers_for(env.devices)
    t0 = pubs.feed(blobs_for(env, 1, first_seq=5_000_000 * env.configs_run), 1)
    t_done, tot = await wait_processed(env, base["accepted"] + base["rejected"] + len(env.devices), 60)
    await asyncio.to_thread(pubs.wait, 30)
    pubs.stop()
    timings = await asyncio.gather(*(b.call("timings", True) for b in env.bridges))
    first = max((max(b["process"]) for b in timings if b["process"]), default=0.0)
    return {"seconds": t_done - t0, "slowest_batch_ms": first * 1000,
            "complete": tot["accepted"] + tot["rejected"] - base["accepted"] - base["rejected"] >= len(env.devices)}


async def run_pulse_throughput(env: Env, per_device: int) -> dict[str, Any]:
    total = per_device * len(env.devices)
    base = await bridge_totals(env)
    blobs = blobs_for(env, per_device, first_seq=10_000_000 * env.configs_run)
    pubs = env.publishers_for(env.devices)
    profiler = Profiler(env.tmp / f"profile-{env.configs_run}") if env.args.profile else None
    if profiler:
        profiler.start()
    meter = CpuMeter()
    t0 = pubs.feed(blobs, per_device)
    await asyncio.gather(*(b.call("timings", True) for b in env.bridges))
    await gc_report(env)
    t_done, tot = await wait_processed(env, base["accepted"] + base["rejected"] + total, env.args.phase_timeout)
    timings = await asyncio.gather(*(b.call("timings", True) for b in env.bridges))
    gcs = await gc_report(env)
    await asyncio.to_thread(pubs.wait, 30)
    pubs.stop()
    cpu = meter.stop()
    profile = await asyncio.to_thread(profiler.stop) if profiler else None
    done = tot["accepted"] + tot["rejected"] - base["accepted"] - base["rejected"]
    elapsed = t_done - t0
    return {"msgs": done, "expected": total, "seconds": elapsed, "rate": done / elapsed,
            "points_rate": (tot["rows"] - base["rows"]) / elapsed, "complete": done >= total,
            "batches": tot["batches"] - base["batches"], "cpu": cpu, "profile": profile,
            "timing": timing_line(timings, t_done - t0) + f"; bridges' backlog (queued in MqttSubscriber) up to {tot['max_queued']:,} msgs",
            "t0": t0, "raw_timings": timings, "gc": gc_line(gcs)}


async def run_latency(env: Env, rate: float, seconds: float) -> dict[str, Any]:
    """Background load at `rate` msg/s; a probe publishes every ~50 ms and waits for its value."""
    import aiomqtt
    import numpy as np

    pubs = env.publishers_for(env.devices)
    await gc_report(env)
    meter = CpuMeter()
    stop = threading.Event()
    pacer = pubs.paced(rate, seconds, env.args.metrics, 20_000_000 * env.configs_run, stop)
    samples: list[float] = []
    when: list[float] = []
    t_phase = time.perf_counter()
    timeouts = 0
    probes = 0
    topic = f"tenant/{TENANT}/device/{PROBE}/telemetry"
    try:
        async with aiomqtt.Client("127.0.0.1", env.port, username=f"{TENANT}/{PROBE}", password=env.secrets[PROBE],
                                  identifier=f"probe-{uuid.uuid4().hex[:8]}", timeout=10) as client:
            await asyncio.sleep(min(2.0, seconds / 5))  # let the background load settle
            end = time.monotonic() + seconds - min(2.0, seconds / 5) - 0.5
            i = 0
            while time.monotonic() < end:
                slot = time.monotonic() + 0.05
                i += 1
                value = float(1_000_000 * env.configs_run + i)
                body = {"version": "1", "ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds")
                        .replace("+00:00", "Z"), "seq": i, "metrics": {"probe_value": value}}
                t_pub = time.perf_counter()
                await client.publish(topic, json.dumps(body), qos=1)
                probes += 1
                seen = False
                while time.perf_counter() - t_pub < 5.0:
                    view = await env.runtime.device_call(TENANT, PROBE, "latest_view")
                    if view.get("probe_value", {}).get("value") == value:
                        seen = True
                        break
                    await asyncio.sleep(0.002)
                if seen:
                    samples.append((time.perf_counter() - t_pub) * 1000)
                    when.append(t_pub - t_phase)
                else:
                    timeouts += 1
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
    finally:
        stop.set()
        await asyncio.to_thread(pacer.join, seconds + 30)
    await asyncio.to_thread(pubs.wait, 60)
    pubs.stop()
    cpu = meter.stop()
    timings = await asyncio.gather(*(b.call("timings", True) for b in env.bridges))
    gcs = await gc_report(env)
    arr = np.array(samples) if samples else np.array([float("nan")])
    return {"rate": rate, "probes": probes, "timeouts": timeouts, "p50": float(np.percentile(arr, 50)),
            "p99": float(np.percentile(arr, 99)), "max": float(arr.max()), "n": len(samples),
            "background_sent": pubs.sent, "cpu": cpu,
            "slowest": sorted(zip(samples, when), reverse=True)[:5], "timing": timing_line(timings, cpu["wall"]),
            "gc": gc_line(gcs)}


async def one_config(env: Env, cfg: Cfg, per_device: int, latency_s: float) -> dict[str, Any]:
    s = await deploy_pulse(env, cfg)
    try:
        pubs_before = sum(p.sent for p in env.publishers)
        warm = await warm_up(env)
        log(f"warm-up: 1 message per device activated {len(env.devices)} device actors in {warm['seconds']:.2f} s")
        thr = await run_pulse_throughput(env, per_device)
        thr["warm_up"] = warm
        log(f"pulse {cfg.label()}: {thr['rate']:,.0f} msg/s ({thr['msgs']:,}/{thr['expected']:,} in {thr['seconds']:.1f}s)")
        lat = await run_latency(env, thr["rate"] / 2, latency_s) if latency_s > 0 else None
        if lat:
            log(f"latency at {lat['rate']:,.0f} msg/s: p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms")
        published = sum(p.sent for p in env.publishers) - pubs_before + (lat["probes"] if lat else 0)
        _, tot = await wait_processed(env, published, 60)
        lake = (await env.runtime.stats())["lake"]
        return {"cfg": cfg, "thr": thr, "lat": lat, "published": published, "totals": tot, "lake": lake}
    finally:
        await teardown_pulse(env, s)


def pct(a: float, b: float) -> str:
    return f"{100 * a / b:.0f} %" if b else "n/a"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


async def main_async(args: argparse.Namespace, env: Env) -> None:
    import ray

    from pulse.broker.auth_plugin import SERVICE_USERNAME
    from pulse.broker.mosquitto import MosquittoProcess, write_mosquitto_config

    started = time.monotonic()
    if args.sweep:
        base = SWEEPS[args.sweep]
        configs = [c for r in range(args.repeat) for c in (base if r % 2 == 0 else base[::-1])]
        latency_s = args.sweep_latency_seconds
    else:
        experiments = frozenset(x for x in args.experiment.split(",") if x)
        unknown = experiments - EXPERIMENTS.keys()
        if unknown:
            raise SystemExit(f"unknown --experiment {','.join(sorted(unknown))}; known: {', '.join(EXPERIMENTS)}")
        configs = [Cfg(args.batch_size, args.batch_ms, args.bridges, args.shards, experiments=experiments)]
        latency_s = args.latency_seconds
    conf = write_mosquitto_config(env.tmp / "mosquitto", env.port, SERVICE_USERNAME, env.service_password)
    env.mosquitto = MosquittoProcess(conf, env.port)
    await asyncio.to_thread(env.mosquitto.start)
    log(f"mosquitto on 127.0.0.1:{env.port}; provisioning {args.devices} devices + probe")
    await provision(env, args.devices, args.rules)

    per_device = max(1, args.messages // args.devices)
    total = per_device * args.devices
    naive_per_device = max(1, min(per_device, args.naive_messages // args.devices))

    log("C ceiling: mosquitto_sub -C N")
    c_ceiling = await run_c_ceiling(env, per_device)
    log(f"C ceiling: {c_ceiling['rate']:,.0f} msg/s ({c_ceiling['msgs']:,}/{c_ceiling['expected']:,})")
    log(f"ceiling: bare aiomqtt subscriber, {CLIENT_PROTOCOL}")
    ceiling = await run_ceiling(env, per_device)
    log(f"ceiling: {ceiling['rate']:,.0f} msg/s ({ceiling['msgs']:,}/{ceiling['expected']:,})")

    log("starting Ray")
    from pulse.node import RAY_SYSTEM_CONFIG  # as `pulse up` starts Ray: actors at the normal priority

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=args.ray_logs,
             logging_level="WARNING", _system_config=RAY_SYSTEM_CONFIG)
    env.ray_started = True

    naive = None
    if not args.sweep:
        log("naive: one Ray actor call per message")
        naive = await run_naive(env, naive_per_device)
        log(f"naive: {naive['rate']:,.0f} msg/s ({naive['msgs']:,}/{naive['expected']:,})")

    results = []
    for i, cfg in enumerate(configs):
        log(f"pulse e2e [{i + 1}/{len(configs)}] {cfg.label()}")
        results.append(await one_config(env, cfg, per_device, latency_s))

    report(args, c_ceiling, ceiling, naive, results, total, time.monotonic() - started)


def component_cpu(m: dict[str, Any]) -> str:
    """The Pulse processes' share of a core each kind (sum over processes of that kind)."""
    parts = [(k, 100 * v / m["wall"]) for k, v in m["cpu"].items() if k in COMPONENTS or k.startswith("mosquitto")]
    return ", ".join(f"{k} {p:.0f}%" for k, p in sorted(parts, key=lambda kv: -kv[1]) if p >= 1)


def per_message_cpu(m: dict[str, Any], msgs: int) -> str:
    """CPU microseconds per message of each Pulse process kind and of the broker, and their sum."""
    parts = {k: 1e6 * v / max(1, msgs) for k, v in m["cpu"].items()
             if k in COMPONENTS or k.startswith("mosquitto broker") or k.startswith("ray ")}
    pulse = sum(v for k, v in parts.items() if k in COMPONENTS)
    body = ", ".join(f"{k} {v:.1f} us" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.5)
    return f"Pulse actors {pulse:.1f} us ({body})"


def others_pct(cpu: dict[str, Any]) -> float:
    return 100 * cpu["cpu"].get("(other processes on this host)", 0.0) / cpu["wall"]


def report(args: argparse.Namespace, c_ceiling: dict[str, Any], ceiling: dict[str, Any], naive: dict | None,
           results: list[dict], total: int, wall: float) -> None:
    import numpy as np

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nPulse ingest benchmark  {now}  ({os.cpu_count()} CPUs, everything on this host)")
    if args.set:
        print(f"settings overridden: {' '.join(args.set)}")
    print(f"load: {args.devices} devices x {total // args.devices:,} msgs = {total:,} msgs x {args.metrics} metrics, "
          f"QoS 1, one mosquitto_pub -l per device (-M {args.inflight}), {args.rules} rules (never firing)")
    print(f"C ceiling  mosquitto_sub -C N ({c_ceiling['protocol']}, $share, QoS 1), prints topics only "
          f"{c_ceiling['rate']:>9,.0f} msg/s   ({c_ceiling['msgs']:,}/{c_ceiling['expected']:,} msgs in "
          f"{c_ceiling['seconds']:.1f} s; first publish -> mosquitto_sub exits)"
          + ("" if c_ceiling["complete"] else "  INCOMPLETE (timed out)"))
    print(f"  {cpu_line(c_ceiling['cpu'])}")
    print(f"ceiling  bare aiomqtt subscriber ({ceiling['protocol']}, $share, QoS 1), counts only "
          f"{ceiling['rate']:>9,.0f} msg/s   ({ceiling['msgs']:,}/{ceiling['expected']:,} msgs in "
          f"{ceiling['seconds']:.1f} s)")
    print(f"  {cpu_line(ceiling['cpu'])}")
    if naive:
        print(f"naive    1 awaited Ray actor call per message (aiomqtt, {naive['protocol']}) "
              f"{naive['rate']:>9,.0f} msg/s   "
              f"({naive['msgs']:,}/{naive['expected']:,} msgs in {naive['seconds']:.1f} s)")
        print(f"  {cpu_line(naive['cpu'])}")
    for r in results:
        cfg: Cfg = r["cfg"]
        thr, lat, tot = r["thr"], r["lat"], r["totals"]
        tag = "  (defaults, shipped code)" if cfg.defaults else "" if cfg.shipped else \
            "  (EXPERIMENT: benchmark-local subclasses, not shipped code)"
        print(f"\npulse e2e  {cfg.label()}{tag}")
        print(f"  throughput  {thr['rate']:>9,.0f} msg/s  {thr['points_rate']:>10,.0f} points/s   "
              f"({thr['msgs']:,}/{thr['expected']:,} msgs in {thr['seconds']:.1f} s, {thr['batches']:,} batches; "
              f"first publish -> bridges' accepted+rejected == published; bridge: MqttSubscriber, MQTT 3.1.1)")
        w = thr["warm_up"]
        print(f"  cold start (before the clock): 1 message per device activated {args.devices} device actors in "
              f"{w['seconds']:.2f} s; slowest batch {w['slowest_batch_ms']:.0f} ms")
        print(f"  {cpu_line(thr['cpu'])}")
        print(f"  CPU per message (less sensitive to other work on the host than msg/s): "
              f"{per_message_cpu(thr['cpu'], thr['msgs'])}")
        print(f"  {thr['timing']}")
        print(f"  {thr['gc']}")
        if thr.get("profile"):
            print("  py-spy profile of the throughput phase:\n" + thr["profile"])
        ok_c = thr["rate"] >= c_ceiling["rate"] * TARGETS["ceiling_pct"] / 100
        print(f"  GOAL e2e / C ceiling (mosquitto_sub)  {pct(thr['rate'], c_ceiling['rate']):>6}   "
              f"target >= {TARGETS['ceiling_pct']:.0f} % (QoS 1, WAL before PUBACK, {args.rules} rules)   {verdict(ok_c)}")
        print(f"  e2e / aiomqtt ceiling (reference)     {pct(thr['rate'], ceiling['rate']):>6}")
        if naive:
            x = thr["rate"] / naive["rate"]
            print(f"  e2e / naive    {x:>6.1f} x   target >= {TARGETS['naive_x']:.0f} x    {verdict(x >= TARGETS['naive_x'])}")
        if lat:
            print(f"  latency publish -> visible in the DeviceActor's latest_view, while {lat['rate']:,.0f} msg/s "
                  f"background load (half the throughput above):")
            print(f"    p50 {lat['p50']:.1f} ms   p99 {lat['p99']:.1f} ms   max {lat['max']:.1f} ms   "
                  f"({lat['n']} probes, {lat['timeouts']} not seen within 5 s)   GOAL p99 < {TARGETS['p99_ms']:.0f} ms   "
                  f"{verdict(lat['p99'] < TARGETS['p99_ms'] and lat['timeouts'] == 0)}")
            print(f"    {cpu_line(lat['cpu'])}")
            print(f"    {lat['timing']}")
            print(f"    {lat['gc']}")
            print("    slowest probes (ms @ s into the phase): "
                  + ", ".join(f"{ms:.0f} @ {at:.1f}" for ms, at in lat["slowest"]))
        lost = r["published"] - tot["accepted"] - tot["rejected"]
        print(f"  loss check  published {r['published']:,}  received {tot['received']:,}  accepted {tot['accepted']:,}"
              f"  rejected {tot['rejected']:,}  acked {tot['acked']:,}  -> "
              f"{'no message lost' if lost == 0 else f'{lost:,} MISSING' if lost > 0 else f'{-lost:,} extra (duplicates)'}")
        print(f"  lake: {r['lake']['rows_appended']:,} rows appended to the WAL, {r['lake']['rows_flushed']:,} "
              f"flushed to Parquet ({r['lake']['files_written']} files)")
    if len(results) > 1:
        by_cfg: dict[Cfg, list[dict]] = defaultdict(list)
        for r in results:
            by_cfg[r["cfg"]].append(r)
        n = max(len(v) for v in by_cfg.values())
        print(f"\nsweep summary: {'median of ' + str(n) + ' runs, ' if n > 1 else ''}throughput, % of the C ceiling "
              f"({c_ceiling['rate']:,.0f} msg/s), latency at half load, CPU per process kind in the throughput "
              f"phase (100% = one core), other processes on the host (noise)")
        medians = {c: float(np.median([r["thr"]["rate"] for r in rs])) for c, rs in by_cfg.items()}
        best = max(medians, key=medians.get)
        base_rate = medians.get(Cfg())
        for c, rs in by_cfg.items():
            rates = [r["thr"]["rate"] for r in rs]
            p50 = [r["lat"]["p50"] for r in rs if r["lat"]]
            p99 = [r["lat"]["p99"] for r in rs if r["lat"]]
            lat_s = f"p50 {np.median(p50):5.0f} ms p99 {np.median(p99):5.0f} ms" if p50 else ""
            noise = np.median([others_pct(r["thr"]["cpu"]) for r in rs])
            vs = f" {medians[c] / base_rate:4.2f}x defaults" if base_rate else ""
            runs = "/".join(f"{x:,.0f}" for x in rates) if len(rates) > 1 else ""
            print(f"  {c.label():<62} {medians[c]:>7,.0f} msg/s{vs} "
                  f"{pct(medians[c], c_ceiling['rate']):>5}  {lat_s}  others {noise:3.0f}%"
                  f"{'  <- best' if c == best else ''}  {runs}")
            print(f"    CPU: {component_cpu(rs[-1]['thr']['cpu'])}")
    print(f"\ntotal wall time {wall:.0f} s. Absolute rates vary with whatever else runs on this host (see 'other "
          f"processes' in the CPU lines); compare ratios within one run.")
    if args.json:
        Path(args.json).write_text(json.dumps({"c_ceiling": c_ceiling, "ceiling": ceiling, "naive": naive,
                                               "results": results},
                                              indent=2, default=str))


def cleanup(env: Env) -> None:
    for p in env.publishers:
        with contextlib.suppress(Exception):
            p.stop()
    if env.ceiling is not None:
        with contextlib.suppress(Exception):
            env.ceiling.stop()
    if env.c_ceiling is not None:
        with contextlib.suppress(Exception):
            env.c_ceiling.stop()
    if env.ray_started:
        import ray

        with contextlib.suppress(Exception):
            ray.shutdown()  # a local cluster started here: every actor (detached too) goes with it
    if env.mosquitto is not None:
        with contextlib.suppress(Exception):
            env.mosquitto.stop()


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=50, help="devices = mosquitto_pub processes (default 50)")
    p.add_argument("--messages", type=int, default=100_000, help="messages per throughput phase, all devices (100000)")
    p.add_argument("--metrics", type=int, default=10, help="metrics per envelope (10)")
    p.add_argument("--rules", type=int, default=3, help="threshold rules per tenant, never firing (3)")
    p.add_argument("--naive-messages", type=int, default=10_000, help="messages for the naive baseline (10000)")
    p.add_argument("--latency-seconds", type=float, default=20.0, help="half-load latency phase length (20)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS["ingest_batch_size"])
    p.add_argument("--batch-ms", type=int, default=DEFAULTS["ingest_batch_ms"])
    p.add_argument("--bridges", type=int, default=DEFAULTS["ingest_bridges"])
    p.add_argument("--shards", type=int, default=DEFAULTS["device_shards"])
    p.add_argument("--inflight", type=int, default=100, help="mosquitto_pub -M (QoS 1 window per publisher)")
    p.add_argument("--sweep", choices=sorted(SWEEPS), help="run the e2e phases for each config of SWEEPS[name] "
                   "(settings: shipped code, other settings; changes: shipped code vs EXPERIMENTS); no naive phase")
    p.add_argument("--repeat", type=int, default=1, help="sweep: run the list this many times, alternating order")
    p.add_argument("--sweep-latency-seconds", type=float, default=8.0)
    p.add_argument("--phase-timeout", type=float, default=120.0, help="upper bound of each phase (s)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs) after the run")
    p.add_argument("--ray-logs", action="store_true", help="show the actors' logs")
    p.add_argument("--profile", action="store_true", help="py-spy the actors during the throughput phase")
    p.add_argument("--experiment", default="", help="comma list of EXPERIMENTS (benchmark-local subclasses, not "
                   "shipped code): " + "; ".join(f"{k} = {v}" for k, v in EXPERIMENTS.items()))
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="other Settings for the Pulse actors, e.g. --set lake_flush_rows=1000000 (repeatable)")
    # internal: the ceiling subscriber subprocess
    p.add_argument("--role", default="main", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--user", help=argparse.SUPPRESS)
    p.add_argument("--password", help=argparse.SUPPRESS)
    p.add_argument("--expect", type=int, help=argparse.SUPPRESS)
    p.add_argument("--timeout", type=float, help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    if args.role == "ceiling":
        asyncio.run(ceiling_subscriber(args))
        return 0
    for tool in ("mosquitto_pub", "mosquitto_ctrl", C_SUBSCRIBER):
        if not shutil.which(tool):
            print(f"{tool} not found (Debian: mosquitto mosquitto-clients)", file=sys.stderr)
            return 2
    # Raise at once in the main thread (asyncio.run's own SIGINT handling only cancels the main task,
    # which a pending actor call can absorb): the finally blocks below then stop everything.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    signal.signal(signal.SIGINT, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    env = Env(args=args, tmp=tmp, port=free_port(), service_password=secrets.token_urlsafe(24),
              db_url=f"sqlite+aiosqlite:///{tmp}/pulse.db")
    try:
        asyncio.run(main_async(args, env))
        return 0
    finally:
        cleanup(env)
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
