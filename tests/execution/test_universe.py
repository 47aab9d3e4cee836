"""run_universe: the same keys serially and on a LocalCluster, failures reported per key."""

import numpy as np
import pandas as pd
import pytest

import convexsched as cs
from convexsched.errors import InvalidInputError
from convexsched.execution.universe import (
    as_keys,
    backtest_task,
    calibrate_task,
    load_key_book,
    plan_task,
    read_manifest,
    run_universe,
)

SSE = "cn-equity-l2-dolphindb/20211201snapshot_30stocks.zip"
SZSE = "cn-equity-l2-dolphindb/tick.zip"
FAST = ["TWAP", "scenario A"]


def _plain(table):
    table = table.copy()
    table.attrs = {}
    return table


@pytest.fixture(scope="module")
def small_universe(shared_data):
    """Two SSE stocks (a partial session), one SZSE stock (full day) and a key that must fail."""
    return pd.DataFrame(
        [
            ("600311", "2021-12-01", str(shared_data / SSE), 5_000),
            ("601689", "", str(shared_data / SSE), 5_000),
            ("300288.SZ", "2022-06-01", str(shared_data / SZSE), 20_000),
            ("NOSUCH", "", str(shared_data / SSE), 5_000),
        ],
        columns=["symbol", "day", "file", "size"],
    )


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def serial_table(small_universe):
    return run_universe(small_universe, backtest_task, strategies=FAST, progress=False)


def test_serial_backtest_reports_the_failing_key_and_completes_the_rest(serial_table, small_universe):
    table = serial_table
    assert list(table.columns[:6]) == ["symbol", "day", "file", "size", "status", "error"]
    assert list(pd.unique(table["symbol"])) == list(small_universe["symbol"])  # key order
    bad = table[table["symbol"] == "NOSUCH"]
    assert len(bad) == 1 and bad["status"].item() == "error"
    assert bad["error"].item().startswith("DataError: symbol 'NOSUCH' not in")
    good = table[table["symbol"] != "NOSUCH"]
    assert (good["status"] == "ok").all() and (good["error"] == "").all()
    # TWAP, scenario A and the two hindsight rows per key, each with the headline columns.
    assert good.groupby("symbol")["strategy"].apply(list).map(len).eq(4).all()
    assert np.isfinite(good[["cost_bps", "vs_twap_bps", "hindsight_bps"]]).all().all()
    # Capture is 0/0 only where TWAP already sits at the bound (600311: one tick for every slice).
    at_bound = good.groupby("symbol")["cost_bps"].transform(lambda c: np.ptp(c) < 1e-9)
    assert (np.isfinite(good["capture"]) | at_bound).all() and not at_bound.all()
    twap = good[good["strategy"] == "TWAP"]
    assert (twap["vs_twap_bps"] == 0).all()
    # The hindsight bound is a lower bound of every finished strategy's cost.
    finished = good[good["unfilled"] == 0]
    assert (finished["cost_bps"] >= finished["hindsight_bps"] - 1e-9).all()
    assert table.attrs["failed"] == [small_universe.iloc[3].to_dict()]
    assert len(table.attrs["seconds"]) == len(small_universe)


def test_localcluster_gives_the_serial_table(serial_table, small_universe, client):
    table = run_universe(small_universe, backtest_task, client=client, strategies=FAST, progress=False)
    pd.testing.assert_frame_equal(_plain(table), _plain(serial_table))


def test_a_raising_task_is_reported_on_the_cluster_too(client):
    def task(key, *, fail_on):
        if key["n"] == fail_on:
            raise ZeroDivisionError("boom")
        return pd.DataFrame({"square": [key["n"] ** 2]})

    keys = [{"n": n} for n in range(5)]
    serial = run_universe(keys, task, fail_on=3, progress=False)
    table = run_universe(keys, task, client=client, fail_on=3, progress=False)
    pd.testing.assert_frame_equal(_plain(table), _plain(serial))
    windowed = run_universe(keys, task, client=client, fail_on=3, progress=False, window=2)
    pd.testing.assert_frame_equal(_plain(windowed), _plain(serial))
    assert table["status"].tolist() == ["ok", "ok", "ok", "error", "ok"]
    assert table.loc[3, "error"] == "ZeroDivisionError: boom"
    assert np.isnan(table.loc[3, "square"]) and table["square"].drop(3).tolist() == [0, 1, 4, 16]


def test_inner_thread_pools_are_pinned():
    from threadpoolctl import threadpool_info

    def task(key):
        return pd.DataFrame({"threads": [max((p["num_threads"] for p in threadpool_info()), default=1)]})

    assert run_universe([{"k": 1}], task, progress=False)["threads"].item() == 1


