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
// One timer can carry two independent deadlines (slots 0 and 1, each with its callback):
// an HTTP/1.1 connection keeps its client and upstream deadlines on one libuv handle, so
// an idle keep-alive connection holds one uv_timer_t, not two.
//
// Times are the loop's (uv_now). Owned by one object, which must close() it and wait for
// its close callback before freeing it. Loop thread only.
#pragma once

#include <uv.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace gh {

class DeadlineTimer {
 public:
  using Callback = void (*)(void* owner);
  static constexpr std::size_t kSlots = 2;

  DeadlineTimer(uv_loop_t* loop, void* owner, Callback on_expired) : owner_(owner) {
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    on_expired_[0] = on_expired;
  }
  DeadlineTimer(const DeadlineTimer&) = delete;
  DeadlineTimer& operator=(const DeadlineTimer&) = delete;

  // What runs when `slot`'s deadline passes (slot 0's is the constructor's).
  void on_expired(std::size_t slot, Callback callback) { on_expired_[slot] = callback; }

  // The slot's callback runs `timeout_ms` from now (loop time), unless armed again or
  // disarmed.
  void arm(std::uint64_t timeout_ms, std::size_t slot = 0) {
    const std::uint64_t now = uv_now(timer_.loop);
    deadlines_[slot] = now + timeout_ms;
    if (!uv_is_active(handle()) || wake_at_ > deadlines_[slot]) schedule(now, timeout_ms);
  }
  // No deadline. A wake-up still scheduled finds nothing to do and stops.
  void disarm(std::size_t slot = 0) { deadlines_[slot] = kNoDeadline; }
  bool armed(std::size_t slot = 0) const { return deadlines_[slot] != kNoDeadline; }

  // Closes the handle; `on_closed(owner)` runs from the loop once it is closed.
  void close(Callback on_closed) {
    on_closed_ = on_closed;
    deadlines_.fill(kNoDeadline);
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

  // Runs the callbacks of the deadlines that passed, then sleeps until the earliest one
  // left (a deadline pushed back, or the other slot's). A callback may re-arm or close.
  static void on_wake(uv_timer_t* timer) {
    auto* self = static_cast<DeadlineTimer*>(timer->data);
    const std::uint64_t now = uv_now(timer->loop);
    for (std::size_t slot = 0; slot < kSlots; ++slot) {
      if (self->deadlines_[slot] > now) continue;
      self->deadlines_[slot] = kNoDeadline;
      self->on_expired_[slot](self->owner_);
      if (self->closing()) return;
    }
    std::uint64_t next = kNoDeadline;
    for (std::uint64_t deadline : self->deadlines_) next = std::min(next, deadline);
    if (next != kNoDeadline && !uv_is_active(self->handle())) self->schedule(now, next - now);
  }

  uv_timer_t timer_{};
  void* owner_;
  std::array<Callback, kSlots> on_expired_{};
  Callback on_closed_ = nullptr;
  std::array<std::uint64_t, kSlots> deadlines_{kNoDeadline, kNoDeadline};
  std::uint64_t wake_at_ = 0;  // when the running libuv timer fires
};

}  // namespace gh
