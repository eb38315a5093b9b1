/* The vLLM reader and importer: input is "FILE NAME\nCONTENT". The file is
 * read, imported into a real database and exported again; nothing may
 * crash, and an imported file's export must read back. */
#include "cmds.h"
#include "db.h"
#include "export.h"
#include "fuzz_util.h"
#include "vllm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mt_db *db;
    char err[512], name[256], path[512], out[512];
    const char *dir = fuzz_dir();
    if (!db) {
        snprintf(path, sizeof path, "%s/import.db", dir);
        if (mt_db_open(&db, path, err, sizeof err) != MT_OK) abort();
    }
    size_t n;
    const uint8_t *body = fuzz_split(data, size, name, sizeof name, &n);
    if (!name[0]) snprintf(name, sizeof name, "E=8,N=14336,device_name=NVIDIA_H100_80GB_HBM3.json");
    mt_vllm_name nm;
    mt_vllm_name_parse(name, &nm, err, sizeof err);
    fuzz_write(dir, name, body, n, path, sizeof path);
    mt_vllm_file f;
    if (mt_vllm_file_read(path, &f, err, sizeof err) == MT_OK) mt_vllm_file_free(&f);
    if (mt_import_vllm_file(db, path, err, sizeof err) == MT_OK) {
        snprintf(out, sizeof out, "%s/out", dir);
        mkdir(out, 0755);
        mt_export_opts eo = {out, 1, 0, 0, 0, 0, 1};
        mt_export_stats es;
        mt_export(db, &eo, &es);
    }
    unlink(path);
    return 0;
}
