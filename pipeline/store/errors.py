"""User-facing errors: a message naming the problem and a hint naming the fix."""

from __future__ import annotations


class PruneScopeError(Exception):
    """An error the user can cause and fix; the CLI prints it without a traceback."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(problem if fix is None else f"{problem}\n  fix: {fix}")

    def __reduce__(self) -> tuple:
        return type(self), (self.problem, self.fix)


class Problem(PruneScopeError):
    """One problem of a run found by validation: the file, what is wrong, the fix; an error
    (the file or the run cannot be read) or a warning (read with a default or a cast)."""

    def __init__(self, where: str, what: str, fix: str | None = None, error: bool = True) -> None:
        self.where = where
        self.what = what
        self.error = error
        super().__init__(f"{where}: {what}", fix)

    def __reduce__(self) -> tuple:
        return type(self), (self.where, self.what, self.fix, self.error)

    @classmethod
    def of(cls, exc: PruneScopeError, where: str) -> "Problem":
        """An error raised while reading `where`, as a problem of the run."""
        return exc if isinstance(exc, Problem) else cls(where, exc.problem, exc.fix)
