"""The one error a model file that cannot be used raises: which file, what is wrong, what was expected."""

from __future__ import annotations

import os


class ModelFileError(ValueError):
    """A model file cannot be used: empty, truncated, of another type, or its weights do not fit.

    Subclasses name the kind of model (``kind``) and what a usable file is (``expected``).
    """

    kind = "model"
    expected = "a model file"

    def __init__(self, path: str | os.PathLike, problem: str, expected: str | None = None):
        self.path, self.problem = str(path), problem
        self.expected = type(self).expected if expected is None else expected
        super().__init__(f"{self.kind} file {self.path}: {problem}; expected {self.expected}")

    def __reduce__(self):
        # Rebuilt from its parts, so it survives pickling (e.g. from a worker process).
        return type(self), (self.path, self.problem, self.expected)
