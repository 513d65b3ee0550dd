"""Charts drawn on the server as inline SVG: no script, no CDN, readable without JavaScript.

Each chart is an `<svg role="img">` with a title and a description; pages put the same
figures in a table beside it for screen readers and for copying. Colours are the
Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), and only
presentation attributes are used (the pages' Content-Security-Policy allows no inline style).
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape


def _grouped(value: float) -> str:
    return f"{value:,.0f}"

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#999999", "#882255", "#44AA99", "#117733")


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _scale(value: int) -> tuple[int, int]:
    """(top of the axis, number of ticks): whole numbers on every tick."""
    if value <= 4:
        return max(value, 1), max(value, 1)
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 4, 5, 10):
        top = int(step * magnitude)
        if top >= value and top % 4 == 0:
            return top, 4
    return value + (-value) % 4, 4


def stacked_columns(chart_id: str, title: str, description: str, categories: list[str],
                    series: list[tuple[str, list[int]]], *, width: int = 720, height: int = 280,
                    number: Callable[[float], str] = _grouped) -> Markup:
    """Vertical stacked columns: one column per category (e.g. month), one colour per series.
    `number` writes every figure (the page's language, through Babel)."""
    left, right, top, bottom = 48, 12, 12, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    top_value, ticks = _scale(max(totals, default=0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-d">{escape(description)}</desc>']
    for tick in range(ticks + 1):
        value = top_value * tick / ticks
        y = top + plot_h - plot_h * tick / ticks
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d0d7de"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#57606a">'
                     f'{escape(number(round(value)))}</text>')
    slot = plot_w / max(len(categories), 1)
    bar = min(slot * 0.7, 48)
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for j, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / top_value
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour(j)}">'
                         f'<title>{escape(category)} · {escape(name)}: {escape(number(value))}</title></rect>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11" '
                     f'fill="#1b1f24">{escape(category)}</text>')
        if totals[i]:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10" '
                         f'fill="#57606a">{escape(number(totals[i]))}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#57606a"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bars(chart_id: str, title: str, description: str, categories: list[str],
                 series: list[tuple[str, list[int]]], *, width: int = 720, row: int = 28,
                 number: Callable[[float], str] = _grouped) -> Markup:
    """Horizontal stacked bars: one bar per category (e.g. list), one colour per series (e.g. state).
    `number` writes every figure (the page's language, through Babel)."""
    label_w, right, top = 300, 48, 8
    height = top * 2 + row * max(len(categories), 1)
    plot_w = width - label_w - right
    totals = [sum(values[i] for _, values in series) for i in range(len(categories))]
    top_value = max(max(totals, default=0), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-d">{escape(description)}</desc>']
    for i, category in enumerate(categories):
        y = top + row * i
        label = category if len(category) <= 40 else category[:39] + "…"
        parts.append(f'<text x="{label_w - 8}" y="{y + row * 0.62:.1f}" text-anchor="end" font-size="12" '
                     f'fill="#1b1f24">{escape(label)}</text>')
        x = float(label_w)
        for j, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            w = plot_w * value / top_value
            parts.append(f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{colour(j)}">'
                         f'<title>{escape(category)} · {escape(name)}: {escape(number(value))}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + row * 0.62:.1f}" font-size="11" fill="#57606a">'
                     f'{escape(number(totals[i]))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def swatch(index: int) -> Markup:
    return Markup(f'<svg width="12" height="12" aria-hidden="true" focusable="false">'
                  f'<rect width="12" height="12" rx="2" fill="{colour(index)}"/></svg>')


class GraphNode:
    """A box of the ownership graph: a name (cut to fit; whole in its tooltip), what it is to the
    entity (role, share), and a link to its page when it is a known entity."""

    __slots__ = ("name", "caption", "href", "dashed")

    def __init__(self, name: str, caption: str, href: str | None = None, *, dashed: bool = False):
        self.name, self.caption, self.href, self.dashed = name, caption, href, dashed


def _cut(text: str, size: int = 12) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def ownership_graph(chart_id: str, title: str, description: str, centre: str, owners: list[GraphNode],
                    below: list[GraphNode]) -> Markup:
    """The entity in the middle; who owns or controls it above, with arrows pointing to it; below,
    its officers (joined by a dashed line) and the firms it holds (arrows from it)."""
    box_w, box_h, gap, row_h = 180, 52, 16, 110
    columns = max(len(owners), len(below), 1)
    width = max(720, columns * (box_w + gap) + gap)
    rows = [row for row in (owners, None, below) if row is None or row]
    height = len(rows) * row_h - (row_h - box_h) + 2 * gap
    cid = escape(chart_id)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="{cid}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-labelledby="{cid}-t {cid}-d">',
             f'<title id="{cid}-t">{escape(title)}</title>', f'<desc id="{cid}-d">{escape(description)}</desc>',
             f'<defs><marker id="{cid}-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
             'markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/></marker></defs>']
    centre_y = gap + (row_h if owners else 0)
    centre_w = min(max(box_w, 14 * len(centre) + 24), width - 2 * gap)  # the entity's whole name where it fits
    centre_x = (width - centre_w) / 2

    def row_x(count: int, i: int) -> float:
        span = count * box_w + (count - 1) * gap
        return (width - span) / 2 + i * (box_w + gap)

    def box(x: float, y: float, name: str, caption: str, fill: str, href: str | None, dashed: bool = False,
            w: float = box_w) -> None:
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        shown = _cut(name, max(12, int((w - 24) // 14)))
        shape = (f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{box_h}" rx="6" fill="{fill}" '
                 f'stroke="#57606a"{dash}/>'
                 f'<text x="{x + w / 2:.1f}" y="{y + (22 if caption else 31):.1f}" text-anchor="middle" '
                 f'font-size="13" fill="#1b1f24">{escape(shown)}</text>'
                 + (f'<text x="{x + w / 2:.1f}" y="{y + 40:.1f}" text-anchor="middle" font-size="11" '
                    f'fill="#57606a">{escape(_cut(caption, 22))}</text>' if caption else ""))
        tip = f'<title>{escape(name)}{" · " + escape(caption) if caption else ""}</title>'
        parts.append(f'<a href="{escape(href)}">{tip}{shape}</a>' if href else f'<g>{tip}{shape}</g>')

    for i, node in enumerate(owners):
        x = row_x(len(owners), i)
        parts.append(f'<line x1="{x + box_w / 2:.1f}" y1="{gap + box_h}" x2="{width / 2:.1f}" '
                     f'y2="{centre_y:.1f}" stroke="#57606a" marker-end="url(#{cid}-arrow)"/>')
        box(x, gap, node.name, node.caption, "#e8f1fa", node.href)
    below_y = centre_y + row_h
    for i, node in enumerate(below):
        x = row_x(len(below), i)
        line = ' stroke-dasharray="4 3"' if node.dashed else f' marker-end="url(#{cid}-arrow)"'
        parts.append(f'<line x1="{width / 2:.1f}" y1="{centre_y + box_h:.1f}" x2="{x + box_w / 2:.1f}" '
                     f'y2="{below_y:.1f}" stroke="#57606a"{line}/>')
        box(x, below_y, node.name, node.caption, "#ffffff" if node.dashed else "#eaf6ef", node.href, node.dashed)
    box(centre_x, centre_y, centre, "", "#fff4e0", None, w=centre_w)  # drawn last: over the lines that meet it
    parts.append("</svg>")
    return Markup("".join(parts))
