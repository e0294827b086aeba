/* iolens syscall probe: storage and network syscalls, aggregated in the kernel per interval.
 *
 * Hooks: syscalls:sys_enter_X / sys_exit_X tracepoints only (no kprobes, no fentry), plus
 * sched_process_fork/exec/exit. Each X is compiled in only when its tracepoint exists
 * (-DHAVE_<X>, decided by probes/syscalls.py from tracefs).
 *
 * Per op: enter stores {ts, fd, args} in task storage (fallback: a hash keyed by pid_tgid);
 * exit computes latency and adds (atomically) to one of two hashes (agg0/agg1, chosen by ctl[0]):
 * Python flips ctl, waits, then reads-and-deletes the idle map, so no op is counted twice or
 * lost between read and clear, and a drain costs O(keys), not O(events).
 *
 * Keys are by file, not by open: an open hashes the path it was given (seeded with its base:
 * dirfd or cwd) into a 64-bit id kept per fd in `fdid`; the path crosses to user space only
 * the first time an id is seen (`known`), in a batch-drained hash (`newfiles`). When the
 * file-grain map is full, an op is folded into its directory's key, then its process's, in a
 * separate map pair (aggc0/aggc1): totals stay exact, and the rows say their grain.
 *
 * Low-rate events (connect/accept with addresses, fork/exec/exit, failed opens, ops slower
 * than SLOW_NS) go to a ring buffer without wakeups; Python consumes it on a timer.
 *
 * Options arrive only as integer -D flags validated in Python (FILTER_MODE, SELF_TGID,
 * SLOW_NS, MAX_KEYS, PER_THREAD, USE_TASK_STORAGE, ...) and through the maps `targets` and
 * `cgroups`. No user string is ever part of this text.
 */
/* No kernel headers beyond what BCC itself pulls in: <linux/fs.h> alone made the compile
 * several times slower, and it was only needed for one typedef of the preadv2/pwritev2
 * tracepoint structs (kernel: `typedef int __bitwise rwf_t`). */
typedef int rwf_t;
/* and the ppoll/pselect6/epoll_pwait* structs name sigset_t (only as a pointer, never read) */
typedef struct { unsigned long sig[1]; } sigset_t;
#include "events.h"

#ifndef FILTER_MODE
#define FILTER_MODE 0        /* 0: everything but SELF_TGID; 1: targets map; 2: cgroup map */
#endif
#ifndef SELF_TGID
#define SELF_TGID 0
#endif
#ifndef SLOW_NS
#define SLOW_NS 10000000ULL
#endif
#ifndef MAX_KEYS
#define MAX_KEYS 32768
#endif
/* file-grain slots kept for heavy ops (see heavy_op) */
#ifndef HEAVY_RESERVE
#define HEAVY_RESERVE (MAX_KEYS / 4)
#endif
#ifndef COARSE_KEYS
#define COARSE_KEYS 16384
#endif
/* process-grain keys always have room: directory keys stop this far below COARSE_KEYS */
#ifndef COARSE_RESERVE
#define COARSE_RESERVE 4096
#endif
#ifndef KNOWN_FILES
#define KNOWN_FILES 262144
#endif
#ifndef NEWFILES_MAX
#define NEWFILES_MAX 262144
#endif
#ifndef MAX_FDS
#define MAX_FDS 131072
#endif
#ifndef MAX_TARGETS
#define MAX_TARGETS 65536
#endif
#ifndef RB_PAGES
/* 8 MiB: opens no longer pass through it (paths go once per file through `newfiles`), and
 * every page of it that the consumer has read stays in the recorder's RSS (16 MiB cost 32 MB
 * of RSS: the data area is mapped twice) */
#define RB_PAGES 2048
#endif
#ifndef PER_THREAD
#define PER_THREAD 0
#endif
#ifndef USE_TASK_STORAGE
#define USE_TASK_STORAGE 1
#endif
#ifndef ALL_CLOSES
#define ALL_CLOSES 0
#endif
#ifndef TRACK_LATENCY
#define TRACK_LATENCY 1
#endif
#ifndef EXIT_ONLY
/* Without latency, data and sync ops need no enter program: their fd and position are read
 * back at exit from the task's saved user registers (bpf_task_pt_regs, x86-64). One
 * tracepoint program per op instead of two, and no start record. Needs the same BTF task
 * helpers as task storage, so the hash fallback (USE_TASK_STORAGE=0) turns it off too. */
#if !TRACK_LATENCY && USE_TASK_STORAGE && defined(__x86_64__)
#define EXIT_ONLY 1
#else
#define EXIT_ONLY 0
#endif
#endif

/* Shared (not per-CPU) preallocated hashes updated with atomic adds: memory is
 * MAX_KEYS x value size whatever the CPU count (a per-CPU map multiplies it by the CPUs), and
 * preallocation means an insert never fails for lack of memory in tracing context (a
 * no-prealloc map did, under bursts of new keys). */
BPF_TABLE("hash", struct agg_key, struct agg_val, agg0, MAX_KEYS);
BPF_TABLE("hash", struct agg_key, struct agg_val, agg1, MAX_KEYS);
BPF_TABLE("hash", struct agg_key, struct agg_val, aggc0, COARSE_KEYS);
BPF_TABLE("hash", struct agg_key, struct agg_val, aggc1, COARSE_KEYS);
/* ctl[0]: active map pair; ctl[1], ctl[2]: directory keys made in aggc0 / aggc1; ctl[3],
 * ctl[4]: agg0 / agg1 found full this interval; ctl[5], ctl[6]: keys made in agg0 / agg1 */
BPF_ARRAY(ctl, u32, 7);
BPF_PERCPU_ARRAY(counters, u64, CNT_MAX);
/* an all-zero agg_val to initialise new keys from (too large for the 512-byte BPF stack
 * twice over) */
BPF_ARRAY(zeroval, struct agg_val, 1);
BPF_HASH(fdid, struct fd_key, struct fd_val, MAX_FDS);
BPF_PERCPU_ARRAY(id_seq, u64, 1);
/* file ids whose path user space has (or is being handed); LRU: a forgotten one is resent */
BPF_TABLE("lru_hash", u64, u8, known, KNOWN_FILES);
/* new files' paths, read-and-deleted in batches by user space (no preallocation: it is
 * mostly empty, and a failed insert falls back to a ring-buffer event) */
