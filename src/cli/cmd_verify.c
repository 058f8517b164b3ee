/* zquant verify: structure and every checksum of a .zq file. */
#include <cjson/cJSON.h>
#include <string.h>

#include "cli.h"
#include "zquant/zq.h"

static const char help[] =
    "usage: zquant verify FILE.zq [--json]\n"
    "\n"
    "Checks the header, the metadata and every section of FILE: bounds,\n"
    "alignment, sizes against shapes, and each CRC-32C. Reports every damaged\n"
    "section, not just the first. Exit 0 when sound, 6 when a checksum fails,\n"
    "3 when the structure is broken.\n"
    "\n"
    "      --json      machine-readable output on stdout\n"
    "  -h, --help      this help\n";

int cmd_verify(int argc, char **argv)
{
    const char *path;
    int json, rc = cli_parse_file_json(argc, argv, "verify", help, &path, &json);
    if (rc >= 0) return rc;
    zq_file *f = NULL;
    zq_error err = {0};
    if (zq_file_open(path, 0, &f, &err) != ZQ_OK) {
        if (json) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "file", path);
            cJSON_AddBoolToObject(j, "ok", 0);
            cJSON *errs = cJSON_AddArrayToObject(j, "errors");
            cJSON_AddItemToArray(errs, cJSON_CreateString(err.msg));
            cli_json_print(stdout, j);
            return err.code;
        }
        return cli_fail(&err);
    }
    size_t sections = 0, bad = 0;
    cJSON *errs = cJSON_CreateArray();
    for (size_t i = 0; i < zq_file_count(f); i++)
        for (int k = 0; k < ZQ_SEC_COUNT; k++) {
            if (!zq_file_tensor(f, i)->sec[k].present) continue;
            sections++;
            zq_error e = {0};
            if (zq_file_verify_section(f, i, (zq_section_kind)k, &e) == ZQ_OK) continue;
            bad++;
            cJSON_AddItemToArray(errs, cJSON_CreateString(e.msg));
            if (!json) fprintf(stderr, "zquant: %s\n", e.msg);
        }
    for (size_t k = 0; k < zq_file_attached_count(f); k++) {
        const void *data;
        size_t len;
        zq_error e = {0};
        if (zq_file_attached(f, zq_file_attached_entry(f, k)->name, &data, &len, &e) == ZQ_OK) continue;
        bad++;
        cJSON_AddItemToArray(errs, cJSON_CreateString(e.msg));
        if (!json) fprintf(stderr, "zquant: %s\n", e.msg);
    }
    if (json) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "file", path);
        cJSON_AddBoolToObject(j, "ok", bad == 0);
        cJSON_AddNumberToObject(j, "files", (double)zq_file_attached_count(f));
        cJSON_AddNumberToObject(j, "tensors", (double)zq_file_count(f));
        cJSON_AddNumberToObject(j, "sections", (double)sections);
        cJSON_AddItemToObject(j, "errors", errs);
        cli_json_print(stdout, j);
    } else {
        cJSON_Delete(errs);
        if (!bad)
            printf("%s: ok (%zu tensors, %zu sections, %zu files)\n", path, zq_file_count(f), sections,
                   zq_file_attached_count(f));
    }
    zq_file_close(f);
    return bad ? ZQ_ERR_CORRUPT : 0;
}
