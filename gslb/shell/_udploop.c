/* The UDP thread's loop, compiled: receive, answer from the front, count, rate-limit, send.
 *
 * Optional (setup.py builds it when a C compiler is there; gslb.shell.transport runs its
 * Python loop otherwise) and small on purpose: it answers only what the Python loop would
 * answer in its first lines, from the very same objects, and hands every other datagram to
 * that loop's body (`one`), which does all the rest as before. Under the interpreter lock
 * throughout, except in the two system calls, exactly as the Python loop: it reads and
 * writes the same dicts in the same order, so it needs no lock the Python loop did not.
 *
 * Handled here, for a datagram whose octets after the ID are a key of the front:
 *   - the front's entry is a whole reply (`bytes`), or a `Rotation` (directly or per client)
 *     whose next slot is filled: the reply is the client's ID and that body, and the slot
 *     and the per-member tally move on as in `answer_udp` (`ReplyCache.next_slot`,
 *     `ReplyCache.count`, done here on the same attributes);
 *   - the query is counted by type and code (`QueryStats.count`);
 *   - the rate limiter: an exempt client passes; a known client, question and bucket with a
 *     token left is charged as `Limiter.check` charges it. Anything else (a new client, an
 *     empty bucket, a cookie to look at) calls `Limiter.check` itself.
 *   - one query in `sample_every` is timed, as the Python loop times it, into the same
 *     histogram (`QueryStats.observe`, over the bounds it is given).
 * The Python methods named are not called: each is a few dict and list updates, and calling
 * one costs more than the updates. Whoever changes one changes its twin here (the tests
 * compare both loops' replies and counters).
 * Handed to `one(wire, addr)`: a front miss, the query log, a snapshot the front has not
 * seen. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define BUFFER 65535

typedef struct {
    PyObject *stopping, *_snapshot, *udp_queries, *query_log_rate, *rrl, *version, *entries,
        *counts, *_slot, *period, *replies, *members, *_clients, *_identities,
        *_identities_version, *_buckets, *_rate, *_burst, *check, *_tally, *latency,
        *latency_sum, *latency_count;
} Names;

static Names N;

static int intern_names(void) {
#define NAME(x) if (!(N.x = PyUnicode_InternFromString(#x))) return -1;
    NAME(stopping) NAME(_snapshot) NAME(udp_queries) NAME(query_log_rate) NAME(rrl)
    NAME(version) NAME(entries) NAME(counts) NAME(_slot) NAME(period)
    NAME(replies) NAME(members) NAME(_clients) NAME(_identities) NAME(_identities_version)
    NAME(_buckets) NAME(_rate) NAME(_burst) NAME(check) NAME(_tally) NAME(latency)
    NAME(latency_sum) NAME(latency_count)
#undef NAME
    return 0;
}

/* The client's address as Python's socket module writes it, and the (host, port[, flow,
 * scope]) tuple recvfrom returns. */
static PyObject *address_text(const struct sockaddr_storage *sa, socklen_t len) {
    char host[NI_MAXHOST];
    if (sa->ss_family == AF_INET) {
        if (!inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, host, sizeof host))
            return NULL;
    } else if (getnameinfo((const struct sockaddr *)sa, len, host, sizeof host, NULL, 0,
                           NI_NUMERICHOST) != 0) {
        return NULL;
    }
    return PyUnicode_FromString(host);
}

static PyObject *address_tuple(const struct sockaddr_storage *sa, PyObject *host) {
    if (sa->ss_family == AF_INET) {
        return Py_BuildValue("(Oi)", host, ntohs(((const struct sockaddr_in *)sa)->sin_port));
    }
    const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
    return Py_BuildValue("(OiII)", host, ntohs(a6->sin6_port), ntohl(a6->sin6_flowinfo),
                         a6->sin6_scope_id);
}

/* An attribute that must be there; NULL with the error set otherwise. */
#define GET(obj, name) PyObject_GetAttr((obj), N.name)

/* The objects the loop reads many times a datagram, each with its instance dict: a plain
 * attribute is one lookup there instead of a walk of the type first (a tenth of the loop's
 * time otherwise). Only plain instance attributes are read this way, none that a class
 * shadows with a property or a slot; anything not in the dict is read the usual way. */
typedef struct {
    PyObject *obj, *dict;  /* dict: NULL for an object without one */
} Held;

