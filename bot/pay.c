/* pay.c: the money providers behind the generic adapter of issue 7: the
 * withdrawal queue's handler (payouts), the payment queue's handler
 * (invoices) and the provider's callback POST /payments/callback.  What it
 * is not: the ledger (ledger.c) or the queues (queue.c, pool.c); it calls
 * them, and the provider through httpc, never blocking the loop.
 *
 * A payout is never sent twice for one request.  The payout's id and its
 * Idempotency-Key are the job's idempotency key (the withdrawal reference),
 * the same on every attempt, so the provider folds repeats into one payout
 * (409 with the existing object).  An unknown outcome (no answer, timeout,
 * 5xx) is never answered by another POST at once: the job fails with the
 * note "unknown", and its next attempt (as every retry, and every attempt
 * after a lease ran out or a crash) first asks GET /payouts/<id>; only a 404
 * there makes a new POST safe.  The ledger closes a hold once (settle or
 * release), and the user is told only by the step that closed it.
 *
 *   POST {payout-api-url}/payouts         -> 200/201 {"id","status","reason"}
 *        completed: settle, tell withdraw_done      failed: release, tell refused
 *        pending:   poll again after payout-poll-ms (the attempt is not counted)
 *        409: the existing payout (as 200)          other 4xx: refused (release)
 *        401, 408, 429, 5xx, no answer: retried with backoff (GET first)
 *   GET  {payout-api-url}/payouts/<id>    -> the object, or 404 (POST again)
 *
 * Deposits: the payment job creates the invoice (POST /invoices), records it
 * (invoice:{inv:<id>}: user_id amount pay_url status) and sends the pay
 * link; the callback, signed with HMAC-SHA256 over the raw body, credits the
 * user once per provider payment id (ledger reference "pay:<payment_id>"). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/alloc.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/num.h"
#include "engine.h"
#include "hash.h"
#include "http.h"
#include "httpc.h"
#include "keys.h"
#include "ledger.h"
#include "parts.h"
#include "queue.h"
#include "tg.h"

static struct pay_opts {
    char *payout_url, *payout_key;
    char *payment_url, *payment_key;
    char *callback_secret;
    int64_t poll_ms, timeout_ms;
} po;

static const struct cfg_option options[] = {
    {"payout-api-url", NULL, CFG_STRING, 0, &po.payout_url, "", 0, 0, NULL, NULL, NULL, NULL},
    {"payout-api-key", NULL, CFG_STRING, CFG_SECRET | CFG_FILE_OK, &po.payout_key, "", 0, 0, NULL, NULL, NULL, NULL},
    {"payment-api-url", NULL, CFG_STRING, 0, &po.payment_url, "", 0, 0, NULL, NULL, NULL, NULL},
    {"payment-api-key", NULL, CFG_STRING, CFG_SECRET | CFG_FILE_OK, &po.payment_key, "", 0, 0, NULL, NULL, NULL,
     NULL},
    {"payment-callback-secret", NULL, CFG_STRING, CFG_SECRET | CFG_FILE_OK, &po.callback_secret, "", 0, 0, NULL,
     NULL, NULL, NULL},
    {"payout-poll-ms", NULL, CFG_INT, 0, &po.poll_ms, "5000", 10, 86400000, NULL, NULL, NULL, NULL},
    {"provider-timeout-ms", NULL, CFG_INT, 0, &po.timeout_ms, "10000", 10, 600000, NULL, NULL, NULL, NULL},
};

static struct cfg *the_cfg; /* to read "currency" (tg.c's option) at start */

/* Outcomes counted for /metrics (loop thread only). */
enum { PO_COMPLETED, PO_REFUSED, PO_PENDING, PO_UNKNOWN, PO_CONFLICT, PO__N };
static const char *const po_names[] = {"completed", "refused", "pending", "unknown", "conflict"};
enum { CB_CREDITED, CB_DUPLICATE, CB_BAD_SIGNATURE, CB_BAD_REQUEST, CB_UNKNOWN_INVOICE, CB_IGNORED, CB__N };
static const char *const cb_names[] = {"credited", "duplicate", "bad_signature", "bad_request", "unknown_invoice",
                                       "ignored"};

struct op;

struct pay {
    struct app *a;
    char currency[16];
    struct op *ops; /* in flight, so that stop can orphan them */
    uint64_t payouts[PO__N], callbacks[CB__N], invoices_ok, invoices_failed;
};

