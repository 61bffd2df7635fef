#include "core/deadline_timer.hpp"

#include <gtest/gtest.h>
#include <uv.h>

#include <cstdint>
#include <memory>

namespace gh {
namespace {

// A loop with one DeadlineTimer whose expiries are recorded in loop time.
struct TimerFixture : ::testing::Test {
  uv_loop_t loop{};
  std::unique_ptr<DeadlineTimer> timer;
  std::uint64_t start_ms = 0;
  int expiries = 0;
  std::uint64_t expired_after_ms = 0;
  bool closed = false;

  void SetUp() override {
    ASSERT_EQ(uv_loop_init(&loop), 0);
    timer = std::make_unique<DeadlineTimer>(&loop, this, [](void* self) {
      auto& f = *static_cast<TimerFixture*>(self);
      ++f.expiries;
      f.expired_after_ms = uv_now(&f.loop) - f.start_ms;
    });
    uv_update_time(&loop);
    start_ms = uv_now(&loop);
  }

  void TearDown() override {
    timer->close([](void* self) { static_cast<TimerFixture*>(self)->closed = true; });
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_TRUE(closed);
    EXPECT_EQ(uv_loop_close(&loop), 0);
  }

  // Runs the loop for `ms` with `action` called halfway (loop time advances by real time).
  template <class Action>
  void run_with_midway(std::uint64_t ms, Action action) {
    struct Midway {
      uv_timer_t timer{};
      Action action;
    } midway{{}, action};
    uv_timer_init(&loop, &midway.timer);
    midway.timer.data = &midway;
    uv_timer_start(
        &midway.timer, [](uv_timer_t* t) { static_cast<Midway*>(t->data)->action(); }, ms / 2, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&midway.timer), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
};

TEST_F(TimerFixture, ExpiresOnceAtItsDeadline) {
  timer->arm(20);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(expiries, 1);
  EXPECT_GE(expired_after_ms, 20u);
  EXPECT_FALSE(timer->armed());
}

TEST_F(TimerFixture, PushedBackDeadlineExpiresAtTheLaterTime) {
  timer->arm(40);
  run_with_midway(40, [this] {
    EXPECT_EQ(expiries, 0);
    timer->arm(40);  // at ~20 ms: the deadline moves to ~60 ms
  });
  EXPECT_EQ(expiries, 1);
  EXPECT_GE(expired_after_ms, 60u);
}

TEST_F(TimerFixture, EarlierDeadlineIsNotDelayedByTheScheduledWakeUp) {
  timer->arm(10'000);
  timer->arm(20);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(expiries, 1);
  EXPECT_LT(expired_after_ms, 5'000u);
}

TEST_F(TimerFixture, DisarmedTimerNeverExpires) {
  timer->arm(20);
  timer->disarm();
  uv_run(&loop, UV_RUN_DEFAULT);  // the stale wake-up runs and finds no deadline
  EXPECT_EQ(expiries, 0);
}

TEST_F(TimerFixture, ReArmedAfterDisarmExpiresAtTheNewDeadline) {
  timer->arm(20);
  run_with_midway(20, [this] {
    timer->disarm();
    timer->arm(30);  // at ~10 ms: expires at ~40 ms, not at the first wake-up (~20 ms)
  });
  EXPECT_EQ(expiries, 1);
  EXPECT_GE(expired_after_ms, 40u);
}

// Slot 1 is a second, independent deadline on the same handle (an HTTP/1.1 connection's
// upstream deadline beside its client deadline).
struct TwoSlotFixture : TimerFixture {
  int second_expiries = 0;
  std::uint64_t second_expired_after_ms = 0;

  void SetUp() override {
    TimerFixture::SetUp();
    timer->on_expired(1, [](void* self) {
      auto& f = *static_cast<TwoSlotFixture*>(self);
      ++f.second_expiries;
      f.second_expired_after_ms = uv_now(&f.loop) - f.start_ms;
    });
  }
};

TEST_F(TwoSlotFixture, EachSlotExpiresAtItsOwnDeadline) {
  timer->arm(60);
  timer->arm(20, 1);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(second_expiries, 1);
  EXPECT_GE(second_expired_after_ms, 20u);
  EXPECT_LT(second_expired_after_ms, 60u);
  EXPECT_EQ(expiries, 1);
  EXPECT_GE(expired_after_ms, 60u);  // the earlier wake-up slept again for slot 0
}

TEST_F(TwoSlotFixture, LaterSlotArmedAfterAnEarlierWakeUpStillExpires) {
  timer->arm(20, 1);
  timer->arm(10'000);
  timer->disarm();  // slot 0 gone: only slot 1's deadline remains
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(expiries, 0);
  EXPECT_EQ(second_expiries, 1);
}

TEST_F(TwoSlotFixture, DisarmingOneSlotLeavesTheOther) {
  timer->arm(20);
  timer->arm(20, 1);
  timer->disarm(1);
  uv_run(&loop, UV_RUN_DEFAULT);
  EXPECT_EQ(expiries, 1);
  EXPECT_EQ(second_expiries, 0);
}

}  // namespace
}  // namespace gh