def test_a_task_that_returns_no_frame_is_an_error():
    table = run_universe([{"k": 1}], lambda key: 42, progress=False)
    assert table["status"].item() == "error" and "must return a DataFrame" in table["error"].item()


def test_bad_keys_are_rejected():
    with pytest.raises(InvalidInputError):
        run_universe([], backtest_task)
    with pytest.raises(InvalidInputError):
        as_keys([1, 2])
    with pytest.raises(InvalidInputError):
        run_universe([{"k": 1}], backtest_task, threads=0)
    with pytest.raises(InvalidInputError):
        run_universe([{"k": 1}], backtest_task, window=0)


def test_plan_and_calibrate_tasks(shared_data, small_universe):
    keys = small_universe.iloc[:1]
    plan = run_universe(keys, plan_task, progress=False)
    assert (plan["status"] == "ok").all() and plan["kkt_ok"].all()
    assert plan["x"].sum() == pytest.approx(5_000)
    assert plan["bucket"].iloc[0].date() == pd.Timestamp("2021-12-02").date()  # the next business day
    fit = run_universe([{"symbol": "600311", "files": str(shared_data / SSE)}], calibrate_task, max_iter=20,
                       progress=False)  # fmt: skip
    assert fit["status"].item() == "ok", fit["error"].item()
    assert fit["n_days"].item() == 1 and fit["n_rows"].item() > 100 and np.isfinite(fit["mae"].item())


def test_key_book_is_cut_to_its_day(shared_data):
    book = load_key_book({"symbol": "300288.SZ", "file": str(shared_data / SZSE), "day": "2022-06-01"})
    assert set(book.frame.index.tz_convert("Asia/Shanghai").date) == {pd.Timestamp("2022-06-01").date()}
    with pytest.raises(cs.DataError, match="no rows on"):
        load_key_book({"symbol": "300288.SZ", "file": str(shared_data / SZSE), "day": "2022-06-02"})


def test_manifest_resolves_relative_files(tmp_path, shared_data):
    (tmp_path / "m.csv").write_text(f"symbol,day,file,size\n600311,,{shared_data / SSE},100\n")
    table = read_manifest(tmp_path / "m.csv")
    assert table["file"].item() == str(shared_data / SSE) and table["day"].item() == ""
    (tmp_path / "bad.csv").write_text("symbol,file\nA,x\n")
    with pytest.raises(cs.DataError, match="lacks columns"):
        read_manifest(tmp_path / "bad.csv")


def test_cli_universe_serial_and_on_a_cluster_write_equal_tables(tmp_path, small_universe, client, capsys):
    from convexsched.cli import main

    manifest = tmp_path / "universe.csv"
    small_universe.to_csv(manifest, index=False)
    common = ["backtest", "--universe", str(manifest), "--strategies", "TWAP,scenario A"]
    assert main([*common, "-o", str(tmp_path / "serial.csv")]) == 1  # NOSUCH failed
    out, err = capsys.readouterr()
    assert "4 keys serially" in out and "3 ok, 1 failed" in out and "NOSUCH" in err
    # An existing cluster by its address (the "local" branch starts its own the same way).
    assert main([*common, "--scheduler", client.scheduler.address, "-o", str(tmp_path / "dask.csv")]) == 1
    out, _ = capsys.readouterr()
    assert "(2 workers)" in out
    assert (tmp_path / "serial.csv").read_bytes() == (tmp_path / "dask.csv").read_bytes()
    assert main(["backtest", "--synthetic"]) == 2  # without --universe, --total is required


def test_walk_forward_fits_on_earlier_days_only(tmp_path):
    from convexsched.execution.universe import walk_forward_task

    days = ["2024-03-04", "2024-03-05", "2024-03-06"]
    frames = [cs.synthetic_book(seed=k, date=day, interval="30s").frame for k, day in enumerate(days)]
    path = tmp_path / "three_days.csv"
    pd.concat(frames).reset_index().assign(symbol="SYNTH").to_csv(path, index=False)
    key = {"symbol": "SYNTH", "file": str(path), "day": days[2], "size": 20_000, "sessions": "us_equity",
           "history": str(path)}  # fmt: skip
    table = run_universe([key, {**key, "day": days[0]}], walk_forward_task, strategies=["TWAP", "static A"],
                         max_iter=20, progress=False)  # fmt: skip
    good = table[table["day"] == days[2]]
    assert (good["status"] == "ok").all() and (good["train_days"] == 2).all()
    assert set(good["strategy"]) == {"TWAP", "static A", "hindsight A", "hindsight B"}
    assert good["n_buckets"].eq(390).all() and np.isfinite(good["cost_bps"]).all()
    first = table[table["day"] == days[0]]  # nothing before the first day: reported, not faked
    assert first["status"].item() == "error" and "no history before 2024-03-04" in first["error"].item()


