/* iolens wire structs: the single definition shared by the BPF programs and (through BCC's
 * struct parsing and probes/wire.py's ctypes mirror) the Python decoder.
 *
 * Keep in sync with probes/wire.py (a test compiles this header and compares sizes/offsets).
 */
#ifndef IOLENS_EVENTS_H
#define IOLENS_EVENTS_H

#define LAT_BUCKETS 36
#define SIZE_BUCKETS 24
#define PATH_MAX_IOLENS 4096
#define ADDR_MAX 28   /* sizeof(struct sockaddr_in6) */

/* Syscall ids (the `sys` field). Python maps them to names and to the contract's ops. */
enum sys_id {
    SYS_READ = 1, SYS_WRITE, SYS_PREAD64, SYS_PWRITE64, SYS_READV, SYS_WRITEV,
    SYS_PREADV, SYS_PWRITEV, SYS_PREADV2, SYS_PWRITEV2,
    SYS_OPEN, SYS_OPENAT, SYS_OPENAT2, SYS_CREAT, SYS_CLOSE,
    SYS_FSYNC, SYS_FDATASYNC, SYS_SYNC_FILE_RANGE,
    SYS_NEWSTAT, SYS_NEWLSTAT, SYS_NEWFSTATAT, SYS_STATX, SYS_NEWFSTAT,
    SYS_MMAP, SYS_SENDFILE64, SYS_COPY_FILE_RANGE, SYS_SPLICE, SYS_IO_URING_ENTER,
    SYS_SENDTO, SYS_RECVFROM, SYS_SENDMSG, SYS_RECVMSG, SYS_SENDMMSG, SYS_RECVMMSG,
    SYS_CONNECT, SYS_ACCEPT, SYS_ACCEPT4, SYS_SOCKET, SYS_SOCKETPAIR,
    SYS_DUP, SYS_DUP2, SYS_DUP3, SYS_FCNTL, SYS_PIPE, SYS_PIPE2, SYS_LSEEK,
    SYS_MAX
};

/* Event types of the ring buffer. */
enum ev_type {
    EV_OPEN = 1, EV_CLOSE, EV_SOCKET, EV_CONNECT, EV_ACCEPT, EV_DUP, EV_PIPE,
    EV_FORK, EV_EXEC, EV_EXIT, EV_SLOW, EV_MMAP
};

/* Counters (per-CPU array indexes). */
enum counter_id {
    CNT_RB_LOST = 0,      /* ring-buffer output failed */
    CNT_AGG_OVERFLOW,     /* an op not counted: aggregation map full */
    CNT_FD_OVERFLOW,      /* an fd not tracked: fd map full */
    CNT_TARGET_OVERFLOW,  /* a descendant not followed: target map full */
    CNT_MAX
};

/* Aggregation key: one row of the `io` table per interval. */
struct agg_key {
    u32 tgid;
    u32 tid;       /* 0 unless per-thread aggregation */
    u32 gen;       /* open generation of the fd: tells reused fd numbers apart */
    s32 fd;
    u16 sys;
    u16 pad;
};

struct agg_val {
    u64 count;
    u64 bytes;
    u64 errors;
    u64 lat_sum;
    u64 lat_max;
    u64 random_ops;
    u64 next_off;  /* end of the previous positional op (this CPU) */
    u32 lat_hist[LAT_BUCKETS];
    u32 size_hist[SIZE_BUCKETS];
};

/* Per-thread state between syscall enter and exit. */
struct start_t {
    u64 ts;
    u64 arg;       /* path / sockaddr / fd-array pointer, or length */
    u64 arg2;      /* addrlen pointer / position */
    s32 fd;
    u16 sys;
    u16 pad;
};

struct fd_key {
    u32 tgid;
    s32 fd;
};

/* Ring-buffer record; `path` is variable length (path_len bytes incl. NUL are sent). */
struct event {
    u64 ts;        /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
    u64 lat;
    s64 ret;
    u64 arg;       /* mmap: address; fork: child pid; exec: old pid; pipe: gen of fd2 */
    u64 arg2;      /* mmap: length; open: flags; socket: family<<16|type */
    u32 tgid;
    u32 tid;
    u32 gen;
    s32 fd;
    s32 fd2;
    u16 type;
    u16 sys;
    u16 path_len;
    u16 addr_len;
    u8 addr[ADDR_MAX];
    char comm[16];
    char path[PATH_MAX_IOLENS];
};

#define EVENT_HDR_SIZE (sizeof(struct event) - PATH_MAX_IOLENS)

#endif
