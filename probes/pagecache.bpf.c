/* iolens page-cache probe: per (process, file) page-cache insertions, readahead, dirtied
 * pages, dirty throttling, and the mmap page faults that did I/O.
 *
 * Hooks (tracepoint args only; no kernel struct is read):
 *   filemap:mm_filemap_add_to_page_cache  a page (folio of 1<<order pages) inserted; runs in
 *                                         the context of the task whose access missed
 *   filemap:mm_filemap_fault              filemap_fault() entered for (ino, index): a fault
 *                                         on a file mapping that was not served by fault-around
 *   filemap:mm_filemap_map_pages          fault-around; when its window covers the pending
 *                                         fault's index it is the retry after the I/O wait
 *   readahead:page_cache_{sync,async}_ra, page_cache_ra_order   readahead started for a file
 *   writeback:writeback_dirty_folio       a folio dirtied (dirtier's context)
 *   writeback:balance_dirty_pages         dirty throttling pause (ms) of the dirtier
 * Per-thread state lives in task storage (fallback: an LRU hash keyed by tid).
 *
 *   sched:sched_switch / sched:sched_wakeup   (optional) the sleeps of a thread in a fault
 *
 * Fault attribution: after mm_filemap_fault for (dev, ino, idx) the thread is "in a fault";
 * pages it inserts for the same file with gaps < FAULT_GAP_NS are the fault's I/O. The fault
 * ends at the map_pages retry covering idx, or at the next fault/unrelated map_pages.
 * Page-cache activity of the thread on another file (insertion, readahead, dirtying) also
 * ends it. Fault time = entry -> last insertion (on CPU) + the fault's sleep: the first
 * switch-out in D state (folio lock and mmap lock waits are TASK_KILLABLE) within
 * SLEEP_START_NS of the fault's last activity, until its wakeup. The sleep is charged at the
 * thread's next switch-out (the wakeup runs in another context) and ends the fault.
 * Without the sched hooks (HAVE_sched unset) the time runs from entry to the retry instead,
 * which misses waits whose retry maps a large folio by PMD (no map_pages event).
 *
 * Aggregation: per-CPU hashes agg0/agg1 chosen by ctl[0] (Python flips and drains the idle
 * one). Options arrive only as integer -D flags.
 */
#ifndef SELF_TGID
#define SELF_TGID 0
#endif
#ifndef MAX_KEYS
#define MAX_KEYS 16384
#endif
#ifndef USE_TASK_STORAGE
#define USE_TASK_STORAGE 1
#endif
#ifndef HAVE_ORDER
#define HAVE_ORDER 1
#endif
#ifndef FAULT_GAP_NS
#define FAULT_GAP_NS 20000000ULL     /* between insertions of one fault's readahead (a
                                        * preempted thread may pause that long on a busy host) */
#endif
#ifndef RA_GAP_NS
#define RA_GAP_NS 20000000ULL
#endif
#ifndef WRITE_GAP_NS
#define WRITE_GAP_NS 1000000000ULL    /* insert -> dirty of the same folio by one write */
#endif
#ifndef WAIT_MIN_NS
#define WAIT_MIN_NS 50000ULL         /* a retry this late means the fault slept on I/O */
#endif
#ifndef SLEEP_START_NS
#define SLEEP_START_NS 5000000ULL    /* a sleep this soon after fault activity is its wait */
#endif
#ifndef RETRY_MAX_NS
#define RETRY_MAX_NS 30000000000ULL  /* a "retry" later than this is a new fault */
#endif

enum { CNT_AGG_FULL = 0, CNT_STATE_FAIL = 1, CNT_MAX = 2 };

