// experiment/workspace.cpp: see workspace.h.
#include "experiment/workspace.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <optional>
#include <iostream>

#include "dist/context.h"
#include "model/load.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/hash.h"

namespace ot::experiment {

namespace {

namespace fs = std::filesystem;

std::string hex(uint64_t h) { return hex_digits(h, 12); }

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

}  // namespace

std::string content_id(const std::string& path) {
  static std::map<std::string, std::string> memo;  // path -> id, per process
  auto it = memo.find(path);
  if (it != memo.end()) return it->second;
  const std::string id = file_exists(path) ? hex_digits(fnv1a(read_text_file(path))) : "missing:" + path;
  memo[path] = id;
  return id;
}

Workspace::Workspace(const ExperimentSpec& spec, const std::string& run_id, results::RunRecorder* rec)
    : spec_(spec),
      rec_(rec),
      run_dir_(path_join(path_join(path_join(spec.work_dir, "runs"), spec.name), run_id)),
      token_cache_(path_join(spec.work_dir, "token-cache")) {}

void Workspace::prepare_run_dir(bool resume) {
  if (dist::is_writer() && !(resume && dir_exists(run_dir_))) {
    fs::remove_all(run_dir_);
    fs::create_directories(run_dir_);
  }
}

void Workspace::prepare_shared_inputs() {
  auto prepare = [&] {
    for (const DataSourceSpec& d : spec_.data)
      if (!d.is_images()) ensure_text(d.name);
    ensure_tokenizer();
  };
  if (dist::is_writer()) prepare();
  dist::host_communicator().barrier();
  prepare();
}

std::string Workspace::ensure_text(const std::string& name) {
  auto it = texts_.find(name);
  if (it != texts_.end()) return it->second;
  const std::string key = "data." + name;
  const DataSourceSpec& source = spec_.data_source(name);
  OT_REQUIRE(!source.is_images(), key, ": an image dataset, where text is needed (a language model's data)",
             spec_.where(key));
  std::string path = source.path;
  if (path.empty()) {
    const std::string& dir = source.brown_dir;
    const std::string id = hex(fnv1a(source.section_toml + "|" + content_id(path_join(dir, "cats.txt"))));
    path = path_join(path_join(spec_.work_dir, "data"), name + "-" + id + ".txt");
    if (!file_exists(path)) {
      fs::create_directories(path_join(spec_.work_dir, "data"));
      try {
        BrownTextStats t = write_brown_text(select_brown(load_brown(dir), source.selection), path);
        std::cerr << "data." << name << ": " << t.files << " Brown files, " << t.paragraphs << " paragraphs, "
                  << t.bytes << " bytes -> " << path << "\n";
      } catch (const Error& e) {
        fail(key, spec_.where(key), ": ", e.what());
      }
    }
  } else {
    OT_REQUIRE(file_exists(path), key, ".path: '", path, "' does not exist", spec_.where(key + ".path"));
  }
  texts_[name] = path;
  return path;
}

bool Workspace::is_images(const std::string& name) const { return spec_.data_source(name).is_images(); }

ImageDataSpec Workspace::image_data(const std::string& name) const {
  const std::string key = "data." + name;
  const DataSourceSpec& s = spec_.data_source(name);
  OT_REQUIRE(s.is_images(), key, ": text, where images are needed (a vision encoder's data: set `images`)",
             spec_.where(key));
  OT_REQUIRE(dir_exists(s.path), key, ".path: '", s.path, "' is not a directory", spec_.where(key + ".path"));
  return ImageDataSpec{s.image_format, s.path, s.image_split, s.max_examples, s.skip_examples, s.classes,
                       s.augment, s.min_crop_scale, key + spec_.where(key)};
}

std::shared_ptr<const ImageDataset> Workspace::images(const std::string& name) {
  auto it = images_.find(name);
  if (it == images_.end()) it = images_.emplace(name, load_image_data(image_data(name))).first;
  return it->second;
}

std::string Workspace::image_data_id(const std::string& name) const {
  // The selection (the section's TOML) and every file of the dataset's folder, by content.
  const DataSourceSpec& s = spec_.data_source(name);
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(s.path))
    if (e.is_regular_file()) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  std::string id = s.section_toml;
  for (const std::string& f : files) id += "|" + f.substr(s.path.size()) + "=" + content_id(f);
  return hex(fnv1a(id));
}

