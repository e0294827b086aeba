/* Shared by the probes: floor(log2(v)) without loops (0 for v = 0), the bucket index of the
 * log2 latency and size histograms (bucket i = [2^i, 2^(i+1))). */
#ifndef IOLENS_LOG2_H
#define IOLENS_LOG2_H

static __always_inline u32 log2_u64(u64 v)
{
    u32 r = 0;
    if (v >> 32) { v >>= 32; r += 32; }
    if (v >> 16) { v >>= 16; r += 16; }
    if (v >> 8)  { v >>= 8;  r += 8; }
    if (v >> 4)  { v >>= 4;  r += 4; }
    if (v >> 2)  { v >>= 2;  r += 2; }
    if (v >> 1)  { r += 1; }
    return r;
}

#endif
