"""File classes and process roles: the one place where these rules live (see docs/roles.md).

Two entry points, both fed only with what the kernel and /proc show (the workload is never
touched, imported or asked):

- `FileClassifier.classify(resources, ops, kinds)` -> one class per `io` row: dataset,
  checkpoint, weights, log, other (None for non-files). It remembers, across intervals, which
  files were written and which directories had many files read.
- `assign_roles(procs, changed, rules)` sets `ProcInfo.role` / `.rank` from the process tree,
  comm, a few environment variables, accept/connection counters and the file classes each
  process did I/O on (`note_file_ops`). Roles: dataloader, checkpoint-writer, rank,
  inference-server, trainer, launcher (or None).

`load_rules(path)` reads a user's `--role-map` TOML file whose rules are tried before the
built-in ones:

    [[role]]                        # all given patterns must match (Python regex, search)
    role = "inference-server"
    comm = "^triton"
    cmdline = "serve\\.py"          # also: exe = "..."

    [[file_class]]                  # glob (fnmatch: * also crosses '/') or regex on the path
    class = "dataset"
    glob = "/mnt/corpus/*"
    ops = ["read"]                  # optional: only rows of these ops

    [thresholds]                    # optional: the numbers the built-in rules use
    dataset_dir_files = 8
"""

from __future__ import annotations

import argparse
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FILE_CLASSES = ("dataset", "checkpoint", "weights", "log", "other")
ROLES = ("dataloader", "checkpoint-writer", "rank", "inference-server", "trainer", "launcher")

#: the numbers behind the built-in rules; a role map's [thresholds] table may change them.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "dataset_dir_files": 8,    # distinct files read in one directory -> it is a dataset root
    "server_accepts": 4,       # accepted connections ...
    "server_short_conns": 3,   # ... of which closed again within 5 s -> a server
}

# --- file classes ---------------------------------------------------------------------------
# Extensions (lower case, after the last dot of the file name) are looked up in sets: this
# runs for every new path of every interval, so it avoids unanchored regex searches.
# Model files whatever their name: a written one is a checkpoint, a read one weights.
_MODEL_EXT = frozenset(("pt", "pth", "ckpt", "safetensors", "gguf", "ggml", "onnx", "distcp",
                        "pdparams", "tflite"))
# Extensions that hold models only when the name says so (pytorch_model.bin, optimizer.pkl...).
_WEAK_MODEL_EXT = frozenset(("bin", "h5", "hdf5", "pkl", "pickle", "npz", "msgpack", "joblib",
                             "keras"))
_MODEL_NAME = re.compile(r"(model|weight|adapter|lora|optim|state_dict|checkpoint|ckpt|"
                         r"-of-\d+|rng_state|scheduler|trainer_state)", re.I)
# A directory named checkpoint*/ckpt* (DCP shards, HF save_pretrained folders, ...).
_CKPT_DIR = re.compile(r"/(checkpoint|ckpt)[^/]*/", re.I)
_LOG_EXT = frozenset(("log", "out", "err"))
_LOG_NAME = re.compile(r"(\.log\.\d+$|^events\.out\.tfevents)", re.I)
_LOG_DIRS = ("/wandb/", "/mlruns/")
# Shard names and data formats: a read of one of these is dataset I/O on its own.
_SHARD = re.compile(r"(shard|part|chunk|split|train|val|test)[-_.]?\d", re.I)
_DATA_EXT = frozenset(("tfrecord", "tfrecords", "parquet", "arrow", "npy", "jpg", "jpeg", "png",
                       "webp", "bmp", "tif", "tiff", "wav", "flac", "mp3", "mp4", "tar", "jsonl",
                       "csv", "tsv", "idx", "lmdb", "mdb", "zarr", "h5ad", "beton", "rec"))
_SYSTEM_PREFIX = ("/proc/", "/sys/", "/dev/", "/usr/", "/lib", "/bin/", "/sbin/", "/etc/",
                  "/run/", "/var/lib/", "/var/cache/", "/opt/conda/lib/", "/opt/conda/pkgs/")
_CODE_DIRS = ("/site-packages/", "/dist-packages/", "/__pycache__/")
_CODE_EXT = frozenset(("py", "pyc", "pyi", "so", "egg-link", "cfg", "ini", "toml", "yaml", "yml"))

DATA_OPS = ("read", "mmap")
WRITE_OPS = ("write", "fsync")


@dataclass
class RoleRule:
    role: str
    comm: re.Pattern[str] | None = None
    cmdline: re.Pattern[str] | None = None
    exe: re.Pattern[str] | None = None

    def matches(self, info: Any) -> bool:
        for attr in ("comm", "cmdline", "exe"):
            pat = getattr(self, attr)
            if pat is not None and not pat.search(getattr(info, attr) or ""):
                return False
        return True


