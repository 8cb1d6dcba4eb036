"""Store layout files: the samples load, and every kind of mistake names its key."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
from pydantic import ValidationError

from storelens.core.errors import LayoutError
from storelens.core.layout import (
    Floor,
    StoreLayout,
    Zone,
    load_layout,
    parse_layout,
)

SAMPLES = Path(str(files("storelens.samples") / "layouts"))

BASE = """\
[store]
id = "test-01"
name = "Test shop"
timezone = "Europe/Berlin"
kind = "cafe"

[floor]
width_m = 10.0
height_m = 8.0

[[zones]]
id = "entrance"
name = "Entrance"
kind = "entrance"
polygon = [[0, 3], [1.5, 3], [1.5, 6], [0, 6]]

[[zones]]
id = "queue"
name = "Queue"
kind = "queue"
polygon = [[3, 1], [6, 1], [6, 3], [3, 3]]

[[zones]]
id = "seating"
name = "Seating"
kind = "seating"
polygon = [[3, 5], [10, 5], [10, 8], [3, 8]]

[[lines]]
id = "door"
name = "Front door"
a = [0.8, 3.0]
b = [0.8, 6.0]
zone_id = "entrance"

[[cameras]]
id = "cam-1"
source = "rtsp://10.0.0.21/stream1"
resolution = [1280, 720]
covers = ["entrance", "queue"]

