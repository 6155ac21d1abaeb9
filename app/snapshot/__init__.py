"""What a view gives the HTML snapshot, and the HTML of its cards.

Each view module with a `snapshot(ctx: Context) -> Part` function draws its own part of the
snapshot with the same functions its callbacks use; `app.export` only loops over the views
and writes the page. `snapshot.js` (next to this file) links the parts in the browser.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from app.figures import Figure
from app.reader import StoreReader
from app.state import Combo

TAGS = re.compile(r"^[A-Z][a-z0-9]*$")
EMPTY_TAGS = {"img", "br", "hr"}
CAMEL = re.compile("[A-Z]")


@dataclass(frozen=True)
class Context:
    """The comparison a snapshot shows: reference and compared on one evaluation set, the class in focus."""

    reader: StoreReader
    run: str
    names: list[str]
    ref: Combo
    cmp: Combo | None
    focus: int
    margin_label: str = "margin"  # the run's margin definition (pipeline.store.margin_label)


@dataclass
class Part:
    """A view's share of the page: its cards (`html`, whose `<div id="fig-KEY">` the script fills
    with `figures[KEY]`), the figures whose markers select samples (`linked`: their customdata
    are sample ids, or rows that start with one) and data the linking script reads under the view's name."""

    html: str
    figures: dict[str, Figure] = field(default_factory=dict)
    linked: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)


def fig(key: str) -> str:
    """The placeholder the script draws figure `key` into."""
    return f'<div id="fig-{key}" class="fig"></div>'


def section(title: str, help_text: str, body: str, size: str = "wide", ident: str | None = None) -> str:
    """A card of the page: a title that explains itself on hover, then `body` (HTML).
    `size`: wide (the whole row), left / right (7:5 of a row) or third."""
    attr = f' id="{html.escape(ident)}"' if ident else ""
    return (
        f'<section class="card {size}"{attr}><h2 title="{html.escape(help_text)}">{html.escape(title)}</h2>'
        f"{body}</section>"
    )


def _kebab(name: str) -> str:
    return CAMEL.sub(lambda m: "-" + m.group(0).lower(), name)


def to_html(node: Any) -> str:
    """HTML of a tree of `dash.html` components or their elements (app.views.common.element), what a
    view's callback returns, so that the snapshot shows the view's own markup; text and attributes are
    escaped."""
    if node is None:
        return ""
    if isinstance(node, (list, tuple)):
        return "".join(to_html(n) for n in node)
    if isinstance(node, (str, int, float)):
        return html.escape(str(node))
    element = isinstance(node, dict)  # an element as the renderer receives it (app.views.common.element)
    tag = str(node.get("type", "")) if element else type(node).__name__
    namespace = node.get("namespace") if element else getattr(node, "_namespace", "")
    if not TAGS.match(tag) or namespace != "dash_html_components":
        raise TypeError(f"to_html renders dash.html components, not {tag}")
    props = node.get("props", {}) if element else node.to_plotly_json()["props"]
    tag = tag.lower()
    attrs = []
    for key, value in props.items():
        if key == "children" or value is None:
            continue
        name = {"className": "class", "htmlFor": "for"}.get(key, key)
        if key == "style":
            value = ";".join(f"{_kebab(k)}:{v}" for k, v in value.items())
        attrs.append(f' {name}="{html.escape(str(value))}"')
    opening = f"<{tag}{''.join(attrs)}>"
    return opening if tag in EMPTY_TAGS else f"{opening}{to_html(props.get('children'))}</{tag}>"
