"""`Reader`: typed values out of a parsed recipe document, every error collected."""

from __future__ import annotations

import numbers


def format_path(path):
    """`("stages", 1, "targets", "fc1")` -> `stages[1].targets.fc1`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


class Reader:
    """Reads values out of a parsed recipe document, collecting every error.

    Each check appends `FILE:LINE: PATH: expected ... Received: ...` to `errors`
    and returns None, so one pass reports every problem.

    Args:
        filename: the recipe's file name, for the messages.
        lines: `{path tuple: line}` from `tfadmm.recipes.yaml_source.parse_yaml`.
    """

    def __init__(self, filename, lines):
        self.filename = filename
        self.lines = lines
        self.errors = []

    def fail(self, path, expected, received):
        self.errors.append(
            f"{self.where(path)}: {format_path(path)}: expected {expected}. Received: {received!r}"
        )

    def where(self, path):
        for end in range(len(path), -1, -1):
            if tuple(path[:end]) in self.lines:
                return f"{self.filename}:{self.lines[tuple(path[:end])]}"
        return self.filename

    def line_of(self, error):
        """The line number an error message starts with (0 when it has none)."""
        head = error[len(self.filename) + 1:].split(":", 1)[0]
        return int(head) if error.startswith(self.filename + ":") and head.isdigit() else 0

    def mapping(self, value, path, keys, *, required=False):
        """The dict at `path` (None if absent); unknown keys are errors."""
        if value is None:
            if required:
                self.fail(path, "a mapping", value)
            return None
        if not isinstance(value, dict):
            self.fail(path, "a mapping", value)
            return None
        for key in value:
            if key not in keys:
                self.fail(path + (key,), f"one of the keys {', '.join(keys)}", key)
        return {k: v for k, v in value.items() if k in keys}

    def number(self, value, path, *, low=None, high=None, low_open=False, high_open=False,
               integer=False, none_ok=False):
        if value is None and none_ok:
            return None
        kind = "an integer" if integer else "a number"
        bounds = ""
        if low is not None and high is not None:
            bounds = f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            bounds = f" {'>' if low_open else '>='} {low}"
        expected = kind + bounds + (" or null" if none_ok else "")
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok and integer:
            ok = float(value).is_integer()
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            self.fail(path, expected, value)
            return None
        return int(value) if integer else float(value)

    def build(self, path, make, *args, **kwargs):
        """`make(*args, **kwargs)`; a `ValueError` it raises becomes an error at `path`."""
        try:
            return make(*args, **kwargs)
        except ValueError as error:
            self.errors.append(f"{self.where(path)}: {format_path(path)}: {error}")
            return None

    def boolean(self, value, path):
        if not isinstance(value, bool):
            self.fail(path, "true or false", value)
            return None
        return value

    def string(self, value, path, *, choices=None, pattern=None, what="a string"):
        if choices is not None and value not in choices:
            self.fail(path, f"one of {', '.join(choices)}", value)
            return None
        if not isinstance(value, str) or not value or (pattern and not pattern.match(value)):
            self.fail(path, what, value)
            return None
        return value


class _AnyKey(tuple):
    def __contains__(self, key):
        return True


#: `Reader.mapping(..., keys=ANY_KEY)`: a mapping whose keys are free (layer patterns).
ANY_KEY = _AnyKey()
