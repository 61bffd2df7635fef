#include "proxy/admin.hpp"

#include "core/http_head.hpp"
#include "core/http_parser.hpp"
#include "proxy/rewrite.hpp"

namespace gh::proxy {

namespace {

AdminRequest admin_request(const http::MessageHead& head) {
  AdminRequest request;
  request.method = head.method;
  const std::size_t question = head.target.find('?');
  request.path = head.target.substr(0, question);
  if (question != std::string_view::npos) request.query = head.target.substr(question + 1);
  for (const http::Header& header : head.headers) {
    if (http::iequals(header.name, "accept")) request.accept = header.value;
  }
  return request;
}

}  // namespace

class AdminServer::Connection {
 public:
  Connection(AdminServer& server) : server_(server), parser_(http::HeadKind::request, 64) {
    uv_tcp_init(server.loop_, &tcp_);
    uv_timer_init(server.loop_, &timer_);
    tcp_.data = timer_.data = this;
  }

  void start(uv_stream_t* listener) {
    if (uv_accept(listener, stream()) != 0 || uv_read_start(stream(), on_alloc, on_read) != 0) {
      return close();
    }
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->close(); }, 5000, 0);
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  }

 private:
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<Connection*>(h->data);
    *buf = uv_buf_init(self->buffer_ + self->used_, sizeof self->buffer_ - self->used_);
  }

  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t*) {
    auto* self = static_cast<Connection*>(s->data);
    if (n < 0) return self->close();
    self->used_ += static_cast<size_t>(n);
    self->handle_input();
  }

  void handle_input() {
    http::HeadLimits limits{1024, sizeof buffer_ - 1, 50};
    auto scan = http::scan_head({buffer_, used_}, http::HeadKind::request, limits);
    if (scan.state == http::HeadScan::State::incomplete) {
      if (used_ == sizeof buffer_) respond({431, "request header too large\n"});
      return;
    }
    if (scan.state == http::HeadScan::State::invalid)
      return respond({scan.error.status, "bad request\n"});
    parser_.begin_message();
    if (parser_.execute(buffer_, scan.length, nullptr).outcome ==
        http::HttpParser::Outcome::error) {
      return respond({400, "bad request\n"});
    }
    respond(server_.handler_(admin_request(parser_.head())));
  }

  void respond(const AdminResponse& response) {
    uv_read_stop(stream());
    reply_.clear();
    // Probes must never see a cached answer; a 503 says when to ask again.
    std::string_view headers = response.status == 503
                                   ? "Cache-Control: no-store\r\nRetry-After: 5\r\n"
                                   : "Cache-Control: no-store\r\n";
    write_local_response(response.status, response.body, false, headers, reply_,
                         response.content_type);
    uv_buf_t buf = uv_buf_init(reply_.data(), static_cast<unsigned>(reply_.size()));
    write_req_.data = this;
    if (uv_write(&write_req_, stream(), &buf, 1,
                 [](uv_write_t* req, int) { static_cast<Connection*>(req->data)->close(); }) != 0) {
      close();
    }
  }

  static void on_close(uv_handle_t* h) {
    auto* self = static_cast<Connection*>(h->data);
    if (++self->closed_handles_ == 2) self->server_.connections_.erase(self);
  }

  AdminServer& server_;
  http::HttpParser parser_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_write_t write_req_{};
  char buffer_[8192];
  size_t used_ = 0;
  std::string reply_;
  int closed_handles_ = 0;
  bool closing_ = false;
};

AdminServer::AdminServer(uv_loop_t* loop, Handler handler)
    : loop_(loop), handler_(std::move(handler)) {}

AdminServer::~AdminServer() = default;

Result<void> AdminServer::listen(int fd) {
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  listening_ = true;
  int rc = uv_tcp_open(&listener_, fd);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, on_connection);
  if (rc != 0) return fail(std::string("admin listen: ") + uv_strerror(rc));
  return {};
}

void AdminServer::close() {
  if (listening_ && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  }
  std::vector<Connection*> all;
  for (auto& [ptr, owned] : connections_) all.push_back(ptr);
  for (Connection* c : all) c->close();
}

void AdminServer::on_connection(uv_stream_t* listener, int status) {
  auto* self = static_cast<AdminServer*>(listener->data);
  if (status < 0) return;
  auto conn = std::make_unique<Connection>(*self);
  Connection* raw = conn.get();
  self->connections_.emplace(raw, std::move(conn));
  raw->start(listener);
}

}  // namespace gh::proxy
