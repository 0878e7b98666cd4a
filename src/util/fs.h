// util/fs.h: file helpers every layer uses: whole-file reads with clear errors,
// read-only memory maps, and atomic writes (temp file + fsync + rename) so that a
// crash never leaves a half-written output behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ot {

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
std::uint64_t file_size(const std::string& path);

// Reads a whole file; throws ot::Error naming the path if it cannot.
std::string read_text_file(const std::string& path);
std::vector<char> read_binary_file(const std::string& path);

// A private (copy-on-write) memory map of a whole file. Pages stay backed by the file
// until written, so tensors viewing it cost no anonymous memory.
class MappedFile {
 public:
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  char* data() const { return data_; }
  std::size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::string path_;
};

// Writes `path` atomically: `write` receives a temporary path next to `path`; when it
// returns, the temporary is fsync'ed and renamed over `path`. On any exception the
// temporary is removed and `path` is untouched.
void write_file_atomically(const std::string& path,
                           const std::function<void(const std::string& tmp_path)>& write);
void write_text_file_atomically(const std::string& path, const std::string& contents);

// Several files replaced as one: each is written in full to its temporary first, and only
// when all are written are they renamed into place (a failure leaves every old file as it was).
void write_text_files_together(const std::vector<std::pair<std::string, std::string>>& path_and_contents);

// Removes temporaries that write_file_atomically(path, ...) left behind in processes that
// were killed mid-write: those of processes no longer alive on this machine (this one's own
// temporary, and a concurrent writer's, are kept).
void remove_atomic_write_leftovers(const std::string& path);

// Same idea for a directory: `fill` populates a temporary sibling directory which then
// replaces `dir` (an existing `dir` is removed only after `fill` succeeded).
void write_dir_atomically(const std::string& dir,
                          const std::function<void(const std::string& tmp_dir)>& fill);

// A cache directory's checksum list: `<dir>/.checksums` holds one line per regular file of
// `dir` ("<FNV-1a 64 hex> <size> <name>"). Write it last into a finished (staging) directory;
// verify it before trusting the directory: "" when every listed file is there with its size
// and checksum and no list is missing, else what is wrong ("no checksum list",
// "model.safetensors: checksum does not match", ...).
void write_checksum_list(const std::string& dir);
std::string verify_checksum_list(const std::string& dir);

// Joins path components with a single '/'.
std::string path_join(const std::string& a, const std::string& b);

}  // namespace ot
