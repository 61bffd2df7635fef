// Resolver: re-resolves the server names of every upstream every `resolve_interval` with
// uv_getaddrinfo (threadpool; the loop never blocks) and reports a new HostSet when an
// upstream's membership changed (hosts are keyed by address label, "10.0.0.2:3000").
//
// A name that fails to resolve keeps the addresses it had (a DNS hiccup must not empty
// an upstream); the failure is logged once when it starts and once when it ends.
// Numeric servers never change and are not looked up. Sets from the Resolver have every
// host healthy: combine them with the Checker's HealthState (apply_health) before
// publishing them to workers. The blocking resolve_upstream() stays for startup: its sets
// seed the Resolver, so the first round only reports real changes.
//
// Thread: the control thread's loop. Ownership: the creator owns it; stop(on_closed)
// closes its timers and the Resolver may be freed once closed() (or inside on_closed).
// Late DNS answers after stop() are dropped (the requests free themselves).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "health/host_set.hpp"
#include "health/uv_util.hpp"

namespace gh::health {

class Resolver {
 public:
  using OnChange = std::function<void(const std::string& upstream, HostSetPtr hosts)>;

  // `initial`: the sets built at startup, same order as `upstreams` (missing = empty).
  Resolver(uv_loop_t* loop, const std::vector<config::Upstream>& upstreams,
           const std::vector<HostSetPtr>& initial, OnChange on_change);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Schedules the first round of every upstream with a name after its resolve_interval.
  void start();
  // Starts a round for every upstream with a name now (unless one is running).
  void resolve_now();
  void stop(std::function<void()> on_closed = {});
  bool closed() const { return closed_; }

 private:
  struct Server;
  struct Group;

  void start_round(Group& group);
  void on_lookup(Group& group, std::size_t server, Result<Lookup::Addresses> found);
  void finish_round(Group& group);

  uv_loop_t* loop_;
  OnChange on_change_;
  std::vector<std::unique_ptr<Group>> groups_;
  Graveyard graveyard_;
  bool started_ = false;
  bool stopping_ = false;
  bool closed_ = false;
};

// A HostSet for `upstream` from per-server address lists (same order as its servers),
// deduplicated by label. Pure; used by the Resolver and its tests.
HostSetPtr build_host_set(const config::Upstream& upstream,
                          const std::vector<std::vector<sockaddr_storage>>& addresses);

// True when both sets hold the same host labels (order does not matter).
bool same_members(const HostSet& a, const HostSet& b);

}  // namespace gh::health
