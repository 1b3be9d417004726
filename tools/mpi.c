/* MPI glue (ptq_mpi.h): the library only sees the two collectives of ptq_dist, so it stays MPI-free.
 * Without PTQ_HAVE_MPI (CMake option PTQ_MPI, or no MPI found) this is a stub that refuses a launch with
 * several processes. */
#include "ptq_mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Launched by mpirun: Open MPI sets OMPI_COMM_WORLD_SIZE, Hydra PMI_SIZE, PMIx launchers PMIX_RANK. */
static int launched(void) { return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK"); }

#ifdef PTQ_HAVE_MPI
#include <limits.h>
#include <mpi.h>

static int started, world_rank;
static ptq_dist the_dist;

/* In slices of at most 2^27 values: MPI counts are ints. */
static int mpi_sum(void *user, double *buf, size_t n) {
    (void)user;
    for (size_t i = 0; i < n; i += (size_t)1 << 27) {
        size_t k = n - i < ((size_t)1 << 27) ? n - i : ((size_t)1 << 27);
        if (MPI_Allreduce(MPI_IN_PLACE, buf + i, (int)k, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    }
    return 0;
}

static int mpi_gather(void *user, const void *mine, size_t n, void *all, size_t cap, size_t *total) {
    const ptq_dist *d = user;
    unsigned long long my = n, *sizes = malloc((size_t)d->size * sizeof *sizes);
    int *counts = malloc((size_t)d->size * sizeof *counts), *displs = malloc((size_t)d->size * sizeof *displs);
    void *copy = malloc(n ? n : 1); /* `mine` may lie inside `all` */
    int rc = sizes && counts && displs && copy ? 0 : -1;
    if (!rc && MPI_Allgather(&my, 1, MPI_UNSIGNED_LONG_LONG, sizes, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD) != MPI_SUCCESS)
        rc = -1;
    unsigned long long sum = 0;
    for (int r = 0; !rc && r < d->size; r++) {
        if (sizes[r] > INT_MAX || sum + sizes[r] > INT_MAX) rc = -1;
        counts[r] = (int)sizes[r];
        displs[r] = (int)sum;
        sum += sizes[r];
    }
    if (!rc && sum > cap) rc = -1;
    if (!rc) {
        memcpy(copy, mine, n);
        if (MPI_Allgatherv(copy, (int)n, MPI_BYTE, all, counts, displs, MPI_BYTE, MPI_COMM_WORLD) != MPI_SUCCESS) rc = -1;
    }
    if (!rc) *total = (size_t)sum;
    free(sizes), free(counts), free(displs), free(copy);
    return rc;
}

int cli_mpi_start(const ptq_dist **dist) {
    *dist = NULL;
    if (!launched()) return 0;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        fprintf(stderr, "ptq: error: MPI_Init failed\n");
        return 1;
    }
    started = 1;
    int size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size <= 1) return 0;
    the_dist.rank = world_rank;
    the_dist.size = size;
    the_dist.user = &the_dist;
    the_dist.sum = mpi_sum;
    the_dist.gather = mpi_gather;
    *dist = &the_dist;
    return 0;
}

int cli_mpi_rank(void) { return world_rank; }

void cli_mpi_end(int rc) {
    if (!started) return;
    if (rc != 0) MPI_Abort(MPI_COMM_WORLD, rc);
    MPI_Finalize();
    started = 0;
}

#else

static int launched_size(void) {
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v) v = getenv("PMI_SIZE");
    return v ? atoi(v) : 1;
}

int cli_mpi_start(const ptq_dist **dist) {
    *dist = NULL;
    if (launched() && launched_size() > 1) {
        fprintf(stderr, "ptq: error: started by mpirun with %d processes, but this ptq was built without MPI "
                        "(configure with -DPTQ_MPI=ON and Open MPI installed)\n", launched_size());
        return 1;
    }
    return 0;
}

int cli_mpi_rank(void) { return 0; }

void cli_mpi_end(int rc) { (void)rc; }

#endif
