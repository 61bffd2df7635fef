// Unit tests for the TLS transport (tls/tls_transport.cpp): a libuv loop on the test
// thread accepts one connection with accept_tls() and a small owner (Events) echoes or
// misbehaves; a blocking OpenSSL client on a second thread talks to it over loopback.
// Covers bulk echo through a small owner buffer (pausing and resuming reads with
// plaintext buffered), close_notify both ways, a write made before the handshake,
// handshake timeout, non-TLS input, client alerts and close() from inside a callback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tls/context.hpp"
#include "tls/transport.hpp"

namespace gh::tls {
namespace {

using namespace std::chrono_literals;

// ---- a certificate for 127.0.0.1 --------------------------------------------------

struct TestCertificate {
  std::string dir;
  config::ListenerTls tls;

  TestCertificate() {
    char pattern[] = "/tmp/gh_tls_transport_XXXXXX";
    dir = mkdtemp(pattern);
    EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    X509_sign(cert.get(), key.get(), EVP_sha256());
    BioPtr cert_out(BIO_new_file((dir + "/cert.pem").c_str(), "w"));
    PEM_write_bio_X509(cert_out.get(), cert.get());
    BioPtr key_out(BIO_new_file((dir + "/key.pem").c_str(), "w"));
    PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    tls.certificates.push_back({dir + "/cert.pem", dir + "/key.pem"});
  }
  ~TestCertificate() { std::filesystem::remove_all(dir); }
};

// ---- the blocking client ----------------------------------------------------------

class Client {
 public:
  explicit Client(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
  }
  ~Client() { ::close(fd_); }

  SSL_CTX* ctx() { return ctx_.get(); }
  SSL* ssl() { return ssl_.get(); }
  int fd() const { return fd_; }

  bool handshake() {
    if (!connected_) return false;
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    SSL_set_tlsext_host_name(ssl_.get(), "localhost");
    return SSL_connect(ssl_.get()) == 1;
  }

  bool write_all(const std::string& data) {
    std::size_t written = 0;
    return data.empty() || SSL_write_ex(ssl_.get(), data.data(), data.size(), &written) == 1;
  }

  std::string read_exactly(std::size_t n) {
    std::string out(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      std::size_t chunk = 0;
      if (SSL_read_ex(ssl_.get(), out.data() + got, n - got, &chunk) != 1) break;
      got += chunk;
    }
    out.resize(got);
    return out;
  }

  // After the server's close_notify: true if SSL_read reports a clean TLS close.
  bool read_close_notify() {
    char byte;
    const int rc = SSL_read(ssl_.get(), &byte, 1);
    return rc <= 0 && SSL_get_error(ssl_.get(), rc) == SSL_ERROR_ZERO_RETURN;
  }

  // Raw bytes until the server closes TCP (or 5 s pass).
  std::string read_raw_until_eof() {
    std::string out;
    char chunk[4096];
    while (true) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return out;
      out.append(chunk, static_cast<std::size_t>(n));
    }
  }

  void send_raw(const std::string& data) { ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL); }

 private:
  int fd_ = -1;
  bool connected_ = false;
  SslCtxPtr ctx_;
  SslPtr ssl_;
};

// ---- the server side: one loop, one listener, one connection ------------------------

struct Owner : Transport::Events {
  std::unique_ptr<Transport> transport;
  std::vector<char> buffer = std::vector<char>(1000);  // small: reads pause often
  std::string received;
  std::string outgoing;
  bool echo = true;
  bool close_in_on_read = false;
  bool shutdown_on_eof = true;
  std::string reply_on_eof;  // written after the peer's EOF, then shutdown_write()
  int read_end_status = 0;
  int read_ends = 0;
  int write_dones = 0;
  int write_status = 0;
  int closed = 0;
  int events_after_close = 0;
  bool closing = false;
  std::function<void()> on_done;   // after on_closed
  std::function<void()> lingered;  // after shutdown_write(): close a moment later

  uv_buf_t read_buffer() override {
    events_after_close += closing;
    return uv_buf_init(buffer.data(), static_cast<unsigned>(buffer.size()));
  }

  void on_read(std::size_t n) override {
    events_after_close += closing;
    received.append(buffer.data(), n);
    if (close_in_on_read) return close();
    if (!echo) return;
    // One write in flight: stop reading until it is done.
    outgoing.assign(buffer.data(), n);
    transport->stop_reading();
    uv_buf_t buf = uv_buf_init(outgoing.data(), static_cast<unsigned>(outgoing.size()));
    if (transport->write(&buf, 1) != 0) close();
  }

