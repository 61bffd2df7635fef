// Unit tests for config/: [[check]] sections.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "tests/unit/config_test_support.hpp"

namespace gh::config {
namespace {

using namespace std::chrono_literals;
using namespace gh::config::testing;

// --- Dependency checks --------------------------------------------------------------------

// kMinimal plus one [[check]] whose header is line 8 and first key line 9.
std::string check(std::string_view keys) {
  return with("[[check]]\n" + std::string(keys));
}

TEST(ConfigCheck, PostgresRoundTrips) {
  LoadResult result = load(check(R"(name = "db"
type = "postgres"
target = "postgresql://app@db:5432/app"
password_file = "/run/secrets/pg"
query = "SELECT 42"
require_primary = true
interval = "10s"
timeout = "3s"
jitter = "500ms"
start_period = "1m"
rise = 1
fall = 5
required = false
)"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  ASSERT_EQ(result.config->checks.size(), 1u);
  const Check& db = result.config->checks[0];
  EXPECT_EQ(db.name, "db");
  EXPECT_EQ(db.type, CheckType::postgres);
  EXPECT_EQ(db.target, "postgresql://app@db:5432/app");
  EXPECT_EQ(db.upstream, "");
  EXPECT_EQ(db.password_file, "/run/secrets/pg");
  EXPECT_EQ(db.query, "SELECT 42");
  EXPECT_TRUE(db.require_primary);
  EXPECT_EQ(db.interval, 10s);
  EXPECT_EQ(db.timeout, 3s);
  EXPECT_EQ(db.jitter, 500ms);
  EXPECT_EQ(db.start_period, 1min);
  EXPECT_EQ(db.rise, 1u);
  EXPECT_EQ(db.fall, 5u);
  EXPECT_FALSE(db.required);
}

TEST(ConfigCheck, HttpRoundTrips) {
  LoadResult result =
      load(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\npath = \"/api/health\"\n"
                 "expect_status = \"200-299\"\nexpect_body = \"ok\"\n"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Check& app = result.config->checks.at(0);
  EXPECT_EQ(app.type, CheckType::http);
  EXPECT_EQ(app.upstream, "app");
  EXPECT_EQ(app.target, "");
  EXPECT_EQ(app.path, "/api/health");
  EXPECT_EQ(app.expect_status_min, 200);
  EXPECT_EQ(app.expect_status_max, 299);
  EXPECT_EQ(app.expect_body, "ok");
}

TEST(ConfigCheck, ExpectStatusForms) {
  auto status = [](std::string_view value) {
    LoadResult result =
        load(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n"
                   "expect_status = " +
                   std::string(value) + "\n"));
    EXPECT_TRUE(result.config.has_value()) << value << "\n" << joined(result.errors);
    const Check& c = result.config->checks.at(0);
    return std::pair(c.expect_status_min, c.expect_status_max);
  };
  EXPECT_EQ(status("\"204\""), std::pair(204, 204));
  EXPECT_EQ(status("\"100-599\""), std::pair(100, 599));
  EXPECT_EQ(status("\"301-301\""), std::pair(301, 301));
  EXPECT_EQ(status("200"), std::pair(200, 200));  // a TOML integer works too
}

TEST(ConfigCheck, TcpAndRedisTakeHostPort) {
  LoadResult result =
      load(check("name = \"smtp\"\ntype = \"tcp\"\ntarget = \"mail:25\"\n"
                 "[[check]]\nname = \"cache\"\ntype = \"redis\"\ntarget = \"[::1]:6379\"\n"
                 "password_file = \"/run/secrets/redis\"\n"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  ASSERT_EQ(result.config->checks.size(), 2u);
  EXPECT_EQ(result.config->checks[0].type, CheckType::tcp);
  EXPECT_EQ(result.config->checks[0].target, "mail:25");
  EXPECT_EQ(result.config->checks[1].type, CheckType::redis);
  EXPECT_EQ(result.config->checks[1].target, "[::1]:6379");
  EXPECT_EQ(result.config->checks[1].password_file, "/run/secrets/redis");
}

TEST(ConfigCheck, DefaultsWithOnlyRequiredKeys) {
  LoadResult result = load(check("name = \"smtp\"\ntype = \"tcp\"\ntarget = \"mail:25\"\n"));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const Check& c = result.config->checks.at(0);
  EXPECT_EQ(c.query, "SELECT 1");
  EXPECT_FALSE(c.require_primary);
  EXPECT_EQ(c.path, "/");
  EXPECT_EQ(c.expect_status_min, 200);
  EXPECT_EQ(c.expect_status_max, 399);
  EXPECT_EQ(c.interval, 5s);
  EXPECT_EQ(c.timeout, 2s);
  EXPECT_EQ(c.jitter, 0ms);
  EXPECT_EQ(c.start_period, 0s);
  EXPECT_EQ(c.rise, 2u);
  EXPECT_EQ(c.fall, 3u);
  EXPECT_TRUE(c.required);
  EXPECT_TRUE(load(kMinimal).config->checks.empty());
}

TEST(ConfigCheck, NameAndTypeAreRequired) {
  EXPECT_EQ(only_error(check("type = \"tcp\"\ntarget = \"a:1\"\n")),
            "test.toml:8:1: check: missing required key \"name\"");
  EXPECT_EQ(only_error(check("name = \"\"\ntype = \"tcp\"\ntarget = \"a:1\"\n")),
            "test.toml:9:8: check.name: must not be empty");
  EXPECT_EQ(only_error(check("name = \"x\"\ntarget = \"a:1\"\n")),
            "test.toml:8:1: check: missing required key \"type\"");
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"mysql\"\n")),
            "test.toml:10:8: check.type: unknown value \"mysql\" (expected \"postgres\", \"http\", "
            "\"tcp\", \"redis\")");
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"tcp\"\ntarget = \"a:1\"\n"
                             "[[check]]\nname = \"x\"\ntype = \"tcp\"\ntarget = \"b:1\"\n")),
            "test.toml:13:8: check: duplicate name \"x\" (first defined at line 9)");
  EXPECT_EQ(only_error(with("[check]\nname = \"x\"\n")),
            "test.toml:8:1: check: expected an array of tables (write [[check]])");
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"tcp\"\ntarget = \"a:1\"\ntimout = \"1s\"\n")),
            "test.toml:12:1: unknown key \"check.timout\" (did you mean \"timeout\"?)");
}

