#include "proxy/upstream.hpp"

#include <algorithm>

#include "proxy/worker.hpp"

namespace gh::proxy {

UpstreamConn::UpstreamConn(Worker& worker, HostState& host) : worker_(worker), host_(host) {
  uv_tcp_init(worker.loop(), &tcp_);
  tcp_.data = this;
}

int UpstreamConn::connect(const sockaddr* address, Client& client) {
  client_ = &client;
  exchanges_ = 1;
  connect_req_.data = this;
  uv_tcp_nodelay(&tcp_, 1);
  return uv_tcp_connect(&connect_req_, &tcp_, address, on_connect);
}

void UpstreamConn::attach(Client& client) {
  remove_from_pool();
  client_ = &client;  // reads keep running: the next alloc asks the client for a buffer
  ++exchanges_;
}

void UpstreamConn::release_to_pool(std::size_t max_idle, std::uint64_t now_ms) {
  client_ = nullptr;
  if (closing_ || host_.idle.size() >= max_idle) return close();
  idle_since_ = now_ms;
  host_.idle.push_back(this);
  // Watch the idle connection: the server closing it (or sending junk) removes it.
  if (start_reading() != 0) close();
}

void UpstreamConn::close() {
  if (closing_) return;
  closing_ = true;
  client_ = nullptr;
  DeferQueue::of(tcp_.loop)->cancel(*this);
  remove_from_pool();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
}

// Reading stays on across pool and attach: toggling it would cost epoll_ctl calls per
// request. Only backpressure (a full response buffer) stops it.
int UpstreamConn::start_reading() {
  if (reading_) return 0;
  int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), on_alloc, on_read);
  reading_ = rc == 0;
  return rc;
}

void UpstreamConn::stop_reading() {
  if (!reading_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

int UpstreamConn::write(const uv_buf_t* bufs, unsigned count) {
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  // As in the plain transport: the kernel usually takes a request whole at once.
  if (int rc = try_write_all(stream, bufs, count, rest_); rc != 0) return rc;
  if (rest_.empty()) {
    DeferQueue::of(tcp_.loop)->push(*this);
    return 0;
  }
  write_req_.data = this;
  return uv_write(&write_req_, stream, rest_.data(), static_cast<unsigned>(rest_.size()), on_write);
}

void UpstreamConn::run_deferred() {
  if (client_) client_->on_upstream_write_done(0);
}

void UpstreamConn::shutdown_write() {
  uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), [](uv_shutdown_t*, int) {});
}

void UpstreamConn::remove_from_pool() {
  auto it = std::find(host_.idle.begin(), host_.idle.end(), this);
  if (it != host_.idle.end()) host_.idle.erase(it);
}

void UpstreamConn::on_connect(uv_connect_t* req, int status) {
  auto* self = static_cast<UpstreamConn*>(req->data);
  if (self->client_) self->client_->on_upstream_connected(status);
}

void UpstreamConn::on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
  auto* self = static_cast<UpstreamConn*>(h->data);
  *buf = self->client_ ? self->client_->upstream_read_buffer() : uv_buf_init(self->idle_byte_, 1);
}

void UpstreamConn::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
  auto* self = static_cast<UpstreamConn*>(s->data);
  if (!self->client_) {
    if (n != 0) self->close();  // idle connection: data or EOF means it cannot be reused
    return;
  }
  if (n > 0) {
    self->client_->on_upstream_read(static_cast<std::size_t>(n));
  } else if (n < 0) {
    self->reading_ = false;  // libuv stops reading at EOF and errors
    self->client_->on_upstream_read_end(static_cast<int>(n));
  }
}

void UpstreamConn::on_write(uv_write_t* req, int status) {
  auto* self = static_cast<UpstreamConn*>(req->data);
  if (self->client_) self->client_->on_upstream_write_done(status);
}

void UpstreamConn::on_close(uv_handle_t* h) {
  auto* self = static_cast<UpstreamConn*>(h->data);
  self->worker_.forget(self);
}

}  // namespace gh::proxy