BPF_F_TABLE("hash", u64, struct newfile, newfiles, NEWFILES_MAX, BPF_F_NO_PREALLOC);
BPF_PERCPU_ARRAY(nf_scratch, struct newfile, 1);
/* cwd identity per process, changed by chdir/fchdir (relative opens are seeded with it) */
BPF_HASH(cwdid, u32, u64, MAX_TARGETS);
BPF_HASH(targets, u32, u8, MAX_TARGETS);
BPF_HASH(cgroups, u64, u8, 64);
BPF_PERCPU_ARRAY(scratch, struct event, 1);
BPF_RINGBUF_OUTPUT(events, RB_PAGES);

#if USE_TASK_STORAGE
BPF_TASK_STORAGE(starts, struct start_t);
#else
BPF_HASH(starts_h, u64, struct start_t, 65536);
#endif

static __always_inline void count(u32 idx, u64 n)
{
    u64 *c = counters.lookup(&idx);
    if (c)
        *c += n;
}

static __always_inline int wanted(u32 tgid)
{
    if (tgid == SELF_TGID)
        return 0;
#if FILTER_MODE == 1
    return targets.lookup(&tgid) != 0;
#elif FILTER_MODE == 2
    u64 cg = bpf_get_current_cgroup_id();
    return cgroups.lookup(&cg) != 0;
#else
    return 1;
#endif
}

static __always_inline struct start_t *start_get(int create)
{
#if USE_TASK_STORAGE
    return starts.task_storage_get(bpf_get_current_task_btf(), 0,
                                   create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
#else
    u64 id = bpf_get_current_pid_tgid();
    if (create) {
        struct start_t zero = {};
        starts_h.update(&id, &zero);
    }
    return starts_h.lookup(&id);
#endif
}

/* Common enter: filter, then remember what exit needs. */
static __always_inline int on_enter(u16 sys, s32 fd, u64 arg, u64 arg2)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!wanted(tgid))
        return 0;
    struct start_t *s = start_get(1);
    if (!s)
        return 0;
    s->sys = sys;
    s->fd = fd;
    s->arg = arg;
    s->arg2 = arg2;
    s->ts = bpf_ktime_get_ns();
    return 0;
}

#include "log2.h"

static __always_inline struct fd_val *fd_get(u32 tgid, s32 fd)
{
    struct fd_key k = {.tgid = tgid, .fd = fd};
    return fdid.lookup(&k);
}

static __always_inline u64 id_of(struct fd_val *fv)
{
    return fv ? fv->id : 0;
}

/* A new unique id (sockets, pipes, long paths): a per-CPU sequence tagged with the CPU number,
 * unique without atomics (an atomic fetch-add needs BPF ISA v3, which this BCC does not
 * target), with ID_UNIQUE set so it never equals a path hash's id space by construction. */
static __always_inline u64 id_unique(void)
{
    u32 z = 0;
    u64 *seq = id_seq.lookup(&z);
    if (!seq)
        return 0;
    *seq += 1;
    return ID_UNIQUE | ((u64)(bpf_get_smp_processor_id() & 0xfff) << 48) |
           (*seq & 0xffffffffffffULL);
}

/* Remember what (tgid, fd) refers to; returns the id (0 when the fd map is full). */
static __always_inline u64 fd_put(u32 tgid, s32 fd, u64 id, u64 dir, u32 coarse)
{
    struct fd_key k = {.tgid = tgid, .fd = fd};
    struct fd_val v = {.id = id, .dir = dir, .coarse = coarse};
    if (fdid.update(&k, &v) != 0) {
        count(CNT_FD_OVERFLOW, 1);
        return 0;
    }
    return id;
}

static __always_inline u64 fd_new_unique(u32 tgid, s32 fd)
{
    return fd_put(tgid, fd, id_unique(), 0, 0);
}

/* Ops whose file keeps its own row even when tiny files have taken most of the map:
 * syncs, mmaps and data ops of 64 KiB or more. */
static __always_inline int heavy_op(u16 sys, u64 nbytes)
{
    return sys == SYS_FSYNC || sys == SYS_FDATASYNC || sys == SYS_SYNC_FILE_RANGE ||
           sys == SYS_MMAP || nbytes >= 65536;
}

/* The coarse map: a directory key while there is room for one (COARSE_RESERVE slots are
 * kept for process keys), else the process key. NULL only when even that has no room. */
static __always_inline struct agg_val *coarse_slot(struct agg_key *key, u64 dir, u32 sel,
                                                   struct agg_val *zero)
{
    struct agg_val *v = 0;
    u32 nidx = sel ? 2 : 1;
    u32 *made = ctl.lookup(&nidx);
    if (dir) {
        key->id = dir;
        key->grain = GRAIN_DIR;
        v = sel ? aggc1.lookup(key) : aggc0.lookup(key);
        if (!v && made && *made < COARSE_KEYS - COARSE_RESERVE) {
            v = sel ? aggc1.lookup_or_try_init(key, zero) : aggc0.lookup_or_try_init(key, zero);
            if (v)
                __sync_fetch_and_add(made, 1);  /* approximate (a racing insert may count twice) */
        }
        if (v) {
            count(CNT_FOLDED_DIR, 1);
            return v;
        }
    }
    key->id = 0;
    key->grain = GRAIN_PROC;
    v = sel ? aggc1.lookup_or_try_init(key, zero) : aggc0.lookup_or_try_init(key, zero);
    if (v)
        count(CNT_FOLDED_PROC, 1);
    return v;
}

/* Add one completed op to the active aggregation maps. `fv`: what the fd refers to (NULL:
 * unknown, counted by fd number). Returns 1 when counted at file grain, 0 when folded. */
