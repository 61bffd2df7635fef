// Admin endpoint on the control thread's loop: tiny HTTP/1.1 server for probes
// (/livez, /readyz) and status. One request per connection (answered with
// Connection: close), so it stays simple and can never hold a worker.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/result.hpp"

namespace gh::proxy {

struct AdminRequest {
  std::string_view method;
  std::string_view path;    // without the query
  std::string_view query;   // after '?', "" if none
  std::string_view accept;  // the Accept header, "" if none
};

struct AdminResponse {
  int status = 200;
  std::string body;
  const char* content_type = "text/plain; charset=utf-8";
};

class AdminServer {
 public:
  using Handler = std::function<AdminResponse(const AdminRequest& request)>;

  AdminServer(uv_loop_t* loop, Handler handler);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Listens on an already bound socket.
  Result<void> listen(int fd);
  void close();

  class Connection;

 private:
  friend class Connection;
  static void on_connection(uv_stream_t* listener, int status);

  uv_loop_t* loop_;
  Handler handler_;
  uv_tcp_t listener_{};
  bool listening_ = false;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
};

}  // namespace gh::proxy
