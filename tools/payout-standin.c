/* payout-standin: a fast payout provider stand-in for tools/bench-queue
 * (issue 7's benchmark, not the tests: they use tests/standins/providers.py,
 * which fails on demand).  One process, one libuv loop, the server's own
 * HTTP listener (protocol/http.c, http-parser), keep-alive.
 *
 *   POST /payouts       Authorization: Bearer <key>, Idempotency-Key: <k>,
 *                       {"id": k, "user_id", "amount", "currency", "address"}
 *                       -> 201 {"id","status":"completed"} (new key)
 *                       -> 409 the existing payout (a repeated key)
 *                       -> 400 a bad body, 401 a wrong key
 *   GET  /payouts/<id>  -> 200 the payout, or 404
 *   GET  /_stats        -> {"payouts","posts","conflicts","gets","unauthorized",
 *                          "bad","max_posts_per_key","keys_posted_twice"}
 *
 * It never makes two payouts for one key; it counts the POSTs per key, so
 * the benchmark can tell whether obentchi ever sent one twice.
 *
 *   payout-standin --port 9100 [--bind 127.0.0.1] [--key secret]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <xxhash.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "http.h"
#include "standin.h"

struct payout {
    struct payout *next;
    char *key;
    int64_t user_id, amount;
    int posts;
};

static struct {
    struct payout **table;
    size_t size, used;
    const char *auth; /* "Bearer <key>" */
    uint64_t posts, conflicts, gets, unauthorized, bad;
    int max_posts;
    uint64_t keys_posted_twice;
} st;

static struct payout **slot_of(const char *key, size_t n)
{
    struct payout **pp = &st.table[XXH3_64bits(key, n) & (st.size - 1)];
    while (*pp && (strlen((*pp)->key) != n || memcmp((*pp)->key, key, n)))
        pp = &(*pp)->next;
    return pp;
}

static void grow(void)
{
    size_t old = st.size;
    struct payout **t = st.table;
    st.size = old ? old * 2 : 1024;
    st.table = xcalloc(st.size, sizeof *st.table);
    for (size_t i = 0; i < old; i++)
        for (struct payout *p = t[i], *next; p; p = next) {
            next = p->next;
            struct payout **b = &st.table[XXH3_64bits(p->key, strlen(p->key)) & (st.size - 1)];
            p->next = *b;
            *b = p;
        }
    xfree(t);
}

static int authorized(const struct http_request *req, struct http_response *res)
{
    const char *a = http_header(req, "Authorization");
    if (a && !strcmp(a, st.auth))
        return 1;
    st.unauthorized++;
    http_reply_json(res, 401, "{\"error\":\"unauthorized\"}", 24);
    return 0;
}

static void reply_payout(struct http_response *res, int status, const struct payout *p)
{
    char body[512];
    int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"status\":\"completed\",\"user_id\":%lld,\"amount\":%lld}",
                     p->key, (long long)p->user_id, (long long)p->amount);
    http_reply_json(res, status, body, (size_t)n);
}

static void on_post(void *ud, const struct http_request *req, struct http_response *res)
{
    if (!authorized(req, res))
        return;
    const char *key = http_header(req, "Idempotency-Key");
    cJSON *j = cJSON_ParseWithLength(req->body ? req->body : "", req->body_len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id"), *uid = cJSON_GetObjectItemCaseSensitive(j, "user_id"),
                *amount = cJSON_GetObjectItemCaseSensitive(j, "amount"),
                *cur = cJSON_GetObjectItemCaseSensitive(j, "currency"),
                *addr = cJSON_GetObjectItemCaseSensitive(j, "address");
    if (!key || !*key || strlen(key) > 200 || !cJSON_IsString(id) || strcmp(id->valuestring, key) ||
        !cJSON_IsNumber(uid) || !cJSON_IsNumber(amount) || amount->valuedouble < 1 || !cJSON_IsString(cur) ||
        !cJSON_IsString(addr) || !*addr->valuestring) {
        cJSON_Delete(j);
        st.bad++;
        static const char msg[] = "{\"error\":\"bad request: id (= Idempotency-Key), user_id, amount, currency, "
                                  "address\"}";
        http_reply_json(res, 400, msg, sizeof msg - 1);
        return;
    }
    st.posts++;
    size_t n = strlen(key);
    struct payout **pp = slot_of(key, n), *p = *pp;
    if (p) { /* a repeated key: the existing payout, never a second one */
        cJSON_Delete(j);
        st.conflicts++;
        if (++p->posts == 2)
            st.keys_posted_twice++;
        if (p->posts > st.max_posts)
            st.max_posts = p->posts;
        reply_payout(res, 409, p);
        return;
    }
    p = xcalloc(1, sizeof *p);
    p->key = xstrndup(key, n);
    p->user_id = (int64_t)uid->valuedouble;
    p->amount = (int64_t)amount->valuedouble;
    p->posts = 1;
    cJSON_Delete(j);
    *pp = p;
    if (st.max_posts < 1)
        st.max_posts = 1;
    if (++st.used > st.size)
        grow();
    reply_payout(res, 201, p);
}

static void on_get(void *ud, const struct http_request *req, struct http_response *res)
{
    if (!authorized(req, res))
        return;
    st.gets++;
    const char *id = req->path + strlen("/payouts/");
    struct payout *p = *slot_of(id, strlen(id));
    if (p)
        reply_payout(res, 200, p);
    else
        http_reply_json(res, 404, "{\"error\":\"no such payout\"}", 26);
}

static void on_stats(void *ud, const struct http_request *req, struct http_response *res)
{
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"payouts\":%zu,\"posts\":%llu,\"conflicts\":%llu,\"gets\":%llu,\"unauthorized\":%llu,"
                     "\"bad\":%llu,\"max_posts_per_key\":%d,\"keys_posted_twice\":%llu}",
                     st.used, (unsigned long long)st.posts, (unsigned long long)st.conflicts,
                     (unsigned long long)st.gets, (unsigned long long)st.unauthorized, (unsigned long long)st.bad,
                     st.max_posts, (unsigned long long)st.keys_posted_twice);
    http_reply_json(res, 200, body, (size_t)n);
}

static void routes(struct http_server *srv)
{
    http_route(srv, "POST", "/payouts", on_post, NULL);
    http_route(srv, "GET", "/payouts/*", on_get, NULL);
    http_route(srv, "GET", "/_stats", on_stats, NULL);
}

int main(int argc, char **argv)
{
    struct standin_args a;
    int rc = standin_parse(argc, argv, "payout-standin", "--key", "bench", &a);
    if (rc)
        return rc;
    struct buf auth;
    buf_init(&auth);
    buf_printf(&auth, "Bearer %s", a.secret);
    st.auth = auth.p;
    grow();
    rc = standin_serve("payout-standin", &a, routes);
    for (size_t i = 0; i < st.size; i++)
        for (struct payout *p = st.table[i], *next; p; p = next) {
            next = p->next;
            xfree(p->key);
            xfree(p);
        }
    xfree(st.table);
    buf_release(&auth);
    return rc;
}
