/* File identity without kernel structs: a 64-bit hash of the path an open was given, seeded
 * with the identity of what a relative path is relative to, and the id of its directory.
 *
 * Word at a time (8 bytes per step, NEWPATH_MAX/8 steps at most), so an open pays tens of
 * nanoseconds for it. The directory id is the hash state before the word that holds the
 * path's last '/', mixed with that word's bytes before the slash and the slash's position:
 * every file of one directory (opened through the same base) gets the same directory id.
 * Ids of hashes never have ID_UNIQUE set and are never 0. User space never recomputes them:
 * it learns each id's path from the first open that made it.
 */
#ifndef IOLENS_PATHID_H
#define IOLENS_PATHID_H

#include "log2.h"

#define AT_FDCWD_IOLENS -100
#define PATHID_MUL 0x9E3779B97F4A7C15ULL
#define BYTES_7F 0x7f7f7f7f7f7f7f7fULL
#define BYTES_SLASH 0x2f2f2f2f2f2f2f2fULL

static __always_inline u64 mix64(u64 h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static __always_inline u64 hash_id(u64 h)
{
    h &= ~ID_UNIQUE;
    return h ? h : 1;
}

/* The cwd id of a process that has not called chdir under tracing (user space reads its
 * cwd from /proc). */
static __always_inline u64 cwd_default(u32 tgid)
{
    return hash_id(mix64(((u64)tgid << 8) ^ 0x637764ULL));
}

/* Bytes of `w` below byte `n` (little endian), n in 0..7. */
static __always_inline u64 low_bytes(u64 w, u32 n)
{
    return n ? (w & (((u64)1 << (n * 8)) - 1)) : 0;
}

/* id of the `len`-byte path (0 < len < NEWPATH_MAX) at `p` (a buffer of NEWPATH_MAX bytes,
 * 8-aligned, writable: the bytes after the path in its last word are cleared) under `seed`;
 * its directory's id in *dir (the seed itself when the path has no '/').
 *
 * The loop body has no branch but its exit, so the verifier walks it once per iteration:
 * the last slash is tracked with masks and located within its word after the loop. */
static __always_inline u64 path_id(char *p, u32 len, u64 seed, u64 *dir)
{
    u64 *words = (u64 *)p;
    u32 last = ((len - 1) >> 3) & (NEWPATH_MAX / 8 - 1);
    words[last] = (len & 7) ? low_bytes(words[last], len & 7) : words[last];
    u64 h = seed ^ 0x696f6c656e73ULL;
    u64 dh = 0, dw = 0, di = 0, seen = 0;
    u32 n = (len + 7) >> 3;
    for (u32 i = 0; i < NEWPATH_MAX / 8; i++) {
        if (i >= n)
            break;
        u64 w = words[i];
        u64 t = w ^ BYTES_SLASH;    /* slash bytes become zero bytes: find them all at once */
        u64 zb = ~(((t & BYTES_7F) + BYTES_7F) | t | BYTES_7F);
        u64 m = 0 - ((zb | (0 - zb)) >> 63);   /* all ones when this word holds a slash */
        dh = (h & m) | (dh & ~m);
        dw = (w & m) | (dw & ~m);
        di = ((u64)i & m) | (di & ~m);
        seen |= m;
        h = (h ^ w) * PATHID_MUL;
        h ^= h >> 32;
    }
    if (seen) {
        u64 t = dw ^ BYTES_SLASH;
        u64 zb = ~(((t & BYTES_7F) + BYTES_7F) | t | BYTES_7F);
        u32 b = log2_u64(zb) >> 3;             /* the word's last slash */
        u64 d = (dh ^ low_bytes(dw, b)) * PATHID_MUL;
        *dir = hash_id(mix64(d ^ ((di * 8 + b) << 40) ^ 0x646972ULL));
    } else {
        *dir = seed ? seed : hash_id(mix64(0x726f6f74ULL));
    }
    return hash_id(mix64(h ^ ((u64)len << 48)));
}

#endif
