/* storm: the syscall workloads of the iolens benchmarks (built by the scripts with gcc into a
 * temporary directory; nothing binary is committed).
 *
 *   storm bench [-s SCALE] [-w] DIR      timed loops; one JSON line of ns per syscall
 *       pread4k   pread(4 KiB) cycling over an 8 MiB file in the page cache
 *       pread64k  pread(64 KiB) over the same file
 *       tcp       send(64 B) + recv(64 B) on a loopback TCP pair, one thread, per syscall
 *       getppid   not traced by iolens: shows the global cost of any syscall tracepoint
 *   storm rate -t THREADS -d SECS DIR     unpaced pread(1 byte) per thread; calls made
 *   storm ramp -d SECS DIR RATE...        paced open+close of one file at each RATE (opens/s),
 *                                         SECS per step, 1 s pause between steps
 *   storm keys -n N -d SECS DIR           N fds on one file (one process per 10k), each
 *                                         pread once per 0.5 s
 *   storm files -n N -t PROCS DIR          the first epoch of a small-file loader: PROCS forked
 *                                         processes open, fstat, read and close each of the N
 *                                         files DIR/classCCCC/imgNNNNNNN.bin (made by
 *                                         wl_smallfiles.py, 200 dirs) once, in a shuffled order;
 *                                         JSON line: files, bytes, secs, files_per_s
 *
 * -w: set everything up, print "ready", then wait for SIGUSR1 before the timed part (lets a
 * tracer attach to the pid first). Setup (file creation, warm-up) is never timed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FILE_SIZE (8u << 20)

static char path[4096];
static int waitflag;

static double now_s(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int open_data(const char *dir)
{
    snprintf(path, sizeof(path), "%s/storm.dat", dir);
    int fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        die("open");
    struct stat st;
    fstat(fd, &st);
    if (st.st_size < FILE_SIZE) {
        static char blk[65536];
        memset(blk, 'x', sizeof(blk));
        for (unsigned off = 0; off < FILE_SIZE; off += sizeof(blk))
            if (pwrite(fd, blk, sizeof(blk), off) != sizeof(blk))
                die("pwrite");
    }
    static char buf[65536];
    for (unsigned off = 0; off < FILE_SIZE; off += sizeof(buf))  /* into the page cache */
        if (pread(fd, buf, sizeof(buf), off) < 0)
            die("pread");
    return fd;
}

static void ready(void)
{
    if (!waitflag)
        return;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigprocmask(SIG_BLOCK, &s, 0);
    printf("ready %d\n", getpid());
    fflush(stdout);
    int sig;
    sigwait(&s, &sig);
}

/* Each timed loop runs in CHUNKS pieces; per loop we keep the wall-clock mean, the fastest
 * chunk (least disturbed by other processes on a shared machine), the thread CPU-time mean
 * (excludes time preempted by others; includes everything done in this thread's context,
 * BPF programs included, but not the work of a separate tracer process such as strace) and
 * the CPU time of the fastest chunk. */
#define CHUNKS 10
struct res {
    double wall, best, cpu, cpu_best;
};

typedef void (*body_fn)(long from, long n, void *ctx);

static struct res timed(body_fn f, long n, void *ctx, double per)
{
    struct res r = {0, 1e18, 0, 1e18};
    long step = n / CHUNKS > 0 ? n / CHUNKS : 1, done = 0;
    double w0 = now_s(CLOCK_MONOTONIC), c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    while (done < n) {
        long k = n - done < step ? n - done : step;
        double t = now_s(CLOCK_MONOTONIC), c = now_s(CLOCK_THREAD_CPUTIME_ID);
        f(done, k, ctx);
        t = (now_s(CLOCK_MONOTONIC) - t) * 1e9 / (k * per);
        c = (now_s(CLOCK_THREAD_CPUTIME_ID) - c) * 1e9 / (k * per);
        if (t < r.best)
            r.best = t;
        if (c < r.cpu_best)
            r.cpu_best = c;
        done += k;
    }
    r.wall = (now_s(CLOCK_MONOTONIC) - w0) * 1e9 / (n * per);
    r.cpu = (now_s(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e9 / (n * per);
    return r;
}

struct pread_ctx {
    int fd;
    size_t sz;
};

static void body_pread(long from, long n, void *p)
{
    static char buf[65536];
    struct pread_ctx *c = p;
    unsigned slots = FILE_SIZE / c->sz;
    for (long i = from; i < from + n; i++)
        if (pread(c->fd, buf, c->sz, (off_t)(i % slots) * c->sz) != (ssize_t)c->sz)
            die("pread");
}

static void body_getppid(long from, long n, void *p)
{
    (void)from, (void)p;
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
}

static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (l < 0 || bind(l, (void *)&sa, len) || listen(l, 1) || getsockname(l, (void *)&sa, &len))
        die("listen");
    *a = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*a, (void *)&sa, len))
        die("connect");
    *b = accept(l, 0, 0);
    if (*b < 0)
        die("accept");
    int one = 1;
    setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    close(l);
}

