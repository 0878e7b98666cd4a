// slurm/batch_script.cpp: see batch_script.h.
#include "slurm/batch_script.h"

#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "util/error.h"
#include "util/fs.h"

namespace ot::slurm {

namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

int64_t to_int(const std::string& s, const std::string& what) {
  OT_REQUIRE(all_digits(s) && s.size() < 18, what, ": expected a number, got '", s, "'");
  return std::stoll(s);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep)) out.push_back(cur);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

// Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
bool valid_time(const std::string& t) {
  std::string rest = t;
  const auto dash = t.find('-');
  if (dash != std::string::npos) {
    if (!all_digits(t.substr(0, dash))) return false;
    rest = t.substr(dash + 1);
  }
  const auto parts = split(rest, ':');
  if (parts.empty() || parts.size() > 3) return false;
  for (const auto& p : parts)
    if (!all_digits(p)) return false;
  return true;
}

}  // namespace

int64_t ranks_per_run(const SubmitOptions& o) {
  if (o.ranks_per_run > 0) return o.ranks_per_run;
  return o.gpus_per_run > 0 ? o.gpus_per_run : 1;
}

int64_t allocation_ranks(const SubmitOptions& o) {
  // One team per node unless a node holds several: nodes x ranks per run.
  return o.nodes * ranks_per_run(o);
}

void validate(const SubmitOptions& o) {
  OT_REQUIRE(o.mode == "array" || o.mode == "allocation", "--mode: expected array or allocation, got '", o.mode, "'");
  OT_REQUIRE(o.nodes >= 1, "--nodes: must be at least 1, got ", o.nodes);
  OT_REQUIRE(o.gpus_per_run >= 0, "--gpus-per-run: must not be negative, got ", o.gpus_per_run);
  OT_REQUIRE(o.ranks_per_run >= 0, "--ranks-per-run: must be at least 1, got ", o.ranks_per_run);
  OT_REQUIRE(o.gpus_per_run == 0 || o.ranks_per_run == 0 || o.ranks_per_run == o.gpus_per_run,
             "--ranks-per-run ", o.ranks_per_run, " and --gpus-per-run ", o.gpus_per_run,
             " disagree: each rank of a run drives one GPU");
  OT_REQUIRE(o.cpus_per_rank >= 0, "--cpus-per-rank: must not be negative, got ", o.cpus_per_rank);
  OT_REQUIRE(o.throttle >= 0, "--throttle: must not be negative, got ", o.throttle);
  OT_REQUIRE(o.throttle == 0 || o.mode == "array", "--throttle: only array jobs are throttled (--mode array)");
  OT_REQUIRE(o.signal_seconds >= 1 && o.signal_seconds <= 65535, "--signal-seconds: expected 1 to 65535, got ",
             o.signal_seconds);
  OT_REQUIRE(o.time.empty() || valid_time(o.time), "--time: '", o.time,
             "' is not a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)");
  OT_REQUIRE(o.mode == "allocation" || o.nodes == 1 || ranks_per_run(o) > 1,
             "--nodes ", o.nodes, ": an array task runs one run; give --ranks-per-run/--gpus-per-run to span nodes");
  for (const auto& s : o.sets)
    OT_REQUIRE(s.find('=') != std::string::npos, "--set: expected KEY=VALUE, got '", s, "'");
}

std::string shell_quote(const std::string& w) {
  std::string out = "'";
  for (char c : w) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string render_template(const std::string& text, const std::string& name,
                            const std::vector<std::pair<std::string, std::string>>& values) {
  std::map<std::string, std::string> v(values.begin(), values.end());
  std::string out;
  size_t line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') ++line;
    if (c != '@') {
      out += c;
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '@') {  // "@@": a literal '@'
      out += '@';
      ++i;
      continue;
    }
    const size_t end = text.find('@', i + 1);
    const size_t nl = text.find('\n', i + 1);
    OT_REQUIRE(end != std::string::npos && (nl == std::string::npos || end < nl), name, ":", line,
               ": unterminated placeholder (write @NAME@, or @@ for a literal @)");
    const std::string key = text.substr(i + 1, end - i - 1);
    auto it = v.find(key);
    OT_REQUIRE(it != v.end(), name, ":", line, ": unknown placeholder @", key, "@");
    out += it->second;
    i = end;
  }
  return out;
}

