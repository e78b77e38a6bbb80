/*
 * h2gen: the bench's HTTP/2 load generator for the send RPCs (connect-json-h2,
 * connect-binary, grpc), on libnghttp2.
 *
 * Why it exists: on the bench's 2-CPU machine the load generator shares the
 * CPUs with the service and Postgres, and the node:http2 client cost two to
 * three times autocannon's CPU per request, so the HTTP/2 routes partly
 * measured their client. h2load would be cheap enough but sends one fixed
 * body, and every send must go to a fresh address (see bench/loadgen.ts).
 *
 * It behaves as loadgen.ts's node:http2 client does, so the figures stay
 * comparable: h2c with prior knowledge, one connection per "connection" of the
 * spec, one stream in flight per connection (closed loop), the request
 * headers loadgen.ts passes in (the same as its h2Shape), a fresh address per
 * request (prefix, phase, base-36 counter, domain), success = :status 200 and,
 * for gRPC, grpc-status 0 (trailers, or headers of a trailers-only answer), a
 * 10 s timeout per request.
 *
 * It is driven by loadgen.ts over stdin/stdout with the line protocol of
 * gen-common.h, which h1gen.c (the HTTP/1.1 client) speaks too. The answer's
 * time is CLOCK_MONOTONIC in ms: loadgen.ts turns it into epoch ms on its
 * own clock (performance.timeOrigin + performance.now(), which is
 * CLOCK_MONOTONIC too), exactly as its node client stamps accepted sends, so
 * a step of the wall clock while the bench runs moves both the same way.
 * Records are kept in memory and written after the window so that writing
 * them does not compete with the requests; the CPU figure (getrusage, from
 * the start line to the last record written) is this process's share of the
 * load generator's CPU, which loadgen.ts adds to its own.
 *
 * Build: gcc -O2 -o h2gen h2gen.c -lnghttp2   (the bench does it at run time)
 * Usage: h2gen --host H --port P --authority A --path PATH --connections N
 *              --warmup S --seconds S --body json|proto|grpc --check http|grpc
 *              --email-prefix X --email-domain Y --warm-phase W --phase M
 *              [--header NAME VALUE]...
 */
#include "gen-common.h"

#include <nghttp2/nghttp2.h>

#define MAX_HEADERS 16

/* ------------------------------------------------------------ settings */

enum body_kind { BODY_JSON, BODY_PROTO, BODY_GRPC };

static struct {
  const char *host, *port, *authority, *path;
  int connections;
  double warmup_s, seconds;
  enum body_kind body;
  int check_grpc;
  /* Pseudo-headers first (HTTP/2 requires it), then loadgen's headers. */
  nghttp2_nv nv[MAX_HEADERS];
  size_t nvlen;
} cfg;

static nghttp2_nv make_nv(const char *name, const char *value) {
  /* The strings live as long as the process (argv or literals), so nghttp2
   * need not copy them for every request. */
  nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                   NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE};
  return nv;
}

static void parse_args(int argc, char **argv) {
  cfg.nv[cfg.nvlen++] = make_nv(":method", "POST");
  /* node:http2 sends :path, :authority and :scheme; the order among
   * pseudo-headers carries no meaning. */
  size_t path_at = cfg.nvlen++, authority_at = cfg.nvlen++;
  cfg.nv[cfg.nvlen++] = make_nv(":scheme", "http");
  for (int i = 1; i < argc; i++) {
    const char *k = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) die("%s needs a value", k);
    i++;
    if (!strcmp(k, "--host")) cfg.host = v;
    else if (!strcmp(k, "--port")) cfg.port = v;
    else if (!strcmp(k, "--authority")) cfg.authority = v;
    else if (!strcmp(k, "--path")) cfg.path = v;
    else if (!strcmp(k, "--connections")) cfg.connections = atoi(v);
    else if (!strcmp(k, "--warmup")) cfg.warmup_s = atof(v);
    else if (!strcmp(k, "--seconds")) cfg.seconds = atof(v);
    else if (address_arg(k, v)) continue;
    else if (!strcmp(k, "--check")) cfg.check_grpc = !strcmp(v, "grpc");
    else if (!strcmp(k, "--body")) {
      if (!strcmp(v, "json")) cfg.body = BODY_JSON;
      else if (!strcmp(v, "proto")) cfg.body = BODY_PROTO;
      else if (!strcmp(v, "grpc")) cfg.body = BODY_GRPC;
      else die("unknown body kind %s", v);
    } else if (!strcmp(k, "--header")) {
      if (i + 1 >= argc) die("--header needs a name and a value");
      if (cfg.nvlen == MAX_HEADERS) die("too many headers");
      cfg.nv[cfg.nvlen++] = make_nv(v, argv[++i]);
    } else die("unknown argument %s", k);
  }
  if (!cfg.host || !cfg.port || !cfg.path || !addr.prefix || !addr.domain || !addr.warm_phase || !addr.phase)
    die("--host, --port, --path, --email-prefix, --email-domain, --warm-phase and --phase are required");
  if (cfg.connections < 1) die("--connections must be at least 1");
  if (!cfg.authority) cfg.authority = cfg.host;
  cfg.nv[path_at] = make_nv(":path", cfg.path);
  cfg.nv[authority_at] = make_nv(":authority", cfg.authority);
}

