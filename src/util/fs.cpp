// util/fs.cpp: implementation of the file helpers in fs.h (POSIX).
#include "util/fs.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/error.h"

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

void write_text_file_atomically(const std::string& path, const std::string& contents) {
  write_file_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    OT_REQUIRE(out.good(), tmp, ": cannot create file: ", std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    OT_REQUIRE(out.good(), tmp, ": write failed (disk full?)");
  });
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
    fs::remove(entry.path(), ec);
  }
}

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
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  OT_REQUIRE(!ec, tmp, ": cannot create directory: ", ec.message());
  try {
    fill(tmp);
    for (const auto& entry : fs::directory_iterator(tmp)) fsync_path(entry.path().string(), false);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  // Swap in: move the old directory aside first so that a failure leaves one intact copy.
  std::string old = temp_sibling(target.string()) + ".old";
  bool had_old = dir_exists(target.string());
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

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (!b.empty() && b.front() == '/') return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

}  // namespace ot
