#!/usr/bin/env bash
# The main job end to end on the embedded default: a scratch project in .demo/, a few
# runs of examples/train.py queued, one worker draining the queue, the results listed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
demo="$repo/.demo"
rm -rf "$demo"
mkdir -p "$demo"
cp "$repo/examples/train.py" "$demo/"
cd "$demo"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "whirr init"
whirr init
step "queue three training runs"
for lr in 0.1 0.03 0.01; do
  whirr submit -n "lr-$lr" -t demo,lr -- python train.py --lr "$lr" --epochs 20
done
whirr status
step "a worker drains the queue"
whirr worker --exit-when-empty
step "jobs"
whirr status --all
step "runs"
whirr runs
if whirr --help | grep -q ' compare '; then
  step "compare"
  whirr compare job-1 job-2 job-3 -m loss
fi
step "done: the project is in $demo"
echo "cd there and try: whirr show job-1 | whirr logs 1 | whirr dashboard | whirr sql 'SELECT ...'"
