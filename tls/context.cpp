// ServerContext and TicketKeys: loading, validating and configuring TLS certificates.
#include "tls/context.hpp"

#include <arpa/inet.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <system_error>

#include "core/log.hpp"

namespace gh::tls {
namespace {

using OcspResponsePtr =
    std::unique_ptr<OCSP_RESPONSE, OpenSslDeleter<OCSP_RESPONSE, OCSP_RESPONSE_free>>;
using OcspBasicPtr =
    std::unique_ptr<OCSP_BASICRESP, OpenSslDeleter<OCSP_BASICRESP, OCSP_BASICRESP_free>>;
using OcspCertIdPtr = std::unique_ptr<OCSP_CERTID, OpenSslDeleter<OCSP_CERTID, OCSP_CERTID_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES, OpenSslDeleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

// Mozilla "intermediate" (v5.7) TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults.
constexpr const char* kIntermediateCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:prime256v1:secp384r1";
constexpr unsigned char kSessionIdContext[] = {'g', 'a', 't', 'e', 'h', 'o', 'u', 's', 'e'};
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
// Server preference when HTTP/2 is on: h2 first (RFC 9113 §3.2).
constexpr unsigned char kAlpnH2Http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr std::size_t kMaxFileSize = 1024 * 1024;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

// File contents that are wiped when dropped (private keys pass through here).
struct FileBytes {
  std::string data;
  FileBytes() = default;
  FileBytes(FileBytes&&) = default;
  ~FileBytes() { OPENSSL_cleanse(data.data(), data.size()); }
};

std::string errno_text(int error) {
  return std::error_code(error, std::generic_category()).message();
}

Result<FileBytes> read_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return fail(path + ": cannot read: " + errno_text(errno));
  FileBytes bytes;
  char chunk[4096];
  while (std::size_t n = std::fread(chunk, 1, sizeof chunk, file.get())) {
    bytes.data.append(chunk, n);
    if (bytes.data.size() > kMaxFileSize) return fail(path + ": file is larger than 1 MiB");
  }
  if (std::ferror(file.get())) return fail(path + ": cannot read: " + errno_text(errno));
  OPENSSL_cleanse(chunk, sizeof chunk);
  return bytes;
}

BioPtr memory_bio(const std::string& data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

// PEM password callback: never prompt on a terminal; encrypted keys fail to load.
int no_password(char*, int, int, void*) {
  return -1;
}

std::string format_time(const ASN1_TIME* time) {
  std::tm tm{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) return "(unreadable date)";
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---- certificate files ------------------------------------------------------------

struct LoadedCertificate {
  X509Ptr leaf;
  X509ChainPtr chain;  // the certificates after the leaf, in file order
  EvpPkeyPtr key;
};

Result<void> read_chain(const std::string& path, LoadedCertificate& out) {
  auto text = read_file(path);
  if (!text) return tl::unexpected(text.error());
  BioPtr bio = memory_bio(text->data);
  ERR_clear_error();
  out.leaf.reset(PEM_read_bio_X509_AUX(bio.get(), nullptr, no_password, nullptr));
  if (!out.leaf) return fail(path + ": no PEM certificate (" + take_openssl_error() + ")");
  out.chain.reset(sk_X509_new_null());
  if (!out.chain) return fail(path + ": out of memory");
  while (X509Ptr extra{PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)}) {
    if (sk_X509_push(out.chain.get(), extra.get()) == 0) return fail(path + ": out of memory");
    extra.release();
  }
  // The end of the file shows up as "no start line"; anything else is a broken block.
  const unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ERR_clear_error();
  } else if (last != 0) {
    return fail(path + ": bad certificate in chain (" + take_openssl_error() + ")");
  }
  return {};
}

Result<void> read_key(const std::string& path, LoadedCertificate& out) {
  auto text = read_file(path);
  if (!text) return tl::unexpected(text.error());
  if (text->data.find("ENCRYPTED") != std::string::npos) {
    return fail(path + ": encrypted private keys are not supported");
  }
  BioPtr bio = memory_bio(text->data);
  ERR_clear_error();
  out.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
  if (!out.key) return fail(path + ": no PEM private key (" + take_openssl_error() + ")");
  return {};
}

Result<void> check_validity(const std::string& path, X509* leaf) {
  const ASN1_TIME* not_before = X509_get0_notBefore(leaf);
  const ASN1_TIME* not_after = X509_get0_notAfter(leaf);
  const int before = X509_cmp_current_time(not_before);
  const int after = X509_cmp_current_time(not_after);
  if (before == 0 || after == 0) return fail(path + ": certificate has an invalid validity period");
  if (before > 0)
    return fail(path + ": certificate is not valid before " + format_time(not_before));
  if (after < 0) return fail(path + ": certificate expired on " + format_time(not_after));
  return {};
}

Result<LoadedCertificate> load_certificate(const config::TlsCertificate& files) {
  LoadedCertificate loaded;
  if (auto ok = read_chain(files.cert_file, loaded); !ok) return tl::unexpected(ok.error());
  if (auto ok = read_key(files.key_file, loaded); !ok) return tl::unexpected(ok.error());
  ERR_clear_error();
  if (X509_check_private_key(loaded.leaf.get(), loaded.key.get()) != 1) {
    ERR_clear_error();
    return fail(files.key_file + ": private key does not match certificate " + files.cert_file);
  }
  if (auto ok = check_validity(files.cert_file, loaded.leaf.get()); !ok) {
    return tl::unexpected(ok.error());
  }
  return loaded;
}

// SAN DNS names, or the subject CN when the certificate has none; lowercase.
std::vector<std::string> certificate_names(X509* leaf) {
  std::vector<std::string> names;
  GeneralNamesPtr sans(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans.get(), i);
    if (name->type != GEN_DNS) continue;
    const ASN1_STRING* dns = name->d.dNSName;
    std::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                          static_cast<std::size_t>(ASN1_STRING_length(dns)));
    if (!text.empty() && text.find('\0') == std::string_view::npos) {
      names.push_back(lowercase(text));
    }
  }
  if (!names.empty()) return names;
  X509_NAME* subject = X509_get_subject_name(leaf);
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0) return names;
  unsigned char* utf8 = nullptr;
  const int length =
      ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
  if (length > 0) {
    std::string_view text(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
    if (text.find('\0') == std::string_view::npos) names.push_back(lowercase(text));
  }
  OPENSSL_free(utf8);
  return names;
}

