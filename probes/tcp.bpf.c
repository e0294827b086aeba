/* iolens TCP probe: per connection (local, peer) retransmits, lifecycle, bytes, RTT.
 *
 * Hooks (tracepoint args only; no kernel struct is read):
 *   tcp:tcp_retransmit_skb      one retransmitted segment (softirq or the sender's context)
 *   sock:inet_sock_set_state    TCP state changes: ESTABLISHED starts a connection (its sock
 *                               pointer is remembered with its addresses), CLOSE ends it
 *   sock:sock_send_length / sock_recv_length   socket-layer lengths (also io_uring socket
 *                               I/O, which the syscall layer does not size), per tracked sock
 *   tcp:tcp_probe               smoothed RTT samples on received segments (optional); also
 *                               learns the sock of connections established before the probe
 *   skb:kfree_skb               incoming segments dropped for lack of receive room (reason
 *                               numbers from the format file, passed as RCVQ_Gn and RCVQ_Tn):
 *                               per tracked connection; TCP-only reasons on untracked socks go
 *                               to a host-level row (zero key)
 * Aggregated in per-CPU hashes agg0/agg1 (ctl[0] selects; Python flips and drains the idle).
 * Attribution to a process happens in Python by matching the peer with the sockets the
 * syscall layer saw. Options arrive only as integer -D flags.
 */
#ifndef MAX_KEYS
#define MAX_KEYS 8192
#endif
#ifndef MAX_SOCKS
#define MAX_SOCKS 65536
#endif
#define IPPROTO_TCP_ 6
#define AF_INET_ 2
#define AF_INET6_ 10
#define ST_ESTABLISHED 1
#define ST_SYN_SENT 2
#define ST_SYN_RECV 3
#define ST_CLOSE 7
#define ST_LISTEN 10

enum { CNT_AGG_FULL = 0, CNT_SOCKS_FULL = 1, CNT_MAX = 2 };

struct conn_key {
    u8 laddr[16];
    u8 raddr[16];
    u16 lport;
    u16 rport;
    u16 family;
    u16 pad;
};
struct conn_val {
    u64 retransmits; u64 rcvq_full; u64 connects; u64 closes; u64 conn_ns;
    u64 bytes_sent; u64 bytes_received; u64 rtt_sum_us; u64 rtt_n;
};
#define SI_LIFE 1      /* established while the probe ran: lifetime known */
#define SI_CLOSED 2    /* closed already (entry kept for data read after the close) */
struct sock_info { struct conn_key key; u64 start; u64 flags; };

BPF_F_TABLE("percpu_hash", struct conn_key, struct conn_val, agg0, MAX_KEYS, BPF_F_NO_PREALLOC);
BPF_F_TABLE("percpu_hash", struct conn_key, struct conn_val, agg1, MAX_KEYS, BPF_F_NO_PREALLOC);
BPF_ARRAY(ctl, u32, 1);
BPF_PERCPU_ARRAY(counters, u64, CNT_MAX);
BPF_TABLE("lru_hash", u64, struct sock_info, socks, MAX_SOCKS);
BPF_PERCPU_ARRAY(scratch, struct conn_key, 1);

static __always_inline void count(u32 idx)
{
    u64 *c = counters.lookup(&idx);
    if (c)
        *c += 1;
}

static __always_inline struct conn_val *agg(struct conn_key *key)
{
    struct conn_val zero = {};
    u32 z = 0;
    u32 *sel = ctl.lookup(&z);
    struct conn_val *v;
    if (sel && *sel)
        v = agg1.lookup_or_try_init(key, &zero);
    else
        v = agg0.lookup_or_try_init(key, &zero);
    if (!v)
        count(CNT_AGG_FULL);
    return v;
}

#define FILL_KEY(k, a)                                                                     \
    do {                                                                                   \
        __builtin_memset(&(k), 0, sizeof(k));                                              \
        (k).family = (a)->family;                                                          \
        (k).lport = (a)->sport;                                                            \
        (k).rport = (a)->dport;                                                            \
        if ((a)->family == AF_INET6_) {                                                    \
            __builtin_memcpy((k).laddr, (a)->saddr_v6, 16);                                \
            __builtin_memcpy((k).raddr, (a)->daddr_v6, 16);                                \
        } else {                                                                           \
            __builtin_memcpy((k).laddr, (a)->saddr, 4);                                    \
            __builtin_memcpy((k).raddr, (a)->daddr, 4);                                    \
        }                                                                                  \
    } while (0)

TRACEPOINT_PROBE(tcp, tcp_retransmit_skb)
{
    struct conn_key k;
    FILL_KEY(k, args);
    struct conn_val *v = agg(&k);
    if (v)
        v->retransmits += 1;
    return 0;
}

