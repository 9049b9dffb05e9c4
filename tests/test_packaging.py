"""Client-side executor packages: reproducible zips, exclusions, name detection, extraction."""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from nshub.packaging import (
    PackagingError,
    extract_package,
    list_package_files,
    pack_executor,
    pack_executor_to,
    read_executor_name,
)

CONFIG = "jtype: MyExecutor\nmetas:\n  name: FancyExecutor\npy_modules:\n  - executor.py\n"
FILES = {
    "config.yml": CONFIG,
    "executor.py": "from jina import Executor\nclass MyExecutor(Executor):\n    pass\n",
    "requirements.txt": "numpy\n",
    "README.md": "# MyExecutor\n" * 50,
    "lib/helpers.py": "X = 1\n",
    "lib/deep/data.txt": "data\n",
}


def make_executor(root: Path, files: dict[str, str] = FILES, order=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel in order or files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel])
    return root


def packed(folder: Path) -> tuple[bytes, str, int]:
    path, sha, size = pack_executor(folder)
    try:
        data = Path(path).read_bytes()
    finally:
        os.unlink(path)
    assert hashlib.sha256(data).hexdigest() == sha and len(data) == size
    return data, sha, size


def names_in(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.namelist()


# --------------------------------------------------------------------------- reproducible


def test_same_content_same_sha_regardless_of_mtime_and_creation_order(tmp_path):
    a = make_executor(tmp_path / "a")
    b = make_executor(tmp_path / "b", order=list(reversed(list(FILES))))
    data_a, sha_a, _ = packed(a)
    assert packed(a)[1] == sha_a  # twice in a row
    for i, p in enumerate(sorted(b.rglob("*"))):
        os.utime(p, (1_000_000_000 + i * 7777, 1_500_000_000 + i * 3333))
    data_b, sha_b, _ = packed(b)
    assert sha_a == sha_b and data_a == data_b


def test_content_change_changes_sha(tmp_path):
    folder = make_executor(tmp_path / "x")
    _, before, _ = packed(folder)
    (folder / "lib/helpers.py").write_text("X = 2\n")
    assert packed(folder)[1] != before


def test_entries_are_sorted_with_fixed_metadata(tmp_path):
    folder = make_executor(tmp_path / "x")
    script = folder / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)
    (folder / "executor.py").chmod(0o600)
    data, _, _ = packed(folder)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        assert [i.filename for i in infos] == sorted(list(FILES) + ["run.sh"])
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.create_system == 3
            expected = 0o755 if info.filename == "run.sh" else 0o644
            assert info.external_attr >> 16 == stat.S_IFREG | expected
        assert zf.read("config.yml").decode() == CONFIG


def test_mode_bits_other_than_owner_exec_do_not_matter(tmp_path):
    a = make_executor(tmp_path / "a")
    b = make_executor(tmp_path / "b")
    (b / "executor.py").chmod(0o600)
    (b / "README.md").chmod(0o664)
    assert packed(a)[1] == packed(b)[1]


def test_pack_executor_to_file_object(tmp_path):
    folder = make_executor(tmp_path / "x")
    buf = io.BytesIO()
    names = pack_executor_to(folder, buf)
    assert names == sorted(FILES)
    assert hashlib.sha256(buf.getvalue()).hexdigest() == packed(folder)[1]


# --------------------------------------------------------------------------- exclusions


def test_exclusions(tmp_path):
    folder = make_executor(tmp_path / "x")
    extra = {
        ".git/HEAD": "ref: refs/heads/main\n",
        ".git/objects/ab/cdef": "blob",
        "lib/.git": "gitdir: ../.git/modules/lib\n",  # a submodule's .git file
        "__pycache__/executor.cpython-311.pyc": "x",
        "lib/__pycache__/helpers.cpython-311.pyc": "x",
        "stray.pyc": "x",
        "lib/old.pyo": "x",
        ".venv/pyvenv.cfg": "home = /usr/bin\n",
        ".venv/lib/site.py": "x",
        "myenv/pyvenv.cfg": "home = /usr/bin\n",  # any name, if it holds pyvenv.cfg
        "myenv/bin/activate": "x",
        "env/notes.txt": "not a venv, kept\n",
        "build/out.bin": "x",
        "logs/a.log": "x",
        "keep.log": "x",
        ".gitignore": "build/\n*.log\n!keep.log\n/secret.txt\n",
        "secret.txt": "x",
        "lib/secret.txt": "kept: the pattern is anchored\n",
    }
    make_executor(folder, extra)
    names = [arc for arc, _ in list_package_files(folder)]
    assert names == sorted(
        list(FILES) + [".gitignore", "env/notes.txt", "keep.log", "lib/secret.txt"]
    )
    data, _, _ = packed(folder)
    assert names_in(data) == names


