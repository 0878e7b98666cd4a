# tests/faults/common.sh: what the fault tests share (sourced, not run): the scratch
# directory $T, fail/skip, the tiny inputs (stories260K as an HF model, a few KB of text) and
# three experiment files: offsite_toml (a whole offsite run on stories260K in a few seconds),
# pretrain_toml (a trained BPE and a pretrained 3-block OPT: every cache the runner has) and
# own_model_toml (both: the offsite recipe on that pretrained model).
# Usage: source common.sh OT SHARED_DIR
# shellcheck shell=bash
set -euo pipefail
OT=$1
SHARED=$2
export OMP_NUM_THREADS=1
T=$(mktemp -d /tmp/ot-faults.XXXXXX)
CLEANUP=()   # commands run (in reverse) before $T is removed: unmounts, killing children
cleanup() {
  local i
  for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do eval "${CLEANUP[$i]}" || true; done
  # Never remove a directory that still has something mounted under it.
  if grep -q " $T/" /proc/mounts; then
    echo "common.sh: $T still has a mount under it; left in place" >&2
  else
    rm -rf "$T"
  fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

M=$SHARED/data/models/stories260K
[ -f "$M/stories260K.bin" ] || skip "$M/stories260K.bin not found (the shared reference data)"
"$OT" convert llama2c --checkpoint "$M/stories260K.bin" --tokenizer "$M/tok512.bin" --out "$T/full" >/dev/null
head -c 6000 "$SHARED/data/corpora/tinyshakespeare/input.txt" > "$T/train.txt"
tail -c 2000 "$SHARED/data/corpora/tinyshakespeare/input.txt" > "$T/test.txt"
head -c 6000 "$SHARED/data/corpora/tinystories/tinystories_train_head.txt" > "$T/owner.txt"
# The experiments extend the tests' tiny offsite run, which reads its inputs from here.
TINY_OFFSITE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tiny_offsite.toml
export OT_TEST_DIR=$T

# offsite_toml FILE NAME RESULTS WORK [extra TOML lines...]: the offsite recipe on stories260K,
# 3 steps of each training stage, 2-block-tall bundle (1-1 adapter, 1 emulator block).
offsite_toml() {
  local file=$1 name=$2 results=$3 work=$4
  shift 4
  cat > "$file" <<TOML
extends = "$TINY_OFFSITE"
[experiment]
name = "$name"
results_dir = "$results"
work_dir = "$work"
[distill]
max_steps = 3
save_every = 1
[finetune]
max_steps = 3
save_every = 1
[full_finetune]
max_steps = 2
save_every = 1
TOML
  local line
  for line in "$@"; do echo "$line" >> "$file"; done
}

# pretrain_toml FILE NAME RESULTS WORK [extra TOML lines...]: the pretrain recipe: a 300-token
# BPE trained on owner.txt (tokenizer cache), a 3-block OPT pretrained for 4 steps (model
# cache), its token files (token cache) and its zero-shot scores (score cache).
pretrain_toml() {
  local file=$1 name=$2 results=$3 work=$4
  shift 4
  cat > "$file" <<TOML
[experiment]
name = "$name"
recipe = "pretrain"
results_dir = "$results"
work_dir = "$work"
[runtime]
threads = 1
[data.owner]
path = "$T/owner.txt"
[data.heldout]
path = "$T/test.txt"
[tokenizer]
train_data = "owner"
vocab_size = 300
[model.init]
model_type = "opt"
hidden_size = 32
num_hidden_layers = 3
num_attention_heads = 2
ffn_dim = 64
max_position_embeddings = 64
word_embed_proj_dim = 32
[pretrain]
data = "owner"
block_size = 32
batch_size = 2
max_steps = 4
lr = 2e-3
save_every = 1
[eval]
data = ["heldout"]
block_size = 32
TOML
  local line
  for line in "$@"; do echo "$line" >> "$file"; done
}

# own_model_toml FILE NAME RESULTS WORK: pretrain_toml's caches, then the offsite recipe on the
# pretrained model (1-1 adapter, 1 emulator block): every cache and every stage in one run.
own_model_toml() {
  pretrain_toml "$@" '[emulator]' 'adapter = [1, 1]' 'layers = 1' \
    '[distill]' 'data = "owner"' 'block_size = 32' 'batch_size = 2' 'max_steps = 3' 'save_every = 1' \
    '[finetune]' 'data = "owner"' 'block_size = 32' 'batch_size = 2' 'max_steps = 3' 'save_every = 1' \
    '[full_finetune]' 'block_size = 32' 'batch_size = 2' 'max_steps = 2' 'save_every = 1'
  sed -i 's/^recipe = "pretrain"/recipe = "offsite"/' "$1"
}

# h5attr FILE NAME: a root attribute of a run file, as h5dump prints its value.
h5attr() { h5dump -a "/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): *//p' | sed -n 1p | tr -d '"'; }

# status_of FILE: completed | running | failed | "" (no readable file).
status_of() { [ -f "$1" ] && h5attr "$1" status || true; }

# leftovers DIR: temporaries and partial outputs of writers (".x.tmp.<pid>", "*.partial",
# "*.tmp-<pid>", "*.init"), one per line.
leftovers() { find "$1" \( -name '.*.tmp.*' -o -name '*.partial' -o -name '*.tmp-*' -o -name '*.init' -o -name '*.tmp' \) 2>/dev/null || true; }