struct tcp_ctx {
    int a, b;
};

static void body_tcp(long from, long n, void *p)
{
    struct tcp_ctx *c = p;
    char buf[64] = {0};
    (void)from;
    for (long i = 0; i < n; i++) {
        if (send(c->a, buf, 64, 0) != 64)
            die("send");
        size_t got = 0;
        while (got < 64) {
            ssize_t r = recv(c->b, buf, 64 - got, 0);
            if (r <= 0)
                die("recv");
            got += r;
        }
    }
}

static void put(const char *name, struct res r, int last)
{
    printf("\"%s\": {\"wall\": %.1f, \"best\": %.1f, \"cpu\": %.1f, \"cpu_best\": %.1f}%s", name,
           r.wall, r.best, r.cpu, r.cpu_best, last ? "" : ", ");
}

static int cmd_bench(double scale, const char *dir)
{
    int fd = open_data(dir);
    int a, b;
    tcp_pair(&a, &b);
    long n4 = 200000 * scale, n64 = 40000 * scale, ntcp = 30000 * scale, ng = 500000 * scale;
    if (n4 < 1) n4 = 1;
    if (n64 < 1) n64 = 1;
    if (ntcp < 1) ntcp = 1;
    if (ng < 1) ng = 1;
    struct pread_ctx p4 = {fd, 4096}, p64 = {fd, 65536};
    struct tcp_ctx tc = {a, b};
    timed(body_pread, n4 / 10 + 1, &p4, 1);   /* warm-up (caches, branch predictors) */
    timed(body_tcp, ntcp / 10 + 1, &tc, 2);
    ready();
    struct res r4 = timed(body_pread, n4, &p4, 1);
    struct res r64 = timed(body_pread, n64, &p64, 1);
    struct res rt = timed(body_tcp, ntcp, &tc, 2);
    struct res rg = timed(body_getppid, ng, 0, 1);
    printf("{");
    put("pread4k", r4, 0);
    put("pread64k", r64, 0);
    put("tcp", rt, 0);
    put("getppid", rg, 0);
    printf("\"n\": {\"pread4k\": %ld, \"pread64k\": %ld, \"tcp\": %ld, \"getppid\": %ld}}\n",
           n4, n64, 2 * ntcp, ng);
    return 0;
}

struct rate_arg {
    int fd;
    double secs;
    long calls;
};

static void *rate_thread(void *p)
{
    struct rate_arg *r = p;
    char c;
    double end = now_s(CLOCK_MONOTONIC) + r->secs;
    long n = 0;
    for (;;) {
        for (int i = 0; i < 1024; i++)
            if (pread(r->fd, &c, 1, (off_t)(i & 1023) * 4096) != 1)
                die("pread");
        n += 1024;
        if (now_s(CLOCK_MONOTONIC) >= end)
            break;
    }
    r->calls = n;
    return 0;
}

static int cmd_rate(int threads, double secs, const char *dir)
{
    int fd = open_data(dir);
    ready();
    pthread_t th[64];
    struct rate_arg ra[64];
    if (threads > 64) threads = 64;
    double t0 = now_s(CLOCK_MONOTONIC);
    for (int i = 0; i < threads; i++) {
        ra[i] = (struct rate_arg){.fd = fd, .secs = secs};
        pthread_create(&th[i], 0, rate_thread, &ra[i]);
    }
    long total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], 0);
        total += ra[i].calls;
    }
    double el = now_s(CLOCK_MONOTONIC) - t0;
    printf("{\"pid\": %d, \"threads\": %d, \"calls\": %ld, \"secs\": %.4f, \"rate\": %.0f, "
           "\"setup_preads\": %u}\n", getpid(), threads, total, el, total / el, FILE_SIZE / 65536);
    return 0;
}

