/* config.json as the forward pass reads it (every architecture's row: the
 * corpus holds one config of each), and as quantization detects it. */
#include "fuzz.h"
#include "zquant/arch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    zq_arch a;
    zq_model m;
    zq_error e1 = {0}, e2 = {0};
    zq_arch_from_config(text, "config.json", &a, &e1);
    if (zq_model_detect(text, "config.json", &m, &e2) == ZQ_OK) {
        zq_tensor_info t = {"model.layers.3.self_attn.q_proj.weight", ZQ_DT_F16, 2, {8, 8}, 64, 8, 8};
        zq_model_classify(&m, &t);
    }
    free(text);
    return 0;
}
