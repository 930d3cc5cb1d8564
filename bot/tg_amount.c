/* tg_amount.c: amounts typed by users ("12.5") to integer minor units and
 * back, and the wallet address check (length and charset, no regex: the
 * charset is an option, so another chain's alphabet is a config change).
 * Not for arithmetic on balances: the ledger does that in minor units. */
#include <stdio.h>
#include <string.h>

#include "tg.h"
#include "tg_int.h"

int tg_amount_parse(const char *s, int64_t max, int64_t *out)
{
    int64_t v = 0;
    int digits = 0, decimals = -1;
    for (const char *p = s; *p; p++) {
        if (*p == '.' || *p == ',') {
            if (decimals >= 0 || !digits)
                return TG_AMT_FORMAT;
            decimals = 0;
            continue;
        }
        if (*p < '0' || *p > '9')
            return TG_AMT_FORMAT;
        if (decimals >= 0 && ++decimals > TG_DECIMALS)
            return TG_AMT_DECIMALS;
        if (v > (INT64_MAX - 9) / 10)
            return TG_AMT_TOOBIG;
        v = v * 10 + (*p - '0');
        digits++;
    }
    if (!digits || decimals == 0)
        return TG_AMT_FORMAT;
    for (int d = decimals < 0 ? 0 : decimals; d < TG_DECIMALS; d++) {
        if (v > INT64_MAX / 10)
            return TG_AMT_TOOBIG;
        v *= 10;
    }
    if (v == 0)
        return TG_AMT_ZERO;
    if (max > 0 && v > max)
        return TG_AMT_TOOBIG;
    *out = v;
    return TG_AMT_OK;
}

int tg_address_check(const char *s)
{
    size_t n = strlen(s);
    if ((int64_t)n < tg__opt.addr_min || (int64_t)n > tg__opt.addr_max)
        return -1;
    const char *cs = tg__opt.addr_charset ? tg__opt.addr_charset : "";
    for (size_t i = 0; i < n; i++)
        if (!strchr(cs, s[i]) || !s[i])
            return -2;
    return 0;
}

void bot_amount_text(int64_t minor, char *out, size_t n)
{
    const char *cur = tg__opt.currency && *tg__opt.currency ? tg__opt.currency : "USDT";
    uint64_t m = minor < 0 ? -(uint64_t)minor : (uint64_t)minor;
    snprintf(out, n, "%s%llu.%02llu %s", minor < 0 ? "-" : "", (unsigned long long)(m / 100),
             (unsigned long long)(m % 100), cur);
}
