"""Safe file reading and writing for the loaders.

* Text files (plain or ``.gz``) are read through :func:`open_text`: only regular files (a device such as
  ``/dev/zero`` or a pipe is refused), UTF-8 (a byte-order mark is skipped), every line bounded by
  :data:`MAX_LINE_CHARS` (a file without line breaks cannot fill the memory), and every decoding failure (latin-1
  bytes, a truncated or corrupt ``.gz``) turned into a :class:`DataError` naming the file.
* ``.npy`` matrices are memory-mapped (:func:`load_matrix`), never read whole, never unpickled; a file that is
  empty, truncated, a renamed ``.npz`` or not ``.npy`` at all is a :class:`DataError` naming it.
* A bundle of files is written as one unit (:func:`write_bundle`): into a temporary folder beside the target,
  with a manifest of sizes and SHA-256 checksums, then swapped in; an interrupted write leaves the previous
  bundle as it was. :func:`verify_manifest` lets a reader refuse a bundle whose files come from different saves.
"""
from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from .dataset import DataError, FileRows, row_label

MAX_LINE_CHARS = 1 << 22  # 4 Mi characters: a sequence line of ~500,000 items; far beyond any real row
MANIFEST = "bundle.json"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is a plain file-name stem (letters, digits, ``.``, ``_``, ``-``; no separator, not starting
    with a dot), else a ``ValueError``: a name like ``'../x'`` must not write outside its folder."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(f"{what} {name!r} is not a plain file name; expected letters, digits, '.', '_' or '-' "
                         "(at most 128, not starting with '.'), with no path separator")
    return name


