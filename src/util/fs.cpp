// util/fs.cpp: implementation of the file helpers in fs.h (POSIX).
#include "util/fs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>

#include "util/error.h"
#include "util/hash.h"

namespace ot {
namespace fs = std::filesystem;

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool dir_exists(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

std::uint64_t file_size(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  OT_REQUIRE(!ec, path, ": cannot stat file: ", ec.message());
  return n;
}

std::string read_text_file(const std::string& path) {
  OT_REQUIRE(!dir_exists(path), path, ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  OT_REQUIRE(in.good(), path, ": cannot open file: ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  OT_REQUIRE(!in.bad(), path, ": read error");
  return os.str();
}

std::vector<char> read_binary_file(const std::string& path) {
  std::string s = read_text_file(path);
  return std::vector<char>(s.begin(), s.end());
}

std::shared_ptr<MappedFile> MappedFile::open(const std::string& path) {
  OT_REQUIRE(!dir_exists(path), path, ": is a directory, expected a file");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  OT_REQUIRE(fd >= 0, path, ": cannot open file: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    fail(path, ": cannot stat file: ", std::strerror(e));
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->path_ = path;
  m->size_ = static_cast<std::size_t>(st.st_size);
  if (m->size_ > 0) {
    // MAP_PRIVATE + PROT_WRITE: writes (e.g. training a parameter that views the file)
    // copy the touched page; the file itself is never modified.
    void* p = ::mmap(nullptr, m->size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      fail(path, ": cannot memory-map file: ", std::strerror(e));
    }
    m->data_ = static_cast<char*>(p);
  }
  ::close(fd);
  return m;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

namespace {
std::string temp_sibling(const std::string& path) {
  fs::path p(path);
  std::string name = "." + p.filename().string() + ".tmp." + std::to_string(::getpid());
  return (p.parent_path() / name).string();
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string parent_or_dot(const std::string& path) {
  fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}
}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string&)>& write) {
  std::string parent = parent_or_dot(path);
  OT_REQUIRE(dir_exists(parent), path, ": parent directory does not exist");
  std::string tmp = temp_sibling(path);
  try {
    write(tmp);
    fsync_path(tmp, false);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail(path, ": cannot move finished file into place: ", ec.message());
  }
  fsync_path(parent, true);
}

namespace {
void write_contents(const std::string& path, const std::string& tmp, const std::string& contents) {
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  OT_REQUIRE(out.good(), path, ": cannot create file (", std::strerror(errno), ")");
  errno = 0;
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.flush();
  OT_REQUIRE(out.good(), path, ": cannot write ", contents.size(), " bytes (",
             errno ? std::strerror(errno) : "write failed", "); the file is left as it was");
  out.close();
  OT_REQUIRE(!out.fail(), path, ": cannot write (", errno ? std::strerror(errno) : "close failed",
             "); the file is left as it was");
}
}  // namespace

void write_text_file_atomically(const std::string& path, const std::string& contents) {
  write_file_atomically(path, [&](const std::string& tmp) { write_contents(path, tmp, contents); });
}

void write_text_files_together(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::string> tmps;
  auto drop = [&] {
    std::error_code ec;
    for (const std::string& t : tmps) fs::remove(t, ec);
  };
  try {
    for (const auto& [path, contents] : files) {
      OT_REQUIRE(dir_exists(parent_or_dot(path)), path, ": parent directory does not exist");
      tmps.push_back(temp_sibling(path));
      write_contents(path, tmps.back(), contents);
      fsync_path(tmps.back(), false);
    }
  } catch (...) {
    drop();
    throw;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    std::error_code ec;
    fs::rename(tmps[i], files[i].first, ec);
    if (ec) {  // renames need no space; this is a permission or a vanished directory
      drop();
      fail(files[i].first, ": cannot move finished file into place: ", ec.message());
    }
  }
  for (const auto& f : files) fsync_path(parent_or_dot(f.first), true);
}

void remove_atomic_write_leftovers(const std::string& path) {
  fs::path p(path);
  std::string prefix = "." + p.filename().string() + ".tmp.";
  std::string own = fs::path(temp_sibling(path)).filename().string();
  std::error_code ec;
  fs::directory_iterator it(parent_or_dot(path), ec);
  if (ec) return;
  for (const auto& entry : it) {
    std::string name = entry.path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    // Only "<prefix><pid>": the directory variant's "<pid>.old" and others stay.
    bool digits = name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
    if (!digits || name == own || !entry.is_regular_file(ec)) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.size() <= 9) {  // a pid that fits pid_t: skip a writer still alive here
      const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
      if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM)) continue;
    }
    fs::remove(entry.path(), ec);
  }
}

namespace {
// Temporary directories (".<name>.tmp.<pid>" and its ".old") that processes killed mid-write
// left beside `target`: those of processes no longer alive are removed. A directory output has
// one writer at a time (rank 0 of a team, under a run's claim or a cache lock), on this host.
// A writer that fills `target` through another atomic directory write (a model saved into
// the temporary) nests one level: "..<name>.tmp.<pid>.tmp.<pid>" is removed with its parent's.
void remove_dead_writers_dirs(const std::string& target) {
  const std::string base = fs::path(target).filename().string();
  std::error_code ec;
  fs::directory_iterator it(parent_or_dot(target), ec);
  if (ec) return;
  std::vector<fs::path> dead;
  for (const auto& entry : it) {
    const std::string name = entry.path().filename().string();
    for (const std::string& prefix : {"." + base + ".tmp.", ".." + base + ".tmp."}) {
      if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0 || !entry.is_directory(ec)) continue;
      // "<pid>", "<pid>.old", "<pid>.tmp.<pid2>", "<pid>.tmp.<pid2>.old": the first pid decides.
      std::string rest = name.substr(prefix.size());
      const size_t digits = rest.find_first_not_of("0123456789");
      const std::string tail = digits == std::string::npos ? "" : rest.substr(digits);
      if (digits == 0) continue;
      std::string inner = tail.rfind(".tmp.", 0) == 0 ? tail.substr(5) : "";
      if (inner.size() > 4 && inner.compare(inner.size() - 4, 4, ".old") == 0) inner.resize(inner.size() - 4);
      const bool known = tail.empty() || tail == ".old" ||
                         (!inner.empty() && inner.find_first_not_of("0123456789") == std::string::npos);
      if (!known) continue;
      const long pid = std::strtol(rest.c_str(), nullptr, 10);
      if (pid != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) dead.push_back(entry.path());
    }
  }
  for (const fs::path& d : dead) fs::remove_all(d, ec);
}
}  // namespace

void write_dir_atomically(const std::string& dir,
                          const std::function<void(const std::string&)>& fill) {
  fs::path target = fs::absolute(dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();
  fs::path parent = target.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  OT_REQUIRE(!ec, parent.string(), ": cannot create directory: ", ec.message());
  OT_REQUIRE(!file_exists(target.string()), target.string(),
             ": exists and is a file, expected a directory path");
  std::string tmp = temp_sibling(target.string());
  remove_dead_writers_dirs(target.string());
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  OT_REQUIRE(!ec, tmp, ": cannot create directory: ", ec.message());
  try {
    fill(tmp);
    for (const auto& entry : fs::directory_iterator(tmp)) fsync_path(entry.path().string(), false);
  } catch (const Error& e) {
    fs::remove_all(tmp, ec);
    // Name the output, not its temporary: ".../.out.tmp.123/x" reads ".../out/x".
    std::string m = e.what();
    for (size_t at = m.find(tmp); at != std::string::npos; at = m.find(tmp, at + target.string().size()))
      m.replace(at, tmp.size(), target.string());
    throw Error(m);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  bool had_old = dir_exists(target.string());
  // Swap in: one atomic exchange where the file system has it (a kill at any point leaves the
  // old or the new directory in place), the old directory then removed from its new name.
  if (had_old && ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp, ec);
    fsync_path(parent.string(), true);
    return;
  }
  // Otherwise move the old directory aside first so that a failure leaves one intact copy.
  std::string old = temp_sibling(target.string()) + ".old";
  if (had_old) {
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    OT_REQUIRE(!ec, target.string(), ": cannot replace existing directory: ", ec.message());
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code ec2;
    if (had_old) fs::rename(old, target, ec2);
    fs::remove_all(tmp, ec2);
    fail(target.string(), ": cannot move finished directory into place: ", ec.message());
  }
  if (had_old) fs::remove_all(old, ec);
  fsync_path(parent.string(), true);
}

namespace {
constexpr const char* kChecksumList = ".checksums";

// FNV-1a 64 of a file, read in chunks; false if it cannot be read.
bool file_checksum(const std::string& path, uint64_t& h, uint64_t& size) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) return false;
  h = kFnvOffsetBasis;
  size = 0;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize n = in.gcount();
    if (n <= 0) break;
    h = fnv1a(buf.data(), static_cast<size_t>(n), h);
    size += static_cast<uint64_t>(n);
  }
  return !in.bad();
}
}  // namespace

