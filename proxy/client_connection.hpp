// ClientConnection: what the worker sees of one downstream connection, whatever protocol
// it speaks: an HTTP/1.1 connection (h1_connection) or an HTTP/2 connection
// (h2_connection). The worker owns it through its registry and frees it when the
// connection calls Worker::forget() from its last close callback. Loop thread only.
#pragma once

namespace gh::proxy {

class ClientConnection {
 public:
  virtual ~ClientConnection() = default;
  // Close once idle; exchanges in flight finish (HTTP/1.1: with Connection: close;
  // HTTP/2: GOAWAY, then the streams in flight complete).
  virtual void drain() = 0;
  virtual void close() = 0;  // now; idempotent
};

}  // namespace gh::proxy
