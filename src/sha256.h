/*
 * SHA-256 (FIPS 180-4) with a streaming and a one-shot interface.
 * All memory belongs to the caller: a context is a plain struct with no
 * heap allocation, so it needs no cleanup.
 */
#ifndef REGPRUNE_SHA256_H
#define REGPRUNE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_BLOCK_SIZE 64
/* Length of a digest in lowercase hex, without the terminating NUL. */
#define SHA256_HEX_LENGTH (2 * SHA256_DIGEST_SIZE)

struct sha256_ctx {
    uint32_t state[8];
    uint64_t total_bytes;
    size_t buffered_bytes;
    unsigned char buffer[SHA256_BLOCK_SIZE];
};

/* Start a new hash computation in ctx. */
void sha256_init(struct sha256_ctx *ctx);

/* Add size bytes at data to the message. data may be NULL when size is 0. */
void sha256_update(struct sha256_ctx *ctx, const void *data, size_t size);

/* Pad the message and write its digest. ctx must be initialised again
 * before it is reused. */
void sha256_final(struct sha256_ctx *ctx,
                  unsigned char digest[SHA256_DIGEST_SIZE]);

/* Hash size bytes at data in one call. */
void sha256_digest(const void *data, size_t size,
                   unsigned char digest[SHA256_DIGEST_SIZE]);

/* Format digest as 64 lowercase hex digits followed by a NUL. */
void sha256_format_hex(const unsigned char digest[SHA256_DIGEST_SIZE],
                       char hex[SHA256_HEX_LENGTH + 1]);

#endif
