// slurm/slurm_client.cpp: see slurm_client.h.
#include "slurm/slurm_client.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/fs.h"

namespace ot::slurm {

CommandResult run_command(const std::vector<std::string>& argv) {
  OT_REQUIRE(!argv.empty(), "run_command: no command");
  int fd[2];
  OT_REQUIRE(::pipe(fd) == 0, "cannot create a pipe to run ", argv[0]);
  const pid_t pid = ::fork();
  OT_REQUIRE(pid >= 0, "cannot fork to run ", argv[0]);
  if (pid == 0) {
    ::dup2(fd[1], 1);
    ::dup2(fd[1], 2);
    ::close(fd[0]);
    ::close(fd[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fd[1]);
  CommandResult r;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd[0], buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    r.output.append(buf, static_cast<size_t>(n));
  }
  ::close(fd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

namespace {
std::string first_line(const std::string& s) {
  std::string t = s.substr(0, s.find('\n'));
  return t.empty() ? s : t;
}
}  // namespace

int64_t submit_script(const std::string& script_path) {
  const CommandResult r = run_command({"sbatch", "--parsable", script_path});
  OT_REQUIRE(r.exit_code != 127, "sbatch not found: is Slurm's client installed and on PATH?");
  OT_REQUIRE(r.exit_code == 0, "sbatch rejected ", script_path, ": ", first_line(r.output),
             r.output.find("configuration source") != std::string::npos
                 ? " (set SLURM_CONF to the cluster's slurm.conf, or run on a login node)"
                 : "");
  return parse_sbatch_job_id(r.output);
}

std::vector<QueueEntry> query_queue(const std::vector<int64_t>& job_ids) {
  if (job_ids.empty()) return {};
  std::string ids;
  for (int64_t id : job_ids) ids += (ids.empty() ? "" : ",") + std::to_string(id);
  // Jobs squeue no longer knows are not an error: they have ended.
  const CommandResult r = run_command({"squeue", "-h", "-a", "-o", "%i|%T", "--states=all", "-j", ids});
  OT_REQUIRE(r.exit_code != 127, "squeue not found");
  if (r.exit_code != 0 && r.output.find("Invalid job id") != std::string::npos) return {};
  OT_REQUIRE(r.exit_code == 0, "squeue failed: ", first_line(r.output));
  return parse_squeue(r.output);
}

void write_submission(const std::string& results_dir, const SubmissionRecord& r) {
  const std::string dir = path_join(results_dir, "slurm");
  std::filesystem::create_directories(dir);
  nlohmann::json j = {{"format", "offsite-slurm-submission"}, {"version", 1},   {"job_id", r.job_id},
                      {"mode", r.mode},                       {"sweep", r.sweep_file}, {"submitted_utc", r.submitted_utc},
                      {"run_ids", r.run_ids}};
  write_text_file_atomically(path_join(dir, std::to_string(r.job_id) + ".json"), j.dump(2) + "\n");
}

std::vector<SubmissionRecord> read_submissions(const std::string& results_dir) {
  std::vector<SubmissionRecord> out;
  const std::string dir = path_join(results_dir, "slurm");
  if (!dir_exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string f = e.path().string();
    if (e.path().extension() != ".json" || e.path().filename().string()[0] == '.') continue;
    try {
      const auto j = nlohmann::json::parse(read_text_file(f));
      OT_REQUIRE(j.value("format", "") == "offsite-slurm-submission", "not a submission record");
      SubmissionRecord r;
      r.job_id = j.at("job_id").get<int64_t>();
      r.mode = j.at("mode").get<std::string>();
      r.sweep_file = j.at("sweep").get<std::string>();
      r.submitted_utc = j.value("submitted_utc", "");
      r.run_ids = j.at("run_ids").get<std::vector<std::string>>();
      out.push_back(r);
    } catch (const std::exception& ex) {
      fail(f, ": unreadable submission record (", ex.what(), ")");
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.job_id < b.job_id; });
  return out;
}

}  // namespace ot::slurm
