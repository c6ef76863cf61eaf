"""`gingham lab graph`: a picture of a running lab, as SVG and PNG.

`build_scene(plan, status)` is pure: from the lab's plan and its status (what
`gingham.lab.observe.lab_status` returns) it lays out nodes, route
reflectors and ToRs as boxes, each node with the blocks it announces (its
blackhole block routes: felix installs one for each block the node owns, and
the speaker announces exactly those), and every BGP session as a line
coloured by its state. The scene is a flat list of shapes, so the SVG writer
(text, no dependencies) and the PNG writer (Pillow) draw the same picture.

Sessions are undirected: a session both ends report is drawn once, and it is
green only when every end that reports it says Established (a session one end
sees up and the other does not is not healthy). Peers at addresses outside
the lab (none today) are left out rather than guessed.

Layout: ``mesh`` nodes on a circle (every pair is a session); ``rr``
reflectors in a row above their clients; ``racks`` ToRs in a row under the
spine, each rack's nodes beneath its ToR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from gingham.lab.topology import LabPlan

BOX_W, LINE_H, GAP = 170, 15, 40
PALETTE = {
    "node": ("#e8f1fb", "#2b6cb0"),
    "rr": ("#fdf0d5", "#b7791f"),
    "tor": ("#e6f4ea", "#2f855a"),
}
STATE_COLOURS = {"up": "#2f9e44", "pending": "#f08c00", "down": "#e03131"}


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    stroke: str
    title: str


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    colour: str
    width: float
    title: str
    dashed: bool = False


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: int = 12
    colour: str = "#1a202c"
    middle: bool = True
    bold: bool = False


Shape = Rect | Line | Text
Point = tuple[float, float]


@dataclass
class Scene:
    width: float
    height: float
    shapes: list[Shape] = field(default_factory=list)
    sessions: list[tuple[str, str, str]] = field(default_factory=list)
    """(a, b, state) per drawn session, a < b."""


@dataclass
class _Box:
    name: str
    kind: str
    lines: list[str]
    x: float = 0.0
    y: float = 0.0

    @property
    def height(self) -> float:
        return 26 + LINE_H * len(self.lines)

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + BOX_W / 2, self.y + self.height / 2


def session_colour(state: str) -> str:
    return STATE_COLOURS[session_health(state)]


def session_health(state: str) -> str:
    """up (Established), down (idle, down, absent), pending (connect, active, open...)."""
    word = state.strip().lower()
    if word == "established":
        return "up"
    if not word or any(w in word for w in ("idle", "down", "absent", "stop")):
        return "down"
    return "pending"


def _boxes(plan: LabPlan, status: dict[str, Any]) -> dict[str, _Box]:
    by_node = {n["name"]: n for n in status.get("nodes", [])}
    boxes: dict[str, _Box] = {}
    for node in plan.nodes:
        seen = by_node.get(node.name, {})
        blocks = sorted(r.split()[1] for r in seen.get("routes", []) if r.startswith("blackhole "))
        felix = "felix serving" if seen.get("felix_serving") else "felix NOT serving"
        role = "route reflector" if node.route_reflector else "node"
        lines = [f"{node.address.ip} · AS {node.asn}", f"{role} · {felix}"]
        lines += [f"announces {b}" for b in blocks] or ["announces no block yet"]
        boxes[node.name] = _Box(node.name, "rr" if node.route_reflector else "node", lines)
    for tor in plan.tors:
        daemon = str(plan.options.tor).upper()
        lines = [f"ToR · {daemon} · AS {tor.asn}", f"rack {tor.rack}: {tor.rack_address.network}"]
        boxes[tor.name] = _Box(tor.name, "tor", lines)
    return boxes


def _layout(plan: LabPlan, boxes: dict[str, _Box]) -> tuple[float, float]:
    """Place the boxes; the scene's width and height (room for the legend below)."""
    _place(plan, boxes)
    right = max((b.x + BOX_W for b in boxes.values()), default=2 * BOX_W)
    bottom = max((b.y + b.height for b in boxes.values()), default=100.0)
    return max(right + GAP, 2 * (BOX_W + GAP)), bottom + 30


