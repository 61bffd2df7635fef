// Unit tests for tls/context: certificate loading and validation errors, SNI selection,
// protocol versions, ALPN, OCSP stapling and ticket resumption across rebuilt contexts.
// Certificates are made here with OpenSSL's C API in a temporary directory; handshakes
// run in memory between a client SSL and the server context over a BIO pair.
#include <gtest/gtest.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "tls/context.hpp"

namespace gh::tls {
namespace {

using SessionPtr = std::unique_ptr<SSL_SESSION, OpenSslDeleter<SSL_SESSION, SSL_SESSION_free>>;
constexpr long kDay = 24 * 3600;

// ---- certificate factory ----------------------------------------------------------

enum class KeyType { rsa, ecdsa };

EvpPkeyPtr make_key(KeyType type) {
  if (type == KeyType::rsa) {
    return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  }
  return EvpPkeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

struct CertSpec {
  std::string common_name;
  std::vector<std::string> dns_names;  // none = no subjectAltName extension
  long not_before = -3600;             // seconds from now
  long not_after = 30 * kDay;
};

X509Ptr make_cert(EVP_PKEY* key, const CertSpec& spec) {
  static long serial = 1;
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), spec.not_before);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), spec.not_after);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (!spec.dns_names.empty()) {
    std::string san;
    for (const std::string& dns : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert.get(), key, EVP_sha256());
  return cert;
}

void write_cert(const std::string& path, X509* cert) {
  BioPtr bio(BIO_new_file(path.c_str(), "w"));
  ASSERT_TRUE(bio);
  ASSERT_EQ(PEM_write_bio_X509(bio.get(), cert), 1);
}

void write_key(const std::string& path, EVP_PKEY* key) {
  BioPtr bio(BIO_new_file(path.c_str(), "w"));
  ASSERT_TRUE(bio);
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A DER OCSP response saying `status` about the self-signed `cert`, signed by it.
std::string make_ocsp(X509* cert, EVP_PKEY* key, int status, long next_update) {
  using BasicPtr =
      std::unique_ptr<OCSP_BASICRESP, OpenSslDeleter<OCSP_BASICRESP, OCSP_BASICRESP_free>>;
  using ResponsePtr =
      std::unique_ptr<OCSP_RESPONSE, OpenSslDeleter<OCSP_RESPONSE, OCSP_RESPONSE_free>>;
  using TimePtr = std::unique_ptr<ASN1_TIME, OpenSslDeleter<ASN1_TIME, ASN1_TIME_free>>;
  BasicPtr basic(OCSP_BASICRESP_new());
  OCSP_CERTID* id = OCSP_cert_to_id(EVP_sha1(), cert, cert);
  TimePtr this_update(X509_gmtime_adj(nullptr, -3600));
  TimePtr next(X509_gmtime_adj(nullptr, next_update));
  TimePtr revoked_at(X509_gmtime_adj(nullptr, -60));
  OCSP_basic_add1_status(basic.get(), id, status, OCSP_REVOKED_STATUS_KEYCOMPROMISE,
                         status == V_OCSP_CERTSTATUS_REVOKED ? revoked_at.get() : nullptr,
                         this_update.get(), next.get());
  OCSP_CERTID_free(id);
  OCSP_basic_sign(basic.get(), cert, key, EVP_sha256(), nullptr, 0);
  ResponsePtr response(OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic.get()));
  unsigned char* der = nullptr;
  const int length = i2d_OCSP_RESPONSE(response.get(), &der);
  std::string bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
  OPENSSL_free(der);
  return bytes;
}

// ---- in-memory handshakes ---------------------------------------------------------

struct ClientOptions {
  std::optional<std::string> sni = "a.example";
  int min_version = TLS1_2_VERSION;
  int max_version = 0;  // 0 = highest
  std::string ciphers;  // "" = OpenSSL default
  std::string alpn;     // wire format: length-prefixed names
  SSL_SESSION* session = nullptr;
  bool request_ocsp = false;
};

struct Handshake {
  bool ok = false;
  std::string server_error;
  std::string client_error;
  SslCtxPtr client_ctx;
  SslPtr client;
  SslPtr server;

  std::string peer_common_name() const {
    X509* peer = SSL_get0_peer_certificate(client.get());
    if (peer == nullptr) return "(none)";
    char text[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, text, sizeof text);
    return text;
  }

