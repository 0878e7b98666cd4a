// offsite/efficiency.cpp: see efficiency.h.
#include "offsite/efficiency.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include <torch/torch.h>

#include <chrono>

#include "dist/context.h"
#include "model/flops.h"
#include "model/load.h"
#include "model/shapes.h"
#include "offsite/emulator.h"
#include "model/peft.h"
#include "train/optimizer.h"
#include "train/trainer.h"
#include "util/device.h"
#include "util/error.h"
#include "util/fs.h"
#include "train/loss_scaler.h"
#include "util/gpu.h"
#include "util/memory.h"

namespace ot {

nlohmann::json EfficiencyResult::to_json() const {
  return {{"method", method}, {"tokens_per_s", tokens_per_s}, {"peak_memory_mib", peak_memory_mib},
          {"peak_gpu_memory_mib", peak_gpu_memory_mib}, {"trainable_params", trainable_params},
          {"total_params", total_params}, {"ranks", ranks}, {"step_seconds", step_seconds}, {"flops_per_token", flops_per_token},
          {"mfu", mfu}, {"device", device}};
}

EfficiencyResult EfficiencyResult::from_json(const nlohmann::json& j) {
  EfficiencyResult r;
  r.method = j.at("method").get<std::string>();
  r.tokens_per_s = j.at("tokens_per_s").get<double>();
  r.peak_memory_mib = j.at("peak_memory_mib").get<double>();
  r.trainable_params = j.at("trainable_params").get<int64_t>();
  r.total_params = j.at("total_params").get<int64_t>();
  r.step_seconds = j.at("step_seconds").get<double>();
  r.ranks = j.at("ranks").get<int64_t>();
  r.peak_gpu_memory_mib = j.value("peak_gpu_memory_mib", 0.0);
  r.flops_per_token = j.value("flops_per_token", 0.0);
  r.mfu = j.value("mfu", 0.0);
  r.device = j.value("device", std::string("cpu"));
  return r;
}

EfficiencyResult run_efficiency_method(const std::string& method, const EfficiencyOptions& o) {
  const bool offsite = method == "ot" || method == "ot_lora";
  const bool lora = method == "ft_lora" || method == "ot_lora";
  OT_REQUIRE(offsite || method == "ft" || lora, "bench offsite: unknown method '", method,
             "' (expected ft, ft_lora, ot, ot_lora)");
  const int64_t ranks = dist::team().size();
  OT_REQUIRE(o.batch % ranks == 0, "bench offsite: a batch of ", o.batch, " sequences does not split over ", ranks,
             " ranks");
  const int64_t rank_batch = o.batch / ranks;
  torch::manual_seed(o.seed);
  LoadOptions lo;
  lo.device = o.device;
  DecoderLM model = build_model(o.config, lo);
  model->init_weights(0.02);
  check_precision(o.precision, o.device, model->dtype());
  std::vector<int64_t> train_blocks;
  if (offsite) {
    const int64_t n = o.config.num_layers, m = n - o.bottom - o.top;
    EmulatorOptions eo;
    eo.bottom = o.bottom;
    eo.top = o.top;
    eo.layers = o.emulator_layers > 0 ? o.emulator_layers : m;
    auto layout = make_layout(n, eo, select_middle_blocks(m, eo.layers, "uniform"));
    DecoderLM bundle = build_bundle(model, layout, eo);
    model = bundle;  // the full model is released here: the data owner never holds it
    for (int64_t j = 0; j < o.bottom; ++j) train_blocks.push_back(j);
    for (int64_t j = model->num_blocks() - o.top; j < model->num_blocks(); ++j) train_blocks.push_back(j);
  } else {
    for (int64_t j = 0; j < model->num_blocks(); ++j) train_blocks.push_back(j);
  }
  PeftOptions p;
  if (lora) {
    p.method = "lora";
    p.lora_rank = o.lora_rank;
    p.lora_alpha = o.lora_alpha;
    p.lora_dropout = o.lora_dropout;
    apply_peft(model, train_blocks, p);
  }
  EfficiencyResult r;
  r.method = method;
  // Full fine-tuning trains embeddings and head too; offsite keeps them frozen (paper).
  r.trainable_params = set_trainable(model, train_blocks, /*train_head=*/false, p);
  if (method == "ft")
    for (auto& q : model->parameters()) q.set_requires_grad(true);
  r.trainable_params = 0;
  std::vector<at::Tensor> params;
  for (auto& q : model->parameters())
    if (q.requires_grad()) {
      params.push_back(q);
      r.trainable_params += q.numel();
    }
  r.total_params = model->num_parameters(ModelPart::kAll);
  TrainerOptions to;  // the optimizer the stages train with, at the paper's fine-tuning rate
  to.lr = 1e-4;
  auto opt = make_adamw(params, to);
  model->train();
  model->set_activation_checkpointing(o.checkpoint_activations);
  r.flops_per_token = training_flops_per_token(model, o.seq_len);
  r.device = gpu::device_name(o.device);
  // Each rank its own sequences (random tokens: speed does not depend on them).
  torch::manual_seed(o.seed + 1 + uint64_t(dist::team().rank()));
  auto ids = torch::randint(0, o.config.vocab_size, {rank_batch, o.seq_len}, torch::kLong).to(o.device);
  std::unique_ptr<DynamicLossScaler> scaler;
  if (o.precision == Precision::kFp16) scaler = std::make_unique<DynamicLossScaler>();
  std::unique_ptr<dist::GradientAllReducer> reducer;
  if (ranks > 1) reducer = std::make_unique<dist::GradientAllReducer>(dist::communicator_for(o.device), params);
  // One training step as the trainer takes it (train/trainer.cpp: gradients averaged over the team,
  // clipped at the default norm, AdamW), without data loading.
  auto step = [&] {
    drop_gradients(*opt);
    at::Tensor loss;
    {
      AutocastGuard autocast(o.device, o.precision);
      loss = causal_lm_loss(model->forward(ids).logits, ids);
    }
    if (reducer) reducer->arm();  // gradient buckets are averaged while backward runs
    (scaler ? scaler->scale_loss(loss) : loss).backward();
    if (reducer) reducer->finish();
    const bool skip = scaler && scaler->unscale_and_check(params);
    if (!skip && to.clip_norm > 0) torch::nn::utils::clip_grad_norm_(params, to.clip_norm);  // as the trainer does
    if (!skip) opt->step();
    if (scaler) scaler->update(skip);
  };
  for (int64_t i = 0; i < o.warmup_steps; ++i) step();
  gpu::synchronize(o.device);
  gpu::reset_peak_memory(o.device);  // the peak of the timed steps (weights, optimizer state and activations)
  gpu::Timer timer(o.device);
  timer.start();
  for (int64_t i = 0; i < o.steps; ++i) step();
  timer.stop();
  const double secs = timer.seconds();
  r.step_seconds = secs / double(o.steps);
  r.tokens_per_s = double(rank_batch * ranks * o.seq_len * o.steps) / secs;
  r.ranks = ranks;
  r.peak_memory_mib = peak_rss_mib();
  r.peak_gpu_memory_mib = gpu::peak_memory_mib(o.device);
  const double peak = gpu::peak_flops(o.device, precision_dtype(o.precision));
  if (peak > 0) r.mfu = r.tokens_per_s * r.flops_per_token / peak;
  return r;
}

const std::vector<PaperEfficiency>& paper_efficiency_table() {
  static const std::vector<PaperEfficiency> t = {
      {"OPT-1.3B", "ft", 1316, 30458},   {"OPT-1.3B", "ft_lora", 3379, 12470},
      {"OPT-1.3B", "ot", 5207, 9336},    {"OPT-1.3B", "ot_lora", 8525, 6192},
      {"GPT2-XL", "ft", 957, 39922},     {"GPT2-XL", "ft_lora", 1992, 17113},
      {"GPT2-XL", "ot", 4905, 8966},     {"GPT2-XL", "ot_lora", 6257, 7155}};
  return t;
}

namespace {

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  OT_REQUIRE(n > 0, "bench: cannot locate the ot executable");
  return std::string(buf, static_cast<size_t>(n));
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// `mpirun -np N ` (or $OT_MPIRUN's launcher). Open MPI refuses root without its two consent
// variables; they mean nothing to other launchers.
std::string mpi_launch_prefix(int64_t ranks) {
  const char* launcher = std::getenv("OT_MPIRUN");
  std::string prefix = launcher && *launcher ? launcher : "mpirun";
  if (::geteuid() == 0) prefix = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + prefix;
  return prefix + " -np " + std::to_string(ranks) + " ";
}

}  // namespace

nlohmann::json efficiency_request_to_json(const EfficiencyRequest& r) {
  return {{"method", r.method},
          {"shape", r.shape},
          {"config_path", r.config_path},
          {"bottom", r.bottom},
          {"top", r.top},
          {"emulator_layers", r.emulator_layers},
          {"seq_len", r.seq_len},
          {"batch", r.batch},
          {"warmup_steps", r.warmup_steps},
          {"steps", r.steps},
          {"device", r.device},
          {"precision", r.precision},
          {"threads", r.threads},
          {"checkpoint_activations", r.checkpoint_activations},
          {"ranks", r.ranks}};
}

EfficiencyRequest efficiency_request_from_json(const nlohmann::json& j, const std::string& source) {
  OT_REQUIRE(j.is_object(), source, ": an efficiency request must be a JSON object");
  auto field = [&](const char* key, auto& out) {
    OT_REQUIRE(j.contains(key), source, ": the efficiency request has no '", key, "'");
    try {
      j.at(key).get_to(out);
    } catch (const nlohmann::json::exception&) {
      fail(source, ": efficiency request key '", key, "' has the wrong type (", j.at(key).dump(), ")");
    }
  };
  EfficiencyRequest r;
  field("method", r.method);
  field("shape", r.shape);
  field("config_path", r.config_path);
  field("bottom", r.bottom);
  field("top", r.top);
  field("emulator_layers", r.emulator_layers);
  field("seq_len", r.seq_len);
  field("batch", r.batch);
  field("warmup_steps", r.warmup_steps);
  field("steps", r.steps);
  field("device", r.device);
  field("precision", r.precision);
  field("threads", r.threads);
  field("checkpoint_activations", r.checkpoint_activations);
  field("ranks", r.ranks);
  OT_REQUIRE(r.ranks >= 1, source, ": efficiency request key 'ranks' must be at least 1, got ", r.ranks);
  return r;
}

EfficiencyOptions efficiency_options_of(const EfficiencyRequest& r) {
  nlohmann::json cfg;
  if (!r.config_path.empty()) {
    try {
      cfg = nlohmann::json::parse(read_text_file(r.config_path));
    } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number too large
      fail(r.config_path, ": not valid JSON (", e.what(), ")");
    }
  } else {
    cfg = named_shape(r.shape);
  }
  EfficiencyOptions eo;
  eo.config = parse_model_config(cfg, r.config_path.empty() ? "--shape " + r.shape : r.config_path);
  eo.device = parse_device(r.device);
  eo.precision = parse_precision(r.precision);
  eo.checkpoint_activations = r.checkpoint_activations;
  eo.seq_len = r.seq_len;
  eo.batch = r.batch;
  eo.warmup_steps = r.warmup_steps;
  eo.steps = r.steps;
  eo.bottom = r.bottom;
  eo.top = r.top;
  const int64_t m = eo.config.num_layers - eo.bottom - eo.top;
  eo.emulator_layers = r.emulator_layers > 0 ? r.emulator_layers : std::max<int64_t>(1, (m * 2 + 2) / 5);
  return eo;
}

