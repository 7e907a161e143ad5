#!/usr/bin/env bash
# Installs what the tests need, then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-dependencies.sh
bash Scripts/fetch-models.sh
# Every public declaration carries a doc comment (DocC).
python3 Scripts/check-doc-comments.py
# Tests run in parallel; one OpenBLAS thread each keeps them from oversubscribing.
export OPENBLAS_NUM_THREADS=1
swift test --parallel
# The benchmark suite must keep working (quick mode: checks it runs, not its speed).
python3 Benchmarks/suite/run.py --quick
