"""Order-level event streams: LOBSTER and Databento MBO readers on real and hand-built files, SSE's book.

The real-data checks rebuild the book from the events with the replay's own kernel (no actions)
and compare it with what the feed says the book was: LOBSTER's orderbook file, Databento's level
replay, SSE's never-crossed continuous book.
"""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.data.events import ADD, CLEAR, PRINT, TRADE
from convexsched.errors import DataError, InvalidInputError
from convexsched.execution.matching import BookState, FillLog, run_window, top_levels

LOBSTER = "lobster-aapl-2012-head/AAPL_2012-06-21_34200000_57600000_message_10.csv"
ES = "es-futures-mbo-databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst"
_NO_ACTIONS = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((1, 0)), np.zeros(0, np.int64))


class KernelBook:
    """The data book of ``run_window`` replayed over an event stream with no action of ours."""

    def __init__(self, events):
        self.events = events
        self.price_min = int(events.price[events.kind != CLEAR].min())
        self.n_levels = int(events.price.max()) - self.price_min + 2
        self.state = BookState(events.n_orders, self.n_levels, self.price_min, 1, 1, 1)
        self.log = FillLog(4)

    def advance(self, t_stop):
        """Apply every event stamped before ``t_stop``."""
        ev, st = self.events, self.state
        totals = tuple(np.zeros(1) for _ in range(4))
        out = run_window(
            *st.arrays(),
            ev.time,
            ev.kind,
            ev.order,
            ev.side,
            ev.price,
            ev.qty,
            ev.aggressor,
            self.price_min,
            st.cursor,
            int(t_stop),
            *_NO_ACTIONS,
            1,
            False,
            False,
            *self.log.arrays()[:-1],
            self.log.count,
            *totals,
        )
        st.cursor = int(out[0])

    def levels(self, side, depth=50):
        """``[(price in ticks, shares)]`` of one side (+1 bids, -1 asks), best first."""
        sd = 0 if side > 0 else 1
        level, qty = np.zeros(depth, np.int64), np.zeros(depth)
        n = top_levels(
            self.state.level_data[sd], self.state.best_data[sd], -1 if sd == 0 else 1, self.n_levels, depth, level, qty
        )
        return [(int(p) + self.price_min, float(q)) for p, q in zip(level[:n], qty[:n])]

    def crossed(self):
        bid, ask = self.state.best_data
        return 0 <= bid < self.n_levels and 0 <= ask < self.n_levels and bid >= ask


# -- LOBSTER --------------------------------------------------------------------------------------
def _lobster_frames(path):
    book_path = path.with_name(path.name.replace("_message_", "_orderbook_"))
    return pd.read_csv(path, header=None).to_numpy(), pd.read_csv(book_path, header=None).to_numpy()


