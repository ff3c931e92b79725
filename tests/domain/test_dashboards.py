"""Widget configs, grid positions and layouts (pulse/domain/dashboards.py), without a store or HTTP."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from pulse.domain import analytics
from pulse.domain import dashboards as d
from pulse.errors import BadRequest, Invalid


@pytest.mark.parametrize("widget_type", ["fleet_status", "device_count", "kpi_tile", "alert_feed", "table",
                                         "line_chart"])
def test_the_issues_widget_types_exist(widget_type):
    assert widget_type in d.WIDGET_TYPES


def test_every_documented_widget_type_has_a_config():
    documented = {"kpi_tile", "line_chart", "bar_chart", "area_chart", "gauge", "table", "alert_feed", "fleet_status",
                  "fleet_overview", "device_count", "health_score", "stat_card", "pie_chart", "scatter", "radar"}
    assert set(d.WIDGET_TYPES) == documented


def test_a_config_is_stored_with_every_default_filled_in():
    config = d.widget_config("line_chart", {"metric": "temp", "group_id": "grp-1"})
    assert config == {"device_ids": [], "group_id": "grp-1", "metric": "temp", "aggregation": "avg",
                      "time_range": "24h", "bucket_size": None, "group_by": None}


def test_charts_use_the_analytics_vocabulary():
    for aggregation in analytics.AGGREGATIONS:
        for time_range in analytics.TIME_RANGES:
            d.widget_config("area_chart", {"metric": "m", "aggregation": aggregation, "time_range": time_range})


@pytest.mark.parametrize("widget_type,config,where", [
    ("unknown", {}, None),
    ("line_chart", {}, "config.metric"),
    ("line_chart", {"metric": "t", "aggregation": "median"}, "config.aggregation"),
    ("line_chart", {"metric": "t", "time_range": "1y"}, "config.time_range"),
    ("line_chart", {"metric": "t", "time_range": "30d", "bucket_size": "1s"}, "config"),
    ("line_chart", {"metric": "t", "bucket_size": "fortnight"}, "config"),
    ("kpi_tile", {"kpi": "metric"}, "config"),
    ("kpi_tile", {"kpi": "uptime"}, "config.kpi"),
    ("gauge", {"metric": "t", "min": 10, "max": 10}, "config"),
    ("table", {"metrics": ["bad key"]}, "config.metrics.0"),
    ("table", {"limit": 0}, "config.limit"),
    ("alert_feed", {"status": "SOMETIMES"}, "config.status"),
    ("fleet_status", {"device_ids": ["a"], "group_id": "g"}, "config"),
    ("fleet_status", {"device_ids": ["bad id"]}, "config.device_ids.0"),
    ("fleet_status", {"devices": ["a"]}, "config.devices"),
    ("scatter", {"x_metric": "a"}, "config.y_metric"),
])
def test_bad_configs_are_refused_naming_the_key(widget_type, config, where):
    if where is None:
        with pytest.raises(BadRequest, match="Invalid widget_type. Must be one of: kpi_tile"):
            d.widget_config(widget_type, config)
        return
    with pytest.raises(Invalid) as e:
        d.widget_config(widget_type, config)
    assert e.value.detail.startswith(f"{where}:"), e.value.detail
    assert "Value error" not in e.value.detail


def test_a_fleet_kpi_needs_no_metric():
    assert d.widget_config("kpi_tile", {"kpi": "open_alerts"})["metric"] is None


@pytest.mark.parametrize("position", [{"x": 12}, {"x": 11, "w": 2}, {"w": 13}, {"w": 0}, {"h": 25}, {"y": -1},
                                      {"y": d.MAX_GRID_ROW + 1}])
def test_a_position_must_lie_on_the_12_column_grid(position):
    with pytest.raises(ValidationError):
        d.GridPosition(**position)


def test_a_widget_may_reach_the_last_column():
    assert d.GridPosition(x=10, w=2).model_dump() == {"x": 10, "y": 0, "w": 2, "h": 2}


def _item(widget_id: int) -> d.LayoutItem:
    return d.LayoutItem(widget_id=widget_id, x=0, y=0, w=2, h=2)


def test_a_layout_names_only_the_dashboards_widgets_once_each():
    d.check_layout([_item(1), _item(2)], {1, 2, 3})
    with pytest.raises(BadRequest, match="Unknown widget ids for this dashboard: 4"):
        d.check_layout([_item(1), _item(4)], {1, 2})
    with pytest.raises(BadRequest, match="appears twice"):
        d.check_layout([_item(1), _item(1)], {1})


def test_a_layout_item_needs_every_coordinate():
    with pytest.raises(ValidationError):
        d.LayoutItem(widget_id=1, x=0, y=0, w=2)


def test_the_bootstrap_dashboard_is_the_documented_seven_valid_widgets_on_the_grid():
    widgets = d.bootstrap_widgets()
    assert [w["widget_type"] for w in widgets] == ["fleet_status", "device_count", "kpi_tile", "kpi_tile",
                                                    "alert_feed", "table", "health_score"]
    for w in widgets:
        assert d.widget_config(w["widget_type"], w["config"]) == w["config"]
        d.GridPosition(**w["position"])
