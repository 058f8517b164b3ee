/* The quantize job in steps, for drivers that make some tensors' values
 * themselves (GPTQ, block by block): begin declares every tensor of src
 * as the options plan it and opens the output; a tensor may then be
 * written at any time from another source holding its values (and chosen
 * scales, as NAME#scale tables); finish writes every tensor not yet
 * written from src, and commits. The file's tensor table is src's order
 * whatever order the tensors were written in. */
#ifndef ZQ_QUANT_JOB_H
#define ZQ_QUANT_JOB_H

#include "zquant/quantize.h"

typedef struct zq_quantize_job zq_quantize_job;

zq_status zq_quantize_job_begin(const zq_quantize_opts *o, zq_source *src, zq_quantize_job **out, zq_error *err);
/* Tensor ti of src, its values (and chosen scales) read from tensor si of
 * `from`; each tensor once. */
zq_status zq_quantize_job_tensor(zq_quantize_job *j, size_t ti, zq_source *from, size_t si, zq_error *err);
/* Frees the job, committing the output on success. */
zq_status zq_quantize_job_finish(zq_quantize_job *j, zq_quantize_report *rep, zq_error *err);
/* Leaves no output (accepts NULL). */
void zq_quantize_job_abort(zq_quantize_job *j);

#endif
