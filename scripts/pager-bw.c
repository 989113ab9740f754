/*
 * pager-bw: the two bandwidths that bound paged decoding (scripts/bench-pager.sh).
 *
 *   pager-bw io FILE CHUNK [PASSES]   positioned reads (pread) of the whole FILE in CHUNK-byte reads
 *                                     into one buffer, as chord's pager reads a unit into a slot; one
 *                                     thread; prints the median pass in bytes/s ("io_bps N").
 *   pager-bw cold FILE CHUNK          drops FILE from the page cache (posix_fadvise DONTNEED; works
 *                                     without root), reads it once and prints "cold_bps N" plus the
 *                                     share of its pages that were still cached before the read.
 *   pager-bw mem THREADS MIB [PASSES] each thread sums its own MIB MiB buffer (far larger than the
 *                                     caches); prints the median pass of all threads in bytes/s
 *                                     ("mem_bps N").
 *   pager-bw map FILE CHUNK [PASSES]  the alternative to pread that avoids the copy: maps FILE and
 *                                     makes each CHUNK resident with MADV_POPULATE_READ, then drops it
 *                                     with MADV_DONTNEED; prints "map_bps N" (the median pass).
 *   pager-bw contend pread|map|none FILE CHUNK SECONDS [RATE]
 *                                     2 threads sum resident 64 MiB buffers (the compute) while a third
 *                                     loads CHUNKs of FILE in a loop the given way, at most RATE bytes/s
 *                                     (as a decoding pager needs W - R bytes per token); prints the compute's
 *                                     bytes/s ("compute_bps N") and the loader's ("load_bps N"): what
 *                                     the loader costs the compute on a machine with few cores.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Reads the whole file once in `chunk`-byte preads into `buf`; returns the seconds taken. */
static double read_pass(int fd, off_t size, char *buf, size_t chunk) {
    double t0 = now_s();
    for (off_t off = 0; off < size;) {
        size_t want = (size_t)(size - off) < chunk ? (size_t)(size - off) : chunk;
        size_t done = 0;
        while (done < want) {
            ssize_t r = pread(fd, buf + done, want - done, off + (off_t)done);
            if (r <= 0) fail("pread");
            done += (size_t)r;
        }
        off += (off_t)want;
    }
    return now_s() - t0;
}

/* Share of the file's pages in the page cache (mincore over a mapping that is never touched). */
static double cached_share(int fd, off_t size) {
    void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) fail("mmap");
    long page = sysconf(_SC_PAGESIZE);
    size_t n = ((size_t)size + (size_t)page - 1) / (size_t)page, in = 0;
    unsigned char *vec = malloc(n);
    if (!vec || mincore(m, (size_t)size, vec) != 0) fail("mincore");
    for (size_t i = 0; i < n; i++) in += vec[i] & 1;
    free(vec);
    munmap(m, (size_t)size);
    return (double)in / (double)n;
}

/* Makes [off, off + len) of the mapping resident, then drops it; 0 on success. */
static int map_chunk(char *m, off_t off, size_t len) {
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
    long page = sysconf(_SC_PAGESIZE);
    off_t a = off / page * page;
    size_t l = len + (size_t)(off - a);
    if (madvise(m + a, l, MADV_POPULATE_READ) != 0) return -1;
    if (madvise(m + a, l, MADV_DONTNEED) != 0) return -1;
    return 0;
}

/* One pass over the file, loading `chunk`-byte pieces through the mapping; returns seconds. */
static double map_pass(char *m, off_t size, size_t chunk) {
    double t0 = now_s();
    for (off_t off = 0; off < size; off += (off_t)chunk) {
        size_t want = (size_t)(size - off) < chunk ? (size_t)(size - off) : chunk;
        if (map_chunk(m, off, want) != 0) fail("madvise");
    }
    return now_s() - t0;
}

static int cmd_map(const char *path, size_t chunk, int passes) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) fail(path);
    struct stat sb;
    if (fstat(fd, &sb) != 0) fail("fstat");
    char *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) fail("mmap");
    map_pass(m, sb.st_size, chunk);
    double *bps = malloc((size_t)passes * sizeof *bps);
    if (!bps) fail("malloc");
    for (int i = 0; i < passes; i++) bps[i] = (double)sb.st_size / map_pass(m, sb.st_size, chunk);
    qsort(bps, (size_t)passes, sizeof *bps, cmp_double);
    printf("map_bps %.0f\n", bps[passes / 2]);
    free(bps);
    munmap(m, (size_t)sb.st_size);
    close(fd);
    return 0;
}

