/* Strict UTF-8 checks (see utf8.h). */
#include "base/utf8.h"

#include <string.h>

size_t zq_utf8_char(const unsigned char *s, size_t n)
{
    if (!n) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if ((s[k] & 0xc0) != 0x80) return 0;
    /* the second byte's range rules out overlong forms, surrogates, > U+10FFFF */
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

int zq_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = zq_utf8_char(p + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

const char *zq_json_bad_utf8(const cJSON *j)
{
    for (; j; j = j->next) {
        if (j->string && !zq_utf8_valid(j->string, strlen(j->string))) return j->string;
        if (cJSON_IsString(j) && j->valuestring && !zq_utf8_valid(j->valuestring, strlen(j->valuestring)))
            return j->valuestring;
        const char *bad = zq_json_bad_utf8(j->child);
        if (bad) return bad;
    }
    return NULL;
}
