"""The severity scale: 1 (info) to 5 (critical), by number or name."""
import pytest

from pulse.domain.severity import parse_severity, severity_label


def test_levels_parse_from_numbers_and_names_in_any_case():
    assert [parse_severity(v) for v in (1, 5, "info", "MAJOR", "Critical")] == [1, 5, 1, 4, 5]


@pytest.mark.parametrize("bad", [0, 6, -1, "3", "apocalyptic", "", True, 3.5, None])
def test_anything_else_is_refused(bad):
    with pytest.raises(ValueError, match="severity"):
        parse_severity(bad)


def test_labels_name_levels_and_show_unknown_levels_as_numbers():
    assert [severity_label(i) for i in (1, 2, 3, 4, 5, 9)] == ["info", "warning", "minor", "major", "critical", "9"]
