/* Upload upstream for bench/h2.py (scenario h2_upload): reads every request body in full,
 * then answers, so every proxy has to forward the whole body before it gets a response.
 *
 *     cc -O2 -o body_sink bench/body_sink.c
 *     body_sink --port-file PATH
 *
 * Why not the nginx upstream's `return 200`: nginx answers before it has read a large body
 * (it discards the rest afterwards), and a proxy that sees a complete response while it
 * is still forwarding the request may stop forwarding (HTTP/2: RST_STREAM(NO_ERROR) to
 * the client), which would make 1 MiB uploads cheaper for some proxies than for others.
 *
 * One thread, epoll, non-blocking sockets, 127.0.0.1 only, HTTP/1.1 keep-alive. A request
 * body is framed by Content-Length or `Transfer-Encoding: chunked` (trailers skipped) and
 * discarded as it arrives; once it is complete the answer is `200` with the 3-byte body
 * `ok\n`. `GET /sink-stats` answers `requests=N bytes=M\n` (requests answered and body
 * bytes read so far), so the bench can check that whole bodies arrived. The bound port
 * is written to --port-file once listening. Runs until SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 262144
#define MAX_HEAD 16384

enum State { HEAD, BODY_LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS };

typedef struct {
  int fd;
  enum State state;
  unsigned long long left; /* body or chunk bytes still to read */
  char line[MAX_HEAD];     /* the head (or a chunk-size / trailer line) so far */
  size_t line_len;
  char out[256];           /* a pending answer, when the socket was full */
  size_t out_len, out_off;
} Conn;

static unsigned long long total_requests, total_bytes;
static char read_buf[READ_CHUNK];

static void conn_close(Conn* c) {
  close(c->fd);
  free(c);
}

static int flush(Conn* c) {
  while (c->out_off < c->out_len) {
    ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->out_off += (size_t)n;
  }
  c->out_len = c->out_off = 0;
  return 0;
}

static void answer(Conn* c, const char* body) {
  total_requests++;
  int n = snprintf(c->out + c->out_len, sizeof c->out - c->out_len,
                   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
  if (n > 0) c->out_len += (size_t)n;
  c->state = HEAD;
  c->line_len = 0;
}

/* A complete head is in c->line: find the body framing. Returns -1 for a bad request. */
static int start_body(Conn* c) {
  c->line[c->line_len] = '\0';
  int chunked = 0, stats = strncmp(c->line, "GET /sink-stats ", 16) == 0;
  unsigned long long length = 0;
  for (char* p = strstr(c->line, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
    char* field = p + 2;
    if (strncasecmp(field, "content-length:", 15) == 0)
      length = strtoull(field + 15, NULL, 10);
    else if (strncasecmp(field, "transfer-encoding:", 18) == 0 && strstr(field, "chunked"))
      chunked = 1;
  }
  c->line_len = 0;
  if (stats) {
    char body[96];
    snprintf(body, sizeof body, "requests=%llu bytes=%llu\n", total_requests, total_bytes);
    answer(c, body);
  } else if (chunked) {
    c->state = CHUNK_SIZE;
  } else if (length) {
    c->state = BODY_LENGTH;
    c->left = length;
  } else {
    answer(c, "ok\n");
  }
  return 0;
}

/* Consumes `n` bytes read from the connection. Returns -1 to close it. */
static int consume(Conn* c, const char* p, size_t n) {
  while (n) {
    if (c->state == BODY_LENGTH || c->state == CHUNK_DATA) {
      size_t take = n < c->left ? n : (size_t)c->left;
      total_bytes += take;
      c->left -= take;
      p += take;
      n -= take;
      if (!c->left) {
        if (c->state == BODY_LENGTH)
          answer(c, "ok\n");
        else
          c->state = CHUNK_CRLF;
      }
      continue;
    }
    /* Line-based states: HEAD (until an empty line), CHUNK_SIZE, CHUNK_CRLF, TRAILERS. */
    if (c->line_len >= MAX_HEAD - 1) return -1;
    c->line[c->line_len++] = *p++;
    n--;
    size_t L = c->line_len;
    if (L < 2 || c->line[L - 2] != '\r' || c->line[L - 1] != '\n') continue;
    if (c->state == HEAD) {
      if (L >= 4 && memcmp(c->line + L - 4, "\r\n\r\n", 4) == 0 && start_body(c) < 0) return -1;
    } else if (c->state == CHUNK_SIZE) {
      c->line[L] = '\0';
      c->left = strtoull(c->line, NULL, 16);
      c->line_len = 0;
      c->state = c->left ? CHUNK_DATA : TRAILERS;
    } else if (c->state == CHUNK_CRLF) {
      c->line_len = 0;
      c->state = CHUNK_SIZE;
    } else { /* TRAILERS: an empty line ends the message */
      int done = L == 2;
      c->line_len = 0;
      if (done) answer(c, "ok\n");
    }
  }
  return 0;
}

static void on_readable(Conn* c) {
  for (;;) {
    ssize_t n = read(c->fd, read_buf, sizeof read_buf);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      conn_close(c);
      return;
    }
    if (n < 0) break;
    if (consume(c, read_buf, (size_t)n) < 0 || flush(c) < 0) {
      conn_close(c);
      return;
    }
    if ((size_t)n < sizeof read_buf) break;
  }
}

int main(int argc, char** argv) {
  const char* port_file = NULL;
  for (int i = 1; i + 1 < argc; i += 2)
    if (strcmp(argv[i], "--port-file") == 0) port_file = argv[i + 1];
  if (!port_file) {
    fprintf(stderr, "usage: %s --port-file PATH\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof addr;
  if (bind(lfd, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0 ||
      getsockname(lfd, (struct sockaddr*)&addr, &alen) < 0) {
    perror("listen");
    return 1;
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
  FILE* f = fopen(tmp, "w");
  if (!f || fprintf(f, "%d\n", ntohs(addr.sin_port)) < 0 || fclose(f) != 0 ||
      rename(tmp, port_file) != 0) {
    perror(port_file);
    return 1;
  }
  int epfd = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epfd, events, 256, -1);
    if (n < 0 && errno != EINTR) return 1;
    for (int i = 0; i < n; i++) {
      Conn* c = events[i].data.ptr;
      if (c == NULL) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          Conn* nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          nc->state = HEAD;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = nc};
          epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev);
        }
        continue;
      }
      if (events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN)) {
        conn_close(c);
        continue;
      }
      if (events[i].events & EPOLLOUT && flush(c) < 0) {
        conn_close(c);
        continue;
      }
      if (events[i].events & EPOLLIN) on_readable(c);
    }
  }
}
