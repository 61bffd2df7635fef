// Worker: one thread, one uv_loop_t, its own SO_REUSEPORT listening sockets. Every
// downstream connection (ClientConnection: HTTP/1.1 or HTTP/2) and upstream connection
// (UpstreamConn) lives and dies on the worker that accepted or opened it; the worker's registries
// own them and free them from their last uv_close callback. Other threads talk to a worker only
// through post(): new snapshots, drain, forced close.
#pragma once

#include <uv.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/byte_buffer.hpp"
#include "core/defer_queue.hpp"
#include "core/post_queue.hpp"
#include "proxy/affinity.hpp"
#include "proxy/balancer.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/stats.hpp"
#include "proxy/upstream.hpp"
#include "tls/transport.hpp"

namespace gh::proxy {

class ClientConnection;

struct WorkerHooks {
  std::function<void(std::string&& lines)> write_access_log;  // called from the worker thread
  std::function<void(unsigned index)> on_stopped;             // loop finished
};

class Worker {
 public:
  Worker(unsigned index, std::vector<int> listen_fds, SnapshotPtr snapshot, SidTable& sids,
         WorkerHooks hooks);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Control thread.
  void start();
  void join();
  void publish(SnapshotPtr snapshot);
  void drain();        // stop accepting; finish exchanges in flight; stop when empty
  void force_close();  // close every connection now
  std::uint64_t last_tick_ms() const { return last_tick_ms_.load(std::memory_order_relaxed); }
  // The counters as of the last tick (any thread).
  WorkerStatsPtr published_stats() const;

  // Worker thread.
  uv_loop_t* loop() { return &loop_; }
  const SnapshotPtr& snapshot() const { return snapshot_; }
  BufferPool& buffers() { return buffers_; }
  SidTable& sids() { return sids_; }  // shared by all workers (thread-safe)
  bool draining() const { return draining_; }
  std::uint64_t now_ms() { return uv_now(&loop_); }

  // Per-group balancing state for the current snapshot; hosts align with the HostSet.
  struct GroupState {
    unsigned cursor = 0;
    std::vector<HostState*> hosts;
    std::vector<HostLoad> loads;  // refreshed from hosts before each pick
  };
  GroupState& group(std::size_t index) { return groups_[index]; }
  HostState& host_state(const std::string& label);
  UpstreamConn& open_upstream(HostState& host);
  // A TLS connection that negotiated h2 (or an h2c preface): HTTP/2 from here on, with
  // the bytes already read.
  void start_http2(std::unique_ptr<tls::Transport> transport, std::size_t listener_index,
                   std::string_view received);
  void forget(ClientConnection* connection);
  void count_protocol(ClientProtocol protocol) {
    ++stats_.requests_by_protocol[protocol == ClientProtocol::http2 ? 1 : 0];
  }
  void forget(UpstreamConn* conn);
  void access_log(std::string_view line);
  // Where a response of route `index` (of the current snapshot) is counted.
  StatusClasses& route_counters(std::size_t index) { return *route_counters_[index]; }
  StatusClasses& unrouted_counters() { return *unrouted_counters_; }

 private:
  void run();
  void adopt_snapshot(SnapshotPtr snapshot);
  void start_listening();
  void stop_listening();
  static void on_connection(uv_stream_t* listener, int status);
  void on_tick();
  void close_idle_upstreams(bool all);
  void follow_upstream_demand();
  void maybe_stop();
  void flush_access_log();
  void publish_stats();

  unsigned index_;
  std::vector<int> listen_fds_;
  SnapshotPtr snapshot_;
  SidTable& sids_;
  WorkerHooks hooks_;
  uv_loop_t loop_{};
  PostQueue posts_;
  DeferQueue deferred_;  // write completions without a uv_write request
  uv_timer_t tick_{};
  struct Listening {
    uv_tcp_t tcp{};
    Worker* worker = nullptr;
    std::size_t index = 0;  // into Config::listeners
  };
  std::vector<std::unique_ptr<Listening>> listeners_;
  BufferPool buffers_;
  std::unordered_map<ClientConnection*, std::unique_ptr<ClientConnection>> connections_;
  std::unordered_map<UpstreamConn*, std::unique_ptr<UpstreamConn>> upstream_conns_;
  std::unordered_map<std::string, std::unique_ptr<HostState>> host_states_;
  std::vector<GroupState> groups_;
  std::string access_log_buffer_;
  WorkerStats stats_;
  std::vector<StatusClasses*> route_counters_;  // by route index; point into stats_
  StatusClasses* unrouted_counters_ = nullptr;
  mutable std::mutex published_mutex_;  // guards the pointer swap only
  WorkerStatsPtr published_;
  std::atomic<std::uint64_t> last_tick_ms_{0};
  bool draining_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace gh::proxy
