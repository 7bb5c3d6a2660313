/*
 * Batched UDP for the DNS server: one recvmmsg(2) and one sendmmsg(2) per batch of datagrams, and
 * one call into JavaScript per batch, where Node's dgram module makes a recvmsg, a sendmsg, a
 * receive buffer, an address object and a JavaScript callback per datagram.
 *
 * The JavaScript side owns three typed arrays shared with this code: `in` (slots of IN_SLOT octets,
 * the datagrams received), `out` (slots of OUT_SLOT octets, the answers) and `meta` (an Int32Array,
 * per slot: the received length, -1 when the datagram did not fit its slot, then the answer's
 * length that JavaScript writes back, 0 for no answer). The sender's address never leaves C: the
 * answer in out slot i goes to the sender of in slot i.
 *
 * Exported (N-API, so it loads in the main thread and in worker threads alike):
 *   open(host, port, reusePort, in, out, meta, onBatch) -> [handle, boundPort]   throws on failure
 *   close(handle)
 *   stats(handle) -> [received, sent, truncated, sendDropped]
 * onBatch(n) is called (through napi_make_callback, so ticks and microtasks run after it) with the
 * number of datagrams in slots 0..n-1; when it returns, the answers it wrote are sent.
 *
 * Readiness comes from a libuv poll handle on Node's own event loop: no thread of its own.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SLOTS 64
#define IN_SLOT 65536
#define OUT_SLOT 2048
/* Batches handled per readiness event before the loop gets a turn (timers, TCP, zone changes). */
#define ROUNDS_MAX 8
#define SOCKET_BUFFER_OCTETS (4 * 1024 * 1024)

typedef struct {
  napi_env env;
  uv_poll_t poll;
  int fd;
  int closing;   /* stop() ran: fd closed, handle closing */
  int closed;    /* the handle's close callback ran */
  int finalized; /* JavaScript's handle object was collected */
  int teardown;  /* the environment is going */
  uint8_t *in;
  uint8_t *out;
  int32_t *meta;
  napi_ref in_ref, out_ref, meta_ref, cb_ref;
  napi_async_context actx;
  struct mmsghdr rmsgs[SLOTS];
  struct mmsghdr smsgs[SLOTS];
  struct iovec riov[SLOTS];
  struct iovec siov[SLOTS];
  struct sockaddr_storage addrs[SLOTS];
  double received, sent, truncated, send_dropped;
} batch_t;

static void throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, "DNS_UDP_BATCH", msg);
}

static int typed_array(napi_env env, napi_value v, napi_typedarray_type want, size_t min_octets, void **data) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type t;
  size_t len, offset;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &t, &len, data, &ab, &offset) != napi_ok) return 0;
  size_t elem = t == napi_int32_array ? 4 : 1;
  return t == want && len * elem >= min_octets;
}

