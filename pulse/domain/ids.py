"""How big a row id can be: one number shared by the tables that store ids and the API that bounds them."""
from __future__ import annotations

SERIAL_ID_MAX = 2**31 - 1  # a serial id is sa.Integer: PostgreSQL's int4 (SQLite's INTEGER holds more)
BIGINT_MAX = 2**63 - 1  # the largest BIGINT (PostgreSQL's OFFSET takes one)
