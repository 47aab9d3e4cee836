"""Session buckets: the continuous session only, every bucket listed, gaps reported."""

import pandas as pd
import pytest

import convexsched as cs


@pytest.fixture(scope="module")
def szse(shared_data):
    return cs.read_book(
        shared_data / "cn-equity-l2-dolphindb/tick.zip", symbol="300274.SZ"
    )  # has snapshots at 11:30:00 and 14:57:00


def test_us_day_has_390_minute_buckets():
    book = cs.synthetic_book(seed=0)
    buckets = cs.session_buckets(book, "1min")
    assert len(buckets.index) == 390 and len(buckets.empty) == 0 and buckets.n_outside == 0
    assert buckets.index[0] == pd.Timestamp("2024-03-05 09:30", tz="America/New_York")
    assert buckets.index[-1] == pd.Timestamp("2024-03-05 15:59", tz="America/New_York")
    assert buckets.counts.sum() == len(book) and (buckets.counts == 20).all()  # 3-s snapshots
    assert len(cs.session_buckets(book, "5min").index) == 78


def test_chinese_day_skips_lunch_and_closing_call(szse):
    buckets = cs.session_buckets(szse, "1min")
    assert len(buckets.index) == 120 + 117
    times = buckets.index.time
    assert not ((times >= pd.Timestamp("11:30").time()) & (times < pd.Timestamp("13:00").time())).any()
    assert buckets.index[119] == pd.Timestamp("2022-06-01 11:29", tz="Asia/Shanghai")
    assert buckets.index[120] == pd.Timestamp("2022-06-01 13:00", tz="Asia/Shanghai")
    assert buckets.index[-1] == pd.Timestamp("2022-06-01 14:56", tz="Asia/Shanghai")
    # Every continuous snapshot lands in a bucket, including those stamped 11:30:00 exactly.
    assert buckets.n_outside == 0
    for end, last_bucket in (("11:30", 119), ("14:57", 236)):
        at_end = buckets.labels[szse.frame.index == pd.Timestamp(f"2022-06-01 {end}", tz="Asia/Shanghai")]
        assert len(at_end) == 1 and at_end.iloc[0] == buckets.index[last_bucket]


def test_five_minute_buckets_end_short_at_the_session_end(szse):
    buckets = cs.session_buckets(szse, "5min")
    assert len(buckets.index) == 24 + 24  # 13:00-14:57 = 23 full buckets and 14:55-14:57
    assert szse.frame.index[-1] == pd.Timestamp("2022-06-01 14:57", tz="Asia/Shanghai")
    assert buckets.labels.iloc[-1] == buckets.index[-1] == pd.Timestamp("2022-06-01 14:55", tz="Asia/Shanghai")


def test_missing_data_shows_as_empty_buckets():
    book = cs.synthetic_book(seed=1)
    t = book.frame.index
    book.frame = book.frame[(t < pd.Timestamp("2024-03-05 10:00", tz=t.tz)) | (t >= pd.Timestamp("2024-03-05 10:05", tz=t.tz))]
    buckets = cs.session_buckets(book)
    assert len(buckets.index) == 390
    assert list(buckets.empty.strftime("%H:%M")) == ["10:00", "10:01", "10:02", "10:03", "10:04"]
    assert "5 without snapshots" in str(buckets)


def test_snapshots_outside_the_session_are_counted(shared_data):
    nvda = cs.read_book(shared_data / "databento-fixtures/current/XNAS.ITCH/test_data.mbp-10.dbn.zst")
    buckets = cs.session_buckets(nvda)
    assert buckets.n_outside == 2 and buckets.labels.isna().all()  # 04:01 New York, pre-market
    assert len(buckets.index) == 390 and len(buckets.empty) == 390


def test_sessions_are_required_and_validated(shared_data):
    es = cs.read_book(shared_data / "databento-fixtures/current/GLBX.MDP3/test_data.mbp-10.dbn.zst")
    with pytest.raises(cs.InvalidInputError, match="no trading sessions"):
        cs.session_buckets(es)
    custom = cs.Sessions((("00:00", "00:01"),), "UTC", "first minute")
    assert cs.session_buckets(es, "10s", sessions=custom).counts.iloc[0] == 4
    with pytest.raises(cs.InvalidInputError, match="overlap"):
        cs.Sessions((("09:30", "12:00"), ("11:00", "14:00")), "UTC")
    with pytest.raises(cs.InvalidInputError, match="freq"):
        cs.session_buckets(cs.synthetic_book(), "0s")
