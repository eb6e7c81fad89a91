"""One base class for every error the package raises on bad input.

The CLI catches ``MedsslError`` and prints its message as one line (exit code 2); anything else is a bug
and keeps its traceback. Subclasses also derive from ``ValueError`` so callers that caught the old
per-module errors as ``ValueError`` keep working.
"""
from __future__ import annotations


class MedsslError(ValueError):
    """Bad input: the message names the file, key or parameter and what was expected."""
