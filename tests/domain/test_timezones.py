"""The one IANA zone check: names of places only."""
from datetime import datetime, timezone

import pytest

from pulse.domain.timezones import as_utc, check_zone, zone


@pytest.mark.parametrize("name", ["Factory", "localtime", "posixrules", "Mars/Olympus", "", " UTC", "../etc/passwd",
                                  "/usr/share/zoneinfo/UTC"])
def test_names_that_are_no_place_are_refused(name):
    with pytest.raises(ValueError, match="time zone"):
        zone(name)


def test_iana_names_are_accepted():
    assert zone("Europe/Berlin").key == "Europe/Berlin" and zone("UTC").key == "UTC"
    assert check_zone("America/New_York") == "America/New_York" and check_zone(None) is None


def test_as_utc_refuses_naive_instants():
    assert as_utc(datetime(2024, 1, 1, 1, tzinfo=zone("Europe/Berlin"))) == datetime(2024, 1, 1, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="naive"):
        as_utc(datetime(2024, 1, 1))
