/*
 * SHA-256 as specified in FIPS 180-4, sections 4.1.2, 4.2.2, 5.1.1 and 6.2.
 *
 * The portable block function follows the specification directly. On
 * x86-64 with GCC or Clang, blocks go through the SHA extensions instead
 * when the CPU reports them (CPUID leaf 7, EBX bit 29). Build with
 * -DSHA256_PORTABLE to use the portable code everywhere.
 */
#include "sha256.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&        \
    !defined(SHA256_PORTABLE)
#define SHA256_HAVE_SHANI 1
#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>
#endif

/* The first 32 bits of the fractional parts of the cube roots of the
 * first 64 primes (FIPS 180-4, 4.2.2). */
static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* The first 32 bits of the fractional parts of the square roots of the
 * first 8 primes (FIPS 180-4, 5.3.3). */
static const uint32_t initial_state[8] = {
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
};

static uint32_t rotate_right(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t load_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static void store_be32(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)(x >> 24);
    p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8);
    p[3] = (unsigned char)x;
}

/* Process nblocks consecutive 64-byte blocks (FIPS 180-4, 6.2.2). */
static void compress_portable(uint32_t state[8], const unsigned char *data,
                              size_t nblocks)
{
    uint32_t w[64];

    for (; nblocks > 0; nblocks--, data += SHA256_BLOCK_SIZE) {
        for (int t = 0; t < 16; t++)
            w[t] = load_be32(data + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = rotate_right(w[t - 15], 7) ^
                          rotate_right(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = rotate_right(w[t - 2], 17) ^
                          rotate_right(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = s1 + w[t - 7] + s0 + w[t - 16];
        }

        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t sum1 =
                rotate_right(e, 6) ^ rotate_right(e, 11) ^ rotate_right(e, 25);
            uint32_t choose = (e & f) ^ (~e & g);
            uint32_t t1 = h + sum1 + choose + round_constants[t] + w[t];
            uint32_t sum0 =
                rotate_right(a, 2) ^ rotate_right(a, 13) ^ rotate_right(a, 22);
            uint32_t majority = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = sum0 + majority;
            h = g;
            g = f;
            f = e;
            e = d + t1;
            d = c;
            c = b;
            b = a;
            a = t1 + t2;
        }
        state[0] += a;
        state[1] += b;
        state[2] += c;
        state[3] += d;
        state[4] += e;
        state[5] += f;
        state[6] += g;
        state[7] += h;
    }
}

#ifdef SHA256_HAVE_SHANI

/*
 * The SHA extensions keep the working variables in two registers ordered
 * ABEF and CDGH (lane 3 first) and take four message words per step, each
 * already added to its round constant. SHA256RNDS2 runs two rounds on the
 * low two words, and SHA256MSG1 and SHA256MSG2 compute the message
 * schedule.
 */
__attribute__((target("sha,sse4.1,ssse3"))) static void
compress_shani(uint32_t state[8], const unsigned char *data, size_t nblocks)
{
    const __m128i byte_swap =
        _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i abcd = _mm_loadu_si128((const __m128i *)&state[0]);
    __m128i efgh = _mm_loadu_si128((const __m128i *)&state[4]);

    /* abcd contains lanes A B C D and efgh contains E F G H (lane 0
     * first). */
    __m128i badc = _mm_shuffle_epi32(abcd, 0xb1);
    __m128i hgfe = _mm_shuffle_epi32(efgh, 0x1b);
    __m128i abef = _mm_alignr_epi8(badc, hgfe, 8);
    __m128i cdgh = _mm_blend_epi16(hgfe, badc, 0xf0);

    for (; nblocks > 0; nblocks--, data += SHA256_BLOCK_SIZE) {
        __m128i saved_abef = abef;
        __m128i saved_cdgh = cdgh;
        __m128i w[4];

        for (int g = 0; g < 16; g++) {
            __m128i *cur = &w[g & 3];
            if (g < 4) {
                __m128i raw = _mm_loadu_si128((const __m128i *)(data + 16 * g));
                *cur = _mm_shuffle_epi8(raw, byte_swap);
            } else {
                /* w[g&3] contains the words of group g-4 and becomes
                 * group g: W[t-16] + s0(W[t-15]) + W[t-7] + s1(W[t-2]). */
                __m128i prev1 = w[(g + 3) & 3];
                __m128i prev2 = w[(g + 2) & 3];
                __m128i x = _mm_sha256msg1_epu32(*cur, w[(g + 1) & 3]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(prev1, prev2, 4));
                *cur = _mm_sha256msg2_epu32(x, prev1);
            }
            __m128i k =
                _mm_loadu_si128((const __m128i *)&round_constants[4 * g]);
            __m128i msg = _mm_add_epi32(*cur, k);
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, msg);
            msg = _mm_shuffle_epi32(msg, 0x0e);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, msg);
        }
        abef = _mm_add_epi32(abef, saved_abef);
        cdgh = _mm_add_epi32(cdgh, saved_cdgh);
    }

    __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
    abcd = _mm_blend_epi16(feba, dchg, 0xf0);
    efgh = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128((__m128i *)&state[0], abcd);
    _mm_storeu_si128((__m128i *)&state[4], efgh);
}