  std::string alpn() const {
    const unsigned char* data = nullptr;
    unsigned int length = 0;
    SSL_get0_alpn_selected(client.get(), &data, &length);
    return std::string(reinterpret_cast<const char*>(data), length);
  }

  // The client's session after reading what the server sent post-handshake (TLS 1.3
  // tickets arrive after the handshake).
  SessionPtr session() const {
    char byte;
    SSL_read(client.get(), &byte, 1);
    ERR_clear_error();
    return SessionPtr(SSL_get1_session(client.get()));
  }
};

// Steps one side; returns false once it failed, with OpenSSL's reason in `error`.
bool step(SSL* ssl, bool& done, std::string& error) {
  if (done) return true;
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl);
  if (rc == 1) {
    done = true;
    return true;
  }
  const int err = SSL_get_error(ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return true;
  error = take_openssl_error("failed");
  return false;
}

Handshake handshake(const ServerContext& server, const ClientOptions& options = {}) {
  Handshake h;
  h.client_ctx.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = h.client_ctx.get();
  SSL_CTX_set_min_proto_version(ctx, options.min_version);
  SSL_CTX_set_max_proto_version(ctx, options.max_version);
  if (!options.ciphers.empty()) SSL_CTX_set_cipher_list(ctx, options.ciphers.c_str());
  h.client.reset(SSL_new(ctx));
  h.server = server.new_ssl();
  SSL* client = h.client.get();
  if (options.sni) SSL_set_tlsext_host_name(client, options.sni->c_str());
  if (!options.alpn.empty()) {
    SSL_set_alpn_protos(client, reinterpret_cast<const unsigned char*>(options.alpn.data()),
                        static_cast<unsigned>(options.alpn.size()));
  }
  if (options.session) SSL_set_session(client, options.session);
  if (options.request_ocsp) SSL_set_tlsext_status_type(client, TLSEXT_STATUSTYPE_ocsp);
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
  SSL_set_bio(client, client_bio, client_bio);
  SSL_set_bio(h.server.get(), server_bio, server_bio);
  SSL_set_connect_state(client);
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    if (!step(client, client_done, h.client_error)) break;
    if (!step(h.server.get(), server_done, h.server_error)) {
      step(client, client_done, h.client_error);  // let the client read the alert
      break;
    }
  }
  h.ok = client_done && server_done;
  return h;
}

// ---- fixture ----------------------------------------------------------------------

class TlsContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char pattern[] = "/tmp/gh_tls_context_XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    ecdsa_owner_ = make_key(KeyType::ecdsa);
    ecdsa2_owner_ = make_key(KeyType::ecdsa);
    rsa_owner_ = make_key(KeyType::rsa);
    ecdsa_ = ecdsa_owner_.get();
    ecdsa2_ = ecdsa2_owner_.get();
    rsa_ = rsa_owner_.get();
    ASSERT_TRUE(ecdsa_ && ecdsa2_ && rsa_);
    write_key(path("ecdsa.key"), ecdsa_);
    write_key(path("ecdsa2.key"), ecdsa2_);
    write_key(path("rsa.key"), rsa_);
    add("a", ecdsa_, {"A", {"a.example", "www.a.example"}});
    add("a-rsa", rsa_, {"A-RSA", {"www.a.example", "a.example"}});
    add("b", rsa_, {"B", {"b.example", "*.b.example"}});
    add("api", ecdsa2_, {"API", {"api.b.example"}});
    add("c", ecdsa_, {"c.example", {}});
    add("expired", ecdsa_, {"old", {"old.example"}, -10 * kDay, -2 * kDay});
    add("future", ecdsa_, {"new", {"new.example"}, 2 * kDay, 30 * kDay});
  }

  // Keys are freed here, not at exit (after OpenSSL's own atexit cleanup).
  static void TearDownTestSuite() {
    std::filesystem::remove_all(dir_);
    ecdsa_owner_.reset();
    ecdsa2_owner_.reset();
    rsa_owner_.reset();
  }

  static std::string path(const std::string& name) { return dir_ + "/" + name; }

  static void add(const std::string& name, EVP_PKEY* key, const CertSpec& spec) {
    X509Ptr cert = make_cert(key, spec);
    write_cert(path(name + ".pem"), cert.get());
  }

  static config::TlsCertificate cert(const std::string& name, const std::string& key) {
    return {path(name + ".pem"), path(key + ".key")};
  }

  static config::ListenerTls listener(std::vector<config::TlsCertificate> certs) {
    config::ListenerTls tls;
    tls.certificates = std::move(certs);
    return tls;
  }

  // a.example (ECDSA, default), *.b.example (RSA), api.b.example, c.example (CN only).
  static config::ListenerTls sites() {
    return listener(
        {cert("a", "ecdsa"), cert("b", "rsa"), cert("api", "ecdsa2"), cert("c", "ecdsa")});
  }

  std::shared_ptr<const ServerContext> build(const config::ListenerTls& tls) {
    auto context = ServerContext::build(tls, keys_);
    EXPECT_TRUE(context) << context.error().message;
    return context ? *context : nullptr;
  }

  std::string build_error(const config::ListenerTls& tls) {
    auto context = ServerContext::build(tls, keys_);
    EXPECT_FALSE(context);
    return context ? std::string() : context.error().message;
  }

  static inline std::string dir_;
  static inline EvpPkeyPtr ecdsa_owner_, ecdsa2_owner_, rsa_owner_;
  static inline EVP_PKEY* ecdsa_ = nullptr;
  static inline EVP_PKEY* ecdsa2_ = nullptr;
  static inline EVP_PKEY* rsa_ = nullptr;
  std::shared_ptr<TicketKeys> keys_ = *TicketKeys::generate();
};

