"""Plots drawn on the server as inline SVG: sparklines for the overview, small line charts with
their scale for a subscription. No script runs to draw them; each has a text alternative."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def _scale(values: Sequence[float | None]) -> float:
    known = [v for v in values if v is not None]
    return max(known) if known and max(known) > 0 else 1.0


def _paths(values: Sequence[float | None], width: float, height: float, top: float) -> str:
    """SVG path data: one run per stretch of known values (gaps stay gaps)."""
    if not values:
        return ""
    step = width / max(len(values) - 1, 1)
    runs, pen = [], "M"
    for i, v in enumerate(values):
        if v is None:
            pen = "M"
            continue
        y = height - (v / top) * height
        lone = (i + 1 >= len(values) or values[i + 1] is None) and pen == "M"
        runs.append(f"{pen}{i * step:.1f},{y:.1f}" + (" h0.5" if lone else ""))  # a dot
        pen = "L"
    return " ".join(runs)


def _number(value: float) -> str:
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.1f}"


def sparkline(
    values: Sequence[float | None], label: str, css: str = "spark", width: int = 120,
    height: int = 24,
) -> Markup:
    known = [v for v in values if v is not None]
    summary = (
        f"{label}: last {_number(known[-1])}, peak {_number(max(known))}" if known
        else f"{label}: no data yet"
    )
    top = _scale(values)
    path = _paths(values, width - 2, height - 2, top)
    return Markup(
        f'<svg class="{escape(css)}" role="img" aria-label="{escape(summary)}" '
        f'width="{width}" height="{height}" viewBox="-1 -1 {width} {height}">'
        f"<title>{escape(summary)}</title>"
        f'<path d="{path}" fill="none" stroke="currentColor" stroke-width="1.5" '
        f'stroke-linecap="round"/></svg>'
    )


def chart(
    values: Sequence[float | None], label: str, unit: str, css: str = "chart", span: str = "",
    width: int = 480, height: int = 120,
) -> Markup:
    """A line chart with its peak and a baseline labelled, over the time the values cover."""
    known = [v for v in values if v is not None]
    top = _scale(values)
    summary = (
        f"{label}: last {_number(known[-1])} {unit}, peak {_number(max(known))} {unit}" if known
        else f"{label}: no data yet"
    )
    inner_w, inner_h, left = width - 50, height - 20, 46
    path = _paths(values, inner_w, inner_h, top)
    return Markup(
        f'<svg class="{escape(css)}" role="img" aria-label="{escape(summary)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{escape(summary)}</title>"
        f'<g class="axis"><line x1="{left}" y1="4" x2="{left}" y2="{inner_h + 4}"/>'
        f'<line x1="{left}" y1="{inner_h + 4}" x2="{width}" y2="{inner_h + 4}"/>'
        f'<text x="{left - 4}" y="12" text-anchor="end">{escape(_number(top))}</text>'
        f'<text x="{left - 4}" y="{inner_h + 4}" text-anchor="end">0</text>'
        f'<text x="{left}" y="{height - 2}">{escape(span)} ago</text>'
        f'<text x="{width - 2}" y="{height - 2}" text-anchor="end">now ({escape(unit)})</text></g>'
        f'<g transform="translate({left},4)"><path d="{path}" fill="none" '
        f'stroke="currentColor" stroke-width="1.5" stroke-linecap="round"/></g></svg>'
    )
