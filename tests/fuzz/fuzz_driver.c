/*
 * Runs a libFuzzer target without libFuzzer, so `make check` exercises every
 * harness: each seed file given on the command line, then FUZZ_RUNS (default
 * 20000) mutations of them (bit flips, truncations, splices, random bytes)
 * from a fixed seed. With clang, build the same harness with -fsanitize=fuzzer
 * instead and drop this file to fuzz for real.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t state = 0x853c49e6748fea9bull;
static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    uint8_t *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 65536;
            buf = realloc(buf, cap);
        }
        size_t n = fread(buf + *len, 1, cap - *len, f);
        if (n == 0)
            break;
        *len += n;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    const char *r = getenv("FUZZ_RUNS");
    long runs = r ? atol(r) : 20000;
    uint8_t *seeds[16];
    size_t lens[16], n_seeds = 0;
    for (int i = 1; i < argc && n_seeds < 16; i++) {
        seeds[n_seeds] = read_all(argv[i], &lens[n_seeds]);
        if (seeds[n_seeds] == NULL) {
            fprintf(stderr, "fuzz: cannot read %s\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput(seeds[n_seeds], lens[n_seeds]);
        n_seeds++;
    }
    uint8_t *buf = malloc(1 << 20);
    for (long run = 0; run < runs; run++) {
        size_t len;
        if (n_seeds == 0 || next() % 8 == 0) {
            len = next() % 512;
            for (size_t i = 0; i < len; i++)
                buf[i] = (uint8_t)next();
        } else {
            size_t s = next() % n_seeds;
            len = lens[s] < (1 << 20) ? lens[s] : (1 << 20);
            memcpy(buf, seeds[s], len);
            int edits = 1 + (int)(next() % 8);
            for (int e = 0; e < edits && len > 0; e++) {
                switch (next() % 4) {
                case 0: /* flip bits */
                    buf[next() % len] ^= (uint8_t)(1u << (next() % 8));
                    break;
                case 1: /* truncate */
                    len = next() % len;
                    break;
                case 2: /* random byte */
                    buf[next() % len] = (uint8_t)next();
                    break;
                default: { /* copy a run over another place */
                    size_t a = next() % len, b = next() % len, n = next() % 64;
                    if (a + n <= len && b + n <= len)
                        memmove(buf + b, buf + a, n);
                }
                }
            }
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("fuzz: %ld inputs, %zu seeds, no crash\n", runs + (long)n_seeds, n_seeds);
    free(buf);
    for (size_t i = 0; i < n_seeds; i++)
        free(seeds[i]);
    return 0;
}
