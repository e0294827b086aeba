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
 * Low-rate events (open/close with paths, connect/accept with addresses, fork/exec/exit, ops
 * slower than SLOW_NS) go to a ring buffer without wakeups; Python consumes it on a timer.
 *
 * Options arrive only as integer -D flags validated in Python (FILTER_MODE, SELF_TGID,
 * SLOW_NS, MAX_KEYS, PER_THREAD, USE_TASK_STORAGE, ...) and through the maps `targets` and
 * `cgroups`. No user string is ever part of this text.
 */
/* No kernel headers beyond what BCC itself pulls in: <linux/fs.h> alone made the compile
 * several times slower, and it was only needed for one typedef of the preadv2/pwritev2
 * tracepoint structs (kernel: `typedef int __bitwise rwf_t`). */
typedef int rwf_t;
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
#ifndef MAX_FDS
#define MAX_FDS 131072
#endif
#ifndef MAX_TARGETS
#define MAX_TARGETS 65536
#endif
#ifndef RB_PAGES
#define RB_PAGES 4096
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
BPF_ARRAY(ctl, u32, 1);
BPF_PERCPU_ARRAY(counters, u64, CNT_MAX);
BPF_HASH(fdgen, struct fd_key, u32, MAX_FDS);
BPF_PERCPU_ARRAY(gen_seq, u32, 1);
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

static __always_inline u32 gen_of(u32 tgid, s32 fd)
{
    struct fd_key k = {.tgid = tgid, .fd = fd};
    u32 *g = fdgen.lookup(&k);
    return g ? *g : 0;
}

static __always_inline u32 gen_new(u32 tgid, s32 fd)
{
    /* A per-CPU sequence tagged with the CPU number: unique without atomics (an atomic
     * fetch-add needs BPF ISA v3, which this BCC does not target). Generations only need to
     * tell successive opens of one (tgid, fd) apart. */
    u32 z = 0;
    u32 *seq = gen_seq.lookup(&z);
    if (!seq)
        return 0;
    *seq += 1;
    u32 g = (*seq << 12) | (bpf_get_smp_processor_id() & 0xfff);
    if (g == 0)
        g = 1;
    struct fd_key k = {.tgid = tgid, .fd = fd};
    if (fdgen.update(&k, &g) != 0) {
        count(CNT_FD_OVERFLOW, 1);
        return 0;
    }
    return g;
}

