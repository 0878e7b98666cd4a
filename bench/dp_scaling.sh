#!/usr/bin/env bash
# bench/dp_scaling.sh: data-parallel scaling of emulator distillation on this machine.
# An OPT-125m-shaped model (12 x 768, ffn 3072, vocab 50272; random weights: speed does not
# depend on their values) is distilled into a 2-4-2 bundle for STEPS steps of per-rank batch
# 2 x 512 tokens on WikiText-2 text with GPT-2's tokenizer, three ways, one after another:
#   1 rank x 1 thread | 1 rank x 2 threads | 2 MPI ranks x 1 thread (data parallel, weak scaling)
# and prints team throughput, the ratios, and the share of step time spent in gradient
# communication that backward did not hide (exposed all-reduce time / training time).
#   bash bench/dp_scaling.sh [STEPS]          (OT=build/ot, OT_SHARED_DIR=../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
OT=${OT:-build/ot}
SHARED=${OT_SHARED_DIR:-../shared}
STEPS=${1:-8}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

cat > "$T/config.json" <<JSON
{"model_type": "opt", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
 "ffn_dim": 3072, "vocab_size": 50272, "max_position_embeddings": 2048, "word_embed_proj_dim": 768,
 "do_layer_norm_before": true, "dropout": 0.0, "activation_function": "relu",
 "bos_token_id": 2, "eos_token_id": 2, "pad_token_id": 1}
JSON
"$OT" init --config "$T/config.json" --out "$T/opt125m" >/dev/null
cp "$SHARED/data/tokenizers/gpt2/"{encoder.json,vocab.bpe} "$T/opt125m/"

distill() {  # distill NAME LAUNCHER... : runs ot emulator under LAUNCHER, records to NAME.h5
  local name=$1; shift
  "$@" "$OT" emulator --model "$T/opt125m" --adapter 2,2 --emulator-layers 4 \
    --distill "$SHARED/data/corpora/wikitext-2-raw/wiki.test.raw" --block-size 512 --batch-size 2 \
    --max-steps "$STEPS" --lr 1e-4 --cache-dir "$T/cache" --record "$T/$name.h5" --out "$T/$name" \
    > "$T/$name.log" 2>&1 || { cat "$T/$name.log"; exit 1; }
}
value() { /usr/bin/python3 - "$T/$1.h5" "$2" <<'PY'
import sys, h5py
f = h5py.File(sys.argv[1], "r")
names = [n.decode() if isinstance(n, bytes) else n for n in f["efficiency/name"][:]]
print(f["efficiency/value"][names.index(sys.argv[2])])
PY
}

# A warm-up fills the token cache so that no configuration pays for tokenization.
distill warmup env OMP_NUM_THREADS=1
distill one_rank_1t env OMP_NUM_THREADS=1
distill one_rank_2t env OMP_NUM_THREADS=2
distill two_ranks_1t mpirun -np 2 -x OMP_NUM_THREADS=1

r11=$(value one_rank_1t distill_tokens_per_s)
r12=$(value one_rank_2t distill_tokens_per_s)
r21=$(value two_ranks_1t distill_tokens_per_s)
comm=$(value two_ranks_1t distill_exposed_comm_s)
train=$(value two_ranks_1t distill_train_s)
/usr/bin/python3 - "$r11" "$r12" "$r21" "$comm" "$train" "$STEPS" <<'PY'
import sys
r11, r12, r21, comm, train = map(float, sys.argv[1:6])
steps = int(sys.argv[6])
print(f"distillation of an OPT-125m-shaped model, 2-4-2 bundle, {steps} steps, 2 x 512 tokens per rank per step")
print("| configuration | tokens/s | vs 1 rank x 1 thread |")
print("|---|---:|---:|")
print(f"| 1 rank x 1 thread | {r11:.0f} | 1.00 |")
print(f"| 1 rank x 2 threads | {r12:.0f} | {r12 / r11:.2f} |")
print(f"| 2 ranks x 1 thread (MPI) | {r21:.0f} | {r21 / r11:.2f} |")
print(f"2 ranks vs 1 rank x 2 threads: {r21 / r12:.2f}x; exposed all-reduce time {comm:.2f} s of {train:.2f} s "
      f"training ({100 * comm / train:.1f} %)")
PY
