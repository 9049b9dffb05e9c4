"""Test helper: the `nshub` command run in this process, as a user sees it (exit code, stdout,
stderr), with the access log of the app's local server (same process) kept out of stderr."""
from __future__ import annotations

import io
import re
import sys

from nshub.cli import main

ACCESS_LOG = re.compile(r'^\S+ - - \[[^]]*\] "')


def run(capsys, *argv: str, stdin: str | None = None, monkeypatch=None) -> tuple[int, str, str]:
    """`nshub ARGV...`; `stdin` (with `monkeypatch`) is what the command reads."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    captured = capsys.readouterr()
    err = "".join(line for line in captured.err.splitlines(keepends=True)
                  if not ACCESS_LOG.match(line))
    return code, captured.out, err
