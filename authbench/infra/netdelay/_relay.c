/* A TCP delay line: every chunk leaves at its arrival + half the RTT (+ jitter), in order.
 *
 * One event loop (epoll) in the thread that calls serve(), with the GIL released. Each
 * chunk is stamped with the kernel's receive time (SO_TIMESTAMPNS), so the loop's own
 * wake-up for the data is inside the delay, not added to it, and a chunk's wait starts
 * when it arrives, whatever waits ahead of it: a busy connection is not serialized.
 * The loop sleeps until the earliest due chunk with epoll_pwait2's nanosecond timeout
 * (timer slack 1 ns). One thread for all connections, not two per connection: on a
 * 2-vCPU VM a context switch costs more than the send itself, and under load one wake-up
 * serves several chunks (measured: half the CPU per chunk at 8 connections). A timed wait
 * ends late by the time the kernel takes to wake the thread (about 40 us on that VM); its
 * running median is measured on every such wait and each wait shortened by it, so the
 * median chunk reaches the receiving socket within a few us of its due time. Nothing is
 * subtracted at RTT 0: a chunk cannot leave before it is read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 65536
#define QUEUE_CAP (4 << 20)   /* bytes waiting per direction before reading pauses */
#define READS_PER_EVENT 16    /* then the other sockets get their turn */
#define MAX_EVENTS 64
#define TRACK_STEP_NS 250     /* a median tracker moves this much per sample */
#define SYN_RETRIES 2         /* a silent upstream fails its connect after about 7 s */
#define LISTEN_TAG 0
#define STOP_TAG 1

enum kind { DATA, END, RESET };

typedef struct chunk {
    struct chunk *next;
    int64_t due;
    uint32_t len, sent;
    enum kind kind;
    uint8_t data[];
} chunk;

struct conn;

typedef struct side {  /* one direction: read from fds[from], written to fds[1 - from] */
    struct conn *c;
    int from;
    chunk *head, *tail;
    size_t queued;
    int64_t last_due;
    int reading, blocked, finished;  /* blocked: waiting for the destination's EPOLLOUT */
    int heap_pos;                    /* in the relay's heap of sides by head due; -1 if out */
} side;

typedef struct conn {
    int fds[2];          /* 0: the client, 1: the upstream */
    uint32_t interest[2];
    int connecting, closed;
    side sides[2];
    struct conn *next, *prev;
} conn;

typedef struct relay {
    struct sockaddr_storage upstream;
    socklen_t upstream_len;
    int64_t half_ns, jitter_ns;
    int epoll_fd;
    conn *live, *dead;   /* dead: closed in this round, freed after its events */
    side **heap;
    int heap_len, heap_cap;
    uint64_t seed;
    int64_t wake_ns, send_ns, late_ns;   /* running medians */
    long long connections, refused, chunks, bytes;
    uint8_t buffer[CHUNK_MAX];
} relay;

static int64_t clock_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void track(int64_t *median, int64_t sample, int64_t floor) {
    /* A sign step: drifts to the median of the samples, whatever their tail. */
    if (sample > *median)
        *median += TRACK_STEP_NS;
    else if (sample < *median && *median - TRACK_STEP_NS >= floor)
        *median -= TRACK_STEP_NS;
}

