/* fuzz_tg_update.c: libFuzzer target for the Telegram Update decoder
 * (bot/tg_update.c): the JSON body of a webhook call, decoded and checked
 * as the webhook does (tg_update_decode), then, when it is an Update,
 * recorded as the webhook records it (tg_ingest: dedupe by update_id and
 * the chat's inbox) into an in-process engine.  The input is the body as
 * it would arrive, any bytes.
 *
 * Checked besides ASan/UBSan: a decoded update's strings are never NULL,
 * its kind is known, it names a chat only with a sender, and ingesting the
 * same update twice records it once. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "tg_int.h"
#include "fuzz.h"

static struct eng *E;

void fuzz_cleanup(void)
{
    eng_free(E);
    E = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!E) {
        struct eng_config ec = {.nshards = 2, .ndb = 1, .maxmemory_samples = 5};
        E = eng_new(&ec);
    }
    /* the listener hands bodies over NUL-terminated; the decoder must not
     * need it: an exact-size copy */
    char *body = xmalloc(size ? size : 1);
    memcpy(body, data, size);
    struct tg_update u;
    char err[256];
    err[0] = '\0';
    if (tg_update_decode(body, size, &u, err, sizeof err) < 0) {
        CHECK(err[0] && u.root == NULL);
    } else {
        CHECK(u.lang && u.name && u.text && u.cb_id && u.cb_data && u.member_status);
        CHECK(u.kind >= 0 && u.kind < TG_K__COUNT);
        CHECK(u.chat_id == 0 || u.user_id > 0);
        CHECK(u.update_id >= 0);
        int first = tg_ingest(E, &u, body, size, 1700000000000LL);
        int again = tg_ingest(E, &u, body, size, 1700000000001LL);
        CHECK(first < 0 || again == 0);
        tg_update_release(&u);
    }
    xfree(body);
    fuzz_flush(E);
    return 0;
}
