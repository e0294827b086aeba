"""`iolens replay-config`: the derivation on synthetic captures with known answers, the fio
and DLIO renderings, the fidelity comparison and the CLI (pure tier; `fio --parse-only`
checks the job files when fio is installed, as in CI).

Golden values come from the builders' arguments (see each builder's comment).
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from iolens.analysis import replica_cli
from iolens.analysis.replica_compare import class_metrics, data_latency, fidelity
from iolens.analysis.replica_derive import DeriveError, derive, file_io
from iolens.analysis.replica_dlio import DLIO_KEYS, DlioError, check_dlio, dlio_config, \
    parse_yaml, render_dlio
from iolens.analysis.replica_fio import bssplit, iolog, reader_iolog, reads_slices, \
    render_fio, uses_iolog

from tests import factories as F
from tests.analysis.test_cli import write

T = "/srv/replica"
N = 10


def _iv(i: int) -> int:
    return F.T0 + i * 10**9


def loader_and_checkpoint() -> dict[str, pa.Table]:
    """pid 200 (role dataloader) in each of N intervals opens 10 new files of
    /data/train/shard-NNNN.rec and reads each with 4 reads of 64 KiB at 100 µs (sequential):
    100 files, 100 opens, 400 reads, 400 x 65536 bytes. pid 300 (checkpoint-writer) in
    interval 5 opens /ckpt/model.pt, writes it with 8 x 1 MiB and 2 x 64 B, fsyncs once."""
    rows = []
    for i in range(N):
        for f in range(10):
            path = f"/data/train/shard-{i * 10 + f:04d}.rec"
            rows += [F.io_row(pid=200, op="open", resource=path, count=1, nbytes=0,
                              lat_ns=10_000, ts=_iv(i), file_class="dataset"),
                     F.io_row(pid=200, op="read", resource=path, count=4, nbytes=4 * 65536,
                              lat_ns=100_000, ts=_iv(i), file_class="dataset")]
    ck = "/ckpt/model.pt"
    rows += [F.io_row(pid=300, op="open", resource=ck, count=1, nbytes=0, ts=_iv(5),
                      file_class="checkpoint"),
             F.io_row(pid=300, op="write", resource=ck, count=8, nbytes=8 << 20, ts=_iv(5),
                      file_class="checkpoint"),
             F.io_row(pid=300, op="write", resource=ck, count=2, nbytes=128, ts=_iv(5),
                      file_class="checkpoint"),
             F.io_row(pid=300, op="fsync", resource=ck, count=1, nbytes=0, lat_ns=5_000_000,
                      ts=_iv(5), file_class="checkpoint")]
    procs = [{"pid": 200, "ppid": 1, "comm": "pt_data_worker", "role": "dataloader"},
             {"pid": 300, "ppid": 1, "comm": "python", "role": "checkpoint-writer"}]
    return {"io": F.io_table(rows), "procs": F.proc_table(procs),
            "health": F.health_table([F.health_row(_iv(i)) for i in range(N)])}


def jobs_by_name(tables):
    return {j.name: j for j in derive(tables).jobs}


# --- derivation ---------------------------------------------------------------------------
def test_groups_by_class_and_role_with_known_answers():
    jobs = jobs_by_name(loader_and_checkpoint())
    assert set(jobs) == {"dataset-dataloader", "checkpoint-checkpoint-writer"}
    d = jobs["dataset-dataloader"]
    assert (d.procs, d.files, d.opens, d.read.ops, d.read.bytes) == (1, 100, 100, 400,
                                                                      400 * 65536)
    assert d.read.sizes() == [(65536, 1.0)]
    assert d.random_share == 0 and d.fsyncs == 0 and d.write.ops == 0
    assert d.layout() == (100, 1, 4 * 65536)       # one file per open, 4 reads each
    assert d.span_s == pytest.approx(N)
    # blocked: 400 reads x 100 µs + 100 opens x 10 µs = 0.041 s; 100 bursts (one per open)
    assert d.busy_s == pytest.approx(0.041)
    assert d.think_s == pytest.approx((N - 0.041) / 100)
    c = jobs["checkpoint-checkpoint-writer"]
    assert (c.opens, c.fsyncs, c.write.ops, c.write.bytes) == (1, 1, 10, (8 << 20) + 128)
    assert c.fsync_per_open and c.writes_per_fsync == 10
    assert [s for s, _ in c.write.sizes()] == [64, 1 << 20]  # the two buckets, scale 1.0


def test_eof_reads_are_counted_apart():
    # 5 reads of 2 KiB and 5 reads of 0 bytes (end of file) of the same file
    rows = [F.io_row(pid=1, op="open", resource="/d/x.rec", count=5, nbytes=0,
                     file_class="dataset"),
            F.io_row(pid=1, op="read", resource="/d/x.rec", count=5, nbytes=5 * 2048,
                     file_class="dataset"),
            F.io_row(pid=1, op="read", resource="/d/x.rec", count=5, nbytes=0, size=0,
                     file_class="dataset")]
    job = derive({"io": F.io_table(rows)}).jobs[0]
    assert (job.read.ops, job.read.tiny_ops, job.read.bytes) == (5, 5, 5 * 2048)
    assert any("end-of-file" in n for n in derive({"io": F.io_table(rows)}).not_reproduced)


def test_random_share_concurrency_and_fio_mapping():
    # two processes in the same intervals, 100 preads of 4 KiB each, 50 of them random
    rows = [F.io_row(pid=p, op="read", resource=f"/d/rec{p}.bin", count=100,
                     nbytes=100 * 4096, random_ops=50, syscall="pread64", ts=_iv(i),
                     file_class="other")
            for p in (1, 2) for i in range(3)]
    rows += [F.io_row(pid=p, op="open", resource=f"/d/rec{p}.bin", count=1, nbytes=0,
                      ts=_iv(0), file_class="other") for p in (1, 2)]
    job = derive({"io": F.io_table(rows)}).jobs[0]
    assert job.procs == 2 and job.random_share == pytest.approx(0.5)
    text = render_fio(derive({"io": F.io_table(rows)}), T).text
    assert "numjobs=2" in text and "rw=randread" in text and "percentage_random=50" in text
    assert "ioengine=psync" in text


def test_random_reads_over_a_file_of_known_size_start_cold_or_cached():
    # 2000 random 4 KiB preads (8000 KiB) over a 4 MiB file (pagecache: size 4 MiB): they
    # cover 1 - e^-k of it, k = 8000 KiB / 4096 KiB; a cold start misses that much once
    from iolens.analysis.replica_fio import starts_cached
    rec = "/d/records.bin"
    rows = [F.io_row(pid=1, op="open", resource=rec, count=1, nbytes=0, file_class="other"),
            F.io_row(pid=1, op="read", resource=rec, count=2000, nbytes=2000 * 4096,
                     random_ops=2000, syscall="pread64", file_class="other")]

    def model(miss_pages: int):
        pc_t = pa.table({"ts": pa.array([F.T0], pa.int64()).cast(pa.timestamp("ns", "UTC")),
                         "interval_s": [1.0], "host": [F.HOST],
                         "pid": pa.array([1], pa.int32()), "comm": ["python"],
                         "resource": [rec], "pages_added": [miss_pages],
                         "page_bytes": [4096], "size_bytes": [4 << 20]})
        return derive({"io": F.io_table(rows), "pagecache": pc_t})

    cold, warm = model(900).jobs[0], model(10).jobs[0]
    assert cold.random_over_file and cold.layout() == (1, 1, 2000 * 4096)
    assert cold.distinct_bytes() == pytest.approx((4 << 20) * (1 - math.exp(-8000 / 4096)))
    assert not starts_cached(cold) and starts_cached(warm)
    text = render_fio(model(900), T).text
    assert f"filesize={4 << 20}" in text and f"io_size={2000 * 4096}" in text
    assert "norandommap=1" in text and "invalidate=1" in text


def test_processes_in_turn_are_not_concurrent():
    # workers re-created each interval: one pid per interval -> concurrency 1
    rows = [F.io_row(pid=10 + i, op="read", resource="/d/a.rec", count=4, nbytes=4 * 4096,
                     ts=_iv(i), file_class="dataset") for i in range(4)]
    assert derive({"io": F.io_table(rows)}).jobs[0].procs == 1


def test_folded_directory_rows_system_files_and_scratch_files():
    rows = [F.io_row(pid=1, op="read", resource=f"/data/img/{i}.jpg", count=1, nbytes=4096,
                     file_class="dataset") for i in range(3)]
    # ops folded per directory take the class of the directory's files
    rows.append(F.io_row(pid=1, op="read", resource="/data/img/", count=7, nbytes=7 * 4096,
                         file_class="other"))
    rows.append(F.io_row(pid=1, op="read", resource="/usr/lib/python3/x.py", count=9,
                         nbytes=9 << 20, file_class="other"))       # system: never replayed
    rows.append(F.io_row(pid=1, op="write", resource="/tmp/lockfile", count=1, nbytes=4,
                         file_class="other"))                       # scratch: < 64 KiB
    t = file_io(F.io_table(rows))
    assert set(t.column("file_class").to_pylist()) == {"dataset"}
    job = derive({"io": F.io_table(rows)}).jobs[0]
    assert job.read.ops == 10 and job.read.bytes == 10 * 4096


def test_mmap_reads_become_fio_mmap_jobs():
    # a weights file opened and mmap'd once; its 100 page faults brought in 100 x 128 KiB
    w = "/models/llama/model-00001-of-00002.safetensors"
    rows = [F.io_row(pid=1, op="open", resource=w, count=1, nbytes=0, file_class="weights"),
            F.io_row(pid=1, op="mmap", resource=w, count=1, nbytes=1 << 30,
                     file_class="weights")]
    faults = pa.table({"ts": pa.array([F.T0], pa.int64()).cast(pa.timestamp("ns", "UTC")),
                       "interval_s": [1.0], "host": [F.HOST], "pid": pa.array([1], pa.int32()),
                       "comm": ["python"], "resource": [w], "faults": [100],
                       "pages": [3200], "bytes": [100 * 131072], "lat_sum_ns": [10**8]})
    model = derive({"io": F.io_table(rows), "faults": faults})
    job = model.jobs[0]
    assert job.mmap_reads and (job.read.ops, job.read.bytes) == (100, 100 * 131072)
    text = render_fio(model, T).text
    assert "ioengine=mmap" in text and "bssplit=131072/100" in text
    assert "filename_format=weights-python/weights-python.$jobnum.$filenum.safetensors" in text


def test_no_file_io_is_an_error():
    rows = [F.io_row(pid=1, op="send", resource="tcp:10.0.0.1:80", count=3, nbytes=300)]
    with pytest.raises(DeriveError):
        derive({"io": F.io_table(rows)})
    with pytest.raises(DeriveError):
        derive({"io": F.io_table([])})


# --- fio ----------------------------------------------------------------------------------
def test_fio_job_file_stays_under_the_target_with_synthetic_names():
    model = derive(loader_and_checkpoint())
    job = render_fio(model, T, log_prefix="/tmp/x")
    lines = [ln for ln in job.text.splitlines() if ln and not ln.startswith(";")]
    for ln in lines:
        assert "/data/train" not in ln and "/ckpt" not in ln  # original paths: comments only
        if ln.startswith(("directory=", "filename")):
            assert ln.split("=", 1)[1].startswith((T, "dataset-", "checkpoint-"))
    assert "original files under /data/train" in job.text
    assert "filename_format=dataset-dataloader/dataset-dataloader.$jobnum.$filenum.rec" \
        in job.text
    assert "bssplit=65536/100,4096/100" in job.text and "nrfiles=100" in job.text
    assert "filesize=262144" in job.text and "thinktime=" in job.text
    # the checkpoint writer: synthesised iolog
    (path, log), = job.iologs.items()
    assert path == "/tmp/x.checkpoint-checkpoint-writer-p0.iolog"
    assert f"read_iolog={path}" in job.text
    body = log.splitlines()
    assert body[0] == "fio version 2 iolog"
    assert all(ln.startswith(T + "/checkpoint-checkpoint-writer.0.0.pt ") for ln in body[1:])
    acts = [ln.split()[1] for ln in body[1:]]
    assert acts.count("open") == 1 and acts.count("sync") == 1 and acts.count("write") == 10
    sizes = sorted(int(ln.split()[3]) for ln in body[1:] if ln.split()[1] == "write")
    assert sizes == [64, 64] + [1 << 20] * 8
    assert acts[-2:] == ["sync", "close"]


def test_bssplit_percentages_sum_to_100():
    rows = [F.io_row(pid=1, op="read", resource="/d/a.rec", count=c, nbytes=c * s, size=s,
                     file_class="dataset") for c, s in ((1, 512), (1, 4096), (1, 65536))]
    job = derive({"io": F.io_table(rows)}).jobs[0]
    parts = bssplit(job.read).split(":")
    assert sum(int(p.split("/")[1]) for p in parts) == 100 and len(parts) == 3
    assert not uses_iolog(job)  # readers always use bssplit


def test_write_iolog_spreads_fsyncs_every_n_writes():
    # 40 writes of 4 KiB and 40 of 1 MiB to one file opened twice, an fsync every 20 writes
    rows = [F.io_row(pid=1, op=op, resource="/ck/opt.pt", count=c, nbytes=b,
                     file_class="checkpoint")
            for op, c, b in (("open", 2, 0), ("write", 40, 40 * 4096), ("write", 40, 40 << 20),
                             ("fsync", 4, 0))]
    job = derive({"io": F.io_table(rows)}).jobs[0]
    assert uses_iolog(job) and not job.fsync_per_open
    acts = [ln.split()[1] for ln in iolog(job, T, 0).splitlines()[1:]]
    assert acts.count("open") == 2 and acts.count("write") == 80 and acts.count("sync") == 4



def test_workers_in_turn_count_once_by_their_lifetimes():
    # workers 11, 12, 13 each live one third of 3 intervals, one after another, and all
    # three read in interval 1 (11 ends and 12 starts in it): one at a time, by lifetimes;
    # without lifetimes the median per interval says 2 (1, 3, 2 workers per interval)
    third = 10**9
    rows = [F.io_row(pid=p, op="read", resource=f"/d/x{p}.rec", count=10, nbytes=40960,
                     ts=_iv(i), file_class="dataset")
            for p, ivs in ((11, (0, 1)), (12, (1, 2)), (13, (1, 2))) for i in ivs]
    procs = F.proc_table([{"pid": p, "ppid": 1, "comm": "pt_data_worker", "role": "dataloader",
                           "start_time": F.T0 + k * third, "exit_time": F.T0 + (k + 1) * third}
                          for k, p in enumerate((11, 12, 13))])
    assert derive({"io": F.io_table(rows), "procs": procs}).jobs[0].procs == 1
    assert derive({"io": F.io_table(rows)}).jobs[0].procs == 2


def test_span_leaves_out_the_idle_part_of_the_first_and_last_intervals():
    # 40 reads per interval in intervals 1..4, 10 in interval 0 and 30 in interval 5: the
    # group was active a quarter of its first interval and three quarters of its last
    rows = [F.io_row(pid=1, op="read", resource="/d/a.rec", count=c, nbytes=c * 4096,
                     ts=_iv(i), file_class="dataset")
            for i, c in enumerate((10, 40, 40, 40, 40, 30))]
    assert derive({"io": F.io_table(rows)}).jobs[0].span_s == pytest.approx(6 - 0.75 - 0.25)

def test_cpu_time_outside_the_io_is_burnt_by_a_cpuio_section():
    # a trainer thread on a CPU 1.5 s of every 1 s interval (two threads' worth) for N
    # intervals: 15 CPU-s, less the groups' syscall time (0.041 s of the loader, 0.00511 s
    # of the checkpoint writer) over the capture's N s -> 1.495 CPUs: 2 jobs at 75 %
    from tests.analysis import synth
    tables = synth.with_table(loader_and_checkpoint(), "cpu", {
        "ts": [_iv(i) for i in range(N)], "host": [F.HOST] * N, "pid": [400] * N,
        "tid": [400] * N, "comm": ["python"] * N, "cpu_ns": [1_500_000_000] * N})
    model = derive(tables)
    assert model.cpu_s == pytest.approx(15 - 0.041 - 0.00511)
    text = render_fio(model, T).text
    cpu = text[text.index("[cpu-load]"):].splitlines()
    assert {"ioengine=cpuio", "cpuload=75", "numjobs=2", "time_based=1",
            f"runtime={N}s"} <= set(cpu)
    plain = derive(loader_and_checkpoint())
    assert plain.cpu_s is None and "[cpu-load]" not in render_fio(plain, T).text
    assert any("no cpu table" in n for n in plain.not_reproduced)

def test_latency_of_data_ops_leaves_out_end_of_file_reads():
    # one row: 4 reads of 2 KiB at 64 µs and 4 reads of 0 bytes at 300 ns (end of file):
    # the histogram keeps the 4 data reads only, from the slowest buckets
    row = F.io_row(pid=1, op="read", resource="/d/a.rec", count=8, nbytes=4 * 2048,
                   file_class="dataset")
    row["lat_hist"] = [0] * len(row["lat_hist"])
    row["lat_hist"][8], row["lat_hist"][15] = 4, 4
    row["size_hist"] = [0] * len(row["size_hist"])
    row["size_hist"][0], row["size_hist"][11] = 4, 4
    lat = data_latency(F.io_table([row]))
    assert lat[15] == 4 and lat.sum() == 4
    m = class_metrics({"io": F.io_table([row])})["dataset"]
    assert m["lat_hist"][15] == 1.0 and 32 <= m["lat_p50_us"] < 65.6


def slice_reader() -> dict[str, pa.Table]:
    """pid 7 opens /data/shards/shard{0,1}.bin (32 MiB each, in the page cache: no pages
    added) 64 times, reading one 1 MiB sample per open: 64 reads, 64 MiB."""
    rows = []
    for s in (0, 1):
        path = f"/data/shards/shard{s}.bin"
        rows += [F.io_row(pid=7, op="open", resource=path, count=32, nbytes=0,
                          file_class="dataset"),
                 F.io_row(pid=7, op="read", resource=path, count=32, nbytes=32 << 20,
                          file_class="dataset")]
    pc_t = pa.table({"ts": pa.array([F.T0] * 2, pa.int64()).cast(pa.timestamp("ns", "UTC")),
                     "interval_s": [1.0] * 2, "host": [F.HOST] * 2,
                     "pid": pa.array([7, 7], pa.int32()), "comm": ["python"] * 2,
                     "resource": [f"/data/shards/shard{s}.bin" for s in (0, 1)],
                     "pages_added": [0, 0], "page_bytes": [4096] * 2,
                     "size_bytes": [32 << 20] * 2})
    return {"io": F.io_table(rows), "pagecache": pc_t}


def test_a_reader_of_slices_of_large_files_replays_an_open_per_slice():
    model = derive(slice_reader())
    job = model.jobs[0]
    assert reads_slices(job) and job.file_size == 32 << 20
    lines = reader_iolog(job, T, 0).splitlines()[1:]
    files = {ln.split()[0] for ln in lines}
    assert len(files) == 2  # the original's two files, not one per open
    acts = [ln.split()[1] for ln in lines]
    assert acts.count("open") == 64 and acts.count("read") == 64 and acts.count("add") == 2
    reads = [(ln.split()[0], int(ln.split()[2])) for ln in lines if ln.split()[1] == "read"]
    assert [o for f, o in reads[:3]] == [0, 1 << 20, 2 << 20]  # slice after slice
    assert sorted(o for f, o in reads if f == reads[0][0]) == [k << 20 for k in range(32)]
    text = render_fio(model, T, log_prefix="/tmp/j").text
    assert "create_only=1" in text and f"filesize={32 << 20}" in text
    assert "wait_for=dataset-python-layout" in text and "nrfiles=2" in text
    # cold at start (every page missed): bssplit, whose invalidate= can start it cold
    cold = slice_reader()
    cold["pagecache"] = cold["pagecache"].set_column(
        cold["pagecache"].schema.get_field_index("pages_added"), "pages_added",
        pa.array([8192, 8192]))
    assert not reads_slices(derive(cold).jobs[0])

@pytest.mark.skipif(not shutil.which("fio"), reason="fio not installed (apt-get install fio)")
@pytest.mark.parametrize("tables", [loader_and_checkpoint, slice_reader])
def test_fio_parses_the_job_file(tmp_path, tables):
    model = derive(tables())
    job = render_fio(model, str(tmp_path / "t"), log_prefix=str(tmp_path / "job"))
    (tmp_path / "job.fio").write_text(job.text)
    for p, text in job.iologs.items():
        Path(p).write_text(text)
    r = subprocess.run(["fio", "--parse-only", str(tmp_path / "job.fio")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


# --- DLIO ---------------------------------------------------------------------------------
def test_dlio_config_uses_documented_keys_and_parses_back():
    model = derive(loader_and_checkpoint())
    cfg = dlio_config(model, T)
    for sec, val in cfg.items():
        assert sec in DLIO_KEYS
        if isinstance(val, dict):
            assert set(val) <= DLIO_KEYS[sec]
    assert cfg["dataset"]["num_files_train"] == 100
    assert cfg["dataset"]["num_samples_per_file"] == 4
    assert cfg["dataset"]["record_length"] == 65536
    assert cfg["reader"]["read_threads"] == 1 and cfg["train"]["epochs"] == 1
    assert cfg["checkpoint"]["fsync"] is True
    assert cfg["model"]["model_size_bytes"] == (8 << 20) + 128
    assert cfg["dataset"]["data_folder"].startswith(T + "/")
    text = render_dlio(model, T)
    assert parse_yaml(text) == cfg
    assert 'file_shuffle: "off"' in text  # a bare off would be read as a boolean


def test_dlio_check_refuses_undocumented_keys():
    with pytest.raises(DlioError):
        check_dlio({"dataset": {"num_files": 3}})
    with pytest.raises(DlioError):
        check_dlio({"workload_x": {}})
    with pytest.raises(DlioError):
        check_dlio({"dataset": {"format": "parquetx"}})


# --- fidelity -----------------------------------------------------------------------------
def test_fidelity_of_a_capture_with_itself_and_with_half_of_it():
    t = loader_and_checkpoint()
    same = fidelity(class_metrics(t), class_metrics(t))
    assert {r.file_class for r in same} == {"dataset", "checkpoint"}
    assert all(r.ok in (True, None) for r in same)
    io = t["io"]
    half = io.set_column(io.schema.get_field_index("bytes"), "bytes",
                         pa.compute.divide(io.column("bytes"), 2))
    rows = {(r.file_class, r.metric): r for r in
            fidelity(class_metrics(t), class_metrics({**t, "io": half}))}
    assert rows[("dataset", "bytes")].score == 0.5 and not rows[("dataset", "bytes")].ok
    assert rows[("dataset", "opens")].ok and rows[("dataset", "seq_share")].ok


# --- CLI ----------------------------------------------------------------------------------
def cli(*argv: str) -> int:
    p = argparse.ArgumentParser()
    replica_cli.add_arguments(p)
    return replica_cli.run(p.parse_args(list(argv)))


def test_cli_writes_fio_and_dlio(tmp_path, capsys):
    cap = write(tmp_path, "cap", loader_and_checkpoint())
    out = tmp_path / "r.fio"
    assert cli(str(cap), "--target", T, "--fio", str(out), "--dlio",
               str(tmp_path / "r.yaml")) == 0
    assert out.exists() and (tmp_path / "r.checkpoint-checkpoint-writer-p0.iolog").exists()
    assert parse_yaml((tmp_path / "r.yaml").read_text())["framework"] == "pytorch"
    assert cli(str(cap), "--target", T, "--fio", str(out)) == 2  # exists: --force
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("argv, code, msg", [
    (["--target", T], 2, "nothing to write"),
    (["--target", "relative/dir", "--fio", "X"], 2, "absolute"),
    (["--target", "/a:b", "--fio", "X"], 2, "plain directory"),
    (["--target", "/", "--fio", "X"], 2, "of its own"),
    (["--target", T, "--fio", "X", "--classes", "dataset,bogus"], 2, "--classes"),
])
def test_cli_bad_usage_is_one_line(tmp_path, capsys, argv, code, msg):
    cap = write(tmp_path, "cap", loader_and_checkpoint())
    argv = [a.replace("X", str(tmp_path / "o.fio")) for a in argv]
    assert cli(str(cap), *argv) == code
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_cli_missing_capture_and_no_file_io(tmp_path, capsys):
    assert cli(str(tmp_path / "nope"), "--target", T, "--fio", str(tmp_path / "o.fio")) == 1
    net = {"io": F.io_table([F.io_row(pid=1, op="send", resource="tcp:10.0.0.1:80",
                                      count=3, nbytes=300)])}
    cap = write(tmp_path, "net", net)
    assert cli(str(cap), "--target", T, "--fio", str(tmp_path / "o.fio")) == 1
    assert "no file I/O" in capsys.readouterr().err
