/*
 * smtpsink: the bench's SMTP sink in plain C. It stands in for the relay a
 * deployed service hands its mail to, which runs on another machine; here
 * it shares the service's two CPUs. smtp-server in the bench's node process
 * cost about 110 µs of CPU per mail at 1,500 mails/s, CPU the service and
 * Postgres did not get (see bench/RESULTS.md). This costs a small fraction.
 *
 * It speaks the part of SMTP a client that delivers mail needs: a greeting,
 * EHLO/HELO (offering PIPELINING, RFC 2920, as smtp-server does), MAIL FROM,
 * RCPT TO, DATA up to the "\r\n.\r\n" line, RSET, NOOP and QUIT; anything
 * else gets 502. Commands may arrive pipelined, several in one read; the
 * replies to one read leave in one write. Every mail is accepted and no
 * body is kept.
 *
 * It listens on 127.0.0.1 on a port of the kernel's choosing and writes
 * lines (tab-separated) on stdout for smtp-sink.ts:
 *   "L <port>"                   listening
 *   "C"                          a connection accepted
 *   "M <ms> <recipient>"         a mail received, one line per recipient,
 *                                 <ms> on CLOCK_MONOTONIC when its ending
 *                                 line arrived
 * It exits when stdin closes (the bench went away) or on SIGTERM.
 */
#include "gen-common.h"

#define LINE_MAX_BYTES 4096

typedef struct {
  int fd;
  buf_t in;          /* received bytes not yet handled */
  buf_t out;         /* replies not yet written */
  size_t out_off;
  buf_t rcpts;       /* the current mail's recipients, each ending in '\n' */
  int in_data;       /* between DATA's 354 and the ending line */
  int ending;        /* how much of "\r\n.\r\n" the message's last bytes matched */
  int quitting;      /* QUIT answered: close once the reply is out */
} conn_t;

static buf_t report; /* lines for stdout, written once per loop turn */

static void reply(conn_t *c, const char *text) { buf_add(&c->out, text, strlen(text)); }

/* "\r\n.\r\n" as a state machine; DATA's own line break counts as its start. */
static int next_ending(int state, char ch) {
  static const char END[] = "\r\n.\r\n";
  if (ch == END[state]) return state + 1;
  return ch == '\r' ? 1 : 0;
}

static int starts_with(const char *line, size_t n, const char *word) {
  size_t w = strlen(word);
  return n >= w && strncasecmp(line, word, w) == 0;
}

static void mail_received(conn_t *c) {
  double at = mono_ms();
  char *p = c->rcpts.p, *end = c->rcpts.p + c->rcpts.len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    buf_printf(&report, "M\t%.3f\t", at);
    buf_add_field(&report, p, (size_t)(nl - p));
    buf_add(&report, "\n", 1);
    p = nl + 1;
  }
  c->rcpts.len = 0;
  reply(c, "250 2.0.0 Ok: queued\r\n");
}

/* The address between < and >, or what follows the colon. */
static void add_recipient(conn_t *c, const char *arg, size_t n) {
  const char *lt = memchr(arg, '<', n);
  const char *gt = lt ? memchr(lt, '>', n - (size_t)(lt - arg)) : NULL;
  const char *from = lt && gt ? lt + 1 : arg;
  size_t len = lt && gt ? (size_t)(gt - lt - 1) : n;
  while (len > 0 && from[0] == ' ') from++, len--;
  buf_add(&c->rcpts, from, len);
  buf_add(&c->rcpts, "\n", 1);
}

