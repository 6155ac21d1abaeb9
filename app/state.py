"""The shared state of the views: combinations (model × evaluation set) and the selection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.store import EvalSet


@dataclass(frozen=True)
class Combo:
    """A model evaluated on one evaluation set; `key` is its form in dropdowns and stores."""

    model_id: str
    corruption: str
    severity: int

    @property
    def key(self) -> str:
        return f"{self.model_id}|{self.corruption}|{self.severity}"

    @property
    def evalset(self) -> str:
        return EvalSet(self.corruption, self.severity).label

    @classmethod
    def parse(cls, key: str | None) -> "Combo | None":
        """The combination of a key from the browser (None for None or a malformed key)."""
        if not key or not isinstance(key, str) or key.count("|") != 2:
            return None
        model_id, corruption, severity = key.split("|")
        try:
            return cls(model_id, corruption, int(severity))
        except ValueError:
            return None


def selected_ids(selection: dict[str, Any] | None) -> set[int] | None:
    """The selected sample ids, or None when nothing is selected."""
    if not selection or selection.get("samples") is None:
        return None
    return {int(i) for i in selection["samples"]}


def make_selection(ids: list[int] | None, source: str) -> dict[str, Any] | None:
    return None if ids is None else {"samples": sorted({int(i) for i in ids}), "source": source}