static void on_readable(uv_poll_t *p, int status, int events);
static void env_teardown(void *arg);
static void on_finalize(napi_env env, void *data, void *hint);

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 7) {
    napi_throw_type_error(env, "DNS_UDP_BATCH", "open(host, port, reusePort, in, out, meta, onBatch)");
    return NULL;
  }
  char host[64];
  size_t host_len;
  int32_t port;
  bool reuse;
  napi_valuetype cbt;
  void *in, *out, *meta;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len) != napi_ok ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535 ||
      napi_get_value_bool(env, argv[2], &reuse) != napi_ok ||
      !typed_array(env, argv[3], napi_uint8_array, (size_t)SLOTS * IN_SLOT, &in) ||
      !typed_array(env, argv[4], napi_uint8_array, (size_t)SLOTS * OUT_SLOT, &out) ||
      !typed_array(env, argv[5], napi_int32_array, (size_t)SLOTS * 2 * 4, &meta) ||
      napi_typeof(env, argv[6], &cbt) != napi_ok || cbt != napi_function) {
    napi_throw_type_error(env, "DNS_UDP_BATCH", "open: bad arguments");
    return NULL;
  }

  struct sockaddr_storage ss;
  socklen_t ss_len;
  memset(&ss, 0, sizeof ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    ss_len = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    ss_len = sizeof *a6;
  } else {
    napi_throw_type_error(env, "DNS_UDP_BATCH", "open: host is not an IP address");
    return NULL;
  }

  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  int one = 1, zero = 0, size = SOCKET_BUFFER_OCTETS;
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* dual stack, as node:dgram */
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "SO_REUSEPORT", e);
    return NULL;
  }
  /* The kernel may cap these (net.core.rmem_max); the defaults still work. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  if (bind(fd, (struct sockaddr *)&ss, ss_len) != 0) {
    int e = errno;
    close(fd);
    throw_errno(env, "bind", e);
    return NULL;
  }
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof bound;
  getsockname(fd, (struct sockaddr *)&bound, &bound_len);
  int bound_port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port : ((struct sockaddr_in *)&bound)->sin_port);

  batch_t *b = calloc(1, sizeof *b);
  if (b == NULL) {
    close(fd);
    napi_throw_error(env, "DNS_UDP_BATCH", "out of memory");
    return NULL;
  }
  b->env = env;
  b->fd = fd;
  b->in = in;
  b->out = out;
  b->meta = meta;
  napi_create_reference(env, argv[3], 1, &b->in_ref);
  napi_create_reference(env, argv[4], 1, &b->out_ref);
  napi_create_reference(env, argv[5], 1, &b->meta_ref);
  napi_create_reference(env, argv[6], 1, &b->cb_ref);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "NexusDnsUdpBatch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &b->actx);
  for (int i = 0; i < SLOTS; i++) {
    b->riov[i].iov_base = b->in + (size_t)i * IN_SLOT;
    b->riov[i].iov_len = IN_SLOT;
    b->rmsgs[i].msg_hdr.msg_iov = &b->riov[i];
    b->rmsgs[i].msg_hdr.msg_iovlen = 1;
    b->rmsgs[i].msg_hdr.msg_name = &b->addrs[i];
  }

  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &b->poll, fd);
  b->poll.data = b;
  uv_poll_start(&b->poll, UV_READABLE, on_readable);
  napi_add_env_cleanup_hook(env, env_teardown, b);

  napi_value handle, result, port_v;
  napi_create_external(env, b, on_finalize, NULL, &handle);
  napi_create_int32(env, bound_port, &port_v);
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, handle);
  napi_set_element(env, result, 1, port_v);
  return result;
}

/* Hands slots 0..n-1 to JavaScript; false when the socket was closed meanwhile. */
static int call_js(batch_t *b, int n) {
  napi_env env = b->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv, arg, result;
  napi_get_reference_value(env, b->cb_ref, &cb);
  napi_get_global(env, &recv);
  napi_create_int32(env, n, &arg);
  if (napi_make_callback(env, b->actx, recv, cb, 1, &arg, &result) == napi_pending_exception) {
    /*
     * The callback threw (udp.ts's catches its own faults; ticks and microtasks run after it report
     * theirs themselves): uncaught, as after any I/O callback, and the answers it wrote go out.
     */
    napi_value e;
    if (napi_get_and_clear_last_exception(env, &e) == napi_ok) napi_fatal_exception(env, e);
  }
  napi_close_handle_scope(env, scope);
  return b->closing ? 0 : 1;
}

static void send_answers(batch_t *b, int n) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    int32_t len = b->meta[2 * i + 1];
    if (len <= 0) continue;
    if (len > OUT_SLOT) {
      b->send_dropped++;
      continue;
    }
    b->siov[m].iov_base = b->out + (size_t)i * OUT_SLOT;
    b->siov[m].iov_len = (size_t)len;
    struct msghdr *h = &b->smsgs[m].msg_hdr;
    h->msg_name = &b->addrs[i];
    h->msg_namelen = b->rmsgs[i].msg_hdr.msg_namelen;
    h->msg_iov = &b->siov[m];
    h->msg_iovlen = 1;
    h->msg_control = NULL;
    h->msg_controllen = 0;
    h->msg_flags = 0;
    m++;
  }
  int done = 0;
  while (done < m) {
    int r = sendmmsg(b->fd, b->smsgs + done, (unsigned)(m - done), MSG_DONTWAIT);
    if (r > 0) {
      done += r;
      b->sent += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      b->send_dropped += m - done; /* the send buffer is full: UDP drops, as any server does */
      return;
    } else {
      b->send_dropped++; /* this destination failed (unreachable, refused): skip it */
      done++;
    }
  }
}

