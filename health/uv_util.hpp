// libuv helpers for the health module: the ownership rules every probe, the Checker and the
// Resolver follow, in one place.
//
//   * Graveyard: a libuv handle (or an object embedding one) handed to bury() is closed
//     with uv_close and freed only from its close callback; on_empty() tells the owner
//     when nothing it buried is still closing, i.e. when the owner itself may be freed.
//   * Lookup: one uv_getaddrinfo request (threadpool, never blocks the loop). Its memory
//     lives until libuv's callback even if the caller loses interest (cancel()), so a
//     probe can be freed while a slow DNS query is still running.
//
// Loop thread only (the control thread's loop); nothing here blocks.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.hpp"

namespace gh::health {

class Graveyard {
 public:
  Graveyard() = default;
  Graveyard(const Graveyard&) = delete;
  Graveyard& operator=(const Graveyard&) = delete;

  // Closes `handle`, which `object` owns (or is), and frees `object` from the close
  // callback. No callback of the handle runs after this except pending request callbacks
  // (connect/write with UV_ECANCELED), which must check that their owner still cares.
  template <class T>
  void bury(std::unique_ptr<T> object, uv_handle_t* handle) {
    if (!object) return;
    std::shared_ptr<void> erased(std::move(object));
    closing_.emplace(handle, std::move(erased));
    handle->data = this;
    uv_close(handle, on_close);
  }

  // A bare handle: bury(std::move(timer)).
  template <class H>
  void bury(std::unique_ptr<H> handle) {
    if (!handle) return;
    auto* raw = reinterpret_cast<uv_handle_t*>(handle.get());
    bury(std::move(handle), raw);
  }

  // `done` runs (from a close callback) once nothing buried is still closing; at once on
  // the next loop iteration when nothing is. The callback may free this graveyard's owner.
  void on_empty(uv_loop_t* loop, std::function<void()> done);

  bool empty() const { return closing_.empty(); }

 private:
  static void on_close(uv_handle_t* handle);

  std::unordered_map<uv_handle_t*, std::shared_ptr<void>> closing_;
  std::function<void()> on_empty_;
};

// An initialized (not started) timer whose data is `owner`.
std::unique_ptr<uv_timer_t> make_timer(uv_loop_t* loop, void* owner);

class Lookup {
 public:
  using Addresses = std::vector<sockaddr_storage>;
  using Callback = std::function<void(Result<Addresses>)>;

  // Resolves host (name or literal) to stream addresses carrying `port`, in resolver
  // order without duplicates. `callback` runs later on the loop unless cancel() was called.
  static Result<std::shared_ptr<Lookup>> start(uv_loop_t* loop, const std::string& host,
                                               uint16_t port, Callback callback);
  // The callback will not run; the request itself finishes in the threadpool.
  void cancel();

 private:
  static void on_done(uv_getaddrinfo_t* req, int status, addrinfo* found);

  uv_getaddrinfo_t req_{};
  Callback callback_;
  std::string host_;
  std::shared_ptr<Lookup> self_;  // keeps the request alive until on_done
};

// Cancels and forgets a lookup held in `slot` (no-op when empty).
void cancel_lookup(std::shared_ptr<Lookup>& slot);

// "10.0.0.2:3000", "[::1]:5432": the address with its port.
std::string sockaddr_text(const sockaddr_storage& address);
socklen_t sockaddr_length(const sockaddr_storage& address);

// Milliseconds of the loop's clock (uv_now, cached per iteration).
uint64_t loop_now_ms(uv_loop_t* loop);

}  // namespace gh::health
