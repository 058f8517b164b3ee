/* The recipe a .zq records, and the model folder's files it carries. */
#ifndef ZQ_QUANT_RECIPE_H
#define ZQ_QUANT_RECIPE_H

#include "zquant/quantize.h"
#include "zquant/zq.h"

/* The recipe as JSON text (malloc'd): preset, specs, activation scheme,
 * rules, the method (o->recipe_method, else round to nearest) and, input
 * given, the source files by name, size and CRC-32C. */
char *zq_recipe_json(const zq_quantize_opts *o, const zq_preset *preset, zq_act_mode act, const char *input);
/* Attaches each of zq_model_files found in input's folder (input itself
 * when it is one) to w. */
zq_status zq_attach_model_files(zq_writer *w, const char *input, zq_error *err);

#endif
