/* UTF-8, strictly (no overlong forms, no surrogates, nothing past U+10FFFF):
 * every JSON zquant reads must be, or what it writes (.zq metadata, --json
 * output) would not be JSON. */
#ifndef ZQ_UTF8_H
#define ZQ_UTF8_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Length of the valid UTF-8 character at s (at most n bytes), 0 if none. */
size_t zq_utf8_char(const unsigned char *s, size_t n);
int zq_utf8_valid(const char *s, size_t n);
/* The first key or string in j (recursively) that is not valid UTF-8, as
 * cJSON decoded it (escapes such as a lone \ud800 included); NULL if none. */
const char *zq_json_bad_utf8(const cJSON *j);

#endif
