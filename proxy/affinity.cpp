#include "proxy/affinity.hpp"

#include <algorithm>
#include <cstdio>

namespace gh::proxy {
namespace {

constexpr std::size_t kNone = static_cast<std::size_t>(-1);

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

config::Sticky effective_sticky(const config::Route& route, const health::HostSet& hosts) {
  if (route.sticky != config::Sticky::automatic) return route.sticky;
  const bool socketio_path = route.path_prefix.starts_with("/socket.io");
  return socketio_path && hosts.hosts.size() > 1 ? config::Sticky::socketio : config::Sticky::none;
}

std::optional<std::string_view> query_param(std::string_view target, std::string_view name) {
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

std::optional<std::string_view> engineio_sid(std::string_view body) {
  // EIO3 frames the open packet with its length: "97:0{...}".
  std::size_t i = 0;
  while (i < body.size() && body[i] >= '0' && body[i] <= '9') ++i;
  if (i > 0 && i < body.size() && body[i] == ':') body.remove_prefix(i + 1);
  if (body.size() < 2 || body[0] != '0' || body[1] != '{') return std::nullopt;
  constexpr std::string_view key = "\"sid\":\"";
  std::size_t at = body.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = body.substr(at + key.size());
  std::size_t end = rest.find('"');
  if (end == std::string_view::npos || end == 0 || end > 128) return std::nullopt;
  return rest.substr(0, end);
}

std::uint64_t stable_hash(std::string_view a, std::string_view b) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::string_view part : {a, std::string_view("\x1f", 1), b}) {
    for (char c : part) {
      h ^= static_cast<unsigned char>(c);
      h *= 1099511628211ull;
    }
  }
  // Final avalanche so nearby inputs spread (splitmix64 finaliser).
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

std::string affinity_cookie_value(std::string_view host_label) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx",
                static_cast<unsigned long long>(stable_hash("gatehouse-affinity", host_label)));
  return text;
}

std::size_t host_for_cookie(const health::HostSet& hosts, std::string_view value) {
  for (std::size_t i = 0; i < hosts.hosts.size(); ++i) {
    if (affinity_cookie_value(hosts.hosts[i].label) == value) return i;
  }
  return kNone;
}

std::optional<std::string_view> cookie_value(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    std::size_t semi = header.find(';');
    std::string_view pair = trim(header.substr(0, semi));
    std::size_t eq = pair.find('=');
    if (eq != std::string_view::npos && pair.substr(0, eq) == name) return pair.substr(eq + 1);
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

std::size_t rendezvous_host(const health::HostSet& hosts, std::string_view client_key) {
  std::size_t best = kNone;
  std::uint64_t best_weight = 0;
  bool any_healthy = false;
  for (const health::Host& h : hosts.hosts) any_healthy = any_healthy || h.healthy;
  for (std::size_t i = 0; i < hosts.hosts.size(); ++i) {
    if (any_healthy && !hosts.hosts[i].healthy) continue;
    std::uint64_t weight = stable_hash(client_key, hosts.hosts[i].label);
    if (best == kNone || weight > best_weight) {
      best = i;
      best_weight = weight;
    }
  }
  return best;
}

void SidTable::learn(std::string_view sid, std::string_view host_label, std::uint64_t now_ms) {
  Shard& shard = shard_for(sid);
  std::lock_guard lock(shard.mutex);
  shard.entries.insert_or_assign(std::string(sid), Entry{std::string(host_label), now_ms});
}

std::optional<std::string> SidTable::lookup(std::string_view sid, std::uint64_t now_ms) {
  Shard& shard = shard_for(sid);
  std::lock_guard lock(shard.mutex);
  auto it = shard.entries.find(std::string(sid));
  if (it == shard.entries.end()) return std::nullopt;
  if (expired(it->second, now_ms)) {
    shard.entries.erase(it);
    return std::nullopt;
  }
  it->second.last_seen_ms = std::max(it->second.last_seen_ms, now_ms);
  return it->second.host;
}

void SidTable::forget_host(std::string_view host_label) {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    std::erase_if(shard.entries, [&](const auto& kv) { return kv.second.host == host_label; });
  }
}

void SidTable::expire(std::uint64_t now_ms) {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    std::erase_if(shard.entries, [&](const auto& kv) { return expired(kv.second, now_ms); });
  }
}

std::size_t SidTable::size() {
  std::size_t n = 0;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    n += shard.entries.size();
  }
  return n;
}

}  // namespace gh::proxy
