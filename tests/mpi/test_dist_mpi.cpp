// tests/mpi/test_dist_mpi.cpp: data parallelism over real MPI ranks (run under
// `mpirun -np 2`, CTest label mpi). All-reduce and broadcast over odd sizes and dtypes;
// fused gradient buckets (several buckets, with and without overlap with backward) average
// exactly; the distributed sampler's shares are disjoint and cover the data; and two ranks
// with per-rank batch b end with the same parameters as one process with batch 2b
// (fp32, atol 1e-5), which rank 0 trains side by side in the same run. Harness scoring
// sharded over the ranks returns every request's log-likelihood bit for bit as one rank does.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <random>
#include <set>

#include "data/sampler.h"
#include "dist/communicator.h"
#include "dist/context.h"
#include "dist/fusion_buffer.h"
#include "dist/mpi_operations.h"
#include "dist/mpi_runtime.h"
#include "eval/loglikelihood.h"
#include "model/decoder_lm.h"
#include "model/load.h"
#include "test_support.h"
#include "token_blocks.h"
#include "train/trainer.h"

namespace {

ot::dist::Communicator& world() {
  static std::shared_ptr<ot::dist::Communicator> c = ot::dist::make_mpi_communicator(ot::dist::MpiGroup::world());
  return *c;
}

TEST(MpiAllReduce, SumsOddSizesAndDtypes) {
  auto& c = world();
  ASSERT_GE(c.size(), 2) << "run under mpirun -np 2 or more";
  const double R = c.size();
  for (int64_t n : {1, 3, 17, 1000, 65537}) {
    for (auto dt : {at::kFloat, at::kDouble, at::kLong, at::kInt}) {
      // rank r holds (r + 1) * (i % 13): the sum is (i % 13) * R (R + 1) / 2, exact in every dtype.
      at::Tensor t = (at::arange(n, at::kLong) % 13 * (c.rank() + 1)).to(dt);
      c.all_reduce_sum(t);
      at::Tensor want = (at::arange(n, at::kLong) % 13).to(at::kDouble) * (R * (R + 1) / 2);
      EXPECT_TRUE(at::equal(t.to(at::kDouble), want)) << "n=" << n << " dtype=" << dt;
    }
  }
  at::Tensor h = at::full({5}, c.rank() + 1.0, at::kBFloat16);  // staged through float32
  c.all_reduce_sum(h);
  EXPECT_TRUE(at::equal(h.to(at::kDouble), at::full({5}, R * (R + 1) / 2, at::kDouble)));
  const std::vector<double> v = c.all_reduce_sum({1.0, double(c.rank())});
  EXPECT_EQ(v[0], R);
  EXPECT_EQ(v[1], R * (R - 1) / 2);
  EXPECT_EQ(c.all_reduce_max(double(c.rank())), R - 1);
}

TEST(MpiBroadcast, CopiesRootBitsAnyDtype) {
  auto& c = world();
  for (auto dt : {at::kFloat, at::kBFloat16, at::kLong}) {
    torch::manual_seed(100 + c.rank());  // every rank starts from different values
    at::Tensor t = at::randn({7, 3}).to(dt);
    c.broadcast(t, 0);
    torch::manual_seed(100);
    EXPECT_TRUE(at::equal(t, at::randn({7, 3}).to(dt))) << dt;
  }
}

// Parameters of odd sizes, several buckets; gradients from a real backward whose values
// differ per rank: after finish() every rank holds the mean.
void check_buckets(bool overlap) {
  auto& c = world();
  const std::vector<int64_t> sizes = {3, 50, 1, 129, 7, 1000};
  std::vector<at::Tensor> params;
  for (int64_t n : sizes) params.push_back(at::ones({n}).requires_grad_(true));
  ot::dist::BucketOptions o;
  o.bucket_bytes = 600;  // ~150 floats: several buckets, and the 1000-float tensor alone
  o.overlap = overlap;
  ot::dist::GradientAllReducer r(c, params, o);
  // Reverse order, 600-byte buckets: {1000 floats alone}, {7, 129, 1}, {50, 3}.
  EXPECT_EQ(r.bucket_sizes(), (std::vector<int64_t>{1000, 137, 53}));
  for (int step = 0; step < 2; ++step) {
    for (auto& p : params) p.mutable_grad() = at::Tensor();
    r.arm();
    at::Tensor loss = at::zeros({});
    for (size_t k = 0; k < params.size(); ++k) {
      // d loss / d p_k[i] = (rank + 1) * (k + 1) * (i % 5 + 1) + step
      at::Tensor w = (at::arange(sizes[k]) % 5 + 1) * double((c.rank() + 1) * (k + 1)) + step;
      loss = loss + (params[k] * w).sum();
    }
    loss.backward();
    r.finish();
    const double mean_rank_factor = (c.size() + 1) / 2.0;  // mean of (rank + 1)
    for (size_t k = 0; k < params.size(); ++k) {
      at::Tensor want = (at::arange(sizes[k]) % 5 + 1) * (mean_rank_factor * double(k + 1)) + step;
      EXPECT_TRUE(at::allclose(params[k].grad(), want, 0, 1e-6)) << "param " << k << " step " << step;
    }
  }
  if (overlap) EXPECT_GT(r.overlapped_buckets(), 0) << "buckets should start during backward";
  else EXPECT_EQ(r.overlapped_buckets(), 0);
}

TEST(GradientBuckets, AverageAcrossRanksWithOverlap) { check_buckets(true); }
TEST(GradientBuckets, AverageAcrossRanksAfterBackward) { check_buckets(false); }

TEST(DistributedSampler, SharesAreDisjointAndCoverEveryBatch) {
  auto& c = world();
  for (int64_t n : {23, 24, 25, 7}) {
    ot::SamplerOptions o;
    o.num_examples = n;
    o.batch_size = 3;
    o.seed = 11;
    o.rank = c.rank();
    o.world_size = c.size();
    ot::EpochSampler s(o);
    ot::SamplerOptions one = o;
    one.rank = 0;
    one.world_size = 1;
    one.batch_size = o.batch_size * c.size();
    ot::EpochSampler single(one);
    for (int64_t b = 0; b < s.batches_per_epoch(); ++b) {
      const std::vector<int64_t> mine = s.batch(0, b);
      EXPECT_FALSE(mine.empty()) << "every rank has a share of every batch";
      at::Tensor counts = at::zeros({n}, at::kLong);
      for (int64_t i : mine) counts[i] += 1;
      c.all_reduce_sum(counts);
      // The union of the shares is exactly the single-process batch of size world * b.
      at::Tensor want = at::zeros({n}, at::kLong);
      for (int64_t i : single.batch(0, b)) want[i] += 1;
      EXPECT_TRUE(at::equal(counts, want)) << "n=" << n << " batch " << b;
    }
  }
}

ot::NamedTensors trainable(ot::DecoderLM& m) {
  ot::NamedTensors out;
  for (auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  return out;
}

// batch: examples per rank per micro-batch, or, when global is set, per optimizer step over
// the team (global_batch_size; batch_size is then set to a value that must be ignored).
ot::TrainResult train(ot::DecoderLM& m, const ot::BatchSource& data, int64_t batch, ot::dist::Communicator* comm,
                      bool overlap, int64_t steps, bool global = false) {
  for (auto& p : m->parameters()) p.set_requires_grad(true);
  ot::TrainerOptions o;
  o.lr = 2e-3;
  o.batch_size = global ? 7 : batch;
  if (global) o.global_batch_size = batch;
  o.grad_accum = 2;
  o.max_steps = steps;
  o.schedule = "cosine";
  o.warmup_steps = 2;
  o.weight_decay = 0.01;
  o.seed = 3;
  // The gradient of the attention key bias is zero in exact arithmetic (softmax ignores a
  // shift shared by all keys), so both runs see only round-off there, which AdamW with
  // eps 1e-8 would scale up to full-size steps of arbitrary sign. eps 1e-6 keeps round-off
  // at round-off size; every other gradient is far above it.
  o.eps = 1e-6;
  ot::Trainer t(trainable(m), o);
  ot::dist::BucketOptions b;
  b.bucket_bytes = 32 << 10;  // several buckets for this small model
  b.overlap = overlap;
  if (comm) t.set_data_parallel(*comm, b);
  t.set_mode_callback([&](bool on) { m->train(on); });
  return t.fit(data, [&](const ot::Batch& bt, ot::Metrics&) {
    return ot::causal_lm_loss(m->forward(bt.input_ids).logits, bt.labels);
  });
}

// Two ranks with per-rank batch 2 against one process with batch 4, same data order,
// grad_accum 2, AdamW, cosine schedule with warmup, clipping. In float32 the two differ by
// round-off, which training amplifies step by step (a ReLU whose input is near 0 may go
// either way); in float64 round-off is 1e-16 and the weights must agree to 1e-10.
// With `global`, both sides are given global_batch_size 8 instead of their per-rank batches.
void check_equivalence(bool overlap, at::ScalarType dtype, int64_t steps, double atol, bool global = false) {
  auto& c = world();
  at::set_num_threads(1);
  const std::string fixture = ot::test::shared_path("fixtures/hf-parity/opt");
  auto load = [&] {
    ot::DecoderLM m = ot::load_model(fixture);
    m->to(dtype);
    return m;
  };
  ot::test::TokenBlocks data(40, 16, 1000, 9);
  ot::DecoderLM dp = load();
  if (c.rank() != 0) {  // different starting weights elsewhere: the broadcast must fix them
    torch::NoGradGuard ng;
    for (auto& p : dp->parameters()) p.add_(0.5);
  }
  const ot::TrainResult r = global ? train(dp, data, 8, &c, overlap, steps, true) : train(dp, data, 2, &c, overlap, steps);
  EXPECT_EQ(r.steps, steps);
  // Every rank ends with the same weights...
  for (auto& p : dp->named_parameters()) {
    at::Tensor mine = p.value().detach().clone(), root = mine.clone();
    c.broadcast(root, 0);
    EXPECT_TRUE(at::equal(mine, root)) << p.key() << " differs from rank 0's";
  }
  if (c.rank() != 0 || c.size() != 2) return;
  // ...and they are those of one process with twice the batch.
  ot::DecoderLM single = load();
  if (global) train(single, data, 8, nullptr, overlap, steps, true);
  else train(single, data, 4, nullptr, overlap, steps);
  ot::DecoderLM start = load();
  auto a = dp->named_parameters(), b = single->named_parameters(), s = start->named_parameters();
  double worst = 0, moved = 0;
  std::string where;
  for (const auto& p : a) {
    const double d = (p.value() - b[p.key()]).abs().max().item<double>();
    if (d > worst) where = p.key();
    worst = std::max(worst, d);
    moved = std::max(moved, (p.value() - s[p.key()]).abs().max().item<double>());
  }
  EXPECT_GT(moved, 100 * atol) << "training must move the weights far more than the tolerance";
  EXPECT_LE(worst, atol) << "largest difference to single-process training, in " << where;
}

TEST(DataParallel, TwoRanksEqualOneRankWithTwiceTheBatchFloat32) { check_equivalence(true, at::kFloat, 4, 1e-5); }
TEST(DataParallel, TwoRanksEqualOneRankWithoutOverlapFloat32) { check_equivalence(false, at::kFloat, 4, 1e-5); }
TEST(DataParallel, TwoRanksEqualOneRankWithTwiceTheBatchFloat64) { check_equivalence(true, at::kDouble, 12, 1e-10); }
// global_batch_size 8 with grad_accum 2: micro-batches of 2 on each of 2 ranks, of 4 alone.
TEST(DataParallel, GlobalBatchSizeTrainsTheSameOnAnyTeamFloat64) {
  check_equivalence(true, at::kDouble, 12, 1e-10, true);
}

// Requests of ragged lengths (some repeated, some longer than the window) in batches of 3,
// sharded by batches over the ranks: each rank returns all results, equal to the unsharded ones.
TEST(ShardedEvaluation, LoglikelihoodEqualsOneRankBitForBit) {
  auto& c = world();
  at::set_num_threads(1);
  ot::DecoderLM m = ot::load_model(ot::test::shared_path("fixtures/hf-parity/opt"));
  const int64_t vocab = m->config().vocab_size;
  std::mt19937 gen(11);  // the same requests on every rank
  std::vector<ot::TokenRequest> reqs;
  for (int i = 0; i < 23; ++i) {
    ot::TokenRequest r;
    const int ctx = 1 + static_cast<int>(gen() % 40), cont = 1 + static_cast<int>(gen() % 5);
    for (int t = 0; t < ctx; ++t) r.context.push_back(static_cast<int64_t>(gen() % vocab));
    for (int t = 0; t < cont; ++t) r.continuation.push_back(static_cast<int64_t>(gen() % vocab));
    reqs.push_back(r);
    if (i % 7 == 0) reqs.push_back(r);  // duplicates collapse before sharding
  }
  ot::LLOptions o;
  o.batch_size = 3;
  o.max_length = 32;
  o.progress = false;
  const std::vector<ot::LLResult> alone = ot::loglikelihood_tokens(m, reqs, o);
  o.comm = &c;
  const std::vector<ot::LLResult> shared = ot::loglikelihood_tokens(m, reqs, o);
  ASSERT_EQ(shared.size(), alone.size());
  for (size_t i = 0; i < alone.size(); ++i) {
    EXPECT_EQ(shared[i].loglikelihood, alone[i].loglikelihood) << "request " << i;
    EXPECT_EQ(shared[i].is_greedy, alone[i].is_greedy) << "request " << i;
    EXPECT_LT(alone[i].loglikelihood, 0.0);
  }
  // Every rank holds the same results, whichever rank computed them.
  at::Tensor mine = at::empty({static_cast<int64_t>(shared.size())}, at::kDouble);
  for (size_t i = 0; i < shared.size(); ++i) mine[static_cast<int64_t>(i)] = shared[i].loglikelihood;
  at::Tensor root = mine.clone();
  c.broadcast(root, 0);
  EXPECT_TRUE(at::equal(mine, root));
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ot::dist::init_mpi();
  const int rank = ot::dist::MpiGroup::world()->rank();
  if (rank != 0) {  // one report: rank 0's (any rank's failure still fails the run)
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  // The job fails if any rank failed.
  const double worst = world().all_reduce_max(double(rc));
  return worst > 0 ? 1 : 0;
}