[cameras.calibration]
image_points = [[100, 620], [1180, 620], [1000, 120], [280, 120]]
floor_points = [[0, 8], [7, 8], [7, 2], [0, 2]]
"""

QUEUE_POLYGON = "polygon = [[3, 1], [6, 1], [6, 3], [3, 3]]"
IMAGE_POINTS = "image_points = [[100, 620], [1180, 620], [1000, 120], [280, 120]]"
FLOOR_POINTS = "floor_points = [[0, 8], [7, 8], [7, 2], [0, 2]]"


def write_layout(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "store.toml"
    path.write_text(text, encoding="utf-8")
    return path


def edited(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"edit target must occur exactly once: {old!r}"
    return BASE.replace(old, new)


def layout_error(tmp_path: Path, text: str) -> LayoutError:
    path = write_layout(tmp_path, text)
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert caught.value.path == str(path)
    assert str(caught.value).startswith(f"{path}: {caught.value.key}: ")
    return caught.value


# ---------------------------------------------------------------- samples


@pytest.mark.parametrize("name", ["cafe", "apparel"])
def test_sample_loads_with_zones_inside_the_floor(name: str) -> None:
    layout = load_layout(SAMPLES / f"{name}.toml")
    assert layout.kind == name
    assert layout.timezone == "Europe/Berlin"
    assert [line.id for line in layout.lines] == ["door"]
    assert layout.lines[0].zone_id == "entrance"
    for zone in layout.zones:
        assert all(layout.floor.contains(p) for p in zone.polygon), zone.id
        assert zone.area_m2 > 1


def test_cafe_sample_has_the_documented_zones_and_cameras() -> None:
    layout = load_layout(SAMPLES / "cafe.toml")
    assert (layout.store_id, layout.name) == ("cafe-01", "Corner Café")
    assert (layout.floor.width_m, layout.floor.height_m) == (14.0, 9.0)
    assert {z.id: z.kind for z in layout.zones} == {
        "entrance": "entrance",
        "queue": "queue",
        "counter": "counter",
        "pickup": "pickup",
        "bar": "staff_only",
        "seating": "seating",
        "window-seats": "seating",
    }
    assert [c.id for c in layout.cameras] == ["cam-entrance", "cam-counter", "cam-seating"]
    for camera in layout.cameras:
        assert camera.resolution == (1280, 720)
        assert len(camera.calibration.image_points) == 4


def test_apparel_sample_has_the_documented_zones_and_cameras() -> None:
    layout = load_layout(SAMPLES / "apparel.toml")
    assert layout.store_id == "apparel-01"
    ids = {z.id for z in layout.zones}
    expected = {"entrance", "new-arrivals", "denim", "womens", "mens", "accessories"}
    assert expected | {"sale-rack", "fitting-rooms", "checkout", "queue", "stockroom"} <= ids
    assert [z.id for z in layout.zones_of_kind("fitting_room")] == ["fitting-rooms"]
    assert [z.id for z in layout.zones_of_kind("checkout")] == ["checkout"]
    assert [z.id for z in layout.zones_of_kind("staff_only")] == ["stockroom"]
    assert len(layout.cameras) == 3


@pytest.mark.parametrize("name", ["cafe", "apparel"])
def test_sample_zones_do_not_overlap(name: str) -> None:
    layout = load_layout(SAMPLES / f"{name}.toml")
    step = 0.25  # cell centres never fall on the samples' zone edges
    columns, rows = int(layout.floor.width_m / step), int(layout.floor.height_m / step)
    for col in range(columns):
        for row in range(rows):
            point = ((col + 0.5) * step, (row + 0.5) * step)
            inside = [z.id for z in layout.zones if z.contains(point)]
            assert len(inside) <= 1, (point, inside)


@pytest.mark.parametrize("name", ["cafe", "apparel"])
def test_sample_door_counts_walking_into_the_store_as_in(name: str) -> None:
    layout = load_layout(SAMPLES / f"{name}.toml")
    door = layout.lines[0]
    centre = (layout.floor.width_m / 2, layout.floor.height_m / 2)
    assert door.side(centre) == "in"
    street = (0.0, 4.5) if name == "cafe" else (15.0, 20.0)
    assert door.side(street) == "out"


@pytest.mark.parametrize("name", ["cafe", "apparel"])
def test_sample_calibrations_are_not_mirrored(name: str) -> None:
    """A ceiling camera sees the floor from above, as the plan does: same winding order."""

    def winding(points: list[tuple[float, float]]) -> bool:
        n = len(points)
        area = sum(
            points[i][0] * points[(i + 1) % n][1] - points[(i + 1) % n][0] * points[i][1]
            for i in range(n)
        )
        return area > 0

    layout = load_layout(SAMPLES / f"{name}.toml")
    for camera in layout.cameras:
        calibration = camera.calibration
        assert winding(calibration.image_points) == winding(calibration.floor_points), camera.id


def test_no_sample_camera_watches_a_fitting_room() -> None:
    for name in ("cafe", "apparel"):
        layout = load_layout(SAMPLES / f"{name}.toml")
        private = {z.id for z in layout.zones_of_kind("fitting_room")}
        assert all(not private & set(c.covers) for c in layout.cameras)


# ---------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        pytest.param(
            'name = "Queue"\n',
            'name = "Queue"\ncolour = "red"\n',
            "zones[1].colour",
            "unknown key",
            id="unknown-zone-key",
        ),
        pytest.param(
            'timezone = "Europe/Berlin"\n',
            'timezone = "Europe/Berlin"\nowner = "me"\n',
            "store.owner",
            "unknown key",
            id="unknown-store-key",
        ),
        pytest.param(
            "[store]\n",
            'name = "misplaced"\n\n[store]\n',
            "name",
            "unknown key",
            id="store-field-outside-store-table",
        ),
        pytest.param(
            QUEUE_POLYGON,
            "polygon = [[3, 1], [6, 1]]",
            "zones[1].polygon",
            "at least 3 points, got 2",
            id="polygon-with-two-points",
        ),
        pytest.param(
            "polygon = [[3, 5], [10, 5], [10, 8], [3, 8]]",
            "polygon = [[3, 5], [12, 5], [12, 8], [3, 8]]",
            "zones[2].polygon",
            "point 1 (12, 5) lies outside the 10 x 8 m floor",
            id="polygon-point-outside-floor",
        ),
        pytest.param(
            QUEUE_POLYGON,
            "polygon = [[3, 1], [6, 3], [6, 1], [3, 3]]",
            "zones[1].polygon",
            "crosses itself",
            id="bow-tie-polygon",
        ),
        pytest.param(
            QUEUE_POLYGON,
            "polygon = [[3, 1], [4, 1], [5, 1]]",
            "zones[1].polygon",
            "zero area",
            id="flat-polygon",
        ),
        pytest.param(
            '\nid = "seating"',
            '\nid = "queue"',
            "zones[2].id",
            "duplicate id 'queue', already used by zones[1]",
            id="duplicate-zone-id",
        ),
        pytest.param(
            'kind = "queue"',
            'kind = "lobby"',
            "zones[1].kind",
            "'fitting_room'",
            id="unknown-zone-kind",
        ),
        pytest.param(
            'kind = "entrance"\n',
            "",
            "zones[0].kind",
            "missing required key",
            id="missing-zone-kind",
        ),
        pytest.param(
            'zone_id = "entrance"',
            'zone_id = "lobby"',
            "lines[0].zone_id",
            "no zone has id 'lobby'",
            id="line-to-missing-zone",
        ),
        pytest.param(
            "b = [0.8, 6.0]",
            "b = [0.8, 3.0]",
            "lines[0].b",
            "same point as a",
            id="line-with-one-point",
        ),
        pytest.param(
            "b = [0.8, 6.0]",
            "b = [0.8, 9.0]",
            "lines[0].b",
            "(0.8, 9) lies outside the 10 x 8 m floor",
            id="line-end-outside-floor",
        ),
        pytest.param(
            'covers = ["entrance", "queue"]',
            'covers = ["entrance", "stockroom"]',
            "cameras[0].covers",
            "no zone has id 'stockroom'",
            id="camera-covers-missing-zone",
        ),
        pytest.param(
            f"{IMAGE_POINTS}\n{FLOOR_POINTS}",
            "image_points = [[100, 620], [1180, 620], [1000, 120]]\n"
            "floor_points = [[0, 8], [7, 8], [7, 2]]",
            "cameras[0].calibration.image_points",
            "at least 4 points for a homography, got 3",
            id="calibration-with-three-points",
        ),
        pytest.param(
            FLOOR_POINTS,
            "floor_points = [[0, 8], [7, 8], [7, 2], [0, 2], [3, 5]]",
            "cameras[0].calibration.floor_points",
            "5 floor points for 4 image points",
            id="calibration-lengths-differ",
        ),
        pytest.param(
            FLOOR_POINTS,
            "floor_points = [[0, 2], [2, 2], [4, 2], [6, 2]]",
            "cameras[0].calibration.floor_points",
            "lie on one line",
            id="collinear-floor-points",
        ),
        pytest.param(
            IMAGE_POINTS,
            "image_points = [[100, 620], [600, 620], [1180, 620], [280, 120]]",
            "cameras[0].calibration.image_points",
            "points 0, 1 and 2 lie on one line",
            id="three-of-four-image-points-collinear",
        ),
        pytest.param(
            IMAGE_POINTS,
            "image_points = [[100, 620], [1180, 620], [1000, -5], [280, 120]]",
            "cameras[0].calibration.image_points",
            "point 2 (1000, -5) is negative",
            id="negative-image-point",
        ),
        pytest.param(
            IMAGE_POINTS,
            "image_points = [[100, 620], [1380, 620], [1000, 120], [280, 120]]",
            "cameras[0].calibration.image_points",
            "outside the 1280x720 image",
            id="image-point-outside-frame",
        ),
        pytest.param(
            FLOOR_POINTS,
            "floor_points = [[0, 8], [7, 8], [7, 2], [0, -2]]",
            "cameras[0].calibration.floor_points",
            "point 3 (0, -2) lies outside",
            id="floor-point-outside-floor",
        ),
        pytest.param(
            'source = "rtsp://10.0.0.21/stream1"',
            'source = "ftp://10.0.0.21/stream1"',
            "cameras[0].source",
            "unsupported scheme 'ftp'",
            id="unknown-stream-scheme",
        ),
        pytest.param(
            'timezone = "Europe/Berlin"',
            'timezone = "Mars/Olympus"',
            "store.timezone",
            "unknown time zone 'Mars/Olympus'",
            id="bad-timezone",
        ),
        pytest.param(
            'id = "test-01"',
            'id = "Test-01"',
            "store.id",
            "id 'Test-01' must be a lowercase slug",
            id="uppercase-store-id",
        ),
        pytest.param(
            '\nid = "entrance"',
            '\nid = "front door"',
            "zones[0].id",
            "id 'front door' must be a lowercase slug",
            id="zone-id-with-space",
        ),
        pytest.param(
            'id = "cam-1"',
            f'id = "{"c" * 65}"',
            "cameras[0].id",
            "1 to 64 characters",
            id="overlong-camera-id",
        ),
        pytest.param(
            "width_m = 10.0",
            "width_m = -10.0",
            "floor.width_m",
            "greater than 0 (got -10.0)",
            id="negative-floor-width",
        ),
    ],
)
def test_mistake_names_its_key(tmp_path: Path, old: str, new: str, key: str, fragment: str) -> None:
    error = layout_error(tmp_path, edited(old, new))
    assert error.key == key
    assert fragment in error.message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    assert caught.value.key == "(file)"
    assert caught.value.path == str(path)
    assert "no such file" in caught.value.message


def test_toml_syntax_error_reports_the_line(tmp_path: Path) -> None:
    error = layout_error(tmp_path, BASE.replace('name = "Test shop"', "name = Test shop"))
    assert error.key == "(syntax)"
    assert "line 3" in error.message


def test_missing_store_table_names_the_store_id(tmp_path: Path) -> None:
    text = BASE.split("[floor]")[1]
    error = layout_error(tmp_path, "[floor]" + text)
    assert (error.key, error.message) == ("store.id", "missing required key")


# ---------------------------------------------------------------- the models


def test_store_defaults_when_optional_keys_are_left_out(tmp_path: Path) -> None:
    text = edited('timezone = "Europe/Berlin"\nkind = "cafe"\n', "")
    layout = load_layout(write_layout(tmp_path, text))
    assert (layout.timezone, layout.kind) == ("UTC", "other")
    assert layout.cameras[0].fps == 5.0


def test_zone_lookup(tmp_path: Path) -> None:
    layout = load_layout(write_layout(tmp_path, BASE))
    assert layout.zone("queue").kind == "queue"
    with pytest.raises(KeyError, match="'stockroom'"):
        layout.zone("stockroom")
    assert layout.camera("cam-1").covers == ["entrance", "queue"]
    with pytest.raises(KeyError, match="'cam-9'"):
        layout.camera("cam-9")


def test_zones_of_kind(tmp_path: Path) -> None:
    layout = load_layout(write_layout(tmp_path, BASE))
    assert [z.id for z in layout.zones_of_kind("seating")] == ["seating"]
    assert layout.zones_of_kind("checkout") == []


def test_closed_ring_polygon_is_accepted_without_the_repeated_point(tmp_path: Path) -> None:
    text = edited(QUEUE_POLYGON, "polygon = [[3, 1], [6, 1], [6, 3], [3, 3], [3, 1]]")
    zone = load_layout(write_layout(tmp_path, text)).zone("queue")
    assert zone.polygon == [(3, 1), (6, 1), (6, 3), (3, 3)]
    assert zone.area_m2 == pytest.approx(6.0)


def test_zone_contains_includes_its_outline() -> None:
    zone = Zone(
        id="l", name="L", kind="aisle", polygon=[(0, 0), (4, 0), (4, 1), (1, 1), (1, 3), (0, 3)]
    )
    assert zone.contains((0.5, 2.5))
    assert zone.contains((4, 0.5))
    assert not zone.contains((2, 2))
    assert zone.area_m2 == pytest.approx(6.0)


def test_webcam_index_and_file_sources_are_accepted(tmp_path: Path) -> None:
    text = edited('source = "rtsp://10.0.0.21/stream1"', 'source = "0"')
    assert load_layout(write_layout(tmp_path, text)).cameras[0].source == "0"
    text = edited('source = "rtsp://10.0.0.21/stream1"', 'source = "videos/door.mp4"')
    assert load_layout(write_layout(tmp_path, text)).cameras[0].source == "videos/door.mp4"


def test_parse_layout_labels_errors_with_the_given_path() -> None:
    with pytest.raises(LayoutError) as caught:
        parse_layout({"store": "cafe"}, path="inline")
    assert str(caught.value).startswith("inline: store: must be a table")


def test_direct_construction_reports_the_nested_key() -> None:
    zone = Zone(id="a", name="A", kind="queue", polygon=[(0, 0), (2, 0), (0, 1)])
    with pytest.raises(
        ValidationError, match=r"zones\[0\]\.polygon: point 1 \(2, 0\) lies outside"
    ):
        StoreLayout(store_id="s", name="S", floor=Floor(width_m=1, height_m=1), zones=[zone])


def test_models_are_frozen(tmp_path: Path) -> None:
    layout = load_layout(write_layout(tmp_path, BASE))
    with pytest.raises(ValidationError):
        layout.name = "Renamed"  # type: ignore[misc]
