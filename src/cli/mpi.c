/* MPI for zquant lkd, in a binary built with MPI=1 and started by a launcher
 * (mpirun, srun): each rank distils its share of the blocks into one work
 * directory, then rank 0 assembles. Elsewhere a single process, rank 0 of 1. */
#include <stdlib.h>

#include "cli.h"

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

void cli_mpi_end(cli_mpi *m)
{
    if (m->active) MPI_Finalize();
    m->active = 0;
}
#else
void cli_mpi_start(cli_mpi *m) { m->rank = 0, m->size = 1, m->active = 0; }
int cli_mpi_failed_rank(const cli_mpi *m, int rc) { return rc ? m->rank : -1; }
void cli_mpi_end(cli_mpi *m) { (void)m; }
#endif
