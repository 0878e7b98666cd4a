// tests/unit/test_support.cpp: see test_support.h.
#include "test_support.h"

#include <sys/wait.h>

#include <fstream>
#include <sstream>

namespace ot::test {

CliResult run_cli(const std::string& args) { return run_cli_env("", args); }

CliResult run_cli_env(const std::string& env, const std::string& args) {
  TempDir tmp;
  std::string out = tmp.file("stdout"), err = tmp.file("stderr");
  std::string cmd = env + std::string(OT_CLI_PATH) + " " + args + " >" + out + " 2>" + err;
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace ot::test
