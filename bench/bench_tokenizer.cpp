// bench/bench_tokenizer.cpp: encode throughput (bytes/s) of the GPT-2 byte-level BPE and
// the llama2.c tokenizer on Tiny Shakespeare. Data is found through OT_SHARED_DIR or
// OT_REPO_ROOT/../shared; a benchmark is skipped when the files are absent.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/byte_bpe.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"

namespace {

std::string shared_path(const std::string& rel) {
  if (const char* env = std::getenv("OT_SHARED_DIR")) return std::string(env) + "/" + rel;
  return std::string(OT_REPO_ROOT) + "/../shared/" + rel;
}

std::vector<std::string> corpus_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl + 1 - start));
    start = nl + 1;
  }
  return lines;
}

// Loads tokenizer + corpus or reports why not; returns false when the benchmark must skip.
bool setup(benchmark::State& state, const std::string& tok_rel, std::unique_ptr<ot::Tokenizer>& tok,
           std::string& corpus) {
  const std::string corpus_path = shared_path("data/corpora/tinyshakespeare/input.txt");
  const std::string tok_path = shared_path(tok_rel);
  if (!ot::file_exists(corpus_path) || !(ot::file_exists(tok_path) || ot::dir_exists(tok_path))) {
    state.SkipWithError(("missing " + corpus_path + " or " + tok_path).c_str());
    return false;
  }
  try {
    tok = ot::load_tokenizer(tok_path);
    corpus = ot::read_text_file(corpus_path);
  } catch (const ot::Error& e) {
    state.SkipWithError(e.what());
    return false;
  }
  return true;
}

// Whole corpus as one text; a fresh tokenizer each run would measure loading, so the
// word cache is warm after the first iteration (as in real use on a stream of documents).
void BM_Gpt2BpeEncode(benchmark::State& state) {
  std::unique_ptr<ot::Tokenizer> tok;
  std::string corpus;
  if (!setup(state, "data/tokenizers/gpt2", tok, corpus)) return;
  std::size_t n_tokens = 0;
  for (auto _ : state) {
    auto ids = tok->encode(corpus);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}
BENCHMARK(BM_Gpt2BpeEncode)->Unit(benchmark::kMillisecond);

// The same without the cache's help: a new tokenizer per iteration (loading excluded).
void BM_Gpt2BpeEncodeColdCache(benchmark::State& state) {
  std::unique_ptr<ot::Tokenizer> tok;
  std::string corpus;
  if (!setup(state, "data/tokenizers/gpt2", tok, corpus)) return;
  const std::string dir = shared_path("data/tokenizers/gpt2");
  for (auto _ : state) {
    state.PauseTiming();
    auto fresh = ot::ByteBpeTokenizer::from_vocab_and_merges(dir + "/encoder.json", dir + "/vocab.bpe");
    state.ResumeTiming();
    auto ids = fresh->encode(corpus);
    benchmark::DoNotOptimize(ids.data());
    state.PauseTiming();
    fresh.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.size()));
}
BENCHMARK(BM_Gpt2BpeEncodeColdCache)->Unit(benchmark::kMillisecond)->Iterations(3);

// llama2.c encoding is per prompt (run.c style), so the corpus is encoded line by line.
void BM_Llama2cEncode(benchmark::State& state, const char* tok_rel) {
  std::unique_ptr<ot::Tokenizer> tok;
  std::string corpus;
  if (!setup(state, tok_rel, tok, corpus)) return;
  const auto lines = corpus_lines(corpus);
  for (auto _ : state) {
    std::size_t n = 0;
    for (const auto& line : lines) n += tok->encode(line, true).size();
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * corpus.size()));
}
BENCHMARK_CAPTURE(BM_Llama2cEncode, tok512, "data/models/stories260K/tok512.bin")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Llama2cEncode, llama2_32k, "data/tokenizers/llama2/tokenizer.bin")
    ->Unit(benchmark::kMillisecond);

}  // namespace


