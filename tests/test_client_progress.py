"""Progress bars: on a terminal only, and never with NSHUB_DISABLE_PROGRESS_BARS=1."""
from __future__ import annotations

import io
import sys

import pytest

from nshub.progress import progress_enabled, transfer_bar
from tests.fake_http import alice, hub, waits  # noqa: F401  (fixtures)


@pytest.fixture
def terminal(monkeypatch):
    """A fake terminal; `with terminal:` puts it on sys.stderr (pytest's capture swaps
    sys.stderr between fixture setup and the test, so it is installed in the test body)."""
    monkeypatch.delenv("NSHUB_DISABLE_PROGRESS_BARS", raising=False)
    screen = Terminal()
    return screen


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def __enter__(self):
        self._saved, sys.stderr = sys.stderr, self
        return self

    def __exit__(self, *exc):
        sys.stderr = self._saved


def test_bars_draw_on_a_terminal(terminal):
    with terminal:
        assert progress_enabled()
        with transfer_bar(2048, "push x") as bar:
            bar.update(2048)
    assert "push x" in terminal.getvalue() and "2.00k" in terminal.getvalue()


def test_the_kill_switch(terminal, monkeypatch):
    monkeypatch.setenv("NSHUB_DISABLE_PROGRESS_BARS", "1")
    with terminal:
        assert not progress_enabled()
        with transfer_bar(10, "push x") as bar:
            bar.update(10)
    assert terminal.getvalue() == ""


def test_no_bars_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.delenv("NSHUB_DISABLE_PROGRESS_BARS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_enabled()


def test_push_and_pull_show_bytes(alice, terminal):
    with terminal:
        alice.push_bytes(b"x" * 300, "alice/shown")
        alice.pull_bytes("alice/shown")
    shown = terminal.getvalue()
    assert "push shown" in shown and "pull shown" in shown and "300" in shown
