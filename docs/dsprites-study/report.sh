#!/usr/bin/env bash
# The dSprites study's report, from whatever runs of the sweep are finished: run it again as more finish.
#
#   bash docs/dsprites-study/report.sh [SWEEP] [DOCS] [PRETRAINED]
#       SWEEP       the study's sweep file (default docs/dsprites-study/sweep.toml; /work/study/dsprites.toml is
#                   the same study with its runs outside the work tree)
#       DOCS        where the committed report goes (default docs/dsprites-study)
#       PRETRAINED  where the best run of each setting goes as a model folder (default pretrained)
#
# It writes:
#   DOCS/collect.md, collect.csv, collect-units.md, collect.png, collect-scatter.png
#       per setting (--by model): median, IQR and each seed of the scores; each run's KL per unit; the scatter of
#       reconstruction against the FactorVAE metric (the FactorVAE paper's figures 4 and 5), with the papers'
#       figures as stars
#   DOCS/runs/NAME/    each finished run's eval.json and pictures (traversals, reconstructions, samples)
#   DOCS/directions.md where posX, posY and scale lie in each finished run's code (directions.py beside this)
#   DOCS/rotation.md   whether a TC penalty could see the turn of each run's position plane (rotation.py beside
#                      this, on ROTATION_IMAGES sampled codes, default 20000: about 20 s a run)
#   DOCS/factorvae-votes.md  which factors' FactorVAE votes each run got right, and the share won by units under
#                      0.1 nats (pruning.py --screen, from eval.json); where that share is high, run pruning.py on
#                      that run by hand (11 minutes)
#   PRETRAINED/dsprites-<model>/   the best run of each setting by the FactorVAE metric (sweep export --force)
# Checkpoints stay where they are: only evaluations, pictures and the best models' weights are for git.
set -euo pipefail
SWEEP=${1:-docs/dsprites-study/sweep.toml}
DOCS=${2:-docs/dsprites-study}
PRETRAINED=${3:-pretrained}
PY=${PYTHON:-python}

out=$($PY -c "import sys; from jointvae.sweeps.sweep_file import load_sweep; print(load_sweep(sys.argv[1]).out)" "$SWEEP")
finished=$($PY - "$SWEEP" <<'PYTHON'
import sys
from jointvae.sweeps.runs import state
from jointvae.sweeps.sweep_file import load_sweep
sweep = load_sweep(sys.argv[1])
print("\n".join(p["name"] for p in sweep.points if state(sweep, p)["state"] == "evaluated"))
PYTHON
)
if [ -z "$finished" ]; then
    echo "no run of $SWEEP is finished and evaluated yet: nothing to report"
    exit 0
fi
echo "finished runs: $(wc -l <<< "$finished")"

# The stars: the published dSprites JointVAE as scored here (docs/results.md), and the best mean FactorVAE metric of
# each model in the FactorVAE paper, about 0.82 and 0.73 at a reconstruction error of about 45 (its own images).
$PY -m jointvae.sweep collect "$SWEEP" --by model \
    --fields factorvae betavae mig recon_loss discrete_accuracy kl_cont kl_disc --scatter recon_loss factorvae \
    --reference "published JointVAE (scored here)" 33.94 0.857 \
    --reference "FactorVAE paper: FactorVAE, best mean (about)" 45 0.82 \
    --reference "FactorVAE paper: β-VAE, best mean (about)" 45 0.73
mkdir -p "$DOCS/runs"
for f in collect.md collect.csv collect-units.md collect.png collect-scatter.png; do
    if [ -f "$out/$f" ]; then cp "$out/$f" "$DOCS/$f"; fi
done

# A finished run whose weights were lost with its machine (runs/dsprites-study/README.md) keeps its scores in the
# table and factorvae-votes.md (both from eval.json); its pictures stay as last drawn, and directions.md and
# rotation.md, which need the weights, leave it out.
names=()
while IFS= read -r name; do
    if [ ! -f "$out/$name/weights.npz" ]; then
        echo "$name: no weights.npz (lost with its machine): its scores are in the table, not in directions.md or rotation.md"
        continue
    fi
    names+=("$name")
    $PY -m jointvae.visualize "$out/$name" --out "$DOCS/runs/$name" > /dev/null
    cp "$out/$name/eval.json" "$DOCS/runs/$name/eval.json"
    echo "$DOCS/runs/$name: eval.json and pictures"
done <<< "$finished"

script="$(cd "$(dirname "$0")" && pwd)/directions.py"
directions=$(cd "$out" && $PY "$script" "${names[@]}")      # from inside OUT: the rows name the runs alone
printf '%s\n' "$directions" > "$DOCS/directions.md"
echo "$DOCS/directions.md: where position and scale lie in each run's code"
rotation=$(cd "$out" && $PY "$(dirname "$script")/rotation.py" "${names[@]}" --images "${ROTATION_IMAGES:-20000}")
printf '%s\n' "$rotation" > "$DOCS/rotation.md"
echo "$DOCS/rotation.md: the dependence of each run's position plane, turned"
finished_names=()
while IFS= read -r name; do finished_names+=("$name"); done <<< "$finished"
votes=$(cd "$out" && $PY "$(dirname "$script")/pruning.py" --screen "${finished_names[@]}")
printf '%s\n' "$votes" > "$DOCS/factorvae-votes.md"
echo "$DOCS/factorvae-votes.md: the FactorVAE metric's votes by factor, and those quiet units won, from each eval.json"

$PY -m jointvae.sweep export "$SWEEP" --best factorvae --by model --to "$PRETRAINED" --prefix dsprites --force