/* One job's provider conversation. */
struct op {
    struct pay *ps;
    struct bot_job *job; /* NULL once orphaned (the part stopped) */
    struct op *prev, *next;
    int64_t uid, amount;
    char address[128], ref[96], key[160], invoice[96];
};

static void op_link(struct pay *ps, struct op *o)
{
    o->ps = ps;
    o->next = ps->ops;
    o->prev = NULL;
    if (ps->ops)
        ps->ops->prev = o;
    ps->ops = o;
}

static void op_free(struct op *o)
{
    if (o->job) { /* still linked */
        if (o->prev)
            o->prev->next = o->next;
        else
            o->ps->ops = o->next;
        if (o->next)
            o->next->prev = o->prev;
    }
    xfree(o);
}

/* ---- small helpers ---------------------------------------------------------------------------- */

static int json_i64(const cJSON *o, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

static int json_str(const cJSON *o, const char *name, char *dst, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= cap)
        return -1;
    memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
    return 0;
}

static void lock_user(struct eng_ctx *c, struct app *a, int64_t uid, const char *extra_key)
{
    char tag[32];
    key_user_tag(tag, sizeof tag, uid);
    struct eng_str keys[2] = {{tag, strlen(tag)}, {extra_key, extra_key ? strlen(extra_key) : 0}};
    eng_ctx_init(c, app_engine(a), 0);
    eng_lock_keys(c, keys, extra_key ? 2 : 1);
    eng_journal_multi(c, 1);
}

static void unlock(struct eng_ctx *c)
{
    eng_journal_multi(c, 0);
    eng_unlock(c);
}

static int send(struct op *o, const char *method, const char *url, const char *key, const char *idem,
                const char *body, httpc_cb *cb)
{
    char auth[512], idh[200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key ? key : "");
    snprintf(idh, sizeof idh, "Idempotency-Key: %s", idem);
    const char *headers[] = {auth, idh, "Content-Type: application/json", "Accept: application/json", NULL};
    struct httpc_request req = {.method = method,
                                .url = url,
                                .headers = headers,
                                .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ms = po.timeout_ms};
    return httpc_send(app_httpc(o->ps->a), &req, cb, o);
}

/* POSTs {id, user_id, amount, currency[, address]} to url, with id as the
 * Idempotency-Key. */
static int post_object(struct op *o, const char *url, const char *key, const char *id, const char *address,
                       httpc_cb *cb)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "id", id);
    cJSON_AddNumberToObject(b, "user_id", (double)o->uid);
    cJSON_AddNumberToObject(b, "amount", (double)o->amount);
    cJSON_AddStringToObject(b, "currency", o->ps->currency);
    if (address)
        cJSON_AddStringToObject(b, "address", address);
    char *body = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    int rc = send(o, "POST", url, key, id, body, cb);
    cJSON_free(body);
    return rc;
}

/* A 4xx the provider would answer again (not 401, 408 or 429): no retry. */
static int http_final(int s) { return s >= 400 && s < 500 && s != 401 && s != 408 && s != 429; }

/* 1, with o freed, when the part stopped while o's request was in flight. */
static int orphaned(struct op *o)
{
    if (o->job)
        return 0;
    op_free(o);
    return 1;
}

/* A job's conversation, linked; its payload's user_id and amount (both > 0)
 * read into it.  Returns the payload for the caller's own fields, or NULL
 * when it is not JSON or lacks those two. */
static cJSON *op_start(struct pay *ps, struct bot_job *job, struct op **out)
{
    struct op *o = xcalloc(1, sizeof *o);
    o->job = job;
    op_link(ps, o);
    *out = o;
    cJSON *p = cJSON_ParseWithLength(job->payload, job->payload_len);
    if (p && json_i64(p, "user_id", &o->uid) == 0 && o->uid > 0 && json_i64(p, "amount", &o->amount) == 0 &&
        o->amount > 0)
        return p;
    cJSON_Delete(p);
    return NULL;
}

/* ---- withdrawals ---------------------------------------------------------------------------- */

static void payout_post(struct op *o);
static void payout_get(struct op *o);

/* Closes the hold (settle or release) and tells the user, in one step;
 * the user hears only from the step that closed it. */
