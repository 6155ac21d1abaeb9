"""User-facing errors: a message naming the problem and a hint naming the fix."""

from __future__ import annotations


class PruneScopeError(Exception):
    """An error the user can cause and fix; the CLI prints it without a traceback."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")
