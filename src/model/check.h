/* A model's config against its tensors (zq_arch_check_tensors), for each
 * kind of file a model comes in. */
#ifndef ZQ_CHECK_H
#define ZQ_CHECK_H

#include "zquant/arch.h"
#include "zquant/source.h"
#include "zquant/zq.h"

zq_status zq_check_source(const zq_arch *a, const zq_source *src, int complete, zq_error *err);
zq_status zq_check_zq(const zq_arch *a, const zq_file *f, int complete, zq_error *err);

#endif