// ---- OCSP -------------------------------------------------------------------------

struct LoadedOcsp {
  std::string der;
  OcspBasicPtr basic;
};

Result<LoadedOcsp> read_ocsp(const std::string& path) {
  auto bytes = read_file(path);
  if (!bytes) return tl::unexpected(bytes.error());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes->data.data());
  OcspResponsePtr response(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(bytes->data.size())));
  ERR_clear_error();
  if (!response) return fail(path + ": not a DER OCSP response");
  const int status = OCSP_response_status(response.get());
  if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return fail(path + ": OCSP response status is " + OCSP_response_status_str(status));
  }
  OcspBasicPtr basic(OCSP_response_get1_basic(response.get()));
  if (!basic) return fail(path + ": OCSP response has no basic response");
  return LoadedOcsp{std::move(bytes->data), std::move(basic)};
}

// The single response in `ocsp` about `cert` (issued by the first chain certificate, or
// self-issued), compared with the hash algorithm the responder used; nullptr if none.
OCSP_SINGLERESP* ocsp_entry_for(OCSP_BASICRESP* ocsp, const LoadedCertificate& cert) {
  X509* issuer =
      sk_X509_num(cert.chain.get()) > 0 ? sk_X509_value(cert.chain.get(), 0) : cert.leaf.get();
  for (int i = 0; i < OCSP_resp_count(ocsp); ++i) {
    OCSP_SINGLERESP* single = OCSP_resp_get0(ocsp, i);
    const OCSP_CERTID* id = OCSP_SINGLERESP_get0_id(single);
    ASN1_OBJECT* hash = nullptr;
    if (OCSP_id_get0_info(nullptr, &hash, nullptr, nullptr, const_cast<OCSP_CERTID*>(id)) != 1) {
      continue;
    }
    const EVP_MD* md = EVP_get_digestbyobj(hash);
    OcspCertIdPtr ours(md ? OCSP_cert_to_id(md, cert.leaf.get(), issuer) : nullptr);
    if (ours && OCSP_id_cmp(ours.get(), id) == 0) return single;
  }
  ERR_clear_error();
  return nullptr;
}

