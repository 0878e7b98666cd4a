// eval/perplexity.h: the two WikiText perplexities of ../shared/LM_EVAL.md 3.8.
//  (a) The paper's number (run_clm.py eval_epoch, 3.8.2): rows tokenized one by one,
//      concatenated per group of 1000 rows and cut into block_size blocks (remainder of each
//      group dropped; a group shorter than one block stays as one short block); per batch
//      of blocks the HF causal-LM mean token loss; eval loss = mean over blocks of their
//      batch's loss (each batch counts once per block in it), NaN batches dropped;
//      perplexity = exp(eval loss). With equal-length blocks this is the mean of the
//      per-block mean losses, whatever the batch size.
//  (b) The harness's wikitext task (3.8.1): the raw file split into pages at top-level
//      headings, each page detokenized and scored with rolling max_length windows behind an
//      EOT prefix; word_perplexity, byte_perplexity and bits_per_byte over all pages, with
//      words and bytes counted on the original (not detokenized) pages.
// The stored wiki.test.raw (../shared/data/SOURCES.md) holds only the non-empty rows of the
// test split with CRLF endings: the official file's blank " " lines are missing. Pages
// therefore lack their blank lines, which leaves the word counts unchanged (a blank line
// only lengthens a whitespace run) but removes 2 bytes per blank line and changes the
// detokenized text ("\n \n" becomes "\n"), so the byte metrics and the log-likelihood differ
// from a run on the official file; for (a) the per-row BOS of empty rows (OPT, LLaMA) is
// missing too, and it is the test split, not the validation split the paper used.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "eval/loglikelihood.h"

namespace ot {

// ---- (a) the paper's block perplexity ----

// HF wikitext rows of a raw file: "\r\n" -> "\n", one row per line; a row is the line plus
// "\n", or "" when the line is blank (the datasets loader writes blank rows as "").
std::vector<std::string> wikitext_rows(const std::string& raw_text);

// group_rows_into_blocks: run_clm's group_texts over HF map batches: concatenates `rows` in groups of `group_rows` and cuts each group into
// `block_size`-token blocks, dropping each group's remainder (a group with fewer than
// block_size tokens in all is kept as one short block; an empty group gives nothing).
std::vector<std::vector<int64_t>> group_rows_into_blocks(const std::vector<std::vector<int64_t>>& rows, int64_t block_size,
                                              int64_t group_rows = 1000);

// Tokenizes each row with no special tokens, then prepends `bos_id` to every row (even an
// empty one) when it is >= 0: the tokenizer's default call for OPT and LLaMA.
std::vector<std::vector<int64_t>> tokenize_rows(const Tokenizer& tok, const std::vector<std::string>& rows,
                                                int64_t bos_id = -1);

// eval_epoch's reduction: batch_losses[b] is the mean token loss of batch b, batch_sizes[b]
// its number of blocks. NaN losses are dropped; returns the mean loss.
double clm_eval_loss(const std::vector<double>& batch_losses, const std::vector<int64_t>& batch_sizes);

struct ClmPerplexityOptions {
  int64_t batch_size = 1;  // blocks per forward pass (per_device_eval_batch_size)
  bool progress = true;
  // Sharded evaluation: each rank scores its share of the batches and the sums are reduced
  // (the result is the same on every rank). Null: this process scores everything.
  dist::Communicator* comm = nullptr;
};

struct ClmPerplexity {
  double loss = 0.0;        // eval loss (nats per token)
  double perplexity = 0.0;  // exp(loss); +inf on overflow
  int64_t blocks = 0;
  int64_t predictions = 0;  // scored next-token predictions (block length - 1 each)
};

// Runs the model on each block (labels = inputs, no context across blocks). Blocks in one
// batch must have the same length (HF's collator stacks them); throws ot::Error otherwise.
ClmPerplexity clm_perplexity(DecoderLM& model, const std::vector<std::vector<int64_t>>& blocks,
                             const ClmPerplexityOptions& opts = {});

// ---- (b) the harness's wikitext task ----

// The harness loader's pages: split on "\n"; a line whose test copy ("= = =" -> "===",
// "= =" -> "==", stripped) starts with "= " and ends with " =" starts a new page; the lines
// before it form a page when not blank; the last page is always kept. Lines are unchanged.
// "\r" is not touched: strip it first (read_wikitext_raw does).
std::vector<std::string> wikitext_pages(const std::string& text);

// Reads a raw WikiText file and turns "\r\n" into "\n".
std::string read_wikitext_raw(const std::string& path);

// lm_eval/tasks/wikitext.py wikitext_detokenizer, step by step as LM_EVAL 3.8.1 lists them.
std::string wikitext_detokenizer(const std::string& page);

// len(re.split(r"\s+", s)) with Python's Unicode whitespace: maximal whitespace runs + 1.
int64_t harness_word_count(const std::string& s);

// utils.get_rolling_token_windows(prefix=eot, max_seq_len=max_length, context_len=1) +
// make_disjoint_window, as (context, continuation) requests: every token predicted once.
std::vector<TokenRequest> rolling_windows(const std::vector<int64_t>& tokens, int64_t eot_id, int64_t max_length);

struct WikitextResult {
  double word_perplexity = 0.0;
  double byte_perplexity = 0.0;
  double bits_per_byte = 0.0;
  double loglikelihood = 0.0;  // sum over pages
  int64_t pages = 0, words = 0, bytes = 0, tokens = 0;
};

// The three metrics from per-page sums (LM_EVAL 3.8.1 "Metrics").
WikitextResult wikitext_metrics(double total_loglikelihood, int64_t words, int64_t bytes);

// Scores the given pages (use wikitext_pages on read_wikitext_raw). `limit` > 0 keeps the
// harness's shuffled selection of that many pages.
WikitextResult evaluate_wikitext(DecoderLM& model, const Tokenizer& tok, const std::vector<std::string>& pages,
                                 const LLOptions& opts = {}, int64_t limit = 0);

}  // namespace ot
