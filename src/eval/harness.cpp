// eval/harness.cpp: task scoring with the harness's metrics (see harness.h).
#include "eval/harness.h"

#include "data/tasks.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace ot {

int harness_task_version(const std::string& task) {
  return (task == "race" || task == "wikitext") ? 1 : 0;
}

int64_t argmax_first(const std::vector<double>& v) {
  if (v.empty()) return -1;
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = i;  // strict: the first maximum wins
  return static_cast<int64_t>(best);
}

int64_t code_point_length(const std::string& s) {
  int64_t n = 0;
  bool bad = false;
  utf8::for_each_code_point(s, [&](uint32_t cp, const char*, std::size_t) {
    if (cp == 0xFFFFFFFFu) bad = true;
    ++n;
  });
  OT_REQUIRE(!bad, "text is not valid UTF-8: \"", s, "\"");
  return n;
}

DocScore score_multiple_choice(const TaskDoc& doc, const std::vector<LLResult>& lls) {
  const size_t n = doc.continuations.size();
  OT_REQUIRE(lls.size() == n, doc.task, " doc ", doc.id, ": ", lls.size(), " results for ", n, " continuations");
  OT_REQUIRE(doc.gold >= 0 && doc.gold < static_cast<int64_t>(n), doc.task, " doc ", doc.id, ": gold index ",
             doc.gold, " is outside [0, ", n, ")");
  DocScore s;
  for (const LLResult& r : lls) {
    s.loglikelihoods.push_back(r.loglikelihood);
    s.greedy.push_back(r.is_greedy);
  }
  s.acc = argmax_first(s.loglikelihoods) == doc.gold ? 1.0 : 0.0;
  if (doc.normalized_metric) {
    OT_REQUIRE(doc.choices.size() == n, doc.task, " doc ", doc.id, ": ", doc.choices.size(), " choices for ", n,
               " continuations (acc_norm needs the bare choice strings)");
    std::vector<double> norm(n);
    for (size_t i = 0; i < n; ++i) {
      const int64_t len = code_point_length(doc.choices[i]);
      OT_REQUIRE(len > 0, doc.task, " doc ", doc.id, ": choice ", i, " is empty (acc_norm divides by its length)");
      norm[i] = s.loglikelihoods[i] / static_cast<double>(len);
    }
    s.acc_norm = argmax_first(norm) == doc.gold ? 1.0 : 0.0;
  }
  return s;
}

double webqs_accuracy(const std::vector<LLResult>& alias_results) {
  for (const LLResult& r : alias_results)
    if (r.is_greedy) return 1.0;
  return 0.0;
}

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double s = 0.0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

double mean_stderr(const std::vector<double>& v) {
  const size_t n = v.size();
  if (n < 2) return 0.0;
  const double mu = mean_of(v);
  double ss = 0.0;
  for (double x : v) ss += (x - mu) * (x - mu);
  return std::sqrt(ss / static_cast<double>(n - 1)) / std::sqrt(static_cast<double>(n));
}

