// TLS server contexts: the certificates, keys and protocol settings of one TLS listener,
// loaded and validated once and then shared read-only by every worker thread.
//
// - ServerContext wraps one SSL_CTX per configured certificate (the first is the default).
//   A servername (SNI) callback on the default moves each connection to the SSL_CTX whose
//   names match (SSL_set_SSL_CTX); every SSL_CTX carries the same settings: Mozilla
//   "intermediate" (TLS 1.2+, ECDHE AEAD ciphers) in the server's cipher order (ChaCha20
//   for clients that list it first), ALPN h2 and http/1.1, no renegotiation, no
//   compression, optional OCSP stapling. tls/TESTSSL.md has the testssl.sh scan.
// - TicketKeys is the session ticket key material, made at startup and shared by every
//   server SSL_CTX, so a ticket issued by one worker (or by a context that a reload
//   replaced) resumes on any other. It rotates: see the class.
//
// Thread: build() and check_certificates() run wherever configuration is loaded (they
// read files). A built ServerContext is immutable; SSL_new on its SSL_CTXs is safe from
// any thread. SSL objects made by new_ssl() point back at the context from OpenSSL
// callbacks and must not outlive it (TLS transports hold the shared_ptr).
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"
#include "tls/openssl_ptr.hpp"

namespace gh::tls {

// A current key encrypts new tickets; after rotate() the previous key still decrypts
// (and the ticket is renewed under the current one) until the next rotate(). A ticket is
// thus accepted for at most two rotation periods, and a leaked key opens at most that
// much recorded traffic. Threads: rotate() from one thread (the control thread);
// handshakes on every worker read the latest key set through keys().
class TicketKeys {
  struct Private {};

 public:
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> hmac{};  // HMAC-SHA256 secret
    std::array<unsigned char, 32> aes{};   // AES-256-CBC key
    Key() = default;
    Key(const Key&) = default;
    Key& operator=(const Key&) = default;
    ~Key();  // wipes the key material
  };
  struct KeySet {
    Key current;
    std::optional<Key> previous;
  };

  static Result<std::shared_ptr<TicketKeys>> generate();  // random, from OpenSSL's CSPRNG
  explicit TicketKeys(Private) {}
  Result<void> rotate();
  std::shared_ptr<const KeySet> keys() const;

 private:
  mutable std::mutex mutex_;  // guards the pointer swap only: a KeySet is immutable
  std::shared_ptr<const KeySet> keys_;
};

class ServerContext {
  struct Private {};

 public:
  // Loads and checks every certificate of `tls` (see check_certificates) and builds the
  // SSL_CTXs. Errors name the file at fault: "/certs/a.pem: certificate expired on ...".
  static Result<std::shared_ptr<const ServerContext>> build(const config::ListenerTls& tls,
                                                            std::shared_ptr<const TicketKeys> keys);

  explicit ServerContext(Private) {}
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // A new server-side SSL on the default certificate, in accept state; nullptr when
  // OpenSSL is out of memory.
  SslPtr new_ssl() const;

  config::Duration handshake_timeout() const { return handshake_timeout_; }

  // For logs: "a.example,www.a.example (/certs/a.pem, default); *.b.example
  // (/certs/b.pem); TLS 1.2+".
  std::string describe() const;

 private:
  // One SSL_CTX per set of names. It may hold an RSA and an ECDSA certificate for the
  // same names; OpenSSL then serves the one the client supports.
  struct Site {
    SslCtxPtr ctx;
    std::string cert_file;           // "a.pem", or "a-ecdsa.pem + a-rsa.pem"
    std::vector<std::string> names;  // lowercase SAN DNS names, or the CN without SANs
    std::vector<int> key_types;      // EVP_PKEY_EC, EVP_PKEY_RSA, ...
    bool ocsp = false;               // the OCSP response staples for this certificate
  };

  const Site& select(std::string_view server_name) const;
  Site* site_named(const std::vector<std::string>& names);
  static int on_servername(SSL* ssl, int* alert, void* arg);
  static int on_status_request(SSL* ssl, void* arg);

  std::vector<Site> sites_;                        // [0] is the default
  std::shared_ptr<const TicketKeys> ticket_keys_;  // the SSL_CTXs' ticket callback reads it
  std::string ocsp_response_;
  config::Duration handshake_timeout_{};
  config::TlsVersion min_version_ = config::TlsVersion::tls1_2;
};

// The TLS settings of one upstream group's connections (client side): TLS 1.2+, ALPN
// http/1.1, and unless tls_verify = false the peer's chain checked against tls_ca_file
// (or the system store) and its name against the server name of each connection.
// Immutable once built; SSL objects from new_ssl() must not outlive it.
class ClientContext {
  struct Private {};

 public:
  // Errors name the file at fault: "/etc/ca.pem: no usable CA certificate (...)".
  static Result<std::shared_ptr<const ClientContext>> build(const config::Upstream& upstream);

  explicit ClientContext(Private) {}
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  // The name to send and verify for a server whose host part is `host`: tls_server_name
  // when configured, else `host`.
  std::string server_name_for(const std::string& host) const;

  // A client SSL in connect state for `server_name`: SNI (not for an IP literal) and,
  // when verifying, the host name or IP to check. nullptr when OpenSSL refuses.
  // `peer` names the connection's server ("10.0.0.2:8443 (api.internal)"): the latest
  // session from that peer is offered for resumption, and new ones are kept for it.
  SslPtr new_ssl(const std::string& server_name, const std::string& peer) const;

  bool verifies() const { return verify_; }

 private:
  static int on_new_session(SSL* ssl, SSL_SESSION* session);

  SslCtxPtr ctx_;
  std::string server_name_;
  bool verify_ = true;
  // The latest session per peer, shared by every worker; capped (see context.cpp).
  mutable std::mutex sessions_mutex_;
  mutable std::unordered_map<std::string, SslSessionPtr> sessions_;
};

// `gatehouse check`: every validation build() makes (files readable, PEM parses, key
// matches certificate, certificate valid now, ciphers and OCSP response usable), without
// keeping a context.
Result<void> check_certificates(const config::ListenerTls& tls);

// SNI matching, case-insensitive: `pattern` equals `name`, or is "*.suffix" and `name`
// is exactly one non-empty label followed by ".suffix".
bool server_name_matches(std::string_view pattern, std::string_view name);

}  // namespace gh::tls
