"""Device scopes: one key set; a scope covers a device matching any key, a filter passes one matching every key."""
import pytest

from pulse.domain.scopes import DeviceFacts, covers, is_tenant_wide, passes

DEV = DeviceFacts("d1", site_id="s1", tags=frozenset({"a", "b"}), group_ids=frozenset({"g1"}), template_id=7)


def test_scope_matches_any_selector_and_empty_scope_covers_everything():
    dev = DeviceFacts("d1", site_id="s1", tags=frozenset({"a", "b"}), group_ids=frozenset({"g1"}))
    assert covers({}, dev) and covers(None, dev)
    assert covers({"device_ids": [], "group_ids": [], "site_ids": [], "tags": []}, dev)
    assert covers({"device_ids": ["d1"]}, dev)
    assert covers({"site_ids": ["s1"]}, dev)
    assert covers({"tags": ["x", "b"]}, dev)
    assert covers({"group_ids": ["g1"]}, dev)
    assert covers({"device_ids": ["d9"], "tags": ["a"]}, dev)
    assert not covers({"device_ids": ["d9"], "site_ids": ["s2"], "tags": ["c"], "group_ids": ["g2"]}, dev)
    assert not covers({"site_ids": ["s1"]}, DeviceFacts("d2"))


def test_scope_selects_by_template_too():
    assert covers({"template_ids": [7]}, DEV) and not covers({"template_ids": [8]}, DEV)
    assert not covers({"template_ids": [7]}, DeviceFacts("d2"))


@pytest.mark.parametrize("criteria, expected", [
    ({}, True), (None, True), ({"tags": [], "group_ids": []}, True),  # nothing set: any device
    ({"device_ids": ["d0", "d1"]}, True), ({"device_ids": ["d2"]}, False),
    ({"tags": ["x", "b"]}, True),  # within a key: any listed value
    ({"device_ids": ["d1"], "tags": ["a"], "site_ids": ["s1"], "group_ids": ["g1"], "template_ids": [7]}, True),
    ({"device_ids": ["d1"], "tags": ["x"]}, False),  # across keys: every one set
])
def test_filter_passes_a_device_matching_every_key_it_sets(criteria, expected):
    assert passes(criteria, DEV) is expected


def test_tenant_wide_means_no_key_set_and_other_fields_are_ignored():
    assert is_tenant_wide({}) and is_tenant_wide({"tags": [], "alert_types": ["X"]})
    assert not is_tenant_wide({"site_ids": ["s1"]})
