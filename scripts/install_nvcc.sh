#!/usr/bin/env bash
# Makes nvcc available for the CUDA backend build (-DFLASHLM_CUDA=ON) and prints its
# path on the last line. Idempotent: an nvcc on PATH or in /usr/local/cuda is used as it
# is; otherwise NVIDIA's CUDA 13.0 PyPI wheels are installed into a virtual environment
# under $FLASHLM_CUDA_PREFIX (default /opt/flashlm-cuda): nvidia-cuda-nvcc (nvcc,
# cudafe++, ptxas, fatbinary, nvlink), nvidia-nvvm (cicc, libdevice), nvidia-cuda-crt
# (nvcc's crt headers) and nvidia-cuda-runtime (cuda_runtime.h, libcudart_static.a).
# They unpack into one tree, nvidia/cu13/{bin,include,lib,nvvm}, laid out as nvcc
# expects. About 310 MiB and 10-25 s; no GPU or driver is needed to compile. (The cu12
# wheels ship ptxas but no nvcc driver; Debian's non-free nvidia-cuda-toolkit works
# too but pulls in gigabytes.)
# With --find: only prints the nvcc this script would use, or exits 1 when there is none.
set -euo pipefail
find_only=0
[ "${1:-}" = --find ] && find_only=1

if [ "${FLASHLM_NVCC_FROM_PYPI:-0}" != 1 ]; then
  if command -v nvcc >/dev/null 2>&1; then
    command -v nvcc
    exit 0
  fi
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    echo /usr/local/cuda/bin/nvcc
    exit 0
  fi
fi

prefix=${FLASHLM_CUDA_PREFIX:-/opt/flashlm-cuda}
nvcc=$prefix/toolkit/bin/nvcc
if [ -x "$nvcc" ] && "$nvcc" --version >/dev/null 2>&1; then
  echo "$nvcc"
  exit 0
fi

[ "$find_only" = 1 ] && exit 1

python=${PYTHON:-python3}
if ! "$python" -m venv "$prefix/venv"; then
  # Debian's python3 makes virtual environments only with python3-venv.
  apt-get install -y -q python3-venv
  "$python" -m venv "$prefix/venv"
fi
"$prefix/venv/bin/pip" install -q --disable-pip-version-check "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" \
  "nvidia-cuda-crt==13.0.*" "nvidia-cuda-runtime==13.0.*"
site=$("$prefix/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
tree=$site/nvidia/cu13
# CMake's FindCUDAToolkit looks for lib64/ and an unversioned libcudart.so beside nvcc.
[ -e "$tree/lib64" ] || ln -s lib "$tree/lib64"
[ -e "$tree/lib/libcudart.so" ] || ln -s libcudart.so.13 "$tree/lib/libcudart.so"
ln -sfn "$tree" "$prefix/toolkit"
"$nvcc" --version >&2
echo "$nvcc"
