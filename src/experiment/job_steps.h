// experiment/job_steps.h: the steps the jobs of experiment/jobs.h share, whatever the model
// (decoder LM or vision encoder): recording curves and evaluations, wiring data parallelism,
// recording throughput and device efficiency, writing on the team's rank 0, and the
// emulator's split checks. Internal to the experiment layer.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dist/context.h"
#include "experiment/jobs.h"
#include "offsite/adapter.h"
#include "offsite/cka.h"
#include "model/precision.h"
#include "offsite/emulator.h"
#include "offsite/gradient_alignment.h"
#include "results/run_file.h"
#include "train/trainer.h"

namespace ot {

// Curve rows of a trainer into the run file (nothing for a null recorder).
Trainer::LogFn recorder_log(results::RunRecorder* rec);

// Gradient alignment of `setting` (zs_emulator, distilled_emulator) on `corpus`: the mean
// cosine as an eval row (metric grad_cosine, n = batches) and the per-block values as the
// JSON attribute gradient_alignment_<setting> (nothing for a null recorder).
void record_alignment(results::RunRecorder* rec, const std::string& setting, const std::string& corpus,
                      const GradientAlignment& a);

// The CKA matrix of a CKA layer selection as the JSON attribute cka_similarity: {"blocks":
// the model blocks of its rows, "matrix", "kept": the model blocks kept} (nothing for a null
// recorder).
void record_cka(results::RunRecorder* rec, const CkaSelection& cka);

// One eval row without a standard error (nothing for a null recorder).
void record_eval(results::RunRecorder* rec, const std::string& setting, const std::string& task,
                 const std::string& metric, double value, int64_t n);

// Data parallelism over the current team (dist/context.h), when it has more than one rank.
void wire_data_parallel(Trainer& trainer, const at::Device& device);

// Every rank's own throughput, gathered (a collective: every rank of the team calls it).
void record_rank_throughput(results::RunRecorder* rec, const TrainResult& r);

// What the device measured of a training stage: its time by device events, the CUDA
// caching allocator's peak, and model FLOP utilisation where the device's peak rate is known.
void record_device_efficiency(results::RunRecorder& rec, const std::string& pre, const TrainResult& r,
                              double flops_per_token, const c10::Device& device, Precision precision);

// Only the team's rank 0 writes; the others wait until the files are there.
template <class Fn>
void write_on_rank0(Fn&& fn) {
  if (dist::is_writer()) fn();
  dist::host_communicator().barrier();
}

// The emulator options with the adapter split checked against n blocks and `layers` 0
// resolved to every middle block.
EmulatorOptions checked_split(EmulatorOptions emu, int64_t n);

// The bundle's block map and the emulator options that built it as run attributes (the
// options under their TOML names, "emulator.svd", so that runs from the command line carry
// them as TOML runs do in their config).
void record_layout(results::RunRecorder* rec, const OffsiteLayout& layout, const EmulatorOptions& emu);

// What a fine-tuning job trains, decided from the job and applied to `model` (PEFT modules
// added, gradients enabled): a bundle is first checked against itself (block map, stored
// blocks, fingerprint), so a damaged or altered bundle is an error, not a different model.
struct FinetunePlan {
  std::optional<IssuedAdapter> issued;  // a bundle's record of what it issued (none: full model)
  std::vector<int64_t> positions;       // the blocks that train (positions in the model)
  int64_t trainable_params = 0, total_params = 0;
  bool bundle() const { return issued.has_value(); }
};
FinetunePlan plan_finetune(BlockModelImpl& model, const FinetuneJob& job);

// The parameters that train, under their internal names.
NamedTensors trainable_tensors(BlockModelImpl& model);

// The job's trainer options for a fine-tuning stage: its label, the best validation loss
// kept when there is validation data.
TrainerOptions finetune_trainer_options(const FinetuneJob& job, bool has_validation);

// The trainer of a fine-tuning stage: `model`'s trainable tensors with options `to`, data
// parallel over the team, switching the model's dropout around evaluations, activation
// checkpointing as the options say.
Trainer finetune_trainer(BlockModelImpl& model, const TrainerOptions& to);

// A finished fine-tuning's efficiency rows (throughput, time, memory, parameter counts,
// device measures), prefixed "<label>_" unless the label is "finetune".
void record_finetune(results::RunRecorder* rec, const FinetuneJob& job, const FinetuneOutcome& out,
                     BlockModelImpl& model, const TrainerOptions& to, double flops_per_token);

// Writes what fine-tuning made, on rank 0: for a bundle the adapter (LoRA merged, cast to
// the issued dtypes, checked as the model owner will check it, then saved); for a full
// model a directory written atomically by `save_full(tmp_dir)`.
void write_finetune_output(BlockModelImpl& model, const FinetuneJob& job, const FinetunePlan& plan,
                           FinetuneOutcome& out, results::RunRecorder* rec,
                           const std::function<void(const std::string& tmp_dir)>& save_full);

}  // namespace ot
