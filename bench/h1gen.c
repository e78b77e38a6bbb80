/*
 * h1gen: the bench's HTTP/1.1 load generator for the send routes (legacy
 * REST, Stytch REST, Connect JSON), the healthz floor, and the paced and
 * overload phases.
 *
 * Why it exists: the bench's 2 CPUs are shared by the service, Postgres and
 * the load generator. autocannon cost 90-120 µs of CPU per request and the
 * node:http client of the open-loop phases 116-152 µs, CPU the service did
 * not get; under overload, a starved node client also sent its requests
 * late. h2gen.c showed that a small C client costs a fraction of that.
 *
 * Two modes, both over keep-alive HTTP/1.1 with a fresh address per request
 * and a 10 s timeout per request, success = a 2xx status:
 *  - closed loop (no --rate): --connections connections, one request in
 *    flight on each, as autocannon with pipelining 1 drives them. Latency is
 *    from the request's write to its answer.
 *  - open loop (--rate R): requests due evenly spaced, R per second, for the
 *    warm-up and for the window. A request due goes out on an idle
 *    connection; while none is idle, a new one is opened, up to
 *    --max-sockets; beyond that it waits for the first to come free (as
 *    node's http.Agent queues it). Latency is from the moment the request was
 *    due, so a request that waited for a socket, or for this process,
 *    counts that wait.
 * A 429 or 503 answer is a refusal; whether it carried Retry-After is
 * reported. It speaks gen-common.h's line protocol with loadgen.ts.
 *
 * Build: gcc -O2 -o h1gen h1gen.c   (the bench does it at run time)
 * Usage: h1gen --host H --port P --authority A --method GET|POST --path PATH
 *              --connections N --warmup S --seconds S [--rate R --max-sockets M]
 *              [--body json] --email-prefix X --email-domain Y
 *              --warm-phase W --phase M [--header NAME VALUE]...
 * PATH may hold "{email}", replaced by the address percent-encoded as
 * encodeURIComponent does; --body json sends {"email": …} with its length.
 */
#include "gen-common.h"

#include <strings.h>

/* An answer's head larger than this is not one the service writes. */
#define MAX_RESPONSE (64 * 1024)

/* ------------------------------------------------------------ settings */

static struct {
  const char *host, *port, *authority, *method;
  const char *path_before, *path_after; /* the path around "{email}" */
  size_t before_len;
  int has_email_in_path;
  int connections, max_sockets;
  double warmup_s, seconds, rate;
  int body_json;
  buf_t head; /* the header lines every request carries */
} cfg;

static void parse_args(int argc, char **argv) {
  const char *path = NULL;
  buf_t extra = {0};
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) die("%s needs a value", k);
    i++;
    if (!strcmp(k, "--host")) cfg.host = v;
    else if (!strcmp(k, "--port")) cfg.port = v;
    else if (!strcmp(k, "--authority")) cfg.authority = v;
    else if (!strcmp(k, "--method")) cfg.method = v;
    else if (!strcmp(k, "--path")) path = v;
    else if (!strcmp(k, "--connections")) cfg.connections = atoi(v);
    else if (!strcmp(k, "--max-sockets")) cfg.max_sockets = atoi(v);
    else if (!strcmp(k, "--warmup")) cfg.warmup_s = atof(v);
    else if (!strcmp(k, "--seconds")) cfg.seconds = atof(v);
    else if (!strcmp(k, "--rate")) cfg.rate = atof(v);
    else if (address_arg(k, v)) continue;
    else if (!strcmp(k, "--body")) {
      if (strcmp(v, "json")) die("unknown body kind %s", v);
      cfg.body_json = 1;
    } else if (!strcmp(k, "--header")) {
      if (i + 1 >= argc) die("--header needs a name and a value");
      buf_printf(&extra, "%s: %s\r\n", v, argv[++i]);
    } else die("unknown argument %s", k);
  }
  if (!cfg.host || !cfg.port || !cfg.method || !path || !addr.prefix || !addr.domain || !addr.warm_phase || !addr.phase)
    die("--host, --port, --method, --path, --email-prefix, --email-domain, --warm-phase and --phase are required");
  if (cfg.connections < 1) die("--connections must be at least 1");
  if (cfg.rate < 0) die("--rate must not be negative");
  if (cfg.rate > 0 && cfg.max_sockets < 1) cfg.max_sockets = cfg.connections;
  if (!cfg.authority) cfg.authority = cfg.host;
  const char *at = strstr(path, "{email}");
  cfg.path_before = path;
  cfg.before_len = at ? (size_t)(at - path) : strlen(path);
  cfg.path_after = at ? at + strlen("{email}") : "";
  cfg.has_email_in_path = at != NULL;
  buf_printf(&cfg.head, "host: %s\r\n", cfg.authority);
  if (extra.len) buf_add(&cfg.head, extra.p, extra.len);
  free(extra.p);
}

