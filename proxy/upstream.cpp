#include "proxy/upstream.hpp"

#include <algorithm>

#include "proxy/worker.hpp"

namespace gh::proxy {

UpstreamConn::UpstreamConn(Worker& worker, HostState& host) : worker_(worker), host_(host) {}

int UpstreamConn::connect(const sockaddr* address, Client& client,
                          std::shared_ptr<const tls::ClientContext> tls,
                          const std::string& server_name) {
  client_ = &client;
  exchanges_ = 1;
  // Failures, even immediate ones, come back through on_connected from the loop.
  transport_ = tls ? tls::connect_tls(worker_.loop(), address, *this, std::move(tls), server_name)
                   : tls::connect_plain(worker_.loop(), address, *this);
  return 0;
}

void UpstreamConn::attach(Client& client) {
  remove_from_pool();
  client_ = &client;  // reads keep running: the next read asks the client for a buffer
  ++exchanges_;
}

void UpstreamConn::release_to_pool(std::size_t max_idle, std::uint64_t now_ms) {
  client_ = nullptr;
  const std::size_t wanted = std::min<std::size_t>(max_idle, std::max(host_.peak, 1u));
  if (closing_ || host_.idle.size() >= wanted) return close();
  idle_since_ = now_ms;
  host_.idle.push_back(this);
  // Watch the idle connection: the server closing it (or sending junk) removes it.
  if (start_reading() != 0) close();
}

void UpstreamConn::close() {
  if (closing_) return;
  closing_ = true;
  client_ = nullptr;
  remove_from_pool();
  transport_->close();  // cancels a deferred write completion too
}

// Reading stays on across pool and attach: toggling it would cost epoll_ctl calls per
// request. Only backpressure (a full response buffer) stops it.
int UpstreamConn::start_reading() {
  if (reading_) return 0;
  int rc = transport_->start_reading();
  reading_ = rc == 0;
  return rc;
}

void UpstreamConn::stop_reading() {
  if (!reading_) return;
  transport_->stop_reading();
  reading_ = false;
}

// Plain: as before, uv_try_write with a deferred completion (the transport does it).
int UpstreamConn::write(const uv_buf_t* bufs, unsigned count) {
  return transport_->write(bufs, count);
}

void UpstreamConn::shutdown_write() {
  transport_->shutdown_write();
}

void UpstreamConn::remove_from_pool() {
  auto it = std::find(host_.idle.begin(), host_.idle.end(), this);
  if (it != host_.idle.end()) host_.idle.erase(it);
}

void UpstreamConn::on_connected(int status) {
  if (client_) client_->on_upstream_connected(status);
}

uv_buf_t UpstreamConn::read_buffer() {
  return client_ ? client_->upstream_read_buffer() : uv_buf_init(idle_byte_, 1);
}

void UpstreamConn::on_read(std::size_t n) {
  if (!client_) return close();  // idle connection: data means it cannot be reused
  client_->on_upstream_read(n);
}

void UpstreamConn::on_read_end(int status) {
  reading_ = false;  // transports stop reading at EOF and errors
  if (!client_) return close();
  client_->on_upstream_read_end(status);
}

void UpstreamConn::on_write_done(int status) {
  if (client_) client_->on_upstream_write_done(status);
}

void UpstreamConn::on_closed() {
  worker_.forget(this);
}

}  // namespace gh::proxy
