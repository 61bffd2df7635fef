// UpstreamConn: one connection (plain TCP or TLS, through a tls::Transport) from a worker
// to an upstream host. It is either
// attached to the session whose exchange uses it, or idle in its host's pool (LIFO),
// where any byte or EOF from the server closes it. Owned by the Worker's registry;
// freed from its transport's on_closed. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tls/transport.hpp"

namespace gh::proxy {

class Worker;
class UpstreamConn;

// Per worker and upstream address: load for the balancer and the idle pool.
struct HostState {
  std::string label;
  unsigned active = 0;
  // Recent peak of `active`: raised at once, decayed by the worker's tick. The pool keeps
  // at most this many idle connections, so it follows demand instead of a fixed size.
  unsigned peak = 0;
  std::vector<UpstreamConn*> idle;  // back = most recently used
  // Passive health, per worker: consecutive connect failures/502s, and until when the
  // host stays out of rotation after too many.
  unsigned failures = 0;
  std::uint64_t down_until_ms = 0;
};

class UpstreamConn : private tls::Transport::Events {
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

  // Plain TCP when `tls` is null, else TLS for `server_name` (see tls::connect_tls); the
  // client hears on_upstream_connected once the connection (and handshake) is ready.
  int connect(const sockaddr* address, Client& client,
              std::shared_ptr<const tls::ClientContext> tls = nullptr,
              const std::string& server_name = {});
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
  // tls::Transport::Events
  uv_buf_t read_buffer() override;
  void on_read(std::size_t n) override;
  void on_read_end(int status) override;
  void on_write_done(int status) override;
  void on_connected(int status) override;
  void on_closed() override;
  void remove_from_pool();

  Worker& worker_;
  HostState& host_;
  Client* client_ = nullptr;                   // null while idle in the pool
  std::unique_ptr<tls::Transport> transport_;  // set by connect()
  char idle_byte_[1] = {};  // read target while idle: any byte means "not reusable"
  unsigned exchanges_ = 0;
  std::uint64_t idle_since_ = 0;
  bool closing_ = false;
  bool reading_ = false;
};

}  // namespace gh::proxy