TEST(ConfigCheck, TargetIsRequiredAndCheckedByType) {
  EXPECT_EQ(only_error(check("name = \"db\"\ntype = \"postgres\"\n")),
            "test.toml:8:1: check: missing required key \"target\" for type \"postgres\"");
  EXPECT_EQ(only_error(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"\"\n")),
            "test.toml:11:10: check.target: must not be empty");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"redis\"\n")),
            "test.toml:8:1: check: missing required key \"target\" for type \"redis\"");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"tcp\"\ntarget = \"redis\"\n")),
            "test.toml:11:10: check.target: invalid address \"redis\": missing port");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"redis\"\ntarget = \"redis://cache:6379\"\n")),
            "test.toml:11:10: check.target: invalid address \"redis://cache:6379\": must not "
            "include a scheme like \"http://\"");
  // A postgres target is the driver's business: conninfo and URLs alike.
  EXPECT_TRUE(load(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"host=db dbname=app\"\n"))
                  .config.has_value());
}

TEST(ConfigCheck, HttpNeedsAnExistingUpstream) {
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\n")),
            "test.toml:8:1: check: missing required key \"upstream\" for type \"http\"");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = \"api\"\n")),
            "test.toml:11:12: check: upstream \"api\" is not defined");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = 1\n")),
            "test.toml:11:12: check.upstream: expected a string");
  // A [[check]] written before the [[upstream]] it names still finds it.
  LoadResult early = load("[[check]]\nname = \"app\"\ntype = \"http\"\nupstream = \"app\"\n" +
                          std::string(kMinimal));
  ASSERT_TRUE(early.config.has_value()) << joined(early.errors);
  EXPECT_EQ(early.config->checks.at(0).upstream, "app");
}

