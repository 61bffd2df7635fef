#include "health/uv_util.hpp"

#include <netdb.h>
#include <netinet/in.h>

#include <cstring>

#include "health/host_set.hpp"

namespace gh::health {

void Graveyard::on_empty(uv_loop_t* loop, std::function<void()> done) {
  on_empty_ = std::move(done);
  // A sentinel handle makes the callback asynchronous even when nothing else is closing.
  bury(make_timer(loop, nullptr));
}

void Graveyard::on_close(uv_handle_t* handle) {
  auto* self = static_cast<Graveyard*>(handle->data);
  self->closing_.erase(handle);
  if (!self->closing_.empty() || !self->on_empty_) return;
  auto done = std::move(self->on_empty_);
  self->on_empty_ = nullptr;
  done();  // may free `self`: nothing touches it after this
}

std::unique_ptr<uv_timer_t> make_timer(uv_loop_t* loop, void* owner) {
  auto timer = std::make_unique<uv_timer_t>();
  uv_timer_init(loop, timer.get());  // cannot fail on Unix
  timer->data = owner;
  return timer;
}

Result<std::shared_ptr<Lookup>> Lookup::start(uv_loop_t* loop, const std::string& host,
                                              uint16_t port, Callback callback) {
  auto lookup = std::make_shared<Lookup>();
  lookup->callback_ = std::move(callback);
  lookup->host_ = host;
  lookup->req_.data = lookup.get();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string service = std::to_string(port);
  int rc = uv_getaddrinfo(loop, &lookup->req_, on_done, host.c_str(), service.c_str(), &hints);
  if (rc != 0) return fail("cannot resolve " + host + ": " + uv_strerror(rc));
  lookup->self_ = lookup;
  return lookup;
}

void Lookup::cancel() {
  callback_ = nullptr;
  uv_cancel(reinterpret_cast<uv_req_t*>(&req_));  // EBUSY when already running: fine
}

void Lookup::on_done(uv_getaddrinfo_t* req, int status, addrinfo* found) {
  auto* raw = static_cast<Lookup*>(req->data);
  std::shared_ptr<Lookup> self = std::move(raw->self_);  // freed when this returns
  Addresses addresses;
  for (addrinfo* ai = found; status == 0 && ai; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage address{};
    std::memcpy(&address, ai->ai_addr, ai->ai_addrlen);
    bool duplicate = false;
    for (const auto& a : addresses)
      duplicate = duplicate || std::memcmp(&a, &address, sizeof a) == 0;
    if (!duplicate) addresses.push_back(address);
  }
  if (found) uv_freeaddrinfo(found);
  if (!self->callback_) return;
  auto callback = std::move(self->callback_);
  if (status != 0) {
    callback(fail("cannot resolve " + self->host_ + ": " + uv_strerror(status)));
  } else if (addresses.empty()) {
    callback(fail("cannot resolve " + self->host_ + ": no address"));
  } else {
    callback(std::move(addresses));
  }
}

void cancel_lookup(std::shared_ptr<Lookup>& slot) {
  if (slot) slot->cancel();
  slot.reset();
}

std::string sockaddr_text(const sockaddr_storage& address) {
  return address_label(reinterpret_cast<const sockaddr*>(&address));
}

socklen_t sockaddr_length(const sockaddr_storage& address) {
  return address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

uint64_t loop_now_ms(uv_loop_t* loop) {
  return uv_now(loop);
}

}  // namespace gh::health