struct pc_key { u32 tgid; u32 dev; u64 ino; };
struct pc_val {
    u64 pages_added;   /* all insertions */
    u64 ra_pages;      /* insertions inside a readahead */
    u64 write_pages;   /* insertions a write created (then dirtied at once) */
    u64 dirtied;       /* folios dirtied */
    u64 throttle_ns;   /* balance_dirty_pages pauses */
    u64 fault_pages;   /* insertions caused by faults on a mapping of the file */
    u64 faults;        /* faults that inserted pages or waited for them */
    u64 fault_ns;      /* time in those faults */
};
struct pc_state {
    u64 f_ino; u64 f_idx; u64 f_t0; u64 f_tlast; u32 f_dev; u32 f_state; u32 f_tgid; u32 f_counted;
    u64 ra_ino; u64 ra_tlast; u32 ra_dev; u32 add_pages;
    u64 add_ino; u64 add_idx; u64 add_t; u32 add_dev; u32 d_dev;
    u64 d_ino;
    u64 sl_ino; u64 sl_ts; u64 sl_t0; u32 sl_dev; u32 sl_tgid; u32 sl_state; u32 pad;
};

BPF_F_TABLE("percpu_hash", struct pc_key, struct pc_val, agg0, MAX_KEYS, BPF_F_NO_PREALLOC);
BPF_F_TABLE("percpu_hash", struct pc_key, struct pc_val, agg1, MAX_KEYS, BPF_F_NO_PREALLOC);
BPF_ARRAY(ctl, u32, 1);
BPF_PERCPU_ARRAY(counters, u64, CNT_MAX);
BPF_HASH(woken, u32, u64, 4096);     /* tid sleeping in a fault -> wakeup time (0: asleep) */
#if USE_TASK_STORAGE
BPF_TASK_STORAGE(state, struct pc_state);
#else
BPF_TABLE("lru_hash", u32, struct pc_state, state_h, 65536);
#endif

static __always_inline void count(u32 idx)
{
    u64 *c = counters.lookup(&idx);
    if (c)
        *c += 1;
}

