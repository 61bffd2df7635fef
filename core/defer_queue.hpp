// DeferQueue: "call back later" without a system call. A write that the kernel took
// whole at once (uv_try_write) still reports its completion asynchronously, as libuv's
// contract says, but through this queue instead of a uv_write request: libuv 1.44
// re-arms epoll (one epoll_ctl) after every completed uv_write, which costs two system
// calls per proxied request.
//
// One queue per loop, reachable through loop->data; items run from a uv_idle callback in
// the next loop iteration. An item must cancel() itself before its memory goes away;
// objects are freed only in uv_close callbacks, which never run while the queue drains.
#pragma once

#include <uv.h>

#include <algorithm>
#include <cstddef>
#include <vector>

namespace gh {

class Deferred {
 public:
  virtual void run_deferred() = 0;

 protected:
  ~Deferred() = default;

 private:
  friend class DeferQueue;
  bool queued_ = false;
};

class DeferQueue {
 public:
  void init(uv_loop_t* loop) {
    uv_idle_init(loop, &idle_);
    idle_.data = this;
    loop->data = this;
  }
  void close() { uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr); }

  // The loop's queue, or null on loops without one (callers then use plain uv_write).
  static DeferQueue* of(uv_loop_t* loop) { return static_cast<DeferQueue*>(loop->data); }

  void push(Deferred& item) {
    if (item.queued_) return;
    item.queued_ = true;
    items_.push_back(&item);
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) {
      uv_idle_start(&idle_, [](uv_idle_t* h) { static_cast<DeferQueue*>(h->data)->drain(); });
    }
  }

  void cancel(Deferred& item) {
    if (!item.queued_) return;
    item.queued_ = false;
    items_.erase(std::remove(items_.begin(), items_.end(), &item), items_.end());
  }

 private:
  void drain() {
    batch_.swap(items_);
    for (Deferred* item : batch_) {
      if (!item->queued_) continue;  // cancelled by an earlier item of this batch
      item->queued_ = false;
      item->run_deferred();
    }
    batch_.clear();
    if (items_.empty()) uv_idle_stop(&idle_);
  }

  uv_idle_t idle_{};
  std::vector<Deferred*> items_;
  std::vector<Deferred*> batch_;
};

// Writes what the kernel takes right away and leaves the rest of `bufs` in `rest` (empty
// when everything went). Returns 0 or a libuv error other than EAGAIN.
inline int try_write_all(uv_stream_t* stream, const uv_buf_t* bufs, unsigned count,
                         std::vector<uv_buf_t>& rest) {
  rest.clear();
  int written = uv_try_write(stream, bufs, count);
  if (written < 0 && written != UV_EAGAIN) return written;
  std::size_t done = written > 0 ? static_cast<std::size_t>(written) : 0;
  for (unsigned i = 0; i < count; ++i) {
    if (done >= bufs[i].len) {
      done -= bufs[i].len;
      continue;
    }
    rest.push_back(uv_buf_init(bufs[i].base + done, static_cast<unsigned>(bufs[i].len - done)));
    done = 0;
  }
  return 0;
}

}  // namespace gh
