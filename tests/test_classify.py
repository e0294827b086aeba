"""File classes and roles (collector/classify.py) on hand-made process tables: no kernel."""

from __future__ import annotations

import argparse

import pytest

from iolens.collector.classify import (FileClassifier, RoleMapError, assign_roles, file_class,
                                       load_rules, note_file_ops, parse_rules, role_map_arg)
from iolens.collector.enrich import ProcInfo

PY = "/usr/bin/python3"


def cls(rows, rules=None):
    fc = FileClassifier(rules)
    return fc.classify([r for r, _ in rows], [o for _, o in rows], ["file"] * len(rows))


# --- file classes ---------------------------------------------------------------------------

def test_checkpoint_rows_all_checkpoint_including_open_and_close():
    rows = [("/w/out/model.pt", "open"), ("/w/out/model.pt", "write"),
            ("/w/out/model.pt", "close"), ("/w/out/model.pt", "fsync")]
    assert cls(rows) == ["checkpoint"] * 4


def test_written_state_is_remembered_across_intervals():
    fc = FileClassifier()
    assert fc.classify(["/w/m.safetensors"], ["write"], ["file"]) == ["checkpoint"]
    assert fc.classify(["/w/m.safetensors"], ["close"], ["file"]) == ["checkpoint"]
    # reading a model file back is still weights I/O on that row
    assert fc.classify(["/w/m.safetensors"], ["read"], ["file"]) == ["weights"]


def test_checkpoint_directory_any_extension():
    assert cls([("/ckpt/checkpoint-500/__0_0.distcp", "write"),
                ("/ckpt/checkpoint-500/.metadata", "write"),
                ("/ckpt/checkpoint-500/.metadata", "read")]) == ["checkpoint", "checkpoint",
                                                                  "weights"]


def test_weights_when_only_read():
    assert cls([("/models/llama/model-00001-of-00002.safetensors", "read"),
                ("/models/bert/pytorch_model.bin", "mmap"),
                ("/models/bert/pytorch_model.bin", "open")]) == ["weights"] * 3


def test_dataset_by_shard_pattern_and_format():
    assert cls([("/data/shard-00007.bin", "read"), ("/data/train.parquet", "read"),
                ("/data/imgs/cat.jpg", "open")]) == ["dataset"] * 3


def test_dataset_by_many_files_in_one_directory():
    paths = [f"/data/raw/sample_{i}.dat" for i in range(8)]
    assert cls([(p, "read") for p in paths]) == ["dataset"] * 8
    fc = FileClassifier()
    assert fc.classify(["/home/u/notes.dat"], ["read"], ["file"]) == ["other"]


def test_logs_code_system_and_non_files():
    assert cls([("/w/train.log", "write"), ("/w/runs/events.out.tfevents.1.host", "write"),
                ("/usr/lib/python3.11/os.py", "read"),
                ("/venv/lib/python3.11/site-packages/torch/lib/libtorch_cpu.so", "mmap"),
                ("/proc/self/maps", "read")]) == ["log", "log", "other", "other", "other"]
    assert FileClassifier().classify(["tcp:1.2.3.4:80", None], ["send", "read"],
                                     ["socket", "file"]) == [None, None]
    assert file_class(None, "read", "file") is None


def test_shard_named_bin_is_not_weights():
    assert file_class("/data/shard-00001.bin", "read", "file") == "dataset"
    assert file_class("/data/pytorch_model.bin", "read", "file") == "weights"


def test_user_file_rules_come_first(tmp_path):
    rules = parse_rules({"file_class": [
        {"class": "dataset", "glob": "/mnt/corpus/**"},
        {"class": "log", "regex": r"\.trace$", "ops": ["write"]}]})
    assert cls([("/mnt/corpus/a/model.pt", "read"), ("/w/x.trace", "write"),
                ("/w/x.trace", "read")], rules) == ["dataset", "log", "other"]


# --- role map files ---------------------------------------------------------------------------