def _place(plan: LabPlan, boxes: dict[str, _Box]) -> None:
    step = BOX_W + GAP
    top = 70.0
    nodes = [boxes[n.name] for n in plan.nodes]
    if plan.tors:
        racks = [[boxes[n.name] for n in plan.nodes if n.rack == t.rack] for t in plan.tors]
        x: float = GAP
        for tor, members in zip(plan.tors, racks, strict=True):
            span = max(1, len(members)) * step
            box = boxes[tor.name]
            box.x, box.y = x + (span - step) / 2, top + 30
            for i, member in enumerate(members):
                member.x, member.y = x + i * step, top + 30 + box.height + 90
            x += span + GAP
        return
    if plan.options.topology == "rr":
        rows = [[b for b in nodes if b.kind == "rr"], [b for b in nodes if b.kind != "rr"]]
        width = max(len(r) for r in rows) * step + GAP
        y = top
        for row in rows:
            x = (width - len(row) * step + GAP) / 2
            for box in row:
                box.x, box.y = x, y
                x += step
            y += max((b.height for b in row), default=0) + 110
        return
    # mesh: a circle, so that every one of the n(n-1)/2 sessions is a distinct chord.
    count = len(nodes)
    radius = 0.0 if count == 1 else max(160.0, count * step / (2 * math.pi))
    tallest = max((b.height for b in nodes), default=0)
    cx, cy = radius + BOX_W / 2 + GAP, top + radius + tallest / 2 + 10
    for i, box in enumerate(nodes):
        angle = -math.pi / 2 + 2 * math.pi * i / max(1, count)
        box.x = cx + radius * math.cos(angle) - BOX_W / 2
        box.y = cy + radius * math.sin(angle) - box.height / 2


