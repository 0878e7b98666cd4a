// experiment/runner.cpp: see runner.h.
#include "experiment/runner.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "checkpoint/hf_checkpoint.h"
#include "data/brown.h"
#include "data/tasks.h"
#include "dist/context.h"
#include "eval/settings.h"
#include "experiment/jobs.h"
#include "experiment/schema.h"
#include "model/load.h"
#include "offsite/adapter.h"
#include "offsite/efficiency.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "util/device.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/memory.h"
#include "util/signals.h"

namespace ot::experiment {

namespace {

namespace fs = std::filesystem;

std::string hex(uint64_t h) { return hex_digits(h, 12); }

std::string section_text(const Config& c, const std::string& key) {
  const toml::node* n = get_dotted(c.table, key);
  if (!n) return "";
  std::ostringstream os;
  os << toml::toml_formatter(*n, toml::format_flags::none);
  return os.str();
}

// A file's identity for cache keys: a hash of its contents, so that the same text reached by
// another path (a relative vs an absolute $OT_BROWN, another work_dir) still hits the cache.
std::string content_id(const std::string& path) {
  static std::map<std::string, std::string> memo;  // path -> id, per process
  auto it = memo.find(path);
  if (it != memo.end()) return it->second;
  const std::string id = file_exists(path) ? hex_digits(fnv1a(read_text_file(path))) : "missing:" + path;
  memo[path] = id;
  return id;
}

nlohmann::json toml_to_json(const toml::table& t) {
  std::ostringstream os;
  os << toml::json_formatter(t);
  return nlohmann::json::parse(os.str());
}

// An exclusive advisory lock (flock) on `path`, held while the object lives.
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    OT_REQUIRE(fd_ >= 0, path, ": cannot create the lock file (", std::strerror(errno), ")");
    while (::flock(fd_, LOCK_EX) != 0) OT_REQUIRE(errno == EINTR, path, ": cannot lock (", std::strerror(errno), ")");
  }
  ~FileLock() { ::close(fd_); }  // closing releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

// A run's claim: an exclusive flock taken without waiting (held() false: another process
// holds it). The file stays (removing it would let two processes lock two different files);
// the kernel drops the lock when the holder exits or is killed, so no claim goes stale.
class RunClaim {
 public:
  explicit RunClaim(const std::string& path) : fd_(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    OT_REQUIRE(fd_ >= 0, path, ": cannot create the run's claim file (", std::strerror(errno), ")");
    int rc;
    while ((rc = ::flock(fd_, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR) {
    }
    OT_REQUIRE(rc == 0 || errno == EWOULDBLOCK, path, ": cannot lock the run's claim file (", std::strerror(errno), ")");
    held_ = rc == 0;
  }
  ~RunClaim() { ::close(fd_); }
  RunClaim(const RunClaim&) = delete;
  RunClaim& operator=(const RunClaim&) = delete;
  bool held() const { return held_; }

 private:
  int fd_;
  bool held_ = false;
};

// Everything one run needs, resolved once.
class Run {
 public:
  Run(const PlannedRun& plan, results::RunRecorder* rec) : p_(plan), c_(plan.config), rec_(rec) {
    work_ = c_.str("experiment.work_dir");
    run_dir_ = path_join(path_join(path_join(work_, "runs"), c_.str("experiment.name")), p_.run_id);
    cache_ = path_join(work_, "token-cache");
    load_.device = parse_device(c_.str("runtime.device"), "runtime.device");
    load_.dtype = parse_dtype(c_.str("runtime.dtype"), "runtime.dtype");
    precision_ = parse_precision(c_.str("runtime.precision"), "runtime.precision");
    try {
      check_precision(precision_, load_.device, load_.dtype, "runtime.precision");
    } catch (const Error& e) {
      fail(e.what(), c_.where("runtime.precision"));
    }
    seed_ = static_cast<uint64_t>(c_.integer("experiment.seed"));
  }

  // resume: continue an interrupted attempt (its finished stages and saved trainer states
  // stay); otherwise the run's work directory starts clean (shared caches stay).
  void execute(bool resume) {
    if (dist::is_writer() && !(resume && dir_exists(run_dir_))) {
      fs::remove_all(run_dir_);
      fs::create_directories(run_dir_);
    }
    // Shared caches (texts, tokenizer) are made by rank 0 first; the others then find them.
    if (dist::is_writer()) prepare_shared_inputs();
    dist::host_communicator().barrier();
    prepare_shared_inputs();
    const std::string recipe = c_.str("experiment.recipe");
    if (recipe == "pretrain") pretrain_recipe();
    else if (recipe == "distill") distill_recipe();
    else if (recipe == "finetune") finetune_recipe();
    else if (recipe == "eval") eval_recipe();
    else if (recipe == "efficiency") efficiency_recipe();
    else offsite_recipe();
  }

 private:
  // ---- data, tokenizer, model ----------------------------------------------------------

  void prepare_shared_inputs() {
    if (const toml::table* data = c_.table_at("data"))
      for (const auto& [name, source] : *data) text_path(std::string(name.str()));
    tokenizer();
  }

  // A stage's output directory appears whole (written under a temporary name, then renamed
  // by rank 0), so its existence says the stage is done: a resumed run skips it.
  template <class Fn>
  void stage(const std::string& out, const std::string& what, Fn&& fn) {
    if (dir_exists(out)) {
      if (dist::is_writer()) std::cerr << what << ": done in an earlier attempt (" << out << ")\n";
      return;
    }
    torch::manual_seed(seed_);  // each stage draws the same numbers whether or not earlier ones ran in this process
    const std::string partial = out + ".partial";
    if (dist::is_writer() && dir_exists(partial)) fs::remove_all(partial);
    dist::host_communicator().barrier();
    fn(partial);
    // The stage's records (efficiency, per-rank throughput) reach the run file before the
    // stage counts as done: a later attempt skips the stage and keeps only what is on disk.
    if (rec_) rec_->flush();
    if (dist::is_writer()) fs::rename(partial, out);
    dist::host_communicator().barrier();
  }

  // The text file of data source `name` (a Brown selection is written once under work_dir/data).
  std::string text_path(const std::string& name) {
    auto it = texts_.find(name);
    if (it != texts_.end()) return it->second;
    const std::string key = "data." + name;
    std::string path = c_.str(key + ".path");
    if (path.empty()) {
      auto letters = [&](const std::string& k) {
        std::string list;
        for (const std::string& g : c_.strings(k)) list += (list.empty() ? "" : ",") + g;
        return list.empty() ? std::string() : parse_genre_letters(list, k + c_.where(k));
      };
      BrownSelection sel;
      sel.genres = letters(key + ".genres");
      sel.exclude_genres = letters(key + ".exclude_genres");
      sel.split = parse_brown_split(c_.str(key + ".split"));
      sel.validation_fraction = c_.number(key + ".validation_fraction");
      sel.test_fraction = c_.number(key + ".test_fraction");
      const std::string dir = c_.str(key + ".brown");
      const std::string id = hex(fnv1a(section_text(c_, key) + "|" + content_id(path_join(dir, "cats.txt"))));
      path = path_join(path_join(work_, "data"), name + "-" + id + ".txt");
      if (!file_exists(path)) {
        fs::create_directories(path_join(work_, "data"));
        try {
          BrownTextStats t = write_brown_text(select_brown(load_brown(dir), sel), path);
          std::cerr << "data." << name << ": " << t.files << " Brown files, " << t.paragraphs << " paragraphs, "
                    << t.bytes << " bytes -> " << path << "\n";
        } catch (const Error& e) {
          fail(key, c_.where(key), ": ", e.what());
        }
      }
    } else {
      OT_REQUIRE(file_exists(path), key, ".path: '", path, "' does not exist", c_.where(key + ".path"));
    }
    texts_[name] = path;
    return path;
  }

  CorpusSpec corpus(const std::string& name, int64_t block_size, int64_t max_blocks = 0) {
    return CorpusSpec{text_path(name), c_.str("data." + name + ".text_field"), block_size, max_blocks};
  }

  // The tokenizer path for jobs ("" = the model's own).
  std::string tokenizer() {
    if (tokenizer_ready_) return tokenizer_;
    tokenizer_ready_ = true;
    tokenizer_ = c_.str("tokenizer.path");
    const std::string train = c_.str("tokenizer.train_data");
    if (!train.empty()) {
      OT_REQUIRE(tokenizer_.empty(), "tokenizer: give `path` or `train_data`, not both", c_.where("tokenizer"));
      const std::string text = text_path(train);
      const std::string id = hex(fnv1a(section_text(c_, "tokenizer") + "|" + content_id(text)));
      tokenizer_ = path_join(path_join(work_, "tokenizers"), id);
      // Runs started at once train it once: one holds the lock, the others then find it. Under
      // the lock, staging directories are those of killed processes: removed.
      std::unique_ptr<FileLock> lock;
      if (dist::is_writer()) {
        fs::create_directories(path_join(work_, "tokenizers"));
        lock = std::make_unique<FileLock>(tokenizer_ + ".lock");
        const std::string stale = fs::path(tokenizer_).filename().string() + ".tmp-";
        for (const auto& e : fs::directory_iterator(path_join(work_, "tokenizers")))
          if (e.path().filename().string().rfind(stale, 0) == 0) fs::remove_all(e.path());
      }
      if (dist::is_writer() && dir_exists(tokenizer_)) {
        const std::string why = verify_checksum_list(tokenizer_);
        if (why.rfind("no checksum list", 0) == 0 && file_exists(path_join(tokenizer_, "vocab.json"))) {
          write_checksum_list(tokenizer_);  // an entry from before checksums: kept, and checked from now on
        } else if (!why.empty()) {  // the others wait at a barrier for rank 0's entry
          std::cerr << "tokenizer cache " << tokenizer_ << ": damaged (" << why << "); training it again\n";
          fs::remove_all(tokenizer_);
        }
      }
      if (!file_exists(path_join(tokenizer_, "vocab.json"))) {
        BpeTrainerOptions o;
        o.vocab_size = c_.integer("tokenizer.vocab_size");
        o.min_frequency = c_.integer("tokenizer.min_frequency");
        TrainedBpe bpe = train_byte_bpe(read_training_texts({text}, std::nullopt), o);
        fs::create_directories(path_join(work_, "tokenizers"));
        const std::string staging = tokenizer_ + ".tmp-" + std::to_string(::getpid());
        try {
          write_byte_bpe(bpe, staging);
          write_checksum_list(staging);
        } catch (const std::exception& e) {
          std::error_code ec;
          fs::remove_all(staging, ec);  // no half-written entry stays (a full disk)
          std::string m = e.what();  // named after the entry, not its staging directory
          for (size_t at = m.find(staging); at != std::string::npos; at = m.find(staging, at + tokenizer_.size()))
            m.replace(at, staging.size(), tokenizer_);
          throw Error(m);
        }
        std::error_code ec;
        fs::rename(staging, tokenizer_, ec);  // the cache entry appears whole or not at all
        if (ec) {
          // Another process (a second sweep, an array task) put the same entry in place first.
          fs::remove_all(staging);
          OT_REQUIRE(file_exists(path_join(tokenizer_, "vocab.json")), tokenizer_,
                     ": cannot move the trained tokenizer into the cache (", ec.message(), ")");
        }
        std::cerr << "tokenizer: trained a " << bpe.tokens.size() << "-token byte-level BPE on data." << train
                  << " -> " << tokenizer_ << "\n";
      }
    } else if (!tokenizer_.empty()) {
      OT_REQUIRE(file_exists(tokenizer_) || dir_exists(tokenizer_), "tokenizer.path: '", tokenizer_, "' does not exist",
                 c_.where("tokenizer.path"));
    }
    return tokenizer_;
  }

  std::string tokenizer_for(const std::string& model_dir) {
    const std::string t = tokenizer();
    return t.empty() ? model_dir : t;
  }

  TrainerOptions trainer(const std::string& s) {
    TrainerOptions t = trainer_options_from(c_, s);
    t.seed = seed_;
    t.precision = precision_;
    t.checkpoint_activations = c_.flag("runtime.checkpoint_activations");
    return t;
  }

  // The foundation model: model.path, or [model.init] pretrained once and cached.
  std::string model_dir() {
    if (!model_dir_.empty()) return model_dir_;
    const std::string path = c_.str("model.path");
    if (!path.empty()) {
      OT_REQUIRE(file_exists(path_join(path, "config.json")), "model.path: '", path,
                 "' is not a checkpoint directory (no config.json)", c_.where("model.path"));
      return model_dir_ = path;
    }
    const std::string tok_path = tokenizer();
    OT_REQUIRE(!tok_path.empty(), "[model.init] needs a tokenizer: set tokenizer.path or tokenizer.train_data",
               c_.where("model.init"));
    std::unique_ptr<Tokenizer> tok = load_tokenizer(tok_path);
    nlohmann::json init = toml_to_json(*c_.table_at("model.init"));
    if (!init.contains("vocab_size")) init["vocab_size"] = tok->vocab_size();
    for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
      // A byte-level BPE's one end-of-text token is BOS, EOS and padding (GPT-2's convention).
      auto id = std::string(k) == "bos_token_id" && tok->bos_id() ? tok->bos_id() : tok->eos_id();
      if (!init.contains(k) && id) init[k] = *id;
    }
    const std::string data = text_path(c_.str("pretrain.data"));
    const std::string eval = c_.str("pretrain.eval_data");
    std::string key = init.dump() + "|" + section_text(c_, "pretrain") + "|" + content_id(data) + "|" +
                      content_id(path_join(tok_path, "vocab.json")) + "|" + content_id(path_join(tok_path, "merges.txt"));
    if (!eval.empty()) key += "|" + content_id(text_path(eval));
    const std::string models = path_join(work_, "models");
    const std::string dir = path_join(models, hex(fnv1a(key)));
    model_dir_ = dir;
    // Runs started at once (array tasks, teams of a sweep) need the same model: one pretrains
    // it, the others wait on the lock and then find it in the cache.
    std::unique_ptr<FileLock> lock;
    if (dist::is_writer()) {
      fs::create_directories(models);
      lock = std::make_unique<FileLock>(dir + ".lock");
    }
    if (dist::is_writer() && dir_exists(dir)) {
      const std::string why = verify_checksum_list(dir);
      if (why.rfind("no checksum list", 0) == 0 && file_exists(path_join(dir, "config.json"))) {
        write_checksum_list(dir);  // an entry from before checksums: kept, and checked from now on
      } else if (!why.empty()) {
        std::cerr << "model cache " << dir << ": damaged (" << why << "); pretraining it again\n";
        fs::remove_all(dir);
        fs::remove_all(dir + ".scores");  // scores of the damaged weights
      }
    }
    const bool cached = dist::host_communicator().all_reduce_max(
                            dist::is_writer() && file_exists(path_join(dir, "config.json")) ? 1.0 : 0.0) > 0;
    if (cached) {
      if (dist::is_writer()) {
        std::error_code ec;  // staging of attempts killed after or before the entry appeared
        fs::remove_all(dir + ".init", ec);
        fs::remove_all(dir + ".tmp", ec);
        const std::string id = fs::path(dir).filename().string();
        std::vector<fs::path> stale;
        for (const auto& e : fs::directory_iterator(models, ec)) {  // under the lock: no live writer
          const std::string n = e.path().filename().string();
          if ((n.rfind("." + id + ".", 0) == 0 || n.rfind(".." + id + ".", 0) == 0) && n.find(".tmp.") != std::string::npos)
            stale.push_back(e.path());
        }
        for (const fs::path& p : stale) fs::remove_all(p, ec);
        std::cerr << "model: cached foundation model " << dir << "\n";
      }
      if (rec_) rec_->set_attribute("foundation_model", dir);
      return dir;
    }
    const std::string staging = dir + ".init";
    if (dist::is_writer()) {
      ModelConfig mc = parse_model_config(init, "model.init" + c_.where("model.init"));
      torch::manual_seed(static_cast<uint64_t>(c_.integer("pretrain.seed")));
      DecoderLM m = build_model(mc, load_);
      double std = 0.02;
      for (const char* k : {"init_std", "initializer_range"})
        if (init.contains(k) && init[k].is_number()) std = init[k].get<double>();
      m->init_weights(std);
      save_model(m, staging);
      copy_tokenizer_files(tok_path, staging);
    }
    dist::host_communicator().barrier();
    FinetuneJob job;
    job.model_dir = staging;
    job.out_dir = dir + ".tmp";  // written by the team's rank 0, under the lock
    job.tokenizer = tok_path;
    job.trainable = "all";
    job.corpus = corpus(c_.str("pretrain.data"), c_.integer("pretrain.block_size"));
    if (!eval.empty())
      job.eval_corpus = corpus(eval, c_.integer("pretrain.block_size"), c_.integer("pretrain.eval_blocks"));
    job.block_size = c_.integer("pretrain.block_size");
    job.trainer = trainer("pretrain");
    job.trainer.seed = static_cast<uint64_t>(c_.integer("pretrain.seed"));
    job.trainer.state_path = dir + ".state";
    job.load = load_;
    job.cache_dir = cache_;
    job.label = "pretrain";
    job.record_validation = false;
    FinetuneOutcome o;
    try {
      o = run_finetune_job(job, rec_);
      check_not_interrupted(o.train, "pretraining");
      if (dist::is_writer()) write_checksum_list(job.out_dir);
    } catch (...) {
      // No half-made entry stays in the cache (the trainer state, written whole, does: the
      // next attempt resumes from it).
      if (dist::is_writer()) {
        std::error_code ec;
        fs::remove_all(staging, ec);
        fs::remove_all(job.out_dir, ec);
      }
      throw;
    }
    if (dist::is_writer()) {
      fs::rename(job.out_dir, dir);  // the cache entry appears whole or not at all
      fs::remove_all(staging);
      fs::remove(job.trainer.state_path);
    }
    dist::host_communicator().barrier();
    if (dist::is_writer()) std::cerr << "model: pretrained " << o.total_params << " parameters for " << o.train.steps << " steps -> " << dir << "\n";
    if (rec_) rec_->set_attribute("foundation_model", dir);
    return dir;
  }

  // ---- evaluation -------------------------------------------------------------------

  EvalSpec eval_spec() {
    EvalSpec spec;
    std::vector<std::string> tasks = c_.strings("eval.tasks");
    if (tasks.empty() && !c_.str("finetune.task").empty() && c_.str("experiment.recipe") != "eval")
      tasks.push_back(c_.str("finetune.task"));
    for (const std::string& t : tasks) {
      const std::string name = canonical_task_name(t);
      TaskFiles f = task_files(name, c_.str("finetune.task_root"));
      OT_REQUIRE(!f.eval.empty(), "eval.tasks: no evaluation files known for ", name, c_.where("eval.tasks"));
      for (const std::string& file : f.eval)
        OT_REQUIRE(file_exists(file) || dir_exists(file), "eval.tasks: ", name, ": '", file,
                   "' does not exist (set finetune.task_root or $OT_DATA)", c_.where("finetune.task_root"));
      spec.tasks.emplace_back(name, load_task(name, f.eval).eval_docs);
    }
    for (const std::string& d : c_.strings("eval.data")) spec.texts.emplace_back(d, read_text_file(text_path(d)));
    spec.block_size = c_.integer("eval.block_size");
    spec.batch_size = c_.integer("eval.batch_size");
    spec.limit = c_.integer("eval.limit");
    spec.precision = precision_;
    return spec;
  }

  // `bundle`: the bundle `adapter` was trained on, the record it is checked against (for an
  // adapter loaded into a bundle, the bundle is `model` itself).
  void evaluate(const std::string& setting, const std::string& model, const std::string& adapter, const EvalSpec& spec,
                const std::string& bundle = "") {
    if (spec.tasks.empty() && spec.texts.empty()) return;
    if (dist::is_writer()) std::cerr << "eval: " << setting << "\n";
    const std::string memo = foundation_scores_path(model, adapter, spec);
    std::optional<std::vector<TaskResult>> results;
    if (!memo.empty()) results = read_scores(memo);
    // A team evaluates together (the perplexity sums are reduced): all read the cache or none.
    if (!memo.empty() && dist::host_communicator().all_reduce_max(results ? 0.0 : 1.0) > 0) results.reset();
    if (results) {
      if (dist::is_writer()) std::cerr << "eval: " << setting << " scores of the cached foundation model: " << memo << "\n";
    } else {
      DecoderLM m = load_model(model, load_);
      if (!adapter.empty()) {
        Adapter a = load_adapter(adapter);
        if (m->config().raw.contains("offsite")) {
          load_adapter_into(m, a, adapter, read_issued_adapter(model, m));
        } else {
          OT_REQUIRE(!bundle.empty(), "eval.adapter: plugging an adapter into the full model needs the bundle it was "
                     "trained on (eval.bundle)", c_.where("eval.adapter"));
          plug_in(m, a, adapter, read_issued_adapter(bundle, m));
        }
      }
      std::unique_ptr<Tokenizer> tok = load_tokenizer(tokenizer_for(model));
      results = evaluate_model(m, *tok, spec, dist::host_communicator());
      if (!memo.empty() && dist::is_writer()) write_scores(memo, *results);
    }
    for (const TaskResult& r : *results) rows_.emplace_back(setting, r);
    if (rec_) record_results(*rec_, setting, *results);
  }

  // Every seed of a sweep, and every rerun, scores the same pretrained foundation model on the
  // same texts: its perplexities are computed once and kept beside the model, in
  // models/<id>.scores/<key>.json. The key holds everything that can change a bit of them: the
  // [eval] section, the texts' contents, the thread count, the team size and the ot binary
  // itself. Only the runner's own pretrained models qualify (a model.path checkpoint can change
  // under the same path), and only texts (task documents are not hashed). "" = not cached.
  std::string foundation_scores_path(const std::string& model, const std::string& adapter, const EvalSpec& spec) {
    if (!adapter.empty() || !spec.tasks.empty() || !c_.str("model.path").empty() || model_dir_.empty() ||
        model != model_dir_)
      return "";
    std::string key = section_text(c_, "eval") + "|device=" + c_.str("runtime.device") +
                      "|dtype=" + c_.str("runtime.dtype") + "|precision=" + precision_name(precision_) +
                      "|threads=" + std::to_string(at::get_num_threads()) +
                      "|ranks=" + std::to_string(dist::team().size()) + "|ot=" + content_id("/proc/self/exe");
    for (const std::string& d : c_.strings("eval.data")) key += "|" + d + "=" + content_id(text_path(d));
    return path_join(model_dir_ + ".scores", hex(fnv1a(key)) + ".json");
  }

  static std::optional<std::vector<TaskResult>> read_scores(const std::string& path) {
    if (!file_exists(path)) return std::nullopt;
    try {
      std::vector<TaskResult> out;
      const nlohmann::json doc = nlohmann::json::parse(read_text_file(path));
      OT_REQUIRE(doc.is_object() && doc.contains("scores") && doc.contains("checksum"),
                 "expected an object with scores and checksum");
      OT_REQUIRE(doc.at("checksum") == hex_digits(fnv1a(doc.at("scores").dump())), "checksum does not match");
      for (const nlohmann::json& j : doc.at("scores")) {
        TaskResult r;
        r.task = j.at("task").get<std::string>();
        r.version = j.at("version").get<int>();
        r.metric = j.at("metric").get<std::string>();
        r.value = j.at("value").get<double>();
        if (!j.at("std_error").is_null()) r.std_error = j.at("std_error").get<double>();
        r.n = j.at("n").get<int64_t>();
        out.push_back(r);
      }
      return out;
    } catch (const std::exception& e) {
      std::cerr << "score cache " << path << ": damaged (" << e.what() << "); evaluating again\n";
      return std::nullopt;
    }
  }

  static void write_scores(const std::string& path, const std::vector<TaskResult>& results) {
    nlohmann::json a = nlohmann::json::array();
    for (const TaskResult& r : results)
      a.push_back({{"task", r.task}, {"version", r.version}, {"metric", r.metric}, {"value", r.value},
                   {"std_error", r.std_error ? nlohmann::json(*r.std_error) : nlohmann::json()}, {"n", r.n}});
    // The cache only saves time: a failed write (a full disk) is said, and the run goes on.
    try {
      fs::create_directories(fs::path(path).parent_path());
      const nlohmann::json doc = {{"checksum", hex_digits(fnv1a(a.dump()))}, {"scores", a}};
      write_text_file_atomically(path, doc.dump(1) + "\n");  // doubles are written to round-trip exactly
    } catch (const std::exception& e) {
      std::cerr << "eval: could not keep the scores in " << path << " (" << e.what() << "); later runs evaluate again\n";
    }
  }

  // ---- recipe steps -----------------------------------------------------------------

  EmulatorJob emulator_job(const std::string& out) {
    EmulatorJob job;
    job.model_dir = model_dir();
    job.out_dir = out;
    job.tokenizer = tokenizer();
    const auto lr = c_.integers("emulator.adapter");
    job.emulator.bottom = lr[0];
    job.emulator.top = lr[1];
    job.emulator.layers = c_.integer("emulator.layers");
    job.emulator.strategy = c_.str("emulator.strategy");
    job.emulator.repeat = c_.flag("emulator.repeat");
    job.emulator.prune_ratio = c_.number("emulator.prune");
    job.emulator.quantize_bits = static_cast<int>(c_.integer("emulator.quantize_bits"));
    job.emulator.train_head = c_.flag("finetune.train_head");  // the owner issues what the data owner will train
    job.hash_files = c_.flag("runtime.hash_files");
    const int64_t block = c_.integer("distill.block_size");
    if (!c_.str("emulator.calibration_data").empty()) job.calibration = corpus(c_.str("emulator.calibration_data"), block, 16);
    if (!c_.str("distill.data").empty()) job.distill = corpus(c_.str("distill.data"), block);
    if (!c_.str("distill.eval_data").empty())
      job.eval = corpus(c_.str("distill.eval_data"), block, c_.integer("distill.eval_blocks"));
    job.distill_loss.kd_weight = c_.number("distill.kd_weight");
    job.distill_loss.lm_weight = c_.number("distill.lm_weight");
    job.trainer = trainer("distill");
    job.trainer.state_path = path_join(run_dir_, "distill.state");
    job.load = load_;
    job.cache_dir = cache_;
    job.record_perplexities = false;
    return job;
  }

  FinetuneJob finetune_job(const std::string& model, const std::string& out, const std::string& section,
                           const std::string& trainable) {
    FinetuneJob job;
    job.model_dir = model;
    job.out_dir = out;
    job.tokenizer = tokenizer();
    job.trainable = trainable;
    job.freeze_bottom = c_.flag("finetune.freeze_bottom");
    job.train_head = c_.flag("finetune.train_head");
    job.peft.method = c_.str("finetune.peft");
    job.peft.lora_rank = c_.integer("finetune.lora_rank");
    job.peft.lora_alpha = c_.number("finetune.lora_alpha");
    job.peft.lora_dropout = c_.number("finetune.lora_dropout");
    job.peft.adapter_size = c_.integer("finetune.adapter_size");
    job.block_size = c_.integer(section + ".block_size");
    const std::string task = c_.str("finetune.task");
    if (!task.empty()) {
      job.task = canonical_task_name(task);
      TaskFiles f = task_files(job.task, c_.str("finetune.task_root"));
      job.train_file = c_.str("finetune.train_file");
      if (job.train_file.empty()) {
        OT_REQUIRE(!f.train.empty(), "finetune.task = ", job.task, ": no training split is stored under ",
                   c_.str("finetune.task_root"), "; set finetune.train_file", c_.where("finetune.task"));
        job.train_file = f.train.front();
      }
      OT_REQUIRE(file_exists(job.train_file), "finetune: training file '", job.train_file,
                 "' does not exist (set finetune.task_root, $OT_DATA or finetune.train_file)", c_.where("finetune"));
      job.validation_file = c_.str("finetune.validation_file");
      if (job.validation_file.empty() && !f.validation.empty() && file_exists(f.validation.front()))
        job.validation_file = f.validation.front();
      if (c_.integer("finetune.prefix_token") >= 0) job.prefix_token = c_.integer("finetune.prefix_token");
    } else {
      job.corpus = corpus(c_.str("finetune.data"), job.block_size);
      if (!c_.str("finetune.eval_data").empty())
        job.eval_corpus = corpus(c_.str("finetune.eval_data"), job.block_size, c_.integer(section + ".eval_blocks"));
    }
    job.trainer = trainer(section);
    job.trainer.state_path = path_join(run_dir_, section + ".state");
    job.load = load_;
    job.cache_dir = cache_;
    job.max_eval_examples = c_.integer("finetune.max_eval_examples");
    job.hash_files = c_.flag("runtime.hash_files");
    job.label = section;
    job.record_validation = false;
    return job;
  }

  void check_not_interrupted(const TrainResult& r, const std::string& what) {
    OT_REQUIRE(!r.interrupted, what, " interrupted by a signal; its state is saved");
  }

  // ---- recipes ------------------------------------------------------------------------

  void pretrain_recipe() {
    const std::string m = model_dir();
    evaluate("zs_full", m, "", eval_spec());
  }

  // The bundle stage: emulator + distillation, written to `bundle`.
  void bundle_stage(const std::string& bundle) {
    stage(bundle, "distillation", [&](const std::string& out) {
      EmulatorOutcome e = run_emulator_job(emulator_job(out), rec_);
      check_not_interrupted(e.train, "distillation");
    });
  }

  void distill_recipe() {
    std::string bundle = c_.str("emulator.save_to");
    if (bundle.empty()) bundle = path_join(run_dir_, "bundle");
    bundle_stage(bundle);
    EvalSpec spec = eval_spec();
    evaluate("zs_full", model_dir(), "", spec);
    evaluate("zs_emulator", bundle, "", spec);
  }

  void finetune_recipe() {
    const std::string out = path_join(run_dir_, "finetuned");
    const std::string base = model_dir();
    stage(out, "fine-tuning", [&](const std::string& partial) {
      FinetuneOutcome o = run_finetune_job(finetune_job(base, partial, "finetune", c_.str("finetune.trainable")), rec_);
      check_not_interrupted(o.train, "fine-tuning");
    });
    EvalSpec spec = eval_spec();
    const bool full_model = file_exists(path_join(out, "config.json"));  // else an adapter
    if (!full_model) evaluate("ft_emulator", base, out, spec);
    else evaluate("ft_full", out, "", spec);
  }

  void eval_recipe() {
    std::string m = c_.str("eval.model");
    if (m.empty()) m = model_dir();
    OT_REQUIRE(file_exists(path_join(m, "config.json")), "eval.model: '", m, "' is not a checkpoint directory",
               c_.where("eval.model"));
    OT_REQUIRE(c_.str("eval.adapter").empty() || !c_.str("eval.bundle").empty() || load_hf_config(m).contains("offsite"),
               "eval.adapter: plugging an adapter into the full model needs the bundle it was trained on (eval.bundle)",
               c_.where("eval.adapter"));
    evaluate(c_.str("eval.setting"), m, c_.str("eval.adapter"), eval_spec(), c_.str("eval.bundle"));
  }

  void efficiency_recipe() {
    const std::string method = c_.str("efficiency.method");
    const auto lr = c_.integers("emulator.adapter");
    std::vector<std::string> args = {"--seq-len", std::to_string(c_.integer("efficiency.seq_len")),
                                     "--batch", std::to_string(c_.integer("efficiency.batch")),
                                     "--steps", std::to_string(c_.integer("efficiency.steps")),
                                     "--warmup", std::to_string(c_.integer("efficiency.warmup_steps")),
                                     "--adapter", std::to_string(lr[0]) + "," + std::to_string(lr[1]),
                                     "--emulator-layers", std::to_string(c_.integer("emulator.layers")),
                                     "--threads", std::to_string(c_.integer("runtime.threads")),
                                     "--device", c_.str("runtime.device"), "--precision", precision_name(precision_)};
    if (c_.flag("runtime.checkpoint_activations")) args.push_back("--checkpoint-activations");
    const std::string shape = c_.str("efficiency.shape");
    if (!shape.empty()) args.insert(args.end(), {"--shape", shape});
    else args.insert(args.end(), {"--config", path_join(model_dir(), "config.json")});
    std::cerr << "efficiency: measuring " << method << " in a fresh process\n";
    EfficiencyResult r = run_efficiency_method_in_child(method, args);
    if (rec_) {
      rec_->set_attribute("method", method);
      rec_->set_efficiency("tokens_per_s", r.tokens_per_s, "tokens/s");
      rec_->set_efficiency("peak_memory_mib", r.peak_memory_mib, "MiB");
      rec_->set_efficiency("trainable_params", double(r.trainable_params), "parameters");
      rec_->set_efficiency("total_params", double(r.total_params), "parameters");
      rec_->set_efficiency("step_seconds", r.step_seconds, "s");
      rec_->set_efficiency("flops_per_token", r.flops_per_token, "FLOP");
      if (r.peak_gpu_memory_mib > 0) rec_->set_efficiency("peak_gpu_memory_mib", r.peak_gpu_memory_mib, "MiB");
      if (r.mfu > 0) rec_->set_efficiency("mfu", r.mfu, "fraction");
      rec_->set_attribute("device_name", r.device);
    }
    std::cout << method << ": " << std::fixed << std::setprecision(0) << r.tokens_per_s << " tokens/s, "
              << r.peak_memory_mib << " MiB peak, " << r.trainable_params << " of " << r.total_params
              << " parameters trained\n";
  }

  void offsite_recipe() {
    const std::vector<std::string> settings = c_.strings("eval.settings");
    auto wants = [&](const char* s) { return std::find(settings.begin(), settings.end(), s) != settings.end(); };
    const std::string full = model_dir();
    std::string bundle = c_.str("emulator.bundle");
    const std::string adapter = path_join(run_dir_, "adapter");
    EvalSpec spec = eval_spec();  // fail on a bad eval input before the long steps
    if (bundle.empty()) {
      bundle = path_join(run_dir_, "bundle");
      bundle_stage(bundle);
    } else {
      OT_REQUIRE(file_exists(path_join(bundle, "config.json")), "emulator.bundle: '", bundle,
                 "' is not a bundle directory (make one with recipe distill)", c_.where("emulator.bundle"));
      if (rec_) rec_->set_attribute("bundle", bundle);
    }
    stage(adapter, "adapter fine-tuning", [&](const std::string& out) {
      FinetuneOutcome f = run_finetune_job(finetune_job(bundle, out, "finetune", "adapter"), rec_);
      check_not_interrupted(f.train, "adapter fine-tuning");
    });
    std::string full_ft;
    if (wants("ft_full") && c_.flag("full_finetune.enabled")) {
      full_ft = path_join(run_dir_, "full_finetune");
      stage(full_ft, "full fine-tuning", [&](const std::string& out) {
        FinetuneOutcome ff = run_finetune_job(finetune_job(full, out, "full_finetune", "all"), rec_);
        check_not_interrupted(ff.train, "full fine-tuning");
      });
    }
    if (wants("zs_full")) evaluate("zs_full", full, "", spec);
    if (wants("zs_emulator")) evaluate("zs_emulator", bundle, "", spec);
    if (wants("ft_emulator")) evaluate("ft_emulator", bundle, adapter, spec);
    if (wants("plugin")) evaluate("plugin", full, adapter, spec, bundle);
    if (!full_ft.empty()) evaluate("ft_full", full_ft, "", spec);
  }

 public:
  const std::vector<std::pair<std::string, TaskResult>>& rows() const { return rows_; }

 private:
  const PlannedRun& p_;
  const Config& c_;
  results::RunRecorder* rec_;
  std::string work_, run_dir_, cache_;
  LoadOptions load_;
  Precision precision_ = Precision::kFp32;
  uint64_t seed_ = 0;
  std::map<std::string, std::string> texts_;
  std::string tokenizer_, model_dir_;
  bool tokenizer_ready_ = false;
  std::vector<std::pair<std::string, TaskResult>> rows_;
};

std::string format_value(const std::string& metric, double v) {
  std::ostringstream os;
  if (metric == "acc" || metric == "acc_norm") os << std::fixed << std::setprecision(1) << 100.0 * v;
  else os << std::fixed << std::setprecision(metric == "bits_per_byte" ? 4 : 3) << v;
  return os.str();
}

// The run's results as a settings x (task, metric) table, and the paper's pattern per column.
void print_summary(const std::string& run_id, const std::vector<std::pair<std::string, TaskResult>>& rows) {
  std::vector<std::string> settings;
  std::vector<std::pair<std::string, std::string>> cols;
  std::map<std::pair<std::string, std::pair<std::string, std::string>>, double> v;
  for (const auto& [s, r] : rows) {
    if (r.metric == "loss" || r.metric == "byte_perplexity") continue;
    if (std::find(settings.begin(), settings.end(), s) == settings.end()) settings.push_back(s);
    auto col = std::make_pair(r.task, r.metric);
    if (std::find(cols.begin(), cols.end(), col) == cols.end()) cols.push_back(col);
    v[{s, col}] = r.value;
  }
  if (settings.empty()) return;
  std::ostringstream os;
  os << "\nrun " << run_id << "\n| setting |";
  for (const auto& c : cols) os << " " << c.first << " " << c.second << " |";
  os << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) os << "---:|";
  os << "\n";
  for (const std::string& s : settings) {
    os << "| " << s << " |";
    for (const auto& c : cols) {
      auto it = v.find({s, c});
      os << " " << (it == v.end() ? "" : format_value(c.second, it->second)) << " |";
    }
    os << "\n";
  }
  for (const PatternMargins& m : pattern_margins(rows)) {
    os << "pattern on " << m.task << " " << m.metric << ": zs_emulator worse than zs_full by "
       << format_value(m.metric, m.emulator_below_full) << ", plugin better than zs_full by "
       << format_value(m.metric, m.plugin_above_full) << ", plugin better than ft_emulator by "
       << format_value(m.metric, m.plugin_above_ft_emulator) << (m.holds() ? "  [holds]" : "  [does NOT hold]") << "\n";
  }
  std::cout << os.str() << std::flush;
}

}  // namespace