static __always_inline int agg_add(u32 tgid, u32 tid, s32 fd, struct fd_val *fv, u16 sys, s64 ret,
                                   u64 lat, u64 nbytes, int sized, s64 pos)
{
    u64 id = fv ? fv->id : 0;
    struct agg_key key = {.id = id, .tgid = tgid,
                          .tid = (PER_THREAD || sys >= SYS_POLL) ? tid : 0,
                          .fd = id ? -1 : fd, .sys = sys, .grain = GRAIN_FILE};
    u32 z = 0;
    struct agg_val *zero = zeroval.lookup(&z);
    if (!zero)
        return 0;
    u32 *selp = ctl.lookup(&z);
    u32 sel = selp ? *selp : 0;
    struct agg_val *v = 0;
    int fine = 0;
    int big = heavy_op(sys, nbytes);
    if (!fv || !fv->coarse || big) {
        u32 fidx = 3 + sel, midx = 5 + sel;
        u32 *full = ctl.lookup(&fidx);
        u32 *made = ctl.lookup(&midx);
        v = sel ? agg1.lookup(&key) : agg0.lookup(&key);
        /* A new key: the last HEAVY_RESERVE slots are kept for heavy ops (a checkpoint's
         * fsync, a shard's 1 MiB reads) so that a flood of tiny files cannot take every row.
         * Once an insert failed this interval the map is full until the flip: no insert that
         * would fail again. A key that got in receives every later op of the interval. */
        if (!v && full && !*full && made &&
                (big || *made < MAX_KEYS - HEAVY_RESERVE)) {
            if (sel)
                agg1.insert(&key, zero);
            else
                agg0.insert(&key, zero);
            v = sel ? agg1.lookup(&key) : agg0.lookup(&key);
            if (v)
                __sync_fetch_and_add(made, 1);  /* approximate: a racing insert counts twice */
            else
                *full = 1;
        }
        fine = v != 0;
    }
    if (!v) {
        key.fd = -1;
        v = coarse_slot(&key, fv ? fv->dir : 0, sel, zero);
    }
    if (!v) {
        count(CNT_AGG_OVERFLOW, 1);
        return 0;
    }
    __sync_fetch_and_add(&v->count, 1);
    if (ret < 0) {
        __sync_fetch_and_add(&v->errors, 1);
    } else {
        __sync_fetch_and_add(&v->bytes, nbytes);
        if (sized) {
            u32 sb = log2_u64(nbytes);
            if (sb >= SIZE_BUCKETS)
                sb = SIZE_BUCKETS - 1;
            __sync_fetch_and_add(&v->size_hist[sb], 1);
        }
        if (pos >= 0) {
            /* racy across CPUs by design: a hint of access pattern, not a count to rely on */
            if (v->next_off != 0 && (u64)pos != v->next_off)
                __sync_fetch_and_add(&v->random_ops, 1);
            v->next_off = pos + nbytes;
        }
    }
#if TRACK_LATENCY
    __sync_fetch_and_add(&v->lat_sum, lat);
    if (lat > v->lat_max)
        v->lat_max = lat;  /* a lost race only under-reports the max by a concurrent op */
    u32 lb = log2_u64(lat);
    if (lb >= LAT_BUCKETS)
        lb = LAT_BUCKETS - 1;
    __sync_fetch_and_add(&v->lat_hist[lb], 1);
#endif
    return fine;
}

static __always_inline struct event *ev_new(u16 type, u16 sys, u32 tgid, u32 tid)
{
    u32 z = 0;
    struct event *e = scratch.lookup(&z);
    if (!e)
        return 0;
    e->ts = bpf_ktime_get_ns();
    e->type = type;
    e->sys = sys;
    e->tgid = tgid;
    e->tid = tid;
    e->lat = 0;
    e->ret = 0;
    e->arg = 0;
    e->arg2 = 0;
    e->id = 0;
    e->fd = -1;
    e->fd2 = -1;
    e->path_len = 0;
    e->addr_len = 0;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    return e;
}

static __always_inline void ev_send(struct event *e)
{
    u32 n = e->path_len;
    if (n > PATH_MAX_IOLENS)
        n = PATH_MAX_IOLENS;
    u64 size = EVENT_HDR_SIZE + n;
    if (events.ringbuf_output(e, size, BPF_RB_NO_WAKEUP) != 0)
        count(CNT_RB_LOST, 1);
}

static __always_inline void ev_path(struct event *e, u64 uptr)
{
    int n = bpf_probe_read_user_str(e->path, sizeof(e->path), (void *)uptr);
    e->path_len = n > 0 ? n : 0;
}

static __always_inline void ev_addr(struct event *e, u64 uptr, u32 len)
{
    /* Constant sizes keep the verifier simple: sockaddr_in is 16 bytes, sockaddr_in6 28;
     * longer (unix) addresses are cut to 28 and completed from /proc by user space. */
    if (!uptr || len < 2)
        return;
    if (len >= ADDR_MAX) {
        if (bpf_probe_read_user(e->addr, ADDR_MAX, (void *)uptr) == 0)
            e->addr_len = ADDR_MAX;
    } else if (len >= 16) {
        if (bpf_probe_read_user(e->addr, 16, (void *)uptr) == 0)
            e->addr_len = 16;
    } else {
        if (bpf_probe_read_user(e->addr, 2, (void *)uptr) == 0)
            e->addr_len = 2;
    }
}

/* Fetch and consume this thread's start record for `sys`; 0 when there is none. */
static __always_inline struct start_t *take_start(u16 sys, u64 *lat)
{
    struct start_t *s = start_get(0);
    if (!s || s->ts == 0 || s->sys != sys)
        return 0;
    *lat = bpf_ktime_get_ns() - s->ts;
    s->ts = 0;
    return s;
}

static __always_inline void maybe_slow(u16 sys, u32 tgid, u32 tid, s32 fd, u64 id, s64 ret,
                                       u64 lat)
{
    if (lat < SLOW_NS || sys >= SYS_POLL)  /* a long wait for readiness is normal */
        return;
    struct event *e = ev_new(EV_SLOW, sys, tgid, tid);
    if (!e)
        return;
    e->fd = fd;
    e->id = id;
    e->ret = ret;
    e->lat = lat;
    ev_send(e);
}

/* Exit of a data or sync op on an fd. `sized`: record a size histogram; `posarg`: the op is
 * positional and s->arg2 holds its offset. */
static __always_inline int on_exit_fd(u16 sys, s64 ret, int sized, int posarg)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    s32 fd = s->fd;
    struct fd_val *fv = fd < 0 ? 0 : fd_get(tgid, fd);
    s64 pos = (posarg && (s64)s->arg2 >= 0) ? (s64)s->arg2 : -1;  /* -1: current position */
    agg_add(tgid, tid, fd, fv, sys, ret, lat, ret > 0 ? ret : 0, sized, pos);
    maybe_slow(sys, tgid, tid, fd, id_of(fv), ret, lat);
    return 0;
}

/* ---- data ops ------------------------------------------------------------------------- */
#if EXIT_ONLY
/* The head of x86-64 `struct pt_regs` (arch/x86/include/asm/ptrace.h, unchanged for years),
 * declared here because this program is compiled without kernel headers. Syscall arguments
 * 0..3 are di, si, dx, r10. */
struct iolens_x86_regs {
    unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax;
};

