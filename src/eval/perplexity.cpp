// eval/perplexity.cpp: the paper's block perplexity and the harness's wikitext task (see
// perplexity.h).
#include "eval/perplexity.h"

#include <tuple>

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "eval/harness.h"
#include "data/python_str.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/progress.h"

namespace ot {

namespace {

// str.replace: non-overlapping, left to right.
std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (;;) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  return out;
}

// re.sub(r"OPEN\s*([^CLOSE]*?)\s*CLOSE", r"OPEN\1CLOSE"): from each OPEN to the next CLOSE,
// drop the whitespace just inside. An OPEN with no CLOSE after it is left alone.
std::u32string tighten_pairs(const std::u32string& s, char32_t open, char32_t close) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == open) {
      const size_t j = s.find(close, i + 1);
      if (j != std::u32string::npos) {
        out.push_back(open);
        out += python_strip(s.substr(i + 1, j - i - 1));
        out.push_back(close);
        i = j + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

}  // namespace

// ---- (a) ----

std::vector<std::string> wikitext_rows(const std::string& raw_text) {
  const std::string text = replace_all(raw_text, "\r\n", "\n");
  std::vector<std::string> rows;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    const bool has_nl = nl != std::string::npos;
    std::string line = text.substr(pos, has_nl ? nl - pos : std::string::npos);
    rows.push_back(is_python_blank(line) ? std::string() : line + (has_nl ? "\n" : ""));
    pos = has_nl ? nl + 1 : text.size();
  }
  return rows;
}

std::vector<std::vector<int64_t>> group_rows_into_blocks(const std::vector<std::vector<int64_t>>& rows, int64_t block_size,
                                              int64_t group_rows) {
  OT_REQUIRE(block_size >= 1, "block size must be positive, got ", block_size);
  OT_REQUIRE(group_rows >= 1, "group size must be positive, got ", group_rows);
  std::vector<std::vector<int64_t>> blocks;
  for (size_t g = 0; g < rows.size(); g += static_cast<size_t>(group_rows)) {
    std::vector<int64_t> cat;
    const size_t end = std::min(rows.size(), g + static_cast<size_t>(group_rows));
    for (size_t r = g; r < end; ++r) cat.insert(cat.end(), rows[r].begin(), rows[r].end());
    int64_t total = static_cast<int64_t>(cat.size());
    if (total >= block_size) total = total / block_size * block_size;  // drop the remainder
    for (int64_t i = 0; i < total; i += block_size) {
      const int64_t len = std::min(block_size, total - i);
      blocks.emplace_back(cat.begin() + i, cat.begin() + i + len);
    }
  }
  return blocks;
}

std::vector<std::vector<int64_t>> tokenize_rows(const Tokenizer& tok, const std::vector<std::string>& rows,
                                                int64_t bos_id) {
  std::vector<std::vector<int64_t>> out;
  out.reserve(rows.size());
  for (const std::string& r : rows) {
    std::vector<int64_t> ids;
    if (bos_id >= 0) ids.push_back(bos_id);
    if (!r.empty()) {
      std::vector<int64_t> t = tok.encode(r, false);
      ids.insert(ids.end(), t.begin(), t.end());
    }
    out.push_back(std::move(ids));
  }
  return out;
}

double clm_eval_loss(const std::vector<double>& batch_losses, const std::vector<int64_t>& batch_sizes) {
  OT_REQUIRE(batch_losses.size() == batch_sizes.size(), "clm_eval_loss: ", batch_losses.size(), " losses for ",
             batch_sizes.size(), " batch sizes");
  // losses.append(loss.repeat(bs)) then the mean of the non-NaN entries.
  double sum = 0.0;
  int64_t count = 0;
  for (size_t b = 0; b < batch_losses.size(); ++b) {
    if (std::isnan(batch_losses[b])) continue;
    sum += batch_losses[b] * static_cast<double>(batch_sizes[b]);
    count += batch_sizes[b];
  }
  return count > 0 ? sum / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN();
}

