/* api.c: placeholder so the tree builds while the part is written. */
#include "parts.h"

const struct app_part bot_part_api = {.name = "api"};
