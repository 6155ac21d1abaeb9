"""Executors: they only schedule. Given units in dependency order and a function that runs one
unit, an executor runs every unit after its dependencies and reports each one it finishes.

The units' results do not depend on where or in which order they run (pipeline/units.py),
so every executor writes the same store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Protocol, Sequence

from pipeline.plan import Unit
from pipeline.registry import Registry


class Progress(Protocol):
    """What an executor reports: a unit started (where the executor knows it), a unit finished."""

    def started(self, unit: Unit) -> None: ...

    def finished(self, unit: Unit) -> None: ...


class Executor(ABC):
    """Runs a graph of units: `work(unit)` does one unit; `progress` hears of each one finished.

    The first unit to raise stops the run: no new unit starts and the error propagates; what
    was finished is kept, so running again resumes.
    """

    @abstractmethod
    def run(self, units: Sequence[Unit], work: Callable[[Unit], None], progress: Progress) -> None: ...


EXECUTORS: Registry[type[Executor]] = Registry("executor")


@EXECUTORS.register("serial")
class SerialExecutor(Executor):
    """Every unit in this process, one after the other, in plan order."""

    def run(self, units: Sequence[Unit], work: Callable[[Unit], None], progress: Progress) -> None:
        for unit in units:
            progress.started(unit)
            work(unit)
            progress.finished(unit)