TRACEPOINT_PROBE(sock, inet_sock_set_state)
{
    if (args->protocol != IPPROTO_TCP_)
        return 0;
    int ns = args->newstate, os_ = args->oldstate;
    u64 sk = (u64)args->skaddr;
    if (ns == ST_ESTABLISHED && (os_ == ST_SYN_SENT || os_ == ST_SYN_RECV)) {
        struct sock_info si = {.start = bpf_ktime_get_ns(), .flags = SI_LIFE};
        FILL_KEY(si.key, args);
        if (socks.update(&sk, &si) != 0)
            count(CNT_SOCKS_FULL);
        struct conn_val *v = agg(&si.key);
        if (v)
            v->connects += 1;
        return 0;
    }
    if (ns == ST_CLOSE && os_ != ST_SYN_SENT && os_ != ST_SYN_RECV && os_ != ST_LISTEN) {
        struct sock_info *si = socks.lookup(&sk);
        struct conn_val *v;
        if (si) {
            if (si->flags & SI_CLOSED)
                return 0;
            v = agg(&si->key);
            if (v) {
                v->closes += 1;
                if (si->flags & SI_LIFE)
                    v->conn_ns += bpf_ktime_get_ns() - si->start;
            }
            /* kept: data queued before the close may still be read; the LRU map or the
             * next connection on this sock address replaces it */
            si->flags |= SI_CLOSED;
        } else {
            struct conn_key k;
            FILL_KEY(k, args);
            v = agg(&k);
            if (v)
                v->closes += 1;   /* established before the probe: lifetime unknown */
        }
    }
    return 0;
}

#if defined(HAVE_send_length) || defined(HAVE_recv_length)
/* The connection value of a TCP sock tracked since ESTABLISHED, for a positive length from the
 * socket layer; NULL otherwise (other protocols, errors, socks not tracked). */
static __always_inline struct conn_val *length_conn(const void *skp, int protocol, int ret)
{
    if (protocol != IPPROTO_TCP_ || ret <= 0)
        return 0;
    u64 sk = (u64)skp;
    struct sock_info *si = socks.lookup(&sk);
    return si ? agg(&si->key) : 0;
}
#endif

#ifdef HAVE_send_length
TRACEPOINT_PROBE(sock, sock_send_length)
{
    struct conn_val *v = length_conn(args->sk, args->protocol, args->ret);
    if (v)
        v->bytes_sent += args->ret;
    return 0;
}
#endif

#ifdef HAVE_recv_length
TRACEPOINT_PROBE(sock, sock_recv_length)
{
    struct conn_val *v = length_conn(args->sk, args->protocol, args->ret);
    if (v)
        v->bytes_received += args->ret;
    return 0;
}
#endif

#ifdef HAVE_tcp_probe
TRACEPOINT_PROBE(tcp, tcp_probe)
{
    u32 z = 0;
    struct conn_key *k = scratch.lookup(&z);
    if (!k)
        return 0;
    __builtin_memset(k, 0, sizeof(*k));
    k->family = args->family;
    k->lport = args->sport;
    k->rport = args->dport;
    if (args->family == AF_INET6_) {
        bpf_probe_read_kernel(k->laddr, 16, (void *)args->saddr + 8);   /* sockaddr_in6 */
        bpf_probe_read_kernel(k->raddr, 16, (void *)args->daddr + 8);
    } else {
        bpf_probe_read_kernel(k->laddr, 4, (void *)args->saddr + 4);    /* sockaddr_in */
        bpf_probe_read_kernel(k->raddr, 4, (void *)args->daddr + 4);
    }
    struct conn_val *v = agg(k);
    if (v) {
        v->rtt_sum_us += args->srtt;
        v->rtt_n += 1;
    }
    /* a connection established before the probe: learn its sock so that its socket-layer
     * bytes count from now on (lifetime stays unknown) */
    u64 sk = (u64)args->skaddr;
    if (!socks.lookup(&sk)) {
        struct sock_info si = {};
        __builtin_memcpy(&si.key, k, sizeof(si.key));
        socks.update(&sk, &si);
    }
    return 0;
}
#endif


#ifdef HAVE_kfree_skb
/* generic "no receive room" reasons (any socket type): counted for tracked TCP socks only */
#ifndef RCVQ_G1
#define RCVQ_G1 -1
#endif
#ifndef RCVQ_G2
#define RCVQ_G2 -1
#endif
#ifndef RCVQ_G3
#define RCVQ_G3 -1
#endif
/* TCP-only reasons: also counted for untracked socks, in the host-level row */
#ifndef RCVQ_T1
#define RCVQ_T1 -1
#endif
#ifndef RCVQ_T2
#define RCVQ_T2 -1
#endif
#ifndef RCVQ_T3
#define RCVQ_T3 -1
#endif
/* The tracepoint struct names this enum; only its 4-byte size matters here. */
enum skb_drop_reason { IOLENS_SKB_DROP_REASON_MAX_ = 0xffffffffU };
TRACEPOINT_PROBE(skb, kfree_skb)
{
    u32 r = args->reason;
    int tcp_only = r == (u32)RCVQ_T1 || r == (u32)RCVQ_T2 || r == (u32)RCVQ_T3;
    if (!tcp_only && r != (u32)RCVQ_G1 && r != (u32)RCVQ_G2 && r != (u32)RCVQ_G3)
        return 0;
    u64 sk = (u64)args->rx_sk;
    if (!sk)
        return 0;
    struct sock_info *si = socks.lookup(&sk);
    struct conn_val *v;
    if (si) {
        v = agg(&si->key);
    } else if (tcp_only) {
        struct conn_key k = {};
        v = agg(&k);
    } else {
        return 0;     /* not a TCP connection we know: maybe UDP, not this table's */
    }
    if (v)
        v->rcvq_full += 1;
    return 0;
}
#endif