/* 0 unknown, 1 portable, 2 SHA extensions. Every thread that detects the
 * CPU stores the same value, so relaxed ordering is enough. */
static atomic_int cpu_kind;

static int detect_shani(void)
{
    unsigned eax, ebx, ecx, edx;

    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    /* SSSE3 is ECX bit 9, SSE4.1 is ECX bit 19 of leaf 1. */
    if (!(ecx & (1u << 9)) || !(ecx & (1u << 19)))
        return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        return 0;
    return (ebx & (1u << 29)) != 0;
}

static void compress(uint32_t state[8], const unsigned char *data,
                     size_t nblocks)
{
    int kind = atomic_load_explicit(&cpu_kind, memory_order_relaxed);

    if (kind == 0) {
        kind = detect_shani() ? 2 : 1;
        atomic_store_explicit(&cpu_kind, kind, memory_order_relaxed);
    }
    if (kind == 2)
        compress_shani(state, data, nblocks);
    else
        compress_portable(state, data, nblocks);
}

#else

static void compress(uint32_t state[8], const unsigned char *data,
                     size_t nblocks)
{
    compress_portable(state, data, nblocks);
}

#endif

void sha256_init(struct sha256_ctx *ctx)
{
    memcpy(ctx->state, initial_state, sizeof(ctx->state));
    ctx->total_bytes = 0;
    ctx->buffered_bytes = 0;
}

void sha256_update(struct sha256_ctx *ctx, const void *data, size_t size)
{
    const unsigned char *p = data;

    ctx->total_bytes += size;
    if (ctx->buffered_bytes > 0) {
        size_t room = SHA256_BLOCK_SIZE - ctx->buffered_bytes;
        size_t take = size < room ? size : room;
        memcpy(ctx->buffer + ctx->buffered_bytes, p, take);
        ctx->buffered_bytes += take;
        p += take;
        size -= take;
        if (ctx->buffered_bytes < SHA256_BLOCK_SIZE)
            return;
        compress(ctx->state, ctx->buffer, 1);
        ctx->buffered_bytes = 0;
    }
    if (size >= SHA256_BLOCK_SIZE) {
        size_t nblocks = size / SHA256_BLOCK_SIZE;
        compress(ctx->state, p, nblocks);
        p += nblocks * SHA256_BLOCK_SIZE;
        size -= nblocks * SHA256_BLOCK_SIZE;
    }
    if (size > 0) {
        memcpy(ctx->buffer, p, size);
        ctx->buffered_bytes = size;
    }
}

void sha256_final(struct sha256_ctx *ctx,
                  unsigned char digest[SHA256_DIGEST_SIZE])
{
    uint64_t length_bits = ctx->total_bytes * 8;
    size_t used = ctx->buffered_bytes;

    /* Padding (5.1.1): a 1 bit, zeros, then the 64-bit message length, so
     * that the padded message fills whole blocks. */
    ctx->buffer[used++] = 0x80;
    if (used > SHA256_BLOCK_SIZE - 8) {
        memset(ctx->buffer + used, 0, SHA256_BLOCK_SIZE - used);
        compress(ctx->state, ctx->buffer, 1);
        used = 0;
    }
    memset(ctx->buffer + used, 0, SHA256_BLOCK_SIZE - 8 - used);
    store_be32(ctx->buffer + 56, (uint32_t)(length_bits >> 32));
    store_be32(ctx->buffer + 60, (uint32_t)length_bits);
    compress(ctx->state, ctx->buffer, 1);

    for (int i = 0; i < 8; i++)
        store_be32(digest + 4 * i, ctx->state[i]);
    memset(ctx, 0, sizeof(*ctx));
}

void sha256_digest(const void *data, size_t size,
                   unsigned char digest[SHA256_DIGEST_SIZE])
{
    struct sha256_ctx ctx;

    sha256_init(&ctx);
    sha256_update(&ctx, data, size);
    sha256_final(&ctx, digest);
}

void sha256_format_hex(const unsigned char digest[SHA256_DIGEST_SIZE],
                       char hex[SHA256_HEX_LENGTH + 1])
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0x0f];
    }
    hex[SHA256_HEX_LENGTH] = '\0';
}