/* ------------------------------------------------------------ connections */

typedef struct conn {
  int fd;
  int busy; /* a request is in flight */
  buf_t out; /* the request not yet written */
  size_t out_off;
  int want_out; /* EPOLLOUT registered */
  buf_t in;     /* the answer so far */
  double t0, deadline;
  char email[EMAIL_MAX];
  size_t email_len;
  /* Closed loop: reopened after the server closed it or it failed. */
  int broken;
  double retry_at;
} conn_t;

static conn_t *conns;
static int nslots; /* closed loop: --connections; open loop: --max-sockets */
static int epfd;
static int in_phase; /* 1: warm-up, 2: the measured window */
static double phase_start, phase_end;

/* Open loop: the phase's requests are numbered; request i is due at
 * phase_start + i / rate. Those due but not yet sent wait in order, so the
 * queue is just the range [sent, due). */
static long total, due, sent;

static double due_at(long i) { return phase_start + (double)i * 1000.0 / cfg.rate; }

static void set_interest(conn_t *c, int out) {
  if (c->fd < 0 || c->want_out == out) return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = out;
}

static void conn_close(conn_t *c) {
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->busy = 0;
  c->out.len = c->out_off = 0;
  c->in.len = 0;
  c->want_out = 0;
}

static int conn_open(conn_t *c) {
  int fd = tcp_connect(cfg.host, cfg.port);
  if (fd < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  c->fd = fd;
  c->want_out = 0;
  c->broken = 0;
  return 0;
}

static int flush(conn_t *c) {
  if (write_pending(c->fd, &c->out, &c->out_off) != 0) return -1;
  set_interest(c, c->out.len > 0);
  return 0;
}

/* ------------------------------------------------------------ requests */

/* encodeURIComponent: every byte but A-Z a-z 0-9 - _ . ! ~ * ' ( ) as %XX. */
static void add_uri_component(buf_t *b, const char *s, size_t n) {
  buf_reserve(b, 3 * n);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("-_.!~*'()", ch)) b->p[b->len++] = (char)ch;
    else b->len += (size_t)sprintf(b->p + b->len, "%%%02X", ch);
  }
}

static void record_failure_of(conn_t *c, const char *why);

/* Writes the next request on an idle, open connection; t0 is when its latency starts. */
static void send_request(conn_t *c, double t0) {
  c->email_len = fresh_email(c->email, in_phase == 2);
  buf_t *o = &c->out;
  o->len = c->out_off = 0;
  buf_printf(o, "%s ", cfg.method);
  buf_add(o, cfg.path_before, cfg.before_len);
  if (cfg.has_email_in_path) {
    add_uri_component(o, c->email, c->email_len);
    buf_add(o, cfg.path_after, strlen(cfg.path_after));
  }
  buf_add(o, " HTTP/1.1\r\n", 11);
  buf_add(o, cfg.head.p, cfg.head.len);
  if (cfg.body_json) {
    uint8_t body[2 * EMAIL_MAX + 16];
    size_t n = json_email(body, c->email, c->email_len);
    buf_printf(o, "content-length: %zu\r\n\r\n", n);
    buf_add(o, body, n);
  } else buf_add(o, "\r\n", 2);
  c->in.len = 0;
  c->busy = 1;
  c->t0 = t0;
  c->deadline = mono_ms() + REQUEST_TIMEOUT_MS;
  if (flush(c) != 0) record_failure_of(c, "write failed");
}

/* The request in flight failed at the transport: recorded as the node clients
 * record it, and the connection is closed (the closed loop reopens it). */
static void record_failure_of(conn_t *c, const char *why) {
  if (c->busy) record_fail("transport_error", mono_ms() - c->t0, 0, why, strlen(why));
  conn_close(c);
  c->broken = 1;
  c->retry_at = mono_ms() + 10;
}