ClmPerplexity clm_perplexity(DecoderLM& model, const std::vector<std::vector<int64_t>>& blocks,
                             const ClmPerplexityOptions& opts) {
  OT_REQUIRE(opts.batch_size >= 1, "batch size must be at least 1, got ", opts.batch_size);
  OT_REQUIRE(!blocks.empty(), "no blocks to evaluate (the corpus tokenized to nothing)");
  torch::NoGradGuard no_grad;
  const c10::Device dev = model->device();
  const int64_t vocab = model->config().vocab_size;
  const auto n = static_cast<int64_t>(blocks.size());
  const int64_t n_batches = (n + opts.batch_size - 1) / opts.batch_size;
  std::unique_ptr<ProgressBar> bar;
  if (opts.progress && n_batches > 1) bar = std::make_unique<ProgressBar>("perplexity", n_batches);

  ClmPerplexity res;
  std::vector<double> losses;
  std::vector<int64_t> sizes;
  int64_t b_lo = 0, b_hi = n_batches;
  const bool sharded = opts.comm != nullptr && opts.comm->size() > 1;
  if (sharded) std::tie(b_lo, b_hi) = dist::shard_range(n_batches, opts.comm->rank(), opts.comm->size());
  for (int64_t b = b_lo; b < b_hi; ++b) {
    const int64_t lo = b * opts.batch_size, hi = std::min(n, lo + opts.batch_size);
    const auto T = static_cast<int64_t>(blocks[static_cast<size_t>(lo)].size());
    OT_REQUIRE(T >= 1, "block ", lo, " is empty");
    auto ids = torch::empty({hi - lo, T}, torch::kLong);  // (B, T)
    auto a = ids.accessor<int64_t, 2>();
    for (int64_t r = lo; r < hi; ++r) {
      const auto& blk = blocks[static_cast<size_t>(r)];
      OT_REQUIRE(static_cast<int64_t>(blk.size()) == T, "blocks ", lo, " and ", r, " share a batch but have ", T,
                 " and ", blk.size(), " tokens (use batch size 1 for ragged blocks)");
      for (int64_t t = 0; t < T; ++t) {
        OT_REQUIRE(blk[static_cast<size_t>(t)] >= 0 && blk[static_cast<size_t>(t)] < vocab, "block ", r,
                   ": token id ", blk[static_cast<size_t>(t)], " is outside the vocabulary [0, ", vocab, ")");
        a[r - lo][t] = blk[static_cast<size_t>(t)];
      }
    }
    at::Tensor x = ids.to(dev);
    at::Tensor logits = model->forward(x).logits;                   // (B, T, V)
    // HF's loss: mean over all B * (T - 1) shifted predictions (NaN when T == 1).
    double loss = T > 1 ? causal_lm_loss(logits, x).item<double>() : std::numeric_limits<double>::quiet_NaN();
    losses.push_back(loss);
    sizes.push_back(hi - lo);
    res.predictions += (hi - lo) * (T - 1);
    if (bar) bar->update(b + 1, (hi - lo) * T, {{"loss", loss}});
  }
  if (bar) bar->finish();
  res.blocks = n;
  if (sharded) {
    // The same sum clm_eval_loss forms, over every rank's batches.
    std::vector<double> part = {0.0, 0.0, double(res.predictions)};
    for (size_t i = 0; i < losses.size(); ++i) {
      if (std::isnan(losses[i])) continue;
      part[0] += losses[i] * double(sizes[i]);
      part[1] += double(sizes[i]);
    }
    part = opts.comm->all_reduce_sum(part);
    res.predictions = static_cast<int64_t>(part[2]);
    res.loss = part[1] > 0 ? part[0] / part[1] : std::numeric_limits<double>::quiet_NaN();
  } else {
    res.loss = clm_eval_loss(losses, sizes);
  }
  res.perplexity = std::exp(res.loss);  // inf on overflow, NaN stays NaN
  return res;
}

// ---- (b) ----

std::vector<std::string> wikitext_pages(const std::string& text) {
  std::vector<std::string> pages;
  std::vector<std::string> lines;
  auto join = [&] {
    std::string page;
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) page += '\n';
      page += lines[i];
    }
    return page;
  };
  size_t pos = 0;
  for (;;) {
    const size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    std::string test = replace_all(replace_all(line, "= = =", "==="), "= =", "==");
    const std::string t = to_utf8(python_strip(to_code_points(test)));
    const bool heading = t.rfind("= ", 0) == 0 && t.size() >= 2 && t.compare(t.size() - 2, 2, " =") == 0;
    if (heading) {
      std::string page = join();
      if (!is_python_blank(page)) pages.push_back(page);
      lines.clear();
    }
    lines.push_back(std::move(line));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  pages.push_back(join());  // the last page is kept even when blank
  return pages;
}

std::string read_wikitext_raw(const std::string& path) { return replace_all(read_text_file(path), "\r\n", "\n"); }

