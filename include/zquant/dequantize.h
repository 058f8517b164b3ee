/* A .zq file back to a plain safetensors checkpoint: same tensor names,
 * shapes and layout as the input, so any other tool can measure what
 * quantization did. */
#ifndef ZQUANT_DEQUANTIZE_H
#define ZQUANT_DEQUANTIZE_H

#include "zquant/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* dtype_f16: write F16 instead of F32. */
zq_status zq_dequantize_file(const char *zq_path, const char *out_path, int dtype_f16, int force, zq_error *err);

#ifdef __cplusplus
}
#endif
#endif
