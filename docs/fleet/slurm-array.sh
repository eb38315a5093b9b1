#!/bin/bash
# One sweep divided over a Slurm job array: task I of N tunes shard I/N of
# the batch sizes on its own GPU into its own database on shared storage
# (SQLite must not be written by several nodes at once, so each task has
# its own file), and a last job merges the shards and writes the config
# files. Submit both with:
#   arr=$(sbatch --parsable docs/fleet/slurm-array.sh)
#   sbatch --dependency=afterok:$arr --wrap "bash docs/fleet/slurm-array.sh merge"
#SBATCH --job-name=moetune
#SBATCH --array=0-3
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=16
#SBATCH --time=00:30:00
#SBATCH --output=moetune-%A_%a.log
set -euo pipefail
SHARED=${MOETUNE_SHARED:-$HOME/moetune-fleet}   # a folder every node sees
MODEL=${MOETUNE_MODEL:-qwen3-30b-a3b}
BATCH=${MOETUNE_BATCH_SIZES:-}                  # default: vLLM's 18
mkdir -p "$SHARED"
if [ "${1:-}" = merge ]; then
  moetune merge --db "$SHARED/all.db" "$SHARED"/shard-*.db
  moetune export --db "$SHARED/all.db" --out "$SHARED/configs"
  # and to the shared bucket, when one is named (credentials from the environment)
  if [ -n "${MOETUNE_PUBLISH:-}" ]; then moetune publish "$MOETUNE_PUBLISH" --db "$SHARED/all.db"; fi
  exit
fi
N=${SLURM_ARRAY_TASK_COUNT:?submit with sbatch --array}
I=${SLURM_ARRAY_TASK_ID:?submit with sbatch --array}
# the kernel cache is per node; --device auto picks this task's GPU
moetune sweep --device auto --model "$MODEL" --strategy bayes --budget 5% \
  ${BATCH:+--batch-sizes "$BATCH"} --shard "$I/$N" --db "$SHARED/shard-$I.db" --no-export
