// tests/unit/test_eval_sharding.cpp: how evaluation splits batches over ranks
// (eval/sharding.h): every item in exactly one whole batch of exactly one rank, in order; the
// reduction only when more than one rank shares the work; and the mean validation loss
// (eval/evaluate.h) as the token mean of causal_lm_loss, the same whether one process or
// several simulated ranks compute it.
#include <torch/torch.h>

#include <cmath>
#include <functional>

#include "dist/communicator.h"
#include "eval/evaluate.h"
#include "eval/perplexity.h"
#include "eval/sharding.h"
#include "model/load.h"
#include "test_support.h"
#include "token_blocks.h"
#include "util/error.h"
#include "util/progress.h"

namespace {

// One rank of a simulated team: all_reduce_sum adds what `others` says the other ranks hold
// (nothing by default) and keeps what this rank sent.
class SimulatedRank final : public ot::dist::Communicator {
 public:
  SimulatedRank(int rank, int size) : rank_(rank), size_(size) {}
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "simulated"; }
  std::unique_ptr<ot::dist::Work> start_all_reduce_sum(const at::Tensor&) override {
    ADD_FAILURE() << "evaluation reduces host values only";
    return nullptr;
  }
  void broadcast(const at::Tensor&, int) override { ADD_FAILURE() << "evaluation broadcasts nothing"; }
  double all_reduce_max(double value) override { return value; }
  void barrier() override {}
  std::vector<double> all_reduce_sum(const std::vector<double>& values) override {
    sent.push_back(values);
    std::vector<double> sum = values;
    if (others) {
      const std::vector<double> rest = others(values.size());
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += rest[i];
    }
    return sum;
  }
  std::function<std::vector<double>(size_t)> others;
  std::vector<std::vector<double>> sent;

 private:
  int rank_, size_;
};

std::vector<std::pair<int64_t, int64_t>> own_batches(const ot::BatchShards& s) {
  std::vector<std::pair<int64_t, int64_t>> out;
  s.for_each_own_batch([&](int64_t b, int64_t begin, int64_t end) {
    EXPECT_EQ(s.items_of(b), std::make_pair(begin, end));
    out.emplace_back(begin, end);
  });
  return out;
}

TEST(EvalSharding, OneRankTakesEveryBatchInOrder) {
  ot::dist::LocalCommunicator local;
  for (ot::dist::Communicator* comm : {static_cast<ot::dist::Communicator*>(&local),
                                       static_cast<ot::dist::Communicator*>(nullptr)}) {
    const ot::BatchShards s(10, 3, comm);
    EXPECT_FALSE(s.sharded());
    EXPECT_EQ(s.num_items(), 10);
    EXPECT_EQ(s.num_batches(), 4);
    EXPECT_EQ(s.first_batch(), 0);
    EXPECT_EQ(s.end_batch(), 4);
    EXPECT_EQ(own_batches(s), (std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {3, 6}, {6, 9}, {9, 10}}));
    EXPECT_EQ(s.own_items(), std::make_pair(int64_t{0}, int64_t{10}));
    EXPECT_EQ(s.sum_over_ranks({1.5, -2.0}), (std::vector<double>{1.5, -2.0}));
  }
  SimulatedRank alone(0, 1);
  const ot::BatchShards s(5, 2, &alone);
  EXPECT_FALSE(s.sharded()) << "a team of one needs no reduction";
  s.sum_over_ranks({1.0});
  EXPECT_TRUE(alone.sent.empty());
  EXPECT_EQ(ot::BatchShards(0, 4, nullptr).num_batches(), 0);
}