static void close_hold(struct op *o, int settle, const char *reason)
{
    struct app *a = o->ps->a;
    struct eng_ctx c;
    lock_user(&c, a, o->uid, NULL);
    int rc = settle ? bot_ledger_settle(&c, o->uid, o->ref) : bot_ledger_release(&c, o->uid, o->ref);
    if (rc == LEDGER_OK) {
        char amount[48];
        bot_amount_text(o->amount, amount, sizeof amount);
        if (settle)
            bot_tell(&c, a, o->uid, "withdraw_done", amount);
        else
            bot_tell(&c, a, o->uid, "withdraw_refused", amount, reason && *reason ? reason : "refused");
    }
    unlock(&c);
    log_info(settle ? "payout completed" : "payout refused", "uid=%lld amount=%lld ref=%s hold=%s reason=\"%s\"",
             (long long)o->uid, (long long)o->amount, o->ref, rc == LEDGER_OK ? "closed" : "already closed",
             reason ? reason : "");
}

static void job_done(struct op *o, const char *result)
{
    bot_job_done(o->ps->a, o->job, result);
    op_free(o);
}

static void job_fail(struct op *o, const char *error, int permanent)
{
    bot_job_fail(o->ps->a, o->job, error, permanent, -1);
    op_free(o);
}

/* The provider's payout object (parsed once, by the caller): what happened
 * to it. */
static void payout_object(struct op *o, const cJSON *j)
{
    char status[32] = "", reason[128] = "";
    if (j) {
        json_str(j, "status", status, sizeof status);
        json_str(j, "reason", reason, sizeof reason);
    }
    char result[256];
    snprintf(result, sizeof result, "{\"payout\":\"%s\",\"status\":\"%s\"}", o->key, status);
    if (!strcmp(status, "completed")) {
        o->ps->payouts[PO_COMPLETED]++;
        close_hold(o, 1, NULL);
        job_done(o, result);
    } else if (!strcmp(status, "failed")) {
        o->ps->payouts[PO_REFUSED]++;
        close_hold(o, 0, reason);
        job_done(o, result);
    } else if (!strcmp(status, "pending")) {
        o->ps->payouts[PO_PENDING]++;
        bot_job_later(o->ps->a, o->job, po.poll_ms, "pending");
        op_free(o);
    } else {
        o->ps->payouts[PO_UNKNOWN]++;
        job_fail(o, "unknown: unexpected payout object from the provider", 0);
    }
}

static void payout_posted(void *ud, const struct httpc_result *r)
{
    struct op *o = ud;
    if (orphaned(o))
        return;
    int s = r->status;
    char err[320];
    if (s == 200 || s == 201 || s == 409) {
        if (s == 409)
            o->ps->payouts[PO_CONFLICT]++;
        cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
        if (j && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "status")))
            payout_object(o, j);
        else
            payout_get(o); /* 409 without the object: ask for it */
        cJSON_Delete(j);
    } else if (http_final(s)) {
        cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
        char reason[128] = "";
        if (j && json_str(j, "reason", reason, sizeof reason) < 0)
            json_str(j, "error", reason, sizeof reason);
        cJSON_Delete(j);
        if (!reason[0])
            snprintf(reason, sizeof reason, "refused by the provider (HTTP %d)", s);
        o->ps->payouts[PO_REFUSED]++;
        close_hold(o, 0, reason);
        snprintf(err, sizeof err, "{\"payout\":\"%s\",\"status\":\"refused\",\"http\":%d}", o->key, s);
        job_done(o, err);
    } else {
        /* No payout may be assumed either way: the next attempt asks first. */
        o->ps->payouts[PO_UNKNOWN]++;
        if (s)
            snprintf(err, sizeof err, "unknown: payout POST answered HTTP %d", s);
        else
            snprintf(err, sizeof err, "unknown: payout POST got no answer (%.100s)", r->error ? r->error : "error");
        log_warn("payout outcome unknown", "key=%s status=%d error=\"%s\"", o->key, s, r->error ? r->error : "");
        job_fail(o, err, 0);
    }
}

static void payout_got(void *ud, const struct httpc_result *r)
{
    struct op *o = ud;
    if (orphaned(o))
        return;
    char err[160];
    if (r->status == 200) {
        cJSON *j = cJSON_ParseWithLength(r->body, r->body_len);
        payout_object(o, j);
        cJSON_Delete(j);
    } else if (r->status == 404) {
        payout_post(o); /* the provider never saw it: safe to send */
    } else {
        snprintf(err, sizeof err, "unknown: payout status check answered %d %.100s", r->status, r->error ? r->error : "");
        job_fail(o, err, 0);
    }
}

