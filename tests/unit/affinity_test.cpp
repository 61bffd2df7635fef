#include "proxy/affinity.hpp"

#include <gtest/gtest.h>

#include <map>

namespace gh::proxy {
namespace {

health::HostSet hosts(std::initializer_list<const char*> labels) {
  health::HostSet set;
  for (const char* label : labels) {
    health::Host h;
    h.label = label;
    set.hosts.push_back(h);
  }
  return set;
}

TEST(AffinityTest, QueryParam) {
  EXPECT_EQ(query_param("/socket.io/?EIO=4&transport=polling&sid=abc", "sid"), "abc");
  EXPECT_EQ(query_param("/socket.io/?sid=abc&EIO=4", "sid"), "abc");
  EXPECT_EQ(query_param("/socket.io/?EIO=4", "EIO"), "4");
  EXPECT_EQ(query_param("/socket.io/?EIO", "EIO"), "");
  EXPECT_FALSE(query_param("/socket.io/?xsid=abc", "sid"));
  EXPECT_FALSE(query_param("/socket.io/sid=abc", "sid"));
  EXPECT_EQ(query_param("/p?a=1#sid=x", "sid"), std::nullopt);
}

TEST(AffinityTest, EngineIoSid) {
  EXPECT_EQ(engineio_sid(R"(0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"]})"),
            "lv_VI97HAXpY6yYWAAAC");
  // EIO3 prefixes the packet length.
  EXPECT_EQ(engineio_sid(R"(97:0{"sid":"abc","upgrades":[]})"), "abc");
  EXPECT_FALSE(engineio_sid(R"(4{"sid":"abc"})"));  // not an open packet
  EXPECT_FALSE(engineio_sid(R"(0{"nosid":1})"));
  EXPECT_FALSE(engineio_sid(R"(0{"sid":"unterminated)"));
  EXPECT_FALSE(engineio_sid(""));
}

TEST(AffinityTest, EffectiveSticky) {
  config::Route route;
  route.path_prefix = "/socket.io/";
  EXPECT_EQ(effective_sticky(route, hosts({"a", "b"})), config::Sticky::socketio);
  EXPECT_EQ(effective_sticky(route, hosts({"a"})), config::Sticky::none);
  route.path_prefix = "/";
  EXPECT_EQ(effective_sticky(route, hosts({"a", "b"})), config::Sticky::none);
  route.sticky = config::Sticky::cookie;
  EXPECT_EQ(effective_sticky(route, hosts({"a", "b"})), config::Sticky::cookie);
}

TEST(AffinityTest, CookieNamesAHostOpaquely) {
  auto set = hosts({"10.0.0.1:3000", "10.0.0.2:3000", "10.0.0.3:3000"});
  for (std::size_t i = 0; i < set.hosts.size(); ++i) {
    std::string value = affinity_cookie_value(set.hosts[i].label);
    EXPECT_EQ(value.size(), 16u);
    EXPECT_EQ(value.find("10.0.0"), std::string::npos);
    EXPECT_EQ(host_for_cookie(set, value), i);
  }
  EXPECT_EQ(host_for_cookie(set, "0000000000000000"), static_cast<std::size_t>(-1));
  EXPECT_EQ(cookie_value("a=1; gh_affinity=xyz; b=2", "gh_affinity"), "xyz");
  EXPECT_EQ(cookie_value("gh_affinity=xyz", "gh_affinity"), "xyz");
  EXPECT_FALSE(cookie_value("xgh_affinity=1", "gh_affinity"));
}

TEST(AffinityTest, RendezvousMovesOnlyTheRemovedHostsClients) {
  auto three = hosts({"a:1", "b:1", "c:1"});
  auto two = hosts({"a:1", "c:1"});
  std::map<std::size_t, int> spread;
  int moved = 0;
  for (int client = 0; client < 300; ++client) {
    std::string key = "10.1.0." + std::to_string(client);
    std::size_t before = rendezvous_host(three, key);
    std::size_t after = rendezvous_host(two, key);
    ++spread[before];
    if (three.hosts[before].label != "b:1") {
      EXPECT_EQ(three.hosts[before].label, two.hosts[after].label) << key;
    } else {
      ++moved;
    }
    EXPECT_EQ(rendezvous_host(three, key), before);  // deterministic
  }
  EXPECT_EQ(spread.size(), 3u);
  EXPECT_GT(moved, 50);
}

TEST(AffinityTest, RendezvousSkipsUnhealthyHosts) {
  auto set = hosts({"a:1", "b:1"});
  set.hosts[0].healthy = false;
  for (int client = 0; client < 20; ++client) {
    EXPECT_EQ(rendezvous_host(set, std::to_string(client)), 1u);
  }
}

TEST(AffinityTest, SidTableLearnsExpiresAndForgets) {
  SidTable table(1000);
  table.learn("s1", "a:1", 10'000);
  table.learn("s2", "b:1", 10'000);
  EXPECT_EQ(table.lookup("s1", 10'500), "a:1");
  EXPECT_EQ(table.lookup("s1", 10'400), "a:1");  // another worker's clock a bit behind
  EXPECT_EQ(table.lookup("s1", 11'400), "a:1");  // refreshed at 10'500
  EXPECT_FALSE(table.lookup("s2", 11'400));      // idle for 1'400 ms > ttl
  EXPECT_FALSE(table.lookup("nope", 11'400));
  table.forget_host("a:1");
  EXPECT_FALSE(table.lookup("s1", 11'500));
  table.learn("s3", "c:1", 20'000);
  table.expire(21'001);
  EXPECT_EQ(table.size(), 0u);
}

}  // namespace
}  // namespace gh::proxy