TEST(EvalSharding, EveryItemInOneWholeBatchOfOneRankInOrder) {
  for (int size : {2, 3, 5}) {
    for (int64_t n : {0, 1, 4, 7, 23}) {
      for (int64_t batch : {1, 3, 8}) {
        std::vector<int64_t> seen;
        int64_t batches = 0;
        for (int rank = 0; rank < size; ++rank) {
          SimulatedRank comm(rank, size);
          const ot::BatchShards s(n, batch, &comm);
          EXPECT_TRUE(s.sharded());
          EXPECT_EQ(s.num_batches(), (n + batch - 1) / batch);
          const auto mine = own_batches(s);
          batches += static_cast<int64_t>(mine.size());
          for (const auto& [begin, end] : mine) {
            EXPECT_EQ(begin % batch, 0) << "batches start where a single process starts them";
            EXPECT_TRUE(end - begin == batch || end == n) << "only the last batch is short";
            for (int64_t i = begin; i < end; ++i) seen.push_back(i);
          }
          const auto [own_begin, own_end] = s.own_items();
          EXPECT_EQ(own_end - own_begin, mine.empty() ? 0 : mine.back().second - mine.front().first);
          if (!mine.empty()) {
            EXPECT_EQ(own_begin, mine.front().first);
          }
        }
        std::vector<int64_t> all(static_cast<size_t>(n));
        for (int64_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
        EXPECT_EQ(seen, all) << n << " items, batch " << batch << ", " << size << " ranks";
        EXPECT_EQ(batches, (n + batch - 1) / batch);
      }
    }
  }
}

TEST(EvalSharding, SumsOverRanksWhenShared) {
  SimulatedRank comm(1, 2);
  comm.others = [](size_t n) { return std::vector<double>(n, 10.0); };
  const ot::BatchShards s(4, 1, &comm);
  EXPECT_EQ(s.first_batch(), 2);
  EXPECT_EQ(s.end_batch(), 4);
  EXPECT_EQ(s.sum_over_ranks({1.0, 2.0}), (std::vector<double>{11.0, 12.0}));
  ASSERT_EQ(comm.sent.size(), 1u);
  EXPECT_THROW(ot::BatchShards(4, 0, &comm), ot::Error);
}

// ---- the validation loss and the block perplexity on the GPT-2 fixture ----

class EvalShardingGpt2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ot::ProgressBar::set_enabled(false);
    model_ = new ot::DecoderLM(ot::load_model(ot::test::shared_path("fixtures/hf-parity/gpt2")));
  }
  static void TearDownTestSuite() { delete model_; }
  static ot::DecoderLM* model_;
};
ot::DecoderLM* EvalShardingGpt2::model_ = nullptr;

// Runs `fn` as rank 1 of 2, then as rank 0 of 2 with rank 1's sums added in: what rank 0
// of a real team would return. (Rank 1's own result is dropped; its stand-in for rank 0's
// sums is only there to keep it from dividing by zero when it has no batch.)
template <class Fn>
auto as_two_ranks(Fn&& fn) {
  SimulatedRank second(1, 2);
  second.others = [](size_t n) { return std::vector<double>(n, 1.0); };
  fn(second);
  SimulatedRank first(0, 2);
  size_t call = 0;
  first.others = [&](size_t n) {
    EXPECT_LT(call, second.sent.size());
    std::vector<double> v = second.sent.at(call++);
    EXPECT_EQ(v.size(), n);
    return v;
  };
  return fn(first);
}

TEST_F(EvalShardingGpt2, MeanLossIsTheTokenMeanOfCausalLmLoss) {
  ot::test::TokenBlocks data(5, 12, 1000, 7);
  std::vector<int64_t> all{0, 1, 2, 3, 4};
  ot::Batch whole = data.batch(all);
  double expected = 0.0;
  {
    torch::NoGradGuard ng;
    expected = ot::causal_lm_loss((*model_)->forward(whole.input_ids).logits, whole.labels).item<double>();
  }
  ot::dist::LocalCommunicator local;
  for (int64_t batch : {1, 2, 5}) {
    EXPECT_NEAR(ot::mean_loss(*model_, data, batch, local), expected, 1e-5) << "batch " << batch;
    EXPECT_NEAR(as_two_ranks([&](ot::dist::Communicator& c) { return ot::mean_loss(*model_, data, batch, c); }),
                expected, 1e-5)
        << "two ranks, batch " << batch;
  }
  // The first examples only.
  ot::Batch first3 = data.batch({0, 1, 2});
  torch::NoGradGuard ng;
  const double first = ot::causal_lm_loss((*model_)->forward(first3.input_ids).logits, first3.labels).item<double>();
  EXPECT_NEAR(ot::mean_loss(*model_, data, 2, local, 3), first, 1e-5);
}

TEST_F(EvalShardingGpt2, BlockPerplexityOverTwoRanksEqualsOneProcess) {
  std::vector<std::vector<int64_t>> blocks;
  ot::test::TokenBlocks data(5, 16, 1000, 11);
  for (int64_t i = 0; i < 5; ++i) {
    at::Tensor row = data.batch({i}).input_ids[0];
    blocks.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  }
  ot::ClmPerplexityOptions o;
  o.batch_size = 2;
  const ot::ClmPerplexity alone = ot::clm_perplexity(*model_, blocks, o);
  const ot::ClmPerplexity shared = as_two_ranks([&](ot::dist::Communicator& c) {
    ot::ClmPerplexityOptions so = o;
    so.comm = &c;
    return ot::clm_perplexity(*model_, blocks, so);
  });
  EXPECT_NEAR(shared.loss, alone.loss, 1e-12);
  EXPECT_EQ(shared.predictions, alone.predictions);
  EXPECT_EQ(shared.blocks, alone.blocks);
}

}  // namespace