static void payout_post(struct op *o)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/payouts", po.payout_url);
    if (post_object(o, url, po.payout_key, o->key, o->address, payout_posted) < 0)
        job_fail(o, "payout request could not start", 0); /* nothing sent */
}

static void payout_get(struct op *o)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/payouts/%s", po.payout_url, o->key);
    if (send(o, "GET", url, po.payout_key, o->key, NULL, payout_got) < 0)
        job_fail(o, "unknown: payout status check could not start", 0);
}

static void withdrawal_handler(void *ud, struct app *a, struct bot_job *job)
{
    struct op *o;
    cJSON *p = op_start(ud, job, &o);
    if (!p || json_str(p, "address", o->address, sizeof o->address) < 0 ||
        json_str(p, "ref", o->ref, sizeof o->ref) < 0) {
        cJSON_Delete(p);
        job_fail(o, "invalid payload: user_id, amount (> 0), address and ref are required", 1);
        return;
    }
    cJSON_Delete(p);
    snprintf(o->key, sizeof o->key, "%s", job->idem[0] ? job->idem : o->ref);
    if (job->attempts > 1 || job->last_error[0])
        payout_get(o); /* an earlier attempt may have reached the provider */
    else
        payout_post(o);
}

/* ---- deposits: invoices --------------------------------------------------------------------- */

static void invoice_key(char *buf, size_t n, const char *invoice) { snprintf(buf, n, "invoice:{inv:%s}", invoice); }

static void invoice_created(void *ud, const struct httpc_result *r)
{
    struct op *o = ud;
    if (orphaned(o))
        return;
    char url[512] = "", err[200];
    cJSON *j = (r->status == 200 || r->status == 201 || r->status == 409)
                   ? cJSON_ParseWithLength(r->body, r->body_len)
                   : NULL;
    if (j && json_str(j, "pay_url", url, sizeof url) == 0) {
        cJSON_Delete(j);
        struct app *a = o->ps->a;
        char ikey[160], uid[24], amount[24], now[24];
        invoice_key(ikey, sizeof ikey, o->invoice);
        struct eng_ctx c;
        lock_user(&c, a, o->uid, ikey);
        uid[num_fmt_i64(uid, o->uid)] = 0;
        amount[num_fmt_i64(amount, o->amount)] = 0;
        now[num_fmt_i64(now, c.now_ms)] = 0;
        struct eng_str v;
        int told = eng_hget(&c, ikey, strlen(ikey), "pay_url", 7, &v) == 0; /* a retry after a crash */
        struct eng_str fv[] = {{"user_id", 7}, {uid, strlen(uid)},       {"amount", 6},  {amount, strlen(amount)},
                               {"pay_url", 7}, {url, strlen(url)},       {"created", 7}, {now, strlen(now)},
                               {"status", 6},  {"open", 4}};
        int64_t added;
        if (!told) {
            eng_hset(&c, ikey, strlen(ikey), fv, 5, &added);
            char text[48];
            bot_amount_text(o->amount, text, sizeof text);
            bot_tell(&c, a, o->uid, "deposit_link", text, url);
        }
        unlock(&c);
        o->ps->invoices_ok++;
        snprintf(err, sizeof err, "{\"invoice\":\"%s\"}", o->invoice);
        job_done(o, err);
        return;
    }
    cJSON_Delete(j);
    o->ps->invoices_failed++;
    snprintf(err, sizeof err, "invoice: HTTP %d %.100s", r->status, r->error ? r->error : "");
    job_fail(o, err, http_final(r->status));
}

static void payment_handler(void *ud, struct app *a, struct bot_job *job)
{
    struct op *o;
    cJSON *p = op_start(ud, job, &o);
    if (!p || json_str(p, "invoice_id", o->invoice, sizeof o->invoice) < 0) {
        cJSON_Delete(p);
        job_fail(o, "invalid payload: user_id, amount (> 0) and invoice_id are required", 1);
        return;
    }
    cJSON_Delete(p);
    char url[1024];
    snprintf(url, sizeof url, "%s/invoices", po.payment_url);
    if (post_object(o, url, po.payment_key, o->invoice, NULL, invoice_created) < 0)
        job_fail(o, "invoice request could not start", 0);
}