static int hold(Held *h, PyObject *obj) {
    h->obj = obj;
    h->dict = PyObject_GenericGetDict(obj, NULL);
    if (!h->dict) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return -1;
        PyErr_Clear();
    }
    return 0;
}

static PyObject *attr(const Held *h, PyObject *name) {
    if (h->dict) {
        PyObject *value = PyDict_GetItemWithError(h->dict, name);  /* borrowed */
        if (value) { Py_INCREF(value); return value; }
        if (PyErr_Occurred()) return NULL;
    }
    return PyObject_GetAttr(h->obj, name);
}

static int set_attr(const Held *h, PyObject *name, PyObject *value) {
    return h->dict ? PyDict_SetItem(h->dict, name, value) : PyObject_SetAttr(h->obj, name, value);
}

/* `hold`, keeping a reference to `obj` (and letting go of the one held before): for an
 * object that may be replaced while the loop runs, so that a pointer compared is alive. */
static int hold_owned(Held *h, PyObject *obj) {
    Py_XDECREF(h->obj);
    Py_CLEAR(h->dict);
    Py_INCREF(obj);
    if (hold(h, obj) < 0) {
        h->obj = NULL;
        Py_DECREF(obj);
        return -1;
    }
    return 0;
}

#define ATTR(held, name) attr(&(held), N.name)

/* `counts[key] += 1` in a dict of ints (QueryStats.counts, ReplyCache._tally). */
static int bump(PyObject *counts, PyObject *key) {
    PyObject *was = PyDict_GetItemWithError(counts, key);  /* borrowed */
    long before = 0;
    if (was) {
        before = PyLong_AsLong(was);
        if (before == -1 && PyErr_Occurred()) return -1;
    } else if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *now = PyLong_FromLong(before + 1);
    int failed = !now || PyDict_SetItem(counts, key, now) < 0;
    Py_XDECREF(now);
    return failed ? -1 : 0;
}

/* The key QueryStats.count makes, (qtype, code), kept from one query to the next: under load
 * it is the same pair again, and building it is most of what counting costs. */
typedef struct {
    PyObject *key;
    unsigned char qtype[2];
    Py_ssize_t len;
    int code;
} CountKey;

/* `counts[(qtype, code)] += 1`, as QueryStats.count does for a reply. */
static int count_query(const Held *stats, CountKey *last, const unsigned char *wire, Py_ssize_t n,
                       int code) {
    const unsigned char *zero = memchr(wire + 12, 0, (size_t)(n - 12));
    Py_ssize_t end = zero ? (Py_ssize_t)(zero - wire) : -1;
    Py_ssize_t from = end > 0 ? end + 1 : 0, to = end > 0 ? end + 3 : 0;
    if (to > n) to = n;
    if (from > to) from = to;
    Py_ssize_t len = to - from;
    if (!last->key || last->code != code || last->len != len ||
        memcmp(last->qtype, wire + from, (size_t)len) != 0) {
        PyObject *key = Py_BuildValue("(y#i)", (const char *)wire + from, len, code);
        if (!key) return -1;
        Py_XSETREF(last->key, key);
        memcpy(last->qtype, wire + from, (size_t)len);
        last->len = len;
        last->code = code;
    }
    PyObject *counts = attr(stats, N.counts);
    if (!counts) return -1;
    int failed = bump(counts, last->key);
    Py_DECREF(counts);
    return failed;
}

/* QueryStats.observe(seconds): the histogram's bucket (bisect_left over `bounds`), its sum
 * and its count. */
