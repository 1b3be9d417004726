#!/usr/bin/env bash
# GPTQ with and without Bias Compensation, and GPTQ+BC on 1 and 2 MPI processes (stories260K, 32 windows
# of 512 tokens, W3 g32), with the load average after each run; the 2-process file is compared with the
# 1-process one (cmp). Usage: bench/mpi_bc_time.sh [BUILD_DIR]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
P=${1:-$here/build}/ptq
D=${PTQ_DATA:-$here/../shared/data}
out=$(mktemp -d /tmp/mpibc-XXXXXX)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
lm=(--calib "$D/tinystories/tinystories-valid-100.txt" --docs-sep '<|endoftext|>' --docs 0:60 --calib-n 32 --calib-ctx 512
    --wbits 3 --group 32 --method gptq)
t() { local s; s=$(date +%s.%N); "$@" > /dev/null 2>&1; local rc=$?
      echo "$(echo "$(date +%s.%N) - $s" | bc) s rc=$rc load=$(cut -d' ' -f1 /proc/loadavg)"; }
M="$D/stories260K/stories260K.bin"
echo -n "gptq 1 proc (2 threads):      "; OMP_NUM_THREADS=2 t "$P" quantize "$M" "${lm[@]}" -o "$out/m1.ptq" --json
echo -n "gptq+bc 1 proc (2 threads):   "; OMP_NUM_THREADS=2 t "$P" quantize "$M" "${lm[@]}" --bc -o "$out/m2.ptq" --json
echo -n "gptq+bc 1 proc (1 thread):    "; OMP_NUM_THREADS=1 t "$P" quantize "$M" "${lm[@]}" --bc -o "$out/m3.ptq" --json
echo -n "gptq+bc 2 procs x 1 thread:   "; OMP_NUM_THREADS=1 t mpirun -np 2 --oversubscribe --bind-to none "$P" quantize "$M" "${lm[@]}" --bc -o "$out/m4.ptq" --json
cmp "$out/m3.ptq" "$out/m4.ptq" && echo "  2-process file identical"