CorpusSpec Workspace::corpus(const std::string& name, int64_t block_size, int64_t max_blocks) {
  return CorpusSpec{ensure_text(name), spec_.data_source(name).text_field, block_size, max_blocks};
}

std::string Workspace::ensure_tokenizer() {
  if (tokenizer_ready_) return tokenizer_;
  tokenizer_ready_ = true;
  tokenizer_ = spec_.tokenizer.path;
  const std::string& train = spec_.tokenizer.train_data;
  if (!train.empty()) {
    OT_REQUIRE(tokenizer_.empty(), "tokenizer: give `path` or `train_data`, not both", spec_.where("tokenizer"));
    const std::string text = ensure_text(train);
    const std::string id = hex(fnv1a(spec_.tokenizer.section_toml + "|" + content_id(text)));
    tokenizer_ = path_join(path_join(spec_.work_dir, "tokenizers"), id);
    // Runs started at once train it once: one holds the lock, the others then find it. Under
    // the lock, staging directories are those of killed processes: removed.
    std::unique_ptr<FileLock> lock;
    if (dist::is_writer()) {
      fs::create_directories(path_join(spec_.work_dir, "tokenizers"));
      lock = std::make_unique<FileLock>(tokenizer_ + ".lock");
      const std::string stale = fs::path(tokenizer_).filename().string() + ".tmp-";
      for (const auto& e : fs::directory_iterator(path_join(spec_.work_dir, "tokenizers")))
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
      o.vocab_size = spec_.tokenizer.vocab_size;
      o.min_frequency = spec_.tokenizer.min_frequency;
      TrainedBpe bpe = train_byte_bpe(read_training_texts({text}, std::nullopt), o);
      fs::create_directories(path_join(spec_.work_dir, "tokenizers"));
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
               spec_.where("tokenizer.path"));
  }
  return tokenizer_;
}

std::string Workspace::tokenizer_for(const std::string& model_dir) {
  const std::string t = ensure_tokenizer();
  return t.empty() ? model_dir : t;
}