typedef struct {
    volatile int stop;
    int mode; /* 0 none, 1 pread, 2 map */
    int fd;
    char *map;
    off_t size;
    size_t chunk;
    double bytes, rate;
} loader_job;

static void *loader_thread(void *p) {
    loader_job *j = p;
    char *buf = j->mode == 1 ? malloc(j->chunk) : NULL;
    if (j->mode == 1 && !buf) fail("malloc");
    if (buf) memset(buf, 1, j->chunk);
    double t0 = now_s();
    while (!j->stop && j->mode) {
        for (off_t off = 0; off < j->size && !j->stop; off += (off_t)j->chunk) {
            size_t want = (size_t)(j->size - off) < j->chunk ? (size_t)(j->size - off) : j->chunk;
            if (j->mode == 1) {
                if (pread(j->fd, buf, want, off) != (ssize_t)want) fail("pread");
            } else if (map_chunk(j->map, off, want) != 0) {
                fail("madvise");
            }
            j->bytes += (double)want;
            double ahead = j->rate > 0 ? j->bytes / j->rate - (now_s() - t0) : 0;
            if (ahead > 0) {
                struct timespec ts = {(time_t)ahead, (long)((ahead - (double)(time_t)ahead) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
    }
    free(buf);
    return NULL;
}

typedef struct {
    volatile int *stop;
    const uint64_t *buf;
    size_t n;
    double bytes;
    uint64_t sum;
} compute_job;

static void *compute_thread(void *p) {
    compute_job *j = p;
    uint64_t s = 0;
    while (!*j->stop) {
        for (size_t i = 0; i < j->n; i++) s += j->buf[i];
        j->bytes += (double)(j->n * sizeof(uint64_t));
    }
    j->sum = s;
    return NULL;
}

static int cmd_contend(const char *mode, const char *path, size_t chunk, double seconds, double rate) {
    loader_job lj = {0};
    lj.rate = rate;
    lj.mode = !strcmp(mode, "pread") ? 1 : !strcmp(mode, "map") ? 2 : 0;
    lj.chunk = chunk;
    lj.fd = open(path, O_RDONLY);
    if (lj.fd < 0) fail(path);
    struct stat sb;
    if (fstat(lj.fd, &sb) != 0) fail("fstat");
    lj.size = sb.st_size;
    lj.map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, lj.fd, 0);
    if (lj.map == MAP_FAILED) fail("mmap");
    compute_job cj[2];
    pthread_t ct[2], lt;
    size_t n = (64u << 20) / sizeof(uint64_t);
    for (int t = 0; t < 2; t++) {
        uint64_t *b = malloc(n * sizeof *b);
        if (!b) fail("malloc");
        for (size_t i = 0; i < n; i++) b[i] = i;
        cj[t] = (compute_job){&lj.stop, b, n, 0, 0};
    }
    double t0 = now_s();
    for (int t = 0; t < 2; t++) pthread_create(&ct[t], NULL, compute_thread, &cj[t]);
    pthread_create(&lt, NULL, loader_thread, &lj);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    lj.stop = 1;
    for (int t = 0; t < 2; t++) pthread_join(ct[t], NULL);
    pthread_join(lt, NULL);
    double dt = now_s() - t0;
    printf("compute_bps %.0f\nload_bps %.0f\nchecksum %llu\n", (cj[0].bytes + cj[1].bytes) / dt, lj.bytes / dt,
           (unsigned long long)(cj[0].sum + cj[1].sum));
    for (int t = 0; t < 2; t++) free((void *)cj[t].buf);
    munmap(lj.map, (size_t)sb.st_size);
    close(lj.fd);
    return 0;
}

static int cmd_io(const char *path, size_t chunk, int passes, int cold) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) fail(path);
    struct stat sb;
    if (fstat(fd, &sb) != 0) fail("fstat");
    char *buf = malloc(chunk);
    if (!buf) fail("malloc");
    memset(buf, 1, chunk);
    if (cold) {
        if (posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) fail("posix_fadvise");
        double share = cached_share(fd, sb.st_size);
        double t = read_pass(fd, sb.st_size, buf, chunk);
        printf("cold_bps %.0f\ncached_before %.3f\n", (double)sb.st_size / t, share);
    } else {
        read_pass(fd, sb.st_size, buf, chunk); /* warm the page cache */
        double *bps = malloc((size_t)passes * sizeof *bps);
        if (!bps) fail("malloc");
        for (int i = 0; i < passes; i++) bps[i] = (double)sb.st_size / read_pass(fd, sb.st_size, buf, chunk);
        qsort(bps, (size_t)passes, sizeof *bps, cmp_double);
        printf("io_bps %.0f\n", bps[passes / 2]);
        free(bps);
    }
    free(buf);
    close(fd);
    return 0;
}

typedef struct {
    const uint64_t *buf;
    size_t n;
    uint64_t sum;
    pthread_barrier_t *start;
} mem_job;

static void *sum_thread(void *p) {
    mem_job *j = p;
    pthread_barrier_wait(j->start);
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 4 <= j->n; i += 4) {
        s0 += j->buf[i];
        s1 += j->buf[i + 1];
        s2 += j->buf[i + 2];
        s3 += j->buf[i + 3];
    }
    j->sum = s0 + s1 + s2 + s3;
    pthread_barrier_wait(j->start);
    return NULL;
}