/* ------------------------------------------------------------ answers */

typedef struct {
  int status, retry_after, close;
  char body[DETAIL_MAX];
  size_t body_len;
} answer_t;

static int name_is(const char *p, size_t n, const char *lit) { return n == strlen(lit) && !strncasecmp(p, lit, n); }

static void keep_body(answer_t *a, const char *p, size_t n) {
  size_t room = DETAIL_MAX - a->body_len;
  if (n > room) n = room;
  memcpy(a->body + a->body_len, p, n);
  a->body_len += n;
}

/* 1: a whole answer is in p[0..len) (filled in a), 0: not yet, -1: not HTTP. */
static int parse_answer(const char *p, size_t len, answer_t *a) {
  const char *end = memmem(p, len, "\r\n\r\n", 4);
  if (!end) return len > MAX_RESPONSE ? -1 : 0;
  if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0) return -1;
  a->status = atoi(p + 9);
  a->retry_after = a->close = 0;
  a->body_len = 0;
  long length = -1;
  int chunked = 0;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  const char *line = nl ? nl + 1 : end + 2; /* the header lines, after the status line */
  while (line < end + 2) {
    const char *eol = memmem(line, (size_t)(end + 2 - line), "\r\n", 2);
    if (!eol) break;
    const char *colon = memchr(line, ':', (size_t)(eol - line));
    if (colon) {
      const char *v = colon + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      size_t nlen = (size_t)(colon - line), vlen = (size_t)(eol - v);
      if (name_is(line, nlen, "content-length")) length = strtol(v, NULL, 10);
      else if (name_is(line, nlen, "transfer-encoding")) chunked = vlen >= 7 && !strncasecmp(eol - 7, "chunked", 7);
      else if (name_is(line, nlen, "retry-after")) a->retry_after = 1;
      else if (name_is(line, nlen, "connection")) a->close = vlen == 5 && !strncasecmp(v, "close", 5);
    }
    line = eol + 2;
  }
  const char *body = end + 4, *stop = p + len;
  if (chunked) {
    for (const char *q = body;;) {
      const char *eol = memmem(q, (size_t)(stop - q), "\r\n", 2);
      if (!eol) return 0;
      unsigned long size = strtoul(q, NULL, 16);
      q = eol + 2;
      if (size == 0) return stop - q >= 2 ? 1 : 0; /* no trailers: the final CRLF */
      if ((size_t)(stop - q) < size + 2) return 0;
      keep_body(a, q, size);
      q += size + 2;
    }
  }
  /* The service always sends a length or chunks; without either the body is
   * whatever came with the head. */
  if (length < 0) length = stop - body;
  if (stop - body < length) return 0;
  keep_body(a, body, (size_t)length);
  return 1;
}

static void finish(conn_t *c, const answer_t *a) {
  double now = mono_ms(), ms = now - c->t0;
  c->busy = 0;
  c->in.len = 0;
  if (a->status >= 200 && a->status < 300) record_ok(c->email, c->email_len, now, ms);
  else {
    char status[16];
    snprintf(status, sizeof status, "%d", a->status);
    record_fail(status, ms, a->retry_after, a->body, a->body_len);
  }
  if (a->close) conn_close(c), c->broken = 1, c->retry_at = now;
}

static void on_readable(conn_t *c) {
  const char *eof = NULL;
  for (;;) {
    buf_reserve(&c->in, 16384);
    ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      eof = n == 0 ? "connection closed by the server" : strerror(errno);
      break;
    }
    c->in.len += (size_t)n;
    if (c->in.len < c->in.cap) break;
  }
  if (c->busy) {
    answer_t a;
    int r = parse_answer(c->in.p, c->in.len, &a);
    if (r < 0) {
      record_failure_of(c, "not an HTTP/1.1 answer");
      return;
    }
    if (r > 0) finish(c, &a);
  } else c->in.len = 0; /* nothing is owed on an idle connection */
  /* An idle connection the server closed is simply gone; a request in flight
   * on it fails, as "socket hang up" does in node. */
  if (eof && c->fd >= 0) record_failure_of(c, eof);
}

/* ------------------------------------------------------------ scheduling */

/* Closed loop: every idle connection starts its next request while the phase
 * runs. Open loop: requests due go out in order on idle connections, opening
 * new ones up to --max-sockets. */