def test_lobster_book_matches_the_orderbook_file(shared_data):
    """After every distinct message time, the rebuilt top 10 equals LOBSTER's orderbook row.

    LOBSTER's messages cover only the first 10 levels: a level pushed out of them loses its
    messages. A level is compared while it has been inside the file's 10 levels since the start
    (at or better than every row's 10th level so far).
    """
    path = shared_data / LOBSTER
    events = cs.read_events(path)
    messages, rows = _lobster_frames(path)
    midnight = pd.Timestamp("2012-06-21").tz_localize("America/New_York").value
    stamps = midnight + np.rint(messages[:, 0] * 1e9).astype(np.int64)
    ask_horizon = np.minimum.accumulate(np.where(rows[:, 37] > 0, rows[:, 36], np.inf))
    bid_horizon = np.maximum.accumulate(np.where(rows[:, 39] > 0, rows[:, 38], -np.inf))
    book = KernelBook(events)
    compared = levels = 0
    for k in range(len(messages)):
        if k + 1 < len(messages) and stamps[k + 1] == stamps[k]:
            continue  # the next message has the same stamp: compare after the last of them
        book.advance(stamps[k] + 1)
        assert not book.crossed()
        for side, price_col, horizon in ((-1, 0, ask_horizon[k]), (1, 2, bid_horizon[k])):
            inside = (lambda p: p <= horizon) if side < 0 else (lambda p: p >= horizon)
            theirs = [
                (int(rows[k, 4 * i + price_col]) // 100, float(rows[k, 4 * i + price_col + 1]))
                for i in range(10)
                if rows[k, 4 * i + price_col + 1] > 0 and inside(rows[k, 4 * i + price_col])
            ]
            ours = [(p, q) for p, q in book.levels(side) if inside(p * 100)]
            assert ours[:10] == theirs, f"message {k + 1}, side {side}"
            levels += len(theirs)
        compared += 1
    assert compared == len(np.unique(stamps)) == 890
    assert levels / compared > 5  # about 3 levels a side stay inside the window all along: not a vacuous check


def test_lobster_report_and_sessions(shared_data):
    events = cs.read_events(shared_data / LOBSTER)
    report = events.report
    assert report.rows_read == 999 and report.rows_kept + report.rows_dropped == 999
    assert report.dropped["halt"] == 0 and report.dropped["off_grid"] == 0
    kinds = np.bincount(events.kind, minlength=6)
    # 471 adds + the seeded levels; 98 visible executions are trades; 61 hidden ones are prints.
    assert kinds[TRADE] + report.dropped["orphan"] >= 98 and kinds[PRINT] == 61
    assert kinds[ADD] == 471 + (events.order_ids < 0).sum()
    assert str(events.sessions.intervals[0][0]) == "09:30:00" and str(events.sessions.intervals[0][1]).startswith("09:30:49")
    assert events.times[0].tz_convert("America/New_York").strftime("%H:%M:%S") == "09:30:00"


def _write_lobster(folder, messages, first_row, levels=2, name="TEST_2020-01-02_34200000_57600000"):
    """A message file and an orderbook file (only its first row matters to the reader)."""
    message_path = folder / f"{name}_message_{levels}.csv"
    message_path.write_text("".join(",".join(str(v) for v in m) + "\n" for m in messages))
    row = ",".join(str(v) for v in first_row)
    (folder / f"{name}_orderbook_{levels}.csv").write_text((row + "\n") * len(messages))
    return message_path


# Book before the first message: asks 10.01 x 100, 10.02 x 50; bids 10.00 x 30, 9.99 x 20.
# The first message adds 10 shares at 10.00, so LOBSTER's first row shows 10.00 x 40.
_FIRST_ROW = [100100, 100, 100000, 40, 100200, 50, 99900, 20]


def test_lobster_hand_built_stream(tmp_path):
    t = 34200.5
    path = _write_lobster(
        tmp_path,
        [
            (t, 1, 1, 10, 100000, 1),  # add behind the seeded 10.00 bid
            (t + 1, 4, 77, 30, 100100, -1),  # execution of an order from before the file: the seeded 10.01 ask
            (t + 2, 2, 1, 4, 100000, 1),  # partial cancel of order 1
            (t + 3, 5, 0, 5, 100050, 1),  # hidden buy order hit at 10.005: a print, rounded up to 10.01
            (t + 4, 7, 0, 0, -1, -1),  # halt
            (t + 5, 3, 88, 50, 100200, -1),  # delete of an old order: the seeded 10.02 ask's 50 shares
            (t + 6, 2, 99, 5, 99800, 1),  # an old order at a level that was not seeded: orphan
            (t + 7, 6, -1, 100, 100050, 1),  # cross: a print with no aggressor
            (t + 8, 3, 1, 6, 100000, 1),  # delete of order 1 (6 left)
            (t + 9, 2, 1, 1, 100000, 1),  # order 1 is gone: orphan, never the seeded order's shares
        ],
        _FIRST_ROW,
    )
    events = cs.read_events(path)
    report = events.report
    assert events.symbol == "TEST" and report.rows_read == 10
    assert report.dropped == {"halt": 1, "orphan": 2, "off_grid": 0, "duplicate_order": 0}
    frame = events.frame()
    seeds = int((events.order_ids < 0).sum())
    assert seeds == 4  # 10.00 x 30 (first message undone), 9.99 x 20, 10.01 x 100, 10.02 x 50
    seeded = frame.iloc[:seeds]
    assert dict(zip(zip(seeded["side"], seeded["price"].round(2)), seeded["qty"])) == {
        (1, 10.00): 30,
        (1, 9.99): 20,
        (-1, 10.01): 100,
        (-1, 10.02): 50,
    }
    body = frame.iloc[seeds:]
    assert list(body["kind"]) == ["ADD", "TRADE", "CANCEL", "PRINT", "CANCEL", "PRINT", "CANCEL"]
    trade = body.iloc[1]
    assert trade["aggressor"] == 1 and trade["qty"] == 30 and events.order_ids[trade["order"]] == -1
    hidden = body.iloc[3]
    assert hidden["aggressor"] == -1 and hidden["price"] == pytest.approx(10.01) and hidden["side"] == 1
    assert body.iloc[4]["qty"] == np.inf and events.order_ids[body.iloc[4]["order"]] == -1  # the whole 10.02 seed
    assert body.iloc[5]["aggressor"] == 0
    assert body.iloc[6]["qty"] == np.inf and events.order_ids[body.iloc[6]["order"]] == 1

    book = KernelBook(events)
    book.advance(events.time[-1] + 1)
    tick = lambda p: round(p / 0.01)  # noqa: E731
    assert book.levels(1) == [(tick(10.00), 30.0), (tick(9.99), 20.0)]  # order 1 gone
    assert book.levels(-1) == [(tick(10.01), 70.0)]


def test_lobster_refuses_bad_files(tmp_path):
    good = [(34200.1, 1, 1, 10, 100000, 1), (34200.2, 1, 2, 10, 100100, -1)]
    with pytest.raises(InvalidInputError, match="undefined LOBSTER event type 8"):
        cs.read_events(_write_lobster(tmp_path, [*good, (34200.3, 8, 3, 1, 100000, 1)], _FIRST_ROW, name="A_2020-01-02_0_1"))
    folder = tmp_path
    path = _write_lobster(folder, good, _FIRST_ROW)
    text = path.read_text()
    path.write_text(text[:-5])  # cut inside the last record
    with pytest.raises(DataError, match="last row is partial"):
        cs.read_events(path)
    path.write_text(text.splitlines()[0] + "\n")  # one whole row lost: the orderbook file has more
    with pytest.raises(DataError, match="truncated"):
        cs.read_events(path)
    (folder / path.name.replace("_message_", "_orderbook_")).unlink()
    with pytest.raises(InvalidInputError, match="orderbook file"):
        cs.read_events(path)
    (folder / "prices_message_.csv").write_text("1,1,1,1,1,1\n")
    with pytest.raises(InvalidInputError, match="not named like a LOBSTER"):
        cs.read_events(folder / "prices_message_.csv")


# -- Databento MBO --------------------------------------------------------------------------------
def _write_dbn(path, rows, dataset="GLBX.MDP3"):
    """A real DBN file of MBO records ``(action, side, price, size, order id, ts, flags)``."""
    dbn = pytest.importorskip("databento_dbn")
    actions = {
        "A": dbn.Action.ADD,
        "C": dbn.Action.CANCEL,
        "M": dbn.Action.MODIFY,
        "R": dbn.Action.CLEAR,
        "T": dbn.Action.TRADE,
        "F": dbn.Action.FILL,
    }
    sides = {"B": dbn.Side.BID, "A": dbn.Side.ASK, "N": dbn.Side.NONE}
    meta = dbn.Metadata(
        dataset=dataset,
        start=0,
        stype_in=dbn.SType.RAW_SYMBOL,
        stype_out=dbn.SType.INSTRUMENT_ID,
        schema=dbn.Schema.MBO,
        symbols=["TEST"],
        end=10**19,
    )
    body = b"".join(
        bytes(
            dbn.MBOMsg(
                publisher_id=1,
                instrument_id=7,
                ts_event=ts,
                order_id=oid,
                price=round(price * 1e9),
                size=size,
                action=actions[a],
                side=sides[s],
                ts_recv=ts,
                flags=flags,
                sequence=i,
            )
        )
        for i, (a, s, price, size, oid, ts, flags) in enumerate(rows)
    )
    path.write_bytes(meta.encode() + body)
    return path


_T0 = pd.Timestamp("2024-01-02 15:00", tz="UTC").value


def test_mbo_hand_built_stream(tmp_path):
    s = 1_000_000_000
    path = _write_dbn(
        tmp_path / "x.mbo.dbn",
        [
            ("R", "N", 0, 0, 0, _T0, 32 | 128),
            ("A", "B", 100.00, 5, 1, _T0, 32),
            ("A", "B", 100.00, 3, 2, _T0, 32),
            ("A", "A", 100.50, 4, 3, _T0, 32 | 128),
            ("T", "B", 100.50, 3, 9, _T0 + s, 0),  # a buy of 3 ...
            ("F", "A", 100.50, 3, 3, _T0 + s, 0),  # ... fills ask order 3
            ("C", "A", 100.50, 3, 3, _T0 + s, 128),  # ... and its cancel leaves 1
            ("M", "B", 100.25, 3, 2, _T0 + 2 * s, 128),  # order 2 moves up a tick
            ("C", "B", 100.00, 9, 42, _T0 + 3 * s, 128),  # an order never seen: orphan
            ("F", "B", 100.00, 1, 43, _T0 + 3 * s, 128),  # a fill of an order never seen: orphan
            ("M", "A", 100.75, 2, 44, _T0 + 4 * s, 128),  # a modify of an unknown order is an add
            ("C", "B", 100.00, 5, 1, _T0 + 5 * s, 128),  # order 1 gone
            ("T", "A", 100.25, 1, 3, _T0 + 6 * s, 0),  # ask order 3 is modified into the bid: a sell of 1 ...
            ("F", "A", 100.25, 1, 3, _T0 + 6 * s, 0),  # ... its own fill: no passive fill (aggressor 0)
            ("F", "B", 100.25, 1, 2, _T0 + 6 * s, 0),  # ... and bid order 2's, sold into (aggressor -1)
        ],
    )
    events = cs.read_events(path)
    assert events.tick_size == 0.25 and events.symbol == "7"
    assert events.report.dropped == {
        "other_symbol": 0,
        "trade_summary": 2,
        "orphan_cancel": 1,
        "orphan_fill": 1,
        "bad_order": 0,
        "duplicate_order": 0,
        "unknown_action": 0,
    }
    frame = events.frame()
    assert list(frame["kind"]) == ["CLEAR", "ADD", "ADD", "ADD", "PRINT", "CANCEL", "MODIFY", "ADD", "CANCEL", "PRINT", "PRINT"]
    assert list(frame["aggressor"].iloc[-2:]) == [0, -1] and list(frame["side"].iloc[-2:]) == [-1, 1]
    fill = frame.iloc[4]
    assert fill["aggressor"] == 1 and fill["side"] == -1 and events.order_ids[fill["order"]] == 3
    assert frame.iloc[5]["qty"] == 3 and frame.iloc[8]["qty"] == np.inf
    assert events.sessions.tz == "America/Chicago"
    assert events.sessions.intervals[0][0].strftime("%H:%M") == "09:00"  # the first trade, 15:00 UTC
    book = KernelBook(events)
    book.advance(events.time[-1] + 1)
    assert book.levels(1) == [(round(100.25 / 0.25), 3.0)]
    assert book.levels(-1) == [(round(100.50 / 0.25), 1.0), (round(100.75 / 0.25), 2.0)]


def test_mbo_refuses_a_truncated_file(tmp_path, shared_data):
    rows = [("A", "B", 100.00, 5, i, _T0 + i, 128) for i in range(1, 20)]
    path = _write_dbn(tmp_path / "cut.mbo.dbn", rows)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="truncated"):
        cs.read_events(path)
    cut = tmp_path / "cut2.mbo.dbn.zst"
    cut.write_bytes((shared_data / ES).read_bytes()[:400_000])
    with pytest.raises(DataError, match="truncated"):
        cs.read_events(cut)


