/* MPI for ptq quantize (tools/mpi.c): the calibration split across processes started by mpirun. */
#ifndef PTQ_TOOLS_PTQ_MPI_H
#define PTQ_TOOLS_PTQ_MPI_H

#include "ptq.h"

/* When this process was started by mpirun (Open MPI's or a PMI launcher's environment), start MPI and set
 * *dist to the split (NULL for a single process, or a launch with one process). Returns 0, or 1 after
 * printing why (e.g. launched with several processes by a ptq built without MPI). */
int cli_mpi_start(const ptq_dist **dist);
/* This process's rank (0 without MPI). */
int cli_mpi_rank(void);
/* End MPI: a failed process aborts the whole job (the others would wait in a collective forever). */
void cli_mpi_end(int rc);

#endif