static uint64_t next_random(uint64_t *state) {
    /* xorshift64*: the jitter needs speed and spread, not cryptographic quality. */
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

/* ---- the heap of sides with something queued, earliest head first ---- */

static int earlier(const side *a, const side *b) { return a->head->due < b->head->due; }

static void heap_place(relay *r, int at, side *s) {
    r->heap[at] = s;
    s->heap_pos = at;
}

static void heap_up(relay *r, int at) {
    side *s = r->heap[at];
    while (at > 0 && earlier(s, r->heap[(at - 1) / 2])) {
        heap_place(r, at, r->heap[(at - 1) / 2]);
        at = (at - 1) / 2;
    }
    heap_place(r, at, s);
}

static void heap_down(relay *r, int at) {
    side *s = r->heap[at];
    for (;;) {
        int child = 2 * at + 1;
        if (child >= r->heap_len)
            break;
        if (child + 1 < r->heap_len && earlier(r->heap[child + 1], r->heap[child]))
            child++;
        if (!earlier(r->heap[child], s))
            break;
        heap_place(r, at, r->heap[child]);
        at = child;
    }
    heap_place(r, at, s);
}

static int heap_push(relay *r, side *s) {
    if (r->heap_len == r->heap_cap) {
        int cap = r->heap_cap ? 2 * r->heap_cap : 64;
        side **grown = realloc(r->heap, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        r->heap = grown;
        r->heap_cap = cap;
    }
    heap_place(r, r->heap_len++, s);
    heap_up(r, s->heap_pos);
    return 0;
}

static void heap_remove(relay *r, side *s) {
    int at = s->heap_pos;
    side *last = r->heap[--r->heap_len];
    s->heap_pos = -1;
    if (last == s)
        return;
    heap_place(r, at, last);
    heap_up(r, at);
    heap_down(r, last->heap_pos);
}

/* ---- connections ---- */

static void conn_close(relay *r, conn *c) {
    if (c->closed)
        return;
    c->closed = 1;
    for (int i = 0; i < 2; i++) {
        side *s = &c->sides[i];
        if (s->heap_pos >= 0)
            heap_remove(r, s);
        while (s->head) {
            chunk *item = s->head;
            s->head = item->next;
            free(item);
        }
        if (c->fds[i] >= 0)
            close(c->fds[i]);  /* also leaves the epoll set */
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        r->live = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = r->dead;  /* freed once this round's events, which may name it, are done */
    r->dead = c;
}

/* Watch each socket for what its two sides need now; a socket with no need leaves the set,
 * since epoll reports a hang-up even to a socket that asked for nothing. */
static void update_interest(relay *r, conn *c) {
    for (int i = 0; i < 2; i++) {
        side *reader = &c->sides[i], *writer = &c->sides[1 - i];
        uint32_t want = 0;
        if (reader->reading && reader->queued < QUEUE_CAP && !(i == 1 && c->connecting))
            want |= EPOLLIN;
        if (writer->blocked)
            want |= EPOLLOUT;
        if (want == c->interest[i])
            continue;
        struct epoll_event event = {want, {.u64 = (uint64_t)(uintptr_t)c | (uint64_t)i}};
        int op = !c->interest[i] ? EPOLL_CTL_ADD : !want ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
        if (epoll_ctl(r->epoll_fd, op, c->fds[i], &event) != 0) {
            conn_close(r, c);
            return;
        }
        c->interest[i] = want;
    }
}

static void set_socket_options(int fd) {
    int on = 1;
    /* Nagle would hold a small chunk until the previous one is acknowledged. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

static void conn_open(relay *r, int client) {
    conn *c = calloc(1, sizeof *c);
    int upstream = c ? socket(r->upstream.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                              0) : -1;
    if (upstream < 0) {
        free(c);
        close(client);
        r->refused++;
        return;
    }
    int retries = SYN_RETRIES;
    setsockopt(upstream, IPPROTO_TCP, TCP_SYNCNT, &retries, sizeof retries);
    set_socket_options(client);
    set_socket_options(upstream);
    c->fds[0] = client;
    c->fds[1] = upstream;
    for (int i = 0; i < 2; i++) {
        c->sides[i] = (side){.c = c, .from = i, .reading = 1, .heap_pos = -1};
    }
    c->next = r->live;
    if (r->live)
        r->live->prev = c;
    r->live = c;
    r->connections++;
    if (connect(upstream, (struct sockaddr *)&r->upstream, r->upstream_len) != 0) {
        if (errno != EINPROGRESS) {
            r->refused++;
            conn_close(r, c);
            return;
        }
        c->connecting = 1;
        c->sides[0].blocked = 1;  /* the client's bytes wait for the connection */
    }
    update_interest(r, c);
}

static void connected(relay *r, conn *c) {
    int error = 0;
    socklen_t size = sizeof error;
    if (getsockopt(c->fds[1], SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0) {
        r->refused++;
        conn_close(r, c);  /* the client sees its connection closed at once */
        return;
    }
    c->connecting = 0;
}

/* Returned by take() when the bytes read could not be kept: the connection must end. */
static chunk lost_chunk;
#define LOST (&lost_chunk)

/* Read what the source has, stamped with the kernel's arrival time; NULL if nothing. */
static chunk *take(relay *r, int fd) {
    union {
        char space[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {r->buffer, CHUNK_MAX};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.space;
    msg.msg_controllen = sizeof control.space;
    ssize_t got = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return NULL;
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    int64_t arrived = now;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); got > 0 && cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec stamp;
            memcpy(&stamp, CMSG_DATA(cm), sizeof stamp);
            /* The stamp is wall-clock time: its age, taken off the monotonic now. */
            int64_t age = clock_ns(CLOCK_REALTIME)
                          - ((int64_t)stamp.tv_sec * 1000000000LL + stamp.tv_nsec);
            if (age > 0)
                arrived = now - age;
        }
    }
    size_t len = got > 0 ? (size_t)got : 0;
    chunk *item = malloc(sizeof(chunk) + len);
    if (!item)
        return LOST;
    *item = (chunk){.due = arrived, .len = (uint32_t)len,
                    .kind = got > 0 ? DATA : got == 0 ? END : RESET};
    memcpy(item->data, r->buffer, len);
    return item;
}

static void enqueue(relay *r, side *s, chunk *item) {
    /* Jitter is uniform in +-jitter/2, never before arrival, never overtaking. */
    int64_t due = item->due + r->half_ns;
    if (r->jitter_ns > 0)
        due += (int64_t)(next_random(&r->seed) % (uint64_t)(r->jitter_ns + 1)) - r->jitter_ns / 2;
    if (due < item->due)
        due = item->due;
    if (due < s->last_due)
        due = s->last_due;
    item->due = s->last_due = due;
    s->queued += item->len;
    if (s->tail)
        s->tail->next = item;
    else
        s->head = item;
    s->tail = item;
    if (item->kind != DATA)
        s->reading = 0;
}

static void readable(relay *r, conn *c, int i) {
    side *s = &c->sides[i];
    int was_empty = !s->head;
    for (int n = 0; n < READS_PER_EVENT && s->reading && s->queued < QUEUE_CAP; n++) {
        chunk *item = take(r, c->fds[i]);
        if (!item)
            break;
        if (item == LOST) {
            conn_close(r, c);
            return;
        }
        enqueue(r, s, item);
    }
    if (was_empty && s->head && !s->blocked && heap_push(r, s) != 0) {
        conn_close(r, c);
        return;
    }
    update_interest(r, c);
}

static void writable(relay *r, conn *c, int i) {
    side *s = &c->sides[1 - i];
    if (i == 1 && c->connecting) {
        connected(r, c);
        if (c->closed)
            return;
    }
    s->blocked = 0;
    if (s->head && s->heap_pos < 0 && heap_push(r, s) != 0) {
        conn_close(r, c);
        return;
    }
    update_interest(r, c);
}

/* Send the head chunk of the earliest side: it is due. */
static void forward(relay *r, side *s, int64_t now) {
    conn *c = s->c;
    chunk *item = s->head;
    int dst = c->fds[1 - s->from];
    if (item->kind == END) {
        shutdown(dst, SHUT_WR);
        s->finished = 1;
    } else if (item->kind == RESET) {
        conn_close(r, c);
        return;
    } else {
        ssize_t sent = send(dst, item->data + item->sent, item->len - item->sent,
                            MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            heap_remove(r, s);
            s->blocked = 1;
            update_interest(r, c);
            return;
        }
        if (sent < 0) {
            conn_close(r, c);
            return;
        }
        int64_t after = clock_ns(CLOCK_MONOTONIC);
        track(&r->send_ns, after - now, 0);
        track(&r->late_ns, after - item->due, INT64_MIN / 2);
        item->sent += (uint32_t)sent;
        r->bytes += sent;
        if (item->sent < item->len)
            return;  /* the rest when due again: it still is */
        r->chunks++;
    }
    s->head = item->next;
    if (!s->head)
        s->tail = NULL;
    s->queued -= item->len;
    free(item);
    if (s->finished && c->sides[1 - s->from].finished) {
        conn_close(r, c);
        return;
    }
    if (s->head)
        heap_down(r, s->heap_pos);
    else
        heap_remove(r, s);
    update_interest(r, c);
}

static int wait_events(int epoll_fd, struct epoll_event *events, const struct timespec *timeout) {
#ifdef __NR_epoll_pwait2
    return (int)syscall(__NR_epoll_pwait2, epoll_fd, events, MAX_EVENTS, timeout, NULL, 8);
#else
    (void)timeout;
    errno = ENOSYS;
    return -1;
#endif
}

/* Relay until stop_fd is readable; 0, or an errno. */
static int run(relay *r, int listen_fd, int stop_fd) {
    struct epoll_event events[MAX_EVENTS];
    struct epoll_event listen_event = {EPOLLIN, {.u64 = LISTEN_TAG}};
    struct epoll_event stop_event = {EPOLLIN, {.u64 = STOP_TAG}};
    if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, listen_fd, &listen_event) != 0
        || epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, stop_fd, &stop_event) != 0)
        return errno;
    for (;;) {
        int64_t lead = r->wake_ns;
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        while (r->heap_len > 0 && r->heap[0]->head->due - lead <= now) {
            forward(r, r->heap[0], now);
            now = clock_ns(CLOCK_MONOTONIC);
        }
        struct timespec timeout, *until = NULL;
        int64_t wake_at = 0, pause = 0;
        if (r->heap_len > 0) {
            wake_at = r->heap[0]->head->due - lead;
            pause = wake_at - now;
            timeout = (struct timespec){pause / 1000000000LL, pause % 1000000000LL};
            until = &timeout;
        }
        int ready = wait_events(r->epoll_fd, events, until);
        if (ready < 0 && errno != EINTR)
            return errno;
        if (ready == 0 && pause > 0)
            track(&r->wake_ns, clock_ns(CLOCK_MONOTONIC) - wake_at, 0);
        for (int n = 0; n < ready; n++) {
            uint64_t tag = events[n].data.u64;
            if (tag == STOP_TAG)
                return 0;
            if (tag == LISTEN_TAG) {
                int client;
                while ((client = accept4(listen_fd, NULL, NULL,
                                         SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
                    conn_open(r, client);
                continue;
            }
            conn *c = (conn *)(uintptr_t)(tag & ~(uint64_t)1);
            int i = (int)(tag & 1);
            if (!c->closed && events[n].events & (EPOLLIN | EPOLLHUP | EPOLLERR)
                && c->interest[i] & EPOLLIN)
                readable(r, c, i);
            if (!c->closed && events[n].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)
                && c->interest[i] & EPOLLOUT)
                writable(r, c, i);
        }
        while (r->dead) {
            conn *c = r->dead;
            r->dead = c->next;
            free(c);
        }
    }
}

static void close_all(relay *r) {
    while (r->live)
        conn_close(r, r->live);
    while (r->dead) {
        conn *c = r->dead;
        r->dead = c->next;
        free(c);
    }
}

static PyObject *serve(PyObject *self, PyObject *args) {
    (void)self;
    int listen_fd, stop_fd, port;
    const char *host;
    long long half_ns, jitter_ns;
    if (!PyArg_ParseTuple(args, "iisiLL", &listen_fd, &stop_fd, &host, &port, &half_ns,
                          &jitter_ns))
        return NULL;
    if (half_ns < 0 || jitter_ns < 0) {
        PyErr_SetString(PyExc_ValueError, "delays must not be negative");
        return NULL;
    }
    struct addrinfo hints = {0}, *found = NULL;
    char service[16];
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(service, sizeof service, "%d", port);
    int failed = getaddrinfo(host, service, &hints, &found);
    if (failed != 0) {
        PyErr_Format(PyExc_ValueError, "upstream %s: %s", host, gai_strerror(failed));
        return NULL;
    }
    relay *r = calloc(1, sizeof *r);
    int flags = fcntl(listen_fd, F_GETFL);
    /* A client that resets before accept() must not leave accept() blocked. */
    if (!r || flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) < 0
        || (r->epoll_fd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        freeaddrinfo(found);
        free(r);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    memcpy(&r->upstream, found->ai_addr, found->ai_addrlen);
    r->upstream_len = found->ai_addrlen;
    freeaddrinfo(found);
    r->half_ns = half_ns;
    r->jitter_ns = jitter_ns;
    r->seed = (uint64_t)clock_ns(CLOCK_MONOTONIC) | 1;

    int error;
    Py_BEGIN_ALLOW_THREADS
    /* The kernel otherwise lets a timed wait end up to 50 us late to batch wake-ups. */
    int slack = prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL);
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    error = run(r, listen_fd, stop_fd);
    close_all(r);
    if (slack > 0)
        prctl(PR_SET_TIMERSLACK, (unsigned long)slack, 0UL, 0UL, 0UL);
    Py_END_ALLOW_THREADS

    close(r->epoll_fd);
    free(r->heap);
    PyObject *stats = error ? NULL : Py_BuildValue(
        "{s:L,s:L,s:L,s:L,s:L,s:L,s:L}", "connections", r->connections, "refused", r->refused,
        "chunks", r->chunks, "bytes", r->bytes, "wake_ns", (long long)r->wake_ns,
        "send_ns", (long long)r->send_ns, "late_ns", (long long)r->late_ns);
    free(r);
    if (error) {
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return stats;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS,
     "serve(listen_fd, stop_fd, host, port, half_ns, jitter_ns) -> stats: relay until "
     "stop_fd is readable."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_relay", "A TCP delay line with sub-millisecond release times.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__relay(void) { return PyModule_Create(&module); }
