// results/run_file.h: the per-run HDF5 result file (schema: results/SCHEMA.md at the root).
// Defines RunRecorder (writes one run's provenance, training curves, evaluation rows,
// efficiency numbers and per-rank throughput), RunReader (reads and validates such a file)
// and run_is_complete (what sweeps use to skip finished runs).
//
// Crash safety: the recorder keeps everything in memory and, on every flush, writes a
// complete fresh HDF5 file to a temporary sibling and renames it over the target. A run
// killed at any moment (even SIGKILL mid-write) therefore leaves the last flushed file,
// which is readable and says status "running". Files are open only for the few
// milliseconds of a flush, so h5py/h5dump readers never meet HDF5's file lock.
//
// This folder is torch-free: callers pass the LibTorch version string in RunInfo.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace ot::results {

// The schema this build writes and the only one it reads. Bump on incompatible changes.
inline constexpr int kSchemaVersion = 1;

enum class RunStatus { Running, Completed, Failed };
std::string to_string(RunStatus status);  // "running" | "completed" | "failed"

// Provenance recorded as root attributes when the recorder is created.
struct RunInfo {
  std::string run_id;
  std::string experiment;
  std::string config_toml;       // the fully resolved TOML of the run
  std::string command_line;
  std::string git_commit;        // empty: the commit this build was configured at
  std::string host;              // empty: this machine's host name
  std::string offsite_version;   // empty: ot::version()
  std::string libtorch_version;  // e.g. TORCH_VERSION; passed in because results/ is torch-free
  int world_size = 1;
};

// A free-form root attribute value.
using AttributeValue = std::variant<std::string, double, std::int64_t>;

// One training-curve row: column name -> value, e.g. {{"step", 10}, {"loss", 2.5}}.
using CurveRow = std::vector<std::pair<std::string, double>>;

// One evaluation result ("stderr" is a macro in <cstdio>, hence stderr_value).
struct EvalRow {
  std::string setting;  // one of the paper's settings, e.g. "zs_full", "plugin"
  std::string task;     // e.g. "piqa"
  std::string metric;   // e.g. "acc", "acc_norm"
  double value = 0;
  double stderr_value = 0;
  std::int64_t n = 0;   // number of examples
};

struct EfficiencyEntry {
  std::string name;  // e.g. "tokens_per_s", "distill_peak_memory_mib", "trainable_params"
  double value = 0;
  std::string unit;  // e.g. "tokens/s", "MiB", "parameters"
};

struct RankThroughput {
  std::int64_t rank = 0;
  double tokens_per_s = 0;
};

// One curve read back: its columns in recorded order, each with rows() values.
struct Curve {
  std::vector<std::string> columns;
  std::map<std::string, std::vector<double>> values;

  std::size_t rows() const;
  // The named column; throws ot::Error listing the columns if there is none.
  const std::vector<double>& column(const std::string& name) const;
};

class RunReader;

// Writes one run's file. Not thread-safe: one recorder per run, driven by one thread
// (rank 0 of the run's team).
class RunRecorder {
 public:
  // Creates parent directories and writes the first file (status "running") at once, so
  // a run that dies before its first record still leaves a file. Overwrites `path`.
  RunRecorder(std::string path, RunInfo info);
  // Continues an interrupted attempt of the same run: starts from `earlier`'s curves,
  // evaluations, efficiency numbers, rank throughputs, free attributes and creation time
  // (its status must be running and its run id info.run_id), so the file never loses them.
  RunRecorder(std::string path, RunInfo info, const RunReader& earlier);
  // Flushes unwritten records (errors are swallowed); status stays whatever it was, so a
  // recorder dropped without complete()/fail() leaves a "running" (incomplete) file.
  ~RunRecorder();
  RunRecorder(const RunRecorder&) = delete;
  RunRecorder& operator=(const RunRecorder&) = delete;

  // Minimum seconds between automatic flushes on curve rows (default 10; 0 = every row).
  void set_flush_interval_seconds(double seconds);
  double flush_interval_seconds() const { return flush_interval_s_; }

