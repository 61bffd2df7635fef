/* WebSocket echo upstream for bench/run.py: idle tunnels and the ws_msgs scenario.
 *
 *     cc -O2 -o ws_echo bench/ws_echo.c -lcrypto
 *     ws_echo --port-file PATH [--port N]
 *
 * One thread, epoll, non-blocking sockets, 127.0.0.1 only. A request with
 * `Upgrade: websocket` gets `101 Switching Protocols` with a correct Sec-WebSocket-Accept;
 * from then on every frame is echoed as RFC 6455 says a server sends it: same FIN and
 * opcode, payload unmasked, no mask (ping gets pong, close gets close and the connection
 * ends). Any other request gets `200 ok` and the connection is closed. Every complete
 * frame of one read goes back in one write. The bound port is written to --port-file
 * once listening. Runs until SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define MAX_HEAD 8192
#define MAX_OUT (4u << 20) /* stop reading a connection while this much waits to go out */

typedef struct {
  char* data;
  size_t len, cap;
} Buf;

typedef struct {
  int fd;
  int upgraded;
  int closing; /* close once `out` is flushed */
  int want_out;
  Buf in;  /* unparsed bytes (a partial head or frame) */
  Buf out; /* bytes not yet written */
} Conn;

static int epfd;

static void buf_append(Buf* b, const void* p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) {
      perror("realloc");
      exit(1);
    }
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void buf_consume(Buf* b, size_t n) {
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  if (b->len == 0 && b->cap > 65536) { /* give big buffers back */
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
}

static void conn_close(Conn* c) {
  close(c->fd);
  free(c->in.data);
  free(c->out.data);
  free(c);
}

static void set_events(Conn* c) {
  uint32_t ev = c->want_out ? EPOLLOUT : 0;
  if (!c->closing && c->out.len < MAX_OUT) ev |= EPOLLIN;
  struct epoll_event e = {.events = ev, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
}

/* Writes what it can; returns -1 if the connection failed. */
static int flush_out(Conn* c) {
  while (c->out.len) {
    ssize_t n = write(c->fd, c->out.data, c->out.len);
    if (n < 0) {
      if (errno == EAGAIN) break;
      if (errno == EINTR) continue;
      return -1;
    }
    buf_consume(&c->out, (size_t)n);
  }
  int want = c->out.len > 0;
  if (want != c->want_out || c->out.len >= MAX_OUT) {
    c->want_out = want;
    set_events(c);
  }
  return 0;
}

static const char* find_header(const char* head, const char* name, size_t* len) {
  size_t nlen = strlen(name);
  for (const char* p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
    const char* line = p + 2;
    if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
      const char* v = line + nlen + 1;
      while (*v == ' ' || *v == '\t') v++;
      const char* end = strstr(v, "\r\n");
      while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
      *len = (size_t)(end - v);
      return v;
    }
  }
  return NULL;
}

static void accept_key(const char* key, size_t key_len, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  char joined[256];
  unsigned char digest[20];
  unsigned int dlen = 0;
  if (key_len > sizeof joined - sizeof guid) key_len = sizeof joined - sizeof guid;
  memcpy(joined, key, key_len);
  memcpy(joined + key_len, guid, sizeof guid - 1);
  EVP_Digest(joined, key_len + sizeof guid - 1, digest, &dlen, EVP_sha1(), NULL);
  EVP_EncodeBlock((unsigned char*)out, digest, 20);
}

/* Parses the request head in c->in; returns 0 while incomplete, 1 when handled, -1 on error. */
static int handle_head(Conn* c) {
  char* end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
  if (!end) return c->in.len > MAX_HEAD ? -1 : 0;
  size_t head_len = (size_t)(end - c->in.data) + 4;
  char head[MAX_HEAD + 8];
  if (head_len > MAX_HEAD) return -1;
  memcpy(head, c->in.data, head_len);
  head[head_len] = 0;
  buf_consume(&c->in, head_len);
  size_t ulen = 0, klen = 0;
  const char* upgrade = find_header(head, "Upgrade", &ulen);
  const char* key = find_header(head, "Sec-WebSocket-Key", &klen);
  if (upgrade && ulen == 9 && strncasecmp(upgrade, "websocket", 9) == 0 && key) {
    char accept[29];
    accept_key(key, klen, accept);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    buf_append(&c->out, resp, (size_t)n);
    c->upgraded = 1;
  } else {
    static const char ok[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain"
        "\r\nConnection: close\r\n\r\nok\n";
    buf_append(&c->out, ok, sizeof ok - 1);
    c->closing = 1;
  }
  return 1;
}

/* Echoes every complete frame at the start of data[0..len); returns the bytes consumed. */
static size_t echo_frames(Conn* c, const unsigned char* data, size_t len) {
  size_t pos = 0;
  while (!c->closing && len - pos >= 2) {
    const unsigned char* f = data + pos;
    int opcode = f[0] & 0x0f, masked = f[1] & 0x80;
    uint64_t plen = f[1] & 0x7f;
    size_t hlen = 2;
    if (plen == 126) {
      if (len - pos < 4) break;
      plen = ((uint64_t)f[2] << 8) | f[3];
      hlen = 4;
    } else if (plen == 127) {
      if (len - pos < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = (plen << 8) | f[2 + i];
      hlen = 10;
    }
    size_t mask_at = hlen;
    if (masked) hlen += 4;
    if (plen > (64u << 20)) {
      c->closing = 1;
      break;
    } /* refuse absurd frames */
    if (len - pos < hlen + plen) break;
    unsigned char out_head[10];
    size_t oh = 2;
    out_head[0] = (unsigned char)((f[0] & 0xf0) | (opcode == 0x9 ? 0xA : opcode));
    if (plen < 126) {
      out_head[1] = (unsigned char)plen;
    } else if (plen < 65536) {
      out_head[1] = 126;
      out_head[2] = (unsigned char)(plen >> 8);
      out_head[3] = (unsigned char)plen;
      oh = 4;
    } else {
      out_head[1] = 127;
      for (int i = 0; i < 8; i++) out_head[2 + i] = (unsigned char)(plen >> (56 - 8 * i));
      oh = 10;
    }
    buf_append(&c->out, out_head, oh);
    size_t at = c->out.len;
    buf_append(&c->out, f + hlen, (size_t)plen);
    if (masked) {
      const unsigned char* m = f + mask_at;
      unsigned char* p = (unsigned char*)c->out.data + at;
      for (size_t i = 0; i < plen; i++) p[i] ^= m[i & 3];
    }
    if (opcode == 0x8) c->closing = 1;
    pos += hlen + (size_t)plen;
  }
  return pos;
}

/* Reads until EAGAIN; returns -1 when the connection is done. */
static int on_readable(Conn* c) {
  static unsigned char chunk[READ_CHUNK];
  for (;;) {
    ssize_t n = read(c->fd, chunk, sizeof chunk);
    if (n == 0) return -1;
    if (n < 0) {
      if (errno == EAGAIN) break;
      if (errno == EINTR) continue;
      return -1;
    }
    if (!c->upgraded || c->in.len) {
      buf_append(&c->in, chunk, (size_t)n);
      if (!c->upgraded) {
        int r = handle_head(c);
        if (r < 0) return -1;
        if (r == 0) continue;
      }
      if (c->upgraded && c->in.len)
        buf_consume(&c->in, echo_frames(c, (unsigned char*)c->in.data, c->in.len));
    } else {
      size_t used = echo_frames(c, chunk, (size_t)n);
      if (used < (size_t)n) buf_append(&c->in, chunk + used, (size_t)n - used);
    }
    if (c->closing || c->out.len >= MAX_OUT) break;
  }
  if (flush_out(c) < 0) return -1;
  if (c->closing && c->out.len == 0) return -1;
  return 0;
}

static void on_accept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR) perror("accept4");
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Conn* c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      return;
    }
    c->fd = fd;
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
  }
}