static __always_inline struct pc_state *st_get(int create)
{
#if USE_TASK_STORAGE
    return state.task_storage_get(bpf_get_current_task_btf(), 0,
                                  create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
#else
    u32 tid = (u32)bpf_get_current_pid_tgid();
    struct pc_state *s = state_h.lookup(&tid);
    if (!s && create) {
        struct pc_state zero = {};
        state_h.update(&tid, &zero);
        s = state_h.lookup(&tid);
    }
    return s;
#endif
}

static __always_inline struct pc_val *agg(u32 tgid, u32 dev, u64 ino)
{
    struct pc_key key = {.tgid = tgid, .dev = dev, .ino = ino};
    struct pc_val zero = {};
    u32 z = 0;
    u32 *sel = ctl.lookup(&z);
    struct pc_val *v;
    if (sel && *sel)
        v = agg1.lookup_or_try_init(&key, &zero);
    else
        v = agg0.lookup_or_try_init(&key, &zero);
    if (!v)
        count(CNT_AGG_FULL);
    return v;
}

static __always_inline u32 cur_tgid(void)
{
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (tgid == SELF_TGID)
        return 0;
    return tgid;
}

/* A pending fault ends: add its time (entry -> last related event) if it did I/O. */
static __always_inline void fault_end(struct pc_state *s)
{
    if (s->f_state == 1 && s->f_counted) {
        struct pc_val *v = agg(s->f_tgid, s->f_dev, s->f_ino);
        if (v)
            v->fault_ns += s->f_tlast - s->f_t0;
    }
    s->f_state = 0;
}

static __always_inline void fault_count(struct pc_state *s, struct pc_val *v)
{
    if (!s->f_counted) {
        s->f_counted = 1;
        if (v)
            v->faults += 1;
    }
}

TRACEPOINT_PROBE(filemap, mm_filemap_fault)
{
    u32 tgid = cur_tgid();
    if (!tgid)
        return 0;
    struct pc_state *s = st_get(1);
    if (!s) {
        count(CNT_STATE_FAIL);
        return 0;
    }
    u64 now = bpf_ktime_get_ns();
    u64 ino = args->i_ino, idx = args->index;
    u32 dev = args->s_dev;
    if (s->f_state == 1 && s->f_ino == ino && s->f_dev == dev && s->f_idx == idx &&
        now - s->f_t0 < RETRY_MAX_NS) {
        /* filemap_fault() again for the same page: the retry after waiting for it */
        if (s->f_counted || now - s->f_t0 >= WAIT_MIN_NS) {
#ifndef HAVE_sched
            s->f_tlast = now;
#endif
            fault_count(s, agg(tgid, dev, ino));
        }
        return 0;
    }
    fault_end(s);
    s->f_state = 1;
    s->f_counted = 0;
    s->f_tgid = tgid;
    s->f_ino = ino;
    s->f_dev = dev;
    s->f_idx = idx;
    s->f_t0 = now;
    s->f_tlast = now;
    return 0;
}

TRACEPOINT_PROBE(filemap, mm_filemap_map_pages)
{
    struct pc_state *s = st_get(0);
    if (!s || s->f_state != 1)
        return 0;
    if (s->f_ino == args->i_ino && s->f_dev == args->s_dev &&
        args->index <= s->f_idx && s->f_idx <= args->last_index) {
        /* fault-around over the pending fault's page: the retry after the wait */
        u64 now = bpf_ktime_get_ns();
        if (now - s->f_t0 < RETRY_MAX_NS && (s->f_counted || now - s->f_t0 >= WAIT_MIN_NS)) {
#ifndef HAVE_sched
            s->f_tlast = now;
#endif
            fault_count(s, agg(s->f_tgid, s->f_dev, s->f_ino));
        }
    }
    fault_end(s);
    return 0;
}

TRACEPOINT_PROBE(filemap, mm_filemap_add_to_page_cache)
{
    u32 tgid = cur_tgid();
    if (!tgid)
        return 0;
#if HAVE_ORDER
    u64 pages = 1ULL << (args->order & 0x1f);
#else
    u64 pages = 1;
#endif
    u64 ino = args->i_ino;
    u32 dev = args->s_dev;
    struct pc_val *v = agg(tgid, dev, ino);
    if (!v)
        return 0;
    v->pages_added += pages;
    struct pc_state *s = st_get(1);
    if (!s) {
        count(CNT_STATE_FAIL);
        return 0;
    }
    u64 now = bpf_ktime_get_ns();
    if (s->f_state == 1 && (s->f_ino != ino || s->f_dev != dev))
        fault_end(s);                         /* a miss on another file: the fault is over */
    if (s->f_state == 1 && s->f_ino == ino && s->f_dev == dev && now - s->f_tlast < FAULT_GAP_NS) {
        v->fault_pages += pages;
        s->f_tlast = now;
        fault_count(s, v);
    }
    if (s->ra_ino == ino && s->ra_dev == dev && now - s->ra_tlast < RA_GAP_NS) {
        v->ra_pages += pages;
        s->ra_tlast = now;
    }
    s->add_ino = ino;
    s->add_dev = dev;
    s->add_idx = args->index;
    s->add_pages = pages;
    s->add_t = now;
    return 0;
}

static __always_inline int ra_start(u64 ino, u32 dev)
{
    if (!cur_tgid())
        return 0;
    struct pc_state *s = st_get(1);
    if (!s)
        return 0;
    if (s->f_state == 1 && (s->f_ino != ino || s->f_dev != dev))
        fault_end(s);                         /* readahead of another file: fault is over */
    s->ra_ino = ino;
    s->ra_dev = dev;
    s->ra_tlast = bpf_ktime_get_ns();
    return 0;
}

#ifdef HAVE_sync_ra
TRACEPOINT_PROBE(readahead, page_cache_sync_ra) { return ra_start(args->i_ino, args->s_dev); }
#endif
#ifdef HAVE_async_ra
TRACEPOINT_PROBE(readahead, page_cache_async_ra) { return ra_start(args->i_ino, args->s_dev); }
#endif
#ifdef HAVE_ra_order
TRACEPOINT_PROBE(readahead, page_cache_ra_order) { return ra_start(args->i_ino, args->s_dev); }
#endif

#ifdef HAVE_dirty
TRACEPOINT_PROBE(writeback, writeback_dirty_folio)
{
    u32 tgid = cur_tgid();
    if (!tgid)
        return 0;
    struct pc_state *s = st_get(1);
    if (!s)
        return 0;
    u64 ino = args->ino;
    u64 now = bpf_ktime_get_ns();
    u32 dev = 0;               /* the tracepoint names the bdi, not the fs: borrow the dev */
    if (s->add_ino == ino)
        dev = s->add_dev;
    else if (s->d_ino == ino)
        dev = s->d_dev;
    else if (s->f_ino == ino)
        dev = s->f_dev;
    if (s->f_state == 1 && s->f_ino != ino)
        fault_end(s);                         /* writing another file: the fault is over */
    struct pc_val *v = agg(tgid, dev, ino);
    if (!v)
        return 0;
    if (s->add_ino == ino && s->add_idx == args->index && now - s->add_t < WRITE_GAP_NS) {
        v->write_pages += s->add_pages;   /* this insertion was a write creating the folio */
        v->dirtied += s->add_pages;
        s->add_ino = 0;
    } else {
        v->dirtied += 1;                  /* an existing folio: its size is not reported */
    }
    s->d_ino = ino;
    s->d_dev = dev;
    return 0;
}
#endif

#ifdef HAVE_bdp
TRACEPOINT_PROBE(writeback, balance_dirty_pages)
{
    u32 tgid = cur_tgid();
    if (!tgid)
        return 0;
    long pause = args->pause;  /* ms */
    if (pause <= 0)
        return 0;
    struct pc_state *s = st_get(0);
    struct pc_val *v = s ? agg(tgid, s->d_dev, s->d_ino) : agg(tgid, 0, 0);
    if (v)
        v->throttle_ns += (u64)pause * 1000000ULL;
    return 0;
}
#endif

#ifdef HAVE_sched
/* Runs as the switched-out task (current == prev): its own task storage is reachable. */
TRACEPOINT_PROBE(sched, sched_switch)
{
    struct pc_state *s = st_get(0);
    if (!s)
        return 0;
    u32 tid = args->prev_pid;
    if (s->sl_state) {
        /* it slept in a fault and has run since: charge the sleep, the fault is over */
        u64 *w = woken.lookup(&tid);
        if (w && *w > s->sl_ts) {
            struct pc_val *v = agg(s->sl_tgid, s->sl_dev, s->sl_ino);
            if (v)
                v->fault_ns += *w - s->sl_ts;
            if (s->f_state == 1 && s->f_t0 == s->sl_t0) {
                fault_count(s, v);           /* it waited, maybe for someone else's read */
                fault_end(s);
            }
        }
        woken.delete(&tid);
        s->sl_state = 0;
    }
    if (!(args->prev_state & 2) || s->f_state != 1)
        return 0;                            /* not an uninterruptible sleep in a fault */
    u64 now = bpf_ktime_get_ns();
    if (now - s->f_tlast >= SLEEP_START_NS)
        return 0;
    u64 zero = 0;
    if (woken.update(&tid, &zero) != 0)
        return 0;
    s->sl_state = 1;
    s->sl_ts = now;
    s->sl_t0 = s->f_t0;
    s->sl_ino = s->f_ino;
    s->sl_dev = s->f_dev;
    s->sl_tgid = s->f_tgid;
    return 0;
}

TRACEPOINT_PROBE(sched, sched_wakeup)
{
    u32 tid = args->pid;
    u64 *w = woken.lookup(&tid);
    if (w && *w == 0)
        *w = bpf_ktime_get_ns();
    return 0;
}
#endif
