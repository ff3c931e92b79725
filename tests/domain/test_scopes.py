"""Device scopes: one key set and one reading, shared by alert rules, maintenance windows and routing."""
import pytest

from pulse.domain.scopes import DeviceFacts, is_tenant_wide, selects

DEV = DeviceFacts("d1", site_id="s1", tags=frozenset({"a", "b"}), group_ids=frozenset({"g1"}), template_id=7)


@pytest.mark.parametrize("scope", [{}, None, {"device_ids": [], "group_ids": [], "site_ids": [], "tags": []}])
def test_a_scope_that_sets_no_key_selects_every_device(scope):
    assert selects(scope, DEV) and selects(scope, DeviceFacts("unregistered"))


@pytest.mark.parametrize("scope, expected", [
    ({"device_ids": ["d0", "d1"]}, True), ({"device_ids": ["d2"]}, False),
    ({"site_ids": ["s1"]}, True), ({"site_ids": ["s2"]}, False),
    ({"tags": ["x", "b"]}, True), ({"tags": ["x"]}, False),  # within a key: any listed value
    ({"group_ids": ["g1"]}, True), ({"group_ids": ["g2"]}, False),
    ({"template_ids": [7]}, True), ({"template_ids": [8]}, False),
])
def test_one_key_selects_a_device_having_any_listed_value(scope, expected):
    assert selects(scope, DEV) is expected


@pytest.mark.parametrize("scope, expected", [
    ({"device_ids": ["d1"], "tags": ["a"], "site_ids": ["s1"], "group_ids": ["g1"], "template_ids": [7]}, True),
    ({"site_ids": ["s1"], "tags": ["x", "a"]}, True),
    ({"device_ids": ["d1"], "tags": ["x"]}, False),  # across keys: every key set must match
    ({"device_ids": ["d9"], "tags": ["a"]}, False),  # a selector never widens a scope
])
def test_keys_combine_so_every_key_set_must_match(scope, expected):
    assert selects(scope, DEV) is expected


def test_a_device_without_a_site_or_template_is_not_selected_by_one():
    assert not selects({"site_ids": ["s1"]}, DeviceFacts("d2"))
    assert not selects({"template_ids": [7]}, DeviceFacts("d2"))


def test_tenant_wide_means_no_key_set_and_other_fields_are_ignored():
    assert is_tenant_wide({}) and is_tenant_wide({"tags": [], "alert_types": ["X"]})
    assert not is_tenant_wide({"site_ids": ["s1"]})