RunState execute_run(const PlannedRun& plan, const RunOptions& opts) {
  const Config& c = plan.config;
  if (c.integer("runtime.threads") > 0) at::set_num_threads(static_cast<int>(c.integer("runtime.threads")));
  const bool writer = dist::is_writer();
  // The claim (rank 0's decides for the team): taken before the result file is even read.
  std::unique_ptr<RunClaim> claim;
  bool taken = false;
  if (writer) {
    // Beside the experiment's folder, not in it: that folder holds run files only.
    const fs::path dir = fs::path(c.str("experiment.results_dir")) / ".claims" / c.str("experiment.name");
    std::error_code ec;
    fs::create_directories(dir, ec);
    OT_REQUIRE(!ec, dir.string(), ": cannot create the claims directory (", ec.message(), ")");
    const std::string claim_path = (dir / (plan.run_id + ".claim")).string();
    claim = std::make_unique<RunClaim>(claim_path);
    if (!claim->held()) {
      std::cerr << "ot: run " << plan.run_id << " is being run by another process (its claim " << claim_path
                << " is held); left to it\n";
      taken = true;
    } else if (opts.skip_complete && results::run_is_complete(plan.result_path)) {
      std::cerr << "ot: run " << plan.run_id << " was completed by another process meanwhile (" << plan.result_path
                << ")\n";
      taken = true;
    }
  }
  if (dist::host_communicator().all_reduce_max(taken ? 1.0 : 0.0) > 0) return RunState::kClaimed;
  results::RunInfo info;
  info.run_id = plan.run_id;
  info.experiment = c.str("experiment.name");
  info.config_toml = c.to_toml();
  info.command_line = opts.command_line;
  info.libtorch_version = TORCH_VERSION;
  info.world_size = dist::team().size();
  // An attempt that was interrupted (status still "running") is continued: its finished
  // stages, trainer states and records stay. Rank 0 decides for the team.
  std::optional<results::RunReader> earlier;
  if (writer && file_exists(plan.result_path)) {
    try {
      results::RunReader r = results::RunReader::open(plan.result_path);
      if (r.status() == results::RunStatus::Running && r.has_attribute("run_id") &&
          r.string_attribute("run_id") == plan.run_id)
        earlier = std::move(r);
    } catch (const std::exception& e) {
      std::cerr << "ot: " << plan.result_path << " is unreadable (" << e.what() << "); the run starts over\n";
    }
  }
  const bool resume = dist::host_communicator().all_reduce_max(earlier ? 1.0 : 0.0) > 0;
  std::unique_ptr<results::RunRecorder> rec;
  if (writer) {
    rec = earlier ? std::make_unique<results::RunRecorder>(plan.result_path, info, *earlier)
                  : std::make_unique<results::RunRecorder>(plan.result_path, info);
    if (earlier) std::cerr << "ot: run " << plan.run_id << ": continuing the interrupted attempt\n";
    rec->set_attribute("recipe", c.str("experiment.recipe"));
    rec->set_attribute("label", c.str("experiment.label").empty() ? c.str("experiment.name") : c.str("experiment.label"));
    rec->set_attribute("group_id", group_id_of(c));
    rec->set_attribute("sweep_params", params_json(plan.params));
    rec->set_attribute("paper_table", c.str("experiment.paper_table"));
    rec->set_attribute("seed", c.integer("experiment.seed"));
    // What earlier runs of this process left resident: a long sweep's memory stays flat.
    rec->set_attribute("rss_start_mib", current_rss_mib());
    rec->set_attribute("attempts", earlier && earlier->has_attribute("attempts") ? earlier->int_attribute("attempts") + 1
                                                                                : int64_t(1));
  }
  Run run(plan, rec.get());
  try {
    run.execute(resume);
    if (rec) rec->complete();
  } catch (const Preempted& e) {
    // Left "running": the next attempt (a requeued job, the same command again) continues it.
    if (rec) {
      rec->set_attribute("interrupted", e.what());
      rec->flush();
    }
    if (writer) std::cerr << "ot: run " << plan.run_id << " stopped by a signal; its state is saved and the next attempt continues it\n";
    return RunState::kPreempted;
  } catch (const std::exception& e) {
    if (rec) rec->fail(e.what());
    std::cerr << "ot: run " << plan.run_id << " failed: " << e.what() << "\n";
    // A failure every rank of the team saw (bad data, a bad value) leaves the team free to
    // take the next run; one rank's alone leaves its teammates inside a collective for good.
    if (!dist::team_failed_together())
      dist::end_job_after_lone_failure("run " + plan.run_id + " failed", dist::team().rank(), dist::team().size());
    return RunState::kFailed;
  }
  if (writer) print_summary(plan.run_id, run.rows());
  return RunState::kCompleted;
}

}  // namespace ot::experiment
