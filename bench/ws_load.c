/* WebSocket message-rate client for bench/run.py (scenario ws_msgs).
 *
 *     cc -O2 -o ws_load bench/ws_load.c
 *     ws_load --port N [--path /ws] [-c 50] [--window 8] [--size 32] [--warmup 1] [--duration 10]
 *
 * Opens -c connections to 127.0.0.1:N, upgrades each to a WebSocket (expects 101), then
 * keeps --window masked text frames of --size bytes in flight on every connection: each
 * echoed frame that comes back is counted and replaced by a new one (all replacements of
 * one read go out in one write). The payload starts with the send time, so every echo
 * gives a round-trip time. After --warmup seconds it prints "START", counts for
 * --duration seconds, prints
 *
 *     END msgs=<echoed frames> seconds=<measured> p50_us=<rtt> p99_us=<rtt> errors=<conns lost>
 *         cpu_s=<this process's CPU time while counting>
 *
 * and exits (an alarm ends it 30 s later at the latest). One thread, epoll.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAYLOAD 125 /* one-byte length: the frames stay small */
#define HIST_US 1000000 /* round-trip histogram: 1 µs buckets up to 1 s */
#define IN_CAP (256 * 1024)

typedef struct {
  int fd;
  int alive;
  uint32_t events; /* what epoll waits for now */
  unsigned char in[IN_CAP];
  size_t in_len;
  unsigned char* out;
  size_t out_len, out_cap;
} Conn;

static int size = 32;
static uint64_t t_start_ns;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t hist[HIST_US + 1];
static int counting;
static uint64_t echoed;
static int errors;

static uint64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) {
  return clock_ns(CLOCK_MONOTONIC);
}

static uint32_t next_mask(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

static void out_reserve(Conn* c, size_t more) {
  if (c->out_len + more <= c->out_cap) return;
  size_t cap = c->out_cap ? c->out_cap : 4096;
  while (cap < c->out_len + more) cap *= 2;
  c->out = realloc(c->out, cap);
  if (!c->out) {
    perror("realloc");
    exit(1);
  }
  c->out_cap = cap;
}

/* Appends one masked text frame whose payload starts with the send time in hex. */
static void add_frame(Conn* c, uint64_t sent_ns) {
  out_reserve(c, 6 + (size_t)size);
  unsigned char* f = c->out + c->out_len;
  unsigned char payload[MAX_PAYLOAD];
  snprintf((char*)payload, sizeof payload, "%016llx", (unsigned long long)(sent_ns - t_start_ns));
  for (int i = 16; i < size; i++) payload[i] = (unsigned char)('a' + i % 26);
  uint32_t mask = next_mask();
  f[0] = 0x81; /* FIN, text */
  f[1] = (unsigned char)(0x80 | size);
  memcpy(f + 2, &mask, 4);
  for (int i = 0; i < size; i++) f[6 + i] = payload[i] ^ f[2 + (i & 3)];
  c->out_len += 6 + (size_t)size;
}

static void lose(Conn* c, const char* why) {
  if (!c->alive) return;
  fprintf(stderr, "ws_load: connection %d: %s\n", c->fd, why);
  c->alive = 0;
  errors++;
  close(c->fd);
}

static void flush(Conn* c) {
  size_t done = 0;
  while (done < c->out_len) {
    ssize_t n = write(c->fd, c->out + done, c->out_len - done);
    if (n < 0) {
      if (errno == EAGAIN) break;
      if (errno == EINTR) continue;
      lose(c, "write failed");
      return;
    }
    done += (size_t)n;
  }
  memmove(c->out, c->out + done, c->out_len - done);
  c->out_len -= done;
}

static void record_rtt(const unsigned char* payload, size_t len, uint64_t now) {
  if (!counting || len < 16) return;
  char hex[17];
  memcpy(hex, payload, 16);
  hex[16] = 0;
  uint64_t sent = t_start_ns + strtoull(hex, NULL, 16);
  uint64_t us = now > sent ? (now - sent) / 1000 : 0;
  hist[us > HIST_US ? HIST_US : us]++;
}

/* Parses the echoed frames in c->in; returns how many complete frames came back. */
static int take_frames(Conn* c, uint64_t now) {
  size_t pos = 0;
  int frames = 0;
  while (c->in_len - pos >= 2) {
    const unsigned char* f = c->in + pos;
    size_t plen = f[1] & 0x7f, hlen = 2;
    if (plen >= 126) {
      lose(c, "unexpected long frame");
      return frames;
    }
    if (f[1] & 0x80) hlen += 4; /* a masked echo: tolerated */
    if (c->in_len - pos < hlen + plen) break;
    if ((f[0] & 0x0f) != 0x1 || plen != (size_t)size) {
      lose(c, "unexpected frame");
      return frames;
    }
    unsigned char payload[MAX_PAYLOAD];
    memcpy(payload, f + hlen, plen);
    if (f[1] & 0x80)
      for (size_t i = 0; i < plen; i++) payload[i] ^= f[2 + (i & 3)];
    record_rtt(payload, plen, now);
    frames++;
    pos += hlen + plen;
  }
  memmove(c->in, c->in + pos, c->in_len - pos);
  c->in_len -= pos;
  return frames;
}

static void on_readable(Conn* c) {
  for (;;) {
    size_t space = IN_CAP - c->in_len;
    ssize_t n = read(c->fd, c->in + c->in_len, space);
    if (n == 0) {
      lose(c, "closed by peer");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN) break;
      if (errno == EINTR) continue;
      lose(c, "read failed");
      return;
    }
    c->in_len += (size_t)n;
    uint64_t now = now_ns();
    int frames = take_frames(c, now);
    if (!c->alive) return;
    if (counting) echoed += (uint64_t)frames;
    for (int i = 0; i < frames; i++) add_frame(c, now);
    if ((size_t)n < space) break; /* a short read: the socket is drained */
  }
  flush(c);
}