std::string render_batch_script(const SubmitOptions& o, const SweepJob& job, const std::string& template_dir) {
  validate(o);
  OT_REQUIRE(job.runs > 0, job.sweep_file, ": the sweep has no runs to submit");
  const std::string tpl = path_join(template_dir, o.mode + ".sbatch.in");
  OT_REQUIRE(file_exists(tpl), tpl, ": batch script template not found (set $OT_SLURM_DIR to the repository's slurm/ folder)");
  const int64_t R = ranks_per_run(o);
  std::string lines;
  auto line = [&](const std::string& s) { lines += "#SBATCH " + s + "\n"; };
  if (!o.partition.empty()) line("--partition=" + o.partition);
  if (!o.account.empty()) line("--account=" + o.account);
  if (!o.qos.empty()) line("--qos=" + o.qos);
  if (!o.time.empty()) line("--time=" + o.time);
  if (o.mode == "array") {
    line("--nodes=" + std::to_string(o.nodes));
    line("--ntasks=" + std::to_string(R));
  } else {
    line("--nodes=" + std::to_string(o.nodes));
    line("--ntasks=" + std::to_string(allocation_ranks(o)));
  }
  if (o.gpus_per_run > 0) line("--gpus-per-task=1");
  if (o.cpus_per_rank > 0) line("--cpus-per-task=" + std::to_string(o.cpus_per_rank));
  if (!lines.empty()) lines.pop_back();
  std::string sets;
  for (const auto& s : o.sets) sets += " --set " + shell_quote(s);
  std::string array = "0-" + std::to_string(job.runs - 1);
  if (o.throttle > 0) array += "%" + std::to_string(o.throttle);
  std::string name = "ot-" + job.experiment;
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  const std::vector<std::pair<std::string, std::string>> values = {
      {"EXPERIMENT", job.experiment},
      {"RUNS", std::to_string(job.runs)},
      {"SWEEP", shell_quote(job.sweep_file)},
      {"JOB_NAME", name},
      {"ARRAY", array},
      // #SBATCH lines are not shell words: Slurm takes the rest of the line as the path.
      {"LOG_DIR", job.log_dir},
      {"SIGNAL_SECONDS", std::to_string(o.signal_seconds)},
      {"SBATCH_LINES", lines},
      {"WORK_DIR", shell_quote(job.work_dir)},
      {"OT", shell_quote(job.ot)},
      {"SETS", sets},
      {"RANKS_PER_RUN", std::to_string(R)},
      // A run over several ranks starts them with srun (MPI through PMIx); one rank runs directly.
      {"LAUNCH", R > 1 ? "srun --mpi=pmix" : ""},
  };
  std::string script = render_template(read_text_file(tpl), tpl, values);
  // An empty @LAUNCH@ leaves a leading space: keep the command line tidy.
  const std::string odd = "\n " + shell_quote(job.ot);
  for (size_t p = script.find(odd); p != std::string::npos; p = script.find(odd)) script.erase(p + 1, 1);
  return script;
}

int64_t parse_sbatch_job_id(const std::string& output) {
  std::string s = output;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  const auto nl = s.find_last_of('\n');
  if (nl != std::string::npos) s = s.substr(nl + 1);  // sbatch may print warnings first
  const std::string id = s.substr(0, s.find(';'));
  OT_REQUIRE(all_digits(id), "sbatch --parsable: expected a job id, got '", output, "'");
  return std::stoll(id);
}

std::vector<QueueEntry> parse_squeue(const std::string& output) {
  std::vector<QueueEntry> out;
  std::istringstream is(output);
  std::string ln;
  while (std::getline(is, ln)) {
    if (ln.empty()) continue;
    const auto bar = ln.find('|');
    OT_REQUIRE(bar != std::string::npos, "squeue: expected JOBID|STATE, got '", ln, "'");
    QueueEntry e;
    const std::string id = ln.substr(0, bar);
    e.state = ln.substr(bar + 1);
    const auto us = id.find('_');
    e.job_id = to_int(id.substr(0, us), "squeue job id");
    if (us != std::string::npos) {
      std::string tasks = id.substr(us + 1);
      if (!tasks.empty() && tasks.front() == '[') {
        OT_REQUIRE(tasks.back() == ']', "squeue: malformed array range in '", ln, "'");
        tasks = tasks.substr(1, tasks.size() - 2);
        tasks = tasks.substr(0, tasks.find('%'));  // throttle suffix
        for (const auto& part : split(tasks, ',')) {
          const auto dash = part.find('-');
          const int64_t lo = to_int(part.substr(0, dash), "squeue array task");
          const int64_t hi = dash == std::string::npos ? lo : to_int(part.substr(dash + 1), "squeue array task");
          for (int64_t t = lo; t <= hi; ++t) e.array_tasks.push_back(t);
        }
      } else {
        e.array_tasks.push_back(to_int(tasks, "squeue array task"));
      }
    }
    out.push_back(e);
  }
  return out;
}

bool job_is_live(const std::string& state) {
  for (const char* live : {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                           "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"})
    if (state == live) return true;
  return false;
}

}  // namespace ot::slurm
