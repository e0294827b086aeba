"""Render a `WorkloadModel` as a DLIO benchmark workload config (YAML), and check one.

DLIO emulates a training job's loader (files of samples read by reader threads, compute
time per step) and its checkpoints. The mapping, per the model's largest dataset reader
group and largest checkpoint writer group:

- dataset: ``num_files_train`` = distinct files, ``record_length`` = bytes per open /
  samples per file, ``record_length_stdev`` from the request-size histogram,
  ``num_samples_per_file`` = requests per open (at least 1), ``data_folder`` under the
  target directory, ``format`` npz (plain binary records);
- reader: ``read_threads`` = concurrent reader processes, ``batch_size`` 1 (the capture
  sees requests, not batches), ``file_shuffle``/``sample_shuffle`` ``seed`` when the
  original read at random;
- train: ``epochs`` = passes over the files, ``computation_time`` = the think time per
  burst the fio replica uses;
- checkpoint: ``checkpoint_folder`` under the target, ``steps_between_checkpoints`` from
  the reader bursts per checkpoint open, ``fsync`` when the writer fsynced; model size in
  ``model.model_size_bytes`` (bytes written per checkpoint).

Only documented keys are written (`DLIO_KEYS`, from DLIO's configuration reference);
`check_dlio` refuses any other key, and tests parse the YAML back with `parse_yaml`, a
reader of the small YAML subset written here (DLIO itself is not a dependency).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from iolens.analysis.replica_derive import JobModel, WorkloadModel

#: section -> documented keys (DLIO configuration reference: model, framework, workflow,
#: dataset, reader, train, evaluation, checkpoint, profiling sections)
DLIO_KEYS: dict[str, frozenset[str]] = {
    "model": frozenset({"name", "type", "model_size_bytes", "model_datatype",
                        "optimizer_datatype", "optimization_groups", "num_layers",
                        "layer_parameters", "parallelism", "transformer"}),
    "framework": frozenset(),
    "workflow": frozenset({"generate_data", "train", "evaluation", "checkpoint", "profiling",
                           "debug"}),
    "dataset": frozenset({"record_length", "record_length_stdev", "record_length_resize",
                          "format", "num_files_train", "num_files_eval",
                          "num_samples_per_file", "data_folder", "num_subfolders_train",
                          "num_subfolders_eval", "file_prefix", "compression",
                          "compression_level", "enable_chunking", "chunk_size", "keep_files",
                          "record_dims", "record_element_type"}),
    "reader": frozenset({"data_loader", "batch_size", "batch_size_eval", "read_threads",
                         "pin_memory", "computation_threads", "prefetch_size",
                         "sample_shuffle", "file_shuffle", "transfer_size", "preprocess_time",
                         "preprocess_time_stdev", "odirect"}),
    "train": frozenset({"epochs", "computation_time", "computation_time_stdev",
                        "total_training_steps", "seed_change_epoch", "seed"}),
    "evaluation": frozenset({"eval_time", "eval_time_stdev", "epochs_between_evals"}),
    "checkpoint": frozenset({"checkpoint_folder", "checkpoint_after_epoch",
                             "epochs_between_checkpoints", "steps_between_checkpoints",
                             "fsync", "time_between_checkpoints", "model_datatype"}),
    "profiling": frozenset({"profiler", "iostat_devices"}),
}
FRAMEWORKS = ("pytorch", "tensorflow")
FORMATS = ("tfrecord", "csv", "npz", "npy", "jpeg", "png", "hdf5", "synthetic")
LOADERS = ("pytorch", "tensorflow", "synthetic", "dali", "native_dali")


_YAML_WORDS = frozenset({"on", "off", "yes", "no", "y", "n", "true", "false", "null", "~"})


class DlioError(ValueError):
    """The model has nothing DLIO can emulate, or a config breaks DLIO's schema."""


def _biggest(model: WorkloadModel, cls: str, reads: bool) -> JobModel | None:
    jobs = [j for j in model.jobs if j.file_class == cls
            and ((j.read.ops > 0) if reads else (j.write.ops > 0))]
    return max(jobs, key=lambda j: j.data_bytes, default=None)


def _stdev(job: JobModel) -> int:
    sizes = job.read.sizes()
    if len(sizes) < 2:
        return 0
    s = np.array([x for x, _ in sizes], dtype=np.float64)
    p = np.array([w for _, w in sizes])
    mean = float((s * p).sum())
    return int(round(math.sqrt(float((p * (s - mean) ** 2).sum()))))