/* Blocking connect + upgrade (with a timeout), then non-blocking. Returns 0 on success. */
static int open_conn(Conn* c, int port, const char* path) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c->fd, (struct sockaddr*)&a, sizeof a) < 0) return -1;
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: bench.test\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   path);
  if (write(c->fd, req, (size_t)n) != n) return -1;
  char head[4096];
  size_t got = 0;
  char* end = NULL;
  while (!end && got < sizeof head - 1) {
    ssize_t r = read(c->fd, head + got, sizeof head - 1 - got);
    if (r <= 0) return -1;
    got += (size_t)r;
    head[got] = 0;
    end = strstr(head, "\r\n\r\n");
  }
  if (!end || strncmp(head, "HTTP/1.1 101", 12) != 0) return -1;
  size_t rest = got - (size_t)(end + 4 - head);
  memcpy(c->in, end + 4, rest); /* an echo cannot arrive before we send: normally 0 */
  c->in_len = rest;
  fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
  c->alive = 1;
  return 0;
}

static double percentile_us(uint64_t total, double pct) {
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(total * pct / 100.0), seen = 0;
  for (int us = 0; us <= HIST_US; us++) {
    seen += hist[us];
    if (seen > want) return us;
  }
  return HIST_US;
}

int main(int argc, char** argv) {
  int port = 0, conns = 50, window = 8;
  double warmup = 1, duration = 10;
  const char* path = "/ws";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--path") == 0)
      path = argv[i + 1];
    else if (strcmp(argv[i], "-c") == 0)
      conns = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--window") == 0)
      window = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--size") == 0)
      size = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--warmup") == 0)
      warmup = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--duration") == 0)
      duration = atof(argv[i + 1]);
  }
  if (!port || conns < 1 || conns > 10000 || window < 1 || window > 1000 || size < 16 ||
      size > MAX_PAYLOAD || duration <= 0 || duration > 3600) {
    fprintf(stderr,
            "usage: %s --port N [--path P] [-c 1..10000] [--window 1..1000] "
            "[--size 16..125] [--warmup S] [--duration S]\n",
            argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)(warmup + duration) + 30 + (unsigned)conns / 100);
  t_start_ns = now_ns();
  Conn* cs = calloc((size_t)conns, sizeof *cs);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < conns; i++) {
    if (open_conn(&cs[i], port, path) < 0) {
      printf("END msgs=0 seconds=0 p50_us=0 p99_us=0 errors=%d upgrade_failed=1\n", conns);
      return 1;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &cs[i]};
    epoll_ctl(epfd, EPOLL_CTL_ADD, cs[i].fd, &e);
    cs[i].events = EPOLLIN;
  }
  uint64_t begin = now_ns();
  for (int i = 0; i < conns; i++) {
    for (int w = 0; w < window; w++) add_frame(&cs[i], begin);
    flush(&cs[i]); /* a few hundred bytes: the socket buffer normally takes them all */
    if (cs[i].alive && cs[i].out_len) {
      struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &cs[i]};
      epoll_ctl(epfd, EPOLL_CTL_MOD, cs[i].fd, &e);
      cs[i].events = EPOLLIN | EPOLLOUT;
    }
  }
  uint64_t start_at = begin + (uint64_t)(warmup * 1e9), stop_at = 0, cpu_at_start = 0;
  struct epoll_event events[512];
  for (;;) {
    uint64_t now = now_ns();
    if (!counting && now >= start_at) {
      counting = 1;
      stop_at = now + (uint64_t)(duration * 1e9);
      start_at = now;
      cpu_at_start = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
      printf("START\n");
      fflush(stdout);
    } else if (counting && now >= stop_at) {
      break;
    }
    int n = epoll_wait(epfd, events, 512, 5);
    for (int i = 0; i < n; i++) {
      Conn* c = events[i].data.ptr;
      if (c->alive && (events[i].events & EPOLLOUT)) flush(c);
      if (c->alive && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
      uint32_t want = EPOLLIN | (c->out_len ? EPOLLOUT : 0);
      if (c->alive && want != c->events) {
        struct epoll_event e = {.events = want, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
        c->events = want;
      }
    }
    int alive = 0;
    for (int i = 0; i < conns; i++) alive += cs[i].alive;
    if (!alive) break;
  }
  double seconds = (double)(now_ns() - start_at) / 1e9;
  double cpu_s = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_at_start) / 1e9;
  printf("END msgs=%llu seconds=%.3f p50_us=%.0f p99_us=%.0f errors=%d cpu_s=%.3f\n",
         (unsigned long long)echoed, counting ? seconds : 0.0, percentile_us(echoed, 50),
         percentile_us(echoed, 99), errors, counting ? cpu_s : 0.0);
  fflush(stdout);
  for (int i = 0; i < conns; i++)
    if (cs[i].alive) close(cs[i].fd);
  return errors ? 1 : 0;
}
