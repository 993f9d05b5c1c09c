#!/usr/bin/env bash
# The optional peer of bench_engine.py: llama.cpp's server, quantiser and batched bench, built from source for this CPU
# (GGML_NATIVE). The source is the llama.cpp vendored in the llama-cpp-python sdist on PyPI (the one
# index this machine reaches), pinned by version and sha256. Outside CI and `make test`: about 5 minutes
# on 2 cores. Usage: bash benchmarks/build_llama_cpp.sh [DEST]   (default build/llama.cpp; `make llama-cpp`)
set -euo pipefail
VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
DEST=${1:-build/llama.cpp}
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p "$DEST"
SDIST="$DEST/llama_cpp_python-$VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
  "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$DEST"
fi
echo "$SHA256  $SDIST" | sha256sum --check --quiet
SRC="$DEST/llama_cpp_python-$VERSION/vendor/llama.cpp"
[ -d "$SRC" ] || tar -xzf "$SDIST" -C "$DEST"
cmake -S "$SRC" -B "$DEST/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF > "$DEST/cmake.log"
ninja -C "$DEST/cmake" llama-server llama-quantize llama-batched-bench
echo "llama.cpp (llama-cpp-python $VERSION's vendored copy) built into $DEST/cmake/bin"