/* Argument registers of the syscall now exiting (saved at entry, unchanged since). */
static __always_inline void syscall_args(u64 *a0, u64 *a1, u64 *a2, u64 *a3)
{
    struct iolens_x86_regs *r =
        (struct iolens_x86_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    if (a0)
        bpf_probe_read_kernel(a0, sizeof(*a0), &r->di);
    if (a1)
        bpf_probe_read_kernel(a1, sizeof(*a1), &r->si);
    if (a2)
        bpf_probe_read_kernel(a2, sizeof(*a2), &r->dx);
    if (a3)
        bpf_probe_read_kernel(a3, sizeof(*a3), &r->r10);
}

/* Exit-only data/sync op: filter, then fd (argument 0, or 2 for the destination fd of
 * copy_file_range/splice) and position (argument 3) from the saved registers. */
static __always_inline int on_exit_regs(u16 sys, s64 ret, int sized, int posarg)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    if (!wanted(tgid))
        return 0;
    struct iolens_x86_regs *r =
        (struct iolens_x86_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    u64 fdv = 0, posv = 0;
    if (sys == SYS_COPY_FILE_RANGE || sys == SYS_SPLICE)
        bpf_probe_read_kernel(&fdv, sizeof(fdv), &r->dx);
    else
        bpf_probe_read_kernel(&fdv, sizeof(fdv), &r->di);
    if (posarg)
        bpf_probe_read_kernel(&posv, sizeof(posv), &r->r10);
    s32 fd = (s32)fdv;
    struct fd_val *fv = fd_get(tgid, fd);
    s64 pos = (posarg && (s64)posv >= 0) ? (s64)posv : -1;
    agg_add(tgid, tid, fd, fv, sys, ret, 0, ret > 0 ? ret : 0, sized, pos);
    return 0;
}
#define DATA_FD(name, SYS, fdexpr, posexpr, posflag)                                         \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_regs(SYS, args->ret, 1, posflag); }
#define SYNC_FD(name, SYS, fdexpr)                                                           \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_regs(SYS, args->ret, 0, 0); }
#else
#define DATA_FD(name, SYS, fdexpr, posexpr, posflag)                                         \
    TRACEPOINT_PROBE(syscalls, sys_enter_##name) {                                           \
        return on_enter(SYS, (s32)(fdexpr), 0, (u64)(posexpr));                              \
    }                                                                                        \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_fd(SYS, args->ret, 1, posflag); }