void write_checksum_list(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != kChecksumList) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::ostringstream os;
  for (const std::string& n : names) {
    uint64_t h = 0, size = 0;
    OT_REQUIRE(file_checksum(path_join(dir, n), h, size), path_join(dir, n), ": cannot read file to checksum it");
    os << hex_digits(h, 16) << " " << size << " " << n << "\n";
  }
  write_text_file_atomically(path_join(dir, kChecksumList), os.str());
}

std::string verify_checksum_list(const std::string& dir) {
  const std::string list = path_join(dir, kChecksumList);
  if (!file_exists(list)) return "no checksum list (" + std::string(kChecksumList) + ")";
  std::istringstream in(read_text_file(list));
  std::string line;
  size_t files = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string want_hex, name;
    uint64_t want_size = 0;
    if (!(ls >> want_hex >> want_size) || !std::getline(ls >> std::ws, name) || name.empty())
      return std::string(kChecksumList) + ": malformed line '" + line.substr(0, 80) + "'";
    uint64_t h = 0, size = 0;
    if (!file_exists(path_join(dir, name))) return name + ": missing";
    if (!file_checksum(path_join(dir, name), h, size)) return name + ": unreadable";
    if (size != want_size) return name + ": " + std::to_string(size) + " bytes, expected " + std::to_string(want_size);
    if (hex_digits(h, 16) != want_hex) return name + ": checksum does not match";
    ++files;
  }
  if (files == 0) return std::string(kChecksumList) + ": lists no files";
  return "";
}

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (!b.empty() && b.front() == '/') return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

}  // namespace ot