GIT = shutil.which("git")
TREE = {
    "data/keep.txt": "kept\n", "data/big.bin": "x", "data/sub/keep.txt": "x", "data/sub/y.bin": "x",
    "build/keep.txt": "x", "build/out.o": "x", "src/build/z.o": "x", "x.log/inner": "x",
    "logs/a.log": "x", "deep/a/b/c.txt": "x", "deep/a/keep.txt": "x",
}


def git_keeps(folder: Path) -> list[str] | None:
    """What `git ls-files --others --exclude-standard` lists in `folder` (a fresh repository)."""
    if GIT is None:
        return None
    subprocess.run([GIT, "init", "-q", str(folder)], check=True)
    try:
        listed = subprocess.run([GIT, "ls-files", "--others", "--exclude-standard", "-z"],
                                cwd=folder, capture_output=True, check=True).stdout.decode()
    finally:
        shutil.rmtree(folder / ".git")
    return sorted(name for name in listed.split("\0") if name)


def packed_names(folder: Path) -> list[str]:
    return [arc for arc, _ in list_package_files(folder)]


def test_gitignore_re_includes_a_file_under_a_star_star_pattern_as_git_does(tmp_path):
    # Given `data/**` with `!data/keep.txt`: git ignores what is in data/, but keeps keep.txt
    folder = make_executor(tmp_path / "x", {**FILES, **TREE,
                                            ".gitignore": "data/**\n!data/keep.txt\n"})
    names = packed_names(folder)
    assert "data/keep.txt" in names
    assert not {"data/big.bin", "data/sub/keep.txt", "data/sub/y.bin"} & set(names)
    assert names_in(packed(folder)[0]) == names
    if GIT is not None:
        assert names == git_keeps(folder)


@pytest.mark.skipif(GIT is None, reason="needs git")
@pytest.mark.parametrize("gitignore", [
    "data/**\n!data/keep.txt\n",
    "build/\n!build/keep.txt\n",  # an ignored folder: nothing below it comes back
    "build\n!/build/\n",
    "*.log\n!x.log/\n",
    "data/**/\n!data/sub/\n",
    "data/*\n!data/sub/\ndata/sub/*\n!data/sub/keep.txt\n",
    "*\n!*/\n!*.txt\n!config.yml\n",
    "deep/**\n!deep/**/\n!deep/**/keep.txt\n",
    "/*\n!/data\n/data/*\n!/data/keep.txt\n!config.yml\n",
    "**/build/\nsrc/**\n[a-c]*/\n",
    # rules git reads its own way: a bad range, an unclosed bracket or a trailing backslash
    # match nothing (the other rules still apply); `***` is `**`; a byte order mark is no rule's
    "[z-a]*\n*.bin\n", "da[ta\n*.o\n", "*.bin\\\nbuild/\n", "***/keep.txt\n",
    "\ufeffREADME.md\n", "[[:print:]]uild/\n[[:cntrl:]]*\n",
])
def test_gitignore_leaves_out_what_git_leaves_out(tmp_path, gitignore):
    folder = make_executor(tmp_path / "x", {**FILES, **TREE, ".gitignore": gitignore})
    assert packed_names(folder) == git_keeps(folder)


def test_an_ignored_folder_is_not_walked(tmp_path, monkeypatch):
    # Given a folder with many files git ignores whole (`node_modules/`)
    folder = make_executor(tmp_path / "x", {**FILES, ".gitignore": "node_modules/\n"})
    for i in range(200):
        (folder / "node_modules" / f"p{i}").mkdir(parents=True)
        (folder / "node_modules" / f"p{i}" / "index.js").write_text("x")
    scanned = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scanned.append(Path(path)) or real_scandir(path))
    # When it is packed, then nothing below node_modules/ is even listed
    assert packed_names(folder) == sorted([*FILES, ".gitignore"])
    assert not [p for p in scanned if "node_modules" in p.parts]