#define MAX_BOUNDS 64
static int observe(const Held *stats, const double *bounds, Py_ssize_t nbounds, double seconds) {
    Py_ssize_t at = 0;
    while (at < nbounds && bounds[at] < seconds) at++;
    PyObject *latency = NULL, *sum = NULL, *count = NULL, *value = NULL;
    int result = -1;
    if (!(latency = attr(stats, N.latency))) goto out;
    if (!PyList_Check(latency) || PyList_GET_SIZE(latency) != nbounds + 1) {
        PyErr_SetString(PyExc_TypeError, "QueryStats.latency is not one count per bucket");
        goto out;
    }
    long long was = PyLong_AsLongLong(PyList_GET_ITEM(latency, at));
    if (was == -1 && PyErr_Occurred()) goto out;
    int failed = !(value = PyLong_FromLongLong(was + 1)) ||
                 PyList_SetItem(latency, at, value) < 0;
    value = NULL;  /* PyList_SetItem took it, even failing */
    if (failed) goto out;
    if (!(sum = attr(stats, N.latency_sum))) goto out;
    double total = PyFloat_AsDouble(sum);
    if (total == -1.0 && PyErr_Occurred()) goto out;
    if (!(value = PyFloat_FromDouble(total + seconds)) ||
        set_attr(stats, N.latency_sum, value) < 0)
        goto out;
    Py_CLEAR(value);
    if (!(count = attr(stats, N.latency_count))) goto out;
    long long n = PyLong_AsLongLong(count);
    if (n == -1 && PyErr_Occurred()) goto out;
    if (!(value = PyLong_FromLongLong(n + 1)) || set_attr(stats, N.latency_count, value) < 0)
        goto out;
    result = 0;
out:
    Py_XDECREF(latency); Py_XDECREF(sum); Py_XDECREF(count); Py_XDECREF(value);
    return result;
}

/* The limiter's verdict without calling it, when that is certain: 1 send (a token was
 * taken, or the client is exempt), 0 ask `Limiter.check`, -1 error. */
static int rate_ok(const Held *limiter, PyObject *host, PyObject *key, const char *body,
                   PyObject *snapshot_version, Py_ssize_t memo_entries) {
    int result = 0;
    PyObject *clients = NULL, *identities = NULL, *ident_version = NULL, *question = NULL,
             *buckets = NULL, *bucket_key = NULL, *rate = NULL, *burst = NULL;
    if (!(clients = attr(limiter, N._clients))) goto error;
    PyObject *network = PyDict_GetItemWithError(clients, host);  /* borrowed */
    if (!network) { if (PyErr_Occurred()) goto error; goto done; }
    if (network == Py_None) { result = 1; goto done; }
    if (!(ident_version = attr(limiter, N._identities_version))) goto error;
    int same = PyObject_RichCompareBool(ident_version, snapshot_version, Py_EQ);
    if (same < 0) goto error;
    if (!same) goto done;
    if (!(identities = attr(limiter, N._identities))) goto error;
    if (PyDict_GET_SIZE(identities) >= memo_entries) goto done;
    if (!(question = Py_BuildValue("(Oy#)", key, body, (Py_ssize_t)6))) goto error;
    PyObject *who = PyDict_GetItemWithError(identities, question);  /* borrowed */
    if (!who) { if (PyErr_Occurred()) goto error; goto done; }
    if (!(bucket_key = PyTuple_Pack(2, network, who))) goto error;
    if (!(buckets = attr(limiter, N._buckets))) goto error;
    PyObject *bucket = PyDict_GetItemWithError(buckets, bucket_key);  /* borrowed */
    if (!bucket) { if (PyErr_Occurred()) goto error; goto done; }
    if (!PyList_CheckExact(bucket) || PyList_GET_SIZE(bucket) != 2) goto done;
    PyObject *tokens = PyList_GET_ITEM(bucket, 0), *then = PyList_GET_ITEM(bucket, 1);
    if (!PyFloat_CheckExact(tokens) || !PyFloat_CheckExact(then)) goto done;
    if (!(rate = attr(limiter, N._rate)) || !(burst = attr(limiter, N._burst))) goto error;
    double r = PyFloat_AsDouble(rate), b = PyFloat_AsDouble(burst);
    if (PyErr_Occurred()) goto error;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  /* time.monotonic()'s clock */
    double now = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    double left = PyFloat_AS_DOUBLE(tokens) + (now - PyFloat_AS_DOUBLE(then)) * r;
    if (left > b) left = b;
    if (left < 1.0) goto done;  /* over the limit: the limiter decides (cookies, slip) */
    PyObject *new_tokens = PyFloat_FromDouble(left - 1.0), *new_then = PyFloat_FromDouble(now);
    if (!new_tokens || !new_then) { Py_XDECREF(new_tokens); Py_XDECREF(new_then); goto error; }
    PyList_SetItem(bucket, 0, new_tokens);  /* steals the references */
    PyList_SetItem(bucket, 1, new_then);
    result = 1;
    goto done;
error:
    result = -1;
done:
    Py_XDECREF(clients); Py_XDECREF(identities); Py_XDECREF(ident_version);
    Py_XDECREF(question); Py_XDECREF(buckets); Py_XDECREF(bucket_key);
    Py_XDECREF(rate); Py_XDECREF(burst);
    return result;
}