/* ------------------------------------------------------------ connections */

typedef struct conn {
  int fd;
  nghttp2_session *session;
  buf_t out; /* serialised frames not yet written to the socket */
  size_t out_off;
  int want_out; /* EPOLLOUT registered */

  /* The one stream in flight (stream_id 0: none). */
  int32_t stream_id;
  int done; /* the stream closed; the main loop records it and starts the next */
  uint32_t close_code;
  int timed_out;
  double t0, deadline;
  int status;
  char grpc_status[16];
  char grpc_message[128];
  int retry_after;
  char detail_body[DETAIL_MAX];
  size_t detail_len;
  char email[EMAIL_MAX];
  size_t email_len;
  uint8_t body[2 * EMAIL_MAX + 16];
  size_t body_len, body_off;

  /* Reconnection after the server closed the connection. */
  int broken;
  double retry_at;
} conn_t;

static conn_t *conns;
static int epfd;
static int in_phase;           /* a phase is running: finished streams start new ones */
static double phase_end;

static void set_interest(conn_t *c, int out) {
  if (c->fd < 0 || c->want_out == out) return;
  struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = out;
}

/* Serialises everything nghttp2 has queued, then writes it in one go: one
 * write per request (HEADERS and DATA together) instead of one per frame. */
static int flush(conn_t *c) {
  if (c->fd < 0) return -1;
  for (;;) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n < 0) return -1;
    if (n == 0) break;
    buf_add(&c->out, data, (size_t)n);
  }
  if (write_pending(c->fd, &c->out, &c->out_off) != 0) return -1;
  set_interest(c, c->out.len > 0);
  return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length, uint32_t *flags, nghttp2_data_source *src, void *user) {
  (void)s, (void)stream_id, (void)user;
  conn_t *c = src->ptr;
  size_t n = c->body_len - c->body_off;
  if (n > length) n = length;
  memcpy(buf, c->body + c->body_off, n);
  c->body_off += n;
  if (c->body_off == c->body_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name, size_t namelen, const uint8_t *value, size_t valuelen,
                     uint8_t flags, void *user) {
  (void)s, (void)flags;
  conn_t *c = user;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->hd.stream_id != c->stream_id) return 0;
  /* Headers and trailers alike: a later value (the trailers') wins, as the
   * node client reads trailers first, then headers. */
#define IS(lit) (namelen == sizeof(lit) - 1 && !memcmp(name, lit, namelen))
  if (IS(":status")) {
    c->status = 0;
    for (size_t i = 0; i < valuelen; i++) c->status = c->status * 10 + (value[i] - '0');
  } else if (IS("grpc-status")) {
    snprintf(c->grpc_status, sizeof c->grpc_status, "%.*s", (int)valuelen, (const char *)value);
  } else if (IS("grpc-message")) {
    snprintf(c->grpc_message, sizeof c->grpc_message, "%.*s", (int)valuelen, (const char *)value);
  } else if (IS("retry-after")) {
    c->retry_after = 1;
  }
#undef IS
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len, void *user) {
  (void)s, (void)flags;
  conn_t *c = user;
  /* Only a failed answer's body is kept, for the error text. */
  if (stream_id != c->stream_id || c->status == 200) return 0;
  size_t room = DETAIL_MAX - c->detail_len;
  if (len > room) len = room;
  memcpy(c->detail_body + c->detail_len, data, len);
  c->detail_len += len;
  return 0;
}

static int on_close(nghttp2_session *s, int32_t stream_id, uint32_t code, void *user) {
  (void)s;
  conn_t *c = user;
  if (stream_id != c->stream_id) return 0;
  /* Recorded by the main loop, which may then start the next request; a
   * request is not submitted from inside nghttp2's receive path. */
  c->done = 1;
  c->close_code = code;
  return 0;
}

static nghttp2_session_callbacks *callbacks;

