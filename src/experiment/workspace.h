// experiment/workspace.h: a run's files under experiment.work_dir, and the caches runs share
// there, each keyed by the content of what made it (so the same inputs reached by another path
// still hit it):
//   data/<source>-<id>.txt   a Brown selection materialised as text
//   tokenizers/<id>/         a byte-level BPE trained on a data source (lock: <id>.lock)
//   models/<id>/             the foundation model pretrained from [model.init] (lock: <id>.lock;
//                            staging <id>.init, <id>.tmp, trainer state <id>.state)
//   models/<id>.scores/      its evaluation scores on texts (<key>.json)
//   token-cache/             token blocks of corpora (experiment/jobs.h)
//   runs/<experiment>/<run-id>/  the run's own outputs (bundle, adapter, trainer states)
// Cache entries appear whole (written under a staging name, then renamed) and carry a checksum
// list; a damaged entry is made again. Runs started at once make a shared entry once: one
// holds its lock, the others wait and then find it. Under data parallelism (dist/context.h)
// rank 0 writes and every rank returns the same paths.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "experiment/jobs.h"
#include "experiment/spec.h"
#include "results/run_file.h"

namespace ot::experiment {

// A file's identity for cache keys: a hash of its contents ("missing:<path>" for none),
// remembered per process.
std::string content_id(const std::string& path);

class Workspace {
 public:
  // `rec` (may be null) records the foundation model used.
  Workspace(const ExperimentSpec& spec, const std::string& run_id, results::RunRecorder* rec);

  // runs/<experiment>/<run-id>: kept for a resumed attempt (its finished stages and trainer
  // states), otherwise emptied.
  const std::string& run_dir() const { return run_dir_; }
  void prepare_run_dir(bool resume);
  const std::string& token_cache_dir() const { return token_cache_; }

  // Every data source's text and the tokenizer, made by rank 0 first, then found by the others.
  void prepare_shared_inputs();

  // The text file of data source `name`; a Brown selection is written on first use.
  std::string ensure_text(const std::string& name);
  CorpusSpec corpus(const std::string& name, int64_t block_size, int64_t max_blocks = 0);
  // Whether data source `name` is an image dataset, and its job description (an error for text).
  bool is_images(const std::string& name) const;
  ImageDataSpec image_data(const std::string& name) const;
  // That dataset read (classes selected), once per run: the recipe counts its classes and
  // scores every setting on it.
  std::shared_ptr<const ImageDataset> images(const std::string& name);

  // The tokenizer path for jobs ("" = the model's own); a configured BPE is trained on first use.
  std::string ensure_tokenizer();
  // The tokenizer of `model_dir`: the configured one, else the model's own.
  std::string tokenizer_for(const std::string& model_dir);

  // The foundation model: model.path, or [model.init] pretrained (once, under the cache lock)
  // and cached.
  std::string ensure_foundation_model();

  // Where the scores of evaluating `model` with `adapter` on `spec` are kept, or "" when they
  // are not cached: only the runner's own pretrained foundation model, without adapter, on
  // texts only. The key holds everything that can change a bit of them: the [eval] section,
  // the texts' contents, device, dtype, precision, thread count, team size and the ot binary.
  std::string foundation_scores_path(const std::string& model, const std::string& adapter, const EvalSpec& spec);
  // The cached scores, or nothing (absent or damaged: said, and evaluated again).
  static std::optional<std::vector<TaskResult>> read_scores(const std::string& path);
  // Keeps scores; a failed write is said and the run goes on (the cache only saves time).
  static void write_scores(const std::string& path, const std::vector<TaskResult>& results);

 private:
  // Identity of an image data source: its selection and its folder's files, by content.
  std::string image_data_id(const std::string& name) const;

  const ExperimentSpec& spec_;
  results::RunRecorder* rec_;
  std::string run_dir_, token_cache_;
  std::map<std::string, std::string> texts_;
  std::map<std::string, std::shared_ptr<const ImageDataset>> images_;
  std::string tokenizer_, model_dir_;
  bool tokenizer_ready_ = false;
};

}  // namespace ot::experiment
