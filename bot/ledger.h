/* ledger.h: balances in integer minor units, every movement a ledger entry.
 *
 * Invariant: a user's balance (user:{u:<uid>} field "balance") always equals
 * the sum of the amounts of their ledger entries, and never goes below zero.
 * A hold (withdrawal confirmed) is an entry of -amount of kind "hold"; a
 * settle (payout done) changes nothing in the sum (kind "settle", amount 0,
 * marks the hold final); a release (payout refused) is +amount of kind
 * "release".  "held" counts the amount in open holds.  References are
 * unique per user: posting a reference already posted does nothing and
 * returns LEDGER_DUP (exactly once: provider payment ids, job keys).
 *
 * Every function runs inside a context whose locks cover the user's tag
 * (keys.h: key_user_tag); callers lock it together with what else must
 * change atomically (a queue's tag for "hold and enqueue"). */
#ifndef BOT_LEDGER_H
#define BOT_LEDGER_H

#include <stdint.h>

#include "base/buf.h"

struct eng_ctx;

enum {
    LEDGER_OK = 0,
    LEDGER_DUP = 1,       /* reference already posted: nothing changed */
    LEDGER_SHORT = -1001, /* balance too low: nothing changed */
    LEDGER_NOHOLD = -1002 /* settle/release of an unknown or closed hold */
};

struct bot_ledger_entry {
    int64_t amount;     /* signed, minor units */
    char kind[16];      /* deposit, hold, release, settle, adjust */
    char ref[96];
    int64_t time_ms;
    int64_t balance;    /* balance after this entry */
};

int64_t bot_ledger_balance(struct eng_ctx *c, int64_t uid);
int64_t bot_ledger_held(struct eng_ctx *c, int64_t uid);
/* Credits (amount > 0) or debits (< 0) with kind and a unique ref. */
int bot_ledger_post(struct eng_ctx *c, int64_t uid, int64_t amount, const char *kind, const char *ref);
/* Holds amount (> 0) under ref; LEDGER_SHORT when balance < amount. */
int bot_ledger_hold(struct eng_ctx *c, int64_t uid, int64_t amount, const char *ref);
/* Closes the hold ref: settle (the money left) or release (it comes back). */
int bot_ledger_settle(struct eng_ctx *c, int64_t uid, const char *ref);
int bot_ledger_release(struct eng_ctx *c, int64_t uid, const char *ref);
/* The newest n entries, newest first; returns how many were written. */
int bot_ledger_history(struct eng_ctx *c, int64_t uid, struct bot_ledger_entry *out, int n);
/* Recomputes the sum of the ledger: 1 when it equals the balance. */
int bot_ledger_check(struct eng_ctx *c, int64_t uid);

#endif
