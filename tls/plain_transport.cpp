// Plain TCP transport: a thin owner of one uv_tcp_t.
#include <netinet/in.h>

#include <memory>
#include <utility>
#include <vector>

#include "core/defer_queue.hpp"
#include "core/log.hpp"
#include "tls/transport.hpp"

namespace gh::tls {
namespace {

class PlainTransport final : public Transport, private Deferred {
 public:
  PlainTransport(uv_loop_t* loop, Events& events) : events_(&events) {
    uv_tcp_init(loop, &tcp_);
    tcp_.data = this;
  }

  int accept_from(uv_stream_t* listener) {
    int rc = uv_accept(listener, stream());
    if (rc == 0) uv_tcp_nodelay(&tcp_, 1);
    return rc;
  }

  // A connect libuv refuses at once is reported from the DeferQueue (on loops without
  // one, at once).
  void connect_to(const sockaddr* address) {
    uv_connect_t& req = lazy(connect_req_);
    uv_tcp_nodelay(&tcp_, 1);
    const int rc = uv_tcp_connect(&req, &tcp_, address, on_connect);
    if (rc == 0) return;
    connect_error_ = rc;
    if (DeferQueue* queue = DeferQueue::of(tcp_.loop)) return queue->push(*this);
    run_deferred();
  }

  int start_reading() override { return uv_read_start(stream(), on_alloc, on_read); }
  void stop_reading() override { uv_read_stop(stream()); }

  // Tries the write at once; whatever the kernel did not take goes through uv_write.
  int write(const uv_buf_t* bufs, unsigned count) override {
    if (DeferQueue* queue = DeferQueue::of(tcp_.loop)) {
      if (int rc = try_write_all(stream(), bufs, count, rest_); rc != 0) return rc;
      if (rest_.empty()) {
        queue->push(*this);
        return 0;
      }
      bufs = rest_.data();
      count = static_cast<unsigned>(rest_.size());
    }
    return uv_write(&lazy(write_req_), stream(), bufs, count, on_write);
  }

  void shutdown_write() override {
    uv_shutdown(&lazy(shutdown_req_), stream(), [](uv_shutdown_t*, int) {});
  }

  void close() override {
    if (uv_is_closing(handle())) return;
    if (DeferQueue* queue = DeferQueue::of(tcp_.loop)) queue->cancel(*this);
    uv_close(handle(),
             [](uv_handle_t* h) { static_cast<PlainTransport*>(h->data)->events_->on_closed(); });
  }

  bool secure() const override { return false; }

  std::string peer_ip() const override { return peer_ip_of(tcp_); }
  void set_events(Events& events) override { events_ = &events; }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  // A request made on first use (and kept): see the members.
  template <class Request>
  Request& lazy(std::unique_ptr<Request>& request) {
    if (!request) request = std::make_unique<Request>();
    request->data = this;
    return *request;
  }
  uv_handle_t* handle() { return reinterpret_cast<uv_handle_t*>(&tcp_); }

  static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) {
    *buf = static_cast<PlainTransport*>(h->data)->events_->read_buffer();
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* self = static_cast<PlainTransport*>(s->data);
    if (n > 0) {
      self->events_->on_read(static_cast<std::size_t>(n));
    } else if (n < 0) {
      self->events_->on_read_end(static_cast<int>(n));
    }
  }

  void run_deferred() override {
    if (connect_error_ == 0) return events_->on_write_done(0);
    events_->on_connected(std::exchange(connect_error_, 0));
  }

  static void on_connect(uv_connect_t* req, int status) {
    auto* self = static_cast<PlainTransport*>(req->data);
    if (status == UV_ECANCELED) return;  // close() during the connect
    self->events_->on_connected(status);
  }

  static void on_write(uv_write_t* req, int status) {
    static_cast<PlainTransport*>(req->data)->events_->on_write_done(status);
  }

  Events* events_;
  uv_tcp_t tcp_{};
  // libuv's requests are allocated when first needed: an accepted connection never
  // connects and rarely shuts down, and small responses leave in uv_try_write, so an idle
  // keep-alive connection holds none of these 370 bytes.
  std::unique_ptr<uv_write_t> write_req_;
  std::unique_ptr<uv_shutdown_t> shutdown_req_;
  std::unique_ptr<uv_connect_t> connect_req_;
  int connect_error_ = 0;       // a connect that failed at once, reported later
  std::vector<uv_buf_t> rest_;  // the part of a write uv_try_write left over
};

}  // namespace

std::string peer_ip_of(const uv_tcp_t& tcp) {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(&tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
  return ip_text(reinterpret_cast<const sockaddr*>(&addr));
}

std::string ip_text(const sockaddr* address) {
  char text[64] = {};
  if (address->sa_family == AF_INET6) {
    uv_ip6_name(reinterpret_cast<const sockaddr_in6*>(address), text, sizeof text);
  } else {
    uv_ip4_name(reinterpret_cast<const sockaddr_in*>(address), text, sizeof text);
  }
  return text;
}

std::unique_ptr<Transport> accept_plain(uv_loop_t* loop, uv_stream_t* listener,
                                        Transport::Events& events) {
  auto transport = std::make_unique<PlainTransport>(loop, events);
  if (int rc = transport->accept_from(listener); rc != 0) {
    GH_LOG_WARN("accept failed: %s", uv_strerror(rc));
  }
  return transport;
}

std::unique_ptr<Transport> connect_plain(uv_loop_t* loop, const sockaddr* address,
                                         Transport::Events& events) {
  auto transport = std::make_unique<PlainTransport>(loop, events);
  transport->connect_to(address);
  return transport;
}

}  // namespace gh::tls
