/* A tokenizer file, either kind: the first byte picks llama2.c's binary
 * format (even) or tokenizer.json (odd); the rest is the file. Then text of
 * every sort is encoded and every id decoded. */
#include "fuzz.h"
#include "zquant/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    const char *path = fuzz_file(data[0] & 1 ? "tokenizer.json" : "tokenizer.bin", data + 1, size - 1);
    zq_tokenizer *t = NULL;
    zq_error err = {0};
    if (zq_tokenizer_load(path, &t, &err) == ZQ_OK) {
        static const char *texts[] = {"Once upon a time, there was a cat.", "  spaces\t\ttabs\n\n12345 67.8",
                                      "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x99\x82", "bad \xff\xfe bytes \xc3", ""};
        for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
            int32_t *ids = NULL;
            size_t n = 0, cap = 0;
            zq_error e = {0};
            if (zq_tokenizer_encode(t, texts[k], strlen(texts[k]), 1, &ids, &n, &cap, &e) == ZQ_OK)
                for (size_t i = 0; i < n; i++) {
                    size_t len;
                    zq_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], &len);
                }
            free(ids);
        }
        zq_tokenizer_free(t);
    }
    zq_forget_inputs();
    return 0;
}