/* The front's reply body for this key (a new reference, or NULL without an error: not
 * here). `slot_to`: the slot counter to store once the reply is sent, or -1. */
static PyObject *front_body(PyObject *entries, PyObject *key, PyObject *host, const Held *cache,
                            PyObject *rotation_type, PyObject *per_client,
                            PyObject **members_out, long long *slot_to) {
    *slot_to = -1;
    *members_out = NULL;
    PyObject *entry = PyDict_GetItemWithError(entries, key);  /* borrowed */
    if (!entry) return NULL;
    if (PyBytes_CheckExact(entry)) { Py_INCREF(entry); return entry; }
    PyObject *held = NULL;
    if (entry == per_client) {
        if (!(held = PyTuple_Pack(2, key, host))) return NULL;
        entry = PyDict_GetItemWithError(entries, held);
        Py_DECREF(held);
        if (!entry) return NULL;
    }
    if ((PyObject *)Py_TYPE(entry) != rotation_type) return NULL;
    PyObject *period = NULL, *replies = NULL, *members = NULL, *slot = NULL, *body = NULL;
    if (!(period = GET(entry, period)) || !(replies = GET(entry, replies)) ||
        !(members = GET(entry, members)) || !(slot = attr(cache, N._slot)))
        goto out;
    long long p = PyLong_AsLongLong(period), s = PyLong_AsLongLong(slot);
    if (PyErr_Occurred() || p <= 0 || !PyList_CheckExact(replies) ||
        !PyList_CheckExact(members) || PyList_GET_SIZE(replies) != p ||
        PyList_GET_SIZE(members) != p)
        goto out;
    long long draw = s + 1, at = draw % p;  /* as ReplyCache.next_slot, then `% period` */
    if (at < 0) at += p;
    PyObject *reply = PyList_GET_ITEM(replies, at);
    if (!PyBytes_CheckExact(reply)) goto out;  /* None: this slot is not filled yet */
    body = reply;
    Py_INCREF(body);
    *members_out = PyList_GET_ITEM(members, at);
    Py_INCREF(*members_out);
    *slot_to = draw;
out:
    Py_XDECREF(period); Py_XDECREF(replies); Py_XDECREF(members); Py_XDECREF(slot);
    return body;
}

