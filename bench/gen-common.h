/*
 * What the bench's two C load generators share (h2gen.c for HTTP/2, h1gen.c
 * for HTTP/1.1): clocks, a growable buffer, the per-request records and the
 * line protocol they write for loadgen.ts, and the fresh addresses.
 *
 * The protocol (one line each, tab-separated):
 *   gen → "W <requests> <errors> <first error>"   warm-up done
 *   loadgen → any line                              the measured window starts
 *   gen → "A <email> <answer ms> <latency ms>"     per accepted send
 *         "F <status> <latency ms> <retry-after 0|1> <detail>"  per failure
 *         "E <duration ms> <cpu µs>"               window done; then it exits
 * Answer times are CLOCK_MONOTONIC in ms (see h2gen.c). Records are kept in
 * memory and written after the window, so that writing them does not compete
 * with the requests.
 */
#ifndef GEN_COMMON_H
#define GEN_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* loadgen.ts's node clients give every request 10 s. */
#define REQUEST_TIMEOUT_MS 10000.0
/* The node clients keep at most about 300 characters of a failed answer's body. */
#define DETAIL_MAX 300
#define EMAIL_MAX 128

/* Set by each program's main, for its messages. */
static const char *gen_name = "gen";

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", gen_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

/* ------------------------------------------------------------ clocks */

/* Latency, deadlines and answer times on the monotonic clock, which node's
 * performance.now() and process.hrtime() read too. */
static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

/* ------------------------------------------------------------ a growable buffer */

typedef struct {
  char *p;
  size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t more) {
  if (b->len + more <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  b->p = realloc(b->p, cap);
  if (!b->p) die("out of memory");
  b->cap = cap;
}

static void buf_add(buf_t *b, const void *data, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void buf_printf(buf_t *b, const char *fmt, ...) {
  for (;;) {
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) die("vsnprintf failed");
    if ((size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    buf_reserve(b, (size_t)n + 1);
  }
}

/* Text that goes into a tab-separated line: tabs and line breaks become spaces. */
static void buf_add_field(buf_t *b, const char *s, size_t n) {
  buf_reserve(b, n);
  for (size_t i = 0; i < n; i++) b->p[b->len++] = (s[i] == '\t' || s[i] == '\n' || s[i] == '\r') ? ' ' : s[i];
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die("write to stdout: %s", strerror(errno));
    p += w;
    n -= (size_t)w;
  }
}

/* ------------------------------------------------------------ sockets */

/* A connected, non-blocking TCP socket with Nagle off, or -1. A blocking
 * connect on loopback is immediate. Each request is written whole in one
 * write, so Nagle would only hold back an odd small write behind a delayed
 * ACK. */
static int tcp_connect(const char *host, const char *port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
  if (getaddrinfo(host, port, &hints, &ai) != 0) return -1;
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (fd >= 0) close(fd);
    freeaddrinfo(ai);
    return -1;
  }
  freeaddrinfo(ai);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

/* Writes what the socket takes of b from *off; b is emptied once all of it
 * went. 0: written or the socket is full (b->len > 0 then), -1: failed. */
static int write_pending(int fd, buf_t *b, size_t *off) {
  while (*off < b->len) {
    ssize_t n = write(fd, b->p + *off, b->len - *off);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      return -1;
    }
    *off += (size_t)n;
  }
  if (*off == b->len) b->len = *off = 0;
  return 0;
}

/* ------------------------------------------------------------ results */

/* What loadgen.ts's Recorder keeps: counts for the warm-up, and for the
 * measured window one output line per request. */
static struct {
  long requests, errors;
  char first_error[DETAIL_MAX + 64];
  int keep;    /* measured window: write records */
  buf_t lines; /* the records, written after the window */
} rec;

static void rec_reset(int measured) {
  rec.requests = rec.errors = 0;
  rec.first_error[0] = 0;
  rec.keep = measured;
}

static void record_ok(const char *email, size_t email_len, double at_ms, double latency_ms) {
  rec.requests++;
  if (!rec.keep) return;
  buf_add(&rec.lines, "A\t", 2);
  buf_add(&rec.lines, email, email_len);
  buf_printf(&rec.lines, "\t%.3f\t%.3f\n", at_ms, latency_ms);
}

/* status: "grpc_<n>", the HTTP status, or "transport_error", as the node clients name them. */
static void record_fail(const char *status, double latency_ms, int retry_after, const char *detail, size_t detail_len) {
  rec.requests++;
  rec.errors++;
  if (!rec.first_error[0]) {
    size_t n = detail_len < DETAIL_MAX ? detail_len : DETAIL_MAX;
    snprintf(rec.first_error, sizeof rec.first_error, "%s: %.*s", status, (int)n, detail);
  }
  if (!rec.keep) return;
  buf_printf(&rec.lines, "F\t%s\t%.3f\t%d\t", status, latency_ms, retry_after);
  buf_add_field(&rec.lines, detail, detail_len);
  buf_add(&rec.lines, "\n", 1);
}

static void write_warm_line(void) {
  buf_t line = {0};
  buf_printf(&line, "W\t%ld\t%ld\t", rec.requests, rec.errors);
  buf_add_field(&line, rec.first_error, strlen(rec.first_error));
  buf_add(&line, "\n", 1);
  write_all(1, line.p, line.len);
  free(line.p);
}

/* The window's records, then its end line. */
static void write_window(double duration_ms, double cpu_used_us) {
  write_all(1, rec.lines.p, rec.lines.len);
  buf_t line = {0};
  buf_printf(&line, "E\t%.3f\t%.0f\n", duration_ms, cpu_used_us);
  write_all(1, line.p, line.len);
  free(line.p);
  free(rec.lines.p);
  rec.lines = (buf_t){0};
}

/* ------------------------------------------------------------ the start line */

static int stdin_line; /* a line arrived on stdin */
static buf_t stdin_buf;

static void on_stdin(void) {
  char b[256];
  ssize_t n = read(0, b, sizeof b);
  if (n <= 0) die("stdin closed before the measured window was started");
  buf_add(&stdin_buf, b, (size_t)n);
  if (memchr(stdin_buf.p, '\n', stdin_buf.len)) stdin_line = 1;
}

/* ------------------------------------------------------------ the loop */

/* Waits up to timeout_ms for events and hands each on: stdin's (registered
 * with a NULL pointer) to on_stdin, a connection's to on_event. */
static void wait_events(int epfd, int timeout_ms, void (*on_event)(void *conn, uint32_t events)) {
  struct epoll_event evs[64];
  int n = epoll_wait(epfd, evs, 64, timeout_ms);
  if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
  for (int i = 0; i < n; i++) {
    if (evs[i].data.ptr) on_event(evs[i].data.ptr, evs[i].events);
    else on_stdin();
  }
}

/* ------------------------------------------------------------ the run */

/* What each client runs once its connections are set up: the warm-up and
 * its line; the wait for the start line, serving the connections meanwhile
 * (poll_once watches stdin through epfd, whose events carry a NULL pointer
 * for it), so that they are as the window finds them in the node clients;
 * then the measured window, its records and its end line. */
static void run_warmup_and_window(int epfd, double warmup_s, double seconds, void (*run_phase)(double seconds, int measured), void (*poll_once)(void)) {
  if (warmup_s > 0) run_phase(warmup_s, 0);
  write_warm_line();
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) != 0) die("epoll on stdin: %s", strerror(errno));
  while (!stdin_line) poll_once();
  epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
  double cpu0 = cpu_us(), t0 = mono_ms();
  run_phase(seconds, 1);
  write_window(mono_ms() - t0, cpu_us() - cpu0);
}

