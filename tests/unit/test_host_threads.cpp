// tests/unit/test_host_threads.cpp: util/host_threads.h. LibTorch's threads are set and OpenBLAS
// (Debian's LibTorch links it) reports its build, its own pool (pthreads build) taking the
// threads; OT_HOST_MEMORY is validated; and with freed memory kept, a block the size of a step's
// logits costs no page faults the second time it is allocated and written.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <ATen/Parallel.h>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "util/error.h"
#include "util/host_threads.h"

namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// Allocates and writes `bytes`, frees them, and returns the minor page faults that took.
long faults_of_one_block(size_t bytes) {
  const long before = minor_faults();
  {
    std::vector<char> block(bytes, 1);  // written: every page is touched
    EXPECT_EQ(block[bytes / 2], 1);
  }
  return minor_faults() - before;
}

}  // namespace

TEST(HostThreads, SetsLibTorchThreadsAndReadsOpenBlas) {
  const int before = at::get_num_threads();
  ot::set_host_threads(1);
  EXPECT_EQ(at::get_num_threads(), 1);
  ot::set_host_threads(0);  // 0 keeps the count
  EXPECT_EQ(at::get_num_threads(), 1);
  // One thread never competes, whatever OpenBLAS's build.
  EXPECT_EQ(ot::match_blas_threads(1), "");
  const ot::BlasThreading b = ot::blas_threading();
  if (b.openblas) {
    EXPECT_TRUE(b.parallel == 0 || b.parallel == 1 || b.parallel == 2) << b.parallel;
    EXPECT_EQ(b.config.rfind("OpenBLAS", 0), 0u) << b.config;
    // Only the pthreads build warns, and the warning names the fix.
    const std::string w = ot::match_blas_threads(2);
    if (b.parallel == 1) {
      // Its pool runs the products on both threads, LibTorch's own operations on one.
      EXPECT_NE(w.find("openblas-openmp"), std::string::npos) << w;
      EXPECT_EQ(at::get_num_threads(), 1);
      EXPECT_EQ(ot::blas_threads(), 2);
      ot::match_blas_threads(0);  // 0 keeps the split
      EXPECT_EQ(ot::blas_threads(), 2);
      ot::match_blas_threads(1);
      EXPECT_EQ(ot::blas_threads(), 1);
    } else {
      EXPECT_EQ(w, "");
      EXPECT_EQ(at::get_num_threads(), 2);
      EXPECT_EQ(ot::blas_threads(), 2);
    }
  }
  ot::set_host_threads(before);
}

TEST(HostThreads, HostMemoryPolicyIsValidated) {
  ASSERT_EQ(std::getenv("OT_HOST_MEMORY"), nullptr);
  setenv("OT_HOST_MEMORY", "release", 1);
  EXPECT_FALSE(ot::keep_freed_host_memory());
  setenv("OT_HOST_MEMORY", "sometimes", 1);
  try {
    ot::keep_freed_host_memory();
    ADD_FAILURE() << "OT_HOST_MEMORY=sometimes was accepted";
  } catch (const ot::Error& e) {
    EXPECT_NE(std::strstr(e.what(), "OT_HOST_MEMORY=sometimes"), nullptr) << e.what();
    EXPECT_NE(std::strstr(e.what(), "expected keep"), nullptr) << e.what();
  }
  unsetenv("OT_HOST_MEMORY");
}

TEST(HostThreads, FreedBlocksAreReusedWithoutPageFaults) {
  if (const char* t = std::getenv("GLIBC_TUNABLES"); t != nullptr && std::strstr(t, "malloc.") != nullptr)
    GTEST_SKIP() << "GLIBC_TUNABLES sets malloc options: " << t;
  ASSERT_TRUE(ot::keep_freed_host_memory());
  const size_t bytes = size_t{512} * 50272 * 4;  // the OPT-125m step's logits, 103 MB
  const long pages = static_cast<long>(bytes / 4096);
  faults_of_one_block(bytes);  // the heap grows to hold it once
  const long again = faults_of_one_block(bytes);
  // glibc's default maps such a block afresh each time: a fault for each of its 25,136 pages.
  EXPECT_LT(again, pages / 20) << again << " faults for a block of " << pages << " pages";
}