static void command(conn_t *c, const char *line, size_t n) {
  if (starts_with(line, n, "EHLO")) {
    reply(c, "250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n");
  } else if (starts_with(line, n, "HELO")) {
    reply(c, "250 sink\r\n");
  } else if (starts_with(line, n, "MAIL FROM:")) {
    c->rcpts.len = 0;
    reply(c, "250 2.1.0 Ok\r\n");
  } else if (starts_with(line, n, "RCPT TO:")) {
    add_recipient(c, line + 8, n - 8);
    reply(c, "250 2.1.5 Ok\r\n");
  } else if (starts_with(line, n, "DATA")) {
    if (c->rcpts.len == 0) {
      reply(c, "503 5.5.1 Error: need RCPT command\r\n");
      return;
    }
    c->in_data = 1;
    c->ending = 2;
    reply(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
  } else if (starts_with(line, n, "RSET")) {
    c->rcpts.len = 0;
    reply(c, "250 2.0.0 Ok\r\n");
  } else if (starts_with(line, n, "NOOP")) {
    reply(c, "250 2.0.0 Ok\r\n");
  } else if (starts_with(line, n, "QUIT")) {
    reply(c, "221 2.0.0 Bye\r\n");
    c->quitting = 1;
  } else {
    reply(c, "502 5.5.2 Error: command not recognized\r\n");
  }
}

/* Handles every whole command and message part in c->in. */
static void handle_input(conn_t *c) {
  size_t at = 0;
  while (at < c->in.len && !c->quitting) {
    if (c->in_data) {
      while (at < c->in.len && c->ending < 5) c->ending = next_ending(c->ending, c->in.p[at++]);
      if (c->ending == 5) {
        c->in_data = 0;
        mail_received(c);
      }
      continue;
    }
    char *nl = memchr(c->in.p + at, '\n', c->in.len - at);
    if (!nl) break;
    size_t n = (size_t)(nl - (c->in.p + at));
    if (n > 0 && c->in.p[at + n - 1] == '\r') n--;
    command(c, c->in.p + at, n);
    at = (size_t)(nl - c->in.p) + 1;
  }
  memmove(c->in.p, c->in.p + at, c->in.len - at);
  c->in.len -= at;
  if (!c->in_data && c->in.len > LINE_MAX_BYTES) {
    reply(c, "500 5.5.2 Error: line too long\r\n");
    c->quitting = 1;
  }
}

static void drop(int ep, conn_t *c) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->in.p);
  free(c->out.p);
  free(c->rcpts.p);
  free(c);
}

/* Writes c's replies; 0: all out or waiting for room, -1: closed. */
static int flush_conn(int ep, conn_t *c) {
  if (write_pending(c->fd, &c->out, &c->out_off) < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN | (c->out.len ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
  if (c->quitting && c->out.len == 0) return -1;
  return 0;
}

static void on_readable(int ep, conn_t *c) {
  for (;;) {
    buf_reserve(&c->in, 65536);
    size_t room = c->in.cap - c->in.len;
    ssize_t n = read(c->fd, c->in.p + c->in.len, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {
      drop(ep, c);
      return;
    }
    c->in.len += (size_t)n;
    if ((size_t)n < room) break; /* the socket had no more */
  }
  handle_input(c);
  if (flush_conn(ep, c) < 0) drop(ep, c);
}

static void on_accept(int ep, int listener) {
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t *c = calloc(1, sizeof *c);
    if (!c) die("out of memory");
    c->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    buf_add(&report, "C\n", 2);
    reply(c, "220 sink ESMTP\r\n");
    if (flush_conn(ep, c) < 0) drop(ep, c);
  }
}

int main(void) {
  gen_name = "smtpsink";
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
  if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1024) != 0) die("listen: %s", strerror(errno));
  socklen_t len = sizeof addr;
  getsockname(listener, (struct sockaddr *)&addr, &len);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  /* Marked by pointers: NULL is stdin, &listener the listening socket. */
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  struct epoll_event in = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in);

  buf_printf(&report, "L\t%d\n", ntohs(addr.sin_port));
  write_all(1, report.p, report.len);
  report.len = 0;

  struct epoll_event events[64];
  for (;;) {
    int n = epoll_wait(ep, events, 64, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      void *who = events[i].data.ptr;
      if (who == NULL) {
        char scratch[256];
        if (read(0, scratch, sizeof scratch) <= 0) return 0; /* the bench is gone */
      } else if (who == &listener) {
        on_accept(ep, listener);
      } else if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(ep, who);
      } else if (flush_conn(ep, who) < 0) {
        drop(ep, who);
      }
    }
    if (report.len) {
      write_all(1, report.p, report.len);
      report.len = 0;
    }
  }
}
