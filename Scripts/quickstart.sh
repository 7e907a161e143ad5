#!/usr/bin/env bash
# Sets everything up on a fresh machine and runs Graft's main job on the bundled
# default backbone. Today (see Docs/roadmap.md) the main job stops at describing
# a model file; adapting multilingual-e5-small to Chichewa lands with the
# `adapt mlm` / `adapt train` workflow.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Scripts/install-dependencies.sh
bash Scripts/fetch-models.sh
swift build -c release --product adapt
ADAPT=.build/release/adapt
$ADAPT --version
$ADAPT info Tests/GraftNNTests/Fixtures/tiny_bert.h5
