"""CPU per message of each stage of a device shard's ingest hot path, in-process (no Ray, no broker).

`DeviceShard.handle_raw` per message: `envelope.decode` -> the device actor (`normalize`, `handle`:
latest values and 3 threshold rules that never fire) -> `telemetry_table` -> `encode_rows` (lz4).
A 1000-message batch of 50 devices, 10 float metrics each, ISO timestamps with milliseconds, as
`bench_ingest.py` publishes them. Each stage is timed 5 x 30 times; the best is printed.

With `--against DIR` (another checkout, e.g. `git archive <commit> | tar -x -C DIR`), both trees
are timed in alternating subprocesses in the same run and the best of each is printed side by side.

    .venv/bin/python benchmarks/bench_stages.py [--against DIR] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
N, DEVICES, METRICS, RULES = 1000, 50, 10, 3
STAGES = ("decode", "actor handle", "actor handle, no rules", "telemetry_table", "encode_rows")
TOTAL = ("decode", "actor handle", "telemetry_table", "encode_rows")


def measure() -> dict[str, float]:
    """us/msg of each stage, for the tree first on sys.path."""
    from bench_ingest import envelope

    from pulse.domain.device import DeviceActor
    from pulse.domain.envelope import Limits, decode
    from pulse.domain.rules import Condition, Rule
    from pulse.storage.lake.rows import encode_rows, telemetry_table

    now = int(time.time() * 1000)
    items = [(f"tenant/bench/device/dev-{i % DEVICES:03d}/telemetry", envelope(i, METRICS, now - 1000).encode())
             for i in range(N)]
    limits = Limits()
    rules = [Rule(f"r{k}", "bench", f"rule{k}", (Condition(f"metric_{k:02d}", "GT", 1e12),)) for k in range(RULES)]
    actors = {f"dev-{i:03d}": DeviceActor("bench", f"dev-{i:03d}") for i in range(DEVICES)}
    out: dict[str, float] = {}

    def timed(stage, fn, reps=30):
        result = fn()
        best = float("inf")
        for _ in range(5):
            cpu = time.process_time()
            for _ in range(reps):
                fn()
            best = min(best, (time.process_time() - cpu) / reps / N * 1e6)
        out[stage] = best
        return result

    def decode_all():
        return [m for topic, payload in items for m in decode(topic, payload, now, limits)[0]]

    def handle(with_rules):
        for m in msgs:
            actor = actors[m.device_id]
            actor.normalize(m)
            actor.handle(m, rules if with_rules else ())

    msgs = timed("decode", decode_all)
    assert len(msgs) == N
    timed("actor handle", lambda: handle(True))
    timed("actor handle, no rules", lambda: handle(False))
    table = timed("telemetry_table", lambda: telemetry_table(msgs))
    timed("encode_rows", lambda: encode_rows(table))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", help="another checkout to time in the same run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path[:0] = [args.child, str(Path(args.child) / "benchmarks")]
        import pulse
        assert Path(pulse.__file__).is_relative_to(Path(args.child).resolve()), pulse.__file__
        print(json.dumps(measure()))
        return
    trees = {"this": str(HERE)} | ({"against": str(Path(args.against).resolve())} if args.against else {})
    best: dict[str, dict[str, float]] = {name: {} for name in trees}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            run = subprocess.run([sys.executable, __file__, "--child", tree], capture_output=True, text=True,
                                 check=True)
            for stage, us in json.loads(run.stdout.splitlines()[-1]).items():
                best[name][stage] = min(us, best[name].get(stage, us))
    for b in best.values():
        b["total"] = sum(b[s] for s in TOTAL)
    names = list(trees)
    print(f"{'us/msg (best of ' + str(args.rounds * 5) + ')':28s}" + "".join(f"{n:>9s}" for n in names)
          + ("   change" if args.against else ""))
    for stage in (*STAGES, "total"):
        row = "".join(f"{best[n][stage]:9.2f}" for n in names)
        if args.against:
            row += f"  {100 * (best['this'][stage] / best['against'][stage] - 1):+6.0f}%"
        print(f"{stage:28s}{row}")


if __name__ == "__main__":
    main()