#define SYNC_FD(name, SYS, fdexpr)                                                           \
    TRACEPOINT_PROBE(syscalls, sys_enter_##name) { return on_enter(SYS, (s32)(fdexpr), 0, 0); } \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_fd(SYS, args->ret, 0, 0); }
#endif

#ifdef HAVE_read
DATA_FD(read, SYS_READ, args->fd, 0, 0)
#endif
#ifdef HAVE_write
DATA_FD(write, SYS_WRITE, args->fd, 0, 0)
#endif
#ifdef HAVE_pread64
DATA_FD(pread64, SYS_PREAD64, args->fd, args->pos, 1)
#endif
#ifdef HAVE_pwrite64
DATA_FD(pwrite64, SYS_PWRITE64, args->fd, args->pos, 1)
#endif
#ifdef HAVE_readv
DATA_FD(readv, SYS_READV, args->fd, 0, 0)
#endif
#ifdef HAVE_writev
DATA_FD(writev, SYS_WRITEV, args->fd, 0, 0)
#endif
#ifdef HAVE_preadv
DATA_FD(preadv, SYS_PREADV, args->fd, args->pos_l, 1)
#endif
#ifdef HAVE_pwritev
DATA_FD(pwritev, SYS_PWRITEV, args->fd, args->pos_l, 1)
#endif
#ifdef HAVE_preadv2
DATA_FD(preadv2, SYS_PREADV2, args->fd, args->pos_l, 1)
#endif
#ifdef HAVE_pwritev2
DATA_FD(pwritev2, SYS_PWRITEV2, args->fd, args->pos_l, 1)
#endif
#ifdef HAVE_sendto
DATA_FD(sendto, SYS_SENDTO, args->fd, 0, 0)
#endif
#ifdef HAVE_recvfrom
DATA_FD(recvfrom, SYS_RECVFROM, args->fd, 0, 0)
#endif
#ifdef HAVE_sendmsg
DATA_FD(sendmsg, SYS_SENDMSG, args->fd, 0, 0)
#endif
#ifdef HAVE_recvmsg
DATA_FD(recvmsg, SYS_RECVMSG, args->fd, 0, 0)
#endif
/* *mmsg return a message count, not bytes: counted, with bytes left at 0. */
#ifdef HAVE_sendmmsg
TRACEPOINT_PROBE(syscalls, sys_enter_sendmmsg) { return on_enter(SYS_SENDMMSG, args->fd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_sendmmsg) { return on_exit_fd(SYS_SENDMMSG, args->ret < 0 ? args->ret : 0, 0, 0); }
#endif
#ifdef HAVE_recvmmsg
TRACEPOINT_PROBE(syscalls, sys_enter_recvmmsg) { return on_enter(SYS_RECVMMSG, args->fd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_recvmmsg) { return on_exit_fd(SYS_RECVMMSG, args->ret < 0 ? args->ret : 0, 0, 0); }
#endif
/* sendfile/copy_file_range/splice: attributed to the destination fd. */
#ifdef HAVE_sendfile64
DATA_FD(sendfile64, SYS_SENDFILE64, args->out_fd, 0, 0)
#endif
#ifdef HAVE_copy_file_range
DATA_FD(copy_file_range, SYS_COPY_FILE_RANGE, args->fd_out, 0, 0)
#endif
#ifdef HAVE_splice
DATA_FD(splice, SYS_SPLICE, args->fd_out, 0, 0)
#endif
#ifdef HAVE_fsync
SYNC_FD(fsync, SYS_FSYNC, args->fd)
#endif
#ifdef HAVE_fdatasync
SYNC_FD(fdatasync, SYS_FDATASYNC, args->fd)
#endif
#ifdef HAVE_sync_file_range
SYNC_FD(sync_file_range, SYS_SYNC_FILE_RANGE, args->fd)
#endif
#ifdef HAVE_newfstat
SYNC_FD(newfstat, SYS_NEWFSTAT, args->fd)
#endif
#ifdef HAVE_io_uring_enter
SYNC_FD(io_uring_enter, SYS_IO_URING_ENTER, args->fd)
#endif
#ifdef HAVE_lseek
SYNC_FD(lseek, SYS_LSEEK, args->fd)
#endif

/* ---- waits for readiness (poll, select, epoll) ----------------------------------------
 * How event loops and communication threads (gloo, NCCL's socket transport, asyncio) wait
 * for peers on non-blocking sockets. Counted per thread whatever PER_THREAD says (the
 * threads that wait are few and which one waits matters), never as slow events (a long
 * wait is normal here). The fd: poll's first pollfd when it watches exactly one, the epoll
 * fd for epoll, none for select. Needs latency: not attached under --no-latency. */
#if TRACK_LATENCY
static __always_inline s32 first_pollfd(u64 ufds, u64 nfds)
{
    s32 fd = -1;
    if (nfds != 1 || bpf_probe_read_user(&fd, sizeof(fd), (void *)ufds) != 0)
        return -1;
    return fd;
}

#define POLL_OP(name, SYS, fdexpr)                                                           \
    TRACEPOINT_PROBE(syscalls, sys_enter_##name) { return on_enter(SYS, (s32)(fdexpr), 0, 0); } \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) {                                            \
        return on_exit_fd(SYS, args->ret < 0 ? args->ret : 0, 0, 0); }
#ifdef HAVE_poll
POLL_OP(poll, SYS_POLL, first_pollfd((u64)args->ufds, args->nfds))
#endif
#ifdef HAVE_ppoll
POLL_OP(ppoll, SYS_PPOLL, first_pollfd((u64)args->ufds, args->nfds))
#endif
#ifdef HAVE_select
POLL_OP(select, SYS_SELECT, -1)
#endif
#ifdef HAVE_pselect6
POLL_OP(pselect6, SYS_PSELECT6, -1)
#endif
#ifdef HAVE_epoll_wait
POLL_OP(epoll_wait, SYS_EPOLL_WAIT, args->epfd)
#endif
#ifdef HAVE_epoll_pwait
POLL_OP(epoll_pwait, SYS_EPOLL_PWAIT, args->epfd)
#endif
#ifdef HAVE_epoll_pwait2
POLL_OP(epoll_pwait2, SYS_EPOLL_PWAIT2, args->epfd)
#endif
#endif

/* ---- path-based metadata ops: counted per process (fd -100) --------------------------- */
#if EXIT_ONLY
/* Exit-only (no latency): a stat op on fd `fd` (-100: by path, per process). */
static __always_inline int stat_done(u16 sys, s64 ret, s32 fd)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    if (!wanted(tgid))
        return 0;
    agg_add(tgid, tid, fd, fd < 0 ? 0 : fd_get(tgid, fd), sys, ret, 0, 0, 0, -1);
    return 0;
}
#define PATH_OP(name, SYS)                                                                   \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return stat_done(SYS, args->ret, -100); }
#else
#define PATH_OP(name, SYS)                                                                   \
    TRACEPOINT_PROBE(syscalls, sys_enter_##name) { return on_enter(SYS, -100, 0, 0); }      \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_fd(SYS, args->ret, 0, 0); }
#endif
#ifdef HAVE_newstat
PATH_OP(newstat, SYS_NEWSTAT)
#endif
#ifdef HAVE_newlstat
PATH_OP(newlstat, SYS_NEWLSTAT)
#endif
/* fstat(fd) is fstatat(fd, "", AT_EMPTY_PATH) in current glibc (and statx likewise): such a
 * call is an op on the fd, counted against its file like a read; other calls are by path. */
#define AT_EMPTY_PATH_IOLENS 0x1000
/* The flag alone decides (the name is not read: reading one byte of user memory cost about
 * 150 ns a call, and a non-empty name with AT_EMPTY_PATH, a lookup relative to the dirfd,
 * is rare enough to be counted on the dirfd). */
static __always_inline s32 stat_fd(s64 dfd, u64 flags)
{
    return ((flags & AT_EMPTY_PATH_IOLENS) && dfd >= 0) ? (s32)dfd : -100;
}
#if EXIT_ONLY
#ifdef HAVE_newfstatat
TRACEPOINT_PROBE(syscalls, sys_exit_newfstatat)
{
    u64 dfd = 0, flags = 0;
    syscall_args(&dfd, 0, 0, &flags);
    return stat_done(SYS_NEWFSTATAT, args->ret, stat_fd((s32)dfd, flags));
}
#endif
#ifdef HAVE_statx
TRACEPOINT_PROBE(syscalls, sys_exit_statx)
{
    u64 dfd = 0, flags = 0;
    syscall_args(&dfd, 0, &flags, 0);
    return stat_done(SYS_STATX, args->ret, stat_fd((s32)dfd, flags));
}
#endif
#else
#ifdef HAVE_newfstatat
TRACEPOINT_PROBE(syscalls, sys_enter_newfstatat)
{
    return on_enter(SYS_NEWFSTATAT, stat_fd((s32)args->dfd, args->flag), 0, 0);
}
TRACEPOINT_PROBE(syscalls, sys_exit_newfstatat) { return on_exit_fd(SYS_NEWFSTATAT, args->ret, 0, 0); }
#endif
#ifdef HAVE_statx
TRACEPOINT_PROBE(syscalls, sys_enter_statx)
{
    return on_enter(SYS_STATX, stat_fd((s32)args->dfd, args->flags), 0, 0);
}
TRACEPOINT_PROBE(syscalls, sys_exit_statx) { return on_exit_fd(SYS_STATX, args->ret, 0, 0); }
#endif
#endif

/* ---- opens: the file's identity, its path handed over once --------------------------- */
#include "pathid.h"

/* The seed of a path's hash: what a relative path is relative to. */
static __always_inline u64 path_seed(u32 tgid, s32 dirfd, char first, u16 *base)
{
    if (first == '/') {
        *base = BASE_ABS;
        return 0;
    }
    if (dirfd == AT_FDCWD_IOLENS) {
        *base = BASE_CWD;
        u64 *c = cwdid.lookup(&tgid);
        return c ? *c : cwd_default(tgid);
    }
    *base = BASE_DIRFD;
    struct fd_val *d = fd_get(tgid, dirfd);
    /* a dirfd opened before the capture: its number within this process names it */
    return d ? d->id : mix64(((u64)tgid << 32) ^ (u32)dirfd ^ 0x6469726664ULL);
}

/* Hand a new file's path to user space: the batch-drained hash, else a ring-buffer event.
 * Returns 0 when neither had room (the caller forgets the id so a later open retries). */
static __always_inline int hand_over(struct newfile *nf, u64 id, u16 sys, u32 tid, s32 fd,
                                     s64 ret, u64 lat)
{
    if (newfiles.update(&id, nf) == 0)
        return 1;
    struct event *e = ev_new(EV_OPEN, sys, nf->tgid, tid);
    if (!e)
        return 0;
    e->fd = fd;
    e->fd2 = nf->dirfd;
    e->id = id;
    e->ret = ret;
    e->lat = lat;
    e->arg = nf->seed;
    e->arg2 = nf->dir;
    bpf_probe_read_kernel(e->path, NEWPATH_MAX, nf->path);
    e->path_len = nf->len + 1;
    if (events.ringbuf_output(e, EVENT_HDR_SIZE + NEWPATH_MAX, BPF_RB_NO_WAKEUP) != 0) {
        count(CNT_RB_LOST, 1);
        return 0;
    }
    return 1;
}

/* An open as a ring-buffer event with its path (failed opens; paths too long to hash). */
static __always_inline int open_event(u16 sys, u32 tgid, u32 tid, s32 fd, s32 dirfd, u64 id,
                                      s64 ret, u64 lat, u64 uptr)
{
    struct event *e = ev_new(EV_OPEN, sys, tgid, tid);
    if (!e)
        return 0;
    e->fd = fd;
    e->fd2 = dirfd;
    e->id = id;
    e->ret = ret;
    e->lat = lat;
    ev_path(e, uptr);
    ev_send(e);
    return 0;
}

/* A path too long for the newfiles record: a unique id per open and the path in an event
 * (the behaviour of every open before keys by file). */
static __always_inline int open_long(u16 sys, u32 tgid, u32 tid, s32 fd, s32 dirfd, s64 ret,
                                     u64 lat, u64 uptr)
{
    u64 id = fd_new_unique(tgid, fd);
    struct fd_val fv = {.id = id};
    agg_add(tgid, tid, fd, id ? &fv : 0, sys, ret, lat, 0, 0, -1);
    return open_event(sys, tgid, tid, fd, dirfd, id, ret, lat, uptr);
}

/* A completed open (dirfd and path pointer as passed, `lat` 0 without latency). */
static __always_inline int open_done(u16 sys, s64 ret, u32 tgid, u32 tid, s32 dirfd, u64 uptr,
                                     u64 lat)
{
    if (ret < 0) {  /* failed opens are rare events: one each, with the path */
        agg_add(tgid, tid, -1, 0, sys, ret, lat, 0, 0, -1);
        return open_event(sys, tgid, tid, -1, dirfd, 0, ret, lat, uptr);
    }
    s32 fd = (s32)ret;
    u32 z = 0;
    struct newfile *nf = nf_scratch.lookup(&z);
    if (!nf)
        return 0;
    /* a clean buffer: user space takes the path as the NUL-free prefix (32 stores) */
    __builtin_memset(nf->path, 0, NEWPATH_MAX);
    int n = bpf_probe_read_user_str(nf->path, NEWPATH_MAX, (void *)uptr);
    if (n <= 0 || n >= NEWPATH_MAX)  /* unreadable, or possibly cut: no stable identity */
        return open_long(sys, tgid, tid, fd, dirfd, ret, lat, uptr);
    u16 base = BASE_ABS;
    u64 seed = path_seed(tgid, dirfd, nf->path[0], &base);
    u64 dir = 0;
    u64 id = path_id(nf->path, (u32)n - 1, seed, &dir);
    struct fd_val fv = {.id = id, .dir = dir};
    fv.coarse = !agg_add(tgid, tid, fd, &fv, sys, ret, lat, 0, 0, -1);
    fd_put(tgid, fd, id, dir, fv.coarse);
    if (known.lookup(&id))
        return 0;  /* user space has this path: nothing to send */
    u8 one = 1;
    known.update(&id, &one);
    nf->ts = bpf_ktime_get_ns();
    nf->seed = seed;
    nf->dir = dir;
    nf->tgid = tgid;
    nf->dirfd = dirfd;
    nf->len = (u16)(n - 1);
    nf->base = base;
    if (!hand_over(nf, id, sys, tid, fd, ret, lat)) {
        known.delete(&id);
        count(CNT_NEWFILE_LOST, 1);
    }
    return 0;
}

static __always_inline int on_exit_open(u16 sys, s64 ret)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    return open_done(sys, ret, pid_tgid >> 32, (u32)pid_tgid, s->fd, s->arg, lat);
}

#if EXIT_ONLY
/* Exit-only (no latency): dirfd and path pointer from the saved argument registers; `at`: the
 * call takes a dirfd first (openat, openat2), else the path is argument 0 (open, creat). */
static __always_inline int open_exit_regs(u16 sys, s64 ret, int at)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (!wanted(tgid))
        return 0;
    u64 a0 = 0, a1 = 0;
    syscall_args(&a0, at ? &a1 : 0, 0, 0);
    return open_done(sys, ret, tgid, (u32)pid_tgid, at ? (s32)a0 : AT_FDCWD_IOLENS,
                     at ? a1 : a0, 0);
}
#define OPEN_OP(name, SYS, dirfd, pathptr, at)                                               \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return open_exit_regs(SYS, args->ret, at); }
#else
#define OPEN_OP(name, SYS, dirfd, pathptr, at)                                               \
    TRACEPOINT_PROBE(syscalls, sys_enter_##name) {                                           \
        return on_enter(SYS, (s32)(dirfd), (u64)(pathptr), 0);                               \
    }                                                                                        \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_open(SYS, args->ret); }