Result<void> check_ocsp_entry(const std::string& path, OCSP_SINGLERESP* single) {
  int reason = 0;
  ASN1_GENERALIZEDTIME* next_update = nullptr;
  const int status = OCSP_single_get0_status(single, &reason, nullptr, nullptr, &next_update);
  if (status == V_OCSP_CERTSTATUS_REVOKED) {
    return fail(path + ": OCSP response says the certificate is revoked");
  }
  if (next_update != nullptr && X509_cmp_current_time(next_update) < 0) {
    return fail(path + ": OCSP response expired on " + format_time(next_update));
  }
  return {};
}

// ---- SSL_CTX settings -------------------------------------------------------------

// `http2` (the callback's argument) is non-null when the listener offers h2.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned int offered_length, void* http2) {
  unsigned char* chosen = nullptr;
  unsigned char chosen_length = 0;
  const unsigned char* ours = http2 ? kAlpnH2Http11 : kAlpnHttp11;
  const unsigned ours_length = http2 ? sizeof kAlpnH2Http11 : sizeof kAlpnHttp11;
  if (SSL_select_next_proto(&chosen, &chosen_length, ours, ours_length, offered, offered_length) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301: no_application_protocol
  }
  *out = chosen;
  *out_length = chosen_length;
  return SSL_TLSEXT_ERR_OK;
}

// The settings every SSL_CTX shares, server or client: protocol floor, Mozilla
// "intermediate" ciphers (unless `ciphers` names others), groups, no renegotiation or
// compression, OpenSSL's record buffers released between records.
Result<SslCtxPtr> new_ctx(const SSL_METHOD* method, config::TlsVersion min_version,
                          const std::string& ciphers) {
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) return fail("cannot create a TLS context: " + take_openssl_error());
  SSL_CTX* c = ctx.get();
  const int min = min_version == config::TlsVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(c, min) != 1) {
    return fail("cannot set the minimum TLS version: " + take_openssl_error());
  }
  const std::string list = ciphers.empty() ? kIntermediateCiphers : ciphers;
  if (SSL_CTX_set_cipher_list(c, list.c_str()) != 1) {
    return fail("tls ciphers \"" + list + "\": no usable cipher (" + take_openssl_error() + ")");
  }
  if (SSL_CTX_set1_groups_list(c, kGroups) != 1) {
    return fail(std::string("cannot set TLS groups ") + kGroups + ": " + take_openssl_error());
  }
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_clear_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE);
  return ctx;
}

// Client side: SSL_CTX ex_data slot for the ClientContext, SSL ex_data slot for the peer
// key (a key of ClientContext::sessions_) under which new sessions are kept.
int client_context_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// The SSL owns its copy of the key (freed with the SSL), so cache entries can be evicted
// while connections of that peer are open.
void free_peer_key(void*, void* key, CRYPTO_EX_DATA*, int, long, void*) {
  std::unique_ptr<std::string> owned(static_cast<std::string*>(key));
}

int peer_key_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_peer_key);
  return index;
}

// Peers (address and name) a ClientContext keeps sessions for; beyond it (addresses come
// and go with DNS) an arbitrary entry makes room.
constexpr std::size_t kMaxSessionPeers = 1024;

