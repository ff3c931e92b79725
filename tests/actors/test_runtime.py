"""Placement is stable and spreads partitions over shards."""
from collections import Counter

from pulse.actors.runtime import Placement, partition_of


def test_partition_is_stable_across_calls_and_processes():
    # crc32 is specified; Python's hash() would change per process
    assert partition_of("acme/dev-1", 1024) == partition_of("acme/dev-1", 1024) == 793  # zlib.crc32(b"acme/dev-1") % 1024


def test_placement_spreads_devices_evenly():
    p = Placement(1024, 4)
    counts = Counter(p.device_shard("t", f"d{i}") for i in range(10_000))
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 2000


def test_moving_a_partition_moves_only_its_devices():
    p = Placement(64, 2)
    before = {f"d{i}": p.device_shard("t", f"d{i}") for i in range(500)}
    moved = partition_of("t/d0", 64)
    p.table[moved] = 1 - p.table[moved]
    changed = [d for d in before if p.device_shard("t", d) != before[d]]
    assert "d0" in changed
    assert all(partition_of(f"t/{d}", 64) == moved for d in changed)
