"""Atomic writes, content hashing and validated caches.

Nothing is ever half-written: data goes to a temporary file in the target folder, which is then renamed
over the target in one step (``os.replace`` is atomic on POSIX and Windows). A cache file
(:func:`cached_arrays`) carries the key it was built for and a digest of its arrays; a file that cannot be read,
holds another key, fails its digest or the caller's check is rebuilt (with a warning saying why), never trusted.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
import zlib
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_arrays(target: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` to a compressed ``.npz`` atomically."""
    target = Path(target)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return target


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` (no pickled objects)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def content_hash(obj: Any, length: int = 16) -> str:
    """Stable hex digest of a JSON-serializable object (keys sorted) or of a NumPy array."""
    h = hashlib.sha256()
    if isinstance(obj, np.ndarray):
        h.update(str((obj.dtype.str, obj.shape)).encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    else:
        h.update(json.dumps(obj, sort_keys=True, default=str).encode())
    return h.hexdigest()[:length]


def json_default(value):
    """``json.dumps(..., default=json_default)``: NumPy scalars as Python numbers, arrays as lists; anything else
    is refused with its type named.

    >>> json.dumps({"n": np.int64(3), "v": np.arange(2)}, default=json_default)
    '{"n": 3, "v": [0, 1]}'
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


_KEY, _DIGEST = "__cache_key__", "__cache_digest__"


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """One digest over named arrays (names sorted; each array's dtype, shape and bytes)."""
    return content_hash({name: content_hash(np.asarray(arrays[name]), length=64) for name in sorted(arrays)}, 64)


def cached_arrays(path: str | Path, key: str, build: Callable[[], dict[str, np.ndarray]],
                  check: Callable[[dict[str, np.ndarray]], None] | None = None,
                  use_cache: bool = True) -> dict[str, np.ndarray]:
    """The arrays cached at ``path`` for ``key``, else ``build()`` saved there atomically.

    A cached file is used only if it reads as a plain ``.npz``, was written for ``key``, matches the digest
    written with it and passes ``check(arrays)`` (which raises ``ValueError`` on a mismatch: shapes, index
    ranges); otherwise it is rebuilt and replaced, with a warning naming the file and the reason. A cache that
    cannot be written (read-only folder, full disk) leaves a warning and the built arrays are returned."""
    path = Path(path)
    if use_cache and path.exists():
        try:
            return _load_cache(path, key, check)
        except (ValueError, KeyError, OSError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error) as err:
            warnings.warn(f"cache {path} is unusable ({err}); rebuilding it", RuntimeWarning, stacklevel=2)
    arrays = build()
    if use_cache:
        try:
            save_arrays(path, {**arrays, _KEY: np.array(key), _DIGEST: np.array(arrays_digest(arrays))})
        except OSError as err:
            warnings.warn(f"cache {path} could not be written ({err}); going on without it", RuntimeWarning,
                          stacklevel=2)
    return arrays


def _load_cache(path: Path, key: str, check) -> dict[str, np.ndarray]:
    arrays = load_arrays(path)
    stored_key, digest = arrays.pop(_KEY, None), arrays.pop(_DIGEST, None)
    if stored_key is None:
        raise ValueError("it carries no key (written by an older version, or not a cache)")
    if str(stored_key) != key:
        raise ValueError(f"it was written for another input (key {stored_key}, expected {key})")
    if digest is None or str(digest) != arrays_digest(arrays):
        raise ValueError("its arrays do not match the digest written with them")
    if check is not None:
        check(arrays)
    return arrays