// SSL_CTX ex_data slot holding the TicketKeys the ticket callback uses.
int ticket_keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

bool set_ticket_mac_key(EVP_MAC_CTX* mac, const TicketKeys::Key& key) {
  std::array<unsigned char, 32> secret = key.hmac;  // OSSL_PARAM wants a mutable pointer
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, secret.data(), secret.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  const bool ok = EVP_MAC_CTX_set_params(mac, params) == 1;
  OPENSSL_cleanse(secret.data(), secret.size());
  return ok;
}

// OpenSSL's ticket key callback: enc = 1 encrypts a new ticket under the current key;
// enc = 0 finds the ticket's key by name: 1 = current, 2 = previous (renew the ticket),
// 0 = unknown (full handshake), -1 = error.
int on_ticket_key(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                  EVP_MAC_CTX* mac, int enc) {
  const auto* ring = static_cast<const TicketKeys*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_keys_index()));
  if (!ring) return -1;
  const std::shared_ptr<const TicketKeys::KeySet> keys = ring->keys();
  if (enc) {
    const TicketKeys::Key& key = keys->current;
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return 0;  // no ticket
    std::memcpy(key_name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    return set_ticket_mac_key(mac, key) ? 1 : -1;
  }
  const TicketKeys::Key* key = nullptr;
  if (std::memcmp(key_name, keys->current.name.data(), keys->current.name.size()) == 0) {
    key = &keys->current;
  } else if (keys->previous &&
             std::memcmp(key_name, keys->previous->name.data(), keys->previous->name.size()) == 0) {
    key = &*keys->previous;
  }
  if (!key) return 0;
  if (!set_ticket_mac_key(mac, *key)) return -1;
  if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv) != 1) return -1;
  return key == &keys->current ? 1 : 2;
}

Result<SslCtxPtr> new_server_ctx(const config::ListenerTls& tls, const TicketKeys& keys) {
  auto ctx = new_ctx(TLS_server_method(), tls.min_version, tls.ciphers);
  if (!ctx) return ctx;
  SSL_CTX* c = ctx->get();
  // The server's order (the list above: AES-GCM, then ChaCha20), except that a client
  // listing ChaCha20 first gets it (phones without AES instructions). Mozilla's
  // intermediate leaves the order to the client since every suite in it is strong;
  // testssl rates that HIGH ("NOT a cipher order configured"), and a server order keeps
  // weaker suites a user adds through `ciphers` from being picked first (tls/TESTSSL.md).
  SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
  // Resumption is by stateless tickets only: nothing per session to store or lock.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_session_id_context(c, kSessionIdContext, sizeof kSessionIdContext);
  // The callback finds the keys through ex_data; ServerContext keeps them alive.
  if (SSL_CTX_set_ex_data(c, ticket_keys_index(), const_cast<TicketKeys*>(&keys)) != 1 ||
      SSL_CTX_set_tlsext_ticket_key_evp_cb(c, on_ticket_key) != 1) {
    return fail("cannot install TLS ticket keys: " + take_openssl_error());
  }
  static int http2_on = 1;
  SSL_CTX_set_alpn_select_cb(c, select_alpn, tls.http2 ? &http2_on : nullptr);
  return ctx;
}

// An IPv4 or IPv6 literal (unbracketed)?
bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

Result<void> install_certificate(SSL_CTX* ctx, const config::TlsCertificate& files,
                                 const LoadedCertificate& cert) {
  ERR_clear_error();
  if (SSL_CTX_use_cert_and_key(ctx, cert.leaf.get(), cert.key.get(), cert.chain.get(), 1) != 1) {
    return fail(files.cert_file + ": certificate not usable (" + take_openssl_error() + ")");
  }
  return {};
}

}  // namespace

// ---- TicketKeys -------------------------------------------------------------------

