// Unit tests for config/: [[listener]] keys, TLS listeners and HTTPS redirects.
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

// --- TLS listeners, HTTPS redirects -------------------------------------------------------

// A TLS listener on :8443 whose [listener.tls] header is line 10 and whose next key is
// line 12 (line 11 lists the certificates).
std::string tls_listener(std::string_view extra) {
  return with(
      "[[listener]]\n"
      "address = \"0.0.0.0:8443\"\n"
      "[listener.tls]\n"
      "certificates = [ { cert = \"/certs/fullchain.pem\", key = \"/certs/privkey.pem\" } ]\n" +
      std::string(extra));
}

TEST(ConfigTls, RoundTripsEveryKey) {
  LoadResult result = load_with(R"([[listener]]
address = "0.0.0.0:8443"
[listener.tls]
certificates = [
  { cert = "/certs/fullchain.pem", key = "/certs/privkey.pem" },
  { cert = "/certs/other.pem", key = "/certs/other.key" },
]
min_version = "1.3"
ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"
handshake_timeout = "3s"
hsts = "365d"
ocsp_file = "/certs/ocsp.der"
)");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  ASSERT_EQ(result.config->listeners.size(), 2u);
  EXPECT_FALSE(result.config->listeners[0].tls.has_value());
  const Listener& listener = result.config->listeners[1];
  EXPECT_EQ(listener.address, (HostPort{"0.0.0.0", 8443}));
  ASSERT_TRUE(listener.tls.has_value());
  const ListenerTls& tls = *listener.tls;
  ASSERT_EQ(tls.certificates.size(), 2u);
  EXPECT_EQ(tls.certificates[0].cert_file, "/certs/fullchain.pem");
  EXPECT_EQ(tls.certificates[0].key_file, "/certs/privkey.pem");
  EXPECT_EQ(tls.certificates[1].cert_file, "/certs/other.pem");
  EXPECT_EQ(tls.certificates[1].key_file, "/certs/other.key");
  EXPECT_EQ(tls.min_version, TlsVersion::tls1_3);
  EXPECT_EQ(tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(tls.handshake_timeout, 3s);
  EXPECT_EQ(tls.hsts_max_age, std::optional<Duration>(24h * 365));
  EXPECT_EQ(tls.ocsp_file, "/certs/ocsp.der");
  EXPECT_FALSE(listener.redirect_to_https);
}

TEST(ConfigTls, OnlyCertificatesKeepsDefaults) {
  LoadResult result = load(tls_listener(""));
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  const ListenerTls& tls = result.config->listeners[1].tls.value();
  ASSERT_EQ(tls.certificates.size(), 1u);
  EXPECT_EQ(tls.min_version, TlsVersion::tls1_2);
  EXPECT_EQ(tls.ciphers, "");
  EXPECT_EQ(tls.handshake_timeout, 10s);
  EXPECT_FALSE(tls.hsts_max_age.has_value());
  EXPECT_EQ(tls.ocsp_file, "");
  EXPECT_FALSE(result.config->listeners[0].tls.has_value());
}

TEST(ConfigTls, AcceptsInlineTableAndArrayOfTablesForms) {
  LoadResult inline_tls = load_with(
      "[[listener]]\naddress = \"0.0.0.0:8443\"\n"
      "tls = { certificates = [ { cert = \"c\", key = \"k\" } ], hsts = \"0s\" }\n");
  ASSERT_TRUE(inline_tls.config.has_value()) << joined(inline_tls.errors);
  EXPECT_EQ(inline_tls.config->listeners[1].tls->certificates[0].cert_file, "c");
  EXPECT_EQ(inline_tls.config->listeners[1].tls->hsts_max_age, std::optional<Duration>(0ms));

  LoadResult array_of_tables = load_with(
      "[[listener]]\naddress = \"0.0.0.0:8443\"\n"
      "[[listener.tls.certificates]]\ncert = \"a.pem\"\nkey = \"a.key\"\n"
      "[[listener.tls.certificates]]\ncert = \"b.pem\"\nkey = \"b.key\"\n");
  ASSERT_TRUE(array_of_tables.config.has_value()) << joined(array_of_tables.errors);
  const ListenerTls& tls = array_of_tables.config->listeners[1].tls.value();
  ASSERT_EQ(tls.certificates.size(), 2u);
  EXPECT_EQ(tls.certificates[1].key_file, "b.key");
}

TEST(ConfigTls, CertificatesAreRequiredAndChecked) {
  std::string head = "[[listener]]\naddress = \"0.0.0.0:8443\"\n[listener.tls]\n";
  EXPECT_EQ(only_error(with(head + "min_version = \"1.3\"\n")),
            "test.toml:10:1: listener.tls: missing required key \"certificates\"");
  EXPECT_EQ(only_error(with(head + "certificates = []\n")),
            "test.toml:11:16: listener.tls.certificates: must list at least one certificate");
  EXPECT_EQ(only_error(with(head + "certificates = \"/certs/fullchain.pem\"\n")),
            "test.toml:11:16: listener.tls.certificates: expected an array like [ { cert = "
            "\"...\", key = \"...\" } ]");
  EXPECT_EQ(only_error(with(head + "certificates = [\"/certs/fullchain.pem\"]\n")),
            "test.toml:11:17: listener.tls.certificates: expected a table like { cert = "
            "\"...\", key = \"...\" }");
  EXPECT_EQ(only_error(with(head + "certificates = [ { cert = \"c.pem\" } ]\n")),
            "test.toml:11:18: listener.tls.certificates: missing required key \"key\"");
  EXPECT_EQ(only_error(with(head + "certificates = [ { cert = \"\", key = \"k\" } ]\n")),
            "test.toml:11:27: listener.tls.certificates.cert: must not be empty");
  EXPECT_EQ(only_error(with(head + "certificates = [ { cert = \"c\", key = 1 } ]\n")),
            "test.toml:11:38: listener.tls.certificates.key: expected a string");
  EXPECT_EQ(
      only_error(with(head + "certificates = [ { cert = \"c\", kye = \"k\", key = \"k\" } ]\n")),
      "test.toml:11:32: unknown key \"listener.tls.certificates.kye\" (did you mean "
      "\"key\"?)");
}

TEST(ConfigTls, BadValuesNameTheKey) {
  EXPECT_EQ(only_error(tls_listener("min_version = \"1.1\"\n")),
            "test.toml:12:15: listener.tls.min_version: unknown value \"1.1\" (expected "
            "\"1.2\", \"1.3\")");
  EXPECT_EQ(only_error(tls_listener("min_version = 1.3\n")),
            "test.toml:12:15: listener.tls.min_version: expected a string (\"1.2\", \"1.3\"), not "
            "a number");
  EXPECT_EQ(only_error(tls_listener("hsts = \"1y\"\n")),
            "test.toml:12:8: listener.tls.hsts: invalid duration \"1y\": unknown unit \"y\" (ms, "
            "s, m, h or d)");
  EXPECT_EQ(only_error(tls_listener("handshake_timeout = 10\n")),
            "test.toml:12:21: listener.tls.handshake_timeout: expected a string");
  EXPECT_EQ(only_error(tls_listener("ciphers = [\"AES128\"]\n")),
            "test.toml:12:11: listener.tls.ciphers: expected a string");
  EXPECT_EQ(only_error(tls_listener("ocsp_file = false\n")),
            "test.toml:12:13: listener.tls.ocsp_file: expected a string");
  EXPECT_EQ(only_error(tls_listener("hst = \"1d\"\n")),
            "test.toml:12:1: unknown key \"listener.tls.hst\" (did you mean \"hsts\"?)");
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:8443\"\ntls = true\n")),
            "test.toml:10:7: listener.tls: expected a table");
}