  // Free-form root attributes. Names of the schema's own attributes (status, run_id, ...)
  // are refused. Setting a name again replaces its value. Written on the next flush.
  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, const char* value);
  void set_attribute(const std::string& name, double value);
  template <class Int, std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>,
                                        int> = 0>
  void set_attribute(const std::string& name, Int value) {
    set_attribute_value(name, AttributeValue(static_cast<std::int64_t>(value)));
  }

  // Appends a row to curve `curve` (created on its first row, which fixes the columns).
  // A row whose "step" is not after the curve's last step (a resumed training rewinding to
  // its saved state) first drops the rows from that step on, so a resumed run's curves are
  // those of an uninterrupted one.
  // A row whose column names differ from the first row's throws ot::Error naming the
  // curve. Flushes if flush_interval_seconds() passed since the last flush.
  void add_curve_row(const std::string& curve, const CurveRow& row);

  // Appends an evaluation row (or replaces the row of the same setting, task and metric) and
  // flushes (evaluations are rare and precious).
  void add_eval(const EvalRow& row);

  // Sets (or replaces) an efficiency number. Written on the next flush.
  void set_efficiency(const std::string& name, double value, const std::string& unit);

  // Sets (or replaces) one rank's throughput. Written on the next flush.
  void set_rank_throughput(std::int64_t rank, double tokens_per_s);

  // Writes the whole file now (temporary sibling + fsync + rename).
  void flush();

  // Marks the run completed / failed (with `message`) and flushes. Either ends the run:
  // later records throw ot::Error.
  void complete();
  void fail(const std::string& message);

  const std::string& path() const { return path_; }
  RunStatus status() const { return status_; }
  std::size_t flush_count() const { return flush_count_; }

 private:
  struct CurveData {
    std::vector<std::string> columns;
    std::vector<std::vector<double>> values;  // one vector per column
  };

  void set_attribute_value(const std::string& name, AttributeValue value);
  void open_file(const RunReader* earlier);
  void require_open(const char* what) const;
  void maybe_flush();
  void write_file(const std::string& file) const;

  std::string path_;
  RunInfo info_;
  std::string created_utc_;
  RunStatus status_ = RunStatus::Running;
  std::string error_;
  std::map<std::string, AttributeValue> attributes_;
  std::vector<std::pair<std::string, CurveData>> curves_;  // in creation order
  std::vector<EvalRow> eval_;
  std::vector<EfficiencyEntry> efficiency_;
  std::map<std::int64_t, double> ranks_;
  double flush_interval_s_ = 10.0;
  bool dirty_ = false;
  std::size_t flush_count_ = 0;
  std::chrono::steady_clock::time_point last_flush_;
};

// A run file read completely into memory (the file is closed when open() returns).
class RunReader {
 public:
  // Reads and validates `path`. Throws ot::Error naming the file if it is missing, not
  // HDF5 (e.g. truncated), of another schema version, or malformed.
  static RunReader open(const std::string& path);

  const std::string& path() const { return path_; }
  int schema_version() const { return schema_version_; }
  RunStatus status() const { return status_; }
  const std::string& error() const { return error_; }  // empty unless status is Failed

  // Every scalar root attribute, the schema's own included (status, run_id, ...).
  const std::map<std::string, AttributeValue>& attributes() const { return attributes_; }
  bool has_attribute(const std::string& name) const { return attributes_.count(name) > 0; }
  // Typed access; throws ot::Error naming the file and attribute if missing or of
  // another type (double_attribute also accepts integers).
  const std::string& string_attribute(const std::string& name) const;
  double double_attribute(const std::string& name) const;
  std::int64_t int_attribute(const std::string& name) const;

  const std::map<std::string, Curve>& curves() const { return curves_; }
  const Curve& curve(const std::string& name) const;  // throws if absent
  const std::vector<EvalRow>& eval() const { return eval_; }
  const std::vector<EfficiencyEntry>& efficiency() const { return efficiency_; }
  double efficiency_value(const std::string& name) const;  // throws if absent
  const std::vector<RankThroughput>& ranks() const { return ranks_; }

 private:
  std::string path_;
  int schema_version_ = 0;
  RunStatus status_ = RunStatus::Running;
  std::string error_;
  std::map<std::string, AttributeValue> attributes_;
  std::map<std::string, Curve> curves_;
  std::vector<EvalRow> eval_;
  std::vector<EfficiencyEntry> efficiency_;
  std::vector<RankThroughput> ranks_;
};

// True only if `path` is a readable run file of this schema with status "completed".
// Never throws: a missing, truncated, running or failed file means "redo the run".
bool run_is_complete(const std::string& path) noexcept;

}  // namespace ot::results