namespace {

Result<TicketKeys::Key> random_key() {
  TicketKeys::Key key;
  auto fill = [](auto& bytes) { return RAND_bytes(bytes.data(), static_cast<int>(bytes.size())); };
  if (fill(key.name) != 1 || fill(key.hmac) != 1 || fill(key.aes) != 1) {
    return fail("cannot generate TLS ticket keys: " + take_openssl_error());
  }
  return key;
}

}  // namespace

TicketKeys::Key::~Key() {
  OPENSSL_cleanse(name.data(), name.size());
  OPENSSL_cleanse(hmac.data(), hmac.size());
  OPENSSL_cleanse(aes.data(), aes.size());
}

Result<std::shared_ptr<TicketKeys>> TicketKeys::generate() {
  auto ring = std::make_shared<TicketKeys>(Private{});
  if (auto ok = ring->rotate(); !ok) return tl::unexpected(ok.error());
  return ring;
}

Result<void> TicketKeys::rotate() {
  auto key = random_key();
  if (!key) return tl::unexpected(key.error());
  auto next = std::make_shared<KeySet>();
  next->current = *key;
  std::lock_guard lock(mutex_);
  if (keys_) next->previous = keys_->current;
  keys_ = std::move(next);
  return {};
}

std::shared_ptr<const TicketKeys::KeySet> TicketKeys::keys() const {
  std::lock_guard lock(mutex_);
  return keys_;
}

// ---- ServerContext ----------------------------------------------------------------

Result<std::shared_ptr<const ServerContext>> ServerContext::build(
    const config::ListenerTls& tls, std::shared_ptr<const TicketKeys> keys) {
  if (tls.certificates.empty()) return fail("tls: no certificate configured");
  std::optional<LoadedOcsp> ocsp;
  if (!tls.ocsp_file.empty()) {
    auto loaded = read_ocsp(tls.ocsp_file);
    if (!loaded) return tl::unexpected(loaded.error());
    ocsp = std::move(*loaded);
  }
  auto context = std::make_shared<ServerContext>(Private{});
  context->handshake_timeout_ = tls.handshake_timeout;
  context->ticket_keys_ = keys;
  context->min_version_ = tls.min_version;
  for (const config::TlsCertificate& files : tls.certificates) {
    auto cert = load_certificate(files);
    if (!cert) return tl::unexpected(cert.error());
    std::vector<std::string> names = certificate_names(cert->leaf.get());
    const int key_type = EVP_PKEY_get_base_id(cert->key.get());
    if (Site* same = context->site_named(names)) {
      // Another key type joins the site; anything else is served only if SNI never
      // reaches it (the first entry wins), as before: worth a warning, not a refusal.
      const bool other_type = std::find(same->key_types.begin(), same->key_types.end(), key_type) ==
                              same->key_types.end();
      if (other_type && !ocsp) {
        if (auto ok = install_certificate(same->ctx.get(), files, *cert); !ok) {
          return tl::unexpected(ok.error());
        }
        same->key_types.push_back(key_type);
        same->cert_file += " + " + files.cert_file;
        continue;
      }
      GH_LOG_WARN("%s: same names as %s%s: it will not be served", files.cert_file.c_str(),
                  same->cert_file.c_str(),
                  other_type ? " (two key types with ocsp_file are not supported)"
                             : " and the same key type");
    }
    auto ctx = new_server_ctx(tls, *keys);
    if (!ctx) return tl::unexpected(ctx.error());
    if (auto ok = install_certificate(ctx->get(), files, *cert); !ok) {
      return tl::unexpected(ok.error());
    }
    SSL_CTX_set_tlsext_servername_callback(ctx->get(), on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx->get(), context.get());
    Site site{std::move(*ctx), files.cert_file, std::move(names), {key_type}, false};
    if (ocsp) {
      if (OCSP_SINGLERESP* entry = ocsp_entry_for(ocsp->basic.get(), *cert)) {
        if (auto ok = check_ocsp_entry(tls.ocsp_file, entry); !ok) {
          return tl::unexpected(ok.error());
        }
        site.ocsp = true;
        SSL_CTX_set_tlsext_status_cb(site.ctx.get(), on_status_request);
        SSL_CTX_set_tlsext_status_arg(site.ctx.get(), context.get());
      }
    }
    context->sites_.push_back(std::move(site));
  }
  if (ocsp) {
    bool used = false;
    for (const Site& site : context->sites_) used = used || site.ocsp;
    if (!used) return fail(tls.ocsp_file + ": OCSP response is for none of the certificates");
    context->ocsp_response_ = std::move(ocsp->der);
  }
  return std::shared_ptr<const ServerContext>(std::move(context));
}

