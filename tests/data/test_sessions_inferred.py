"""Sessions inferred from the data: a partial-day file gets only the buckets it covers."""

import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.sessions import infer_sessions

SSE = "cn-equity-l2-dolphindb/20211201snapshot_30stocks.zip"


@pytest.fixture(scope="module")
def sse_books(shared_data):
    return cs.read_books(shared_data / SSE)


def test_sse_panel_gets_its_first_hour_only(sse_books):
    for symbol, book in sse_books.items():
        buckets = cs.session_buckets(book)
        assert str(book.sessions) == "cn_equity inferred [09:30:00-10:30:00 Asia/Shanghai]", symbol
        assert len(buckets.index) == 60 and len(buckets.empty) == 0, symbol
        assert buckets.index[-1] == pd.Timestamp("2021-12-01 10:29", tz="Asia/Shanghai")
        assert any("sessions inferred from the data" in note for note in book.report.notes)


def test_a_twap_on_the_partial_day_fills_everything(sse_books):
    book = sse_books["600311"]
    table = cs.backtest(book, 10_000, strategies=[], hindsight=False)
    assert table.loc["TWAP", "unfilled"] == 0
    # 60 buckets, none empty: the even pace is S / 60 per minute.
    executor = cs.BookExecutor(book)
    assert len(executor) == 60 and (executor.rows >= 0).all()


def test_full_day_and_given_sessions_are_kept(shared_data, sse_books):
    szse = cs.read_book(shared_data / "cn-equity-l2-dolphindb/tick.zip", symbol="300274.SZ")
    assert szse.sessions is cs.CN_EQUITY  # the data cover the whole day: nothing trimmed
    forced = cs.read_book(shared_data / SSE, symbol="600311", sessions="cn_equity")
    assert forced.sessions is cs.CN_EQUITY and len(cs.session_buckets(forced).empty) == 177


def test_trimming_keeps_inner_gaps_and_whole_buckets():
    sessions = cs.Sessions((("09:30", "11:30"), ("13:00", "15:00")), "UTC", "toy")
    times = pd.DatetimeIndex(["2024-01-02 10:00:30", "2024-01-02 10:05:00", "2024-01-02 13:20:10"], tz="UTC")
    book = cs.synthetic_book(seed=0)
    frame = book.frame.iloc[:3].set_axis(times)
    toy = cs.Book(frame=frame, report=book.report, symbol="toy", tick_size=0.01, sessions=sessions)
    inferred = infer_sessions(toy)
    assert [(f"{a:%H:%M}", f"{b:%H:%M}") for a, b in inferred.intervals] == [("10:00", "11:30"), ("13:00", "13:21")]
    buckets = cs.session_buckets(toy, sessions=inferred)
    assert len(buckets.index) == 90 + 21 and len(buckets.empty) == 90 + 21 - 3  # the gap stays visible
    # No row inside the sessions: nothing to infer from.
    outside = cs.Book(frame=frame.set_axis(times - pd.Timedelta(hours=9)), report=book.report, symbol="toy",
                      tick_size=0.01, sessions=sessions)  # fmt: skip
    assert infer_sessions(outside) is sessions