#endif
#ifdef HAVE_openat
OPEN_OP(openat, SYS_OPENAT, args->dfd, args->filename, 1)
#endif
#ifdef HAVE_openat2
OPEN_OP(openat2, SYS_OPENAT2, args->dfd, args->filename, 1)
#endif
#ifdef HAVE_open
OPEN_OP(open, SYS_OPEN, -100, args->filename, 0)
#endif
#ifdef HAVE_creat
OPEN_OP(creat, SYS_CREAT, -100, args->pathname, 0)
#endif

/* ---- close: forget what the fd was, tell user space ------------------------------------ */
#ifdef HAVE_close
static __always_inline int close_done(s64 ret, u32 tgid, u32 tid, s32 fd, u64 lat)
{
    struct fd_key k = {.tgid = tgid, .fd = fd};
    struct fd_val *fv = fd_get(tgid, fd);
    u64 id = id_of(fv);
    agg_add(tgid, tid, fd, fv, SYS_CLOSE, ret, lat, 0, 0, -1);
    if (ret == 0) {
        fdid.delete(&k);
        /* Closes of fds opened under tracing need no event (the io rows already count closes
         * per file, and the next open of the number replaces the fd's entry): only fds from
         * before the capture (id 0) are reported, so user space forgets what it resolved for
         * them from /proc. ALL_CLOSES=1 (--all-events) reports every close. */
        if (id != 0 && !ALL_CLOSES)
            return 0;
        struct event *e = ev_new(EV_CLOSE, SYS_CLOSE, tgid, tid);
        if (e) {
            e->fd = fd;
            e->id = id;
            ev_send(e);
        }
    }
    return 0;
}
#if EXIT_ONLY
TRACEPOINT_PROBE(syscalls, sys_exit_close)
{
    s64 ret = args->ret;  /* read first: clang may otherwise keep an offset ctx pointer */
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (!wanted(tgid))
        return 0;
    u64 fd = 0;
    syscall_args(&fd, 0, 0, 0);
    return close_done(ret, tgid, (u32)pid_tgid, (s32)fd, 0);
}
#else
TRACEPOINT_PROBE(syscalls, sys_enter_close) { return on_enter(SYS_CLOSE, args->fd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_close)
{
    s64 ret = args->ret;  /* read first: clang may otherwise keep an offset ctx pointer */
    u64 lat = 0;
    struct start_t *s = take_start(SYS_CLOSE, &lat);
    if (!s)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    return close_done(ret, pid_tgid >> 32, (u32)pid_tgid, s->fd, lat);
}
#endif
#endif

/* ---- mmap of files: bytes mapped, and an event so faults can be attributed ------------ */
#ifdef HAVE_mmap
TRACEPOINT_PROBE(syscalls, sys_enter_mmap)
{
    if ((s32)args->fd < 0)
        return 0;    /* anonymous memory: not I/O */
    return on_enter(SYS_MMAP, (s32)args->fd, args->len, args->off);
}
TRACEPOINT_PROBE(syscalls, sys_exit_mmap)
{
    u64 lat = 0;
    struct start_t *s = take_start(SYS_MMAP, &lat);
    if (!s)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    s32 fd = s->fd;
    struct fd_val *fv = fd_get(tgid, fd);
    s64 ret = args->ret;
    int failed = ret < 0 && ret > -4096;
    agg_add(tgid, tid, fd, fv, SYS_MMAP, failed ? ret : 0, lat, s->arg, 0, -1);
    if (!failed) {
        struct event *e = ev_new(EV_MMAP, SYS_MMAP, tgid, tid);
        if (e) {
            e->fd = fd;
            e->id = id_of(fv);
            e->arg = (u64)ret;
            e->arg2 = s->arg;
            e->ret = (s64)s->arg2;   /* file offset */
            ev_send(e);
        }
    }
    return 0;
}
#endif

/* ---- sockets -------------------------------------------------------------------------- */
#ifdef HAVE_socket
TRACEPOINT_PROBE(syscalls, sys_enter_socket)
{
    return on_enter(SYS_SOCKET, -1, ((u64)args->family << 16) | (args->type & 0xffff), 0);
}
TRACEPOINT_PROBE(syscalls, sys_exit_socket)
{
    u64 lat = 0;
    struct start_t *s = take_start(SYS_SOCKET, &lat);
    if (!s || args->ret < 0)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    struct event *e = ev_new(EV_SOCKET, SYS_SOCKET, tgid, tid);
    if (!e)
        return 0;
    e->fd = args->ret;
    e->id = fd_new_unique(tgid, args->ret);
    e->arg2 = s->arg;
    ev_send(e);
    return 0;
}
#endif

#ifdef HAVE_connect
TRACEPOINT_PROBE(syscalls, sys_enter_connect)
{
    return on_enter(SYS_CONNECT, args->fd, (u64)args->uservaddr, args->addrlen);
}
TRACEPOINT_PROBE(syscalls, sys_exit_connect)
{
    u64 lat = 0;
    struct start_t *s = take_start(SYS_CONNECT, &lat);
    if (!s)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    s32 fd = s->fd;
    struct fd_val *fv = fd_get(tgid, fd);
    agg_add(tgid, tid, fd, fv, SYS_CONNECT, args->ret, lat, 0, 0, -1);
    struct event *e = ev_new(EV_CONNECT, SYS_CONNECT, tgid, tid);
    if (!e)
        return 0;
    e->fd = fd;
    e->id = id_of(fv);
    e->ret = args->ret;
    e->lat = lat;
    ev_addr(e, s->arg, (u32)s->arg2);
    ev_send(e);
    return 0;
}
#endif

static __always_inline int on_exit_accept(u16 sys, s64 ret)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    s32 lfd = s->fd;
    struct fd_val *lv = fd_get(tgid, lfd);
    u64 lid = id_of(lv);
    agg_add(tgid, tid, lfd, lv, sys, ret, lat, 0, 0, -1);
    if (ret < 0)
        return 0;
    struct event *e = ev_new(EV_ACCEPT, sys, tgid, tid);
    if (!e)
        return 0;
    e->fd = (s32)ret;
    e->fd2 = lfd;
    e->id = fd_new_unique(tgid, (s32)ret);
    e->arg2 = lid;   /* the listening socket's id */
    e->lat = lat;
    if (s->arg && s->arg2) {
        int alen = 0;
        bpf_probe_read_user(&alen, sizeof(alen), (void *)s->arg2);
        ev_addr(e, s->arg, (u32)alen);
    }
    ev_send(e);
    return 0;
}
#ifdef HAVE_accept
TRACEPOINT_PROBE(syscalls, sys_enter_accept)
{
    return on_enter(SYS_ACCEPT, args->fd, (u64)args->upeer_sockaddr, (u64)args->upeer_addrlen);
}
TRACEPOINT_PROBE(syscalls, sys_exit_accept) { return on_exit_accept(SYS_ACCEPT, args->ret); }
#endif
#ifdef HAVE_accept4
TRACEPOINT_PROBE(syscalls, sys_enter_accept4)
{
    return on_enter(SYS_ACCEPT4, args->fd, (u64)args->upeer_sockaddr, (u64)args->upeer_addrlen);
}
TRACEPOINT_PROBE(syscalls, sys_exit_accept4) { return on_exit_accept(SYS_ACCEPT4, args->ret); }
#endif

