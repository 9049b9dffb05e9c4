"""The local stack (`make dev`): moto, provisioning, the event pump and `chalice local`.

While it runs, the stack writes its environment (the app's settings, the moto endpoint and
the dummy AWS keys moto accepts) to one file, so tools such as `nshub-admin` find it from any
folder: `$NSHUB_DEVSTACK_ENV` when set, else `.devstack/env.json` in the repository. It
removes the file when it stops.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATE_VARIABLE = "NSHUB_DEVSTACK_ENV"


def state_file() -> Path:
    """Where the running dev stack's environment is (see the module's docstring)."""
    raw = os.environ.get(STATE_VARIABLE, "").strip()
    return Path(raw).expanduser() if raw else REPO / ".devstack" / "env.json"
