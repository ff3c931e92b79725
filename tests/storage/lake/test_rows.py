"""Telemetry rows: envelopes become one Arrow row per metric in the lake's schema."""
from __future__ import annotations

from datetime import timedelta

from pulse.storage.lake.rows import TELEMETRY_SCHEMA, telemetry_table
from tests.storage.lake.helpers import DAY1, msg, rows


def test_telemetry_table_makes_one_row_per_metric_with_lake_schema() -> None:
    table = rows(msg("d1", DAY1, seq=7, temp=21.5, door=True), msg("d2", DAY1 + timedelta(seconds=1), hum=40))

    assert table.schema == TELEMETRY_SCHEMA
    assert table.to_pylist() == [
        {"tenant_id": "acme", "device_id": "d1", "ts": DAY1, "metric": "temp", "value": 21.5, "seq": 7},
        {"tenant_id": "acme", "device_id": "d1", "ts": DAY1, "metric": "door", "value": 1.0, "seq": 7},
        {
            "tenant_id": "acme", "device_id": "d2", "ts": DAY1 + timedelta(seconds=1),
            "metric": "hum", "value": 40.0, "seq": None,
        },
    ]


def test_telemetry_table_of_no_messages_is_empty() -> None:
    assert telemetry_table([]).num_rows == 0


def test_messages_with_different_metric_names_or_orders_keep_their_own_names() -> None:
    # each distinct list of names is taken once; every message must still get its own, in its order
    layouts = [{"temp": 1.0, "hum": 2.0}, {"hum": 3.0, "temp": 4.0}, {"temp": 5.0}, {},
               {"temp": 6.0, "hum": 7.0, "door": True}, {"é": 8, "temp": 9.5}]
    msgs = [msg(f"d{i % 3}", DAY1 + timedelta(seconds=i), seq=i if i % 2 else None, **layouts[(i * 7) % 6])
            for i in range(40)]
    msgs[3].metrics = {}  # a message with no readings has no rows

    table = telemetry_table(msgs)

    assert table.schema == TELEMETRY_SCHEMA
    assert table.to_pylist() == [
        {"tenant_id": "acme", "device_id": m.device_id, "ts": DAY1 + timedelta(seconds=i), "metric": name,
         "value": float(value), "seq": m.seq}
        for i, m in enumerate(msgs) for name, value in m.metrics.items()
    ]