SslPtr ServerContext::new_ssl() const {
  SslPtr ssl(SSL_new(sites_.front().ctx.get()));
  if (ssl) SSL_set_accept_state(ssl.get());
  return ssl;
}

ServerContext::Site* ServerContext::site_named(const std::vector<std::string>& names) {
  for (Site& site : sites_) {
    if (std::is_permutation(site.names.begin(), site.names.end(), names.begin(), names.end())) {
      return &site;
    }
  }
  return nullptr;
}

const ServerContext::Site& ServerContext::select(std::string_view server_name) const {
  if (server_name.ends_with('.')) server_name.remove_suffix(1);
  if (server_name.empty()) return sites_.front();
  for (const Site& site : sites_) {
    for (const std::string& name : site.names) {
      if (!name.starts_with("*.") && server_name_matches(name, server_name)) return site;
    }
  }
  for (const Site& site : sites_) {
    for (const std::string& name : site.names) {
      if (name.starts_with("*.") && server_name_matches(name, server_name)) return site;
    }
  }
  return sites_.front();
}

int ServerContext::on_servername(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const ServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  const Site& site = self->select(name ? name : "");
  if (SSL_get_SSL_CTX(ssl) != site.ctx.get() && SSL_set_SSL_CTX(ssl, site.ctx.get()) == nullptr) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

int ServerContext::on_status_request(SSL* ssl, void* arg) {
  const std::string& der = static_cast<const ServerContext*>(arg)->ocsp_response_;
  // OpenSSL takes ownership of the copy and frees it with the connection.
  auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(der.data(), der.size()));
  if (copy == nullptr) return SSL_TLSEXT_ERR_NOACK;
  if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(der.size())) != 1) {
    OPENSSL_free(copy);
    return SSL_TLSEXT_ERR_NOACK;
  }
  return SSL_TLSEXT_ERR_OK;
}

std::string ServerContext::describe() const {
  std::string out;
  for (std::size_t i = 0; i < sites_.size(); ++i) {
    const Site& site = sites_[i];
    if (i > 0) out += "; ";
    if (site.names.empty()) out += "(no DNS names)";
    for (std::size_t n = 0; n < site.names.size(); ++n) {
      if (n > 0) out += ",";
      out += site.names[n];
    }
    out += " (" + site.cert_file;
    if (i == 0) out += ", default";
    if (site.ocsp) out += ", OCSP stapled";
    out += ")";
  }
  out += min_version_ == config::TlsVersion::tls1_3 ? "; TLS 1.3" : "; TLS 1.2+";
  return out;
}

// ---- free functions ---------------------------------------------------------------

// ---- ClientContext ----------------------------------------------------------------

Result<std::shared_ptr<const ClientContext>> ClientContext::build(
    const config::Upstream& upstream) {
  auto ctx = new_ctx(TLS_client_method(), config::TlsVersion::tls1_2, "");
  if (!ctx) return tl::unexpected(ctx.error());
  SSL_CTX* c = ctx->get();
  if (SSL_CTX_set_alpn_protos(c, kAlpnHttp11, sizeof kAlpnHttp11) != 0) {
    return fail("cannot set ALPN: " + take_openssl_error());
  }
  // Sessions are kept per peer by on_new_session, not in OpenSSL's internal cache.
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(c, on_new_session);
  if (upstream.tls_verify) {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    ERR_clear_error();
    if (!upstream.tls_ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(c, upstream.tls_ca_file.c_str(), nullptr) != 1) {
        return fail(upstream.tls_ca_file + ": no usable CA certificate (" + take_openssl_error() +
                    ")");
      }
    } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
      return fail("cannot load the system CA store: " + take_openssl_error());
    }
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  auto context = std::make_shared<ClientContext>(Private{});
  SSL_CTX_set_ex_data(c, client_context_index(), context.get());
  context->ctx_ = std::move(*ctx);
  context->server_name_ = upstream.tls_server_name;
  context->verify_ = upstream.tls_verify;
  return std::shared_ptr<const ClientContext>(std::move(context));
}