def test_role_map_file_loads_and_errors_are_one_line(tmp_path):
    good = tmp_path / "roles.toml"
    good.write_text('[[role]]\nrole = "evaluator"\ncmdline = "eval\\\\.py"\n'
                    '[[file_class]]\nclass = "weights"\nglob = "/models/*"\n'
                    '[thresholds]\ndataset_dir_files = 10\n')
    rules = load_rules(str(good))
    assert rules.roles[0].role == "evaluator" and rules.thresholds["dataset_dir_files"] == 10
    assert role_map_arg(str(good)) == str(good)
    for text, msg in [('[[role]]\nrole = "x"\n', "needs at least one"),
                      ('[[file_class]]\nclass = "cache"\nglob = "*"\n', "must be one of"),
                      ('[[role]]\nrole = "x"\ncomm = "("\n', "bad regex"),
                      ('[oops]\n', "unknown table"), ('role = [', "not valid TOML"),
                      ('[thresholds]\nserver_accepts = -1\n', ">= 0")]:
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(RoleMapError, match=msg):
            load_rules(str(bad))
        with pytest.raises(argparse.ArgumentTypeError):
            role_map_arg(str(bad))
    with pytest.raises(RoleMapError, match="cannot read"):
        load_rules(str(tmp_path / "missing.toml"))
    assert load_rules(None).roles == []


# --- roles ------------------------------------------------------------------------------------

def proc(pid, ppid=None, comm="python3", cmdline="python3 train.py", exe=PY, **kw):
    info = ProcInfo(pid, ppid=ppid, comm=comm, cmdline=cmdline, exe=exe)
    info.torch = kw.pop("torch", True)
    for k, v in kw.items():
        setattr(info, k, v)
    return info


def table(*infos):
    return {i.pid: i for i in infos}


def test_dataloader_workers_and_their_trainer(tmp_path):
    trainer = proc(10, 1)
    w1 = proc(11, 10, comm="pt_data_worker", fork_copy=True)
    w2 = proc(12, 10, fork_copy=True, file_ops={"dataset": 40})   # comm not renamed (old torch)
    helper = proc(13, 10, fork_copy=True)                         # a fork that did nothing
    procs = table(proc(1, 0, comm="bash", cmdline="bash", exe="/bin/bash"), trainer, w1, w2,
                  helper)
    changed = assign_roles(procs, [w1, w2, helper], proc_root=str(tmp_path))
    assert (trainer.role, w1.role, w2.role, helper.role) == ("trainer", "dataloader",
                                                              "dataloader", None)
    assert trainer in changed and trainer.dirty
    assert procs[1].role is None


def test_ranks_from_environment_and_their_workers_keep_the_rank(tmp_path):
    launcher = proc(20, 1, cmdline="python3 -m torch.distributed.run train.py")
    env0 = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    r0 = proc(21, 20, env=env0, fork_copy=False)
    r1 = proc(22, 20, env={**env0, "RANK": "1", "LOCAL_RANK": "1"}, fork_copy=False)
    w = proc(23, 22, comm="pt_data_worker", env=r1.env, fork_copy=True)
    ck = proc(24, 21, env=env0, fork_copy=True, file_ops={"checkpoint": 3})
    procs = table(launcher, r0, r1, w, ck)
    assign_roles(procs, list(procs.values()), proc_root=str(tmp_path))
    assert [(p.role, p.rank) for p in (launcher, r0, r1, w, ck)] == [
        ("launcher", None), ("rank", 0), ("rank", 1), ("dataloader", 1),
        ("checkpoint-writer", 0)]