@dataclass
class ClassRule:
    file_class: str
    pattern: re.Pattern[str]
    ops: frozenset[str] | None = None

    def matches(self, path: str, op: str) -> bool:
        return (self.ops is None or op in self.ops) and bool(self.pattern.search(path))


@dataclass
class Rules:
    """User rules (tried first) and the thresholds of the built-in rules."""

    roles: list[RoleRule] = field(default_factory=list)
    classes: list[ClassRule] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    source: str | None = None

    def role_for(self, info: Any) -> str | None:
        for r in self.roles:
            if r.matches(info):
                return r.role
        return None

    def class_for(self, path: str, op: str) -> str | None:
        for r in self.classes:
            if r.matches(path, op):
                return r.file_class
        return None


DEFAULT_RULES = Rules()


class RoleMapError(ValueError):
    """A --role-map file that cannot be used (message names the file and the entry)."""


def _regex(text: Any, where: str) -> re.Pattern[str]:
    if not isinstance(text, str) or not text:
        raise RoleMapError(f"{where}: pattern must be a non-empty string")
    try:
        return re.compile(text)
    except re.error as exc:
        raise RoleMapError(f"{where}: bad regex {text!r}: {exc}") from None


def parse_rules(data: Mapping[str, Any], source: str = "<role map>") -> Rules:
    """Build Rules from a decoded TOML document (raises RoleMapError on anything unknown)."""
    unknown = set(data) - {"role", "file_class", "thresholds"}
    if unknown:
        raise RoleMapError(f"{source}: unknown table(s) {sorted(unknown)} "
                           "(expected [[role]], [[file_class]], [thresholds])")
    rules = Rules(source=source)
    for i, ent in enumerate(data.get("role", []) or []):
        where = f"{source}: [[role]] #{i + 1}"
        if not isinstance(ent, Mapping):
            raise RoleMapError(f"{where}: must be a table")
        bad = set(ent) - {"role", "comm", "cmdline", "exe"}
        if bad:
            raise RoleMapError(f"{where}: unknown key(s) {sorted(bad)}")
        role = ent.get("role")
        if not isinstance(role, str) or not role.strip() or len(role) > 32:
            raise RoleMapError(f"{where}: 'role' must be a name of 1-32 characters")
        pats = {k: _regex(ent[k], f"{where} {k}") for k in ("comm", "cmdline", "exe") if k in ent}
        if not pats:
            raise RoleMapError(f"{where}: needs at least one of comm, cmdline, exe")
        rules.roles.append(RoleRule(role.strip(), **pats))
    for i, ent in enumerate(data.get("file_class", []) or []):
        where = f"{source}: [[file_class]] #{i + 1}"
        if not isinstance(ent, Mapping):
            raise RoleMapError(f"{where}: must be a table")
        bad = set(ent) - {"class", "glob", "regex", "ops"}
        if bad:
            raise RoleMapError(f"{where}: unknown key(s) {sorted(bad)}")
        cls = ent.get("class")
        if cls not in FILE_CLASSES:
            raise RoleMapError(f"{where}: 'class' must be one of {', '.join(FILE_CLASSES)}")
        if ("glob" in ent) == ("regex" in ent):
            raise RoleMapError(f"{where}: give exactly one of 'glob' or 'regex'")
        if "glob" in ent:
            if not isinstance(ent["glob"], str) or not ent["glob"]:
                raise RoleMapError(f"{where}: 'glob' must be a non-empty string")
            pat = re.compile(fnmatch.translate(ent["glob"].replace("**", "*")))
        else:
            pat = _regex(ent["regex"], f"{where} regex")
        ops = ent.get("ops")
        if ops is not None and (not isinstance(ops, list) or
                                not all(isinstance(o, str) for o in ops)):
            raise RoleMapError(f"{where}: 'ops' must be a list of op names")
        rules.classes.append(ClassRule(cls, pat, frozenset(ops) if ops is not None else None))
    th = data.get("thresholds", {}) or {}
    if not isinstance(th, Mapping):
        raise RoleMapError(f"{source}: [thresholds] must be a table")
    for k, v in th.items():
        if k not in DEFAULT_THRESHOLDS:
            raise RoleMapError(f"{source}: unknown threshold {k!r} "
                               f"(known: {', '.join(DEFAULT_THRESHOLDS)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise RoleMapError(f"{source}: threshold {k} must be a number >= 0")
        rules.thresholds[k] = float(v)
    return rules


def load_rules(path: str | None) -> Rules:
    """The rules of a --role-map TOML file (built-in defaults when `path` is None)."""
    if not path:
        return Rules()
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise RoleMapError("--role-map needs Python 3.11+ (tomllib) or the tomli package") \
                from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise RoleMapError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RoleMapError(f"{path}: not valid TOML: {exc}") from None
    return parse_rules(data, path)


def role_map_arg(text: str) -> str:
    """argparse `type=` for --role-map: the file must load; returns the path."""
    try:
        load_rules(text)
    except RoleMapError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _split(path: str) -> tuple[str, str]:
    name = path.rpartition("/")[2]
    return name, name.rpartition(".")[2].lower() if "." in name else ""


def _is_model(path: str) -> bool:
    name, ext = _split(path)
    if ext in _MODEL_EXT or _CKPT_DIR.search(path):
        return True
    return ext in _WEAK_MODEL_EXT and bool(_MODEL_NAME.search(name))


def _is_system(path: str) -> bool:
    if path.startswith(_SYSTEM_PREFIX) or any(d in path for d in _CODE_DIRS):
        return True
    name, ext = _split(path)
    return ext in _CODE_EXT or ".so." in name


def file_class(resource: str | None, op: str, kind: str, written: bool = False,
               dataset_dir: bool = False, rules: Rules | None = None) -> str | None:
    """Class of a file resource for one op, stateless (None for non-files).

    `written`: the file has been written during the capture (a model file that was written is
    a checkpoint on every row, its open and close included). `dataset_dir`: its directory had
    many distinct files read. `FileClassifier` supplies both from what it has seen.
    """
    if kind != "file" or not resource:
        return None
    user = (rules or DEFAULT_RULES).class_for(resource, op) if rules and rules.classes else None
    if user is not None:
        return user
    return _resolve(_path_kind(resource), op, written, dataset_dir)


def _path_kind(path: str) -> str:
    """What the path alone says: log, system, model, data (shard/format name) or plain."""
    name, ext = _split(path)
    if ext in _LOG_EXT or _LOG_NAME.search(name) or any(d in path for d in _LOG_DIRS):
        return "log"
    if _is_system(path):
        return "system"
    if _is_model(path):
        return "model"
    return "data" if ext in _DATA_EXT or _SHARD.search(name) else "plain"


def _resolve(kind: str, op: str, written: bool, dataset_dir: bool) -> str:
    if kind == "log":
        return "log"
    if kind == "system":
        return "other"
    if kind == "model":
        if op in WRITE_OPS or (written and op not in DATA_OPS):
            return "checkpoint"
        return "weights"
    return "dataset" if kind == "data" or dataset_dir else "other"


_MISSING = object()


class FileClassifier:
    """Per-capture memory for `file_class`: files written so far, directories with many reads.

    `classify` looks at a whole interval first (so the open row of a file written later in the
    same interval is already a checkpoint), then classifies each row. Memory is bounded.
    """

    MAX_DIRS = 50_000
    MAX_WRITTEN = 100_000

    def __init__(self, rules: Rules | None = None) -> None:
        self.rules = rules or Rules()
        self._dir_files: dict[str, set[str]] = {}
        self.dataset_dirs: set[str] = set()
        self.written: set[str] = set()
        self._kinds: dict[str, str] = {}  # path -> _path_kind (bounded cache)
        self._cache: dict[tuple[str, str], str | None] = {}  # (path, op) -> class
        self._clears = 0  # times `written` was emptied (its length alone would not show it)

    def _kind(self, path: str) -> str:
        k = self._kinds.get(path)
        if k is None:
            if len(self._kinds) >= 200_000:
                self._kinds.clear()
            k = self._kinds[path] = _path_kind(path)
        return k

    def _note(self, path: str, op: str) -> None:
        if op in WRITE_OPS:
            if len(self.written) >= self.MAX_WRITTEN:
                self.written.clear()
                self._clears += 1
            self.written.add(path)
            return
        if op not in DATA_OPS or self._kind(path) in ("system", "log"):
            return
        d, _, name = path.rpartition("/")
        if not d or d in self.dataset_dirs:
            return
        files = self._dir_files.get(d)
        if files is None:
            if len(self._dir_files) >= self.MAX_DIRS:
                self._dir_files.pop(next(iter(self._dir_files)))
            files = self._dir_files[d] = set()
        files.add(name)
        if len(files) >= self.rules.thresholds["dataset_dir_files"]:
            self.dataset_dirs.add(d)
            del self._dir_files[d]

    def classify(self, resources: Sequence[str | None], ops: Sequence[str],
                 kinds: Sequence[str]) -> list[str | None]:
        """file_class per row. A (path, op) pair seen before, while no file was written and
        no directory became a dataset directory, has nothing new to teach and keeps its class
        (a loader reading the same 20,000 files every second costs one lookup per row)."""
        cache, n0 = self._cache, self._state()
        fresh = [(r, o) for r, o, k in zip(resources, ops, kinds, strict=True)
                 if k == "file" and r and (r, o) not in cache]
        for r, o in fresh:
            self._note(r, o)
        if self._state() != n0 or len(cache) > 400_000:
            cache.clear()  # what was learnt may change earlier answers
        out: list[str | None] = []
        user = self.rules.classes
        for r, o, k in zip(resources, ops, kinds, strict=True):
            if k != "file" or not r:
                out.append(None)
                continue
            c = cache.get((r, o), _MISSING)
            if c is _MISSING:
                c = self.rules.class_for(r, o) if user else None
                c = cache[(r, o)] = c or _resolve(self._kind(r), o, r in self.written,
                                                  r.rpartition("/")[0] in self.dataset_dirs)
            out.append(c)
        return out

    def _state(self) -> tuple[int, int, int]:
        """Changes whenever what classify learns could change an earlier answer."""
        return len(self.written), len(self.dataset_dirs), self._clears


# --- roles ----------------------------------------------------------------------------------
_RANK_ENV = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")


def note_file_ops(procs: Mapping[int, Any], pids: Iterable[int], classes: Iterable[str | None],
                  ops: Iterable[str], counts: Iterable[int]) -> None:
    """Record per process which classes of files it read (dataset, weights) or wrote
    (checkpoint); a process with new evidence gets its role looked at again."""
    for pid, cls, op, n in zip(pids, classes, ops, counts, strict=True):
        if n <= 0 or cls is None:
            continue
        if not ((cls in ("dataset", "weights") and op in DATA_OPS) or
                (cls == "checkpoint" and op in WRITE_OPS)):
            continue
        info = procs.get(int(pid))
        if info is None:
            continue
        ev = info.file_ops
        if cls not in ev:
            info.roles_stale = True
        ev[cls] = ev.get(cls, 0) + int(n)


def _is_python(info: Any) -> bool:
    text = f"{info.comm or ''} {info.exe or ''} {(info.cmdline or '').split(' ')[0]}"
    return "python" in text or "pt_data_worker" in text or "pt_main_thread" in text


def _env_rank(info: Any) -> int | None:
    env = info.env or {}
    for k in _RANK_ENV:
        v = env.get(k)
        if v is not None and v.strip().isdigit():
            return int(v)
    return None


def _fork_copy(info: Any, parent: Any) -> bool:
    """A forked child that did not exec (same program as its parent)."""
    if parent is None:
        return False
    if getattr(info, "fork_copy", None) is not None:
        return bool(info.fork_copy)
    return info.cmdline is not None and info.cmdline == parent.cmdline and \
        info.exe == parent.exe


def _torch(info: Any, proc_root: str) -> bool:
    if getattr(info, "torch", None) is None:
        from iolens.collector.procinfo import uses_torch

        found = uses_torch(f"{proc_root}/{info.pid}")
        if found is None:
            return False  # gone: unknown (do not cache, a later look cannot succeed either)
        info.torch = found
    return bool(info.torch)


def _store_host(info: Any) -> bool:
    """Accepted connections on MASTER_PORT: it hosts the rendezvous store (rank 0)."""
    port = (info.env or {}).get("MASTER_PORT")
    return bool(port) and any(p.endswith(":" + port) for p in getattr(info, "listens", ()) or ())


def _distributed(info: Any, rank: int | None, parent: Any) -> bool:
    """A distributed rank: a rank in its environment (not just inherited by a forked helper),
    or MASTER_ADDR/MASTER_PORT set and a connection to that port (torch.multiprocessing.spawn
    style launches, whose rank is only an argument)."""
    env = info.env or {}
    if rank is not None:
        return True
    port = env.get("MASTER_PORT")
    if port and env.get("MASTER_ADDR"):
        return any(p.endswith(":" + port) for p in getattr(info, "peers", ()) or ())
    return bool(env.get("LOCAL_RANK", "").isdigit() and env.get("WORLD_SIZE"))


#: multiprocessing's own service processes (their children are the parent's helpers)
_MP_SERVICE = re.compile(r"multiprocessing\.(forkserver|resource_tracker|semaphore_tracker)")
#: a child started by multiprocessing's spawn or forkserver context
_MP_CHILD = re.compile(r"(multiprocessing\.spawn|--multiprocessing-fork)")


def _helper_role(reads_data: bool, wrote_ckpt: bool) -> str | None:
    if wrote_ckpt and not reads_data:
        return "checkpoint-writer"
    return "dataloader" if reads_data else None


def decide_role(info: Any, procs: Mapping[int, Any], children: Mapping[int, list],
                rules: Rules = DEFAULT_RULES, proc_root: str = "/proc") -> str | None:
    """The role of one process under the documented precedence (docs/roles.md)."""
    user = rules.role_for(info)
    if user is not None:
        return user
    th = rules.thresholds
    parent = procs.get(info.ppid) if info.ppid else None
    copy = _fork_copy(info, parent)
    ops = getattr(info, "file_ops", None) or {}
    reads_data = ops.get("dataset", 0) > 0
    wrote_ckpt = ops.get("checkpoint", 0) > 0
    comm = info.comm or ""
    # 1. helpers forked from a Python (training) process
    if comm.startswith("pt_data_worker") and (info.cmdline is not None or ops):
        return "dataloader"
    if not copy and _MP_SERVICE.search(info.cmdline or ""):
        return None  # multiprocessing's forkserver / resource tracker: plumbing, not a role
    helper = _helper_role(reads_data, wrote_ckpt)
    if copy and parent is not None and _is_python(parent) and helper:
        return helper
    # 2. distributed ranks
    rank = _env_rank(info)
    kids = list(children.get(info.pid, ()))
    if not copy and _distributed(info, rank, parent) and \
            (rank is not None or not any(k.role == "rank" for k in kids)):
        return "rank"
    # helpers started by multiprocessing's spawn/forkserver contexts (not ranks: tested above)
    if helper and _MP_CHILD.search(info.cmdline or ""):
        return helper
    # 3. servers: many accepted connections, most of them short
    if getattr(info, "accepts", 0) >= th["server_accepts"] and \
            getattr(info, "short_conns", 0) >= th["server_short_conns"]:
        return "inference-server"
    for k in list(kids):  # workers forked by a forkserver child count as this process's
        if _MP_SERVICE.search(k.cmdline or "") and not _fork_copy(k, info):
            kids.extend(children.get(k.pid, ()))
    kid_roles = {k.role for k in kids}
    # 4. the trainer: parent of DataLoader workers / checkpoint helpers, or a torch process
    #    reading the dataset itself (num_workers=0)
    if "dataloader" in kid_roles or ("checkpoint-writer" in kid_roles and _is_python(info)) \
            or (reads_data and _is_python(info) and _torch(info, proc_root)):
        return "trainer"
    if "rank" in kid_roles:
        return "launcher"
    # 5. anything else that wrote checkpoints
    if wrote_ckpt:
        return "checkpoint-writer"
    return None


def assign_roles(procs: Mapping[int, Any], changed: Iterable[Any],
                 rules: Rules | None = None, proc_root: str = "/proc") -> list[Any]:
    """Set role/rank on the changed ProcInfos and their parents.

    Returns the processes whose (role, rank) changed; those are marked dirty, so the collector
    emits a new `procs` row for them (readers keep the latest row per pid).
    """
    rules = rules or DEFAULT_RULES
    cand: dict[int, Any] = {}
    for info in changed:
        cand[info.pid] = info
        parent = procs.get(info.ppid) if info.ppid else None
        if parent is not None:
            cand.setdefault(parent.pid, parent)
            grand = procs.get(parent.ppid) if parent.ppid else None
            if grand is not None:
                cand.setdefault(grand.pid, grand)
    children: dict[int, list] = {}
    for p in procs.values():
        if p.ppid in cand:
            children.setdefault(p.ppid, []).append(p)
    before = {pid: (i.role, i.rank) for pid, i in cand.items()}
    # children before parents: deepest first, then once more for parents of changed children
    order = sorted(cand.values(), key=lambda i: -_depth(i, procs))
    for _ in range(2):
        for info in order:
            info.rank = _env_rank(info)
            info.role = decide_role(info, procs, children, rules, proc_root)
            if info.role == "rank" and info.rank is None and _store_host(info):
                info.rank = 0  # spawn-style launch: rank 0 hosts the store on MASTER_PORT
    out = []
    for pid, info in cand.items():
        info.roles_stale = False
        if before[pid] != (info.role, info.rank):
            info.dirty = True
            out.append(info)
    return out


def _depth(info: Any, procs: Mapping[int, Any]) -> int:
    d, seen, cur = 0, set(), info
    while cur is not None and cur.ppid and cur.ppid not in seen and d < 64:
        seen.add(cur.ppid)
        cur = procs.get(cur.ppid)
        d += 1
    return d