def _check_regular(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file (a folder, device or pipe); expected a data file")


class BoundedText(io.TextIOBase):
    """A read-only text stream over ``raw`` that raises :class:`DataError` when a line exceeds ``limit``
    characters, or when decoding fails (bad UTF-8, a damaged ``.gz``), naming ``path``."""

    def __init__(self, raw: io.TextIOBase, path: Path, limit: int = MAX_LINE_CHARS):
        super().__init__()
        self._raw, self._path, self._limit = raw, path, limit
        self._run = 0  # characters since the last line break
        self._line = 1

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        if size is None or size < 0:
            return "".join(iter(lambda: self.read(1 << 16), ""))
        return self._take(self._guard(lambda: self._raw.read(min(size, self._limit))))

    def readline(self, size: int | None = -1) -> str:
        cap = self._limit + 1 if size is None or size < 0 else min(size, self._limit + 1)
        return self._take(self._guard(lambda: self._raw.readline(cap)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.readline, "")

    def close(self) -> None:
        self._raw.close()
        super().close()

    def _guard(self, read: Callable[[], str]) -> str:
        try:
            return read()
        except UnicodeDecodeError as err:
            raise DataError(f"{self._path}: line {_undecodable_line(self._path)}: bytes that are not UTF-8 ({err.reason} at "
                            f"{err.object[err.start:err.end]!r}); expected UTF-8 text (re-encode the file, e.g. "
                            "from latin-1)") from err
        except _GZIP_ERRORS as err:
            raise DataError(f"{self._path}: truncated or corrupt gzip data near line {self._line} ({err}); "
                            "expected a complete .gz file") from err

    def _take(self, chunk: str) -> str:
        """Track the current line's length over chunks (a chunk is at most ``limit`` long, so a line that
        lies wholly inside one is within the limit)."""
        first, last = chunk.find("\n"), chunk.rfind("\n")
        run = self._run + (len(chunk) if first < 0 else first)
        if run > self._limit:
            raise DataError(f"{self._path}: line {self._line} is longer than {self._limit:,} characters; expected "
                            "one record per line (is this the right file?)")
        if first >= 0:
            self._line += chunk.count("\n")
            self._run = len(chunk) - last - 1
        else:
            self._run = run
        return chunk


def _undecodable_line(path: Path) -> int | str:
    """The line holding the first byte sequence that is not UTF-8 (text streams decode in large chunks, so the
    line being read when decoding fails can be far earlier): a second, binary pass, run only on that error."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as err:
                    return line + block[:max(err.start - len(err.object) + len(block), 0)].count(b"\n")
                line += block.count(b"\n")
    except (OSError, *_GZIP_ERRORS):
        pass
    return "?"


def open_text(path: str | Path, limit: int = MAX_LINE_CHARS) -> BoundedText:
    """Open a regular UTF-8 text file, gzip-compressed when it ends in ``.gz``, as a :class:`BoundedText`."""
    path = Path(path)
    _check_regular(path)
    if path.suffix == ".gz":
        raw = gzip.open(path, "rt", encoding="utf-8-sig", newline=None)
    else:
        raw = open(path, encoding="utf-8-sig", newline=None)
    return BoundedText(raw, path, limit)


def read_table(path: str | Path, columns: tuple[str, ...],
               header: Callable[[list[str]], None] | None = None) -> tuple[pd.DataFrame, FileRows]:
    """A tab-separated text file as strings named ``columns``, and a :class:`FileRows` giving each row's line.
    ``header(fields)``, when given, checks the first line (and raises) before the body is read. Blank lines are
    skipped; a row with another number of fields, or an empty field, is a :class:`DataError` naming its line."""
    path, n = Path(path), len(columns)
    with open_text(path) as fh:
        if header is not None:
            header(fh.readline().rstrip("\r\n").split("\t"))
        first = 1 + (header is not None)
        try:  # no names: a row with more fields than the first one is a parser error, never shifted or cut
            raw = pd.read_csv(fh, sep="\t", header=None, dtype=str, keep_default_na=False, skip_blank_lines=False)
        except pd.errors.EmptyDataError:
            raw = pd.DataFrame(columns=range(n))
        except pd.errors.ParserError as err:
            raise DataError(f"{path}: {_field_count_error(str(err), n, first)}; expected {n} tab-separated fields "
                            "per row") from err
    blank = (raw == "").all(axis=1).to_numpy()
    source = FileRows(path, lines=np.flatnonzero(~blank) + first)
    raw = raw[~blank].reset_index(drop=True)
    if len(raw) and raw.shape[1] != n:
        raise DataError(f"{path}: {row_label(source, 0)} has {raw.shape[1]} tab-separated fields; expected {n}")
    raw.columns = list(columns)
    empty = (raw == "").any(axis=1).to_numpy()
    if empty.any():
        raise DataError(f"{path}: {row_label(source, int(np.flatnonzero(empty)[0]))}: empty field(s); expected {n} "
                        "tab-separated fields")
    return raw, source


def _field_count_error(message: str, n: int, first: int) -> str:
    """Where the row with the wrong number of fields is, from pandas' "Expected K fields in line N, saw M"
    (pandas takes K from the first data row, so a K other than ``n`` means that row is the bad one)."""
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if found is None:
        return f"malformed row ({message.strip()})"
    expected, line, saw = map(int, found.groups())
    if expected != n:
        return f"the first data row has {expected} fields"
    return f"line {line + first - 1} has {saw} fields"


def check_fields(table: pd.DataFrame, source: FileRows, patterns: dict[str, tuple[str, str]]) -> None:
    """Raise :class:`DataError` at the first value of a column that does not fully match its regular expression:
    ``patterns`` maps column -> (pattern, what was expected)."""
    for column, (pattern, expected) in patterns.items():
        bad = ~table[column].str.fullmatch(pattern).to_numpy(dtype=bool)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{source}: {row_label(source, row)}: {column} is {table[column].iloc[row][:60]!r}; "
                            f"expected {expected}")


def read_json_items(path: str | Path, n_items: int | None = None) -> tuple[dict, int]:
    """A JSON object keyed by item index, ``{"0": ..., "1": ...}``, and its number of items; keys must be
    ``'0'..'n-1'`` (``n = n_items`` when given)."""
    path = Path(path)
    try:
        with open_text(path) as fh:
            raw = json.loads(fh.read())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from err
    n = len(raw) if isinstance(raw, dict) and n_items is None else n_items
    if not isinstance(raw, dict) or sorted(raw, key=lambda k: (len(k), k)) != [str(i) for i in range(n)]:
        raise DataError(f"{path}: expected an object with keys '0'..'{(n or 1) - 1}' (one per item, in order)")
    return raw, n


def read_item_json(path: str | Path, fields: tuple[str, ...], n_items: int | None = None) -> pd.DataFrame:
    """An item metadata file ``{"0": {field: text, ...}, "1": ...}`` as a table ordered by index, one column per
    ``field`` (a missing or null field reads as empty)."""
    raw, n = read_json_items(path, n_items)
    for key, entry in raw.items():
        if not isinstance(entry, dict) or not all(isinstance(entry.get(f), (str, type(None))) for f in fields):
            raise DataError(f"{path}: item {key}: expected an object whose {', '.join(fields)} are strings "
                            "(or null, read as empty)")
    return pd.DataFrame([{f: raw[str(i)].get(f) or "" for f in fields} for i in range(n)], columns=list(fields))


def load_matrix(path: str | Path) -> np.ndarray:
    """A 2-D real-valued ``.npy`` matrix, memory-mapped copy-on-write (pages are read when used; the file is never
    changed). Refuses, naming the file: an empty or truncated file, a ``.npz`` archive renamed ``.npy``, other
    formats, object arrays (never unpickled), 0-D/1-D/3-D arrays, complex or non-numeric dtypes, zero columns."""
    path = Path(path)
    _check_regular(path)
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if not magic:
        raise DataError(f"{path}: empty file (0 bytes); expected a .npy float matrix")
    if magic.startswith(_ZIP_MAGIC):
        raise DataError(f"{path}: a zip archive (an .npz renamed .npy?); expected a plain .npy float matrix")
    if magic != _NPY_MAGIC:
        raise DataError(f"{path}: not a .npy file (starts with {magic!r}); expected a .npy float matrix")
    try:
        X = np.load(path, mmap_mode="c", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: unreadable .npy ({err}; truncated, or an object array); expected a .npy float "
                        "matrix") from err
    if X.ndim != 2:
        raise DataError(f"{path}: array of shape {X.shape}; expected a 2-D (n_items, d) matrix")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer)):
        raise DataError(f"{path}: dtype {X.dtype}; expected real numbers (float or integer)")
    if X.shape[1] == 0:
        raise DataError(f"{path}: matrix of shape {X.shape} has no columns; expected d >= 1 features per item")
    return X


# ----------------------------------------------------------------------------------------------- bundles
def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_bundle(folder: str | Path, writers: dict[str, Callable[[Path], None]], owned: Callable[[str], bool],
                 kind: str) -> Path:
    """Write the files ``name -> writer(path)`` as one unit into ``folder`` (replacing a previous bundle there).

    The files and a manifest (:data:`MANIFEST`: each file's size and SHA-256) go to a temporary folder beside
    ``folder``, which is then swapped in for it (the old folder is renamed aside, the new one renamed in, the
    old one deleted), under an exclusive lock (:func:`bundle_lock`), which readers share, so that neither a
    second writer nor a reader sees a half-swapped bundle. A failure while writing (a full disk, an error in a
    writer, an interrupt) leaves the previous bundle untouched and no temporary folder behind. ``folder`` may
    only hold files the bundle owns (``owned(name)``) and the manifest: other files are refused, not deleted.
    The folder is resolved first (``.`` or a symbolic link name the real folder) and keeps its permissions."""
    folder = Path(folder).resolve()
    for name in writers:
        check_name(name, "file name")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder}: exists and is not a folder; expected a folder for the {kind}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with bundle_lock(folder, shared=False):
        mode = stat.S_IMODE(folder.stat().st_mode) if folder.exists() else 0o777 & ~_UMASK
        if folder.exists():
            foreign = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and not owned(p.name))
            if foreign:
                raise ValueError(f"{folder}: holds files that are not part of this {kind} ({', '.join(foreign[:5])}); "
                                 f"a save replaces the whole folder, so choose an empty folder or one holding only "
                                 f"this {kind}")
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
        try:
            for name, write in writers.items():
                write(tmp / name)
            manifest = {"kind": kind, "files": {n: {"bytes": (tmp / n).stat().st_size, "sha256": file_digest(tmp / n)}
                                                for n in writers}}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            os.chmod(tmp, mode)
            _swap_in(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for leftover in (*folder.parent.glob(f".{folder.name}.tmp-*"), *folder.parent.glob(f".{folder.name}.old-*")):
            shutil.rmtree(leftover, ignore_errors=True)  # from an earlier save that died midway
    return folder


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: changing the umask later would race with other threads


def _swap_in(tmp: Path, folder: Path) -> None:
    if not folder.exists():
        os.rename(tmp, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.rmdir(old)
    os.rename(folder, old)
    try:
        os.rename(tmp, folder)
    except BaseException:  # an OSError or an interrupt between the two renames: put the previous bundle back
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def bundle_lock(folder: Path, shared: bool) -> Iterator[None]:
    """A lock on the bundle ``folder`` (the file ``.<name>.lock`` beside it; POSIX ``flock``): exclusive for a
    writer, which creates the file, shared for readers, which never create it (reading leaves no trace: a folder
    no writer of this module has touched has no lock file and needs none; the first save renames its folder in
    whole). Where ``flock`` does not exist, nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = folder.parent / f".{folder.name}.lock"
    try:
        fh = open(path, "r") if shared else open(path, "a")
    except OSError:  # a reader where no writer has been, or an unwritable folder
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def verify_manifest(folder: Path, present: list[str]) -> None:
    """If ``folder`` has a manifest, check that the bundle files ``present`` are exactly the ones it lists, with
    their sizes and checksums; a :class:`DataError` naming the first mismatch otherwise. No manifest: nothing to
    check (bundles made by other tools)."""
    path = folder / MANIFEST
    if not path.exists():
        return
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["files"]
        assert isinstance(listed, dict)
    except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: unreadable manifest ({err}); delete it to load the files without checks") from err
    extra, missing = sorted(set(present) - set(listed)), sorted(set(listed) - set(present))
    if extra or missing:
        raise DataError(f"{folder}: files do not match {MANIFEST} (not listed: {extra or 'none'}; missing: "
                        f"{missing or 'none'}): the folder mixes files from different saves")
    for name, entry in listed.items():
        if not isinstance(entry, dict):
            raise DataError(f"{path}: entry {name!r} is {entry!r}; expected {{'bytes': ..., 'sha256': ...}} (delete the "
                            "manifest to load the files without checks)")
        size = (folder / name).stat().st_size
        if size != entry.get("bytes") or file_digest(folder / name) != entry.get("sha256"):
            raise DataError(f"{folder / name}: does not match its checksum in {MANIFEST} (changed or damaged since "
                            "the bundle was saved, or from another save)")
