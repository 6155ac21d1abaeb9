"""Subplot grids as plain layout dicts: make_subplots' domains without its per-call cost.

Building a figure from one dict (traces anchored to "x7"/"y7", axes with domains) is several
times faster than make_subplots followed by add_trace(row, col) and update_xaxes(row, col).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    """One subplot: its trace anchors and its paper-coordinate domain."""

    xaxis: str
    yaxis: str
    x: tuple[float, float]
    y: tuple[float, float]

    @property
    def anchors(self) -> dict[str, str]:
        return {"xaxis": self.xaxis, "yaxis": self.yaxis}

    @property
    def xkey(self) -> str:
        return "xaxis" + self.xaxis[1:]

    @property
    def ykey(self) -> str:
        return "yaxis" + self.yaxis[1:]


def grid(
    rows: int,
    cols: int,
    row_heights: list[float] | None = None,
    col_widths: list[float] | None = None,
    hspace: float = 0.02,
    vspace: float = 0.05,
) -> tuple[list[list[Cell]], dict]:
    """Cells[r][c] (row 0 on top) and the layout's axis entries for a rows × cols grid."""
    heights = row_heights or [1.0] * rows
    widths = col_widths or [1.0] * cols
    free_w, free_h = 1.0 - hspace * (cols - 1), 1.0 - vspace * (rows - 1)
    ws = [w / sum(widths) * free_w for w in widths]
    hs = [h / sum(heights) * free_h for h in heights]
    cells, axes = [], {}
    for r in range(rows):
        row = []
        top = 1.0 - sum(hs[:r]) - vspace * r
        for c in range(cols):
            k = r * cols + c + 1
            suffix = "" if k == 1 else str(k)
            left = sum(ws[:c]) + hspace * c
            cell = Cell(f"x{suffix}", f"y{suffix}", (left, min(1.0, left + ws[c])), (max(0.0, top - hs[r]), top))
            axes[cell.xkey] = {"domain": list(cell.x), "anchor": cell.yaxis}
            axes[cell.ykey] = {"domain": list(cell.y), "anchor": cell.xaxis}
            row.append(cell)
        cells.append(row)
    return cells, axes


def title(cell: Cell, text: str, size: int = 11) -> dict:
    """A subplot title annotation centred above `cell`."""
    return {
        "text": text,
        "x": sum(cell.x) / 2,
        "y": cell.y[1],
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": size},
    }


def note(cell: Cell, text: str, x: float, y: float, font: dict) -> dict:
    """A text at (x, y) in `cell`'s own domain coordinates (0–1 across the subplot)."""
    return {
        "text": text,
        "showarrow": False,
        "xref": f"{cell.xaxis} domain",
        "yref": f"{cell.yaxis} domain",
        "x": x,
        "y": y,
        "font": font,
    }


def merge_axes(axes: dict, updates: dict) -> dict:
    """Axis entries with per-axis settings merged in."""
    return {k: {**v, **updates.get(k, {})} for k, v in axes.items()}
