// Tests for proxy/balancer: pick_host over hand-built HostSets, for both policies, with
// unhealthy hosts, the `tried` bitmask and the cursor that carries round-robin state.
#include "proxy/balancer.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "health/host_set.hpp"

namespace gh::proxy {
namespace {

using config::Balance;

// A set of hosts "10.0.0.{i}:3000"; `healthy[i]` false marks host i unhealthy.
health::HostSet make_set(Balance balance, const std::vector<bool>& healthy) {
  health::HostSet set;
  set.group = "app";
  set.balance = balance;
  for (std::size_t i = 0; i < healthy.size(); ++i) {
    health::Host host;
    host.label = "10.0.0." + std::to_string(i) + ":3000";
    host.name = "app:3000";
    host.healthy = healthy[i];
    set.hosts.push_back(host);
  }
  return set;
}

std::vector<HostLoad> make_loads(const std::vector<unsigned>& active) {
  std::vector<HostLoad> loads;
  for (unsigned a : active) loads.push_back(HostLoad{a});
  return loads;
}

// Picks `count` times with the same cursor and no tried hosts.
std::vector<std::size_t> picks(const health::HostSet& set, const std::vector<HostLoad>& loads,
                               unsigned& cursor, int count) {
  std::vector<std::size_t> out;
  for (int i = 0; i < count; ++i) out.push_back(pick_host(set, loads, 0, cursor));
  return out;
}

using Picks = std::vector<std::size_t>;

// ---------------------------------------------------------------------------------------
// round_robin

TEST(BalancerTest, RoundRobinCyclesThroughHosts) {
  const health::HostSet set = make_set(Balance::round_robin, {true, true, true});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0});
  unsigned cursor = 0;
  EXPECT_EQ(picks(set, loads, cursor, 7), (Picks{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(cursor, 1u);
}

TEST(BalancerTest, RoundRobinStartsAtCursor) {
  const health::HostSet set = make_set(Balance::round_robin, {true, true, true});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0});
  unsigned cursor = 2;
  EXPECT_EQ(pick_host(set, loads, 0, cursor), 2u);
  EXPECT_EQ(cursor, 0u);
  EXPECT_EQ(pick_host(set, loads, 0, cursor), 0u);
  EXPECT_EQ(cursor, 1u);
}

TEST(BalancerTest, RoundRobinCursorPastEndWrapsAround) {
  // A cursor left by a larger set before a reload.
  const health::HostSet set = make_set(Balance::round_robin, {true, true, true});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0});
  unsigned cursor = 7;
  EXPECT_EQ(pick_host(set, loads, 0, cursor), 1u);
  EXPECT_EQ(cursor, 2u);
}

TEST(BalancerTest, RoundRobinIgnoresLoad) {
  const health::HostSet set = make_set(Balance::round_robin, {true, true, true});
  const std::vector<HostLoad> loads = make_loads({9, 0, 0});
  unsigned cursor = 0;
  EXPECT_EQ(picks(set, loads, cursor, 4), (Picks{0, 1, 2, 0}));
}

TEST(BalancerTest, RoundRobinSkipsUnhealthyHosts) {
  const health::HostSet set = make_set(Balance::round_robin, {true, false, true, false});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0, 0});
  unsigned cursor = 0;
  EXPECT_EQ(picks(set, loads, cursor, 5), (Picks{0, 2, 0, 2, 0}));
  cursor = 1;  // starting on an unhealthy host moves on to the next healthy one
  EXPECT_EQ(pick_host(set, loads, 0, cursor), 2u);
  EXPECT_EQ(cursor, 3u);
  EXPECT_EQ(pick_host(set, loads, 0, cursor), 0u);
  EXPECT_EQ(cursor, 1u);
}

TEST(BalancerTest, FallsBackToUnhealthyWhenAllUnhealthy) {
  const health::HostSet set = make_set(Balance::round_robin, {false, false, false});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0});
  unsigned cursor = 0;
  EXPECT_EQ(picks(set, loads, cursor, 4), (Picks{0, 1, 2, 0}));
}

TEST(BalancerTest, FallsBackToUntriedUnhealthyWhenHealthyAllTried) {
  const health::HostSet set = make_set(Balance::round_robin, {true, false, false});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0});
  unsigned cursor = 0;
  EXPECT_EQ(pick_host(set, loads, 0b001, cursor), 1u);
  EXPECT_EQ(cursor, 2u);
  EXPECT_EQ(pick_host(set, loads, 0b011, cursor), 2u);
  EXPECT_EQ(cursor, 0u);
}

TEST(BalancerTest, RoundRobinRespectsTriedBitmask) {
  const health::HostSet set = make_set(Balance::round_robin, {true, true, true});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0});
  unsigned cursor = 0;
  EXPECT_EQ(pick_host(set, loads, 0b001, cursor), 1u);
  EXPECT_EQ(cursor, 2u);
  cursor = 0;
  EXPECT_EQ(pick_host(set, loads, 0b011, cursor), 2u);
  EXPECT_EQ(cursor, 0u);
  cursor = 1;
  EXPECT_EQ(pick_host(set, loads, 0b110, cursor), 0u);
  EXPECT_EQ(cursor, 1u);
}

