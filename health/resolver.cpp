#include "health/resolver.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "core/log.hpp"

namespace gh::health {

struct Resolver::Server {
  config::HostPort address;
  bool numeric = false;
  Lookup::Addresses addresses;  // the last known ones
  bool failing = false;
  std::shared_ptr<Lookup> lookup;
};

struct Resolver::Group {
  config::Upstream upstream;
  std::vector<Server> servers;
  HostSetPtr current;
  std::unique_ptr<uv_timer_t> timer;
  Resolver* resolver = nullptr;
  unsigned pending = 0;  // lookups of the running round
};

namespace {

std::optional<sockaddr_storage> numeric_address(const config::HostPort& server) {
  sockaddr_storage address{};
  if (uv_ip4_addr(server.host.c_str(), server.port, reinterpret_cast<sockaddr_in*>(&address)) == 0)
    return address;
  if (uv_ip6_addr(server.host.c_str(), server.port, reinterpret_cast<sockaddr_in6*>(&address)) == 0)
    return address;
  return std::nullopt;
}

std::vector<std::string> sorted_labels(const HostSet& set) {
  std::vector<std::string> labels;
  for (const Host& h : set.hosts) labels.push_back(h.label);
  std::sort(labels.begin(), labels.end());
  return labels;
}

std::string label_list(const HostSet& set) {
  std::string out;
  for (const Host& h : set.hosts) out += (out.empty() ? "" : ", ") + h.label;
  return out.empty() ? "(none)" : out;
}

}  // namespace

HostSetPtr build_host_set(const config::Upstream& upstream,
                          const std::vector<std::vector<sockaddr_storage>>& addresses) {
  auto set = std::make_shared<HostSet>();
  set->group = upstream.name;
  set->balance = upstream.balance;
  set->keepalive = upstream.keepalive;
  for (std::size_t i = 0; i < upstream.servers.size() && i < addresses.size(); ++i) {
    for (const sockaddr_storage& a : addresses[i]) {
      Host host;
      host.address = a;
      host.label = sockaddr_text(a);
      host.name = upstream.servers[i].text();
      const bool duplicate = std::any_of(set->hosts.begin(), set->hosts.end(),
                                         [&](const Host& h) { return h.label == host.label; });
      if (!duplicate) set->hosts.push_back(std::move(host));
    }
  }
  return set;
}

bool same_members(const HostSet& a, const HostSet& b) {
  return sorted_labels(a) == sorted_labels(b);
}

Resolver::Resolver(uv_loop_t* loop, const std::vector<config::Upstream>& upstreams,
                   const std::vector<HostSetPtr>& initial, OnChange on_change)
    : loop_(loop), on_change_(std::move(on_change)) {
  for (std::size_t g = 0; g < upstreams.size(); ++g) {
    auto group = std::make_unique<Group>();
    group->upstream = upstreams[g];
    group->resolver = this;
    const HostSetPtr seed = g < initial.size() ? initial[g] : nullptr;
    for (const config::HostPort& hp : upstreams[g].servers) {
      Server server;
      server.address = hp;
      if (auto a = numeric_address(hp)) {
        server.numeric = true;
        server.addresses.push_back(*a);
      } else if (seed) {
        for (const Host& h : seed->hosts) {
          if (h.name == hp.text()) server.addresses.push_back(h.address);
        }
      }
      group->servers.push_back(std::move(server));
    }
    group->current = seed ? seed : std::make_shared<HostSet>();
    groups_.push_back(std::move(group));
  }
}

Resolver::~Resolver() = default;

void Resolver::start() {
  if (started_ || stopping_) return;
  started_ = true;
  for (auto& group : groups_) {
    const bool has_names = std::any_of(group->servers.begin(), group->servers.end(),
                                       [](const Server& s) { return !s.numeric; });
    if (!has_names) continue;
    group->timer = make_timer(loop_, group.get());
    uv_timer_start(
        group->timer.get(),
        [](uv_timer_t* t) {
          auto* g = static_cast<Group*>(t->data);
          g->resolver->start_round(*g);
        },
        static_cast<uint64_t>(group->upstream.resolve_interval.count()), 0);
  }
}

void Resolver::resolve_now() {
  for (auto& group : groups_) {
    if (group->timer && group->pending == 0) start_round(*group);
  }
}

void Resolver::start_round(Group& group) {
  if (stopping_ || group.pending > 0) return;
  uv_timer_stop(group.timer.get());
  group.pending = 1;  // guards against a synchronous finish while starting lookups
  for (std::size_t i = 0; i < group.servers.size(); ++i) {
    Server& server = group.servers[i];
    if (server.numeric) continue;
    auto lookup = Lookup::start(loop_, server.address.host, server.address.port,
                                [this, &group, i](Result<Lookup::Addresses> found) {
                                  on_lookup(group, i, std::move(found));
                                });
    if (!lookup) {
      ++group.pending;
      on_lookup(group, i, tl::unexpected(lookup.error()));
      continue;
    }
    server.lookup = std::move(*lookup);
    ++group.pending;
  }
  if (--group.pending == 0) finish_round(group);
}

void Resolver::on_lookup(Group& group, std::size_t index, Result<Lookup::Addresses> found) {
  Server& server = group.servers[index];
  server.lookup.reset();
  const std::string& name = group.upstream.name;
  if (found) {
    if (server.failing) {
      GH_LOG_INFO("upstream %s: %s resolves again", name.c_str(), server.address.text().c_str());
    }
    server.failing = false;
    server.addresses = std::move(*found);
  } else if (!server.failing) {
    server.failing = true;
    GH_LOG_WARN("upstream %s: %s; keeping its %zu previous address(es)", name.c_str(),
                found.error().message.c_str(), server.addresses.size());
  }
  if (--group.pending == 0) finish_round(group);
}

void Resolver::finish_round(Group& group) {
  std::vector<Lookup::Addresses> addresses;
  for (const Server& s : group.servers) addresses.push_back(s.addresses);
  HostSetPtr next = build_host_set(group.upstream, addresses);
  if (!same_members(*group.current, *next)) {
    GH_LOG_INFO("upstream %s: hosts now %s", group.upstream.name.c_str(),
                label_list(*next).c_str());
    group.current = next;
    if (on_change_) on_change_(group.upstream.name, next);
  }
  if (!stopping_) {
    uv_timer_start(
        group.timer.get(),
        [](uv_timer_t* t) {
          auto* g = static_cast<Group*>(t->data);
          g->resolver->start_round(*g);
        },
        static_cast<uint64_t>(group.upstream.resolve_interval.count()), 0);
  }
}

void Resolver::stop(std::function<void()> on_closed) {
  if (stopping_) return;
  stopping_ = true;
  for (auto& group : groups_) {
    for (Server& s : group->servers) cancel_lookup(s.lookup);
    group->pending = 0;
    if (group->timer) graveyard_.bury(std::move(group->timer));
  }
  graveyard_.on_empty(loop_, [this, done = std::move(on_closed)] {
    closed_ = true;
    if (done) done();  // may destroy this Resolver
  });
}

}  // namespace gh::health