/* ---- fd duplication and pipes: keep fd identities right ------------------------------- */
static __always_inline int on_exit_dup(u16 sys, s64 ret)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s || ret < 0)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    s32 oldfd = s->fd;
    s32 newfd = (s32)ret;
    if (newfd == oldfd)
        return 0;
    struct fd_val *ov = fd_get(tgid, oldfd);
    struct fd_key nk = {.tgid = tgid, .fd = newfd};
    u64 id = id_of(ov);
    if (ov) {
        struct fd_val copy = *ov;   /* the new fd names the same file */
        fdid.update(&nk, &copy);
    } else {
        fdid.delete(&nk);
    }
    struct event *e = ev_new(EV_DUP, sys, tgid, tid);
    if (e) {
        e->fd = newfd;
        e->fd2 = oldfd;
        e->id = id;
        ev_send(e);
    }
    return 0;
}
#ifdef HAVE_dup
TRACEPOINT_PROBE(syscalls, sys_enter_dup) { return on_enter(SYS_DUP, args->fildes, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_dup) { return on_exit_dup(SYS_DUP, args->ret); }
#endif
#ifdef HAVE_dup2
TRACEPOINT_PROBE(syscalls, sys_enter_dup2) { return on_enter(SYS_DUP2, args->oldfd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_dup2) { return on_exit_dup(SYS_DUP2, args->ret); }
#endif
#ifdef HAVE_dup3
TRACEPOINT_PROBE(syscalls, sys_enter_dup3) { return on_enter(SYS_DUP3, args->oldfd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_dup3) { return on_exit_dup(SYS_DUP3, args->ret); }
#endif
#ifdef HAVE_fcntl
/* F_DUPFD (0) and F_DUPFD_CLOEXEC (1030) duplicate; other commands are not followed. */
TRACEPOINT_PROBE(syscalls, sys_enter_fcntl)
{
    if (args->cmd != 0 && args->cmd != 1030)
        return 0;
    return on_enter(SYS_FCNTL, args->fd, 0, 0);
}
TRACEPOINT_PROBE(syscalls, sys_exit_fcntl) { return on_exit_dup(SYS_FCNTL, args->ret); }
#endif

static __always_inline int on_exit_fdpair(u16 sys, s64 ret, u16 type)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s || ret < 0)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    int fds[2] = {-1, -1};
    if (bpf_probe_read_user(fds, sizeof(fds), (void *)s->arg) != 0)
        return 0;
    struct event *e = ev_new(type, sys, tgid, tid);
    if (!e)
        return 0;
    e->fd = fds[0];
    e->fd2 = fds[1];
    e->id = fd_new_unique(tgid, fds[0]);
    e->arg = fd_new_unique(tgid, fds[1]);
    e->arg2 = s->arg2;
    ev_send(e);
    return 0;
}
#ifdef HAVE_pipe2
TRACEPOINT_PROBE(syscalls, sys_enter_pipe2) { return on_enter(SYS_PIPE2, -1, (u64)args->fildes, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_pipe2) { return on_exit_fdpair(SYS_PIPE2, args->ret, EV_PIPE); }
#endif
#ifdef HAVE_pipe
TRACEPOINT_PROBE(syscalls, sys_enter_pipe) { return on_enter(SYS_PIPE, -1, (u64)args->fildes, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_pipe) { return on_exit_fdpair(SYS_PIPE, args->ret, EV_PIPE); }
#endif
#ifdef HAVE_socketpair
TRACEPOINT_PROBE(syscalls, sys_enter_socketpair)
{
    return on_enter(SYS_SOCKETPAIR, -1, (u64)args->usockvec,
                    ((u64)args->family << 16) | (args->type & 0xffff));
}
TRACEPOINT_PROBE(syscalls, sys_exit_socketpair)
{
    return on_exit_fdpair(SYS_SOCKETPAIR, args->ret, EV_SOCKET);
}
#endif

/* ---- working directory: relative opens are seeded with a cwd id per process ----------- */
static __always_inline int on_exit_chdir(u16 sys, s64 ret)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s || ret < 0)
        return 0;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    u64 *c = cwdid.lookup(&tgid);
    u64 old = c ? *c : cwd_default(tgid);
    u64 now = id_unique();
    cwdid.update(&tgid, &now);
    struct event *e = ev_new(EV_CHDIR, sys, tgid, tid);
    if (!e)
        return 0;
    e->id = now;
    e->arg = old;
    e->fd = s->fd;
    e->arg2 = sys == SYS_FCHDIR ? id_of(fd_get(tgid, s->fd)) : 0;
    if (sys == SYS_CHDIR)
        ev_path(e, s->arg);
    ev_send(e);
    return 0;
}
#ifdef HAVE_chdir
TRACEPOINT_PROBE(syscalls, sys_enter_chdir) { return on_enter(SYS_CHDIR, AT_FDCWD_IOLENS, (u64)args->filename, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_chdir) { return on_exit_chdir(SYS_CHDIR, args->ret); }
#endif
#ifdef HAVE_fchdir
TRACEPOINT_PROBE(syscalls, sys_enter_fchdir) { return on_enter(SYS_FCHDIR, args->fd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_fchdir) { return on_exit_chdir(SYS_FCHDIR, args->ret); }
#endif

/* ---- process lifecycle: follow descendants, tell user space --------------------------- */
TRACEPOINT_PROBE(sched, sched_process_fork)
{
    u32 parent = bpf_get_current_pid_tgid() >> 32;
    u32 child = args->child_pid;
    if (!wanted(parent))
        return 0;
#if FILTER_MODE == 1
    /* The child may be a thread (same tgid: already followed) or a process; adding its id
     * costs one entry either way and is removed at its exit. */
    u8 one = 1;
    if (targets.update(&child, &one) != 0)
        count(CNT_TARGET_OVERFLOW, 1);
#endif
    struct event *e = ev_new(EV_FORK, 0, parent, (u32)bpf_get_current_pid_tgid());
    if (e) {
        e->arg = child;
        ev_send(e);
    }
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!wanted(tgid))
        return 0;
    struct event *e = ev_new(EV_EXEC, 0, tgid, (u32)bpf_get_current_pid_tgid());
    if (!e)
        return 0;
    e->arg = args->old_pid;
    unsigned short loc = args->data_loc_filename & 0xFFFF;
    int n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), (char *)args + loc);
    e->path_len = n > 0 ? n : 0;
    ev_send(e);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32, tid = (u32)pid_tgid;
    if (!wanted(tgid))
        return 0;
#ifdef HAVE_GROUP_DEAD
    int last = args->group_dead;
#else
    int last = tid == tgid;
#endif
#if FILTER_MODE == 1
    /* A thread's own entry (added at its creation) goes with it; the process's entry only
     * with its last thread, so threads that outlive the main thread stay traced. */
    if (tid != tgid || last)
        targets.delete(&tid);
    if (last && tid != tgid)
        targets.delete(&tgid);
#endif
    if (!last)
        return 0;
    cwdid.delete(&tgid);
    struct event *e = ev_new(EV_EXIT, 0, tgid, tid);
    if (e)
        ev_send(e);
    return 0;
}