static PyObject *serve(PyObject *self, PyObject *args) {
    int fd;
    long long sample_every;
    Py_ssize_t memo_entries;
    PyObject *thread, *answerer, *cache, *front, *stats, *one, *rotation_type, *per_client,
        *latency_bounds;
    if (!PyArg_ParseTuple(args, "iOOOOOOOOLnO!", &fd, &thread, &answerer, &cache, &front,
                          &stats, &one, &rotation_type, &per_client, &sample_every,
                          &memo_entries, &PyTuple_Type, &latency_bounds))
        return NULL;
    double bounds[MAX_BOUNDS];
    Py_ssize_t nbounds = PyTuple_GET_SIZE(latency_bounds);
    if (nbounds > MAX_BOUNDS) {
        PyErr_SetString(PyExc_ValueError, "too many latency buckets");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nbounds; i++) {
        bounds[i] = PyFloat_AsDouble(PyTuple_GET_ITEM(latency_bounds, i));
        if (bounds[i] == -1.0 && PyErr_Occurred()) return NULL;
    }
    if (sample_every <= 0) {
        PyErr_SetString(PyExc_ValueError, "sample_every must be positive");
        return NULL;
    }
    Held h_thread = {0}, h_answerer = {0}, h_cache = {0}, h_front = {0}, h_stats = {0},
         h_limiter = {0};  /* h_limiter: the last `answerer.rrl` seen, with a reference */
    PyObject *result = NULL, *last_host = NULL;
    CountKey count_key = {NULL, {0, 0}, 0, 0};
    unsigned char *wire = PyMem_Malloc(BUFFER), *out = PyMem_Malloc(BUFFER + 2);
    if (!wire || !out) { PyErr_NoMemory(); goto fail; }
    if (hold(&h_thread, thread) < 0 || hold(&h_answerer, answerer) < 0 ||
        hold(&h_cache, cache) < 0 || hold(&h_front, front) < 0 || hold(&h_stats, stats) < 0)
        goto fail;
    in_addr_t last_v4 = 0;
    for (;;) {
        struct sockaddr_storage sa;
        socklen_t salen = sizeof sa;
        ssize_t n;
        int err;
        Py_BEGIN_ALLOW_THREADS
        n = recvfrom(fd, wire, BUFFER, 0, (struct sockaddr *)&sa, &salen);
        err = errno;
        Py_END_ALLOW_THREADS
        PyObject *stopping = ATTR(h_thread, stopping);
        if (!stopping) goto fail;
        int stop = PyObject_IsTrue(stopping);
        Py_DECREF(stopping);
        if (stop) break;
        if (n < 0) {
            if (err == EBADF || err == ENOTSOCK) break;  /* closed under us */
            if (PyErr_CheckSignals() < 0) goto fail;
            continue;  /* ICMP errors for earlier replies, EINTR: keep serving */
        }
        PyObject *host = NULL, *addr = NULL, *key = NULL, *body = NULL,
                 *members = NULL, *snapshot = NULL, *snapshot_version = NULL, *seen = NULL,
                 *queries = NULL, *logging = NULL, *limiter = NULL, *entries = NULL;
        int ok = -1;
        long long slot_to = -1;
        /* The same client again (the common case under load): its address text again. */
        if (sa.ss_family == AF_INET && last_host &&
            ((struct sockaddr_in *)&sa)->sin_addr.s_addr == last_v4) {
            host = last_host;
            Py_INCREF(host);
        } else {
            host = address_text(&sa, salen);
            if (!host) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_OSError, "unreadable client address");
                goto step_fail;
            }
            if (sa.ss_family == AF_INET) {
                Py_XSETREF(last_host, host);
                Py_INCREF(host);
                last_v4 = ((struct sockaddr_in *)&sa)->sin_addr.s_addr;
            }
        }
        /* answerer.udp_queries + 1: whether this one is timed (it is stored once the
         * datagram is answered here; `one` counts the others itself) */
        if (!(queries = ATTR(h_answerer, udp_queries))) goto step_fail;
        long long q = PyLong_AsLongLong(queries) + 1;
        if (PyErr_Occurred()) goto step_fail;
        if (n <= 12) goto hand_over;
        int sampled = q % sample_every == 0;
        struct timespec started;
        if (sampled) clock_gettime(CLOCK_MONOTONIC, &started);
        if (!(logging = ATTR(h_answerer, query_log_rate))) goto step_fail;
        int log_on = PyObject_IsTrue(logging);
        if (log_on) goto hand_over;
        if (log_on < 0) goto step_fail;
        if (!(snapshot = ATTR(h_answerer, _snapshot)) ||
            !(snapshot_version = GET(snapshot, version)) || !(seen = ATTR(h_front, version)))
            goto step_fail;
        int same = PyObject_RichCompareBool(seen, snapshot_version, Py_EQ);
        if (same <= 0) { if (same < 0) goto step_fail; goto hand_over; }
        if (!(key = PyBytes_FromStringAndSize((const char *)wire + 2, n - 2))) goto step_fail;
        if (!(entries = ATTR(h_front, entries))) goto step_fail;
        body = front_body(entries, key, host, &h_cache, rotation_type, per_client, &members,
                          &slot_to);
        if (!body) { if (PyErr_Occurred()) goto step_fail; goto hand_over; }
        /* Answered from the front: from here on this datagram is ours. */
        {  /* No Python code has run since `queries` was read (plain attributes and dicts
            * of bytes, ints and tuples only), so no other thread has counted meanwhile. */
            PyObject *bumped = PyLong_FromLongLong(q);
            int failed = !bumped || set_attr(&h_answerer, N.udp_queries, bumped) < 0;
            Py_XDECREF(bumped);
            if (failed) goto step_fail;
        }
        if (slot_to >= 0) {  /* ReplyCache.next_slot, and ReplyCache.count(members) */
            PyObject *slot = PyLong_FromLongLong(slot_to), *tally = NULL;
            int failed = !slot || set_attr(&h_cache, N._slot, slot) < 0 ||
                         !(tally = ATTR(h_cache, _tally)) || bump(tally, members) < 0;
            Py_XDECREF(slot);
            Py_XDECREF(tally);
            if (failed) goto step_fail;
        }
        Py_ssize_t size = PyBytes_GET_SIZE(body);
        const char *text = PyBytes_AS_STRING(body);
        if (size < 6) goto step_fail_type;  /* never kept by the front: a bug, said loudly */
        if (sampled) {  /* QueryStats.observe(seconds), as the Python loop times it */
            struct timespec ended;
            clock_gettime(CLOCK_MONOTONIC, &ended);
            double took = (double)(ended.tv_sec - started.tv_sec) +
                          (double)(ended.tv_nsec - started.tv_nsec) * 1e-9;
            if (observe(&h_stats, bounds, nbounds, took) < 0) goto step_fail;
        }
        if (count_query(&h_stats, &count_key, wire, n, text[1] & 0xF) < 0) goto step_fail;
        memcpy(out, wire, 2);
        memcpy(out + 2, text, (size_t)size);
        if (!(limiter = ATTR(h_answerer, rrl))) goto step_fail;
        if (limiter != Py_None && limiter != h_limiter.obj && hold_owned(&h_limiter, limiter) < 0)
            goto step_fail;  /* a new limiter (a reload): held from now on */
        PyObject *send = NULL;  /* a reply the limiter made instead, when asked */
        if (limiter != Py_None) {
            int verdict = rate_ok(&h_limiter, host, key, text, snapshot_version, memo_entries);
            if (verdict < 0) goto step_fail;
            if (!verdict) {
                PyObject *wire_obj = PyBytes_FromStringAndSize((const char *)wire, n);
                PyObject *reply_obj =
                    wire_obj ? PyBytes_FromStringAndSize((const char *)out, size + 2) : NULL;
                if (reply_obj) {
                    send = PyObject_CallMethodObjArgs(limiter, N.check, wire_obj, host,
                                                      reply_obj, snapshot, NULL);
                }
                Py_XDECREF(wire_obj);
                Py_XDECREF(reply_obj);
                if (!send) goto step_fail;
                if (send == Py_None) { Py_DECREF(send); ok = 0; goto step_done; }
                if (!PyBytes_Check(send)) { Py_DECREF(send); goto step_fail_type; }
            }
        }
        {
            const void *data = send ? PyBytes_AS_STRING(send) : (const void *)out;
            size_t len = send ? (size_t)PyBytes_GET_SIZE(send) : (size_t)size + 2;
            Py_BEGIN_ALLOW_THREADS
            (void)sendto(fd, data, len, 0, (struct sockaddr *)&sa, salen);
            Py_END_ALLOW_THREADS
            Py_XDECREF(send);  /* errors (buffer full, unreachable) are ignored: next */
        }
        ok = 0;
        goto step_done;
    hand_over: {
            if (!(addr = address_tuple(&sa, host))) goto step_fail;
            PyObject *wire_obj = PyBytes_FromStringAndSize((const char *)wire, n);
            if (!wire_obj) goto step_fail;
            PyObject *r = PyObject_CallFunctionObjArgs(one, wire_obj, addr, NULL);
            Py_DECREF(wire_obj);
            if (!r) goto step_fail;
            Py_DECREF(r);
            ok = 0;
            goto step_done;
        }
    step_fail_type:
        PyErr_SetString(PyExc_TypeError, "unexpected entry in the UDP front");
    step_fail:
        ok = -1;
    step_done:
        Py_XDECREF(host); Py_XDECREF(addr); Py_XDECREF(key); Py_XDECREF(body);
        Py_XDECREF(members); Py_XDECREF(snapshot); Py_XDECREF(snapshot_version);
        Py_XDECREF(seen); Py_XDECREF(queries); Py_XDECREF(logging); Py_XDECREF(limiter);
        Py_XDECREF(entries);
        if (ok < 0) goto fail;
    }
    result = Py_None;
    Py_INCREF(result);
fail:
    Py_XDECREF(last_host);
    Py_XDECREF(count_key.key);
    Py_XDECREF(h_thread.dict); Py_XDECREF(h_answerer.dict); Py_XDECREF(h_cache.dict);
    Py_XDECREF(h_front.dict); Py_XDECREF(h_stats.dict); Py_XDECREF(h_limiter.dict);
    Py_XDECREF(h_limiter.obj);
    PyMem_Free(wire);
    PyMem_Free(out);
    return result;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS,
     "serve(fd, thread, answerer, cache, front, stats, one, Rotation, PER_CLIENT, "
     "sample_every, memo_entries, latency_bounds): the UDP thread's loop, until "
     "thread.stopping."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_udploop", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__udploop(void) {
    if (intern_names() < 0) return NULL;
    return PyModule_Create(&module);
}
