"""Continuous-trading sessions and the time buckets that index the cost curves.

The schedule splits a parent order over ``N`` buckets of the *continuous* session ((E1):
one cost curve ``g_i`` per bucket ``i``). Auctions and breaks are not tradable with a book walk, so
buckets cover only the continuous intervals of each trading day, e.g.

* US equities, 09:30-16:00 America/New_York: 390 one-minute buckets;
* China A-shares, 09:30-11:30 and 13:00-14:57 Asia/Shanghai (lunch break and closing call
  skipped): 120 + 117 = 237 one-minute buckets.

Bucket ``[s, s + f)`` is labelled by its start ``s``; the last bucket of a session is closed on
the right (``[s, end]``), so a snapshot stamped exactly at the session end (the Shenzhen file has
them at 11:30:00 and 14:57:00) still counts. When the session length is not a multiple of the
frequency the last bucket is shorter.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from .book import Book


def _as_time(value):
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise InvalidInputError(f"session bound {value!r} is not a time of day like '09:30'") from None


@dataclass(frozen=True)
class Sessions:
    """The continuous-trading intervals of a trading day, in the market's local time zone.

    Parameters
    ----------
    intervals : sequence of (start, end)
        Local times of day (``datetime.time`` or ``"HH:MM[:SS]"``), sorted and disjoint,
        ``start < end``.
    tz : str
        IANA time zone of the market, e.g. ``"America/New_York"``.
    name : str, optional
        Short label shown in reports.
    """

    intervals: tuple
    tz: str
    name: str = ""

    def __post_init__(self):
        intervals = tuple((_as_time(a), _as_time(b)) for a, b in self.intervals)
        if not intervals:
            raise InvalidInputError("Sessions needs at least one (start, end) interval")
        for (a, b), nxt in zip(intervals, intervals[1:] + ((None, None),), strict=True):
            if not a < b:
                raise InvalidInputError(f"session interval {a}-{b} is empty or reversed")
            if nxt[0] is not None and nxt[0] < b:
                raise InvalidInputError(f"session intervals overlap or are unsorted at {nxt[0]}")
        object.__setattr__(self, "intervals", intervals)

    def __str__(self):
        spans = ", ".join(f"{a:%H:%M:%S}-{b:%H:%M:%S}" for a, b in self.intervals)
        return f"{self.name or 'sessions'} [{spans} {self.tz}]"


US_EQUITY = Sessions((("09:30", "16:00"),), "America/New_York", "us_equity")
CN_EQUITY = Sessions((("09:30", "11:30"), ("13:00", "14:57")), "Asia/Shanghai", "cn_equity")

SESSION_PRESETS = {"us_equity": US_EQUITY, "cn_equity": CN_EQUITY}


def as_sessions(value):
    """Coerce ``None``, a preset name (``"us_equity"``, ``"cn_equity"``) or a Sessions."""
    if value is None or isinstance(value, Sessions):
        return value
    if isinstance(value, str) and value in SESSION_PRESETS:
        return SESSION_PRESETS[value]
    raise InvalidInputError(f"sessions must be a Sessions object or one of {sorted(SESSION_PRESETS)}, got {value!r}")


@dataclass(frozen=True)
class SessionBuckets:
    """Snapshots mapped onto the buckets of the continuous sessions.

    Attributes
    ----------
    labels : pandas.Series
        Indexed like the book; the start of each snapshot's bucket, ``NaT`` outside the sessions.
    index : pandas.DatetimeIndex
        Every bucket of every trading day present in the book, including buckets that received
        no snapshot: this is the index of the cost curves.
    counts : pandas.Series
        Snapshots per bucket on ``index`` (0 for empty buckets).
    """

    labels: pd.Series
    index: pd.DatetimeIndex
    counts: pd.Series

    @property
    def empty(self) -> pd.DatetimeIndex:
        """Buckets without any snapshot (a gap in the data, not a quiet market: report them)."""
        return self.index[self.counts.to_numpy() == 0]

    @property
    def n_outside(self) -> int:
        """Snapshots outside every continuous session (auctions, breaks, pre-/post-market)."""
        return int(self.labels.isna().sum())

    def __str__(self):
        return (
            f"{len(self.index)} buckets, {len(self.empty)} without snapshots; "
            f"{len(self.labels) - self.n_outside} snapshots bucketed, {self.n_outside} outside the sessions"
        )


def bucket_grid(days, sessions: Sessions, freq: pd.Timedelta) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex, np.ndarray]:
    """Starts, ends and is-last-of-session flags of all buckets on the given local dates."""
    starts, ends, last = [pd.DatetimeIndex([], tz=sessions.tz)], [pd.DatetimeIndex([], tz=sessions.tz)], []
    for day in days:
        for a, b in sessions.intervals:
            lo = pd.Timestamp.combine(day, a).tz_localize(sessions.tz)
            hi = pd.Timestamp.combine(day, b).tz_localize(sessions.tz)
            s = pd.date_range(lo, hi, freq=freq, inclusive="left")
            starts.append(s)
            ends.append(pd.DatetimeIndex(np.minimum(s + freq, hi)))
            last.append(np.arange(len(s)) == len(s) - 1)
    # One resolution for both sides of the searchsorted below (pandas 3 mixes us and ns).
    starts = starts[0].append(starts[1:]).as_unit("ns")
    ends = ends[0].append(ends[1:]).as_unit("ns")
    return starts, ends, np.concatenate(last) if last else np.array([], bool)


# Buckets a book may be cut into: at least this many, more when it has many snapshots (an empty
# bucket costs the same as a full one, and a million suffices for a year of 5-second buckets).
MAX_BUCKETS, BUCKETS_PER_SNAPSHOT, MAX_BUCKETS_HARD = 1_000_000, 10, 50_000_000


def _check_bucket_count(days, sessions, freq, n_snapshots):
    """:class:`InvalidInputError` before allocating when ``freq`` cuts the sessions into too many buckets."""
    seconds = sum(
        (pd.Timestamp.combine(pd.Timestamp(0).date(), b) - pd.Timestamp.combine(pd.Timestamp(0).date(), a)).total_seconds()
        for a, b in sessions.intervals
    )
    count = len(days) * seconds / freq.total_seconds()
    limit = min(MAX_BUCKETS_HARD, max(MAX_BUCKETS, BUCKETS_PER_SNAPSHOT * n_snapshots))
    if count > limit:
        raise InvalidInputError(
            f"freq {_freq_text(freq)} cuts {len(days)} day(s) of sessions into {count:,.0f} buckets for "
            f"{n_snapshots:,} snapshots; at most {limit:,} (the larger of {MAX_BUCKETS:,} and "
            f"{BUCKETS_PER_SNAPSHOT} per snapshot): choose a wider freq"
        )


def _freq_text(freq):
    return str(freq).replace("0 days ", "")


def session_buckets(book: Book, freq: str = "1min", sessions: Sessions | str | None = None) -> SessionBuckets:
    """Map every snapshot of ``book`` onto the continuous-session buckets of width ``freq``.

    Parameters
    ----------
    book : Book
        Its index gives the snapshot times; its ``sessions`` the trading intervals.
    freq : str or pandas.Timedelta
        Bucket width, e.g. ``"1min"`` (390 buckets a US day, 237 a Chinese day).
    sessions : Sessions or str, optional
        Overrides ``book.sessions``.

    Returns
    -------
    SessionBuckets

    Raises
    ------
    InvalidInputError
        When neither the book nor the call gives sessions, ``freq`` is not positive, or it makes
        more buckets than :data:`MAX_BUCKETS` and ten per snapshot (checked before allocating).

    Notes
    -----
    The trading days are the local dates on which the book has at least one snapshot; each gets
    all its buckets, so missing data shows up as empty buckets instead of a shorter index.
    """
    sessions = as_sessions(sessions) or book.sessions
    if sessions is None:
        raise InvalidInputError(
            f"book {book.symbol!r} has no trading sessions; pass sessions= "
            f"(a Sessions object or one of {sorted(SESSION_PRESETS)}; --sessions on the command line)"
        )
    freq = pd.Timedelta(freq)
    if freq <= pd.Timedelta(0):
        raise InvalidInputError(f"freq must be positive, got {freq}")
    times = book.frame.index.tz_convert(sessions.tz).as_unit("ns")
    days = pd.unique(times.date)
    _check_bucket_count(days, sessions, freq, len(book.frame))
    starts, ends, last = bucket_grid(days, sessions, freq)

    labels = pd.Series(pd.NaT, index=book.frame.index, dtype=f"datetime64[ns, {sessions.tz}]", name="bucket")
    if len(starts) == 0:
        return SessionBuckets(labels=labels, index=starts, counts=pd.Series([], index=starts, dtype=int))
    t = times.asi8
    pos = np.searchsorted(starts.asi8, t, side="right") - 1
    safe = np.clip(pos, 0, None)
    end_ns = ends.asi8[safe]
    inside = (pos >= 0) & ((t < end_ns) | ((t == end_ns) & last[safe]))
    labels[inside] = starts[safe[inside]]
    counts = pd.Series(np.bincount(safe[inside], minlength=len(starts)), index=starts, name="n_snapshots")
    return SessionBuckets(labels=labels, index=starts, counts=counts)


def _time_of_day(offset):
    """A Timedelta after midnight as a ``datetime.time`` (24:00 and later clip to 23:59:59.999999)."""
    offset = min(pd.Timedelta(offset), pd.Timedelta(days=1) - pd.Timedelta(microseconds=1))
    return (pd.Timestamp(0) + offset).time()


def infer_sessions(book, sessions=None, freq="1min"):
    """The sessions the book's data actually cover: its sessions trimmed to its first and last rows.

    A file that covers only part of the trading day (the SSE 30-stock panel ends at 10:30)
    would otherwise get empty buckets for the rest of the day, where a schedule could place
    shares that no book can fill. Only the ends are trimmed: a gap inside the covered span
    stays visible as empty buckets (:attr:`SessionBuckets.empty`).

    Parameters
    ----------
    book : Book
    sessions : Sessions or str, optional
        The market's sessions; default ``book.sessions``.
    freq : str or pandas.Timedelta
        The covered span is widened to whole buckets: its start floored and its end ceiled.

    Returns
    -------
    Sessions or None
        ``sessions`` itself when the data cover all of it (or none of it: nothing to infer
        from), ``None`` when there are no sessions; otherwise a trimmed copy named
        ``"<name> inferred"``. Several days share one time-of-day span: the union of theirs.
    """
    base = as_sessions(sessions) or book.sessions
    if base is None or len(book.frame) == 0:
        return base
    freq = pd.Timedelta(freq)
    local = book.frame.index.tz_convert(base.tz).as_unit("ns")
    offsets = (local - local.normalize()).as_unit("ns").asi8
    bounds = [
        (pd.Timedelta(hours=a.hour, minutes=a.minute, seconds=a.second, microseconds=a.microsecond).value,
         pd.Timedelta(hours=b.hour, minutes=b.minute, seconds=b.second, microseconds=b.microsecond).value)
        for a, b in base.intervals
    ]  # fmt: skip
    inside = np.zeros(len(offsets), bool)
    for a, b in bounds:
        inside |= (offsets >= a) & (offsets <= b)
    if not inside.any():
        return base
    lo = pd.Timedelta(int(offsets[inside].min())).floor(freq).value
    hi = pd.Timedelta(int(offsets[inside].max())).ceil(freq).value
    if hi <= lo:
        hi = lo + freq.value
    trimmed = tuple((max(a, lo), min(b, hi)) for a, b in bounds if max(a, lo) < min(b, hi))
    if trimmed == tuple(bounds):
        return base
    intervals = tuple((_time_of_day(pd.Timedelta(a)), _time_of_day(pd.Timedelta(b))) for a, b in trimmed)
    return Sessions(intervals, base.tz, f"{base.name or 'sessions'} inferred")


def with_inferred_sessions(book, freq="1min"):
    """``book`` with :func:`infer_sessions`' sessions, the change noted in its load report.

    Returns the same object when nothing is trimmed.
    """
    from dataclasses import replace

    inferred = infer_sessions(book, freq=freq)
    if inferred is book.sessions:
        return book
    note = f"sessions inferred from the data: {inferred} (the data cover only part of {book.sessions})"
    report = replace(book.report, notes=[*book.report.notes, note])
    return replace(book, sessions=inferred, report=report, meta=dict(book.meta, sessions_inferred=True))


def span_sessions(first, last, tz, freq="1min", name="data span"):
    """One interval from ``first`` (floored to ``freq``) to ``last`` (ceiled), on ``first``'s date.

    For feeds without an exchange calendar here (crypto around the clock, a futures file's
    reopen): the sessions are what the data show. The end is clipped to the end of the start's
    local date, since sessions are times of day.
    """
    freq = pd.Timedelta(freq)
    start = pd.Timestamp(first).tz_convert(tz).floor(freq)
    day_end = start.normalize() + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    end = min(pd.Timestamp(last).tz_convert(tz).ceil(freq), day_end)
    if end <= start:
        end = start + freq
    return Sessions(((start.time(), end.time()),), tz, name)
