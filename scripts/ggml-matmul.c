// ggml's own CPU product of one weight tensor of a GGUF file with f32 activations, the reference
// that tests/quant_llamacpp.rs compares chord's kernels with bit for bit.
//
// Usage: ggml-matmul MODEL TENSOR X_F32 M THREADS REPACK OUT_F32
//   X_F32:  M rows of k little-endian f32 (k = the tensor's row length)
//   REPACK: 1 puts the weight in the CPU_REPACK buffer where the CPU device accepts the product
//           with it there (llama.cpp's choice for mat-mul weights), 0 in a plain CPU buffer
//   OUT_F32: M rows of n f32, y[i][j] = x[i] . W[j]
// Build: cc -O2 -I$LLAMA_CPP_DIR/ggml/include scripts/ggml-matmul.c -L$LLAMA_CPP_PINNED_BIN
//        -lggml -lggml-base -lggml-cpu -Wl,-rpath,$LLAMA_CPP_PINNED_BIN -o ggml-matmul
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *read_file(const char *path, size_t off, size_t len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    void *buf = malloc(len);
    if (fseek(f, (long)off, SEEK_SET) != 0 || fread(buf, 1, len, f) != len) {
        fprintf(stderr, "%s: short read\n", path);
        exit(1);
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s MODEL TENSOR X_F32 M THREADS REPACK OUT_F32\n", argv[0]);
        return 2;
    }
    const char *model = argv[1], *name = argv[2], *xpath = argv[3], *opath = argv[7];
    const int64_t m = atoll(argv[4]);
    const int threads = atoi(argv[5]);
    const int repack = atoi(argv[6]);

    struct ggml_context *meta = NULL;
    struct gguf_init_params gp = {.no_alloc = true, .ctx = &meta};
    struct gguf_context *g = gguf_init_from_file(model, gp);
    if (!g) {
        fprintf(stderr, "cannot read %s\n", model);
        return 1;
    }
    int64_t ti = gguf_find_tensor(g, name);
    if (ti < 0) {
        fprintf(stderr, "no tensor %s\n", name);
        return 1;
    }
    struct ggml_tensor *wm = ggml_get_tensor(meta, name);
    const int64_t k = wm->ne[0], n = wm->ne[1];
    const size_t wbytes = ggml_nbytes(wm);
    void *wdata = read_file(model, gguf_get_data_offset(g) + gguf_get_tensor_offset(g, ti), wbytes);
    void *xdata = read_file(xpath, 0, (size_t)(m * k) * sizeof(float));

    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(be, threads);
    ggml_backend_buffer_type_t wbuft = ggml_backend_cpu_buffer_type();
    if (repack) {
        ggml_backend_dev_t dev = ggml_backend_get_device(be);
        ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
        ggml_backend_dev_get_extra_bufts_t get =
            (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(
                reg, "ggml_backend_dev_get_extra_bufts");
        wbuft = NULL;
        for (ggml_backend_buffer_type_t *b = get ? get(dev) : NULL; b && *b; b++) {
            if (strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") == 0) wbuft = *b;
        }
        if (!wbuft) {
            fprintf(stderr, "no CPU_REPACK buffer type\n");
            return 1;
        }
    }

    struct ggml_init_params ip = {ggml_tensor_overhead() * 8 + ggml_graph_overhead(), NULL, true};
    struct ggml_context *wctx = ggml_init(ip);
    struct ggml_tensor *w = ggml_new_tensor_2d(wctx, wm->type, k, n);
    if (repack) {
        // llama.cpp's weight_buft_supported: would the device run the product with w in wbuft?
        struct ggml_context *probe = ggml_init(ip);
        struct ggml_tensor *px = ggml_new_tensor_2d(probe, GGML_TYPE_F32, k, m);
        struct ggml_tensor *py = ggml_mul_mat(probe, w, px);
        ggml_backend_buffer_t dummy = ggml_backend_buft_alloc_buffer(wbuft, 0);
        w->buffer = dummy;
        if (!ggml_backend_dev_supports_op(ggml_backend_get_device(be), py)) {
            wbuft = ggml_backend_cpu_buffer_type();
        }
        w->buffer = NULL;
        ggml_backend_buffer_free(dummy);
        ggml_free(probe);
    }
    ggml_backend_buffer_t wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, wbuft);
    ggml_backend_tensor_set(w, wdata, 0, wbytes);

    struct ggml_context *ctx = ggml_init(ip);
    struct ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, k, m);
    struct ggml_tensor *y = ggml_mul_mat(ctx, w, x);
    struct ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, be);
    ggml_backend_tensor_set(x, xdata, 0, ggml_nbytes(x));
    if (ggml_backend_graph_compute(be, gf) != GGML_STATUS_SUCCESS) {
        fprintf(stderr, "compute failed\n");
        return 1;
    }
    float *out = malloc(ggml_nbytes(y));
    ggml_backend_tensor_get(y, out, 0, ggml_nbytes(y));
    FILE *f = fopen(opath, "wb");
    if (!f || fwrite(out, 1, ggml_nbytes(y), f) != ggml_nbytes(y) || fclose(f) != 0) {
        perror(opath);
        return 1;
    }
    printf("%s %s k=%lld n=%lld m=%lld repack=%s\n", name, ggml_type_name(w->type), (long long)k,
           (long long)n, (long long)m, ggml_backend_buft_name(wbuft));
    ggml_backend_buffer_free(buf);
    ggml_backend_buffer_free(wbuf);
    ggml_free(ctx);
    ggml_free(wctx);
    ggml_backend_free(be);
    gguf_free(g);
    ggml_free(meta);
    free(out);
    free(xdata);
    free(wdata);
    return 0;
}
