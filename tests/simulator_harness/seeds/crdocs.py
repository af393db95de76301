"""Small hand-written CommonRoad documents for the importer's tests, and the 2018b rewrite of the
real 2020a NGSIM file.

Lanelets are straight strips between two points; a dynamic obstacle drives along +x at constant
speed; the writer follows the element order of the CommonRoad XML documentation for each version
(2018b: ``<obstacle>`` with ``<role>`` first and a ``tags`` attribute on the root; 2020a:
``<dynamicObstacle>``/``<staticObstacle>`` and ``<scenarioTags>``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

US101 = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "commonroad" / "USA_US101-4_1_T-1.xml"
W = 3.5  # lane width, m


def _points(tag: str, pts: list[tuple[float, float]], marking: str = "dashed") -> str:
    inner = "".join(f"<point><x>{x:.4f}</x><y>{y:.4f}</y></point>" for x, y in pts)
    return f"<{tag}>{inner}<lineMarking>{marking}</lineMarking></{tag}>"


def strip(lanelet_id: int, start: tuple[float, float], end: tuple[float, float], width: float = W, n: int = 6,
          pred: tuple[int, ...] = (), succ: tuple[int, ...] = (), left: int | None = None, right: int | None = None,
          left_dir: str = "same", right_dir: str = "same", extra: str = "") -> str:
    """A straight lanelet from ``start`` to ``end`` (its centre line), ``width`` wide."""
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    nx, ny = -(y1 - y0) / length * width / 2, (x1 - x0) / length * width / 2  # to the left
    centre = [(x0 + (x1 - x0) * k / (n - 1), y0 + (y1 - y0) * k / (n - 1)) for k in range(n)]
    body = _points("leftBound", [(x + nx, y + ny) for x, y in centre])
    body += _points("rightBound", [(x - nx, y - ny) for x, y in centre])
    body += "".join(f'<predecessor ref="{r}"/>' for r in pred) + "".join(f'<successor ref="{r}"/>' for r in succ)
    if left is not None:
        body += f'<adjacentLeft ref="{left}" drivingDir="{left_dir}"/>'
    if right is not None:
        body += f'<adjacentRight ref="{right}" drivingDir="{right_dir}"/>'
    return f'<lanelet id="{lanelet_id}">{body}{extra}</lanelet>'


def lane(lanelet_id: int, k: int, x0: float, x1: float, **kw: object) -> str:
    """A lanelet of lane ``k`` (centre at ``y = k · W``) of a road along +x."""
    return strip(lanelet_id, (x0, k * W), (x1, k * W), **kw)  # type: ignore[arg-type]


def _state(tag: str, t: int, x: float, y: float, yaw: float, v: float) -> str:
    return (f"<{tag}><position><point><x>{x:.4f}</x><y>{y:.4f}</y></point></position>"
            f"<orientation><exact>{yaw:.5f}</exact></orientation><time><exact>{t}</exact></time>"
            f"<velocity><exact>{v:.4f}</exact></velocity><acceleration><exact>0.0</exact></acceleration></{tag}>")


def shape(length: float = 4.5, width: float = 1.8, radius: float | None = None) -> str:
    if radius is not None:
        return f"<shape><circle><radius>{radius}</radius></circle></shape>"
    return f"<shape><rectangle><length>{length}</length><width>{width}</width></rectangle></shape>"


def mover(obstacle_id: int, x0: float, y0: float, v: float, steps: int = 20, kind: str = "car",
          version: str = "2020a", shape_xml: str | None = None, dt: float = 0.1) -> str:
    """A dynamic obstacle driving along +x from ``(x0, y0)`` at ``v`` m/s for ``steps`` steps."""
    states = _state("initialState", 0, x0, y0, 0.0, v)
    states += "<trajectory>" + "".join(_state("state", k, x0 + v * k * dt, y0, 0.0, v)
                                       for k in range(1, steps)) + "</trajectory>"
    body = f"<type>{kind}</type>{shape_xml or shape()}{states}"
    if version == "2018b":
        return f'<obstacle id="{obstacle_id}"><role>dynamic</role>{body}</obstacle>'
    return f'<dynamicObstacle id="{obstacle_id}">{body}</dynamicObstacle>'


def standing(obstacle_id: int, x: float, y: float, kind: str = "parkedVehicle", version: str = "2020a",
             length: float = 4.5) -> str:
    """A static obstacle at ``(x, y)`` heading +x."""
    state = (f"<initialState><position><point><x>{x}</x><y>{y}</y></point></position>"
             "<orientation><exact>0.0</exact></orientation><time><exact>0</exact></time></initialState>")
    body = f"<type>{kind}</type>{shape(length)}{state}"
    if version == "2018b":
        return f'<obstacle id="{obstacle_id}"><role>static</role>{body}</obstacle>'
    return f'<staticObstacle id="{obstacle_id}">{body}</staticObstacle>'


def document(body: str, version: str = "2020a", tags: tuple[str, ...] = ("highway", "multi_lane"),
             benchmark: str = "ZAM_Test-1_1_T-1") -> str:
    """A ``<commonRoad>`` root around ``body``."""
    if version == "2018b":
        return (f'<commonRoad commonRoadVersion="2018b" benchmarkID="{benchmark}" timeStepSize="0.1" '
                f'tags="{" ".join(tags)}">{body}</commonRoad>')
    tag_xml = "<scenarioTags>" + "".join(f"<{t}/>" for t in tags) + "</scenarioTags>"
    return (f'<commonRoad commonRoadVersion="{version}" benchmarkID="{benchmark}" timeStepSize="0.1">'
            f"{tag_xml}{body}</commonRoad>")


def two_lane_road(length: float = 250.0) -> str:
    """Lanes 0 and 1 along +x over ``[0, length]``, each in two lanelets split at 100 m."""
    return (lane(1, 0, 0, 100, succ=(2,), left=3) + lane(2, 0, 100, length, pred=(1,), left=4)
            + lane(3, 1, 0, 100, succ=(4,), right=1) + lane(4, 1, 100, length, pred=(3,), right=2))


def to_2018b(text: str) -> str:
    """The real 2020a file rewritten in the 2018b form, element by element: the root declares
    2018b and carries the tags as its ``tags`` attribute (no ``<scenarioTags>``, no ``<location>``,
    which 2018b does not have); lanelets lose ``<laneletType>`` (new in 2020a); each
    ``<dynamicObstacle>`` becomes ``<obstacle>`` with ``<role>dynamic</role>`` as its first child,
    its type, shape, initial state and trajectory unchanged. The planning problem is kept as it is."""
    root = ET.fromstring(text)
    root.set("commonRoadVersion", "2018b")
    tags = root.find("scenarioTags")
    assert tags is not None
    root.set("tags", " ".join(el.tag for el in tags))
    for name in ("scenarioTags", "location"):
        for el in root.findall(name):
            root.remove(el)
    for lanelet in root.findall("lanelet"):
        for el in lanelet.findall("laneletType"):
            lanelet.remove(el)
    for ob in root.findall("dynamicObstacle"):
        ob.tag = "obstacle"
        role = ET.Element("role")
        role.text = "dynamic"
        ob.insert(0, role)
    return ET.tostring(root, encoding="unicode")
