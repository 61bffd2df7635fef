// Affinity: which host a request must go to, for routes with `sticky` set.
//
// - socketio: Engine.IO sessions are learned from handshake responses and looked up by
//   the `sid` query parameter of later polls, POSTs and the WebSocket upgrade. The table
//   is the one piece of mutable state shared by all workers (a request of a session may
//   arrive on any worker): a sharded, mutex-guarded map, touched once per request of a
//   sticky route only; entries expire after the session is idle.
// - cookie: an opaque cookie names the host (a hash of its address), so several Gatehouse
//   instances agree without shared state.
// - ip: rendezvous (highest random weight) hashing of the client address: removing a
//   host moves only that host's clients.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.hpp"
#include "health/host_set.hpp"

namespace gh::proxy {

// The sticky mode in force for a route and its current host set.
config::Sticky effective_sticky(const config::Route& route, const health::HostSet& hosts);

// Value of query parameter `name` in a request target, if present.
std::optional<std::string_view> query_param(std::string_view target, std::string_view name);

// The sid of an Engine.IO handshake response body: `0{"sid":"…",…}` (EIO4) or, for EIO3,
// a length-prefixed `97:0{"sid":"…",…}`. Only the first bytes of the body are needed.
std::optional<std::string_view> engineio_sid(std::string_view body);

// Stable 64-bit hash (FNV-1a) used for cookies and rendezvous weights.
std::uint64_t stable_hash(std::string_view a, std::string_view b = {});

// Cookie value naming a host, and the host a value names (kNoHost-like npos if none).
std::string affinity_cookie_value(std::string_view host_label);
std::size_t host_for_cookie(const health::HostSet& hosts, std::string_view value);
// The value of cookie `name` in a request's Cookie header values.
std::optional<std::string_view> cookie_value(std::string_view cookie_header, std::string_view name);

// Rendezvous hashing over healthy hosts (all hosts if none is healthy).
std::size_t rendezvous_host(const health::HostSet& hosts, std::string_view client_key);

class SidTable {
 public:
  explicit SidTable(std::uint64_t idle_ttl_ms = 120'000) : ttl_ms_(idle_ttl_ms) {}

  void learn(std::string_view sid, std::string_view host_label, std::uint64_t now_ms);
  // The host of a live session (refreshing its idle timer), or nothing.
  std::optional<std::string> lookup(std::string_view sid, std::uint64_t now_ms);
  void forget_host(std::string_view host_label);  // the host died or left the set
  void expire(std::uint64_t now_ms);
  std::size_t size();

 private:
  struct Entry {
    std::string host;
    std::uint64_t last_seen_ms;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Entry> entries;
  };
  // Workers' loop clocks differ by a few ms: a time "before" last_seen is not expiry.
  bool expired(const Entry& e, std::uint64_t now_ms) const {
    return now_ms > e.last_seen_ms && now_ms - e.last_seen_ms > ttl_ms_;
  }
  Shard& shard_for(std::string_view sid) { return shards_[stable_hash(sid) % shards_.size()]; }

  std::uint64_t ttl_ms_;
  std::array<Shard, 16> shards_;
};

}  // namespace gh::proxy