// ---- loading and validation -------------------------------------------------------

TEST_F(TlsContextTest, BuildsWithRsaAndEcdsaCertificates) {
  auto context = build(sites());
  ASSERT_TRUE(context);
  EXPECT_EQ(context->handshake_timeout(), std::chrono::seconds(10));
  const std::string text = context->describe();
  EXPECT_NE(text.find("a.example,www.a.example (" + path("a.pem") + ", default)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("b.example,*.b.example (" + path("b.pem") + ")"), std::string::npos) << text;
  EXPECT_NE(text.find("c.example ("), std::string::npos) << text;
  EXPECT_NE(text.find("TLS 1.2+"), std::string::npos) << text;
  EXPECT_TRUE(check_certificates(sites()));
}

TEST_F(TlsContextTest, RejectsAnEmptyCertificateList) {
  EXPECT_EQ(build_error(listener({})), "tls: no certificate configured");
}

TEST_F(TlsContextTest, RejectsExpiredCertificateNamingTheFile) {
  const std::string error = build_error(listener({cert("a", "ecdsa"), cert("expired", "ecdsa")}));
  EXPECT_EQ(error.rfind(path("expired.pem") + ": certificate expired on 20", 0), 0u) << error;
  EXPECT_NE(error.find(" UTC"), std::string::npos) << error;
  auto checked = check_certificates(listener({cert("expired", "ecdsa")}));
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().message, error);
}

TEST_F(TlsContextTest, RejectsNotYetValidCertificate) {
  const std::string error = build_error(listener({cert("future", "ecdsa")}));
  EXPECT_EQ(error.rfind(path("future.pem") + ": certificate is not valid before 20", 0), 0u)
      << error;
}

TEST_F(TlsContextTest, RejectsKeyThatDoesNotMatch) {
  EXPECT_EQ(build_error(listener({cert("a", "ecdsa2")})),
            path("ecdsa2.key") + ": private key does not match certificate " + path("a.pem"));
  EXPECT_EQ(build_error(listener({cert("a", "rsa")})),
            path("rsa.key") + ": private key does not match certificate " + path("a.pem"));
}

TEST_F(TlsContextTest, ReportsUnreadableFilesWithPathAndReason) {
  EXPECT_EQ(build_error(listener({{path("missing.pem"), path("ecdsa.key")}})),
            path("missing.pem") + ": cannot read: No such file or directory");
  EXPECT_EQ(build_error(listener({{path("a.pem"), path("missing.key")}})),
            path("missing.key") + ": cannot read: No such file or directory");
  EXPECT_EQ(build_error(listener({{dir_, path("ecdsa.key")}})),
            dir_ + ": cannot read: Is a directory");
}

TEST_F(TlsContextTest, ReportsFilesThatAreNotPem) {
  write_bytes(path("garbage.txt"), "not a certificate\n");
  EXPECT_EQ(build_error(listener({{path("garbage.txt"), path("ecdsa.key")}})),
            path("garbage.txt") + ": no PEM certificate (no start line)");
  const std::string key_error = build_error(listener({{path("a.pem"), path("garbage.txt")}}));
  EXPECT_EQ(key_error.rfind(path("garbage.txt") + ": no PEM private key (", 0), 0u) << key_error;
  // A certificate where the key should be is no key either.
  EXPECT_EQ(build_error(listener({{path("a.pem"), path("a.pem")}}))
                .rfind(path("a.pem") + ": no PEM private key (", 0),
            0u);
}

TEST_F(TlsContextTest, RejectsEncryptedKeys) {
  BioPtr bio(BIO_new_file(path("encrypted.key").c_str(), "w"));
  ASSERT_EQ(PEM_write_bio_PKCS8PrivateKey(bio.get(), ecdsa_, EVP_aes_128_cbc(), nullptr, 0, nullptr,
                                          const_cast<char*>("secret")),
            1);
  bio.reset();
  EXPECT_EQ(build_error(listener({cert("a", "encrypted")})),
            path("encrypted.key") + ": encrypted private keys are not supported");
}

TEST_F(TlsContextTest, AcceptsAFullChainFile) {
  // Leaf first, then more certificates: the extras become the chain sent to clients.
  std::ifstream leaf(path("a.pem"));
  std::ifstream extra(path("b.pem"));
  std::string chain((std::istreambuf_iterator<char>(leaf)), std::istreambuf_iterator<char>());
  chain.append(std::istreambuf_iterator<char>(extra), std::istreambuf_iterator<char>());
  write_bytes(path("fullchain.pem"), chain);
  auto context = build(listener({{path("fullchain.pem"), path("ecdsa.key")}}));
  ASSERT_TRUE(context);
  Handshake h = handshake(*context);
  ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
  EXPECT_EQ(h.peer_common_name(), "A");
  EXPECT_EQ(sk_X509_num(SSL_get_peer_cert_chain(h.client.get())), 2);

  write_bytes(path("badchain.pem"), chain +
                                        "-----BEGIN CERTIFICATE-----\nnot base64!\n"
                                        "-----END CERTIFICATE-----\n");
  const std::string error = build_error(listener({{path("badchain.pem"), path("ecdsa.key")}}));
  EXPECT_EQ(error.rfind(path("badchain.pem") + ": bad certificate in chain (", 0), 0u) << error;
}

TEST_F(TlsContextTest, RejectsAnUnusableCipherList) {
  config::ListenerTls tls = sites();
  tls.ciphers = "NOT-A-CIPHER";
  EXPECT_EQ(build_error(tls).rfind("tls ciphers \"NOT-A-CIPHER\": no usable cipher", 0), 0u);
}

// ---- SNI --------------------------------------------------------------------------

TEST(TlsServerName, MatchesExactlyOrOneWildcardLabel) {
  EXPECT_TRUE(server_name_matches("a.example", "a.example"));
  EXPECT_TRUE(server_name_matches("a.example", "A.Example"));
  EXPECT_FALSE(server_name_matches("a.example", "b.example"));
  EXPECT_TRUE(server_name_matches("*.example.com", "www.example.com"));
  EXPECT_TRUE(server_name_matches("*.example.com", "WWW.EXAMPLE.COM"));
  EXPECT_FALSE(server_name_matches("*.example.com", "example.com"));
  EXPECT_FALSE(server_name_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(server_name_matches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(server_name_matches("*.example.com", "wwwexample.com"));
  EXPECT_FALSE(server_name_matches("*.", "a."));
  EXPECT_FALSE(server_name_matches("", ""));
}

TEST_F(TlsContextTest, SniSelectsTheMatchingCertificate) {
  auto context = build(sites());
  ASSERT_TRUE(context);
  const std::vector<std::pair<std::optional<std::string>, std::string>> cases = {
      {"a.example", "A"},         {"www.a.example", "A"}, {"WWW.A.EXAMPLE", "A"},
      {"b.example", "B"},         {"x.b.example", "B"},   {"api.b.example", "API"},
      {"c.example", "c.example"}, {"x.y.b.example", "A"}, {"unknown.test", "A"},
      {std::nullopt, "A"},
  };
  for (const auto& [sni, expected] : cases) {
    ClientOptions options;
    options.sni = sni;
    Handshake h = handshake(*context, options);
    ASSERT_TRUE(h.ok) << sni.value_or("(none)") << ": " << h.server_error << h.client_error;
    EXPECT_EQ(h.peer_common_name(), expected) << sni.value_or("(none)");
  }
}

TEST_F(TlsContextTest, SniWorksWithTls12AndRsaCertificates) {
  auto context = build(sites());
  ASSERT_TRUE(context);
  ClientOptions options;
  options.sni = "x.b.example";
  options.max_version = TLS1_2_VERSION;
  // A client that lists ChaCha20 first gets it (SSL_OP_PRIORITIZE_CHACHA)...
  options.ciphers = "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256";
  Handshake h = handshake(*context, options);
  ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
  EXPECT_EQ(h.peer_common_name(), "B");
  EXPECT_STREQ(SSL_get_cipher_name(h.client.get()), "ECDHE-RSA-CHACHA20-POLY1305");
  options.ciphers = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305";
  Handshake reversed = handshake(*context, options);
  ASSERT_TRUE(reversed.ok);
  EXPECT_STREQ(SSL_get_cipher_name(reversed.client.get()), "ECDHE-RSA-AES128-GCM-SHA256");
  // ...otherwise the server's order wins (testssl rates a client-chosen order HIGH):
  // AES-128-GCM comes before AES-256-GCM in Mozilla's list.
  options.ciphers = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256";
  Handshake server_order = handshake(*context, options);
  ASSERT_TRUE(server_order.ok);
  EXPECT_STREQ(SSL_get_cipher_name(server_order.client.get()), "ECDHE-RSA-AES128-GCM-SHA256");
  options.ciphers = "AES128-GCM-SHA256";  // no forward secrecy: not in intermediate
  EXPECT_FALSE(handshake(*context, options).ok);
}

TEST_F(TlsContextTest, RsaAndEcdsaCertificatesForTheSameNames) {
  auto context = build(listener({cert("a", "ecdsa"), cert("a-rsa", "rsa"), cert("b", "rsa")}));
  ASSERT_TRUE(context);
  EXPECT_NE(context->describe().find(path("a.pem") + " + " + path("a-rsa.pem")), std::string::npos)
      << context->describe();
  ClientOptions options;
  options.max_version = TLS1_2_VERSION;
  options.ciphers = "ECDHE-RSA-AES128-GCM-SHA256";  // a client that only does RSA
  Handshake rsa = handshake(*context, options);
  ASSERT_TRUE(rsa.ok) << rsa.server_error << rsa.client_error;
  EXPECT_EQ(rsa.peer_common_name(), "A-RSA");
  options.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  Handshake ecdsa = handshake(*context, options);
  ASSERT_TRUE(ecdsa.ok) << ecdsa.server_error << ecdsa.client_error;
  EXPECT_EQ(ecdsa.peer_common_name(), "A");
  options.sni = "b.example";  // other names keep their own certificate
  options.ciphers = "ECDHE-RSA-AES128-GCM-SHA256";
  Handshake b = handshake(*context, options);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.peer_common_name(), "B");
}

TEST_F(TlsContextTest, TwoCertificatesOfOneTypeForTheSameNamesStillLoad) {
  // A renewal listed next to the old certificate: the first one is served (with a warning).
  auto context = build(listener({cert("a", "ecdsa"), cert("a", "ecdsa"), cert("b", "rsa")}));
  ASSERT_TRUE(context);
  Handshake h = handshake(*context);
  ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
  EXPECT_EQ(h.peer_common_name(), "A");
}

// ---- protocol versions and ALPN ---------------------------------------------------

TEST_F(TlsContextTest, RefusesTls11AndAcceptsTls12And13) {
  auto context = build(sites());
  ASSERT_TRUE(context);
  ClientOptions old;
  old.min_version = old.max_version = TLS1_1_VERSION;
  old.ciphers = "DEFAULT:@SECLEVEL=0";  // let the client offer TLS 1.1 at all
  Handshake refused = handshake(*context, old);
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.server_error, "unsupported protocol");

  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    ClientOptions options;
    options.min_version = options.max_version = version;
    Handshake h = handshake(*context, options);
    ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
    EXPECT_EQ(SSL_version(h.server.get()), version);
  }
}