std::string ClientContext::server_name_for(const std::string& host) const {
  return server_name_.empty() ? host : server_name_;
}

// OpenSSL shows each new resumable session (TLS 1.3: every ticket the server sends after
// the handshake). A copy is kept: OpenSSL marks the connection's own session not
// resumable when the connection ends without close_notify, as upstreams' often do.
int ClientContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
  const auto* context = static_cast<const ClientContext*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), client_context_index()));
  const auto* peer = static_cast<const std::string*>(SSL_get_ex_data(ssl, peer_key_index()));
  if (!context || !peer) return 0;
  SslSessionPtr copy(SSL_SESSION_dup(session));
  if (!copy) return 0;
  std::lock_guard lock(context->sessions_mutex_);
  auto& sessions = context->sessions_;
  if (sessions.size() >= kMaxSessionPeers && !sessions.contains(*peer)) {
    sessions.erase(sessions.begin());
  }
  sessions[*peer] = std::move(copy);
  return 0;  // the connection keeps its own reference
}

SslPtr ClientContext::new_ssl(const std::string& server_name, const std::string& peer) const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) return ssl;
  SSL_set_connect_state(ssl.get());
  auto key = std::make_unique<std::string>(peer);
  if (SSL_set_ex_data(ssl.get(), peer_key_index(), key.get()) != 1) return nullptr;
  key.release();  // the SSL owns it now (free_peer_key)
  {
    // A copy again: the connection's session may be marked not resumable when it ends.
    // (TLS 1.3 asks clients not to reuse a ticket; concurrent connections to one peer may
    // still offer the same one, and a server that refuses reuse does a full handshake.)
    std::lock_guard lock(sessions_mutex_);
    auto it = sessions_.find(peer);
    SslSessionPtr offered(it != sessions_.end() ? SSL_SESSION_dup(it->second.get()) : nullptr);
    if (offered) SSL_set_session(ssl.get(), offered.get());
  }
  if (server_name.empty()) return ssl;
  const bool ip = is_ip_literal(server_name);
  // RFC 6066: no SNI for IP literals.
  if (!ip && SSL_set_tlsext_host_name(ssl.get(), server_name.c_str()) != 1) return nullptr;
  if (!verify_) return ssl;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str())
                    : SSL_set1_host(ssl.get(), server_name.c_str());
  if (ok != 1) return nullptr;
  return ssl;
}

Result<void> check_certificates(const config::ListenerTls& tls) {
  auto keys = TicketKeys::generate();
  if (!keys) return tl::unexpected(keys.error());
  auto context = ServerContext::build(tls, std::move(*keys));
  if (!context) return tl::unexpected(context.error());
  return {};
}

bool server_name_matches(std::string_view pattern, std::string_view name) {
  auto equal = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(a[i])) !=
          std::tolower(static_cast<unsigned char>(b[i]))) {
        return false;
      }
    }
    return true;
  };
  if (equal(pattern, name)) return !name.empty();
  if (pattern.size() < 3 || !pattern.starts_with("*.")) return false;
  const std::string_view suffix = pattern.substr(1);  // ".example.com"
  if (name.size() <= suffix.size()) return false;
  const std::string_view label = name.substr(0, name.size() - suffix.size());
  return equal(suffix, name.substr(label.size())) && label.find('.') == std::string_view::npos;
}

}  // namespace gh::tls