def dlio_config(model: WorkloadModel, target: str) -> dict[str, Any]:
    """The DLIO config of `model` as nested dicts (see the module docstring)."""
    reader = _biggest(model, "dataset", True) or _biggest(model, "other", True)
    writer = _biggest(model, "checkpoint", False)
    if reader is None and writer is None:
        raise DlioError("no dataset reads and no checkpoint writes: nothing DLIO emulates")
    cfg: dict[str, Any] = {"model": {"name": "iolens-replica"}, "framework": "pytorch",
                           "workflow": {"generate_data": False, "train": True,
                                        "checkpoint": writer is not None}}
    steps = 1
    if reader is not None:
        samples = max(1, round(reader.ops_per_open))
        per_open = reader.read.bytes / reader.passes
        files = max(1, min(reader.files, reader.passes))
        steps = max(1, reader.passes)
        cfg["dataset"] = {"data_folder": f"{target}/dlio-data", "format": "npz",
                          "num_files_train": files, "num_samples_per_file": samples,
                          "record_length": max(1, int(round(per_open / samples))),
                          "record_length_stdev": _stdev(reader), "keep_files": True}
        shuffle = "seed" if reader.random_share > 0.5 else "off"
        cfg["reader"] = {"data_loader": "pytorch", "batch_size": 1,
                         "read_threads": reader.procs, "file_shuffle": shuffle,
                         "sample_shuffle": shuffle}
        cfg["train"] = {"epochs": max(1, round(reader.passes / files)),
                        "computation_time": round(reader.think_s, 6)}
    else:
        cfg["dataset"] = {"data_folder": f"{target}/dlio-data", "format": "npz",
                          "num_files_train": 1, "num_samples_per_file": 1,
                          "record_length": 4096}
        cfg["reader"] = {"data_loader": "pytorch", "batch_size": 1, "read_threads": 1}
        cfg["train"] = {"epochs": 1, "computation_time": round(writer.think_s, 6),
                        "total_training_steps": writer.passes}
        steps = writer.passes
    if writer is not None:
        cfg["model"]["model_size_bytes"] = int(round(writer.write.bytes / writer.passes))
        cfg["checkpoint"] = {"checkpoint_folder": f"{target}/dlio-checkpoints",
                             "steps_between_checkpoints": max(1, round(steps / writer.passes)),
                             "fsync": writer.fsyncs > 0}
    check_dlio(cfg)
    return cfg


def check_dlio(cfg: Mapping[str, Any]) -> None:
    """Raise DlioError unless every section and key is a documented DLIO one and the
    enumerated values are known."""
    for sec, val in cfg.items():
        if sec not in DLIO_KEYS:
            raise DlioError(f"unknown DLIO section: {sec}")
        if sec == "framework":
            if val not in FRAMEWORKS:
                raise DlioError(f"framework must be one of {FRAMEWORKS}")
            continue
        if not isinstance(val, Mapping):
            raise DlioError(f"section {sec} must be a mapping")
        bad = set(val) - DLIO_KEYS[sec]
        if bad:
            raise DlioError(f"unknown key(s) in {sec}: {', '.join(sorted(bad))}")
    ds = cfg.get("dataset", {})
    if ds.get("format", "npz") not in FORMATS:
        raise DlioError(f"dataset.format must be one of {FORMATS}")
    if cfg.get("reader", {}).get("data_loader", "pytorch") not in LOADERS:
        raise DlioError(f"reader.data_loader must be one of {LOADERS}")
    for key in ("num_files_train", "num_samples_per_file", "record_length"):
        if key in ds and (not isinstance(ds[key], int) or ds[key] < 1):
            raise DlioError(f"dataset.{key} must be a positive integer")


def _scalar(v: Any) -> str:
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, (int, float)):
        return repr(v)
    text = str(v)
    # YAML 1.1 readers (PyYAML, DLIO's Hydra) turn a bare off/on/yes/no into booleans
    return f'"{text}"' if text.lower() in _YAML_WORDS or not text else text


def render_dlio(model: WorkloadModel, target: str, source: str = "") -> str:
    """The YAML text (comments say what is not reproduced)."""
    cfg = dlio_config(model, target)
    lines = [f"# DLIO workload config written by `iolens replay-config` from {source}",
             f"# every file under {target}; generate the data first:",
             "#   dlio_benchmark --config-dir DIR workload=NAME"
             " ++workload.workflow.generate_data=True ++workload.workflow.train=False",
             "# not reproduced:"]
    lines += [f"#   - {n}" for n in model.not_reproduced]
    lines.append("#   - DLIO reads whole samples through its own readers: request sizes, "
                 "the sequential share and stats are DLIO's, not the original's")
    for sec, val in cfg.items():
        if isinstance(val, Mapping):
            lines.append(f"{sec}:")
            lines += [f"  {k}: {_scalar(v)}" for k, v in val.items()]
        else:
            lines.append(f"{sec}: {_scalar(val)}")
    return "\n".join(lines) + "\n"


def parse_yaml(text: str) -> dict[str, Any]:
    """Read back the YAML subset `render_dlio` writes: comments, top-level scalars and
    one level of ``key: scalar`` mappings."""
    out: dict[str, Any] = {}
    sec: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        key, _, val = line.strip().partition(":")
        val = val.strip()
        if not raw.startswith(" "):
            if val:
                out[key] = _value(val)
                sec = None
            else:
                sec = out.setdefault(key, {})
        elif sec is not None:
            sec[key] = _value(val)
        else:
            raise DlioError(f"indented line outside a section: {raw!r}")
    return out


def _value(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    if text in ("True", "true"):
        return True
    if text in ("False", "false"):
        return False
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text