TEST(ConfigListener, RedirectToHttpsWithAcmeWebroot) {
  LoadResult result = load_with(
      "[[listener]]\naddress = \"0.0.0.0:80\"\n"
      "redirect_to_https = true\nacme_webroot = \"/var/www/certbot\"\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_TRUE(result.warnings.empty()) << joined(result.warnings);
  const Listener& listener = result.config->listeners[1];
  EXPECT_TRUE(listener.redirect_to_https);
  EXPECT_EQ(listener.acme_webroot, "/var/www/certbot");
  EXPECT_FALSE(listener.tls.has_value());
  EXPECT_FALSE(result.config->listeners[0].redirect_to_https);
  EXPECT_EQ(result.config->listeners[0].acme_webroot, "");
}

TEST(ConfigListener, RedirectIsNotAllowedOnATlsListener) {
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:8443\"\nredirect_to_https = true\n"
                            "[listener.tls]\ncertificates = [ { cert = \"c\", key = \"k\" } ]\n")),
            "test.toml:10:21: listener.redirect_to_https: not allowed on a listener with "
            "[listener.tls] (redirect from a plain listener, such as port 80)");
  // false is merely redundant.
  LoadResult explicit_false = load_with(
      "[[listener]]\naddress = \"0.0.0.0:8443\"\nredirect_to_https = false\n"
      "[listener.tls]\ncertificates = [ { cert = \"c\", key = \"k\" } ]\n");
  ASSERT_TRUE(explicit_false.config.has_value()) << joined(explicit_false.errors);
  EXPECT_TRUE(explicit_false.config->listeners[1].tls.has_value());
}

