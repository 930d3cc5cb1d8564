/* tg_send.h: the outbox sender (tg_send.c), for tg.c only. */
#ifndef BOT_TG_SEND_H
#define BOT_TG_SEND_H

#include <stdint.h>

#include "base/buf.h"

struct app;
struct tg_send;

/* On the loop, after the app's client exists: nsenders threads, each
 * sending for its share of the chats. */
struct tg_send *tg_send_new(struct app *a, int nsenders);
/* chat has something in its outbox (loop thread). */
void tg_send_wake(struct tg_send *s, int64_t chat);
/* Between these two, this thread's tg_send_wake() calls queue the chats
 * but wake each sender once, at the release: a turn that answers many
 * updates, under their chats' locks, makes no system call there. */
void tg_send_hold(struct tg_send *s);
void tg_send_release(struct tg_send *s);
/* Closes the timer; the state goes once no request is in flight. */
void tg_send_free(struct tg_send *s);
/* Milliseconds since the stalest sender thread's heartbeat timer last ran
 * (any thread). */
int64_t tg_send_beat_age_ms(struct tg_send *s);
/* Prometheus families of the sender. */
void tg_send_metrics(struct tg_send *s, struct buf *out);

#endif