static int cmd_ramp(double secs, const char *dir, int nrates, char **rates)
{
    close(open_data(dir));
    ready();
    printf("{\"pid\": %d, \"steps\": [", getpid());
    for (int k = 0; k < nrates; k++) {
        double rate = atof(rates[k]);          /* opens per second; 0 = unpaced */
        double t0 = now_s(CLOCK_MONOTONIC), w0 = now_s(CLOCK_REALTIME);
        long n = 0;
        for (;;) {
            for (int i = 0; i < 16; i++) {
                int fd = open(path, O_RDONLY);
                if (fd < 0)
                    die("open");
                close(fd);
            }
            n += 16;
            double el = now_s(CLOCK_MONOTONIC) - t0;
            if (el >= secs)
                break;
            if (rate > 0) {
                double ahead = n / rate - el;
                if (ahead > 0.0005) {
                    struct timespec ts = {0, (long)(ahead * 1e9)};
                    nanosleep(&ts, 0);
                }
            }
        }
        double el = now_s(CLOCK_MONOTONIC) - t0;
        printf("%s{\"target\": %.0f, \"opens\": %ld, \"secs\": %.4f, \"rate\": %.0f, "
               "\"start_realtime\": %.6f, \"end_realtime\": %.6f}",
               k ? ", " : "", rate, n, el, n / el, w0, now_s(CLOCK_REALTIME));
        fflush(stdout);
        sleep(1);
    }
    printf("]}\n");
    return 0;
}

/* One process: n fds on the data file, each pread once per PERIOD seconds. */
#define PERIOD 0.5
static void keys_proc(long n, double secs, long *passes, double *pass_max, double *t_ready)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)n + 64 > rl.rlim_cur) {
        rl.rlim_cur = (rlim_t)n + 64 > rl.rlim_max ? rl.rlim_max : (rlim_t)n + 64;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            die("setrlimit");
    }
    int *fds = malloc(sizeof(int) * n);
    for (long i = 0; i < n; i++) {
        fds[i] = open(path, O_RDONLY);
        if (fds[i] < 0)
            die("open (raise the fd limit: ulimit -Hn)");
    }
    char c;
    double t0 = now_s(CLOCK_MONOTONIC);
    *t_ready = now_s(CLOCK_REALTIME);
    *passes = 0;
    *pass_max = 0;
    while (now_s(CLOCK_MONOTONIC) - t0 < secs) {
        double p0 = now_s(CLOCK_MONOTONIC);
        for (long i = 0; i < n; i++)
            pread(fds[i], &c, 1, 0);
        double el = now_s(CLOCK_MONOTONIC) - p0;
        if (el > *pass_max)
            *pass_max = el;
        (*passes)++;
        if (el < PERIOD) {
            struct timespec ts = {(time_t)(PERIOD - el), (long)((PERIOD - el - (time_t)(PERIOD - el)) * 1e9)};
            nanosleep(&ts, 0);
        }
    }
}

/* nkeys active (pid, fd, pread64) keys: one process per 10k fds (the per-process fd limit
 * may not be raisable here), each fd touched every PERIOD s. */
static int cmd_keys(long nkeys, double secs, const char *dir)
{
    close(open_data(dir));
    int nproc = (nkeys + 9999) / 10000;
    long per = (nkeys + nproc - 1) / nproc;
    int pfd[2];
    if (pipe(pfd))
        die("pipe");
    for (int k = 0; k < nproc; k++) {
        long n = k == nproc - 1 ? nkeys - per * (nproc - 1) : per;
        if (fork() == 0) {
            long passes;
            double pm, tr;
            keys_proc(n, secs, &passes, &pm, &tr);
            char line[128];
            int len = snprintf(line, sizeof(line), "%ld %f %f\n", passes, pm, tr);
            if (write(pfd[1], line, len) != len)
                die("write");
            _exit(0);
        }
    }
    close(pfd[1]);
    FILE *f = fdopen(pfd[0], "r");
    long passes, minp = -1;
    double pm, pass_max = 0, tr, steady = 0;
    while (fscanf(f, "%ld %lf %lf", &passes, &pm, &tr) == 3) {
        if (tr > steady)
            steady = tr;
        if (minp < 0 || passes < minp)
            minp = passes;
        if (pm > pass_max)
            pass_max = pm;
    }
    while (wait(0) > 0)
        ;
    printf("{\"pid\": %d, \"keys\": %ld, \"procs\": %d, \"passes\": %ld, \"pass_max_s\": %.4f, "
           "\"steady_from_realtime\": %.6f, \"end_realtime\": %.6f}\n", getpid(), nkeys, nproc, minp,
           pass_max, steady, now_s(CLOCK_REALTIME));
    return 0;
}

