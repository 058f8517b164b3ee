/* MPI for zquant lkd, in a binary built with MPI=1 and started by a launcher
 * (mpirun, srun): each rank distils its share of the blocks into one work
 * directory, then rank 0 assembles. Elsewhere a single process, rank 0 of 1. */
#include <stdlib.h>

#include "cli.h"
#include "zquant/sum.h"

#if ZQ_MPI
#include <mpi.h>

/* Launchers say so in the environment; a plain start stays MPI-free. */
static int launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

void cli_mpi_start(cli_mpi *m)
{
    m->rank = 0, m->size = 1, m->active = 0;
    if (!launched()) return;
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &m->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &m->size);
    m->active = 1;
}

int cli_mpi_failed_rank(const cli_mpi *m, int rc)
{
    int mine = rc ? m->rank + 1 : 0, any = mine;
    if (m->active) MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return any - 1;
}

int cli_mpi_first_differing(const cli_mpi *m, uint32_t value)
{
    if (!m->active) return -1;
    unsigned *all = malloc((size_t)m->size * sizeof *all);
    if (!all) MPI_Abort(MPI_COMM_WORLD, ZQ_ERR_NOMEM);
    unsigned mine = value;
    MPI_Allgather(&mine, 1, MPI_UNSIGNED, all, 1, MPI_UNSIGNED, MPI_COMM_WORLD);
    int first = -1;
    for (int r = 1; r < m->size && first < 0; r++)
        if (all[r] != all[0]) first = r;
    free(all);
    return first;
}

void cli_mpi_end(cli_mpi *m)
{
    if (m->active) MPI_Finalize();
    m->active = 0;
}

/* Sums the same on every rank, in zquant's one order (zquant/sum.h): each
 * rank's values gathered, then added as a tree over the ranks
 * (MPI_Allreduce may add in any order). */
#define SUM_IN_ORDER(name, type, mpi_type, sum_parts)                                          \
    void name(void *ctx, type *buf, size_t n)                                                  \
    {                                                                                          \
        const cli_mpi *m = ctx;                                                                \
        enum { CHUNK = 1 << 20 };                                                              \
        type *all = malloc((size_t)m->size * CHUNK * sizeof *all);                             \
        if (!all) MPI_Abort(MPI_COMM_WORLD, ZQ_ERR_NOMEM);                                     \
        for (size_t at = 0; at < n; at += CHUNK) {                                             \
            int k = (int)(n - at < CHUNK ? n - at : CHUNK);                                    \
            MPI_Allgather(buf + at, k, mpi_type, all, k, mpi_type, MPI_COMM_WORLD);            \
            if (!sum_parts(all, m->size, (size_t)k, buf + at)) MPI_Abort(MPI_COMM_WORLD, ZQ_ERR_NOMEM); \
        }                                                                                      \
        free(all);                                                                             \
    }
SUM_IN_ORDER(cli_mpi_sum_f32, float, MPI_FLOAT, zq_sum_parts_f32)
SUM_IN_ORDER(cli_mpi_sum_f64, double, MPI_DOUBLE, zq_sum_parts_f64)

void cli_mpi_max_f32(void *ctx, float *buf, size_t n)
{
    (void)ctx; /* a maximum does not depend on the order */
    MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD);
}
#else
void cli_mpi_start(cli_mpi *m) { m->rank = 0, m->size = 1, m->active = 0; }
int cli_mpi_failed_rank(const cli_mpi *m, int rc) { return rc ? m->rank : -1; }
int cli_mpi_first_differing(const cli_mpi *m, uint32_t value) { (void)m, (void)value; return -1; }
void cli_mpi_end(cli_mpi *m) { (void)m; }
void cli_mpi_sum_f32(void *ctx, float *buf, size_t n) { (void)ctx, (void)buf, (void)n; }
void cli_mpi_sum_f64(void *ctx, double *buf, size_t n) { (void)ctx, (void)buf, (void)n; }
void cli_mpi_max_f32(void *ctx, float *buf, size_t n) { (void)ctx, (void)buf, (void)n; }
#endif