def _sessions(plan: LabPlan, status: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(a, b) with a < b → every state reported for that session, by either end."""
    names = {str(n.address.ip): n.name for n in plan.nodes}
    names |= {str(t.rack_address.ip): t.name for t in plan.tors}
    names |= {str(t.spine_address.ip): t.name for t in plan.tors}
    found: dict[tuple[str, str], list[str]] = {}

    def report(a: str, b: str, state: str) -> None:
        if a != b:
            found.setdefault((min(a, b), max(a, b)), []).append(state)

    for node in status.get("nodes", []):
        for peer in (node.get("speaker") or {}).get("peers", []):
            other = names.get(str(peer.get("address", "")))
            if other is not None:
                report(node["name"], other, str(peer.get("state", "")))
    for tor in status.get("tors", []):
        for session in tor.get("sessions", []):
            other = names.get(str(session.get("address", "")))
            if other is not None:
                report(tor["name"], other, str(session.get("state", "")))
    return found


def _worst(states: list[str]) -> str:
    order = {"down": 0, "pending": 1, "up": 2}
    return min(states, key=lambda s: order[session_health(s)])


def build_scene(plan: LabPlan, status: dict[str, Any]) -> Scene:
    boxes = _boxes(plan, status)
    width, height = _layout(plan, boxes)
    options = plan.options
    scene = Scene(width, height + 40)
    title = f"lab {options.name}: {options.topology}, {len(plan.nodes)} nodes"
    if plan.tors:
        title += f", {len(plan.tors)} racks behind {options.tor.upper()} ToRs"
    title += f", encap {options.encap}"
    scene.shapes.append(Text(GAP, 30, title, size=16, middle=False, bold=True))
    if plan.tors:
        y = min(boxes[t.name].y for t in plan.tors) - 30
        spine = Line(GAP / 2, y, width - GAP / 2, y, "#718096", 4, "spine 10.200.255.0/24")
        scene.shapes.append(spine)
        scene.shapes.append(Text(GAP / 2, y - 8, "spine 10.200.255.0/24", size=11, middle=False))
        for tor in plan.tors:
            box = boxes[tor.name]
            scene.shapes.append(
                Line(box.centre[0], y, box.centre[0], box.y, "#718096", 2, f"{tor.name} uplink")
            )
    for (a, b), states in sorted(_sessions(plan, status).items()):
        state = _worst(states)
        (x1, y1), (x2, y2) = boxes[a].centre, boxes[b].centre
        label = f"BGP {a} ↔ {b}: {state or 'unknown'}"
        scene.shapes.append(
            Line(x1, y1, x2, y2, session_colour(state), 3, label, session_health(state) != "up")
        )
        scene.sessions.append((a, b, state))
    for box in boxes.values():
        fill, stroke = PALETTE[box.kind]
        scene.shapes.append(Rect(box.x, box.y, BOX_W, box.height, fill, stroke, box.name))
        scene.shapes.append(Text(box.x + BOX_W / 2, box.y + 18, box.name, size=13, bold=True))
        for i, line in enumerate(box.lines):
            y = box.y + 34 + i * LINE_H
            scene.shapes.append(Text(box.x + BOX_W / 2, y, line, size=10, colour="#2d3748"))
    x = GAP
    for health, word in (("up", "Established"), ("pending", "connecting"), ("down", "down")):
        y = scene.height - 20
        colour = STATE_COLOURS[health]
        scene.shapes.append(Line(x, y - 4, x + 30, y - 4, colour, 3, f"legend {word}"))
        scene.shapes.append(Text(x + 36, y, word, size=11, middle=False))
        x += 130
    return scene


def render_svg(scene: Scene) -> str:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{scene.width:.0f}" '
        f'height="{scene.height:.0f}" viewBox="0 0 {scene.width:.0f} {scene.height:.0f}" '
        'font-family="DejaVu Sans, Verdana, sans-serif">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    for shape in scene.shapes:
        if isinstance(shape, Rect):
            out.append(
                f"<g><title>{escape(shape.title)}</title>"
                f'<rect x="{shape.x:.1f}" y="{shape.y:.1f}" width="{shape.w:.1f}" '
                f'height="{shape.h:.1f}" rx="8" fill="{shape.fill}" stroke="{shape.stroke}" '
                'stroke-width="2"/></g>'
            )
        elif isinstance(shape, Line):
            dash = ' stroke-dasharray="8 5"' if shape.dashed else ""
            out.append(
                f"<g><title>{escape(shape.title)}</title>"
                f'<line x1="{shape.x1:.1f}" y1="{shape.y1:.1f}" x2="{shape.x2:.1f}" '
                f'y2="{shape.y2:.1f}" stroke="{shape.colour}" stroke-width="{shape.width}"'
                f"{dash}/></g>"
            )
        else:
            anchor = "middle" if shape.middle else "start"
            weight = ' font-weight="bold"' if shape.bold else ""
            out.append(
                f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" font-size="{shape.size}" '
                f'fill="{shape.colour}" text-anchor="{anchor}"{weight}>'
                f"{escape(shape.text)}</text>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",)
_BOLD_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",)


class NoPillow(Exception):
    """The PNG needs Pillow, an optional extra (the node image goes without it)."""


def render_png(scene: Scene, path: Path, scale: float = 1.5) -> None:
    """Draw `scene` with Pillow (DejaVu when installed, else Pillow's own font)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise NoPillow(
            f"{path}: the PNG needs Pillow: pip install 'gingham[graph]' (or the test extras)"
        ) from None

    fonts: dict[tuple[int, bool], Any] = {}

    def font(size: int, bold: bool) -> Any:
        key = (size, bold)
        if key not in fonts:
            candidates = _BOLD_FONTS if bold else _FONTS
            found = next((f for f in candidates if Path(f).is_file()), None)
            px = round(size * scale)
            fonts[key] = ImageFont.truetype(found, px) if found else ImageFont.load_default(size=px)
        return fonts[key]

    def s(v: float) -> float:
        return v * scale

    image = Image.new("RGB", (round(s(scene.width)), round(s(scene.height))), "#ffffff")
    draw = ImageDraw.Draw(image)
    for shape in scene.shapes:
        if isinstance(shape, Rect):
            draw.rounded_rectangle(
                (s(shape.x), s(shape.y), s(shape.x + shape.w), s(shape.y + shape.h)),
                radius=s(8),
                fill=shape.fill,
                outline=shape.stroke,
                width=round(s(2)),
            )
        elif isinstance(shape, Line):
            width = max(1, round(s(shape.width)))
            if shape.dashed:
                for a, b in _dashes(shape, on=8, off=5):
                    draw.line((s(a[0]), s(a[1]), s(b[0]), s(b[1])), fill=shape.colour, width=width)
            else:
                draw.line(
                    (s(shape.x1), s(shape.y1), s(shape.x2), s(shape.y2)),
                    fill=shape.colour,
                    width=width,
                )
        else:
            draw.text(
                (s(shape.x), s(shape.y)),
                shape.text,
                fill=shape.colour,
                font=font(shape.size, shape.bold),
                anchor="ms" if shape.middle else "ls",
            )
    image.save(path, "PNG")


def _dashes(line: Line, on: float, off: float) -> list[tuple[Point, Point]]:
    length = math.hypot(line.x2 - line.x1, line.y2 - line.y1)
    if length == 0:
        return []
    dx, dy = (line.x2 - line.x1) / length, (line.y2 - line.y1) / length
    out = []
    t = 0.0
    while t < length:
        end = min(length, t + on)
        out.append(((line.x1 + dx * t, line.y1 + dy * t), (line.x1 + dx * end, line.y1 + dy * end)))
        t = end + off
    return out


def output_paths(target: str | None, lab: str) -> tuple[Path, Path]:
    """`-o FILE`: FILE with .svg and .png suffixes (either given, or none); default ./<lab>."""
    base = Path(target) if target else Path(f"{lab}-graph")
    if base.suffix.lower() in (".svg", ".png"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".svg"), base.with_name(base.name + ".png")


def write_graph(plan: LabPlan, status: dict[str, Any], svg: Path, png: Path) -> Scene:
    """Both pictures; the SVG is written first, so it is there even when `NoPillow` is raised."""
    scene = build_scene(plan, status)
    svg.write_text(render_svg(scene))
    render_png(scene, png)
    return scene
