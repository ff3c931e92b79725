"""The bounds every id, offset and limit in a path or query obeys, defined once.

Without them a client can send `/alerts/38867866850458402816` or `?offset=10**30` and the database
driver overflows (serial ids are PostgreSQL int4, OFFSET a bigint), or put control characters and
stray bytes into a path id that end up in SQL, logs and response headers. Each type below carries its
bound into the OpenAPI document, so a client (or a fuzzer) sees it, and into validation, so a
violation is a 422 naming the parameter instead of a 500 from deep inside a service.
"""
from __future__ import annotations

from typing import Annotated

from annotated_types import Interval
from pydantic import StringConstraints

from pulse.domain.ids import BIGINT_MAX, SERIAL_ID_MAX

MAX_LIMIT = 1000
# Device, site and tenant ids as the API documents them; generated ids (uuid4) fit it too. Printable
# ASCII only: no control characters, no spaces, nothing that needs escaping in a header or a log line.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"

# A serial id of a table row: alerts, templates, integrations, modules, sensors, transports, ...
DbId = Annotated[int, Interval(ge=1, le=SERIAL_ID_MAX)]

Offset = Annotated[int, Interval(ge=0, le=BIGINT_MAX)]
Limit = Annotated[int, Interval(ge=1, le=MAX_LIMIT)]

# A string id in a path or a filter: device, site, group, rule, channel, schedule, token, ...
StrId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
