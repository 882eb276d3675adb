/*
 * rnnbench's declaration of warp-ctc's C API (Baidu Research's CTC library, and its forks by
 * SeanNaren and ESPnet, whose CPU build ships in the warpctc-pytorch wheels as lib/libwarpctc.so).
 *
 * This header is the project's own: it is written from warp-ctc's documented interface, not copied
 * from its sources. Theano's theano.tensor.nnet.ctc op includes "ctc.h" from <ctc.root>/include and
 * links <ctc.root>/lib/libwarpctc.so; benchmarks/frameworks/_theano.py builds that root outside the
 * repository, pointing include/ctc.h here and lib/libwarpctc.so at the installed library.
 *
 * The layout of ctcOptions must match the library's ABI exactly: the options are passed by value.
 */
#ifndef RNNBENCH_WARPCTC_CTC_H
#define RNNBENCH_WARPCTC_CTC_H

#ifdef __cplusplus
#include <cstddef>
extern "C" {
#else
#include <stddef.h>
#endif

/* An opaque CUDA stream handle (only used with CTC_GPU); declared so no CUDA header is needed. */
typedef struct CUstream_st *CUstream;

/* What every call returns. */
typedef enum {
    CTC_STATUS_SUCCESS = 0,
    CTC_STATUS_MEMOPS_FAILED = 1,
    CTC_STATUS_INVALID_VALUE = 2,
    CTC_STATUS_EXECUTION_FAILED = 3,
    CTC_STATUS_UNKNOWN_ERROR = 4
} ctcStatus_t;

/* Where the computation runs: activations, gradients and workspace live in that memory. */
typedef enum {
    CTC_CPU = 0,
    CTC_GPU = 1
} ctcComputeLocation;

/* Options of a computation. Zero the whole struct (memset in C, value-initialisation in C++)
 * before filling it in. The thread count (CPU) and the stream (GPU) share one union. */
struct ctcOptions {
    ctcComputeLocation loc;      /* CTC_CPU or CTC_GPU */
    union {
        unsigned int num_threads; /* CTC_CPU: most threads the library may use (0: its default) */
        CUstream stream;          /* CTC_GPU: the stream its kernels are launched on */
    };
    int blank_label;             /* index of the blank symbol in the alphabet (0 when zeroed) */
};
#ifndef __cplusplus
typedef struct ctcOptions ctcOptions;
#endif

/* The library's API version. */
int get_warpctc_version(void);

/* A static, human-readable description of a status code. */
const char *ctcGetStatusString(ctcStatus_t status);

/*
 * CTC loss of a minibatch and, when gradients is not NULL, its gradient.
 *   activations    (time, minibatch, alphabet_size) row-major, no padding between dimensions:
 *                  element (t, n, p) is activations[(t * minibatch + n) * alphabet_size + p].
 *                  These are unnormalised scores: the library applies the softmax itself, and the
 *                  gradient it writes is with respect to these scores.
 *   gradients      same shape and memory space as activations, or NULL for the loss alone.
 *   flat_labels    host memory: the labels of all samples, concatenated (no padding, no blanks).
 *   label_lengths  host memory: number of labels of each sample.
 *   input_lengths  host memory: number of time steps of each sample (frames after it are ignored).
 *   alphabet_size  symbols per time step, the blank included.
 *   minibatch      number of samples.
 *   costs          host memory: the negative log-likelihood of each sample (output).
 *   workspace      scratch memory of get_workspace_size() bytes, in the computation's memory space.
 *   options        see struct ctcOptions.
 */
ctcStatus_t compute_ctc_loss(const float *const activations,
                             float *gradients,
                             const int *const flat_labels,
                             const int *const label_lengths,
                             const int *const input_lengths,
                             int alphabet_size,
                             int minibatch,
                             float *costs,
                             void *workspace,
                             ctcOptions options);

/* Bytes of workspace compute_ctc_loss() needs for these lengths and sizes (written to *size_bytes). */
ctcStatus_t get_workspace_size(const int *const label_lengths,
                               const int *const input_lengths,
                               int alphabet_size,
                               int minibatch,
                               ctcOptions options,
                               size_t *size_bytes);

#ifdef __cplusplus
}
#endif

#endif /* RNNBENCH_WARPCTC_CTC_H */