def test_make_manifest_sizes_at_a_share_of_volume(shared_data):
    from convexsched.execution.universe import make_manifest

    manifest = make_manifest([shared_data / SSE], participation=0.05)
    assert len(manifest) == 30 and set(manifest["day"]) == {"2021-12-01"}
    assert (manifest["size"] % 100 == 0).all() and (manifest["size"] >= 100).all()
    ratio = manifest["size"] / manifest["volume"]
    assert ratio[manifest["volume"] > 20_000].between(0.04, 0.06).all()


def _exit_on_one(key):
    import os

    if key["n"] == 1:
        os._exit(3)  # the worker process dies mid-task
    return pd.DataFrame({"v": [key["n"]]})


def test_a_dead_worker_is_reported_as_lost(client):
    # Last in the file: the nanny restarts the killed workers, the cluster stays usable.
    table = run_universe([{"n": 0}, {"n": 1}, {"n": 2}], _exit_on_one, client=client, progress=False)
    assert table["status"].tolist() == ["ok", "lost", "ok"]
    assert table.loc[1, "error"].startswith("KilledWorker") and table["v"].drop(1).tolist() == [0, 2]


# ---------------------------------------------------------------- synthetic and dataset sources, batches


@pytest.fixture(scope="module")
def synthetic_keys():
    from convexsched.data.universe import synthetic_universe

    keys = synthetic_universe(6, seed=5)
    keys["day"] = "2024-03-05"
    keys["size"] = (0.01 * keys["volume_per_minute"] * 237).round(-2).clip(lower=100)
    return keys


def test_batches_of_keys_on_the_cluster_give_the_serial_table(client, synthetic_keys):
    def task(key):
        return pd.DataFrame({"pid": [__import__("os").getpid()], "twice": [2 * key["size"]]})

    serial = run_universe(synthetic_keys, task, progress=False)
    for batch, window in ((4, None), (1, 2), (None, 1)):
        table = run_universe(synthetic_keys, task, client=client, progress=False, batch=batch, window=window)
        pd.testing.assert_frame_equal(_plain(table.drop(columns="pid")), _plain(serial.drop(columns="pid")))
    # A batch runs in one worker call: keys 0-3 share a process.
    table = run_universe(synthetic_keys, task, client=client, progress=False, batch=4)
    assert table["pid"].iloc[:4].nunique() == 1
    with pytest.raises(InvalidInputError, match="batch"):
        run_universe(synthetic_keys, task, client=client, batch=0)


def test_a_dead_worker_loses_its_whole_batch(client):
    table = run_universe([{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}], _exit_on_one, client=client, progress=False,
                         batch=2)  # fmt: skip
    assert table["status"].tolist() == ["lost", "lost", "ok", "ok"]


def test_synthetic_keys_plan_a_b_c_and_backtest(synthetic_keys):
    plan = run_universe(synthetic_keys, plan_task, objective=["A", "B", "C"], progress=False)
    assert (plan["status"] == "ok").all() and plan["kkt_ok"].all()
    sums = plan.groupby(["symbol", "objective"])["x"].sum().unstack()
    np.testing.assert_allclose(sums.to_numpy(), synthetic_keys.set_index("symbol")["size"].to_numpy()[:, None] * [1, 1, 1])
    # The synthetic fast path gives the curves the book would: the same plan through the book.
    key = synthetic_keys.iloc[0].to_dict()
    via_book = plan_task(key, objective=["A", "C"], freq="60s")
    direct = plan[(plan["symbol"] == key["symbol"]) & plan["objective"].isin(["A", "C"])]
    np.testing.assert_allclose(via_book["x"].to_numpy(), direct["x"].to_numpy(), rtol=1e-9, atol=1e-6)
    with pytest.raises(InvalidInputError, match="unknown objective"):
        plan_task(key, objective=["D"])
    table = run_universe(synthetic_keys.iloc[:2], backtest_task, strategies=FAST, progress=False)
    assert (table["status"] == "ok").all() and table["n_buckets"].eq(237).all()