static int listen_on(int port, const char* port_file) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0 || listen(fd, 4096) < 0 ||
      getsockname(fd, (struct sockaddr*)&a, &alen) < 0) {
    perror("bind/listen");
    exit(1);
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
  FILE* f = fopen(tmp, "w");
  if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) != 0 ||
      rename(tmp, port_file) != 0) {
    perror(port_file);
    exit(1);
  }
  return fd;
}

int main(int argc, char** argv) {
  const char* port_file = NULL;
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port-file") == 0)
      port_file = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
  }
  if (!port_file) {
    fprintf(stderr, "usage: %s --port-file PATH [--port N]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  int lfd = listen_on(port, port_file);
  struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &le);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epfd, events, 256, -1);
    for (int i = 0; i < n; i++) {
      Conn* c = events[i].data.ptr;
      if (!c) {
        on_accept(lfd);
        continue;
      }
      int failed = 0;
      if (events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN)) failed = 1;
      if (!failed && events[i].events & EPOLLOUT) {
        failed = flush_out(c) < 0 || (c->closing && c->out.len == 0);
        if (!failed && !c->closing && c->out.len < MAX_OUT) set_events(c);
      }
      if (!failed && events[i].events & EPOLLIN) failed = on_readable(c) < 0;
      if (failed) conn_close(c); /* close() also removes it from the epoll set */
    }
  }
}