/* ---- the provider's callback ---------------------------------------------------------------- */

static void reply(struct http_response *res, int status, const char *json)
{
    http_reply_json(res, status, json, strlen(json));
}

/* Lower-case hex HMAC-SHA256 of body under secret into hex (65 bytes). */
static void hmac_hex(const char *secret, const char *body, size_t len, char *hex)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, len, mac, &n);
    for (unsigned i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    hex[2 * n] = 0;
}

static int signature_ok(const struct http_request *req)
{
    const char *sig = http_header(req, "X-Signature");
    if (!sig || !po.callback_secret || !*po.callback_secret)
        return 0;
    char want[2 * EVP_MAX_MD_SIZE + 1], got[2 * EVP_MAX_MD_SIZE + 1];
    hmac_hex(po.callback_secret, req->body ? req->body : "", req->body_len, want);
    size_t n = strlen(sig);
    if (n >= sizeof got)
        return 0;
    for (size_t i = 0; i <= n; i++)
        got[i] = (char)(sig[i] >= 'A' && sig[i] <= 'F' ? sig[i] + 32 : sig[i]);
    return http_secret_eq(want, strlen(want), got, n);
}

static void on_callback(void *ud, const struct http_request *req, struct http_response *res)
{
    struct pay *ps = ud;
    struct app *a = ps->a;
    if (!app_is_master(a)) {
        reply(res, 503, "{\"error\":\"replica: send to the master\"}");
        return;
    }
    if (!po.callback_secret || !*po.callback_secret) {
        reply(res, 503, "{\"error\":\"payment-callback-secret is not set\"}");
        return;
    }
    if (!signature_ok(req)) {
        ps->callbacks[CB_BAD_SIGNATURE]++;
        log_warn("payment callback refused", "peer=%s reason=\"bad signature\"", req->peer ? req->peer : "");
        reply(res, 401, "{\"error\":\"bad signature\"}");
        return;
    }
    cJSON *j = cJSON_ParseWithLength(req->body, req->body_len);
    char invoice[96], payment[80], status[32];
    int64_t amount;
    if (!j || json_str(j, "invoice_id", invoice, sizeof invoice) < 0 ||
        json_str(j, "payment_id", payment, sizeof payment) < 0 || json_str(j, "status", status, sizeof status) < 0 ||
        json_i64(j, "amount", &amount) < 0 || amount <= 0) {
        cJSON_Delete(j);
        ps->callbacks[CB_BAD_REQUEST]++;
        reply(res, 400,
              "{\"error\":\"invoice_id, payment_id, status (strings) and amount (integer > 0) are required\"}");
        return;
    }
    cJSON_Delete(j);
    if (strcmp(status, "paid")) {
        ps->callbacks[CB_IGNORED]++;
        reply(res, 200, "{\"ok\":true,\"ignored\":\"status is not paid\"}");
        return;
    }
    /* Who paid: the invoice says (read under its lock, then locked again
     * together with the user's tag for the credit). */
    char ikey[160];
    invoice_key(ikey, sizeof ikey, invoice);
    struct eng_str k = {ikey, strlen(ikey)}, v;
    struct eng_ctx c;
    int64_t uid = 0, expect = 0;
    eng_ctx_init(&c, app_engine(a), 0);
    eng_lock_keys(&c, &k, 1);
    if (eng_hget(&c, ikey, k.n, "user_id", 7, &v) == 0)
        num_parse_i64(v.p, v.n, &uid);
    if (eng_hget(&c, ikey, k.n, "amount", 6, &v) == 0)
        num_parse_i64(v.p, v.n, &expect);
    eng_unlock(&c);
    if (uid <= 0) {
        ps->callbacks[CB_UNKNOWN_INVOICE]++;
        reply(res, 404, "{\"error\":\"unknown invoice\"}");
        return;
    }
    if (amount != expect)
        log_warn("payment amount differs", "invoice=%s invoiced=%lld paid=%lld", invoice, (long long)expect,
                 (long long)amount);
    char ref[96];
    snprintf(ref, sizeof ref, "pay:%s", payment);
    lock_user(&c, a, uid, ikey);
    int rc = bot_ledger_post(&c, uid, amount, "deposit", ref);
    if (rc == LEDGER_OK) {
        struct eng_str fv[] = {{"status", 6}, {"paid", 4}, {"payment_id", 10}, {payment, strlen(payment)}};
        int64_t added;
        eng_hset(&c, ikey, k.n, fv, 2, &added);
        char text[48];
        bot_amount_text(amount, text, sizeof text);
        bot_tell(&c, a, uid, "deposit_credited", text);
    }
    unlock(&c);
    if (rc == LEDGER_OK) {
        ps->callbacks[CB_CREDITED]++;
        log_info("deposit credited", "uid=%lld amount=%lld payment=%s invoice=%s", (long long)uid, (long long)amount,
                 payment, invoice);
        reply(res, 200, "{\"ok\":true,\"credited\":true}");
    } else if (rc == LEDGER_DUP) {
        ps->callbacks[CB_DUPLICATE]++;
        reply(res, 200, "{\"ok\":true,\"duplicate\":true}");
    } else {
        reply(res, 500, "{\"error\":\"ledger refused the credit\"}");
    }
}

