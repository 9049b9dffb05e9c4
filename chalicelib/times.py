"""Timestamps as nshub writes them: ISO 8601 in UTC to the second, with a `Z`
(`2026-12-03T04:05:06Z`). Nothing else formats or parses one."""
from __future__ import annotations

import datetime as dt


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).isoformat().replace("+00:00", "Z")


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def from_now_iso(seconds: float) -> str:
    """The moment `seconds` from now."""
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_iso(moment: dt.datetime | float) -> str:
    """A moment from elsewhere (an AWS answer: a datetime, naive means UTC, or epoch
    seconds), in our format."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime.fromtimestamp(float(moment), dt.timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def epoch(stamp: str) -> int:
    return int(parse(stamp))


def parse(stamp: str) -> float:
    """Epoch seconds of a timestamp (ours, or any ISO 8601 with an offset); ValueError."""
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
