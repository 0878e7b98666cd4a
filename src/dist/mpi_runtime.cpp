// dist/mpi_runtime.cpp: see mpi_runtime.h.
#include "dist/mpi_runtime.h"

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "dist/mpi_impl.h"
#include "util/error.h"

namespace ot::dist {

bool built_with_mpi() { return OT_WITH_MPI != 0; }

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

#if OT_WITH_MPI

namespace {

bool g_thread_multiple = false;

void finalize_at_exit() {
  int init = 0, done = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&done);
  if (init && !done) MPI_Finalize();
}

// Sleeps between polls, from 1 ms up to 50 ms, so a long wait costs almost no CPU.
class Backoff {
 public:
  void pause() {
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us_));
    delay_us_ = std::min(delay_us_ * 2, 50000);
  }

 private:
  int delay_us_ = 1000;
};

std::shared_ptr<MpiGroup> wrap(MPI_Comm c) {
  auto impl = std::make_unique<MpiGroup::Impl>();
  impl->comm = c;
  return std::make_shared<MpiGroup>(std::move(impl));
}

}  // namespace

void init_mpi() {
  static std::once_flag once;
  std::call_once(once, [] {
    int init = 0;
    MPI_Initialized(&init);
    if (!init) {
      int provided = 0;
      check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
      g_thread_multiple = provided >= MPI_THREAD_MULTIPLE;
      std::atexit(finalize_at_exit);
    } else {
      int provided = 0;
      MPI_Query_thread(&provided);
      g_thread_multiple = provided >= MPI_THREAD_MULTIPLE;
    }
    // Errors come back as codes and become ot::Error messages instead of aborting the job.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  });
}

bool mpi_initialized() {
  int init = 0, done = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&done);
  return init && !done;
}

bool mpi_thread_multiple() { return g_thread_multiple; }

void abort_mpi(int code) {
  if (mpi_initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

MpiGroup::MpiGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MpiGroup::~MpiGroup() {
  if (impl_ && impl_->comm != MPI_COMM_NULL && mpi_initialized()) MPI_Comm_free(&impl_->comm);
}

std::shared_ptr<MpiGroup> MpiGroup::world() {
  OT_REQUIRE(mpi_initialized(), "MPI is not initialised");
  MPI_Comm c;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &c), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return wrap(c);
}

int MpiGroup::rank() const {
  int r = 0;
  MPI_Comm_rank(impl_->comm, &r);
  return r;
}

int MpiGroup::size() const {
  int s = 0;
  MPI_Comm_size(impl_->comm, &s);
  return s;
}

std::shared_ptr<MpiGroup> MpiGroup::split(int color, int key) const {
  MPI_Comm c;
  check_mpi(MPI_Comm_split(impl_->comm, color, key, &c), "MPI_Comm_split");
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return wrap(c);
}

std::shared_ptr<MpiGroup> MpiGroup::dup() const {
  MPI_Comm c;
  check_mpi(MPI_Comm_dup(impl_->comm, &c), "MPI_Comm_dup");
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return wrap(c);
}

void MpiGroup::send_ints(const std::vector<int64_t>& v, int dest, int tag) const {
  check_mpi(MPI_Send(v.data(), static_cast<int>(v.size()), MPI_INT64_T, dest, tag, impl_->comm), "MPI_Send");
}

std::vector<int64_t> MpiGroup::recv_ints(int source, int tag, int* from) const {
  MPI_Status st;
  int ready = 0;
  Backoff wait;
  for (;;) {
    check_mpi(MPI_Iprobe(source < 0 ? MPI_ANY_SOURCE : source, tag, impl_->comm, &ready, &st), "MPI_Iprobe");
    if (ready) break;
    wait.pause();
  }
  int n = 0;
  MPI_Get_count(&st, MPI_INT64_T, &n);
  std::vector<int64_t> v(static_cast<size_t>(n));
  check_mpi(MPI_Recv(v.data(), n, MPI_INT64_T, st.MPI_SOURCE, tag, impl_->comm, MPI_STATUS_IGNORE), "MPI_Recv");
  if (from) *from = st.MPI_SOURCE;
  return v;
}

void MpiGroup::bcast_ints(std::vector<int64_t>& v, int root) const {
  int64_t n = static_cast<int64_t>(v.size());
  check_mpi(MPI_Bcast(&n, 1, MPI_INT64_T, root, impl_->comm), "MPI_Bcast");
  v.resize(static_cast<size_t>(n));
  check_mpi(MPI_Bcast(v.data(), static_cast<int>(n), MPI_INT64_T, root, impl_->comm), "MPI_Bcast");
}

void MpiGroup::bcast_string(std::string& s, int root) const {
  int64_t n = static_cast<int64_t>(s.size());
  check_mpi(MPI_Bcast(&n, 1, MPI_INT64_T, root, impl_->comm), "MPI_Bcast");
  s.resize(static_cast<size_t>(n));
  check_mpi(MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, root, impl_->comm), "MPI_Bcast");
}

void MpiGroup::barrier() const { check_mpi(MPI_Barrier(impl_->comm), "MPI_Barrier"); }

void MpiGroup::idle_barrier() const {
  MPI_Request req;
  check_mpi(MPI_Ibarrier(impl_->comm, &req), "MPI_Ibarrier");
  int done = 0;
  Backoff wait;
  for (;;) {
    check_mpi(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test (barrier)");
    if (done) return;
    wait.pause();
  }
}

bool MpiGroup::arrive_within(double seconds) const {
  MPI_Request req;
  check_mpi(MPI_Ibarrier(impl_->comm, &req), "MPI_Ibarrier");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int done = 0;
  Backoff wait;
  for (;;) {
    check_mpi(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test (barrier)");
    if (done) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    wait.pause();
  }
}

#else  // built without MPI

namespace {
[[noreturn]] void no_mpi() {
  fail("this ot was built without MPI (configure with -DOT_WITH_MPI=ON and an MPI installation)");
}
}  // namespace

void init_mpi() { no_mpi(); }
bool mpi_initialized() { return false; }
bool mpi_thread_multiple() { return false; }
void abort_mpi(int code) { std::_Exit(code); }
MpiGroup::MpiGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MpiGroup::~MpiGroup() = default;
std::shared_ptr<MpiGroup> MpiGroup::world() { no_mpi(); }
int MpiGroup::rank() const { return 0; }
int MpiGroup::size() const { return 1; }
std::shared_ptr<MpiGroup> MpiGroup::split(int, int) const { no_mpi(); }
std::shared_ptr<MpiGroup> MpiGroup::dup() const { no_mpi(); }
void MpiGroup::send_ints(const std::vector<int64_t>&, int, int) const { no_mpi(); }
std::vector<int64_t> MpiGroup::recv_ints(int, int, int*) const { no_mpi(); }
void MpiGroup::bcast_ints(std::vector<int64_t>&, int) const { no_mpi(); }
void MpiGroup::bcast_string(std::string&, int) const { no_mpi(); }
void MpiGroup::barrier() const { no_mpi(); }
void MpiGroup::idle_barrier() const { no_mpi(); }
bool MpiGroup::arrive_within(double) const { no_mpi(); }

#endif

}  // namespace ot::dist
