#!/usr/bin/env bash
# Set up a fresh Debian machine for ptq and run its main job on the sample models.
#   ./scripts/setup.sh     as root (a fresh Debian image has no sudo), or as a user who has sudo: the missing
#                          Debian packages are installed with apt-get, through sudo only when not root
# PTQ_DATA overrides where the sample data lives (default: ../shared/data beside this repository).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake libopenblas-openmp-dev liblapacke-dev libcjson-dev libstb-dev zlib1g-dev
          python3-numpy python3-pil clang libomp-dev libclang-rt-dev dataset-fashion-mnist
          libopenmpi-dev openmpi-bin)
# Node.js + npm install the test references (scripts/refs.sh); a machine that already has them (any build,
# e.g. NodeSource's) keeps its own
command -v npm > /dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo > /dev/null; then
      echo "setup: installing packages needs root, and sudo is not installed: run ./scripts/setup.sh as root" \
           "(for example: su -c ./scripts/setup.sh), or install these first: ${missing[*]}" >&2
      exit 1
    fi
    as_root=(sudo)
  fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

./scripts/refs.sh

echo "== building ptq (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)" --target ptq

data="${PTQ_DATA:-$(pwd)/../shared/data}"
if [ ! -d "$data" ]; then
  echo "setup: sample data not found at $data (set PTQ_DATA); ptq is built in build/ptq" >&2
  exit 0
fi
ptq=build/ptq
echo "== stories260K: perplexity on TinyStories (reference 3.4998)"
$ptq eval "$data/stories260K/stories260K.bin" --tokenizer "$data/stories260K/tok512.bin" \
  --text "$data/tinystories/tinystories-valid-100.txt" --docs-sep '<|endoftext|>'
echo "== stories260K: greedy generation"
$ptq generate "$data/stories260K/stories260K.bin" --tokenizer "$data/stories260K/tok512.bin" \
  --prompt "Once upon a time" --steps 64 --temperature 0
echo "== vit-mnist: top-1 on the 10,000 MNIST test images (reference 98.29%)"
$ptq eval "$data/vit-mnist" --images "$data/mnist/t10k-images-idx3-ubyte.gz" \
  --labels "$data/mnist/t10k-labels-idx1-ubyte.gz"
echo "== stories260K: 3-bit GPTQ + Bias Compensation, calibrated on stories 0-59, evaluated on 60-99"
$ptq quantize "$data/stories260K/stories260K.bin" --calib "$data/tinystories/tinystories-valid-100.txt" \
  --docs-sep '<|endoftext|>' --docs 0:60 --calib-ctx 256 --wbits 3 --group 32 --bc -o build/stories260K-w3g32-bc.ptq
$ptq eval build/stories260K-w3g32-bc.ptq \
  --text "$data/tinystories/tinystories-valid-100.txt" --docs-sep '<|endoftext|>' --docs 60: --ctx 256
