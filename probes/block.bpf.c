/* iolens block probe: per device and op, request latency/size/sequentiality/queue depth.
 *
 * Hooks: block:block_rq_issue, block:block_rq_complete, block:block_rq_requeue (tracepoint
 * args only; no kernel struct is read). Issue stores {ts, bytes, op, seq, depth} keyed by
 * (dev, sector); complete looks it up, computes issue->completion latency and adds to one of
 * two per-CPU hashes (agg0/agg1, chosen by ctl[0]) keyed by (dev, op). Python flips ctl and
 * reads-and-deletes the idle map each interval.
 *
 * Block events run in kworker/IRQ context: nothing here is attributed to a process.
 * Options arrive only as integer -D flags (MAX_KEYS, MAX_INFLIGHT, HAVE_RQ_BYTES).
 */
#ifndef MAX_KEYS
#define MAX_KEYS 1024
#endif
#ifndef MAX_INFLIGHT
#define MAX_INFLIGHT 16384
#endif
#ifndef HAVE_RQ_BYTES
#define HAVE_RQ_BYTES 1
#endif
#define LAT_BUCKETS 36
#define SIZE_BUCKETS 24

enum { OP_READ = 1, OP_WRITE = 2, OP_FLUSH = 3, OP_DISCARD = 4, OP_OTHER = 5 };
enum { CNT_INFLIGHT_FULL = 0, CNT_AGG_FULL = 1, CNT_UNMATCHED = 2, CNT_MAX = 3 };

struct rq_key { u32 dev; u32 pad; u64 sector; };
struct rq_val { u64 ts; u32 bytes; u16 op; u16 seq; s64 depth; };
struct agg_key { u32 dev; u32 op; };
struct agg_val {
    u64 count; u64 bytes; u64 errors; u64 lat_sum; u64 lat_max; u64 seq; u64 max_inflight;
    u32 lat_hist[LAT_BUCKETS];
    u32 size_hist[SIZE_BUCKETS];
};

BPF_HASH(inflight, struct rq_key, struct rq_val, MAX_INFLIGHT);
BPF_HASH(depth, u32, s64, 1024);
BPF_HASH(last_end, u32, u64, 1024);
BPF_F_TABLE("percpu_hash", struct agg_key, struct agg_val, agg0, MAX_KEYS, BPF_F_NO_PREALLOC);
BPF_F_TABLE("percpu_hash", struct agg_key, struct agg_val, agg1, MAX_KEYS, BPF_F_NO_PREALLOC);
BPF_ARRAY(ctl, u32, 1);
BPF_PERCPU_ARRAY(counters, u64, CNT_MAX);

static __always_inline void count(u32 idx)
{
    u64 *c = counters.lookup(&idx);
    if (c)
        *c += 1;
}

#include "log2.h"

/* rwbs: optional leading 'F' (preflush), then R/W/D/E/N..., e.g. "R", "WS", "FWS", "FN". */
static __always_inline u16 op_of(char c0, char c1, u32 bytes)
{
    char c = c0;
    if (c0 == 'F') {
        if (bytes == 0 || (c1 != 'R' && c1 != 'W'))
            return OP_FLUSH;
        c = c1;
    }
    if (c == 'R') return OP_READ;
    if (c == 'W') return OP_WRITE;
    if (c == 'D' || c == 'E') return OP_DISCARD;
    return OP_OTHER;
}

static __always_inline s64 *depth_of(u32 dev)
{
    s64 *d = depth.lookup(&dev);
    if (!d) {
        s64 zero = 0;
        depth.update(&dev, &zero);
        d = depth.lookup(&dev);
    }
    return d;
}

TRACEPOINT_PROBE(block, block_rq_issue)
{
    u32 dev = args->dev;
#if HAVE_RQ_BYTES
    u32 bytes = args->bytes;
#else
    u32 bytes = args->nr_sector << 9;
#endif
    struct rq_key k = {.dev = dev, .sector = args->sector};
    struct rq_val v = {.ts = bpf_ktime_get_ns(), .bytes = bytes,
                       .op = op_of(args->rwbs[0], args->rwbs[1], bytes)};
    if (v.op == OP_READ || v.op == OP_WRITE) {
        u64 *le = last_end.lookup(&dev);
        u64 end = args->sector + args->nr_sector;
        if (le) {
            v.seq = (*le == args->sector);
            *le = end;
        } else {
            last_end.update(&dev, &end);
        }
    }
    s64 *d = depth_of(dev);
    if (d) {
        __sync_fetch_and_add(d, 1);   /* return value unused: plain XADD */
        v.depth = *d;
    }
    if (inflight.update(&k, &v) != 0) {
        count(CNT_INFLIGHT_FULL);
        if (d)
            __sync_fetch_and_add(d, -1);
    }
    return 0;
}

static __always_inline struct rq_val *take(u32 dev, u64 sector, struct rq_val *out)
{
    struct rq_key k = {.dev = dev, .sector = sector};
    struct rq_val *v = inflight.lookup(&k);
    if (!v)
        return 0;
    *out = *v;
    inflight.delete(&k);
    s64 *d = depth.lookup(&dev);
    if (d)
        __sync_fetch_and_add(d, -1);
    return out;
}

TRACEPOINT_PROBE(block, block_rq_requeue)
{
    struct rq_val v;
    take(args->dev, args->sector, &v);   /* it will be issued again */
    return 0;
}

TRACEPOINT_PROBE(block, block_rq_complete)
{
    struct rq_val v;
    if (!take(args->dev, args->sector, &v)) {
        count(CNT_UNMATCHED);            /* issued before the probe started, or partial */
        return 0;
    }
    u64 lat = bpf_ktime_get_ns() - v.ts;
    struct agg_key key = {.dev = args->dev, .op = v.op};
    struct agg_val zero = {};
    u32 z = 0;
    u32 *sel = ctl.lookup(&z);
    struct agg_val *a;
    if (sel && *sel)
        a = agg1.lookup_or_try_init(&key, &zero);
    else
        a = agg0.lookup_or_try_init(&key, &zero);
    if (!a) {
        count(CNT_AGG_FULL);
        return 0;
    }
    a->count += 1;
    a->bytes += v.bytes;
    if (args->error)
        a->errors += 1;
    a->lat_sum += lat;
    if (lat > a->lat_max)
        a->lat_max = lat;
    u32 lb = log2_u64(lat);
    if (lb >= LAT_BUCKETS)
        lb = LAT_BUCKETS - 1;
    a->lat_hist[lb] += 1;
    u32 sb = log2_u64(v.bytes);
    if (sb >= SIZE_BUCKETS)
        sb = SIZE_BUCKETS - 1;
    a->size_hist[sb] += 1;
    a->seq += v.seq;
    if (v.depth > 0 && (u64)v.depth > a->max_inflight)
        a->max_inflight = v.depth;
    return 0;
}