std::string wikitext_detokenizer(const std::string& page) {
  std::string s = page;
  // 1. contractions
  s = replace_all(s, "s '", "s'");
  // 2. re.sub(r"/' [0-9]/", r"/'[0-9]/"): the slashes are literal, so only "/' <digit>/" changes.
  {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
      if (i + 5 <= s.size() && s[i] == '/' && s[i + 1] == '\'' && s[i + 2] == ' ' && s[i + 3] >= '0' &&
          s[i + 3] <= '9' && s[i + 4] == '/') {
        out += "/'[0-9]/";
        i += 5;
      } else {
        out.push_back(s[i++]);
      }
    }
    s = out;
  }
  // 3. number separators
  s = replace_all(s, " @-@ ", "-");
  s = replace_all(s, " @,@ ", ",");
  s = replace_all(s, " @.@ ", ".");
  // 4. punctuation
  s = replace_all(s, " : ", ": ");
  s = replace_all(s, " ; ", "; ");
  s = replace_all(s, " . ", ". ");
  s = replace_all(s, " ! ", "! ");
  s = replace_all(s, " ? ", "? ");
  s = replace_all(s, " , ", ", ");
  // 5. whitespace just inside bracket pairs and quotes
  std::u32string u = to_code_points(s);
  u = tighten_pairs(u, U'(', U')');
  u = tighten_pairs(u, U'[', U']');
  u = tighten_pairs(u, U'{', U'}');
  u = tighten_pairs(u, U'"', U'"');
  u = tighten_pairs(u, U'\'', U'\'');
  s = to_utf8(u);
  // 6. headings
  s = replace_all(s, "= = = =", "====");
  s = replace_all(s, "= = =", "===");
  s = replace_all(s, "= =", "==");
  // 7. degree sign (chr(176))
  s = replace_all(s, " \xC2\xB0 ", "\xC2\xB0");
  // 8. line edges
  s = replace_all(s, " \n", "\n");
  s = replace_all(s, "\n ", "\n");
  // 9, 10.
  s = replace_all(s, " N ", " 1 ");
  s = replace_all(s, " 's", "'s");
  return s;
}

int64_t harness_word_count(const std::string& s) {
  int64_t runs = 0;
  bool in_space = false;
  for (char32_t c : to_code_points(s)) {
    const bool sp = is_python_space(c);
    if (sp && !in_space) ++runs;
    in_space = sp;
  }
  return runs + 1;
}

std::vector<TokenRequest> rolling_windows(const std::vector<int64_t>& tokens, int64_t eot_id, int64_t max_length) {
  OT_REQUIRE(max_length >= 1, "rolling windows need a positive window, got ", max_length);
  std::vector<TokenRequest> out;
  const auto N = static_cast<int64_t>(tokens.size());
  if (N == 0) return out;
  auto slice = [&](int64_t a, int64_t b) {
    return std::vector<int64_t>(tokens.begin() + a, tokens.begin() + b);
  };
  // First window: [EOT] + t_0 .. t_{m-2} predicts t_0 .. t_{m-1}.
  const int64_t m = std::min(max_length, N);
  out.push_back({{eot_id}, slice(0, m)});
  // Later windows: a full max_length input whose last k positions are scored; the disjoint
  // form keeps as context only the tokens not predicted in this window.
  for (int64_t p = m; p < N;) {
    const int64_t k = std::min(N - p, max_length);
    out.push_back({slice(p + k - 1 - max_length, p), slice(p, p + k)});
    p += k;
  }
  return out;
}

WikitextResult wikitext_metrics(double total_loglikelihood, int64_t words, int64_t bytes) {
  OT_REQUIRE(words > 0 && bytes > 0, "wikitext metrics need words and bytes, got ", words, " and ", bytes);
  WikitextResult r;
  r.loglikelihood = total_loglikelihood;
  r.words = words;
  r.bytes = bytes;
  r.word_perplexity = std::exp(-total_loglikelihood / static_cast<double>(words));
  r.byte_perplexity = std::exp(-total_loglikelihood / static_cast<double>(bytes));
  r.bits_per_byte = -total_loglikelihood / static_cast<double>(bytes) / std::log(2.0);
  return r;
}

WikitextResult evaluate_wikitext(DecoderLM& model, const Tokenizer& tok, const std::vector<std::string>& all_pages,
                                 const LLOptions& opts, int64_t limit) {
  OT_REQUIRE(!all_pages.empty(), "wikitext: no pages to score");
  const int64_t eot = harness_eot_id(tok, model->config());
  const int64_t L = opts.max_length > 0 ? opts.max_length : harness_max_length(model->config());
  std::vector<TokenRequest> reqs;
  int64_t words = 0, bytes = 0, tokens = 0, pages = 0;
  for (size_t i : limit_docs(all_pages.size(), limit)) {
    const std::string& page = all_pages[i];
    std::vector<int64_t> ids = tok.encode(wikitext_detokenizer(page), false);
    tokens += static_cast<int64_t>(ids.size());
    for (TokenRequest& r : rolling_windows(ids, eot, L)) reqs.push_back(std::move(r));
    // Words and bytes come from the original page, not the detokenized one.
    words += harness_word_count(page);
    bytes += static_cast<int64_t>(page.size());
    ++pages;
  }
  LLOptions llo = opts;
  llo.max_length = L;
  if (llo.label == "loglikelihood") llo.label = "wikitext";
  double total = 0.0;
  for (const LLResult& r : loglikelihood_tokens(model, reqs, llo)) total += r.loglikelihood;
  WikitextResult res = wikitext_metrics(total, words, bytes);
  res.pages = pages;
  res.tokens = tokens;
  return res;
}

}  // namespace ot
