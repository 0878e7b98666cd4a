// tests/unit/test_preempted.cpp: the typed preemption (ot::Preempted) that the training
// jobs throw when a stop signal ends training: it names what stopped and where its state is,
// and is an ot::Error to code that does not tell preemption apart.
#include <gtest/gtest.h>

#include "util/error.h"
#include "util/signals.h"

namespace ot {
namespace {

TEST(Preempted, SaysWhatStoppedAndWhereItsStateIs) {
  try {
    throw Preempted("fine-tuning", "/runs/x/finetune.state");
  } catch (const Error& e) {  // an ot::Error to code that does not tell preemption apart
    const auto* p = dynamic_cast<const Preempted*>(&e);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->what_stopped(), "fine-tuning");
    EXPECT_EQ(p->state_path(), "/runs/x/finetune.state");
    EXPECT_STREQ(e.what(),
                 "fine-tuning interrupted; its state is in /runs/x/finetune.state (run the same command again to resume)");
  }
}

TEST(Preempted, OtherErrorsAreNotPreemptions) {
  bool preempted = false;
  try {
    fail("bad value");
  } catch (const Preempted&) {
    preempted = true;
  } catch (const Error&) {
  }
  EXPECT_FALSE(preempted);
}

}  // namespace
}  // namespace ot