TEST_F(TlsContextTest, MinVersionTls13RefusesTls12) {
  config::ListenerTls tls = sites();
  tls.min_version = config::TlsVersion::tls1_3;
  auto context = build(tls);
  ASSERT_TRUE(context);
  EXPECT_NE(context->describe().find("TLS 1.3"), std::string::npos);
  ClientOptions tls12;
  tls12.max_version = TLS1_2_VERSION;
  EXPECT_FALSE(handshake(*context, tls12).ok);
  EXPECT_TRUE(handshake(*context).ok);
}

TEST_F(TlsContextTest, ConfiguredCiphersReplaceTheDefaults) {
  config::ListenerTls tls = sites();
  tls.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
  auto context = build(tls);
  ASSERT_TRUE(context);
  ClientOptions options;
  options.max_version = TLS1_2_VERSION;
  Handshake h = handshake(*context, options);
  ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
  EXPECT_STREQ(SSL_get_cipher_name(h.client.get()), "ECDHE-ECDSA-CHACHA20-POLY1305");
  options.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  EXPECT_FALSE(handshake(*context, options).ok);
}

TEST_F(TlsContextTest, AlpnPrefersH2AndFallsBackToHttp11) {
  auto context = build(sites());  // [listener.tls] http2 defaults to true
  ASSERT_TRUE(context);
  ClientOptions options;
  options.alpn = std::string("\x02h2\x08http/1.1", 12);
  Handshake h = handshake(*context, options);
  ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
  EXPECT_EQ(h.alpn(), "h2");

  options.alpn = std::string("\x08http/1.1", 9);  // a WebSocket or HTTP/1.1-only client
  Handshake h1 = handshake(*context, options);
  ASSERT_TRUE(h1.ok) << h1.server_error << h1.client_error;
  EXPECT_EQ(h1.alpn(), "http/1.1");

  Handshake without = handshake(*context);  // no ALPN offered: fine, none selected
  ASSERT_TRUE(without.ok);
  EXPECT_EQ(without.alpn(), "");
}

