"""Files written so that nothing half-written is ever read: atomic writes, and JSON that every reader
can parse (Python's json writes NaN and Infinity, which are not JSON).

Atomic writes: a reader sees the old complete folder or the new complete one, never half of one.

A folder cannot be swapped in one rename, so for an instant between the two renames the target is
absent (the old copy sits in `.NAME.old-*` beside it); it is never a partly written folder. A process killed
there, or while writing `.NAME.tmp-*`, leaves those behind: `recover_directory` (run by the next write, and
by a resumed run before it reads its state) puts the old copy back and removes the rest.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from mtst.errors import MtstError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _share_files(directory: Path) -> None:
    """Files get the mode the umask allows, as open() gives them: some writers (safetensors) make them 0600."""
    mode = 0o666 & ~_umask()
    for path in directory.rglob("*"):
        if path.is_file():
            path.chmod(mode)


def recover_directory(target: str | Path) -> bool:
    """Undoes what an interrupted `atomic_directory` left: the old copy goes back in place when the target is
    missing; half-written temporary folders are removed. Whether `target` exists now."""
    target = Path(target)
    if not target.parent.is_dir():
        return False
    if not target.exists():
        olds = sorted(target.parent.glob(f".{target.name}.old-*/{target.name}"), key=lambda p: p.stat().st_mtime)
        if olds:
            os.replace(olds[-1], target)
    for stale in [*target.parent.glob(f".{target.name}.tmp-*"), *target.parent.glob(f".{target.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)
    return target.exists()


@contextlib.contextmanager
def atomic_directory(target: str | Path):
    """Yields a temporary folder beside `target`; on success it replaces `target` by renames."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700); a checkpoint is shared like any folder
    try:
        yield tmp
        _share_files(tmp)
        _fsync_tree(tmp)
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def refuse_to_replace(target: str | Path, marker: str, overwrite: bool = False, keep: str | Path | None = None) -> None:
    """Before `atomic_directory(target)` replaces what is there: a file, or a non-empty folder without `marker`
    (the file that says mtst wrote it), is kept unless `overwrite`; `keep` and any folder holding it always are.
    Checked before the work, so a refusal costs nothing."""
    target = Path(target)
    if keep is not None:
        kept = Path(keep).resolve()
        if target.resolve() == kept or target.resolve() in kept.parents:
            raise MtstError(f"{target}: writing here would replace {keep}; choose another folder")
    if overwrite or not (target.exists() or target.is_symlink()):
        return
    if not target.is_dir():
        raise MtstError(f"{target}: a file is there, not a folder; choose another path, or pass --overwrite")
    if any(target.iterdir()) and not (target / marker).is_file():
        problem = f"the folder holds files mtst did not write (no {marker}); choose a new or empty folder"
        raise MtstError(f"{target}: {problem}, or pass --overwrite to replace it")


@contextlib.contextmanager
def atomic_file(path: str | Path):
    """Yields a temporary path beside `path`; on success it is fsynced and renamed over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes it private (0600)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


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