static void conn_close(conn_t *c) {
  if (c->session) nghttp2_session_del(c->session);
  c->session = NULL;
  if (c->fd >= 0) close(c->fd);
  c->fd = -1;
  c->out.len = c->out_off = 0;
  c->want_out = 0;
}

/* Opens a connection with prior knowledge (no upgrade): the client preface
 * and an empty SETTINGS frame go out first, as node:http2 does for h2c. */
static int conn_open(conn_t *c) {
  int fd = tcp_connect(cfg.host, cfg.port);
  if (fd < 0) return -1;
  c->fd = fd;
  if (nghttp2_session_client_new(&c->session, callbacks, c) != 0) die("nghttp2_session_client_new failed");
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, NULL, 0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
  c->want_out = 0;
  c->broken = 0;
  return flush(c);
}

/* ------------------------------------------------------------ requests */

static void next_email(conn_t *c) {
  c->email_len = fresh_email(c->email, in_phase == 2);
  if (c->email_len > 127) die("address too long for the one-byte protobuf length");
}

/* LoginOrCreateEmailOtpRequest { string email = 1 }: tag 0x0a, a one-byte
 * length (addresses are under 128 bytes), the bytes. */
static size_t put_proto(uint8_t *p, const conn_t *c) {
  p[0] = 0x0a;
  p[1] = (uint8_t)c->email_len;
  memcpy(p + 2, c->email, c->email_len);
  return 2 + c->email_len;
}

static void encode_body(conn_t *c) {
  switch (cfg.body) {
  case BODY_PROTO:
    c->body_len = put_proto(c->body, c);
    break;
  case BODY_GRPC: {
    /* The gRPC length-prefixed message: not compressed, then a 4-byte big-endian length. */
    size_t n = put_proto(c->body + 5, c);
    c->body[0] = 0;
    c->body[1] = (uint8_t)(n >> 24);
    c->body[2] = (uint8_t)(n >> 16);
    c->body[3] = (uint8_t)(n >> 8);
    c->body[4] = (uint8_t)n;
    c->body_len = 5 + n;
    break;
  }
  case BODY_JSON:
    c->body_len = json_email(c->body, c->email, c->email_len);
    break;
  }
  c->body_off = 0;
}

static void start_request(conn_t *c) {
  next_email(c);
  encode_body(c);
  c->status = 0;
  c->grpc_status[0] = c->grpc_message[0] = 0;
  c->retry_after = 0;
  c->detail_len = 0;
  c->done = 0;
  c->timed_out = 0;
  nghttp2_data_provider prd = {.source.ptr = c, .read_callback = read_body};
  c->t0 = mono_ms();
  c->deadline = c->t0 + REQUEST_TIMEOUT_MS;
  int32_t id = nghttp2_submit_request(c->session, NULL, cfg.nv, cfg.nvlen, &prd, NULL);
  if (id < 0) {
    record_fail("transport_error", 0, 0, nghttp2_strerror(id), strlen(nghttp2_strerror(id)));
    c->broken = 1;
    c->retry_at = mono_ms() + 10;
    return;
  }
  c->stream_id = id;
  if (flush(c) != 0) c->broken = 1;
}

/* The closed stream's outcome, judged as loadgen.ts's h2Request judges it. */
static void finish_request(conn_t *c, const char *transport_detail) {
  double now = mono_ms(), ms = now - c->t0;
  c->stream_id = 0;
  c->done = 0;
  if (c->status == 0) {
    const char *d = transport_detail ? transport_detail : c->timed_out ? "timed out after 10 s without an answer" : "stream closed without an answer";
    record_fail("transport_error", ms, 0, d, strlen(d));
    return;
  }
  char status[32];
  int ok;
  if (cfg.check_grpc) {
    ok = c->status == 200 && !strcmp(c->grpc_status, "0");
    if (c->grpc_status[0]) snprintf(status, sizeof status, "grpc_%s", c->grpc_status);
    else snprintf(status, sizeof status, "grpc_%d", c->status);
  } else {
    ok = c->status == 200;
    snprintf(status, sizeof status, "%d", c->status);
  }
  if (ok) {
    record_ok(c->email, c->email_len, now, ms);
    return;
  }
  /* The node client's detail: grpc-message, a space, the start of the body. */
  char detail[sizeof c->grpc_message + 1 + DETAIL_MAX];
  int n = snprintf(detail, sizeof detail, "%s %.*s", c->grpc_message, (int)c->detail_len, c->detail_body);
  record_fail(status, ms, c->retry_after, detail, n < 0 ? 0 : (size_t)n);
}

/* The server closed the connection or it failed: the request in flight fails
 * as a transport error, and the connection is opened again. */