TEST_F(TlsContextTest, AlpnSelectsHttp11WhenHttp2IsOff) {
  config::ListenerTls tls = sites();
  tls.http2 = false;
  auto context = build(tls);
  ASSERT_TRUE(context);
  ClientOptions options;
  options.alpn = std::string("\x02h2\x08http/1.1", 12);
  Handshake h = handshake(*context, options);
  ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
  EXPECT_EQ(h.alpn(), "http/1.1");

  options.alpn = std::string("\x02h2", 3);  // nothing we speak: no_application_protocol
  EXPECT_FALSE(handshake(*context, options).ok);
}

// ---- session resumption -----------------------------------------------------------

class TlsResumptionTest : public TlsContextTest, public ::testing::WithParamInterface<int> {};

TEST_P(TlsResumptionTest, TicketResumesOnARebuiltContextWithTheSameKeys) {
  auto first = build(sites());
  ASSERT_TRUE(first);
  ClientOptions options;
  options.min_version = options.max_version = GetParam();
  Handshake initial = handshake(*first, options);
  ASSERT_TRUE(initial.ok) << initial.server_error << initial.client_error;
  EXPECT_FALSE(SSL_session_reused(initial.client.get()));
  SessionPtr session = initial.session();
  ASSERT_TRUE(session);
  ASSERT_TRUE(SSL_SESSION_is_resumable(session.get()));

  auto rebuilt = build(sites());  // a reload: new SSL_CTXs, same TicketKeys
  ASSERT_TRUE(rebuilt);
  options.session = session.get();
  Handshake resumed = handshake(*rebuilt, options);
  ASSERT_TRUE(resumed.ok) << resumed.server_error << resumed.client_error;
  EXPECT_TRUE(SSL_session_reused(resumed.client.get()));
  EXPECT_TRUE(SSL_session_reused(resumed.server.get()));

  auto other_keys = TicketKeys::generate();
  ASSERT_TRUE(other_keys);
  auto stranger = ServerContext::build(sites(), *other_keys);
  ASSERT_TRUE(stranger);
  Handshake full = handshake(**stranger, options);
  ASSERT_TRUE(full.ok) << full.server_error << full.client_error;
  EXPECT_FALSE(SSL_session_reused(full.client.get()));
}

