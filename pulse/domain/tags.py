"""What a device tag is: the one pattern and limits the API, group queries, scopes and storage share."""
from __future__ import annotations

import re

TAG_PATTERN = r"^[A-Za-z0-9_.:/-]{1,64}$"
MAX_TAGS_PER_DEVICE = 100
MAX_TAG_FILTER = 20  # tags one device query (a listing, a dynamic group) may require at once


def valid_filter(tags: list[str]) -> bool:
    """A device listing's `tag` filter: at most MAX_TAG_FILTER tags, each a valid tag."""
    return len(tags) <= MAX_TAG_FILTER and all(re.match(TAG_PATTERN, t) for t in tags)
