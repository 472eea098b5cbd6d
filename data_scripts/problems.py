"""Problems found while preparing a dataset, and the fatal error type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class PrepareError(Exception):
    """A user-facing error: the message is one line naming the path and the problem.

    ``problems`` lists the per-pair problems found before the failure (may be empty).
    """

    def __init__(self, message: str, problems: "list[Problem] | None" = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


@dataclass(frozen=True, order=True)
class Problem:
    """One problem with the input data; the pair it concerns is skipped (or ``--strict`` fails).

    ``kind`` is a short machine-readable tag (``missing_mask``, ``missing_image``,
    ``ambiguous``, ``unreadable``, ``size_mismatch``, ``not_binarizable``,
    ``duplicate``, ``empty``, ``split``, ``layout``); ``message`` is the one-line
    human-readable description that names the file(s) involved.
    """

    path: str
    kind: str
    message: str

    @classmethod
    def at(cls, path: Path | str, kind: str, message: str) -> "Problem":
        """Build a problem about ``path``."""
        return cls(str(path), kind, message)

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form used in ``dataset.json``."""
        return {"kind": self.kind, "path": self.path, "message": self.message}


class ProblemsFound(PrepareError):
    """Raised in ``--strict`` mode when any problem was found (nothing is written)."""

    def __init__(self, problems: list[Problem], src: Path) -> None:
        n = len(problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} found under {src}; nothing written (--strict)", problems)