/* ------------------------------------------------------------ addresses */

/* loadgen.ts's addresses: prefix, phase, ".", a counter in base 36, domain. */
static struct {
  const char *prefix, *domain, *warm_phase, *phase;
} addr;

static unsigned long long seq; /* one counter for the whole process, as loadgen.ts's */

/* Takes the address arguments (--email-prefix, --email-domain, --warm-phase,
 * --phase); 0 when k is not one of them. */
static int address_arg(const char *k, const char *v) {
  if (!strcmp(k, "--email-prefix")) addr.prefix = v;
  else if (!strcmp(k, "--email-domain")) addr.domain = v;
  else if (!strcmp(k, "--warm-phase")) addr.warm_phase = v;
  else if (!strcmp(k, "--phase")) addr.phase = v;
  else return 0;
  return 1;
}

/* A fresh address into out (EMAIL_MAX bytes); returns its length. */
static size_t fresh_email(char *out, int measured) {
  /* base 36 as JavaScript's Number.prototype.toString(36) writes it. */
  char digits[16];
  int n = 0;
  unsigned long long v = seq++;
  do {
    digits[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[v % 36];
    v /= 36;
  } while (v);
  char rev[16];
  for (int i = 0; i < n; i++) rev[i] = digits[n - 1 - i];
  int len = snprintf(out, EMAIL_MAX, "%s%s.%.*s%s", addr.prefix, measured ? addr.phase : addr.warm_phase, n, rev, addr.domain);
  if (len < 0 || len >= EMAIL_MAX) die("address too long");
  return (size_t)len;
}

/* JSON.stringify({ email }) into out (at least 2 × EMAIL_MAX + 12 bytes); the
 * bench's addresses hold nothing to escape, but quote and backslash are. */
static size_t json_email(uint8_t *out, const char *email, size_t email_len) {
  static const char head[] = "{\"email\":\"";
  size_t n = sizeof head - 1;
  memcpy(out, head, n);
  for (size_t i = 0; i < email_len; i++) {
    char ch = email[i];
    if (ch == '"' || ch == '\\') out[n++] = '\\';
    out[n++] = (uint8_t)ch;
  }
  memcpy(out + n, "\"}", 2);
  return n + 2;
}

#endif