def test_gitignore_cannot_exclude_config(tmp_path):
    folder = make_executor(tmp_path / "x", {**FILES, ".gitignore": "*.yml\n"})
    with pytest.raises(PackagingError, match="config.yml is excluded by .gitignore"):
        packed(folder)


def test_symlink_is_refused(tmp_path):
    folder = make_executor(tmp_path / "x")
    (folder / "lib" / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(PackagingError, match=r"lib/passwd is a symlink \(-> /etc/passwd\).*must not contain symlinks"):
        pack_executor(folder)


def test_symlinked_directory_is_refused(tmp_path):
    folder = make_executor(tmp_path / "x")
    (folder / "linked").symlink_to(folder / "lib", target_is_directory=True)
    with pytest.raises(PackagingError, match="linked is a symlink"):
        pack_executor(folder)


def test_ignored_symlink_is_left_out(tmp_path):
    folder = make_executor(tmp_path / "x", {**FILES, ".gitignore": "passwd\n"})
    (folder / "passwd").symlink_to("/etc/passwd")
    assert "passwd" not in names_in(packed(folder)[0])


def test_symlinks_inside_a_venv_do_not_matter(tmp_path):
    folder = make_executor(tmp_path / "x", {**FILES, "venv/pyvenv.cfg": "home = /usr\n"})
    (folder / "venv" / "python").symlink_to("/usr/bin/python3")
    assert not any(n.startswith("venv/") for n in names_in(packed(folder)[0]))


def test_no_temp_file_left_on_error(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    folder = make_executor(tmp_path / "x")
    (folder / "bad").symlink_to("/etc/passwd")
    with pytest.raises(PackagingError):
        pack_executor(folder)
    assert list((tmp_path / "tmp").iterdir()) == []


# --------------------------------------------------------------------------- config.yml


@pytest.mark.parametrize(
    "config, match",
    [
        (None, "has no config.yml"),
        ("metas:\n  name: X\n", "has no `jtype`"),
        ("- a\n- b\n", "must be a mapping"),
        ("jtype: [unclosed\n", "not valid YAML"),
        ("jtype: !!python/object/apply:os.system ['echo hi']\n", "not safe YAML"),
    ],
)
def test_config_is_checked_before_packing(tmp_path, config, match):
    files = {k: v for k, v in FILES.items() if k != "config.yml"}
    if config is not None:
        files["config.yml"] = config
    folder = make_executor(tmp_path / "x", files)
    with pytest.raises(PackagingError, match=match):
        pack_executor(folder)


def test_not_a_directory(tmp_path):
    with pytest.raises(PackagingError, match="not a directory") as info:
        pack_executor(tmp_path / "missing")
    from nshub.errors import InvalidPackage

    assert isinstance(info.value, InvalidPackage) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "config, name",
    [
        (CONFIG, "FancyExecutor"),
        ("jtype: MyExecutor\n", "MyExecutor"),
        ("jtype: MyExecutor\nmetas:\n  description: x\n", "MyExecutor"),
        ("jtype: MyExecutor\nmetas:\n  name: ''\n", "MyExecutor"),
        ("metas:\n  name: OnlyName\n", "OnlyName"),
        ("foo: bar\n", None),
        ("- a\n", None),
        ("jtype: !!python/object/apply:os.system ['echo hi']\n", None),
        (None, None),
    ],
)
def test_read_executor_name(tmp_path, config, name):
    folder = tmp_path / "x"
    folder.mkdir()
    if config is not None:
        (folder / "config.yml").write_text(config)
    assert read_executor_name(folder) == name


# --------------------------------------------------------------------------- extraction


def test_pack_then_extract_roundtrip(tmp_path):
    folder = make_executor(tmp_path / "src")
    (folder / "run.sh").write_text("#!/bin/sh\n")
    (folder / "run.sh").chmod(0o755)
    path, _, _ = pack_executor(folder)
    try:
        dest = extract_package(path, tmp_path / "out" / "MyExecutor")
    finally:
        os.unlink(path)
    for rel, text in FILES.items():
        assert (dest / rel).read_text() == text
    assert os.access(dest / "run.sh", os.X_OK)
    assert not os.access(dest / "executor.py", os.X_OK)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["MyExecutor"]  # no staging left


def write_zip(path: Path, entries) -> Path:
    """entries: (name, data, mode or None) triples."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if mode is not None:
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


CONFIG_ENTRY = ("config.yml", "jtype: X\n", None)


@pytest.mark.parametrize(
    "entries, match",
    [
        ([CONFIG_ENTRY, ("../evil", "x", None)], r"contains '\.\.'"),
        ([CONFIG_ENTRY, ("lib/../../evil", "x", None)], r"contains '\.\.'"),
        ([CONFIG_ENTRY, ("/etc/evil", "x", None)], "absolute path"),
        ([CONFIG_ENTRY, ("C:/evil", "x", None)], "drive letter"),
        ([CONFIG_ENTRY, ("lib\\evil", "x", None)], "backslash"),
        ([CONFIG_ENTRY, ("link", "/etc/passwd", stat.S_IFLNK | 0o777)], "symlink"),
        ([CONFIG_ENTRY, ("fifo", "", stat.S_IFIFO | 0o644)], "fifo"),
        ([CONFIG_ENTRY, ("dev", "", stat.S_IFCHR | 0o644)], "character device"),
        ([CONFIG_ENTRY, CONFIG_ENTRY], "twice"),
        ([CONFIG_ENTRY, ("a", "x", None), ("a/b", "y", None)], "both a file and a folder"),
    ],
)
def test_extract_refuses_hostile_entries(tmp_path, entries, match):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        archive = write_zip(tmp_path / "p.zip", entries)
    with pytest.raises(PackagingError, match=match):
        extract_package(archive, tmp_path / "out" / "dest")
    assert not (tmp_path / "out" / "dest").exists()
    assert list((tmp_path / "out").iterdir()) == []  # staging removed
    assert not (tmp_path / "evil").exists()


def test_extract_refuses_bombs_and_size(tmp_path):
    archive = write_zip(tmp_path / "bomb.zip", [CONFIG_ENTRY, ("zeros", b"\0" * (8 << 20), None)])
    with pytest.raises(PackagingError, match="zip bomb"):
        extract_package(archive, tmp_path / "a")
    archive = write_zip(tmp_path / "big.zip", [CONFIG_ENTRY, ("rand", os.urandom(4096), None)])
    with pytest.raises(PackagingError, match="more than 1000"):
        extract_package(archive, tmp_path / "b", max_unpacked_bytes=1000)
    with pytest.raises(PackagingError, match="more than 1"):
        extract_package(archive, tmp_path / "c", max_entries=1)


def test_extract_refuses_a_lying_header(tmp_path):
    archive = write_zip(tmp_path / "p.zip", [CONFIG_ENTRY, ("data", os.urandom(10_000), None)])
    raw = bytearray(archive.read_bytes())
    # shrink the declared uncompressed size in the central directory entry of "data"
    cd = raw.rindex(b"PK\x01\x02")
    assert raw[cd + 46: cd + 50] == b"data"
    raw[cd + 24: cd + 28] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(PackagingError, match="corrupt|declares"):
        extract_package(archive, tmp_path / "out")


def test_extract_refuses_non_empty_dest_and_non_zip(tmp_path):
    folder = make_executor(tmp_path / "src")
    path, _, _ = pack_executor(folder)
    try:
        with pytest.raises(PackagingError, match="not empty"):
            extract_package(path, folder)
        (tmp_path / "empty").mkdir()
        assert extract_package(path, tmp_path / "empty") == tmp_path / "empty"
        assert (tmp_path / "empty" / "config.yml").is_file()
    finally:
        os.unlink(path)
    (tmp_path / "not.zip").write_bytes(b"hello")
    with pytest.raises(PackagingError, match="not a zip"):
        extract_package(tmp_path / "not.zip", tmp_path / "out")