TEST(ConfigCheck, KeysOfOtherTypesAreErrors) {
  EXPECT_EQ(only_error(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"db\"\n"
                             "upstream = \"app\"\n")),
            "test.toml:12:1: check.upstream: not allowed for type \"postgres\" (only for "
            "\"http\")");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n"
                             "target = \"app:3000\"\n")),
            "test.toml:12:1: check.target: not allowed for type \"http\" (only for \"postgres\", "
            "\"tcp\", \"redis\")");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"tcp\"\ntarget = \"a:1\"\n"
                             "password_file = \"/p\"\n")),
            "test.toml:12:1: check.password_file: not allowed for type \"tcp\" (only for "
            "\"postgres\", \"redis\")");
  EXPECT_EQ(only_error(check("name = \"c\"\ntype = \"redis\"\ntarget = \"a:1\"\n"
                             "require_primary = true\n")),
            "test.toml:12:1: check.require_primary: not allowed for type \"redis\" (only for "
            "\"postgres\")");
  EXPECT_EQ(only_error(check("name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n"
                             "query = \"SELECT 1\"\n")),
            "test.toml:12:1: check.query: not allowed for type \"http\" (only for \"postgres\")");
  // Every http-only key on a non-http check, each at its own key.
  LoadResult result =
      load(check("name = \"db\"\ntype = \"postgres\"\ntarget = \"db\"\n"
                 "path = \"/\"\nexpect_status = \"200\"\nexpect_body = \"ok\"\n"));
  EXPECT_EQ(texts(result.errors),
            (std::vector<std::string>{
                "test.toml:12:1: check.path: not allowed for type \"postgres\" (only for \"http\")",
                "test.toml:13:1: check.expect_status: not allowed for type \"postgres\" (only for "
                "\"http\")",
                "test.toml:14:1: check.expect_body: not allowed for type \"postgres\" (only for "
                "\"http\")",
            }));
  // Without a valid type there is nothing to judge these keys against.
  EXPECT_EQ(only_error(check("name = \"x\"\ntype = \"ftp\"\npath = \"/\"\nquery = \"q\"\n")),
            "test.toml:10:8: check.type: unknown value \"ftp\" (expected \"postgres\", \"http\", "
            "\"tcp\", \"redis\")");
}

TEST(ConfigCheck, HttpValuesAreChecked) {
  std::string head = "name = \"app\"\ntype = \"http\"\nupstream = \"app\"\n";  // lines 9-11
  EXPECT_EQ(only_error(check(head + "path = \"health\"\n")),
            "test.toml:12:8: check.path: must start with \"/\"");
  EXPECT_EQ(only_error(check(head + "expect_status = \"2xx\"\n")),
            "test.toml:12:17: check.expect_status: invalid status \"2xx\" (expected a code like "
            "\"200\" or a range like \"200-399\", codes 100 to 599)");
  EXPECT_EQ(only_error(check(head + "expect_status = \"399-200\"\n")),
            "test.toml:12:17: check.expect_status: invalid status range \"399-200\": 399 is above "
            "200");
  EXPECT_EQ(only_error(check(head + "expect_status = 600\n")),
            "test.toml:12:17: check.expect_status: must be between 100 and 599");
  EXPECT_EQ(only_error(check(head + "expect_body = 1\n")),
            "test.toml:12:15: check.expect_body: expected a string");
  for (std::string_view bad : {"99", "600", "200-600", "200-", "-399", "200-399-500", " 200",
                               "200 - 399", "", "0200", "2e2"}) {
    std::string error = only_error(check(head + "expect_status = \"" + std::string(bad) + "\"\n"));
    EXPECT_TRUE(error.starts_with("test.toml:12:17: check.expect_status: invalid status"))
        << bad << ": " << error;
  }
}