static void conn_broke(conn_t *c, const char *why) {
  if (c->stream_id) finish_request(c, why);
  conn_close(c);
  c->broken = 1;
  c->retry_at = mono_ms();
}

static void after_io(conn_t *c) {
  if (c->done) finish_request(c, NULL);
  if (c->fd >= 0 && !nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
    conn_broke(c, "session ended (GOAWAY)");
    return;
  }
  if (in_phase && !c->stream_id && !c->broken && mono_ms() < phase_end) start_request(c);
  else if (c->fd >= 0 && flush(c) != 0) conn_broke(c, "write failed");
}

static void on_readable(conn_t *c) {
  static uint8_t buf[65536];
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      conn_broke(c, n == 0 ? "connection closed by the server" : strerror(errno));
      return;
    }
    ssize_t used = nghttp2_session_mem_recv(c->session, buf, (size_t)n);
    if (used < 0) {
      conn_broke(c, nghttp2_strerror((int)used));
      return;
    }
    /* A short read means the socket is drained; level-triggered epoll
     * reports anything that arrives later. */
    if ((size_t)n < sizeof buf) break;
  }
  after_io(c);
}

/* ------------------------------------------------------------ the loop */

static void on_event(void *conn, uint32_t events) {
  conn_t *c = conn;
  if (c->fd < 0) return;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
  else if (events & EPOLLOUT) after_io(c);
}

/* One pass: wait for I/O or the next deadline, handle it, time streams out,
 * reopen broken connections. */
static void poll_once(void) {
  /* Wake for the next stream timeout or reconnection, not for the end of the
   * phase: a stream that closes after it simply starts no successor, and
   * waking for a time already past would spin while the last streams finish. */
  double now = mono_ms(), next = now + 1000;
  for (int i = 0; i < cfg.connections; i++) {
    conn_t *c = &conns[i];
    if (c->stream_id && c->deadline < next) next = c->deadline;
    if (c->broken && in_phase && now < phase_end && c->retry_at < next) next = c->retry_at;
  }
  int timeout = next > now ? (int)(next - now) + 1 : 0;
  wait_events(epfd, timeout, on_event);
  now = mono_ms();
  for (int i = 0; i < cfg.connections; i++) {
    conn_t *c = &conns[i];
    if (c->stream_id && !c->timed_out && now >= c->deadline) {
      /* As the node client's stream.close(NGHTTP2_CANCEL): the stream ends
       * with RST_STREAM, and on_close records what had arrived by then. */
      c->timed_out = 1;
      nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_CANCEL);
      if (flush(c) != 0) conn_broke(c, "write failed");
      else after_io(c);
    }
    if (c->broken && in_phase && now >= c->retry_at && now < phase_end) {
      if (conn_open(c) != 0) {
        /* Counted as a failed request, so a dead server shows as errors. */
        conn_close(c);
        c->broken = 1;
        c->retry_at = now + 10;
        record_fail("transport_error", 0, 0, "connect failed", 14);
      } else {
        start_request(c);
      }
    }
  }
}

/* Closed loop on every connection until the phase ends and the last streams close. */
static void run_phase(double seconds, int measured) {
  rec_reset(measured);
  in_phase = measured ? 2 : 1;
  phase_end = mono_ms() + seconds * 1000;
  for (int i = 0; i < cfg.connections; i++)
    if (!conns[i].broken && !conns[i].stream_id) start_request(&conns[i]);
  for (;;) {
    int busy = 0;
    for (int i = 0; i < cfg.connections; i++) busy |= conns[i].stream_id != 0;
    if (!busy && mono_ms() >= phase_end) break;
    poll_once();
  }
  in_phase = 0;
}

int main(int argc, char **argv) {
  gen_name = "h2gen";
  parse_args(argc, argv);
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_close);

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  conns = calloc((size_t)cfg.connections, sizeof *conns);
  if (!conns) die("out of memory");
  /* All connections first, as loadgen.ts opens its sessions before the warm-up. */
  for (int i = 0; i < cfg.connections; i++) {
    conns[i].fd = -1;
    if (conn_open(&conns[i]) != 0) die("cannot connect to %s:%s: %s", cfg.host, cfg.port, strerror(errno));
  }

  run_warmup_and_window(epfd, cfg.warmup_s, cfg.seconds, run_phase, poll_once);

  for (int i = 0; i < cfg.connections; i++) {
    conn_close(&conns[i]);
    free(conns[i].out.p);
  }
  free(conns);
  free(stdin_buf.p);
  nghttp2_session_callbacks_del(callbacks);
  return 0;
}
