// Owning pointers for OpenSSL objects (SSL_CTX, SSL, BIO, X509, EVP_PKEY, chains) and a
// helper that turns OpenSSL's thread-local error queue into one line of text.
// Thread: any. Each pointer frees its object with the matching OpenSSL *_free call.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace gh::tls {

template <class T, void (*Free)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { Free(p); }
};

inline void free_x509_chain(STACK_OF(X509) * chain) {
  sk_X509_pop_free(chain, X509_free);
}

using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, OpenSslDeleter<SSL, SSL_free>>;
using SslSessionPtr = std::unique_ptr<SSL_SESSION, OpenSslDeleter<SSL_SESSION, SSL_SESSION_free>>;
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using X509ChainPtr =
    std::unique_ptr<STACK_OF(X509), OpenSslDeleter<STACK_OF(X509), free_x509_chain>>;

// Drains this thread's OpenSSL error queue and returns the most recent reason
// ("no start line", "unsupported protocol"), or `fallback` when the queue was empty.
inline std::string take_openssl_error(const char* fallback = "unknown error") {
  unsigned long last = 0;
  while (unsigned long e = ERR_get_error()) last = e;
  if (last == 0) return fallback;
  if (const char* reason = ERR_reason_error_string(last)) return reason;
  char text[256];
  ERR_error_string_n(last, text, sizeof text);
  return text;
}

}  // namespace gh::tls
