// PostQueue: the only way work crosses threads. Any thread posts a task; the loop thread
// that owns the queue runs it. Tasks are swapped out under the lock and run outside it.
// Owned by the object that owns the loop; close() before the loop's last run.
#pragma once

#include <uv.h>

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace gh {

class PostQueue {
 public:
  using Task = std::function<void()>;

  int init(uv_loop_t* loop) {
    async_.data = this;
    return uv_async_init(loop, &async_,
                         [](uv_async_t* a) { static_cast<PostQueue*>(a->data)->drain(); });
  }

  // Returns false (and drops the task) once the queue is closed.
  bool post(Task task) {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    tasks_.push_back(std::move(task));
    uv_async_send(&async_);
    return true;
  }

  // Loop thread. Tasks posted before this still run if the loop runs again; later
  // posts are refused, so no thread can touch the handle after it closed.
  void close() {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
  }

 private:
  void drain() {
    std::vector<Task> batch;
    {
      std::lock_guard lock(mutex_);
      batch.swap(tasks_);
    }
    for (Task& task : batch) task();
  }

  uv_async_t async_{};
  std::mutex mutex_;
  std::vector<Task> tasks_;
  bool closed_ = false;
};

}  // namespace gh