  void on_read_end(int status) override {
    events_after_close += closing;
    ++read_ends;
    read_end_status = status;
    if (status == UV_EOF && !reply_on_eof.empty()) {
      uv_buf_t buf = uv_buf_init(reply_on_eof.data(), static_cast<unsigned>(reply_on_eof.size()));
      if (transport->write(&buf, 1) != 0) close();
      return;
    }
    if (status == UV_EOF && shutdown_on_eof) {
      transport->shutdown_write();  // close_notify + FIN, then close a moment later
      if (lingered) lingered();
      return;
    }
    close();
  }

  void on_write_done(int status) override {
    events_after_close += closing;
    ++write_dones;
    write_status = status;
    if (status != 0) return close();
    if (echo) transport->start_reading();
    if (read_ends > 0 && !reply_on_eof.empty()) {
      transport->shutdown_write();
      if (lingered) lingered();
    }
  }

  void on_closed() override {
    ++closed;
    if (on_done) on_done();
  }

  void close() {
    closing = true;
    transport->close();
  }
};

class TlsTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uv_loop_init(&loop_);
    uv_tcp_init(&loop_, &listener_);
    sockaddr_in addr{};
    uv_ip4_addr("127.0.0.1", 0, &addr);
    ASSERT_EQ(uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&addr), 0), 0);
    listener_.data = this;
    ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 8, on_connection), 0);
    sockaddr_storage bound{};
    int len = sizeof bound;
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    uv_timer_init(&loop_, &watchdog_);
    uv_timer_init(&loop_, &linger_);
    watchdog_.data = linger_.data = this;
    owner_.on_done = [this] { stop(); };
    owner_.lingered = [this] {
      uv_timer_start(
          &linger_,
          [](uv_timer_t* t) {
            auto* self = static_cast<TlsTransportTest*>(t->data);
            if (!self->owner_.closing) self->owner_.close();
          },
          200, 0);
    };
    signal(SIGPIPE, SIG_IGN);  // the client may write into a connection the server reset
  }

  void TearDown() override { uv_loop_close(&loop_); }

  void build(config::Duration handshake_timeout = 10s) {
    certificate_.tls.handshake_timeout = handshake_timeout;
    auto keys = TicketKeys::generate();
    ASSERT_TRUE(keys);
    auto context = ServerContext::build(certificate_.tls, std::move(*keys));
    ASSERT_TRUE(context) << context.error().message;
    context_ = *context;
  }

  // Runs the loop until the connection closed (or 10 s), with `client` on a thread.
  void run(const std::function<void(Client&)>& client_steps) {
    std::thread client_thread([&] {
      Client client(port_);
      client_steps(client);
    });
    uv_timer_start(
        &watchdog_,
        [](uv_timer_t* t) {
          auto* self = static_cast<TlsTransportTest*>(t->data);
          ADD_FAILURE() << "watchdog: the connection did not close";
          if (self->owner_.transport && !self->owner_.closing) self->owner_.close();
          self->stop();
        },
        10000, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    client_thread.join();
  }

  void stop() {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&watchdog_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&linger_), nullptr);
    }
  }

  static void on_connection(uv_stream_t* listener, int status) {
    auto* self = static_cast<TlsTransportTest*>(listener->data);
    ASSERT_EQ(status, 0);
    ASSERT_FALSE(self->owner_.transport) << "one connection per test";
    self->owner_.transport = accept_tls(&self->loop_, listener, self->owner_, self->context_);
    if (self->on_accepted) self->on_accepted();
    if (self->owner_.transport->start_reading() != 0) self->owner_.close();
  }

  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_timer_t watchdog_{};
  uv_timer_t linger_{};
  int port_ = 0;
  TestCertificate certificate_;
  std::shared_ptr<const ServerContext> context_;
  Owner owner_;
  std::function<void()> on_accepted;
};

