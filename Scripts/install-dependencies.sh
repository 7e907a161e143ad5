#!/usr/bin/env bash
# Installs the system packages Graft builds and tests with (Debian / Ubuntu),
# including dataset-fashion-mnist, which the fashion-mnist recipe and its test read, and openmpi-bin
# (mpirun and Open MPI, loaded at run time by data-parallel training and its tests).
# Skips apt entirely when everything is already present.
set -euo pipefail
packages=(libopenblas-dev libhdf5-dev hdf5-tools pkg-config dataset-fashion-mnist openmpi-bin)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