static void on_readable(uv_poll_t *p, int status, int events) {
  (void)events;
  batch_t *b = p->data;
  if (status < 0 || b->closing) return;
  for (int round = 0; round < ROUNDS_MAX; round++) {
    for (int i = 0; i < SLOTS; i++) {
      b->rmsgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
      b->rmsgs[i].msg_hdr.msg_control = NULL;
      b->rmsgs[i].msg_hdr.msg_controllen = 0;
      b->rmsgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(b->fd, b->rmsgs, SLOTS, MSG_DONTWAIT, NULL);
    if (n <= 0) return; /* EAGAIN, or an error queued by ICMP (refused, unreachable): nothing to read now */
    b->received += n;
    for (int i = 0; i < n; i++) {
      int trunc = (b->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
      if (trunc) b->truncated++;
      b->meta[2 * i] = trunc ? -1 : (int32_t)b->rmsgs[i].msg_len;
      b->meta[2 * i + 1] = 0;
    }
    if (!call_js(b, n)) return;
    send_answers(b, n);
    if (n < SLOTS) return;
  }
}

static batch_t *unwrap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  napi_valuetype t;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, "DNS_UDP_BATCH", "expected a handle from open()");
    return NULL;
  }
  return data;
}

/*
 * Lifetime: the struct lives until both the poll handle is closed and JavaScript's handle object is
 * collected, so a close() after close, or a handle dropped without close(), never touches freed memory.
 */
static void on_closed(uv_handle_t *h) {
  batch_t *b = h->data;
  if (!b->teardown) { /* when the environment is going, its references and async context go with it */
    napi_delete_reference(b->env, b->in_ref);
    napi_delete_reference(b->env, b->out_ref);
    napi_delete_reference(b->env, b->meta_ref);
    napi_delete_reference(b->env, b->cb_ref);
    napi_async_destroy(b->env, b->actx);
  }
  b->closed = 1;
  if (b->finalized) free(b);
}

static void stop(batch_t *b) {
  b->closing = 1;
  if (uv_is_closing((uv_handle_t *)&b->poll)) { /* closed by someone else (the loop's owner at exit): only the fd is ours */
    close(b->fd);
    return;
  }
  uv_poll_stop(&b->poll); /* removes the fd from epoll, so closing it now is safe */
  close(b->fd);
  uv_close((uv_handle_t *)&b->poll, on_closed);
}

/* JavaScript dropped its handle: close if it did not, and free once the handle is closed too. */
static void on_finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  batch_t *b = data;
  b->finalized = 1;
  if (!b->closing) {
    napi_remove_env_cleanup_hook(env, env_teardown, b);
    stop(b);
  } else if (b->closed) {
    free(b);
  }
}

/* A worker thread ended without close(): its loop must not be left with an open handle. */
static void env_teardown(void *arg) {
  batch_t *b = arg;
  if (b->closing) return;
  b->teardown = 1;
  stop(b);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  batch_t *b = unwrap(env, info);
  if (b == NULL || b->closing) return NULL;
  napi_remove_env_cleanup_hook(env, env_teardown, b);
  stop(b);
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  batch_t *b = unwrap(env, info);
  if (b == NULL) return NULL;
  napi_value arr, v;
  napi_create_array_with_length(env, 4, &arr);
  double xs[4] = {b->received, b->sent, b->truncated, b->send_dropped};
  for (uint32_t i = 0; i < 4; i++) {
    napi_create_double(env, xs[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

static napi_value constant(napi_env env, int32_t x) {
  napi_value v;
  napi_create_int32(env, x, &v);
  return v;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor props[] = {
    {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
    {"SLOTS", NULL, NULL, NULL, NULL, constant(env, SLOTS), napi_enumerable, NULL},
    {"IN_SLOT", NULL, NULL, NULL, NULL, constant(env, IN_SLOT), napi_enumerable, NULL},
    {"OUT_SLOT", NULL, NULL, NULL, NULL, constant(env, OUT_SLOT), napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
