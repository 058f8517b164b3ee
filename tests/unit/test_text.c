/* Strict UTF-8 (base/utf8.c) by hand-worked cases, and decoded text made
 * valid for JSON output. */
#include <stdlib.h>

#include "base/utf8.h"
#include "test.h"
#include "zquant/tokenizer.h"

TEST(utf8_strict)
{
    static const struct {
        const char *s;
        int valid;
    } cases[] = {
        {"plain", 1},         {"caf\xc3\xa9", 1},        {"\xe2\x96\x81", 1},       {"\xf0\x9f\x99\x82", 1},
        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF, the last */
        {"\xff", 0},          {"\xc0\xaf", 0},           {"\xe0\x80\xaf", 0},       /* overlong '/' */
        {"\xed\xa0\x80", 0},  /* a surrogate */          {"\xf4\x90\x80\x80", 0},   /* past U+10FFFF */
        {"\xc3", 0},          /* cut short */            {"\xe2\x96", 0},           {"a\x80", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        CHECK(zq_utf8_valid(cases[k].s, strlen(cases[k].s)) == cases[k].valid);
    /* raw bytes pass through cJSON into keys and strings; the tree check finds them */
    cJSON *j = cJSON_Parse("{\"ok\": [\"fine\", {\"caf\xe9\": 1}]}");
    CHECK(j && zq_json_bad_utf8(j->child) != NULL);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"ok\": \"x\xed\xa0\x80y\"}");
    CHECK(j && zq_json_bad_utf8(j->child) != NULL);
    cJSON_Delete(j);
    CHECK(cJSON_Parse("{\"x\\ud800y\": 1}") == NULL); /* a lone surrogate escape: cJSON refuses it itself */
    j = cJSON_Parse("{\"ok\": [\"caf\\u00e9\", {\"emoji\\ud83d\\ude42\": 1}]}");
    CHECK(j && zq_json_bad_utf8(j->child) == NULL);
    cJSON_Delete(j);
}

TEST(decoded_text_made_valid)
{
    char *t = zq_text_utf8("ab\xe2\x96" "c\xff\xc3\xa9", 8);
    CHECK(t && strcmp(t, "ab\xef\xbf\xbd\xef\xbf\xbd" "c\xef\xbf\xbd\xc3\xa9") == 0);
    CHECK(t && zq_utf8_valid(t, strlen(t)));
    free(t);
}