TEST(ConfigListener, Http2IsOnForTlsAndH2cIsOptInForPlain) {
  LoadResult defaults = load(tls_listener(""));
  ASSERT_TRUE(defaults.config.has_value()) << joined(defaults.errors);
  EXPECT_TRUE(defaults.config->listeners[1].tls->http2);
  EXPECT_FALSE(defaults.config->listeners[0].h2c);

  LoadResult off = load(tls_listener("http2 = false\n"));
  ASSERT_TRUE(off.config.has_value()) << joined(off.errors);
  EXPECT_FALSE(off.config->listeners[1].tls->http2);

  LoadResult h2c = load_with("[[listener]]\naddress = \"0.0.0.0:8081\"\nh2c = true\n");
  ASSERT_TRUE(h2c.config.has_value()) << joined(h2c.errors);
  EXPECT_TRUE(h2c.config->listeners[1].h2c);
}

TEST(ConfigListener, H2cIsOnlyForPlainListeners) {
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:8443\"\nh2c = true\n"
                            "[listener.tls]\ncertificates = [ { cert = \"c\", key = \"k\" } ]\n")),
            "test.toml:10:7: listener.h2c: only for plain listeners (TLS listeners offer h2 "
            "through ALPN: [listener.tls] http2)");
  EXPECT_EQ(only_error(tls_listener("http2 = \"yes\"\n")),
            "test.toml:12:9: listener.tls.http2: expected true or false");
}

TEST(ConfigListener, BadRedirectValues) {
  EXPECT_EQ(
      only_error(with("[[listener]]\naddress = \"0.0.0.0:80\"\nredirect_to_https = \"yes\"\n")),
      "test.toml:10:21: listener.redirect_to_https: expected true or false");
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:80\"\nredirect_to_https = true\n"
                            "acme_webroot = 1\n")),
            "test.toml:11:16: listener.acme_webroot: expected a string");
  EXPECT_EQ(only_error(with("[[listener]]\naddress = \"0.0.0.0:80\"\nredirect = true\n")),
            "test.toml:10:1: unknown key \"listener.redirect\"");
}

TEST(ConfigListener, AcmeWebrootWithoutRedirectIsAWarning) {
  LoadResult result =
      load_with("[[listener]]\naddress = \"0.0.0.0:80\"\nacme_webroot = \"/var/www/certbot\"\n");
  ASSERT_TRUE(result.config.has_value()) << joined(result.errors);
  EXPECT_EQ(
      texts(result.warnings),
      std::vector<std::string>{
          "test.toml:10:16: listener.acme_webroot: ignored without redirect_to_https = true"});
  EXPECT_EQ(result.config->listeners[1].acme_webroot, "/var/www/certbot");

  LoadResult off = load_with(
      "[[listener]]\naddress = \"0.0.0.0:80\"\nredirect_to_https = false\nacme_webroot = \"/w\"\n");
  EXPECT_EQ(
      texts(off.warnings),
      std::vector<std::string>{
          "test.toml:11:16: listener.acme_webroot: ignored without redirect_to_https = true"});

  LoadResult empty = load_with("[[listener]]\naddress = \"0.0.0.0:80\"\nacme_webroot = \"\"\n");
  EXPECT_TRUE(empty.warnings.empty()) << joined(empty.warnings);
}

TEST(ConfigListener, EveryProblemOfOneListenerIsReported) {
  LoadResult result = load_with(
      "[[listener]]\naddress = \"0.0.0.0\"\nredirect_to_https = 1\n"
      "[listener.tls]\ncertificates = []\n");
  EXPECT_EQ(texts(result.errors),
            (std::vector<std::string>{
                "test.toml:9:11: listener.address: invalid address \"0.0.0.0\": missing port",
                "test.toml:10:21: listener.redirect_to_https: expected true or false",
                "test.toml:12:16: listener.tls.certificates: must list at least one certificate",
            }));
}

}  // namespace
}  // namespace gh::config
