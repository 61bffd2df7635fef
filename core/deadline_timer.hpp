// DeadlineTimer: a one-shot uv_timer_t for timeouts that are pushed back far more often
// than they expire (a client's header deadline, an upstream's read deadline, a tunnel's
// idle deadline: moved on every read, met almost never).
//
// uv_timer_start and uv_timer_stop each rebalance the loop's timer heap; at two timers
// per connection, re-arming them on every read cost ~950 instructions per proxied
// request. Here arm() and disarm() only write the deadline field; the libuv timer is
// started only when nothing is scheduled yet or the new deadline is earlier than the
// scheduled wake-up. A wake-up that finds the deadline moved later sleeps again for the
// remainder; one that finds no deadline does nothing. The owner's callback therefore
// runs at (or after) the last deadline armed, exactly as with a re-armed uv_timer.
//
// Times are the loop's (uv_now). Owned by one object, which must close() it and wait for
// its close callback before freeing it. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <limits>

namespace gh {

class DeadlineTimer {
 public:
  using Callback = void (*)(void* owner);

  DeadlineTimer(uv_loop_t* loop, void* owner, Callback on_expired)
      : owner_(owner), on_expired_(on_expired) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
  }
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // The callback runs `timeout_ms` from now (loop time), unless armed again or disarmed.
  void arm(std::uint64_t timeout_ms) {
    const std::uint64_t now = uv_now(timer_.loop);
    deadline_ = now + timeout_ms;
    if (!uv_is_active(handle()) || wake_at_ > deadline_) schedule(now, timeout_ms);
  }
  // No deadline. A wake-up still scheduled finds nothing to do and stops.
  void disarm() { deadline_ = kNoDeadline; }
  bool armed() const { return deadline_ != kNoDeadline; }

  // Closes the handle; `on_closed(owner)` runs from the loop once it is closed.
  void close(Callback on_closed) {
    on_closed_ = on_closed;
    deadline_ = kNoDeadline;
    uv_close(handle(), [](uv_handle_t* h) {
      auto* self = static_cast<DeadlineTimer*>(h->data);
      self->on_closed_(self->owner_);
    });
  }
  bool closing() const { return uv_is_closing(handle()) != 0; }

 private:
  static constexpr std::uint64_t kNoDeadline = std::numeric_limits<std::uint64_t>::max();

  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&timer_); }
  const uv_handle_t* handle() const { return reinterpret_cast<const uv_handle_t*>(&timer_); }

  void schedule(std::uint64_t now, std::uint64_t delay_ms) {
    wake_at_ = now + delay_ms;
    uv_timer_start(&timer_, on_wake, delay_ms, 0);
  }

  static void on_wake(uv_timer_t* timer) {
    auto* self = static_cast<DeadlineTimer*>(timer->data);
    if (self->deadline_ == kNoDeadline) return;
    const std::uint64_t now = uv_now(timer->loop);
    if (now < self->deadline_) return self->schedule(now, self->deadline_ - now);  // pushed back
    self->deadline_ = kNoDeadline;
    self->on_expired_(self->owner_);
  }

  uv_timer_t timer_{};
  void* owner_;
  Callback on_expired_;
  Callback on_closed_ = nullptr;
  std::uint64_t deadline_ = kNoDeadline;
  std::uint64_t wake_at_ = 0;  // when the running libuv timer fires
};

}  // namespace gh
