"""The shared state of the views: combinations (model × evaluation set) and the selection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.store import EvalSet, PruneScopeError


@dataclass(frozen=True)
class Combo:
    """A model evaluated on one evaluation set; `key` (`model|fog-3`) is its form in dropdowns and stores."""

    model_id: str
    corruption: str
    severity: int

    @property
    def set(self) -> EvalSet:
        return EvalSet(self.corruption, self.severity)

    @property
    def key(self) -> str:
        return f"{self.model_id}|{self.set.name}"

    @property
    def evalset(self) -> str:
        return self.set.label

    @classmethod
    def parse(cls, key: str | None) -> "Combo | None":
        """The combination of a key from the browser (None for None or a malformed key)."""
        if not key or not isinstance(key, str) or key.count("|") != 1:
            return None
        model_id, name = key.split("|")
        try:
            es = EvalSet.parse(name)
        except PruneScopeError:
            return None
        return cls(model_id, es.corruption, es.severity)


def selected_ids(selection: dict[str, Any] | None) -> set[int] | None:
    """The selected sample ids, or None when nothing is selected."""
    if not selection or selection.get("samples") is None:
        return None
    return {int(i) for i in selection["samples"]}


def make_selection(ids: list[int] | None, source: str) -> dict[str, Any] | None:
    return None if ids is None else {"samples": sorted({int(i) for i in ids}), "source": source}


def highlighted_models(highlight: dict[str, Any] | None) -> set[str] | None:
    """The models of a group brushed in the similarity map (`ids.MODEL_HIGHLIGHT`), or None when none is."""
    if not highlight or highlight.get("models") is None:
        return None
    return {str(m) for m in highlight["models"]}