/* ---- metrics and the part ------------------------------------------------------------------- */

static void collect(void *ud, struct buf *out)
{
    struct pay *ps = ud;
    metrics_family(out, "obentchi_payouts_total", "counter", "Payout provider answers by outcome.");
    for (int i = 0; i < PO__N; i++) {
        const char *labels[] = {"outcome", po_names[i], NULL};
        metrics_sample_int(out, "obentchi_payouts_total", labels, (int64_t)ps->payouts[i]);
    }
    metrics_family(out, "obentchi_payment_callbacks_total", "counter", "Payment provider callbacks by outcome.");
    for (int i = 0; i < CB__N; i++) {
        const char *labels[] = {"outcome", cb_names[i], NULL};
        metrics_sample_int(out, "obentchi_payment_callbacks_total", labels, (int64_t)ps->callbacks[i]);
    }
    metrics_family(out, "obentchi_invoices_total", "counter", "Invoices requested from the payment provider.");
    const char *ok[] = {"outcome", "created", NULL}, *bad[] = {"outcome", "failed", NULL};
    metrics_sample_int(out, "obentchi_invoices_total", ok, (int64_t)ps->invoices_ok);
    metrics_sample_int(out, "obentchi_invoices_total", bad, (int64_t)ps->invoices_failed);
}

static void pay_options(struct cfg *c)
{
    the_cfg = c;
    cfg_register(c, options, sizeof options / sizeof options[0]);
}

static int pay_start(struct app *a, char *err, size_t errlen)
{
    struct pay *ps = xcalloc(1, sizeof *ps);
    ps->a = a;
    struct buf cur;
    buf_init(&cur);
    if (the_cfg && cfg_get(the_cfg, "currency", &cur) == 0 && cur.len && cur.len < sizeof ps->currency)
        memcpy(ps->currency, cur.p, cur.len);
    else
        snprintf(ps->currency, sizeof ps->currency, "USDT");
    buf_release(&cur);
    app_set_part_state(a, "pay", ps);
    if (po.payout_url && *po.payout_url) {
        if (bot_queue_handle(a, "withdrawal", withdrawal_handler, ps) < 0) {
            snprintf(err, errlen, "cannot start the withdrawal pool");
            return -1;
        }
    } else {
        log_warn("withdrawals wait", "reason=\"payout-api-url is not set: withdrawal jobs stay queued\"");
    }
    if (po.payment_url && *po.payment_url) {
        if (bot_queue_handle(a, "payment", payment_handler, ps) < 0) {
            snprintf(err, errlen, "cannot start the payment pool");
            return -1;
        }
    } else {
        log_warn("deposits wait", "reason=\"payment-api-url is not set: payment jobs stay queued\"");
    }
    if (app_http(a))
        http_route(app_http(a), "POST", "/payments/callback", on_callback, ps);
    app_add_collector(a, collect, ps);
    return 0;
}

/* Requests in flight end later (httpc calls back "cancelled"): their ops
 * are orphaned here and free themselves then, touching no job. */
static void pay_stop(struct app *a)
{
    struct pay *ps = app_part_state(a, "pay");
    if (!ps)
        return;
    for (struct op *o = ps->ops, *next; o; o = next) {
        next = o->next;
        o->job = NULL;
    }
    app_set_part_state(a, "pay", NULL);
    xfree(ps);
}

const struct app_part bot_part_pay = {
    .name = "pay",
    .options = pay_options,
    .start = pay_start,
    .stop = pay_stop,
};