EfficiencyResult run_efficiency_method_in_child(const EfficiencyRequest& r) {
  // The request goes in a file of its own: the child's command line stays the same for every method.
  std::string request_path = (std::filesystem::temp_directory_path() / "ot-efficiency-XXXXXX").string();
  const int fd = ::mkstemp(request_path.data());
  OT_REQUIRE(fd >= 0, "bench: cannot create a request file in ", std::filesystem::temp_directory_path().string(), " (",
             std::strerror(errno), ")");
  ::close(fd);
  struct RemoveOnExit {
    std::string path;
    ~RemoveOnExit() { std::remove(path.c_str()); }
  } remove_request{request_path};
  write_text_file_atomically(request_path, efficiency_request_to_json(r).dump() + "\n");
  std::string cmd = shell_quote(self_exe()) + " bench offsite --request " + shell_quote(request_path);
  if (r.ranks > 1) cmd = mpi_launch_prefix(r.ranks) + cmd;
  FILE* p = ::popen(cmd.c_str(), "r");
  OT_REQUIRE(p != nullptr, "bench: cannot start ", cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  OT_REQUIRE(code == 0, "bench: method ", r.method, " failed (exit code ", code,
             code == 137 ? ": killed, most likely out of memory; try a smaller model shape or leave this method out)" : ")");
  const size_t brace = out.rfind('{');
  OT_REQUIRE(brace != std::string::npos, "bench: method ", r.method, " printed no result");
  return EfficiencyResult::from_json(nlohmann::json::parse(out.substr(brace)));
}

}  // namespace ot