/* The first epoch of a small-file loader (see the header). Each process takes every
 * PROCS-th file of a permutation; a pipe carries its counts back. */
static int cmd_files(long n, int procs, const char *dir)
{
    long *perm = malloc(sizeof(long) * n);
    if (!perm)
        die("malloc");
    for (long i = 0; i < n; i++)
        perm[i] = i;
    srand(7);
    for (long i = n - 1; i > 0; i--) {
        long j = ((long)rand() * RAND_MAX + rand()) % (i + 1);
        long t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int fds[64][2];
    if (procs < 1 || procs > 64)
        procs = 2;
    ready();
    double t0 = now_s(CLOCK_MONOTONIC);
    for (int w = 0; w < procs; w++) {
        if (pipe(fds[w]) != 0)
            die("pipe");
        if (fork() == 0) {
            static char buf[16384];
            char p[4096];
            long files = 0, bytes = 0;
            for (long k = w; k < n; k += procs) {
                long i = perm[k];
                snprintf(p, sizeof(p), "%s/class%04ld/img%07ld.bin", dir, i % 200, i);
                int fd = open(p, O_RDONLY);
                if (fd < 0)
                    continue;
                struct stat st;
                fstat(fd, &st);
                ssize_t r = read(fd, buf, st.st_size + 1 < (off_t)sizeof(buf) ? st.st_size + 1 : sizeof(buf));
                read(fd, buf, 1);
                close(fd);
                files++;
                bytes += r > 0 ? r : 0;
            }
            long out[2] = {files, bytes};
            if (write(fds[w][1], out, sizeof(out)) != sizeof(out))
                _exit(1);
            _exit(0);
        }
        close(fds[w][1]);
    }
    long files = 0, bytes = 0;
    for (int w = 0; w < procs; w++) {
        long got[2] = {0, 0};
        if (read(fds[w][0], got, sizeof(got)) == sizeof(got)) {
            files += got[0];
            bytes += got[1];
        }
        wait(NULL);
    }
    double secs = now_s(CLOCK_MONOTONIC) - t0;
    printf("{\"files\": %ld, \"bytes\": %ld, \"secs\": %.6f, \"files_per_s\": %.1f}\n", files,
           bytes, secs, files / secs);
    free(perm);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: storm bench|rate|ramp|keys|files [options] DIR [RATES...]\n");
        return 2;
    }
    const char *cmd = argv[1];
    double scale = 1, secs = 3;
    int threads = 1;
    long nkeys = 1000;
    int opt;
    optind = 2;
    while ((opt = getopt(argc, argv, "s:wt:d:n:")) != -1) {
        switch (opt) {
        case 's': scale = atof(optarg); break;
        case 'w': waitflag = 1; break;
        case 't': threads = atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'n': nkeys = atol(optarg); break;
        default: return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "storm: DIR missing\n");
        return 2;
    }
    const char *dir = argv[optind];
    setvbuf(stdout, 0, _IOLBF, 0);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(scale, dir);
    if (!strcmp(cmd, "rate"))
        return cmd_rate(threads, secs, dir);
    if (!strcmp(cmd, "ramp"))
        return cmd_ramp(secs, dir, argc - optind - 1, argv + optind + 1);
    if (!strcmp(cmd, "keys"))
        return cmd_keys(nkeys, secs, dir);
    if (!strcmp(cmd, "files"))
        return cmd_files(nkeys, threads, dir);
    fprintf(stderr, "storm: unknown command %s\n", cmd);
    return 2;
}