static void dispatch(void) {
  double now = mono_ms();
  if (!in_phase) return;
  if (cfg.rate <= 0) {
    if (now >= phase_end) return;
    for (int i = 0; i < nslots; i++) {
      conn_t *c = &conns[i];
      if (c->broken && now >= c->retry_at) {
        if (conn_open(c) != 0) {
          /* Counted as a failed request, so a dead server shows as errors. */
          c->broken = 1;
          c->retry_at = now + 10;
          record_fail("transport_error", 0, 0, "connect failed", 14);
          continue;
        }
      }
      if (c->fd >= 0 && !c->busy) send_request(c, mono_ms());
    }
    return;
  }
  while (due < total && due_at(due) <= now) due++;
  for (int i = 0; i < nslots && sent < due; i++) {
    conn_t *c = &conns[i];
    if (c->fd >= 0 && !c->busy) send_request(c, due_at(sent++));
  }
  for (int i = 0; i < nslots && sent < due; i++) {
    conn_t *c = &conns[i];
    if (c->fd >= 0) continue;
    if (conn_open(c) != 0) {
      double t = due_at(sent++);
      record_fail("transport_error", mono_ms() - t, 0, "connect failed", 14);
      continue;
    }
    send_request(c, due_at(sent++));
  }
}

static int any_busy(void) {
  for (int i = 0; i < nslots; i++)
    if (conns[i].busy) return 1;
  return 0;
}

static void on_event(void *conn, uint32_t events) {
  conn_t *c = conn;
  if (c->fd < 0) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
  else if ((events & EPOLLOUT) && flush(c) != 0) record_failure_of(c, "write failed");
}

/* One pass: wait for I/O, the next due request or the next deadline. */
static void poll_once(void) {
  double now = mono_ms(), next = now + 1000;
  for (int i = 0; i < nslots; i++) {
    conn_t *c = &conns[i];
    if (c->busy && c->deadline < next) next = c->deadline;
    if (c->broken && in_phase && cfg.rate <= 0 && now < phase_end && c->retry_at < next) next = c->retry_at;
  }
  if (in_phase && cfg.rate > 0 && due < total && due_at(due) < next) next = due_at(due);
  /* Whole milliseconds, rounded up: a request goes out at most 1 ms late
   * (its latency counts from when it was due), and the loop never spins. */
  double wait = next - now;
  int timeout = wait <= 0 ? 0 : (int)wait + 1;
  wait_events(epfd, timeout, on_event);
  now = mono_ms();
  for (int i = 0; i < nslots; i++) {
    conn_t *c = &conns[i];
    if (c->busy && now >= c->deadline) record_failure_of(c, "timed out after 10 s without an answer");
  }
  dispatch();
}

static void run_phase(double seconds, int measured) {
  rec_reset(measured);
  in_phase = measured ? 2 : 1;
  phase_start = mono_ms();
  phase_end = phase_start + seconds * 1000;
  total = cfg.rate > 0 ? (long)(cfg.rate * seconds + 0.5) : 0;
  due = sent = 0;
  dispatch();
  for (;;) {
    int more = cfg.rate > 0 ? sent < total : mono_ms() < phase_end;
    if (!more && !any_busy()) break;
    poll_once();
  }
  in_phase = 0;
}

int main(int argc, char **argv) {
  gen_name = "h1gen";
  parse_args(argc, argv);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  nslots = cfg.rate > 0 ? cfg.max_sockets : cfg.connections;
  conns = calloc((size_t)nslots, sizeof *conns);
  if (!conns) die("out of memory");
  for (int i = 0; i < nslots; i++) conns[i].fd = -1;
  /* The closed loop opens every connection first, as autocannon does; the
   * open loop opens them as requests need them, as node's http.Agent does. */
  if (cfg.rate <= 0)
    for (int i = 0; i < nslots; i++)
      if (conn_open(&conns[i]) != 0) die("cannot connect to %s:%s: %s", cfg.host, cfg.port, strerror(errno));

  run_warmup_and_window(epfd, cfg.warmup_s, cfg.seconds, run_phase, poll_once);

  for (int i = 0; i < nslots; i++) {
    conn_close(&conns[i]);
    free(conns[i].out.p);
    free(conns[i].in.p);
  }
  free(conns);
  free(cfg.head.p);
  free(stdin_buf.p);
  return 0;
}
