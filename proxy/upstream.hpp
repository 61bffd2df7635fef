// UpstreamConn: one TCP connection from a worker to an upstream host. It is either
// attached to the session whose exchange uses it, or idle in its host's pool (LIFO),
// where any byte or EOF from the server closes it. Owned by the Worker's registry;
// freed from its uv_close callback. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/defer_queue.hpp"

namespace gh::proxy {

class Worker;
class UpstreamConn;

// Per worker and upstream address: load for the balancer and the idle pool.
struct HostState {
  std::string label;
  unsigned active = 0;
  std::vector<UpstreamConn*> idle;  // back = most recently used
  // Passive health, per worker: consecutive connect failures/502s, and until when the
  // host stays out of rotation after too many.
  unsigned failures = 0;
  std::uint64_t down_until_ms = 0;
};

class UpstreamConn : private Deferred {
 public:
  class Client {
   public:
    virtual ~Client() = default;
    virtual uv_buf_t upstream_read_buffer() = 0;
    virtual void on_upstream_connected(int status) = 0;
    virtual void on_upstream_read(std::size_t n) = 0;
    virtual void on_upstream_read_end(int status) = 0;
    virtual void on_upstream_write_done(int status) = 0;
  };

  UpstreamConn(Worker& worker, HostState& host);
  UpstreamConn(const UpstreamConn&) = delete;
  UpstreamConn& operator=(const UpstreamConn&) = delete;

  int connect(const sockaddr* address, Client& client);
  void attach(Client& client);  // taken from the pool
  // Back to the pool (or closed if the pool is full).
  void release_to_pool(std::size_t max_idle, std::uint64_t now_ms);
  void close();

  int start_reading();
  void stop_reading();
  int write(const uv_buf_t* bufs, unsigned count);
  void shutdown_write();

  HostState& host() { return host_; }
  bool reused() const { return exchanges_ > 1; }
  bool closing() const { return closing_; }
  std::uint64_t idle_since() const { return idle_since_; }

 private:
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*);
  static void on_write(uv_write_t* req, int status);
  static void on_close(uv_handle_t* h);
  void remove_from_pool();
  void run_deferred() override;

  Worker& worker_;
  HostState& host_;
  Client* client_ = nullptr;  // null while idle in the pool
  uv_tcp_t tcp_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  uv_shutdown_t shutdown_req_{};
  std::vector<uv_buf_t> rest_;  // the part of a write uv_try_write left over
  char idle_byte_[1] = {};      // read target while idle: any byte means "not reusable"
  unsigned exchanges_ = 0;
  std::uint64_t idle_since_ = 0;
  bool closing_ = false;
  bool reading_ = false;
};

}  // namespace gh::proxy
