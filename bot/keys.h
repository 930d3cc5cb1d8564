/* keys.h: the bot's key layout in the engine (documented for ops in the
 * README, readable with redis-cli).  Keys that change together share a hash
 * tag, so one shard lock covers them:
 *
 *   {u:<uid>}   everything of one user / private chat (chat id = user id):
 *     user:{u:<uid>}        hash  id lang name created referrer active balance held
 *     ledger:{u:<uid>}      list  JSON entries, newest first (LPUSH)
 *     ledger:refs:{u:<uid>} set   references already posted (exactly once)
 *     session:{u:<uid>}     hash  conversation state, TTL bot-session-ttl
 *     outbox:{u:<uid>}      list  pending Bot API calls for that chat (JSON)
 *     inbox:{u:<uid>}       list  recorded updates not processed yet (raw JSON)
 *   {q:<queue>}  one job queue:
 *     queue:{q:<name>}:waiting    list  job ids (LPUSH in, RPOP out)
 *     queue:{q:<name>}:active     zset  job id -> lease deadline (ms)
 *     queue:{q:<name>}:delayed    zset  job id -> due time (ms)
 *     queue:{q:<name>}:completed  list  job ids, newest first, bounded
 *     queue:{q:<name>}:dead       list  job ids, newest first
 *     queue:{q:<name>}:idem       hash  idempotency key -> job id
 *     queue:{q:<name>}:stats      hash  counters
 *     job:{q:<name>}:<id>         hash  the job's fields
 *   {tg}   ingress:
 *     tg:seen:{tg}          zset  update_id -> ms first seen (dedupe, tg_update.c)
 *   {sched} schedules, {bc} broadcasts: their files document them.
 *
 * Lock a whole group by locking its tag: eng_lock_keys() on the string
 * KEY_TAG_USER(uid) locks every key of that user. */
#ifndef BOT_KEYS_H
#define BOT_KEYS_H

#include <stdint.h>
#include <stdio.h>

/* Writes "{u:<uid>}" (the user's lock key) into buf. */
static inline int key_user_tag(char *buf, size_t n, int64_t uid)
{
    return snprintf(buf, n, "{u:%lld}", (long long)uid);
}
/* Writes "<prefix>:{u:<uid>}" (e.g. "user", "ledger", "session"). */
static inline int key_user(char *buf, size_t n, const char *prefix, int64_t uid)
{
    return snprintf(buf, n, "%s:{u:%lld}", prefix, (long long)uid);
}
/* Writes "{q:<name>}" (a queue's lock key). */
static inline int key_queue_tag(char *buf, size_t n, const char *queue)
{
    return snprintf(buf, n, "{q:%s}", queue);
}

#endif
