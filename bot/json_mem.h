/* json_mem.h: cJSON's memory, from the heap or from a per-thread arena.
 *
 * A decoded Telegram update is a tree of some forty small blocks (a node per
 * value, a string per key and per text); parsing and freeing them one by one
 * cost more than the parse itself.  Between json_arena_open() and
 * json_arena_close() on a thread, cJSON's allocations there come from one
 * arena, and the whole tree goes with json_arena_free(), never cJSON_Delete().
 * Elsewhere, and on other threads, cJSON allocates from the heap as usual.
 * The hooks are installed before main() so that every block cJSON ever
 * hands out carries the header json_mem's free reads; blocks from cJSON are
 * freed with cJSON_free() or cJSON_Delete(), never free(). */
#ifndef OBENTCHI_BOT_JSON_MEM_H
#define OBENTCHI_BOT_JSON_MEM_H

#include <stddef.h>

struct json_arena;

/* Starts an arena on this thread, first block sized for about `hint` bytes
 * of JSON text; cJSON allocates from it until json_arena_close(). */
struct json_arena *json_arena_open(size_t hint);
void json_arena_close(struct json_arena *a);
/* Frees everything allocated from a (closed) arena at once. */
void json_arena_free(struct json_arena *a);
/* Bytes taken from the heap by a (its blocks). */
size_t json_arena_bytes(const struct json_arena *a);

#endif
