"""Executor packages: a reproducible zip of an executor folder, and its safe extraction.

Reproducible means the same files with the same contents and executable bits give the same
bytes (and sha256), whatever their mtimes, owners or creation order:

- entries are the regular files only (no directory entries), sorted by their POSIX path;
- every entry has the date 1980-01-01 00:00:00, `create_system` 3 (Unix) and mode 0644, or
  0755 when the file is executable by its owner;
- every entry is deflated with zlib's default level (6).

Left out: `.git` (at any depth), what the folder's root `.gitignore` makes git ignore
(`GitIgnore`: git's rules; a folder git ignores is left out whole), `__pycache__/`,
`*.pyc`/`*.pyo`, and virtual environments (any directory holding a `pyvenv.cfg`, whatever its
name). Symlinks are refused: a package must not contain them.

The client must not import `chalicelib`; the server checks uploads again with
chalicelib/packages.py, which is authoritative: `extract_package` repeats its entry rules,
limits and YAML checks for pulls (tests/test_package_rules.py pins the two together).
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterable

from nshub.errors import InvalidPackage

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXEC_MODE = 0o755
CHUNK = 1 << 20

ALWAYS_EXCLUDED_DIRS = frozenset({".git", "__pycache__"})
ALWAYS_EXCLUDED_SUFFIXES = (".pyc", ".pyo")

# Limits for extraction (the server applies the same ones before a version is visible). The
# server's limit on unpacked bytes is configurable: a pull uses the one `GET /v1/config` gives,
# this one when the server does not say.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_RATIO = 200
RATIO_MIN_BYTES = 1024 * 1024


class PackagingError(InvalidPackage, ValueError):
    """An executor folder that cannot be packed, or a package that cannot be extracted.

    An `nshub.errors.InvalidPackage` (so the CLI prints it like the server's), and a ValueError.
    """


# --------------------------------------------------------------------------- config.yml

# The server's YAML rules (chalicelib/packages.py): config.yml and manifest.yml at most 1 MiB,
# safe YAML; a `jtype` of at most 200 characters; the manifest's fields small, as the server
# stores them with every version.
MAX_YAML_BYTES = 1024 * 1024
MAX_JTYPE = 200
MAX_DESCRIPTION, MAX_URL, MAX_KEYWORDS, MAX_KEYWORD = 2000, 500, 30, 50


def _load_yaml(path: Path, shown: str) -> object:
    import yaml

    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise PackagingError(f"{shown} is {size} bytes, more than {MAX_YAML_BYTES}")
    try:
        with path.open("rb") as fh:
            return yaml.safe_load(fh)
    except yaml.constructor.ConstructorError as exc:
        raise PackagingError(
            f"{shown} is not safe YAML ({exc.problem}): remove python/ tags"
        ) from None
    except yaml.YAMLError as exc:
        raise PackagingError(f"{shown} is not valid YAML: {_yaml_problem(exc)}") from None


def _load_config(folder: Path, where: str) -> object:
    """config.yml of `folder`, parsed; `where` prefixes its name in messages ("" in a package)."""
    path = folder / "config.yml"
    if not path.is_file():
        raise PackagingError(
            f"{folder} has no config.yml: an executor folder needs a config.yml with a `jtype`"
            if where else "the package has no config.yml at its root: an executor folder "
            "needs a config.yml with a `jtype`")
    return _load_yaml(path, where + "config.yml")


def read_executor_name(folder: str | os.PathLike) -> str | None:
    """The executor's name from config.yml: `metas.name`, else `jtype`, else None."""
    try:
        config = _load_config(Path(folder), f"{Path(folder)}{os.sep}")
    except PackagingError:
        return None
    return executor_name_in(config) if isinstance(config, dict) else None


def executor_name_in(config: dict) -> str | None:
    """The executor's name in a parsed config.yml: `metas.name`, else `jtype`, else None."""
    metas = config.get("metas")
    if isinstance(metas, dict) and isinstance(metas.get("name"), str) and metas["name"].strip():
        return metas["name"].strip()
    jtype = config.get("jtype")
    if isinstance(jtype, str) and jtype.strip():
        return jtype.strip()
    return None


def check_executor_folder(folder: str | os.PathLike) -> dict:
    """Raise PackagingError unless `folder` has a config.yml mapping with a `jtype` (and a
    manifest.yml, if any, the server accepts); returns the config."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PackagingError(f"{folder} is not a directory: push an executor folder")
    return _check_executor_yaml(folder, f"{folder}{os.sep}")


def _check_executor_yaml(folder: Path, where: str) -> dict:
    config = _load_config(folder, where)
    if not isinstance(config, dict):
        raise PackagingError(f"{where}config.yml must be a mapping with a `jtype`")
    jtype = config.get("jtype")
    if not isinstance(jtype, str) or not jtype.strip():
        raise PackagingError(f"{where}config.yml has no `jtype`: add e.g. `jtype: MyExecutor`")
    if len(jtype) > MAX_JTYPE:
        raise PackagingError(f"{where}config.yml `jtype` is longer than {MAX_JTYPE} characters")
    if (folder / "manifest.yml").is_file():
        _check_manifest(_load_yaml(folder / "manifest.yml", where + "manifest.yml"),
                        where + "manifest.yml")
    return config


def _check_manifest(data: object, shown: str) -> None:
    if data is None:
        return
    if not isinstance(data, dict):
        raise PackagingError(f"{shown} must be a mapping (description, keywords, url)")
    for key, limit in (("description", MAX_DESCRIPTION), ("url", MAX_URL)):
        if data.get(key) is not None:
            if not isinstance(data[key], str):
                raise PackagingError(f"{shown} `{key}` must be a string")
            if len(data[key]) > limit:
                raise PackagingError(f"{shown} `{key}` is longer than {limit} characters")
    keywords = data.get("keywords")
    if keywords is not None:
        if not isinstance(keywords, list) or not all(isinstance(k, str) for k in keywords):
            raise PackagingError(f"{shown} `keywords` must be a list of strings")
        if len(keywords) > MAX_KEYWORDS or any(len(k) > MAX_KEYWORD for k in keywords):
            raise PackagingError(
                f"{shown} `keywords`: at most {MAX_KEYWORDS}, of {MAX_KEYWORD} characters each")


# --------------------------------------------------------------------------- packing


class GitIgnore:
    """The rules of a `.gitignore`, matched as git matches them (gitignore(5)).

    The last rule that matches a path decides; a rule ending in `/` matches folders only; a rule
    with a `/` before its end is anchored at the folder of the `.gitignore`, else it matches at
    any depth; `**` spans folders. A walk asks about a folder before entering it and leaves an
    ignored folder out whole, as git does: nothing below it can be re-included (`build/` then
    `!build/keep.txt` keeps nothing), while `data/**` then `!data/keep.txt` keeps data/keep.txt.
    """

    def __init__(self, lines: Iterable[str]):
        self._rules: list[tuple[re.Pattern[str], bool, bool]] = []  # (regex, negated, dirs only)
        for line in lines:
            rule = _TRAILING_SPACES.sub("", line)
            if not rule or rule.startswith("#"):
                continue
            negated = rule.startswith("!")
            rule = rule[1:] if negated else rule
            dirs_only = rule.endswith("/")
            rule = rule[:-1] if dirs_only else rule
            if not rule:
                continue
            anchored = "/" in rule
            try:
                regex = _glob_regex(rule[1:] if rule.startswith("/") else rule)
                compiled = re.compile(regex if anchored else "(?:.*/)?" + regex, re.S)
            except (ValueError, re.error):  # `[z-a]`, `foo[`, `foo\`: git matches nothing
                continue
            self._rules.append((compiled, negated, dirs_only))

    @classmethod
    def of_folder(cls, root: Path) -> "GitIgnore | None":
        """The rules of `root/.gitignore`, or None without one."""
        path = root / ".gitignore"
        if not path.is_file():
            return None
        # utf-8-sig: an editor's byte order mark is not part of the first rule, for git either
        return cls(path.read_text(encoding="utf-8-sig", errors="replace").splitlines())

    def ignores(self, path: str, *, is_dir: bool) -> bool:
        """Whether git ignores `path` (POSIX, relative to the root), its parents not ignored."""
        for regex, negated, dirs_only in reversed(self._rules):
            if (is_dir or not dirs_only) and regex.fullmatch(path):
                return not negated
        return False


_TRAILING_SPACES = re.compile(r"(?<!\\) +$")  # git drops trailing spaces, unless escaped
_POSIX_CLASSES = {"alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "digit": "0-9", "lower": "a-z",
                  "upper": "A-Z", "space": " \\t\\n\\r\\f\\v", "blank": " \\t",
                  "xdigit": "0-9a-fA-F", "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
                  "print": "\\x20-\\x7e", "graph": "\\x21-\\x7e", "cntrl": "\\x00-\\x1f\\x7f"}


def _glob_regex(glob: str) -> str:
    """The regex of a gitignore glob (without its `!` and trailing `/`) for a whole path."""
    segments = glob.split("/")
    out = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if len(segment) >= 2 and set(segment) == {"*"}:  # `**` (and `***`, as git reads it)
            out.append(".*" if last else "(?:.*/)?")  # anything below / zero or more folders
        else:
            out.append(_segment_regex(segment) + ("" if last else "/"))
    return "".join(out)


def _segment_regex(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        c = segment[i]
        i += 1
        if c == "\\":
            if i == len(segment):
                raise ValueError("a pattern ending in a backslash matches nothing")
            out.append(re.escape(segment[i]))
            i += 1
        elif c == "*":
            while i < len(segment) and segment[i] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = _bracket_end(segment, i)
            if end is None:
                raise ValueError("an unclosed bracket matches nothing")
            out.append(_bracket_regex(segment[i:end]))
            i = end + 1
        else:
            out.append(re.escape(c))
    return "".join(out)


def _bracket_end(segment: str, start: int) -> int | None:
    """The index of the `]` closing a bracket expression opened before `start`, or None."""
    i = start + (segment[start:start + 1] in ("!", "^"))
    i += segment[i:i + 1] == "]"  # a leading ']' is literal
    while i < len(segment):
        if segment[i] == "\\":
            i += 2
        elif segment.startswith("[:", i) and (close := segment.find(":]", i + 2)) != -1:
            i = close + 2
        elif segment[i] == "]":
            return i
        else:
            i += 1
    return None


def _bracket_regex(body: str) -> str:
    negated = body[:1] in ("!", "^")
    body = body[1:] if negated else body
    out, i = [], 0
    last = None  # the character just taken literally: a `-` after it makes a range
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            last = body[i + 1]
            out.append(re.escape(last))
            i += 2
        elif body.startswith("[:", i) and (close := body.find(":]", i + 2)) != -1:
            if body[i + 2:close] not in _POSIX_CLASSES:
                return "(?!)"  # git matches nothing with an unknown class
            out.append(_POSIX_CLASSES[body[i + 2:close]])
            last, i = None, close + 2
        elif body[i] == "-" and last is not None and i + 1 < len(body):
            high = body[i + 2] if body[i + 1] == "\\" and i + 2 < len(body) else body[i + 1]
            if high >= last:  # git: `[z-a]` is `[z]`, the range matches nothing
                out.append("-" + re.escape(high))
            last, i = None, i + (3 if body[i + 1] == "\\" and i + 2 < len(body) else 2)
        else:
            last = body[i]
            out.append(re.escape(last))
            i += 1
    return f"(?!/)[{'^' if negated else ''}{''.join(out)}]"


def list_package_files(folder: str | os.PathLike) -> list[tuple[str, Path]]:
    """Sorted `(archive name, path)` of the files that go into the package."""
    root = Path(folder)
    gitignore = GitIgnore.of_folder(root)
    found: list[tuple[str, Path]] = []

    def walk(directory: Path, rel: PurePosixPath | None) -> None:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            name = entry.name
            arc = str(rel / name) if rel else name
            path = Path(entry.path)
            is_dir = entry.is_dir(follow_symlinks=False)
            if is_dir:
                if name in ALWAYS_EXCLUDED_DIRS or (path / "pyvenv.cfg").exists():
                    continue
                if gitignore is not None and gitignore.ignores(arc, is_dir=True):
                    continue
            else:
                if name == ".git" or name.endswith(ALWAYS_EXCLUDED_SUFFIXES):
                    continue
                if gitignore is not None and gitignore.ignores(arc, is_dir=False):
                    continue
            if entry.is_symlink():
                raise PackagingError(
                    f"{arc} is a symlink (-> {os.readlink(entry.path)}): packages must not "
                    "contain symlinks; replace it with a copy or list it in .gitignore"
                )
            if is_dir:
                walk(path, PurePosixPath(arc))
            elif entry.is_file(follow_symlinks=False):
                found.append((arc, path))
            else:
                raise PackagingError(
                    f"{arc} is not a regular file (device, fifo or socket): remove it "
                    "or list it in .gitignore"
                )

    walk(root, None)
    found.sort(key=lambda item: item[0])
    return found


def pack_executor_to(folder: str | os.PathLike, fileobj: BinaryIO, *,
                     checked: bool = False) -> list[str]:
    """Write the package of `folder` to a seekable binary `fileobj`; return the archive names.

    Raises PackagingError for a folder without a valid config.yml (not read again when the
    caller `checked` it with `check_executor_folder`), or with symlinks.
    """
    folder = Path(folder)
    if not checked:
        check_executor_folder(folder)
    files = list_package_files(folder)
    names = [arc for arc, _ in files]
    if "config.yml" not in names:
        raise PackagingError("config.yml is excluded by .gitignore: the package needs it")
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        for arc, path in files:
            st = path.stat()
            info = zipfile.ZipInfo(arc, date_time=FIXED_DATE)
            info.create_system = 3
            mode = EXEC_MODE if st.st_mode & stat.S_IXUSR else FILE_MODE
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = st.st_size
            with path.open("rb") as src, zf.open(info, "w", force_zip64=st.st_size >= 2**31) as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    return names


def pack_executor(folder: str | os.PathLike) -> tuple[str, str, int]:
    """Pack `folder` into a temporary zip; return `(path, sha256 hex, size)`.

    The caller owns the file and deletes it when done.
    """
    tmp = pack_executor_file(folder)
    try:
        digest, size = hashlib.sha256(), 0
        with open(tmp, "rb") as fh:
            for chunk in iter(lambda: fh.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, digest.hexdigest(), size


def pack_executor_file(folder: str | os.PathLike, *, checked: bool = False) -> str:
    """Pack `folder` into a temporary zip and return its path, unhashed (an upload hashes it);
    `checked` as for `pack_executor_to`. The caller owns the file and deletes it when done."""
    fd, tmp = tempfile.mkstemp(prefix="nshub-executor-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as fh:
            pack_executor_to(folder, fh, checked=checked)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


# --------------------------------------------------------------------------- extraction


def check_entry_name(name: str) -> PurePosixPath:
    """The safe relative path of a zip entry, or PackagingError."""
    if not name or "\x00" in name or any(ord(c) < 0x20 for c in name):
        raise PackagingError(f"package entry {name!r} has an empty name or control characters")
    if "\\" in name:
        raise PackagingError(f"package entry {name!r} contains a backslash")
    if name.startswith("/"):
        raise PackagingError(f"package entry {name!r} is an absolute path")
    if len(name) >= 2 and name[1] == ":" and name[0].isalpha():
        raise PackagingError(f"package entry {name!r} starts with a drive letter")
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise PackagingError(f"package entry {name!r} contains '..'")
    if any(p in ("", ".") for p in parts):
        raise PackagingError(f"package entry {name!r} has an empty or '.' component")
    return PurePosixPath(*parts)


_SPECIAL = {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
            stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}


def _entry_kind(info: zipfile.ZipInfo) -> str:
    """"file" or "dir" (a name ending in '/'), or PackagingError for anything else."""
    fmt = stat.S_IFMT(info.external_attr >> 16)
    if fmt == stat.S_IFLNK or fmt in _SPECIAL:
        kind = "symlink" if fmt == stat.S_IFLNK else _SPECIAL[fmt]
        raise PackagingError(
            f"package contains a {kind}: {info.filename}; packages hold regular files only")
    is_dir = info.filename.endswith("/")
    if fmt == stat.S_IFDIR and not is_dir:
        raise PackagingError(f"package entry {info.filename!r} is a folder without a trailing '/'")
    return "dir" if is_dir else "file"


def extract_package(
    zip_path: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_entries: int = MAX_ENTRIES,
    max_ratio: int = MAX_RATIO,
) -> Path:
    """Extract a package into `dest` (which must not exist, or be empty) and return it.

    Refuses what the server refuses (chalicelib/packages.py): absolute paths, `..`,
    backslashes, drive letters, symlinks, special files, duplicates, too many entries, too
    many bytes, zip bombs, entries whose bytes do not match their header, and a package
    without a valid config.yml (or with an invalid manifest.yml). Files are extracted into a
    sibling staging directory which is renamed to `dest` only when everything is written and
    checked, so `dest` is either complete or absent.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackagingError(f"{dest} already exists and is not empty: choose an empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackagingError(f"{zip_path} is not a zip file: {exc}") from None
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with zf:
            plan = _plan(zf.infolist(), max_entries, max_unpacked_bytes, max_ratio)
            budget = max_unpacked_bytes
            for rel, info, kind in plan:
                target = staging.joinpath(*rel.parts)
                if kind == "dir":
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                mode = EXEC_MODE if (info.external_attr >> 16) & stat.S_IXUSR else FILE_MODE
                written = 0
                try:
                    with zf.open(info) as src, open(target, "xb") as out:
                        while True:
                            chunk = src.read(min(CHUNK, info.file_size - written + 1))
                            if not chunk:
                                break
                            written += len(chunk)
                            if written > info.file_size or written > budget:
                                raise PackagingError(
                                    f"package entry {info.filename!r} is larger than it declares"
                                )
                            out.write(chunk)
                except PackagingError:
                    raise
                except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as exc:
                    raise PackagingError(
                        f"package entry {info.filename!r} is corrupt: {_one_line(exc)}"
                    ) from None
                if written != info.file_size:
                    raise PackagingError(
                        f"package entry {info.filename!r} has {written} bytes but declares "
                        f"{info.file_size}"
                    )
                budget -= written
                os.chmod(target, mode)
        _check_executor_yaml(staging, "")
        if dest.exists():
            dest.rmdir()
        os.replace(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest


def _plan(infos: Iterable[zipfile.ZipInfo], max_entries: int, max_bytes: int, max_ratio: int):
    """The server's entry rules (chalicelib/packages.py `_check_entries`), in the same order."""
    infos = list(infos)
    if len(infos) > max_entries:
        raise PackagingError(f"package has {len(infos)} entries, more than {max_entries}")
    seen: dict[PurePosixPath, str] = {}
    plan = []
    total = total_compressed = 0
    for info in infos:
        rel = check_entry_name(info.filename)
        kind = _entry_kind(info)
        if rel in seen:
            raise PackagingError(f"package contains {info.filename!r} twice")
        seen[rel] = kind
        plan.append((rel, info, kind))
        if kind == "dir":
            if info.file_size:
                raise PackagingError(f"package folder entry {info.filename!r} has content")
            continue
        if info.flag_bits & 0x1:
            raise PackagingError(f"package entry {info.filename!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise PackagingError(f"package entry {info.filename!r} uses an unsupported compression")
        if info.file_size > max_bytes:
            raise PackagingError(
                f"package entry {info.filename!r} unpacks to {info.file_size} bytes, more than "
                f"{max_bytes}")
        if info.file_size > RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise PackagingError(f"package entry {info.filename!r} is a zip bomb (compression ratio)")
        total += info.file_size
        total_compressed += info.compress_size
    for rel, kind in seen.items():
        for parent in rel.parents:
            if seen.get(parent) == "file":
                raise PackagingError(f"package entry {str(parent)!r} is both a file and a folder")
    if total > max_bytes:
        raise PackagingError(f"package unpacks to {total} bytes, more than {max_bytes}")
    if total > RATIO_MIN_BYTES and total > max_ratio * max(total_compressed, 1):
        raise PackagingError("package is a zip bomb (compression ratio)")
    return plan


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _yaml_problem(exc) -> str:
    """`<problem> at line L, column C` for a YAML error, on one line."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return _one_line(f"{problem}{where}")