TEST(ConfigCheck, PostgresValuesAreChecked) {
  std::string head = "name = \"db\"\ntype = \"postgres\"\ntarget = \"db\"\n";  // lines 9-11
  EXPECT_EQ(only_error(check(head + "require_primary = \"yes\"\n")),
            "test.toml:12:19: check.require_primary: expected true or false");
  EXPECT_EQ(only_error(check(head + "query = \"\"\n")),
            "test.toml:12:9: check.query: must not be empty");
  EXPECT_EQ(only_error(check(head + "password_file = 1\n")),
            "test.toml:12:17: check.password_file: expected a string");
}

TEST(ConfigCheck, TimingIsChecked) {
  std::string head = "name = \"c\"\ntype = \"tcp\"\ntarget = \"a:1\"\n";  // lines 9-11
  EXPECT_EQ(only_error(check(head + "interval = \"1s\"\ntimeout = \"1s\"\n")),
            "test.toml:13:11: check.timeout: must be shorter than interval (1s)");
  EXPECT_EQ(only_error(check(head + "timeout = \"5s\"\n")),
            "test.toml:12:11: check.timeout: must be shorter than interval (5s)");
  EXPECT_EQ(only_error(check(head + "interval = \"1500ms\"\n")),
            "test.toml:12:12: check.interval: must be longer than timeout (2s, the default)");
  EXPECT_EQ(only_error(check(head + "timeout = \"0s\"\n")),
            "test.toml:12:11: check.timeout: must be greater than 0");
  EXPECT_EQ(only_error(check(head + "rise = 0\n")),
            "test.toml:12:8: check.rise: must be between 1 and 4294967295");
  EXPECT_EQ(only_error(check(head + "fall = -3\n")),
            "test.toml:12:8: check.fall: must be between 1 and 4294967295");
  EXPECT_EQ(
      only_error(check(head + "jitter = \"1\"\n")),
      "test.toml:12:10: check.jitter: invalid duration \"1\": missing unit (ms, s, m, h or d)");
  EXPECT_EQ(only_error(check(head + "start_period = 30\n")),
            "test.toml:12:16: check.start_period: expected a string");
  EXPECT_EQ(only_error(check(head + "required = 1\n")),
            "test.toml:12:12: check.required: expected true or false");
  LoadResult fast = load(check(head + "interval = \"200ms\"\ntimeout = \"150ms\"\n"));
  ASSERT_TRUE(fast.config.has_value()) << joined(fast.errors);
  EXPECT_EQ(fast.config->checks[0].interval, 200ms);
}

TEST(ConfigCheck, ReportsEveryErrorOfEveryCheckInFileOrder) {
  LoadResult result = load(check(R"(name = "db"
type = "postgres"
target = ""
path = "/"
[[check]]
name = "db"
type = "http"
upstream = "nope"
expect_status = "abc"
[[check]]
name = "c"
type = "redis"
rise = 0
)"));
  EXPECT_FALSE(result.config.has_value());
  EXPECT_EQ(texts(result.errors),
            (std::vector<std::string>{
                "test.toml:11:10: check.target: must not be empty",
                "test.toml:12:1: check.path: not allowed for type \"postgres\" (only for \"http\")",
                "test.toml:14:8: check: duplicate name \"db\" (first defined at line 9)",
                "test.toml:16:12: check: upstream \"nope\" is not defined",
                "test.toml:17:17: check.expect_status: invalid status \"abc\" (expected a code "
                "like \"200\" or a range like \"200-399\", codes 100 to 599)",
                "test.toml:18:1: check: missing required key \"target\" for type \"redis\"",
                "test.toml:21:8: check.rise: must be between 1 and 4294967295",
            }));
}

}  // namespace
}  // namespace gh::config