TEST(BalancerTest, AllTriedReturnsNoHostAndKeepsCursor) {
  const health::HostSet set = make_set(Balance::round_robin, {true, false, true});
  const std::vector<HostLoad> loads = make_loads({0, 0, 0});
  unsigned cursor = 2;
  EXPECT_EQ(pick_host(set, loads, 0b111, cursor), kNoHost);
  EXPECT_EQ(cursor, 2u);
  const health::HostSet lc = make_set(Balance::least_conn, {true, true});
  const std::vector<HostLoad> lc_loads = make_loads({0, 0});
  cursor = 1;
  EXPECT_EQ(pick_host(lc, lc_loads, 0b11, cursor), kNoHost);
  EXPECT_EQ(cursor, 1u);
}

TEST(BalancerTest, HostsPast64AreNeverExcluded) {
  const health::HostSet set = make_set(Balance::round_robin, std::vector<bool>(66, true));
  const std::vector<HostLoad> loads(66);
  unsigned cursor = 0;
  EXPECT_EQ(pick_host(set, loads, ~std::uint64_t{0}, cursor), 64u);
  EXPECT_EQ(cursor, 65u);
  EXPECT_EQ(pick_host(set, loads, ~std::uint64_t{0}, cursor), 65u);
  EXPECT_EQ(cursor, 0u);
  EXPECT_EQ(pick_host(set, loads, ~std::uint64_t{0}, cursor), 64u);
}

TEST(BalancerTest, EmptySetReturnsNoHost) {
  const health::HostSet rr = make_set(Balance::round_robin, {});
  const health::HostSet lc = make_set(Balance::least_conn, {});
  unsigned cursor = 3;
  EXPECT_EQ(pick_host(rr, {}, 0, cursor), kNoHost);
  EXPECT_EQ(pick_host(lc, {}, 0, cursor), kNoHost);
  EXPECT_EQ(cursor, 3u);
}

// ---------------------------------------------------------------------------------------
// least_conn

TEST(BalancerTest, LeastConnPicksFewestActive) {
  const health::HostSet set = make_set(Balance::least_conn, {true, true, true});
  const std::vector<HostLoad> loads = make_loads({3, 1, 2});
  for (unsigned start = 0; start < 3; ++start) {
    SCOPED_TRACE(start);
    unsigned cursor = start;
    EXPECT_EQ(pick_host(set, loads, 0, cursor), 1u);
    EXPECT_EQ(cursor, 2u);
  }
}

TEST(BalancerTest, LeastConnTiesRotate) {
  const health::HostSet set = make_set(Balance::least_conn, {true, true, true});
  unsigned cursor = 0;
  EXPECT_EQ(picks(set, make_loads({0, 0, 0}), cursor, 6), (Picks{0, 1, 2, 0, 1, 2}));
  cursor = 0;
  EXPECT_EQ(picks(set, make_loads({2, 0, 0}), cursor, 4), (Picks{1, 2, 1, 2}));
  cursor = 0;
  EXPECT_EQ(picks(set, make_loads({1, 4, 1}), cursor, 4), (Picks{0, 2, 0, 2}));
}

TEST(BalancerTest, LeastConnFollowsChangingLoads) {
  // As the worker does: each pick adds an exchange to the chosen host.
  const health::HostSet set = make_set(Balance::least_conn, {true, true, true});
  std::vector<HostLoad> loads = make_loads({1, 0, 2});
  unsigned cursor = 0;
  Picks chosen;
  for (int i = 0; i < 5; ++i) {
    const std::size_t host = pick_host(set, loads, 0, cursor);
    ASSERT_NE(host, kNoHost);
    chosen.push_back(host);
    ++loads[host].active;
  }
  // loads: {1,0,2} -> 1; {1,1,2} -> tie from cursor 2: 0; {2,1,2} -> 1; {2,2,2} -> from
  // cursor 2: 2; {2,2,3} -> from cursor 0: 0.
  EXPECT_EQ(chosen, (Picks{1, 0, 1, 2, 0}));
}

TEST(BalancerTest, LeastConnSkipsUnhealthyEvenIfIdle) {
  const health::HostSet set = make_set(Balance::least_conn, {true, false, true});
  const std::vector<HostLoad> loads = make_loads({5, 0, 3});
  unsigned cursor = 0;
  EXPECT_EQ(pick_host(set, loads, 0, cursor), 2u);
  EXPECT_EQ(cursor, 0u);
}

TEST(BalancerTest, LeastConnRespectsTried) {
  const health::HostSet set = make_set(Balance::least_conn, {true, true, true});
  const std::vector<HostLoad> loads = make_loads({0, 1, 2});
  unsigned cursor = 0;
  EXPECT_EQ(pick_host(set, loads, 0b001, cursor), 1u);
  EXPECT_EQ(pick_host(set, loads, 0b011, cursor), 2u);
}

TEST(BalancerTest, LeastConnFallsBackToLeastLoadedUnhealthy) {
  const health::HostSet set = make_set(Balance::least_conn, {false, false, false});
  const std::vector<HostLoad> loads = make_loads({4, 2, 3});
  unsigned cursor = 0;
  EXPECT_EQ(pick_host(set, loads, 0, cursor), 1u);
  EXPECT_EQ(cursor, 2u);
  EXPECT_EQ(pick_host(set, loads, 0b010, cursor), 2u);
}

}  // namespace
}  // namespace gh::proxy