def test_a_parquet_dataset_is_a_universe_source(tmp_path, synthetic_keys):
    from convexsched.data.universe import dataset_manifest, universe_day, write_book_dataset

    day = universe_day(synthetic_keys.iloc[:3], "2024-03-05")
    write_book_dataset((day.book(i) for i in range(3)), tmp_path / "books")
    keys = dataset_manifest(tmp_path / "books", size=dict(zip(synthetic_keys["symbol"], synthetic_keys["size"])))
    from_dataset = run_universe(keys, backtest_task, strategies=FAST, progress=False)
    from_keys = run_universe(synthetic_keys.iloc[:3], backtest_task, strategies=FAST, progress=False)
    assert (from_dataset["status"] == "ok").all()
    columns = ["strategy", "cost_bps", "vs_twap_bps", "hindsight_bps", "unfilled"]
    pd.testing.assert_frame_equal(from_dataset[columns], from_keys[columns])


# ---------------------------------------------------------------- universes that finish


def test_a_hanging_key_times_out_and_the_others_complete():
    release = __import__("threading").Event()

    def task(key):
        if key["n"] == 1:
            release.wait()  # hangs until the test ends
        return pd.DataFrame({"square": [key["n"] ** 2]})

    try:
        table = run_universe([{"n": n} for n in range(3)], task, timeout=3.0, progress=False)
    finally:
        release.set()
    assert table["status"].tolist() == ["ok", "timeout", "ok"]
    assert "still running after 3 s" in table.loc[1, "error"] and table["square"].drop(1).tolist() == [0, 4]
    with pytest.raises(InvalidInputError, match="timeout must be > 0"):
        run_universe([{"n": 0}], task, timeout=0)


def test_a_hanging_key_times_out_on_the_cluster_too(client):
    def task(key):
        if key["n"] == 0:
            __import__("time").sleep(60)  # the abandoned thread ends on its own
        return pd.DataFrame({"square": [key["n"] ** 2]})

    table = run_universe([{"n": n} for n in range(3)], task, client=client, timeout=5.0, progress=False)
    assert table["status"].tolist() == ["timeout", "ok", "ok"] and table["square"].drop(0).tolist() == [1, 4]


def test_an_interrupt_returns_the_finished_keys():
    def task(key):
        if key["n"] == 2:
            raise KeyboardInterrupt
        return pd.DataFrame({"square": [key["n"] ** 2]})

    table = run_universe([{"n": n} for n in range(5)], task, progress=False)
    assert table.attrs["interrupted"] and table.attrs["finished"] == 2
    assert table["status"].tolist() == ["ok", "ok", "interrupted", "interrupted", "interrupted"]
    assert table["square"].iloc[:2].tolist() == [0, 1]


def test_repeated_keys_are_refused():
    with pytest.raises(InvalidInputError, match="key 2 repeats key 0"):
        run_universe([{"symbol": "A", "day": "2024-01-02"}, {"symbol": "B"}, {"symbol": "A", "day": "2024-01-02"}],
                     lambda key: pd.DataFrame({"x": [1]}))  # fmt: skip


def test_manifest_edges(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "m.csv").write_text("symbol,day,file,size\n000400,,../book.csv,100\n")
    table = read_manifest(tmp_path / "sub" / ".." / "m.csv")
    assert table["symbol"].item() == "000400" and table.attrs["outside"] == 1
    (tmp_path / "sub" / "m.csv").write_text("symbol,day,file,size\nA,,book.csv,100\n,,book.csv,100\n")
    with pytest.raises(cs.DataError, match=r"the symbol cell is empty on line\(s\) \[3\]"):
        read_manifest(tmp_path / "sub" / "m.csv")


class _Silent:
    """A loopback server that accepts connections and then says nothing (or answers HTTP)."""

    def __init__(self, http=False):
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.http, self.connections, self.stop = http, [], threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.connections.append(conn)
            if self.http:
                conn.settimeout(5)
                try:
                    conn.recv(1024)  # the request
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join()
        for conn in self.connections:
            conn.close()
        self.server.close()


@pytest.mark.parametrize("http", [False, True])
def test_an_address_that_is_no_dask_scheduler_is_a_clear_error(http):
    pytest.importorskip("distributed")
    from convexsched.execution.universe import cluster

    server = _Silent(http)
    try:
        message = "answers HTTP, not the Dask protocol" if http else "sent no Dask handshake within 1 s"
        with pytest.raises(InvalidInputError, match=message):
            with cluster(server.address, timeout=1.0):
                pass
    finally:
        server.close()
    with pytest.raises(InvalidInputError, match="cannot connect"):
        with cluster(server.address, timeout=0.5):  # closed now: refused
            pass


def test_a_real_scheduler_passes_the_check(client):
    from convexsched.execution.universe import check_scheduler

    check_scheduler(client.scheduler.address, timeout=5)
