from pulse.domain.latest import EMPTY, MAX_SHARED_LAYOUTS, LatestValues, MetricLayout


def test_a_message_with_the_same_metrics_replaces_every_value():
    lv = LatestValues()
    assert lv.update({"t": 1.0, "h": 2.0}, 100) == (["t", "h"], ["t", "h"])
    new, updated = lv.update({"t": 3.0, "h": 4.0}, 200)
    assert new == [] and list(updated) == ["t", "h"]
    assert lv.as_dict() == {"t": (3.0, 200), "h": (4.0, 200)}


def test_an_older_reading_does_not_replace_a_newer_one_per_metric():
    lv = LatestValues()
    lv.update({"t": 1.0, "h": 2.0}, 100)
    lv.update({"t": 5.0}, 300)  # only t moves
    assert lv.update({"t": 9.0, "h": 7.0}, 200) == ([], ["h"])  # t is newer than 200, h is not
    assert lv.as_dict() == {"t": (5.0, 300), "h": (7.0, 200)}
    assert lv.get("t") == (5.0, 300) and lv["h"] == (7.0, 200) and lv.get("x") is None


def test_new_metrics_are_appended_in_message_order_and_the_rest_keeps_its_time():
    lv = LatestValues({"a": (1.0, 10)})
    new, updated = lv.update({"c": 3.0, "a": 2.0, "b": 4.0}, 5)  # a's 10 is newer than 5
    assert new == ["c", "b"] and updated == ["c", "b"]
    assert list(lv) == ["a", "c", "b"] and len(lv) == 3 and "c" in lv
    assert lv.as_dict() == {"a": (1.0, 10), "c": (3.0, 5), "b": (4.0, 5)}


def test_a_snapshot_round_trip_keeps_values_times_and_order():
    lv = LatestValues()
    lv.update({"t": 1.5, "h": 2}, 100)
    lv.update({"h": 3}, 150)
    again = LatestValues(lv.as_dict())
    assert list(again.items()) == [("t", (1.5, 100)), ("h", (3, 150))]


def test_devices_with_the_same_metrics_share_one_layout():
    a, b = LatestValues(), LatestValues()
    a.update({"t": 1.0, "h": 2.0}, 1)
    b.update({"t": 5.0}, 1)
    b.update({"h": 6.0}, 2)
    assert a.layout is b.layout


def test_layouts_beyond_the_cache_bound_are_private_but_correct(monkeypatch):
    monkeypatch.setattr(MetricLayout, "shared", MAX_SHARED_LAYOUTS)
    first, second = EMPTY.plus("never_seen_metric"), EMPTY.plus("never_seen_metric")
    assert first is not second and first.names == second.names == ("never_seen_metric",)