/* Add one completed op to the active aggregation map. */
static __always_inline void agg_add(u32 tgid, u32 tid, s32 fd, u32 gen, u16 sys, s64 ret,
                                    u64 lat, u64 nbytes, int sized, s64 pos)
{
    struct agg_key key = {.tgid = tgid, .tid = PER_THREAD ? tid : 0, .gen = gen, .fd = fd,
                          .sys = sys};
    struct agg_val zero = {};
    u32 z = 0;
    u32 *sel = ctl.lookup(&z);
    struct agg_val *v;
    if (sel && *sel)
        v = agg1.lookup_or_try_init(&key, &zero);
    else
        v = agg0.lookup_or_try_init(&key, &zero);
    if (!v) {
        count(CNT_AGG_OVERFLOW, 1);
        return;
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
    e->gen = 0;
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

static __always_inline void maybe_slow(u16 sys, u32 tgid, u32 tid, s32 fd, u32 gen, s64 ret,
                                       u64 lat)
{
    if (lat < SLOW_NS)
        return;
    struct event *e = ev_new(EV_SLOW, sys, tgid, tid);
    if (!e)
        return;
    e->fd = fd;
    e->gen = gen;
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
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    s32 fd = s->fd;
    u32 gen = gen_of(tgid, fd);
    s64 pos = (posarg && (s64)s->arg2 >= 0) ? (s64)s->arg2 : -1;  /* -1: current position */
    agg_add(tgid, tid, fd, gen, sys, ret, lat, ret > 0 ? ret : 0, sized, pos);
    maybe_slow(sys, tgid, tid, fd, gen, ret, lat);
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

/* Exit-only data/sync op: filter, then fd (argument 0, or 2 for the destination fd of
 * copy_file_range/splice) and position (argument 3) from the saved registers. */
static __always_inline int on_exit_regs(u16 sys, s64 ret, int sized, int posarg)
{
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
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
    u32 gen = gen_of(tgid, fd);
    s64 pos = (posarg && (s64)posv >= 0) ? (s64)posv : -1;
    agg_add(tgid, tid, fd, gen, sys, ret, 0, ret > 0 ? ret : 0, sized, pos);
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

/* ---- path-based metadata ops: counted per process (fd -100) --------------------------- */
#define PATH_OP(name, SYS)                                                                   \
    TRACEPOINT_PROBE(syscalls, sys_enter_##name) { return on_enter(SYS, -100, 0, 0); }      \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_fd(SYS, args->ret, 0, 0); }
#ifdef HAVE_newstat
PATH_OP(newstat, SYS_NEWSTAT)
#endif
#ifdef HAVE_newlstat
PATH_OP(newlstat, SYS_NEWLSTAT)
#endif
#ifdef HAVE_newfstatat
PATH_OP(newfstatat, SYS_NEWFSTATAT)
#endif
#ifdef HAVE_statx
PATH_OP(statx, SYS_STATX)
#endif

/* ---- opens: a new fd generation and an event with the path ---------------------------- */
static __always_inline int on_exit_open(u16 sys, s64 ret)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    u32 gen = ret >= 0 ? gen_new(tgid, (s32)ret) : 0;
    agg_add(tgid, tid, ret >= 0 ? (s32)ret : -1, gen, sys, ret, lat, 0, 0, -1);
    struct event *e = ev_new(EV_OPEN, sys, tgid, tid);
    if (!e)
        return 0;
    e->fd = ret >= 0 ? (s32)ret : -1;
    e->fd2 = s->fd;          /* dirfd */
    e->gen = gen;
    e->ret = ret;
    e->lat = lat;
    ev_path(e, s->arg);
    ev_send(e);
    return 0;
}

#define OPEN_OP(name, SYS, dirfd, pathptr)                                                   \
    TRACEPOINT_PROBE(syscalls, sys_enter_##name) {                                           \
        return on_enter(SYS, (s32)(dirfd), (u64)(pathptr), 0);                               \
    }                                                                                        \
    TRACEPOINT_PROBE(syscalls, sys_exit_##name) { return on_exit_open(SYS, args->ret); }
#ifdef HAVE_openat
OPEN_OP(openat, SYS_OPENAT, args->dfd, args->filename)
#endif
#ifdef HAVE_openat2
OPEN_OP(openat2, SYS_OPENAT2, args->dfd, args->filename)
#endif
#ifdef HAVE_open
OPEN_OP(open, SYS_OPEN, -100, args->filename)
#endif
#ifdef HAVE_creat
OPEN_OP(creat, SYS_CREAT, -100, args->pathname)
#endif

/* ---- close: forget the generation, tell user space ------------------------------------ */
#ifdef HAVE_close
TRACEPOINT_PROBE(syscalls, sys_enter_close) { return on_enter(SYS_CLOSE, args->fd, 0, 0); }
TRACEPOINT_PROBE(syscalls, sys_exit_close)
{
    u64 lat = 0;
    struct start_t *s = take_start(SYS_CLOSE, &lat);
    if (!s)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    s32 fd = s->fd;
    struct fd_key k = {.tgid = tgid, .fd = fd};
    u32 gen = gen_of(tgid, fd);
    agg_add(tgid, tid, fd, gen, SYS_CLOSE, args->ret, lat, 0, 0, -1);
    if (args->ret == 0) {
        fdgen.delete(&k);
        /* Closes of fds opened under tracing need no event (the next open of the number
         * supersedes it, and the io rows already count closes per file): only fds from
         * before the capture (generation 0) are reported, so user space forgets what it
         * resolved for them from /proc. ALL_CLOSES=1 (--all-events) reports every close. */
        if (gen != 0 && !ALL_CLOSES)
            return 0;
        struct event *e = ev_new(EV_CLOSE, SYS_CLOSE, tgid, tid);
        if (e) {
            e->fd = fd;
            e->gen = gen;
            ev_send(e);
        }
    }
    return 0;
}
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
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    s32 fd = s->fd;
    u32 gen = gen_of(tgid, fd);
    s64 ret = args->ret;
    int failed = ret < 0 && ret > -4096;
    agg_add(tgid, tid, fd, gen, SYS_MMAP, failed ? ret : 0, lat, s->arg, 0, -1);
    if (!failed) {
        struct event *e = ev_new(EV_MMAP, SYS_MMAP, tgid, tid);
        if (e) {
            e->fd = fd;
            e->gen = gen;
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
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    struct event *e = ev_new(EV_SOCKET, SYS_SOCKET, tgid, tid);
    if (!e)
        return 0;
    e->fd = args->ret;
    e->gen = gen_new(tgid, args->ret);
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
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    s32 fd = s->fd;
    u32 gen = gen_of(tgid, fd);
    agg_add(tgid, tid, fd, gen, SYS_CONNECT, args->ret, lat, 0, 0, -1);
    struct event *e = ev_new(EV_CONNECT, SYS_CONNECT, tgid, tid);
    if (!e)
        return 0;
    e->fd = fd;
    e->gen = gen;
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
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    s32 lfd = s->fd;
    agg_add(tgid, tid, lfd, gen_of(tgid, lfd), sys, ret, lat, 0, 0, -1);
    if (ret < 0)
        return 0;
    struct event *e = ev_new(EV_ACCEPT, sys, tgid, tid);
    if (!e)
        return 0;
    e->fd = (s32)ret;
    e->fd2 = lfd;
    e->gen = gen_new(tgid, (s32)ret);
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

/* ---- fd duplication and pipes: keep generations right --------------------------------- */
static __always_inline int on_exit_dup(u16 sys, s64 ret)
{
    u64 lat = 0;
    struct start_t *s = take_start(sys, &lat);
    if (!s || ret < 0)
        return 0;
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    s32 oldfd = s->fd;
    s32 newfd = (s32)ret;
    if (newfd == oldfd)
        return 0;
    u32 gen = gen_of(tgid, oldfd);
    struct fd_key nk = {.tgid = tgid, .fd = newfd};
    if (gen)
        fdgen.update(&nk, &gen);
    else
        fdgen.delete(&nk);
    struct event *e = ev_new(EV_DUP, sys, tgid, tid);
    if (e) {
        e->fd = newfd;
        e->fd2 = oldfd;
        e->gen = gen;
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
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
    int fds[2] = {-1, -1};
    if (bpf_probe_read_user(fds, sizeof(fds), (void *)s->arg) != 0)
        return 0;
    struct event *e = ev_new(type, sys, tgid, tid);
    if (!e)
        return 0;
    e->fd = fds[0];
    e->fd2 = fds[1];
    e->gen = gen_new(tgid, fds[0]);
    e->arg = gen_new(tgid, fds[1]);
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
    u64 id = bpf_get_current_pid_tgid();
    u32 tgid = id >> 32, tid = (u32)id;
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
    struct event *e = ev_new(EV_EXIT, 0, tgid, tid);
    if (e)
        ev_send(e);
    return 0;
}
