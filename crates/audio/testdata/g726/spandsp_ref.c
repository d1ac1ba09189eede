/* G.726 reference vectors from spandsp, whose G.726 passes the ITU-T test sequences.
 *
 * Usage: spandsp_ref input.raw   (8 kHz mono s16le)
 * Writes, for 16, 24, 32 and 40 kbit/s:
 *   spandsp-NN-le.g726      input encoded, RFC 3551 packing (G726_PACKING_RIGHT)
 *   spandsp-NN.decoded.raw  that file decoded by a fresh decoder, s16le
 * and checks that the AAL2 packing (G726_PACKING_LEFT) decodes to the same samples.
 * Linear I/O in spandsp: the encoder takes sample >> 2, the decoder returns sr << 2.
 *
 * Build: gcc -O2 -o spandsp_ref spandsp_ref.c -lspandsp   (Debian: libspandsp-dev) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <spandsp.h>

static long slurp(const char *path, uint8_t **buf)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(1); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *buf = malloc(n);
    if (fread(*buf, 1, n, f) != (size_t) n) { perror(path); exit(1); }
    fclose(f);
    return n;
}

static void spill(const char *path, const void *buf, long n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != (size_t) n) { perror(path); exit(1); }
    fclose(f);
}

/* Encodes pcm with a fresh encoder, decodes the result with a fresh decoder. */
static int round_trip(int kbps, int packing, const int16_t *pcm, int samples,
                      uint8_t *code, int16_t *out, int *decoded)
{
    g726_state_t *enc = g726_init(NULL, kbps * 1000, G726_ENCODING_LINEAR, packing);
    int bytes = g726_encode(enc, code, pcm, samples);
    g726_free(enc);
    g726_state_t *dec = g726_init(NULL, kbps * 1000, G726_ENCODING_LINEAR, packing);
    *decoded = g726_decode(dec, out, code, bytes);
    g726_free(dec);
    return bytes;
}

int main(int argc, char **argv)
{
    uint8_t *raw;
    long size = slurp(argc > 1 ? argv[1] : "input.raw", &raw);
    int samples = size / 2;
    int16_t *pcm = (int16_t *) raw; /* little-endian host */
    uint8_t *code = malloc(samples);
    uint8_t *code_be = malloc(samples);
    int16_t *out = malloc(samples * 2 + 64);
    int16_t *out_be = malloc(samples * 2 + 64);
    static const int rates[] = {16, 24, 32, 40};
    char path[64];

    for (int r = 0; r < 4; r++) {
        int n, n_be;
        int bytes = round_trip(rates[r], G726_PACKING_RIGHT, pcm, samples, code, out, &n);
        round_trip(rates[r], G726_PACKING_LEFT, pcm, samples, code_be, out_be, &n_be);
        if (n != samples || n_be != n || memcmp(out, out_be, n * 2) != 0) {
            fprintf(stderr, "%d kbit/s: packings disagree\n", rates[r]);
            return 1;
        }
        snprintf(path, sizeof path, "spandsp-%d-le.g726", rates[r]);
        spill(path, code, bytes);
        snprintf(path, sizeof path, "spandsp-%d.decoded.raw", rates[r]);
        spill(path, out, n * 2);
    }
    return 0;
}