TEST_P(TlsResumptionTest, TicketOutlivesOneKeyRotationButNotTwo) {
  auto context = build(sites());
  ASSERT_TRUE(context);
  ClientOptions options;
  options.min_version = options.max_version = GetParam();
  Handshake initial = handshake(*context, options);
  ASSERT_TRUE(initial.ok) << initial.server_error << initial.client_error;
  SessionPtr session = initial.session();
  ASSERT_TRUE(session);

  ASSERT_TRUE(keys_->rotate());  // the ticket's key is now the previous one
  options.session = session.get();
  Handshake resumed = handshake(*context, options);
  ASSERT_TRUE(resumed.ok) << resumed.server_error << resumed.client_error;
  EXPECT_TRUE(SSL_session_reused(resumed.server.get()));
  SessionPtr renewed = resumed.session();  // re-issued under the current key
  ASSERT_TRUE(renewed);

  ASSERT_TRUE(keys_->rotate());  // the first ticket's key is gone
  Handshake full = handshake(*context, options);
  ASSERT_TRUE(full.ok) << full.server_error << full.client_error;
  EXPECT_FALSE(SSL_session_reused(full.server.get()));
  options.session = renewed.get();
  Handshake again = handshake(*context, options);
  ASSERT_TRUE(again.ok) << again.server_error << again.client_error;
  EXPECT_TRUE(SSL_session_reused(again.server.get()));
}