std::string random_bytes(std::size_t n) {
  std::mt19937 rng(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

class TlsTransportEchoTest : public TlsTransportTest, public ::testing::WithParamInterface<int> {};

TEST_P(TlsTransportEchoTest, EchoesThroughASmallBufferAndClosesCleanly) {
  build();
  const std::string payload = random_bytes(1024 * 1024 + 17);
  std::string echoed;
  bool close_notify = false;
  std::string after_close;
  run([&](Client& client) {
    SSL_CTX_set_min_proto_version(client.ctx(), GetParam());
    SSL_CTX_set_max_proto_version(client.ctx(), GetParam());
    ASSERT_TRUE(client.handshake());
    // Chunks of assorted sizes, each read back before the next goes.
    std::size_t offset = 0;
    for (std::size_t size = 1; offset < payload.size(); size = size * 3 % 40000 + 1) {
      const std::string chunk = payload.substr(offset, size);
      ASSERT_TRUE(client.write_all(chunk));
      echoed += client.read_exactly(chunk.size());
      offset += chunk.size();
    }
    SSL_shutdown(client.ssl());  // our close_notify -> on_read_end(UV_EOF) -> theirs
    close_notify = client.read_close_notify();
    after_close = client.read_raw_until_eof();
  });
  EXPECT_EQ(owner_.received.size(), payload.size());
  EXPECT_TRUE(owner_.received == payload);
  EXPECT_EQ(echoed.size(), payload.size());
  EXPECT_TRUE(echoed == payload);
  EXPECT_EQ(owner_.read_ends, 1);
  EXPECT_EQ(owner_.read_end_status, UV_EOF);
  EXPECT_TRUE(close_notify);
  EXPECT_EQ(after_close, "");  // FIN right after close_notify
  EXPECT_EQ(owner_.closed, 1);
  EXPECT_EQ(owner_.write_status, 0);
  EXPECT_GT(owner_.write_dones, 100);
}

INSTANTIATE_TEST_SUITE_P(TlsVersions, TlsTransportEchoTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == TLS1_3_VERSION ? std::string("Tls13")
                                                               : std::string("Tls12");
                         });

TEST_F(TlsTransportTest, WriteBeforeTheHandshakeIsSentAfterIt) {
  build();
  owner_.echo = false;
  std::string greeting = "hello before handshake";
  uv_buf_t buf = uv_buf_init(greeting.data(), static_cast<unsigned>(greeting.size()));
  on_accepted = [&] { ASSERT_EQ(owner_.transport->write(&buf, 1), 0); };
  std::string got;
  bool close_notify = false;
  run([&](Client& client) {
    ASSERT_TRUE(client.handshake());
    got = client.read_exactly(greeting.size());
    SSL_shutdown(client.ssl());
    close_notify = client.read_close_notify();
  });
  EXPECT_EQ(got, greeting);
  EXPECT_EQ(owner_.write_dones, 1);
  EXPECT_EQ(owner_.write_status, 0);
  EXPECT_TRUE(close_notify);
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, ManySmallBuffersInOneWrite) {
  build();
  owner_.echo = false;
  std::vector<std::string> pieces;
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    pieces.push_back(std::to_string(i) + (i % 7 == 0 ? std::string(20000, 'x') : ",") +
                     (i % 11 == 0 ? "" : ";"));
    if (i % 13 == 0) pieces.push_back("");  // empty buffers are fine
  }
  std::vector<uv_buf_t> bufs;
  for (std::string& piece : pieces) {
    bufs.push_back(uv_buf_init(piece.data(), static_cast<unsigned>(piece.size())));
    expected += piece;
  }
  on_accepted = [&] {
    ASSERT_EQ(owner_.transport->write(bufs.data(), static_cast<unsigned>(bufs.size())), 0);
    EXPECT_EQ(owner_.transport->write(bufs.data(), 1), UV_EBUSY);  // one write at a time
  };
  std::string got;
  run([&](Client& client) {
    ASSERT_TRUE(client.handshake());
    got = client.read_exactly(expected.size());
    SSL_shutdown(client.ssl());
    client.read_close_notify();
  });
  EXPECT_TRUE(got == expected) << got.size() << " of " << expected.size();
  EXPECT_EQ(owner_.write_dones, 1);
}