namespace {

// CPython's Mersenne Twister: init_by_array seeding, genrand_uint32 and getrandbits(k <= 32).
class PyRandom {
 public:
  explicit PyRandom(uint32_t seed) {
    init_genrand(19650218u);
    // random.seed(int) passes abs(seed) as an array of 32-bit words: one word here.
    const uint32_t key[1] = {seed};
    size_t i = 1, j = 0;
    for (size_t k = kN; k; --k) {
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
      ++i;
      ++j;
      if (i >= kN) { mt_[0] = mt_[kN - 1]; i = 1; }
      if (j >= 1) j = 0;
    }
    for (size_t k = kN - 1; k; --k) {
      mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
      ++i;
      if (i >= kN) { mt_[0] = mt_[kN - 1]; i = 1; }
    }
    mt_[0] = 0x80000000u;
  }
  uint32_t next() {
    if (idx_ >= kN) twist();
    uint32_t y = mt_[idx_++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
  }
  // random._randbelow(n) for n < 2^32: rejection sampling on bit_length(n) bits.
  uint32_t below(uint32_t n) {
    int k = 0;
    while (k < 32 && (n >> k) != 0) ++k;
    for (;;) {
      const uint32_t r = next() >> (32 - k);
      if (r < n) return r;
    }
  }

 private:
  static constexpr size_t kN = 624, kM = 397;
  void init_genrand(uint32_t s) {
    mt_[0] = s;
    for (size_t i = 1; i < kN; ++i)
      mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
    idx_ = kN;
  }
  void twist() {
    for (size_t i = 0; i < kN; ++i) {
      const uint32_t y = (mt_[i] & 0x80000000u) | (mt_[(i + 1) % kN] & 0x7fffffffu);
      mt_[i] = mt_[(i + kM) % kN] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    idx_ = 0;
  }
  std::array<uint32_t, kN> mt_{};
  size_t idx_ = kN;
};

}  // namespace

std::vector<size_t> limit_docs(size_t n_docs, int64_t limit) {
  std::vector<size_t> idx(n_docs);
  for (size_t i = 0; i < n_docs; ++i) idx[i] = i;
  if (limit <= 0 || static_cast<size_t>(limit) >= n_docs) return idx;
  OT_REQUIRE(n_docs < (size_t{1} << 32), "too many documents to shuffle: ", n_docs);
  PyRandom rng(42);
  for (size_t i = n_docs - 1; i >= 1; --i) {  // random.shuffle
    const size_t j = rng.below(static_cast<uint32_t>(i + 1));
    std::swap(idx[i], idx[j]);
  }
  idx.resize(static_cast<size_t>(limit));
  return idx;
}

TaskEvaluation evaluate_task(DecoderLM& model, const Tokenizer& tok, const std::vector<TaskDoc>& all_docs,
                             const HarnessOptions& opts) {
  OT_REQUIRE(!all_docs.empty(), "no documents to evaluate");
  const std::string task = all_docs.front().task;
  const TaskKind kind = all_docs.front().kind;
  std::vector<const TaskDoc*> docs;
  for (size_t i : limit_docs(all_docs.size(), opts.limit)) docs.push_back(&all_docs[i]);

  // Every request of the task in one list, remembering where each doc's requests start.
  std::vector<LLRequest> reqs;
  std::vector<size_t> first;
  for (const TaskDoc* d : docs) {
    OT_REQUIRE(d->task == task && d->kind == kind, "doc ", d->id, ": task '", d->task,
               "' mixed into the documents of '", task, "'");
    OT_REQUIRE(!d->continuations.empty(), task, " doc ", d->id, ": no continuations to score");
    first.push_back(reqs.size());
    // webqs scores " " + alias for the pruned aliases; pruning " "-prefixed strings gives
    // the same set, and applying it here is harmless when the reader already pruned.
    std::vector<std::string> conts =
        kind == TaskKind::kGreedyAlias ? webqs_prune_aliases(d->continuations) : d->continuations;
    for (const std::string& c : conts) reqs.push_back({d->eval_context, c});
  }
  first.push_back(reqs.size());

  LLOptions llo = opts.ll;
  if (llo.label == "loglikelihood") llo.label = task;
  std::vector<LLResult> res = loglikelihood(model, tok, reqs, llo);

  TaskEvaluation ev;
  std::vector<double> acc, acc_norm;
  bool normalized = kind == TaskKind::kMultipleChoice;
  for (size_t k = 0; k < docs.size(); ++k) {
    std::vector<LLResult> mine(res.begin() + static_cast<std::ptrdiff_t>(first[k]),
                               res.begin() + static_cast<std::ptrdiff_t>(first[k + 1]));
    DocScore s;
    if (kind == TaskKind::kGreedyAlias) {
      for (const LLResult& r : mine) {
        s.loglikelihoods.push_back(r.loglikelihood);
        s.greedy.push_back(r.is_greedy);
      }
      s.acc = webqs_accuracy(mine);
    } else {
      s = score_multiple_choice(*docs[k], mine);
      normalized = normalized && docs[k]->normalized_metric;
    }
    acc.push_back(s.acc);
    acc_norm.push_back(s.acc_norm);
    ev.docs.push_back(std::move(s));
  }
  const int version = harness_task_version(task);
  const auto n = static_cast<int64_t>(docs.size());
  ev.results.push_back({task, version, "acc", mean_of(acc), mean_stderr(acc), n});
  if (normalized) ev.results.push_back({task, version, "acc_norm", mean_of(acc_norm), mean_stderr(acc_norm), n});
  return ev;
}

}  // namespace ot