def test_mbo_tick_and_symbol_errors(tmp_path):
    path = _write_dbn(tmp_path / "x.mbo.dbn", [("A", "B", 100.00, 5, 1, _T0, 128), ("A", "A", 100.30, 5, 2, _T0, 128)])
    with pytest.raises(InvalidInputError, match="off the grid"):
        cs.read_events(path, tick_size=0.25)
    assert cs.read_events(path, tick_size=0.1).price.tolist() == [1000, 1003]
    with pytest.raises(InvalidInputError, match="not in"):
        cs.read_events(path, symbol="ESH4")


@pytest.fixture(scope="module")
def es_events(shared_data):
    return cs.read_events(shared_data / ES)


def test_es_stream_matches_the_level_replay(shared_data, es_events):
    """The kernel's book from the events equals Databento's own level replay (mbo.replay) at every 25th event."""
    from convexsched.data.mbo import mbo_records, replay

    records, _, _ = mbo_records(shared_data / ES)
    levels = replay(records, n_levels=10)
    stamps = np.asarray(levels.stamps, np.int64)
    last_of_stamp = np.flatnonzero(np.r_[stamps[1:] != stamps[:-1], True])
    book = KernelBook(es_events)
    tick = es_events.tick_size
    for row in last_of_stamp[::25]:
        book.advance(stamps[row] + 1)
        top = levels.rows[row]
        for side, prices, sizes in ((1, top[:10], top[20:30]), (-1, top[10:20], top[30:40])):
            theirs = [(round(p / tick), float(q)) for p, q in zip(prices, sizes) if q > 0]
            assert book.levels(side, 10) == theirs
    report = es_events.report
    assert report.rows_read == 68_792 and report.dropped["trade_summary"] == 2_973


