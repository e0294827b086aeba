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
    SYS_CHDIR, SYS_FCHDIR,
    SYS_POLL, SYS_PPOLL, SYS_SELECT, SYS_PSELECT6, SYS_EPOLL_WAIT, SYS_EPOLL_PWAIT,
    SYS_EPOLL_PWAIT2,
    SYS_MAX
};

/* Event types of the ring buffer. */
enum ev_type {
    EV_OPEN = 1, EV_CLOSE, EV_SOCKET, EV_CONNECT, EV_ACCEPT, EV_DUP, EV_PIPE,
    EV_FORK, EV_EXEC, EV_EXIT, EV_SLOW, EV_MMAP, EV_CHDIR
};

/* Counters (per-CPU array indexes). */
enum counter_id {
    CNT_RB_LOST = 0,      /* ring-buffer output failed */
    CNT_AGG_OVERFLOW,     /* an op not counted: aggregation map full */
    CNT_FD_OVERFLOW,      /* an fd not tracked: fd map full */
    CNT_TARGET_OVERFLOW,  /* a descendant not followed: target map full */
    CNT_FOLDED_DIR,       /* an op counted at directory grain (file-grain map full) */
    CNT_FOLDED_PROC,      /* an op counted at process grain (no room for its directory) */
    CNT_NEWFILE_LOST,     /* a new file's path could not be handed over (both channels full) */
    CNT_MAX
};

/* Aggregation key: one row of the `io` table per interval.
 *
 * `id` is the identity of what the op touched, derived in BPF without kernel structs:
 * - grain FILE, path-opened files: a 64-bit hash of the path as opened, seeded with the
 *   identity of its base (a constant for absolute paths; the dirfd's id, or the process's
 *   cwd id, for relative ones). Every open of the same path gives the same id, so keys grow
 *   with files, not with opens.
 * - grain FILE, sockets/pipes/long paths: a unique id made at creation (ID_UNIQUE set).
 * - grain FILE, id 0: an fd the probe never saw created (opened before the capture): the
 *   fd number tells it apart, user space resolves it from /proc.
 * - grain DIR: the op's file had no room in the file-grain map; id is its directory's id.
 * - grain PROC: no room for the directory either (or no directory): id 0, per process.
 */
#define GRAIN_FILE 0
#define GRAIN_DIR 1
#define GRAIN_PROC 2
#define ID_UNIQUE (1ULL << 63)

struct agg_key {
    u64 id;
    u32 tgid;
    u32 tid;       /* 0 unless per-thread aggregation */
    s32 fd;        /* the fd number when id is 0, else -1 */
    u16 sys;
    u8 grain;
    u8 pad;
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

/* What an fd refers to, from its creation (open, socket, accept, pipe, dup). */
struct fd_val {
    u64 id;        /* see agg_key */
    u64 dir;       /* directory id of a path-opened file, 0 otherwise */
    u32 coarse;    /* 1: the file-grain map was full at open: count its ops by directory */
    u32 pad;
};

/* A file seen for the first time: handed to user space through the `newfiles` hash (drained
 * in batches each interval) instead of one ring-buffer event per open. */
#define NEWPATH_MAX 256
#define BASE_ABS 0
#define BASE_CWD 1
#define BASE_DIRFD 2
struct newfile {
    u64 ts;
    u64 seed;      /* identity of the base: the dirfd's id or the cwd id (relative paths) */
    u64 dir;       /* directory id */
    u32 tgid;
    s32 dirfd;
    u16 len;       /* bytes of path, without the NUL */
    u16 base;      /* BASE_ABS / BASE_CWD / BASE_DIRFD */
    u32 pad;
    char path[NEWPATH_MAX];
};

/* Ring-buffer record; `path` is variable length (path_len bytes incl. NUL are sent). */
struct event {
    u64 ts;        /* bpf_ktime_get_ns (CLOCK_MONOTONIC) */
    u64 lat;
    s64 ret;
    u64 arg;       /* mmap: address; fork: child pid; exec: old pid; pipe: id of fd2 */
    u64 arg2;      /* mmap: length; open: flags; socket: family<<16|type */
    u64 id;        /* identity of fd (see agg_key) */
    u32 tgid;
    u32 tid;
    s32 fd;
    s32 fd2;
    u16 type;
    u16 sys;
    u16 path_len;
    u16 addr_len;
    u8 addr[ADDR_MAX];
    char comm[16];
    u32 pad;
    char path[PATH_MAX_IOLENS];
};

#define EVENT_HDR_SIZE (sizeof(struct event) - PATH_MAX_IOLENS)

#endif
