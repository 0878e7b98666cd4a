// tests/unit/test_eval.cpp: the evaluation layer against lm-eval-harness v0.3.0 rules
// (../shared/LM_EVAL.md). Log-likelihoods of real PIQA / ARC / OpenBookQA items under the
// real stories260K model are recomputed independently (one forward of the whole sequence,
// log-softmax by hand); batching, truncation and perplexity use the hf-parity GPT-2
// fixture; metric rules, alias pruning, page splitting and the detokenizer are checked on
// constructed inputs whose expected values were worked out from the specification.
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "eval/harness.h"
#include "eval/loglikelihood.h"
#include "eval/perplexity.h"
#include "eval/settings.h"
#include "data/tasks.h"
#include "model/load.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/progress.h"

namespace {

using ot::test::run_cli;
using ot::test::shared_path;

std::string gpt2_dir() { return shared_path("fixtures/hf-parity/gpt2"); }

// Reference: one forward of context + continuation, log-softmax written out by hand
// (max + log sum exp) in double, summed over the positions that predict the continuation.
struct RefLL {
  double ll = 0.0;
  bool greedy = true;
};
RefLL reference_ll(ot::DecoderLM& m, const std::vector<int64_t>& ctx, const std::vector<int64_t>& cont) {
  std::vector<int64_t> full = ctx;
  full.insert(full.end(), cont.begin(), cont.end());
  torch::NoGradGuard ng;
  at::Tensor logits = m->forward(torch::tensor(full, torch::kLong).unsqueeze(0)).logits[0].to(torch::kDouble);  // (T, V)
  RefLL r;
  for (size_t i = 0; i < cont.size(); ++i) {
    at::Tensor row = logits[static_cast<int64_t>(ctx.size() - 1 + i)];  // (V)
    const double mx = row.max().item<double>();
    const double lse = mx + std::log((row - mx).exp().sum().item<double>());
    r.ll += row[cont[i]].item<double>() - lse;
    r.greedy = r.greedy && row.argmax().item<int64_t>() == cont[i];
  }
  return r;
}

// Deterministic pseudo-random token lists for the fixture (vocab 1000).
std::vector<int64_t> tokens(int64_t n, int64_t seed) {
  std::vector<int64_t> v;
  uint64_t x = 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(seed + 1);
  for (int64_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v.push_back(static_cast<int64_t>(x % 1000));
  }
  return v;
}

class EvalStories : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ot::ProgressBar::set_enabled(false);
    dir_ = new ot::test::TempDir();
    const std::string m = shared_path("data/models/stories260K/");
    auto r = run_cli("convert llama2c --checkpoint " + m + "stories260K.bin --tokenizer " + m + "tok512.bin --out " +
                     dir_->file("hf"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    model_ = new ot::DecoderLM(ot::load_model(dir_->file("hf")));
    tok_ = ot::load_tokenizer(dir_->file("hf")).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete model_;
    delete dir_;
  }
  // The harness's LLs of `docs` must equal the reference for every continuation (1e-4),
  // and acc must follow from the reference LLs.
  static void check_docs(const std::vector<ot::TaskDoc>& docs, int64_t batch) {
    ot::HarnessOptions ho;
    ho.ll.batch_size = batch;
    ot::TaskEvaluation ev = ot::evaluate_task(*model_, *tok_, docs, ho);
    ASSERT_EQ(ev.docs.size(), docs.size());
    const int64_t L = ot::harness_max_length((*model_)->config());
    for (size_t d = 0; d < docs.size(); ++d) {
      std::vector<double> ref;
      for (size_t c = 0; c < docs[d].continuations.size(); ++c) {
        auto ctx = tok_->encode(docs[d].eval_context, false);
        auto cont = tok_->encode(docs[d].continuations[c], false);
        ASSERT_LE(static_cast<int64_t>(ctx.size() + cont.size()), L + 1) << "item too long for an untruncated reference";
        RefLL r = reference_ll(*model_, ctx, cont);
        EXPECT_NEAR(ev.docs[d].loglikelihoods[c], r.ll, 1e-4) << docs[d].id << " choice " << c;
        EXPECT_EQ(ev.docs[d].greedy[c], r.greedy) << docs[d].id << " choice " << c;
        ref.push_back(r.ll);
      }
      EXPECT_EQ(ev.docs[d].acc, ot::argmax_first(ref) == docs[d].gold ? 1.0 : 0.0) << docs[d].id;
    }
  }
  static std::vector<ot::TaskDoc> first(const std::string& task, const std::string& rel, size_t n) {
    auto docs = ot::load_task(task, shared_path("data/tasks/" + rel)).eval_docs;
    docs.resize(std::min(n, docs.size()));
    return docs;
  }
  static ot::test::TempDir* dir_;
  static ot::DecoderLM* model_;
  static ot::Tokenizer* tok_;
};
ot::test::TempDir* EvalStories::dir_ = nullptr;
ot::DecoderLM* EvalStories::model_ = nullptr;
ot::Tokenizer* EvalStories::tok_ = nullptr;

TEST_F(EvalStories, MaxLengthAndEotFromConfig) {
  EXPECT_EQ(ot::harness_max_length((*model_)->config()), 512);  // max_position_embeddings
  EXPECT_EQ(ot::harness_eot_id(*tok_, (*model_)->config()), *tok_->eos_id());
}

TEST_F(EvalStories, PiqaLogLikelihoodsMatchHandComputed) {
  auto docs = first("piqa", "piqa/valid_with_labels.jsonl", 3);
  EXPECT_EQ(docs[0].eval_context, "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:");
  EXPECT_EQ(docs[0].continuations[0].substr(0, 10), " Provide t");
  EXPECT_EQ(docs[0].gold, 0);
  check_docs(docs, 1);
}

TEST_F(EvalStories, ArcLogLikelihoodsMatchHandComputed) {
  auto docs = first("arc_challenge", "arc_challenge/hf_test.jsonl", 2);
  // One ARC-Easy item whose answerKey is a digit ("1".."5" -> "A".."E").
  auto easy = ot::load_task("arc_easy", shared_path("data/tasks/arc_easy/hf_test.jsonl")).eval_docs;
  std::vector<std::string> lines;
  {
    std::istringstream in(ot::read_text_file(shared_path("data/tasks/arc_easy/hf_test.jsonl")));
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  bool found = false;
  for (size_t i = 0; i < lines.size() && !found; ++i) {
    auto j = nlohmann::json::parse(lines[i]);
    const std::string key = j["answerKey"];
    if (key.size() == 1 && key[0] >= '1' && key[0] <= '5') {
      EXPECT_EQ(easy[i].gold, key[0] - '1') << easy[i].id;
      EXPECT_EQ(easy[i].eval_context, "Question: " + j["question"].get<std::string>() + "\nAnswer:");
      check_docs({easy[i]}, 1);
      found = true;
    }
  }
  ASSERT_TRUE(found);
  check_docs(docs, 1);
}

TEST_F(EvalStories, OpenBookQaLogLikelihoodsMatchHandComputed) {
  auto docs = first("openbookqa", "openbookqa/Main/test.jsonl", 2);
  EXPECT_EQ(docs[0].eval_context.substr(0, 18), "A person wants to ");  // bare stem, nothing added
  EXPECT_EQ(docs[0].continuations[1], " quit eating lunch out");
  EXPECT_EQ(docs[0].gold, 1);
  check_docs(docs, 1);
}

TEST_F(EvalStories, BatchedTaskEqualsUnbatched) {
  auto docs = first("piqa", "piqa/valid_with_labels.jsonl", 4);
  auto obqa = first("openbookqa", "openbookqa/Main/test.jsonl", 3);
  ot::HarnessOptions one, many;
  many.ll.batch_size = 5;
  for (const auto* set : {&docs, &obqa}) {
    auto a = ot::evaluate_task(*model_, *tok_, *set, one);
    auto b = ot::evaluate_task(*model_, *tok_, *set, many);
    for (size_t d = 0; d < a.docs.size(); ++d)
      for (size_t c = 0; c < a.docs[d].loglikelihoods.size(); ++c) {
        EXPECT_NEAR(a.docs[d].loglikelihoods[c], b.docs[d].loglikelihoods[c], 1e-4);
        EXPECT_EQ(a.docs[d].greedy[c], b.docs[d].greedy[c]);
      }
    ASSERT_EQ(a.results.size(), 2u);  // acc and acc_norm
    EXPECT_EQ(a.results[0].value, b.results[0].value);
    EXPECT_EQ(a.results[1].value, b.results[1].value);
  }
}

TEST_F(EvalStories, EmptyContextUsesEot) {
  auto cont = tok_->encode(" Once upon a time", false);
  auto res = ot::loglikelihood(*model_, *tok_, {{"", " Once upon a time"}});
  RefLL r = reference_ll(*model_, {*tok_->eos_id()}, cont);
  EXPECT_NEAR(res[0].loglikelihood, r.ll, 1e-4);
}

// webqs: a continuation made of the model's own greedy tokens is greedy; change one token
// and it is not. acc = any alias greedy.
TEST_F(EvalStories, GreedyRuleOnModelOwnContinuation) {
  auto ctx = tok_->encode("Once upon a time", true);
  std::vector<int64_t> greedy_cont, seq = ctx;
  {
    torch::NoGradGuard ng;
    for (int i = 0; i < 4; ++i) {
      auto logits = (*model_)->forward(torch::tensor(seq, torch::kLong).unsqueeze(0)).logits;  // (1, T, V)
      int64_t next = logits[0][-1].argmax().item<int64_t>();
      greedy_cont.push_back(next);
      seq.push_back(next);
    }
  }
  auto other = greedy_cont;
  other[2] = (other[2] + 1) % 512;
  auto res = ot::loglikelihood_tokens(*model_, {{ctx, greedy_cont}, {ctx, other}});
  EXPECT_TRUE(res[0].is_greedy);
  EXPECT_FALSE(res[1].is_greedy);
  EXPECT_GT(res[0].loglikelihood, res[1].loglikelihood);
  EXPECT_EQ(ot::webqs_accuracy({res[1], res[0]}), 1.0);
  EXPECT_EQ(ot::webqs_accuracy({res[1]}), 0.0);
}

TEST_F(EvalStories, CliEvalPrintsTableAndWritesJson) {
  ot::test::TempDir tmp;
  auto r = run_cli("eval --model " + dir_->file("hf") + " --task piqa=" +
                   shared_path("data/tasks/piqa/valid_with_labels.jsonl") + " --task openbookqa=" +
                   shared_path("data/tasks/openbookqa/Main/test.jsonl") +
                   " --limit 6 --batch-size 4 --setting zs_full --output " + tmp.file("r.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("|piqa"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("acc_norm"), std::string::npos);
  EXPECT_NE(r.out.find("±"), std::string::npos);
  auto j = nlohmann::json::parse(ot::read_text_file(tmp.file("r.json")));
  EXPECT_TRUE(j["results"]["piqa"].contains("acc_stderr"));
  EXPECT_EQ(j["versions"]["openbookqa"], 0);
  EXPECT_EQ(j["config"]["setting"], "zs_full");
  EXPECT_EQ(j["config"]["limit"], 6);
  const double acc = j["results"]["piqa"]["acc"];
  EXPECT_NEAR(acc * 6, std::round(acc * 6), 1e-9);  // a mean of 6 zero/one scores
}

TEST_F(EvalStories, CliEvalWikitextAndCorpus) {
  ot::test::TempDir tmp;
  // A tiny raw file in the stored layout (CRLF, no blank lines): two pages.
  ot::write_text_file_atomically(tmp.file("wiki.raw"),
                                 " = Tom = \r\n Tom went home . \r\n = = Later = = \r\n He slept . \r\n"
                                 " = Lily = \r\n Lily saw a dog @-@ like cat . \r\n");
  auto r = run_cli("eval --model " + dir_->file("hf") + " --task wikitext=" + tmp.file("wiki.raw") + " --corpus " +
                   tmp.file("wiki.raw") + " --block-size 16 --output " + tmp.file("r.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(ot::read_text_file(tmp.file("r.json")));
  const double wp = j["results"]["wikitext"]["word_perplexity"], bp = j["results"]["wikitext"]["byte_perplexity"];
  const double bpb = j["results"]["wikitext"]["bits_per_byte"];
  EXPECT_GT(wp, bp);
  EXPECT_NEAR(bpb, std::log2(bp), 1e-9);
  EXPECT_FALSE(j["results"]["wikitext"].contains("word_perplexity_stderr"));
  EXPECT_EQ(j["versions"]["wikitext"], 1);
  EXPECT_GT(j["results"]["corpus"]["perplexity"].get<double>(), 1.0);
}

TEST_F(EvalStories, WikitextPagesScoredWithRollingWindowsEqualFullForward) {
  // With a window larger than the page, the rolling score is one forward of [EOT] + page.
  const std::string page = " = Tom = \n Tom went home . He was happy . \n";
  auto ids = tok_->encode(ot::wikitext_detokenizer(page), false);
  std::vector<int64_t> eot{*tok_->eos_id()};
  RefLL ref = reference_ll(*model_, eot, ids);
  auto res = ot::evaluate_wikitext(*model_, *tok_, {page});
  EXPECT_NEAR(res.loglikelihood, ref.ll, 1e-4);
  EXPECT_EQ(res.words, ot::harness_word_count(page));
  EXPECT_EQ(res.bytes, static_cast<int64_t>(page.size()));
  // A small window predicts every token once with less context: a different, finite score.
  ot::LLOptions small;
  small.max_length = 5;
  auto res5 = ot::evaluate_wikitext(*model_, *tok_, {page}, small);
  EXPECT_TRUE(std::isfinite(res5.loglikelihood));
  EXPECT_NE(res5.loglikelihood, res.loglikelihood);
}

// ---- GPT-2 fixture (token level) ----

class EvalGpt2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ot::ProgressBar::set_enabled(false);
    model_ = new ot::DecoderLM(ot::load_model(gpt2_dir()));
  }
  static void TearDownTestSuite() { delete model_; }
  static ot::DecoderLM* model_;
};
ot::DecoderLM* EvalGpt2::model_ = nullptr;

TEST_F(EvalGpt2, MaxLengthFromNPositions) { EXPECT_EQ(ot::harness_max_length((*model_)->config()), 128); }

TEST_F(EvalGpt2, BatchedEqualsUnbatchedWithDuplicates) {
  std::vector<ot::TokenRequest> reqs;
  for (int i = 0; i < 11; ++i) reqs.push_back({tokens(3 + (i * 7) % 23, i), tokens(1 + i % 4, 100 + i)});
  reqs.push_back(reqs[3]);                           // exact duplicate
  reqs.push_back({reqs[5].context, reqs[7].continuation});
  auto one = ot::loglikelihood_tokens(*model_, reqs);
  for (int64_t b : {2, 3, 8, 64}) {
    ot::LLOptions o;
    o.batch_size = b;
    auto many = ot::loglikelihood_tokens(*model_, reqs, o);
    ASSERT_EQ(many.size(), reqs.size());
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_NEAR(many[i].loglikelihood, one[i].loglikelihood, 1e-4) << "batch " << b << " request " << i;
      EXPECT_EQ(many[i].is_greedy, one[i].is_greedy);
    }
  }
  for (size_t i = 0; i < reqs.size(); ++i)
    EXPECT_NEAR(one[i].loglikelihood, reference_ll(*model_, reqs[i].context, reqs[i].continuation).ll, 1e-4);
  EXPECT_EQ(one[11].loglikelihood, one[3].loglikelihood);
}

// Same tokens, different context/continuation split: different requests, different scores.
TEST_F(EvalGpt2, SameTokensDifferentSplitAreNotMerged) {
  auto t = tokens(10, 7);
  ot::TokenRequest a{{t.begin(), t.begin() + 6}, {t.begin() + 6, t.end()}};
  ot::TokenRequest b{{t.begin(), t.begin() + 8}, {t.begin() + 8, t.end()}};
  auto res = ot::loglikelihood_tokens(*model_, {a, b});
  EXPECT_NEAR(res[0].loglikelihood, reference_ll(*model_, a.context, a.continuation).ll, 1e-4);
  EXPECT_NEAR(res[1].loglikelihood, reference_ll(*model_, b.context, b.continuation).ll, 1e-4);
}

TEST_F(EvalGpt2, LeftTruncationKeepsTheContinuation) {
  const int64_t L = 8;
  auto ctx = tokens(20, 1), cont = tokens(3, 2);
  std::vector<int64_t> full = ctx;
  full.insert(full.end(), cont.begin(), cont.end());
  // Expected: the last L + 1 tokens, the first L of them as input, the last 3 scored.
  std::vector<int64_t> kept(full.end() - (L + 1), full.end());
  std::vector<int64_t> kctx(kept.begin(), kept.end() - 3);
  RefLL ref = reference_ll(*model_, kctx, cont);
  ot::LLOptions o;
  o.max_length = L;
  auto res = ot::loglikelihood_tokens(*model_, {{ctx, cont}}, o);
  EXPECT_NEAR(res[0].loglikelihood, ref.ll, 1e-4);
  EXPECT_EQ(res[0].is_greedy, ref.greedy);
  // A context that differs only in the dropped part scores the same.
  auto ctx2 = ctx;
  ctx2[0] = (ctx2[0] + 1) % 1000;
  ctx2[5] = (ctx2[5] + 1) % 1000;
  auto res2 = ot::loglikelihood_tokens(*model_, {{ctx2, cont}}, o);
  EXPECT_NEAR(res2[0].loglikelihood, res[0].loglikelihood, 1e-5);
  // A continuation of exactly L tokens keeps only one context token; L + 1 is refused.
  auto long_cont = tokens(L, 3);
  auto res3 = ot::loglikelihood_tokens(*model_, {{ctx, long_cont}}, o);
  EXPECT_NEAR(res3[0].loglikelihood, reference_ll(*model_, {ctx.back()}, long_cont).ll, 1e-4);
  EXPECT_THROW(ot::loglikelihood_tokens(*model_, {{ctx, tokens(L + 1, 4)}}, o), ot::Error);
}

TEST_F(EvalGpt2, BadRequestsAreErrors) {
  EXPECT_THROW(ot::loglikelihood_tokens(*model_, {{{}, {1}}}), ot::Error);
  EXPECT_THROW(ot::loglikelihood_tokens(*model_, {{{1}, {}}}), ot::Error);
  EXPECT_THROW(ot::loglikelihood_tokens(*model_, {{{1}, {1000}}}), ot::Error);
  ot::LLOptions o;
  o.batch_size = 0;
  EXPECT_THROW(ot::loglikelihood_tokens(*model_, {{{1}, {2}}}, o), ot::Error);
}

TEST_F(EvalGpt2, RollingWindowsMatchFullForwardWhenShort) {
  auto t = tokens(40, 9);
  auto w = ot::rolling_windows(t, 999, 128);
  ASSERT_EQ(w.size(), 1u);
  auto res = ot::loglikelihood_tokens(*model_, w);
  EXPECT_NEAR(res[0].loglikelihood, reference_ll(*model_, {999}, t).ll, 1e-4);
}

TEST_F(EvalGpt2, BlockPerplexityIsMeanOfBlockMeanLosses) {
  std::vector<std::vector<int64_t>> blocks{tokens(16, 1), tokens(16, 2), tokens(16, 3)};
  double sum = 0.0;
  for (const auto& b : blocks) {
    std::vector<int64_t> ctx{b[0]}, cont(b.begin() + 1, b.end());
    sum += -reference_ll(*model_, ctx, cont).ll / 15.0;  // mean NLL of the block's 15 predictions
  }
  const double expected = sum / 3.0;
  for (int64_t bs : {1, 2, 3}) {
    ot::ClmPerplexityOptions o;
    o.batch_size = bs;
    auto p = ot::clm_perplexity(*model_, blocks, o);
    EXPECT_NEAR(p.loss, expected, 1e-5) << "batch " << bs;
    EXPECT_NEAR(p.perplexity, std::exp(expected), 1e-4 * std::exp(expected));
    EXPECT_EQ(p.blocks, 3);
    EXPECT_EQ(p.predictions, 45);
  }
  // Ragged blocks cannot share a batch.
  ot::ClmPerplexityOptions two;
  two.batch_size = 2;
  EXPECT_THROW(ot::clm_perplexity(*model_, {tokens(16, 1), tokens(5, 2)}, two), ot::Error);
}

// ---- pure rules ----

TEST(EvalRules, AccVersusAccNormAndCodePoints) {
  ot::TaskDoc d;
  d.task = "t";
  d.continuations = {" ab", " abcdef"};
  d.choices = {"ab", "abcdef"};
  d.gold = 1;
  // acc: -2 > -3 picks 0; acc_norm: -2/2 = -1 < -3/6 = -0.5 picks 1.
  auto s = ot::score_multiple_choice(d, {{-2.0, false}, {-3.0, false}});
  EXPECT_EQ(s.acc, 0.0);
  EXPECT_EQ(s.acc_norm, 1.0);
  // Lengths are code points, not bytes: "ééé" is 3 characters (6 bytes). -2.7/3 = -0.9 is
  // below -2/4 = -0.5, so choice 0 wins; dividing by bytes (-0.45) would pick choice 1.
  d.choices = {"abcd", "\xC3\xA9\xC3\xA9\xC3\xA9"};
  d.continuations = {" abcd", " \xC3\xA9\xC3\xA9\xC3\xA9"};
  d.gold = 0;
  s = ot::score_multiple_choice(d, {{-2.0, false}, {-2.7, false}});
  EXPECT_EQ(s.acc_norm, 1.0);
  EXPECT_EQ(ot::code_point_length("\xC3\xA9\xC3\xA9\xC3\xA9"), 3);
  EXPECT_THROW(ot::code_point_length("\xC3"), ot::Error);
}

TEST(EvalRules, TiesGoToTheLowestIndex) {
  EXPECT_EQ(ot::argmax_first({-1.0, -1.0, -3.0}), 0);
  EXPECT_EQ(ot::argmax_first({-4.0, -1.0, -1.0}), 1);
  ot::TaskDoc d;
  d.continuations = {" a", " b", " c", " d"};
  d.choices = {"a", "b", "c", "d"};
  d.gold = 3;  // SciQ-like: gold last, so a tie is wrong
  auto s = ot::score_multiple_choice(d, {{-1.0, false}, {-2.0, false}, {-3.0, false}, {-1.0, false}});
  EXPECT_EQ(s.acc, 0.0);
  EXPECT_EQ(s.acc_norm, 0.0);
  d.gold = 0;
  s = ot::score_multiple_choice(d, {{-1.0, false}, {-2.0, false}, {-3.0, false}, {-1.0, false}});
  EXPECT_EQ(s.acc, 1.0);
}

TEST(EvalRules, BadDocsAreErrors) {
  ot::TaskDoc d;
  d.continuations = {" a", " b"};
  d.choices = {"a", "b"};
  d.gold = 2;
  EXPECT_THROW(ot::score_multiple_choice(d, {{0.0, false}, {0.0, false}}), ot::Error);
  d.gold = 0;
  d.choices = {"a"};
  EXPECT_THROW(ot::score_multiple_choice(d, {{0.0, false}, {0.0, false}}), ot::Error);
}

TEST(EvalRules, StderrIsSampleStdOverSqrtN) {
  // mean 0.75; sample variance (3 * 0.0625 + 0.5625) / 3 = 0.25; 0.5 / sqrt(4) = 0.25.
  EXPECT_DOUBLE_EQ(ot::mean_of({1, 0, 1, 1}), 0.75);
  EXPECT_NEAR(ot::mean_stderr({1, 0, 1, 1}), 0.25, 1e-15);
  // Equals sqrt(p (1 - p) / (n - 1)) for 0/1 scores.
  std::vector<double> v(10, 0.0);
  v[0] = v[3] = v[4] = 1.0;
  EXPECT_NEAR(ot::mean_stderr(v), std::sqrt(0.3 * 0.7 / 9.0), 1e-15);
  // Non-binary: {2, 4, 9}: mean 5, sample var (9 + 1 + 16) / 2 = 13.
  EXPECT_NEAR(ot::mean_stderr({2, 4, 9}), std::sqrt(13.0) / std::sqrt(3.0), 1e-12);
  EXPECT_EQ(ot::mean_stderr({1.0}), 0.0);
}

TEST(EvalRules, WebqsAliasPruning) {
  EXPECT_EQ(ot::webqs_prune_aliases({"Jamaican English", "Jamaica", "Jamaican Creole English Language", "Jamaican"}),
            (std::vector<std::string>{"Jamaica"}));
  EXPECT_EQ(ot::webqs_prune_aliases({"Jamaican English", "Jamaican Creole English Language"}),
            (std::vector<std::string>{"Jamaican Creole English Language", "Jamaican English"}));
  // Code-point order: uppercase before lowercase, "a b" before "ab".
  EXPECT_EQ(ot::webqs_prune_aliases({"b", "ab", "a b", "a", "B", "c"}),
            (std::vector<std::string>{"B", "a", "b", "c"}));
  // Only the most recently kept alias is compared: "x" kept, "xy" dropped, "y" kept.
  EXPECT_EQ(ot::webqs_prune_aliases({"y", "xy", "x", "yz"}), (std::vector<std::string>{"x", "y"}));
  // " "-prefixed continuations prune the same way.
  EXPECT_EQ(ot::webqs_prune_aliases({" Jamaican", " Jamaica"}), (std::vector<std::string>{" Jamaica"}));
  EXPECT_TRUE(ot::webqs_prune_aliases({}).empty());
}

TEST(EvalRules, LimitUsesPythonSeededShuffle) {
  // random.Random(42).shuffle(list(range(n)))[:limit], from CPython 3.11.
  EXPECT_EQ(ot::limit_docs(20, 5), (std::vector<size_t>{19, 5, 14, 4, 9}));
  EXPECT_EQ(ot::limit_docs(1838, 10), (std::vector<size_t>{717, 241, 568, 626, 1139, 296, 1255, 1834, 1752, 695}));
  EXPECT_EQ(ot::limit_docs(4, 0), (std::vector<size_t>{0, 1, 2, 3}));
  EXPECT_EQ(ot::limit_docs(4, 9), (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(EvalRules, BlockGroupingAndEvalLoss) {
  // Groups of 2 rows: [1 2 3 | 4 5] -> 5 tokens -> blocks [1 2] [3 4], 5 dropped;
  // [6] alone is shorter than a block and stays; the empty last group gives nothing.
  std::vector<std::vector<int64_t>> rows{{1, 2, 3}, {4, 5}, {6}, {}, {}};
  auto blocks = ot::group_rows_into_blocks(rows, 2, 2);
  EXPECT_EQ(blocks, (std::vector<std::vector<int64_t>>{{1, 2}, {3, 4}, {6}}));
  EXPECT_EQ(ot::group_rows_into_blocks({{1, 2, 3, 4, 5}}, 2), (std::vector<std::vector<int64_t>>{{1, 2}, {3, 4}}));
  // Batch losses weighted by their number of blocks; NaN batches dropped.
  EXPECT_DOUBLE_EQ(ot::clm_eval_loss({1.0, std::nan(""), 3.0}, {2, 2, 1}), 5.0 / 3.0);
  EXPECT_TRUE(std::isnan(ot::clm_eval_loss({std::nan("")}, {1})));
  // HF rows: blank lines become "", others keep their "\n"; CRLF handled.
  EXPECT_EQ(ot::wikitext_rows(" = A = \r\n \r\n x\r\n"), (std::vector<std::string>{" = A = \n", "", " x\n"}));
}

TEST(EvalRules, RollingWindowsFollowTheHarnessExample) {
  // LM_EVAL 3.8.1, L = 4, N = 10: [EOT 0 1 2] -> 0..3; [3 4 5 6] -> 4..7; [5 6 7 8] -> 8..9.
  std::vector<int64_t> t{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto w = ot::rolling_windows(t, 99, 4);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].context, (std::vector<int64_t>{99}));
  EXPECT_EQ(w[0].continuation, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(w[1].context, (std::vector<int64_t>{3}));
  EXPECT_EQ(w[1].continuation, (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(w[2].context, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(w[2].continuation, (std::vector<int64_t>{8, 9}));
  EXPECT_TRUE(ot::rolling_windows({}, 99, 4).empty());
  auto w1 = ot::rolling_windows({5, 6}, 99, 4);
  ASSERT_EQ(w1.size(), 1u);
  EXPECT_EQ(w1[0].continuation, (std::vector<int64_t>{5, 6}));
}

TEST(EvalRules, WikitextMetrics) {
  auto m = ot::wikitext_metrics(-10.0, 5, 20);
  EXPECT_NEAR(m.word_perplexity, std::exp(2.0), 1e-12);
  EXPECT_NEAR(m.byte_perplexity, std::exp(0.5), 1e-12);
  EXPECT_NEAR(m.bits_per_byte, 0.5 / std::log(2.0), 1e-12);
  // len(re.split(r"\s+", s)): whitespace runs + 1, Unicode whitespace included.
  EXPECT_EQ(ot::harness_word_count(" a  b\n c "), 5);
  EXPECT_EQ(ot::harness_word_count(""), 1);
  EXPECT_EQ(ot::harness_word_count("a\xC2\xA0" "b"), 2);
  EXPECT_EQ(ot::harness_word_count("x\x1cy"), 2);
}

TEST(EvalRules, WikitextPageSplitting) {
  // A leading blank page is dropped; "= = B = =" is a sub-heading; the last page is kept.
  EXPECT_EQ(ot::wikitext_pages(" \n = A = \n x \n = = B = = \n y \n = C = \n z \n"),
            (std::vector<std::string>{" = A = \n x \n = = B = = \n y ", " = C = \n z \n"}));
  // A heading-only page is not blank; "= = = X = = =" is not top level.
  EXPECT_EQ(ot::wikitext_pages(" = A = \n = B = \n = = = X = = = \n w"),
            (std::vector<std::string>{" = A = ", " = B = \n = = = X = = = \n w"}));
  EXPECT_EQ(ot::wikitext_pages(""), (std::vector<std::string>{""}));
}

TEST(EvalRules, WikitextDetokenizer) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"the dog 's bone and cat 's toy", "the dog's bone and cat's toy"},
      {"Smiths ' house", "Smiths' house"},
      {"1 @,@ 000 @.@ 5 km , a @-@ b", "1,000.5 km, a-b"},
      {"a : b ; c . d ! e ? f , g", "a: b; c. d! e? f, g"},
      {"( hello world ) [ x ] { y }", "(hello world) [x] {y}"},
      {"\" a \" b \" c \"", "\"a\" b \"c\""},
      {"( a ( b ) c )", "(a ( b) c )"},
      {"( unclosed", "( unclosed"},
      {"= = = = H = = = =\n = = G = = \n = F =", "==== H ====\n== G ==\n= F ="},
      {"5 \xC2\xB0 C", "5\xC2\xB0" "C"},
      {"x \n y", "x\ny"},
      {"the N word", "the 1 word"},
      {"see /' 5/ and ' 7", "see /'[0-9]/ and' 7"},
      {"it ' s ( \xE3\x80\x80 wide\xC2\xA0)", "it ' s (wide)"},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(ot::wikitext_detokenizer(in), out) << in;
}

TEST(EvalRules, StoredWikitextTestFile) {
  const std::string text = ot::read_wikitext_raw(shared_path("data/corpora/wikitext-2-raw/wiki.test.raw"));
  EXPECT_EQ(text.find('\r'), std::string::npos);
  auto pages = ot::wikitext_pages(text);
  EXPECT_EQ(pages.size(), 62u);  // the harness's 62 test docs
  EXPECT_EQ(pages[0].substr(0, 20), " = Robert Boulter = ");
}

TEST(EvalRules, SettingsAndPrivacyGap) {
  EXPECT_EQ(ot::all_settings().size(), 5u);
  for (ot::Setting s : ot::all_settings()) EXPECT_EQ(ot::parse_setting(ot::setting_name(s)), s);
  EXPECT_EQ(ot::setting_name(ot::Setting::kFtEmulator), "ft_emulator");
  EXPECT_THROW(ot::parse_setting("plug-in"), ot::Error);
  std::vector<ot::TaskResult> plugin{{"piqa", 0, "acc", 0.745, 0.01, 1838}, {"wikitext", 1, "word_perplexity", 14.0, {}, 62},
                                     {"sciq", 0, "acc", 0.9, 0.01, 1000}};
  std::vector<ot::TaskResult> emu{{"piqa", 0, "acc", 0.716, 0.01, 1838}, {"wikitext", 1, "word_perplexity", 17.0, {}, 62}};
  auto gaps = ot::privacy_gap(plugin, emu);
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_NEAR(gaps[0].gap, 0.029, 1e-12);
  EXPECT_NEAR(gaps[1].gap, 3.0, 1e-12);  // lower perplexity for plug-in: positive gap
  EXPECT_NEAR(ot::mean_privacy_gap(gaps), 0.029, 1e-12);
  EXPECT_THROW(ot::mean_privacy_gap(gaps, "acc_norm"), ot::Error);
}

TEST(EvalRules, MakeTableAndJson) {
  std::vector<ot::TaskResult> r{{"arc_easy", 0, "acc", 0.5694, 0.0102, 2376},
                                {"arc_easy", 0, "acc_norm", 0.5, 0.0102, 2376},
                                {"wikitext", 1, "word_perplexity", 20.4412345, {}, 62}};
  const std::string expected =
      "|  Task  |Version|    Metric     | Value |   |Stderr|\n"
      "|--------|------:|---------------|------:|---|-----:|\n"
      "|arc_easy|      0|acc            | 0.5694|±  |0.0102|\n"
      "|        |       |acc_norm       | 0.5000|±  |0.0102|\n"
      "|wikitext|      1|word_perplexity|20.4412|   |      |\n";
  EXPECT_EQ(ot::make_table(r), expected);
  auto j = ot::results_json(r, {{"model", "m"}});
  EXPECT_EQ(j["results"]["arc_easy"]["acc_norm_stderr"], 0.0102);
  EXPECT_FALSE(j["results"]["wikitext"].contains("word_perplexity_stderr"));
  EXPECT_EQ(j["versions"]["wikitext"], 1);
  EXPECT_EQ(j["config"]["model"], "m");
}

TEST(EvalRules, TaskSourceErrors) {
  ot::test::TempDir tmp;
  ot::write_text_file_atomically(tmp.file("p.jsonl"), "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 1}\n{bad\n");
  try {
    ot::load_task("piqa", tmp.file("p.jsonl"));
    FAIL() << "expected an error";
  } catch (const ot::Error& e) {
    EXPECT_NE(std::string(e.what()).find("p.jsonl:2"), std::string::npos) << e.what();
  }
  ot::write_text_file_atomically(tmp.file("q.jsonl"), "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\", \"label\": 3}\n");
  EXPECT_THROW(ot::load_task("piqa", tmp.file("q.jsonl")), ot::Error);
  EXPECT_THROW(ot::load_task("hellaswag", tmp.file("q.jsonl")), ot::Error);
  auto r = run_cli("eval --model " + gpt2_dir() + " --task piqa");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("NAME=FILE"), std::string::npos) << r.err;
}

}  // namespace
