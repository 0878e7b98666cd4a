# tests/tiny_offsite.sh: sourced by the shell tests that run tests/tiny_offsite.toml.
# tiny_offsite_inputs OT SHARED DIR TEXT_BYTES TEST_BYTES writes under DIR what the experiment
# reads: full/ (stories260K converted to a Hugging Face LLaMA), owner.txt and train.txt (the
# first TEXT_BYTES of TinyStories and of Tiny Shakespeare) and test.txt (the last TEST_BYTES of
# Tiny Shakespeare); exports OT_TEST_DIR=DIR and sets TINY_OFFSITE to the experiment's path.
# shellcheck shell=bash
TINY_OFFSITE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tiny_offsite.toml

tiny_offsite_inputs() {
  local ot=$1 shared=$2 dir=$3 text_bytes=$4 test_bytes=$5
  local m=$shared/data/models/stories260K
  "$ot" convert llama2c --checkpoint "$m/stories260K.bin" --tokenizer "$m/tok512.bin" --out "$dir/full" >/dev/null
  head -c "$text_bytes" "$shared/data/corpora/tinystories/tinystories_train_head.txt" > "$dir/owner.txt"
  head -c "$text_bytes" "$shared/data/corpora/tinyshakespeare/input.txt" > "$dir/train.txt"
  tail -c "$test_bytes" "$shared/data/corpora/tinyshakespeare/input.txt" > "$dir/test.txt"
  export OT_TEST_DIR=$dir
}