def test_spawned_rank_without_rank_variable_by_master_port_peer(tmp_path):
    r = proc(30, 1, env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"},
             peers={"tcp:127.0.0.1:29500"}, fork_copy=False)
    idle = proc(31, 1, env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"})
    r0 = proc(32, 1, env=r.env, peers={"tcp:127.0.0.1:29500"}, fork_copy=False,
              listens={"tcp-listen:0.0.0.0:29500"})
    # a launcher hosting the store for its rank children is not a rank itself
    agent = proc(33, 1, env=r.env, peers={"tcp:127.0.0.1:29500"}, listens=r0.listens)
    kid = proc(34, 33, env={**r.env, "RANK": "0"}, fork_copy=False)
    procs = table(r, idle, r0, agent, kid)
    assign_roles(procs, list(procs.values()), proc_root=str(tmp_path))
    assert (r.role, r.rank, idle.role) == ("rank", None, None)
    assert (r0.role, r0.rank) == ("rank", 0)
    assert (agent.role, agent.rank, kid.role, kid.rank) == ("launcher", None, "rank", 0)


def test_inference_server_needs_many_short_connections(tmp_path):
    srv = proc(40, 1, comm="uvicorn", accepts=20, short_conns=19)
    store = proc(41, 1, accepts=3, short_conns=0)      # e.g. a TCPStore: few, long-lived
    procs = table(srv, store)
    assign_roles(procs, [srv, store], proc_root=str(tmp_path))
    assert (srv.role, store.role) == ("inference-server", None)


def test_checkpoint_writer_standalone_and_trainer_without_workers(tmp_path):
    saver = proc(50, 1, file_ops={"checkpoint": 2})
    solo = proc(51, 1, file_ops={"dataset": 100, "checkpoint": 1})
    notorch = proc(52, 1, comm="cat", cmdline="cat", exe="/bin/cat", torch=False,
                   file_ops={"dataset": 5})
    procs = table(saver, solo, notorch)
    assign_roles(procs, [saver, solo, notorch], proc_root=str(tmp_path))
    assert (saver.role, solo.role, notorch.role) == ("checkpoint-writer", "trainer", None)


def test_user_role_rules_win(tmp_path):
    rules = parse_rules({"role": [{"role": "evaluator", "comm": "^python", "cmdline": "eval"}]})
    a = proc(60, 1, cmdline="python3 eval.py", file_ops={"checkpoint": 1})
    b = proc(61, 1, cmdline="python3 train.py", file_ops={"checkpoint": 1})
    procs = table(a, b)
    assign_roles(procs, [a, b], rules, proc_root=str(tmp_path))
    assert (a.role, b.role) == ("evaluator", "checkpoint-writer")


def test_no_change_no_dirty_and_evidence_marks_stale(tmp_path):
    p = proc(70, 1)
    procs = table(p)
    assign_roles(procs, [p], proc_root=str(tmp_path))
    p.dirty = False
    assert assign_roles(procs, [p], proc_root=str(tmp_path)) == [] and not p.dirty
    note_file_ops(procs, [70, 70, 70], ["checkpoint", "dataset", "weights"],
                  ["write", "open", "read"], [2, 1, 1])
    assert p.file_ops == {"checkpoint": 2, "weights": 1} and p.roles_stale
    assert assign_roles(procs, [p], proc_root=str(tmp_path)) == [p]
    assert p.role == "checkpoint-writer" and p.dirty and not p.roles_stale


def test_spawn_and_forkserver_dataloader_contexts(tmp_path):
    """Python 3.14 makes forkserver the default: workers are children of the forkserver."""
    trainer = proc(80, 1)
    fs = proc(81, 80, cmdline="python3 -c from multiprocessing.forkserver import main; "
                              "main(7, 8, ['__main__'])", fork_copy=False)
    w = proc(82, 81, cmdline=fs.cmdline, fork_copy=True, file_ops={"dataset": 9})
    rt = proc(83, 80, cmdline="python3 -c from multiprocessing.resource_tracker import main;"
                              "main(5)", fork_copy=False)
    spawn_cmd = "python3 -c from multiprocessing.spawn import spawn_main; " \
                "spawn_main(tracker_fd=5, pipe_handle=9) --multiprocessing-fork"
    trainer2 = proc(90, 1)
    sw = proc(91, 90, cmdline=spawn_cmd, fork_copy=False, file_ops={"dataset": 3})
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500", "WORLD_SIZE": "2"}
    srank = proc(92, 90, cmdline=spawn_cmd, fork_copy=False, env=env,
                 peers={"tcp:127.0.0.1:29500"}, file_ops={"dataset": 3})
    procs = table(trainer, fs, w, rt, trainer2, sw, srank)
    assign_roles(procs, [w, rt, sw, srank], proc_root=str(tmp_path))
    assert [p.role for p in (trainer, fs, w, rt)] == ["trainer", None, "dataloader", None]
    assert [p.role for p in (trainer2, sw, srank)] == ["trainer", "dataloader", "rank"]