TEST_F(TlsTransportTest, HandshakeTimeoutEndsTheConnection) {
  build(100ms);
  std::string raw;
  run([&](Client& client) { raw = client.read_raw_until_eof(); });  // never says hello
  EXPECT_EQ(owner_.read_ends, 1);
  EXPECT_EQ(owner_.read_end_status, UV_ETIMEDOUT);
  EXPECT_EQ(raw, "");
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, PlainHttpIsAProtocolError) {
  build();
  run([&](Client& client) {
    client.send_raw("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    client.read_raw_until_eof();
  });
  EXPECT_EQ(owner_.read_ends, 1);
  EXPECT_EQ(owner_.read_end_status, UV_EPROTO);
  EXPECT_EQ(owner_.received, "");
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, MalformedClientHelloGetsAnAlert) {
  build();
  std::string raw;
  run([&](Client& client) {
    client.send_raw(std::string("\x16\x03\x01\x00\x04\x01\x00\x00\x00", 9));
    raw = client.read_raw_until_eof();
  });
  EXPECT_EQ(owner_.read_end_status, UV_EPROTO);
  ASSERT_FALSE(raw.empty());
  EXPECT_EQ(raw[0], '\x15');  // the alert went out before the connection closed
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, ClientAlertDuringHandshakeEndsReads) {
  build();
  owner_.echo = false;
  std::string greeting = "never delivered";
  uv_buf_t buf = uv_buf_init(greeting.data(), static_cast<unsigned>(greeting.size()));
  on_accepted = [&] { ASSERT_EQ(owner_.transport->write(&buf, 1), 0); };
  bool handshake_ok = true;
  run([&](Client& client) {
    SSL_CTX_set_verify(client.ctx(), SSL_VERIFY_PEER, nullptr);  // self-signed: unknown CA
    handshake_ok = client.handshake();
    client.read_raw_until_eof();
  });
  EXPECT_FALSE(handshake_ok);
  EXPECT_EQ(owner_.read_ends, 1);
  EXPECT_EQ(owner_.read_end_status, UV_EPROTO);
  // The write queued before the handshake completed is not reported after close().
  EXPECT_EQ(owner_.write_dones, 0);
  EXPECT_EQ(owner_.events_after_close, 0);
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, CloseFromInsideOnRead) {
  build();
  owner_.close_in_on_read = true;
  std::string raw;
  run([&](Client& client) {
    ASSERT_TRUE(client.handshake());
    // Several records in one go: the transport must stop at the first on_read.
    ASSERT_TRUE(client.write_all(std::string(5000, 'a')));
    client.write_all(std::string(5000, 'b'));  // may meet the server's RST
    raw = client.read_raw_until_eof();
  });
  EXPECT_EQ(owner_.received, std::string(1000, 'a'));
  EXPECT_EQ(owner_.events_after_close, 0);
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, TcpEofWithoutCloseNotifyIsEof) {
  build();
  owner_.shutdown_on_eof = false;
  run([&](Client& client) {
    ASSERT_TRUE(client.handshake());
    ASSERT_TRUE(client.write_all("ping"));
    EXPECT_EQ(client.read_exactly(4), "ping");
    ::shutdown(client.fd(), SHUT_WR);
    client.read_raw_until_eof();
  });
  EXPECT_EQ(owner_.received, "ping");
  EXPECT_EQ(owner_.read_end_status, UV_EOF);
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, AnswersAfterThePeersCloseNotify) {
  build();
  owner_.echo = false;
  owner_.reply_on_eof = "pong";
  std::string reply;
  bool close_notify = false;
  run([&](Client& client) {
    ASSERT_TRUE(client.handshake());
    ASSERT_TRUE(client.write_all("ping"));
    SSL_shutdown(client.ssl());  // done sending; still reading
    reply = client.read_exactly(4);
    close_notify = client.read_close_notify();
  });
  EXPECT_EQ(owner_.received, "ping");
  EXPECT_EQ(owner_.read_end_status, UV_EOF);
  EXPECT_EQ(reply, "pong");
  EXPECT_TRUE(close_notify);
  EXPECT_EQ(owner_.write_status, 0);
  EXPECT_EQ(owner_.closed, 1);
}

TEST_F(TlsTransportTest, PeerIpAndSecure) {
  build();
  owner_.echo = false;
  owner_.close_in_on_read = true;
  std::string ip;
  on_accepted = [&] {
    ip = owner_.transport->peer_ip();
    EXPECT_TRUE(owner_.transport->secure());
  };
  run([&](Client& client) {
    ASSERT_TRUE(client.handshake());
    client.write_all("x");
    client.read_raw_until_eof();
  });
  EXPECT_EQ(ip, "127.0.0.1");
}

}  // namespace
}  // namespace gh::tls