def test_es_session_is_the_traded_hour(es_events):
    """The session runs from the open to the last record, so the snapshot stamped 18:00 CT the day
    before does not make a second trading day: 60 one-minute buckets, all on the 25th."""
    executor = cs.ReplayExecutor(es_events, "buy", "1min")
    assert len(executor) == 60 and (executor.index.day == 25).all()
    assert sum(executor.usable(i) for i in range(60)) >= 59


def test_es_book_never_crossed_and_prints_at_the_touch(es_events):
    """From the open, the rebuilt book is never crossed, and the first fill of each stamp meets its side's
    best price and its resting order's own price.

    Measured: all 2,698 at their order's price, 2,664 at the touch: CME sends a fill before the
    cancel that takes the filled order out, sometimes in a later packet, so a sweep's next fill
    can start below a touch that still shows. The aggressor's own fills (a resting order modified
    into the other side; they print at the other order's price) carry aggressor 0 and are left out.
    """
    start = es_events.times[0].normalize() + pd.Timedelta(hours=17)  # 17:00 CT, the reopen
    assert es_events.sessions.intervals[0][0] == start.time()
    open_ns = start.tz_convert("UTC").value
    book = KernelBook(es_events)
    book.advance(open_ns)
    prints = (es_events.kind == PRINT) & (es_events.time >= open_ns) & (es_events.aggressor != 0)
    first = np.flatnonzero(prints & np.r_[True, es_events.time[1:] != es_events.time[:-1]])
    assert len(first) > 2000
    at_touch = at_own_price = 0
    for k in first:
        book.advance(es_events.time[k])  # the book before the fill's event
        assert not book.crossed()
        best = book.levels(es_events.side[k], 1)
        at_touch += bool(best) and best[0][0] == es_events.price[k]
        o = es_events.order[k]
        at_own_price += book.state.o_alive[o] and book.state.o_level[o] + book.price_min == es_events.price[k]
    assert at_own_price == len(first) and at_touch > 0.95 * len(first)


# -- SSE ------------------------------------------------------------------------------------------
def test_sse_book_never_crossed_in_continuous_trading(shared_data):
    """The SSE pair rebuilt (add on 2, remove on 10, reduce the passive order) is never crossed 09:30-11:30, 13:00-14:57."""
    events = cs.read_events(
        shared_data / "cn-equity-l2-dolphindb" / "SHorders.zip",
        trades=shared_data / "cn-equity-l2-dolphindb" / "SHtrans.zip",
        symbol="601825.SH",
    )
    book = KernelBook(events)
    local = events.times
    clock = local.time
    day = local[0].normalize()
    continuous = np.zeros(len(events), bool)
    for a, b in events.sessions.intervals:
        continuous |= (clock >= a) & (clock < b)
    assert continuous.sum() > 1000
    checked = 0
    for k in np.flatnonzero(continuous)[::5]:
        book.advance(events.time[k] + 1)
        assert not book.crossed(), f"crossed after event {k} at {local[k]}"
        checked += 1
    assert checked > 200 and day.hour == 0