INSTANTIATE_TEST_SUITE_P(TlsVersions, TlsResumptionTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? std::string("Tls13")
                                                               : std::string("Tls12");
                         });

// ---- OCSP stapling ----------------------------------------------------------------

class TlsOcspTest : public TlsContextTest {
 protected:
  // The OCSP response needs the certificate object, so this test makes its own.
  void SetUp() override {
    cert_ = make_cert(ecdsa_, {"A", {"a.example"}});
    write_cert(path("ocsp.pem"), cert_.get());
  }

  config::ListenerTls with_ocsp(const std::string& der) {
    write_bytes(path("ocsp.der"), der);
    config::ListenerTls tls = listener({cert("ocsp", "ecdsa"), cert("b", "rsa")});
    tls.ocsp_file = path("ocsp.der");
    return tls;
  }

  X509Ptr cert_;
};

TEST_F(TlsOcspTest, StaplesTheResponseWhenAsked) {
  const std::string der = make_ocsp(cert_.get(), ecdsa_, V_OCSP_CERTSTATUS_GOOD, kDay);
  auto context = build(with_ocsp(der));
  ASSERT_TRUE(context);
  EXPECT_NE(context->describe().find(path("ocsp.pem") + ", default, OCSP stapled)"),
            std::string::npos)
      << context->describe();

  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    ClientOptions options;
    options.request_ocsp = true;
    options.min_version = options.max_version = version;
    Handshake h = handshake(*context, options);
    ASSERT_TRUE(h.ok) << h.server_error << h.client_error;
    const unsigned char* stapled = nullptr;
    const long length = SSL_get_tlsext_status_ocsp_resp(h.client.get(), &stapled);
    ASSERT_GT(length, 0) << version;
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(stapled), static_cast<std::size_t>(length)),
              der);
  }
  // Only for the certificate the response is about.
  ClientOptions other;
  other.request_ocsp = true;
  other.sni = "b.example";
  Handshake h = handshake(*context, other);
  ASSERT_TRUE(h.ok);
  const unsigned char* stapled = nullptr;
  EXPECT_LE(SSL_get_tlsext_status_ocsp_resp(h.client.get(), &stapled), 0);
}

TEST_F(TlsOcspTest, RejectsUnusableResponses) {
  const std::string file = path("ocsp.der");
  EXPECT_EQ(build_error(with_ocsp("junk")), file + ": not a DER OCSP response");
  EXPECT_EQ(build_error(with_ocsp(make_ocsp(cert_.get(), ecdsa_, V_OCSP_CERTSTATUS_REVOKED, kDay))),
            file + ": OCSP response says the certificate is revoked");
  const std::string stale =
      build_error(with_ocsp(make_ocsp(cert_.get(), ecdsa_, V_OCSP_CERTSTATUS_GOOD, -60)));
  EXPECT_EQ(stale.rfind(file + ": OCSP response expired on ", 0), 0u) << stale;
  X509Ptr stranger = make_cert(ecdsa2_, {"other", {"other.example"}});
  EXPECT_EQ(
      build_error(with_ocsp(make_ocsp(stranger.get(), ecdsa2_, V_OCSP_CERTSTATUS_GOOD, kDay))),
      file + ": OCSP response is for none of the certificates");
  config::ListenerTls missing = with_ocsp("");
  missing.ocsp_file = path("nope.der");
  EXPECT_EQ(build_error(missing), path("nope.der") + ": cannot read: No such file or directory");
}

}  // namespace
}  // namespace gh::tls
