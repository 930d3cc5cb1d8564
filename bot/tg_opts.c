/* tg_opts.c: where the Telegram part's options land (tg.c registers the
 * table), and the same defaults for code that runs without a configuration
 * (unit tests).  Kept apart from tg.c so that tests of the engine-side files
 * link without the loop, the listener and the client. */
#include "tg_int.h"

struct tg_opts tg__opt;

void tg__opts_defaults(void)
{
    static char charset[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static char usdt[] = "USDT", empty[] = "", url[] = "https://api.telegram.org";
    tg__opt = (struct tg_opts){.token = empty, .api_url = url, .secret = empty, .session_ttl = 86400,
                               .rate_global = 30, .rate_chat = 1, .rate_bulk = 30, .currency = usdt,
                               .max_withdrawal = 1000000, .max_deposit = 10000000, .addr_min = 26,
                               .addr_max = 64, .addr_charset = charset, .dedupe_window = 86400,
                               .dedupe_max = 1000000, .max_inflight = 64};
}
