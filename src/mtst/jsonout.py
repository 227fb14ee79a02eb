"""JSON as every reader can parse it: Python's json writes NaN and Infinity, which are not JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

from mtst.checkpoint import write_text_atomic
from mtst.errors import MtstError


def _first_non_finite(value, where: str = "") -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'value'} = {value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, item in items:
        found = _first_non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def dumps(value, what: str, **kwargs) -> str:
    """`json.dumps` refusing NaN and infinity with one line naming `what` and the key that holds one."""
    try:
        return json.dumps(value, allow_nan=False, **kwargs)
    except ValueError:
        raise MtstError(f"{what}: refusing to write a non-finite number ({_first_non_finite(value)})") from None


def write_json_atomic(path: str | Path, value, **kwargs) -> None:
    write_text_atomic(path, dumps(value, str(path), **kwargs))