std::string Workspace::ensure_foundation_model() {
  if (!model_dir_.empty()) return model_dir_;
  const std::string& path = spec_.model.path;
  if (!path.empty()) {
    OT_REQUIRE(file_exists(path_join(path, "config.json")), "model.path: '", path,
               "' is not a checkpoint directory (no config.json)", spec_.where("model.path"));
    return model_dir_ = path;
  }
  OT_REQUIRE(spec_.model.init, "model: set model.path or [model.init]", spec_.where("model"));
  nlohmann::json init = *spec_.model.init;
  const PretrainSpec& pretrain = spec_.pretrain;
  const std::string& eval = pretrain.eval_data;
  // A vision encoder pretrains by classification on images; a language model on text, with
  // its tokenizer.
  const std::string type = init.value("model_type", "");
  const bool vision = type == "vit" || type == "clip_vision_model" || type == "clip";
  std::string tok_path, key;
  if (vision) {
    key = init.dump() + "|" + pretrain.section_toml + "|" + image_data_id(pretrain.data);
    if (!eval.empty()) key += "|" + image_data_id(eval);
  } else {
    tok_path = ensure_tokenizer();
    OT_REQUIRE(!tok_path.empty(), "[model.init] needs a tokenizer: set tokenizer.path or tokenizer.train_data",
               spec_.where("model.init"));
    std::unique_ptr<Tokenizer> tok = load_tokenizer(tok_path);
    if (!init.contains("vocab_size")) init["vocab_size"] = tok->vocab_size();
    for (const char* k : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
      // A byte-level BPE's one end-of-text token is BOS, EOS and padding (GPT-2's convention).
      auto id = std::string(k) == "bos_token_id" && tok->bos_id() ? tok->bos_id() : tok->eos_id();
      if (!init.contains(k) && id) init[k] = *id;
    }
    key = init.dump() + "|" + pretrain.section_toml + "|" + content_id(ensure_text(pretrain.data)) + "|" +
          content_id(path_join(tok_path, "vocab.json")) + "|" + content_id(path_join(tok_path, "merges.txt"));
    if (!eval.empty()) key += "|" + content_id(ensure_text(eval));
  }
  const std::string models = path_join(spec_.work_dir, "models");
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
  std::optional<ImageDataSpec> images, eval_images;
  if (vision) {
    images = image_data(pretrain.data);
    if (!eval.empty()) eval_images = image_data(eval);
  }
  if (dist::is_writer()) {
    ModelConfig mc = parse_model_config(init, "model.init" + spec_.where("model.init"));
    torch::manual_seed(pretrain.trainer.seed);
    double std = 0.02;
    for (const char* k : {"init_std", "initializer_range"})
      if (init.contains(k) && init[k].is_number()) std = init[k].get<double>();
    if (vision) {
      VisionEncoder m(mc);
      m->to(spec_.runtime.load.device, spec_.runtime.load.dtype);
      m->init_weights(std);
      m->set_classifier(load_image_data(*images)->class_names, std);  // pretrained on the owner's classes
      save_model(m, staging);
    } else {
      DecoderLM m = build_model(mc, spec_.runtime.load);
      m->init_weights(std);
      save_model(m, staging);
      copy_tokenizer_files(tok_path, staging);
    }
  }
  dist::host_communicator().barrier();
  FinetuneJob job;
  job.model_dir = staging;
  job.out_dir = dir + ".tmp";  // written by the team's rank 0, under the lock
  job.tokenizer = tok_path;
  job.trainable = "all";
  if (vision) {
    job.images = images;
    job.eval_images = eval_images;
  } else {
    job.corpus = corpus(pretrain.data, pretrain.block_size);
    if (!eval.empty()) job.eval_corpus = corpus(eval, pretrain.block_size, pretrain.eval_blocks);
  }
  job.block_size = pretrain.block_size;
  job.trainer = pretrain.trainer;
  job.trainer.state_path = dir + ".state";
  job.load = spec_.runtime.load;
  job.cache_dir = token_cache_;
  job.label = "pretrain";
  job.record_validation = false;
  FinetuneOutcome o;
  try {
    o = run_finetune_job(job, rec_);
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

std::string Workspace::foundation_scores_path(const std::string& model, const std::string& adapter, const EvalSpec& spec) {
  if (!adapter.empty() || !spec.tasks.empty() || !spec_.model.path.empty() || model_dir_.empty() ||
      model != model_dir_)
    return "";
  std::string key = spec_.eval.section_toml + "|device=" + spec_.runtime.device +
                    "|dtype=" + spec_.runtime.dtype + "|precision=" + precision_name(spec_.runtime.precision) +
                    "|threads=" + std::to_string(at::get_num_threads()) +
                    "|ranks=" + std::to_string(dist::team().size()) + "|ot=" + content_id("/proc/self/exe");
  for (const std::string& d : spec_.eval.data) key += "|" + d + "=" + content_id(ensure_text(d));
  return path_join(model_dir_ + ".scores", hex(fnv1a(key)) + ".json");
}

std::optional<std::vector<TaskResult>> Workspace::read_scores(const std::string& path) {
  // A writer killed mid-write leaves its temporary; a later run that finds the scores made
  // meanwhile never writes them again, so it clears it here.
  if (dist::is_writer()) remove_atomic_write_leftovers(path);
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

void Workspace::write_scores(const std::string& path, const std::vector<TaskResult>& results) {
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

}  // namespace ot::experiment