static int cmd_mem(int threads, size_t mib, int passes) {
    size_t n = mib * 1048576 / sizeof(uint64_t);
    mem_job *jobs = calloc((size_t)threads, sizeof *jobs);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    double *bps = malloc((size_t)passes * sizeof *bps);
    if (!jobs || !tids || !bps) fail("malloc");
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads + 1);
    for (int t = 0; t < threads; t++) {
        uint64_t *b = malloc(n * sizeof *b);
        if (!b) fail("malloc");
        for (size_t i = 0; i < n; i++) b[i] = i ^ (uint64_t)t;
        jobs[t].buf = b;
        jobs[t].n = n;
        jobs[t].start = &bar;
    }
    uint64_t check = 0;
    for (int p = -1; p < passes; p++) {
        for (int t = 0; t < threads; t++)
            if (pthread_create(&tids[t], NULL, sum_thread, &jobs[t]) != 0) fail("pthread_create");
        pthread_barrier_wait(&bar);
        double t0 = now_s();
        pthread_barrier_wait(&bar);
        double t1 = now_s();
        for (int t = 0; t < threads; t++) {
            pthread_join(tids[t], NULL);
            check += jobs[t].sum;
        }
        if (p >= 0) bps[p] = (double)threads * (double)(n * sizeof(uint64_t)) / (t1 - t0);
    }
    qsort(bps, (size_t)passes, sizeof *bps, cmp_double);
    printf("mem_bps %.0f\nchecksum %llu\n", bps[passes / 2], (unsigned long long)check);
    for (int t = 0; t < threads; t++) free((void *)jobs[t].buf);
    free(jobs);
    free(tids);
    free(bps);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "io"))
        return cmd_io(argv[2], strtoull(argv[3], NULL, 10), argc > 4 ? atoi(argv[4]) : 5, 0);
    if (argc == 4 && !strcmp(argv[1], "cold")) return cmd_io(argv[2], strtoull(argv[3], NULL, 10), 1, 1);
    if (argc >= 4 && !strcmp(argv[1], "mem"))
        return cmd_mem(atoi(argv[2]), strtoull(argv[3], NULL, 10), argc > 4 ? atoi(argv[4]) : 5);
    if (argc >= 4 && !strcmp(argv[1], "map"))
        return cmd_map(argv[2], strtoull(argv[3], NULL, 10), argc > 4 ? atoi(argv[4]) : 5);
    if ((argc == 6 || argc == 7) && !strcmp(argv[1], "contend"))
        return cmd_contend(argv[2], argv[3], strtoull(argv[4], NULL, 10), atof(argv[5]), argc == 7 ? atof(argv[6]) : 0);
    fputs("usage: pager-bw io FILE CHUNK [PASSES] | cold FILE CHUNK | mem THREADS MIB [PASSES]\n"
          "     | map FILE CHUNK [PASSES] | contend pread|map|none FILE CHUNK SECONDS [RATE]\n", stderr);
    return 2;
}
