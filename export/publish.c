/* Publish and pull: the manifest protocol over a bucket (publish.h). */
#define _GNU_SOURCE
#include "publish.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "export.h"
#include "log.h"
#include "moetune/moetune.h"

#define MANIFEST "manifest.json"
/* what a manifest and a config file may weigh: the runtime refuses config
 * files over 16 MiB, so nothing larger is worth fetching */
#define MAX_MANIFEST_BYTES (4u << 20)
#define MAX_FILE_BYTES (16u << 20)

int mt_bucket_name_ok(const char *name)
{
    size_t l = strlen(name);
    if (!l || l > 255 || name[0] == '.' || strstr(name, "..")) return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("=,._+-[]", *p)))
            return 0;
    return 1;
}

/* DEVICE of "...device_name=DEVICE,..." or "...device_name=DEVICE.json"
 * (or SGLang's down-GEMM file of it, "...device_name=DEVICE_down.json") */
static int device_of(const char *file, char *out, size_t n)
{
    const char *p = strstr(file, "device_name=");
    if (!p) return 0;
    p += 12;
    size_t l = strcspn(p, ",");
    const char *dot = strstr(p, ".json");
    if (dot && (size_t)(dot - p) < l) {
        l = (size_t)(dot - p);
        if (l > 5 && !strncmp(dot - 5, "_down", 5)) l -= 5;
    }
    if (!l || l >= n) return 0;
    memcpy(out, p, l);
    out[l] = 0;
    return mt_bucket_name_ok(out);
}

static int read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return MT_EIO;
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return MT_EIO;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t k = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || k != (size_t)st.st_size) {
        free(buf);
        return MT_EIO;
    }
    buf[k] = 0;
    *data = buf;
    *len = k;
    return MT_OK;
}

static void now_iso(char *out, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* by device, then by name: a device's files together */
static int by_device(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    char dx[256] = "", dy[256] = "";
    device_of(x, dx, sizeof dx);
    device_of(y, dy, sizeof dy);
    int c = strcmp(dx, dy);
    return c ? c : strcmp(x, y);
}

/* The sha256 of a file's content, its export time left out: publishing
 * the same results again is no change */
static void content_sha(const char *data, size_t len, char out[65])
{
    const char *k = strstr(data, "\"exported_at\": \"");
    if (!k) {
        mt_sha256_hex(data, len, out);
        return;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        mt_sha256_hex(data, len, out);
        return;
    }
    memcpy(copy, data, len + 1);
    for (char *p = copy + (k - data) + 16; *p && *p != '"'; p++) *p = '0';
    mt_sha256_hex(copy, len, out);
    free(copy);
}

/* the staging folder: its files and its SGLang folders' files */
static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[4400];
    struct stat sb;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
            else unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

/* SGLang's files live in a folder per Triton version, triton_X_Y_Z, and
 * its block-fp8 names hold a space ("block_shape=[128, 128]"). In the
 * bucket such a file is DEVICE/triton_X_Y_Z/NAME with the spaces left out
 * (a key without characters to escape); its manifest entry names the
 * folder and the file as SGLang spells it. */
static int sglang_folder_ok(const char *f)
{
    if (!f || strncmp(f, "triton_", 7) || !f[7] || strlen(f) > 40) return 0;
    for (const char *p = f + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '_')) return 0;
    return 1;
}

static void key_name(const char *name, char *out, size_t n)
{
    size_t k = 0;
    for (const char *p = name; *p && k + 1 < n; p++)
        if (*p != ' ') out[k++] = *p;
    out[k] = 0;
}

/* a space only after a comma, and the rest as any bucket name */
static int sglang_name_ok(const char *name)
{
    char k[300];
    if (!name || strlen(name) >= sizeof k || name[0] == ' ') return 0;
    for (const char *p = name; *p; p++)
        if (*p == ' ' && (p[-1] != ',' || p[1] == ' ')) return 0;
    key_name(name, k, sizeof k);
    size_t l = strlen(k);
    return mt_bucket_name_ok(k) && l > 5 && !strcmp(k + l - 5, ".json");
}

/* "triton_X_Y_Z/NAME" or "NAME": the folder (empty when none) and the name */
static const char *split_rel(const char *rel, char *folder, size_t n)
{
    const char *slash = strchr(rel, '/');
    if (!slash) {
        folder[0] = 0;
        return rel;
    }
    snprintf(folder, n, "%.*s", (int)(slash - rel), rel);
    return slash + 1;
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The entry for (folder, name) in a manifest's files (folder "": none), or NULL. */
static const cJSON *entry_of(const cJSON *files, const char *folder, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, files) {
        const char *nm = str_of(e, "name"), *f = str_of(e, "folder");
        if (nm && !strcmp(nm, name) && !strcmp(f ? f : "", folder)) return e;
    }
    return NULL;
}

/* A manifest as found in the bucket: NULL when there is none (404), or
 * when it is not a manifest of this device (the caller treats it as none
 * for publishing, as an error for pulling). */
static int get_manifest(mt_bucket *b, const char *dev, cJSON **out, char *err, size_t n)
{
    char key[600], *data = NULL;
    size_t len = 0;
    *out = NULL;
    snprintf(key, sizeof key, "%s/%s", dev, MANIFEST);
    int rc = mt_bucket_get(b, key, MAX_MANIFEST_BYTES, &data, &len, NULL, 0, err, n);
    if (rc == MT_ENOTFOUND) return MT_ENOTFOUND;
    if (rc != MT_OK) return rc;
    cJSON *j = cJSON_Parse(data);
    free(data);
    const char *fmt = str_of(j, "format"), *d = str_of(j, "device");
    if (!j || !fmt || strcmp(fmt, "moetune-manifest") || !d || strcmp(d, dev) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "files"))) {
        cJSON_Delete(j);
        snprintf(err, n, "%s is not a moetune manifest of device %s", key, dev);
        return MT_EPARSE;
    }
    *out = j;
    return MT_OK;
}

int mt_publish(mt_db *db, mt_bucket *b, mt_publish_progress progress, void *user, mt_publish_stats *st, char *err,
               size_t n)
{
    memset(st, 0, sizeof *st);
    char stage[] = "/tmp/moetune-publish.XXXXXX";
    if (!mkdtemp(stage)) {
        snprintf(err, n, "cannot create a staging folder in /tmp: %s", strerror(errno));
        return MT_EIO;
    }
    /* the files, exactly as `moetune export` writes them */
    mt_export_opts eo = {stage, 1, 1, 0, 0, 0, 1};
    mt_export_stats es;
    int rc = mt_export(db, &eo, &es);
    if (rc != MT_OK || es.failed) {
        snprintf(err, n, "exporting the configs failed");
        rm_tree(stage);
        return rc != MT_OK ? rc : MT_EIO;
    }
    DIR *d = opendir(stage);
    char **names = NULL;
    int nn = 0, skipped = 0;
    char first_skipped[256] = "";
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char dev[256];
        if (de->d_name[0] == '.') continue;
        if (!strcmp(de->d_name, "configs")) {
            /* SGLang's folders (configs/triton_X_Y_Z/, as SGLang looks for
             * them under SGLANG_MOE_CONFIG_DIR): their files go to
             * DEVICE/triton_X_Y_Z/ */
            char croot[64];
            snprintf(croot, sizeof croot, "%s/configs", stage);
            DIR *cd = opendir(croot);
            struct dirent *te;
            while (cd && (te = readdir(cd))) {
                if (te->d_name[0] == '.') continue;
                char sub[400];
                snprintf(sub, sizeof sub, "%s/%s", croot, te->d_name);
                DIR *sd = sglang_folder_ok(te->d_name) ? opendir(sub) : NULL;
                struct dirent *fe;
                if (!sd) st->sglang_skipped++;
                while (sd && (fe = readdir(sd))) {
                    char rel[600];
                    if (fe->d_name[0] == '.') continue;
                    if (!device_of(fe->d_name, dev, sizeof dev) || !sglang_name_ok(fe->d_name) ||
                        snprintf(rel, sizeof rel, "%s/%s", te->d_name, fe->d_name) >= (int)sizeof rel) {
                        if (!skipped++)
                            snprintf(first_skipped, sizeof first_skipped, "%.40s/%.200s", te->d_name, fe->d_name);
                        continue;
                    }
                    char **nx = realloc(names, (size_t)(nn + 1) * sizeof *names);
                    if (!nx) break;
                    names = nx;
                    if ((names[nn] = strdup(rel))) nn++;
                    st->sglang++;
                }
                if (sd) closedir(sd);
            }
            if (cd) closedir(cd);
            continue;
        }
        if (!device_of(de->d_name, dev, sizeof dev) || !mt_bucket_name_ok(de->d_name)) {
            /* said below: a file left behind must not pass for "nothing" */
            if (!skipped++) snprintf(first_skipped, sizeof first_skipped, "%s", de->d_name);
            continue;
        }
        char **nx = realloc(names, (size_t)(nn + 1) * sizeof *names);
        if (!nx) break;
        names = nx;
        if ((names[nn] = strdup(de->d_name))) nn++;
    }
    if (d) closedir(d);
    st->skipped = skipped;
    snprintf(st->first_skipped, sizeof st->first_skipped, "%s", first_skipped);
    if (!nn && skipped) {
        snprintf(err, n,
                 "%d exported file(s) cannot be bucket keys, e.g. '%s' (letters, digits and \"=,._+-[]\" only): "
                 "rename the device in the database or export and copy the files by hand",
                 skipped, first_skipped);
        rm_tree(stage);
        free(names);
        return MT_EINVAL;
    }
    if (!nn) {
        snprintf(err, n, "the database holds no verified results to publish (run moetune sweep first)");
        rm_tree(stage);
        free(names);
        return MT_ENOTFOUND;
    }
    qsort(names, (size_t)nn, sizeof *names, by_device);
    /* device by device: its files, then its manifest */
    int done = 0;
    for (int i = 0; i < nn && rc == MT_OK;) {
        char dev[256], other[256];
        device_of(names[i], dev, sizeof dev);
        cJSON *old = NULL;
        rc = get_manifest(b, dev, &old, err, n);
        if (rc == MT_ENOTFOUND || rc == MT_EPARSE) {
            if (rc == MT_EPARSE) mt_warn("%s; it is replaced", err);
            rc = MT_OK;
        }
        if (rc != MT_OK) break;
        const cJSON *old_files = old ? cJSON_GetObjectItemCaseSensitive(old, "files") : NULL;
        cJSON *man = cJSON_CreateObject(), *files = cJSON_CreateArray();
        char ts[32];
        now_iso(ts, sizeof ts);
        cJSON_AddStringToObject(man, "format", "moetune-manifest");
        cJSON_AddNumberToObject(man, "version", 1);
        cJSON_AddStringToObject(man, "device", dev);
        cJSON_AddStringToObject(man, "moetune_version", MOETUNE_VERSION);
        cJSON_AddStringToObject(man, "time", ts);
        cJSON_AddItemToObject(man, "files", files);
        int j = i;
        for (; j < nn && device_of(names[j], other, sizeof other) && !strcmp(other, dev) && rc == MT_OK; j++) {
            char path[4400], key[900], sha[65], *data = NULL, folder[64], kn[300];
            const char *base = split_rel(names[j], folder, sizeof folder);
            size_t len = 0;
            snprintf(path, sizeof path, "%s/%s%s", stage, folder[0] ? "configs/" : "", names[j]);
            if ((rc = read_file(path, &data, &len)) != MT_OK) {
                snprintf(err, n, "cannot read the exported %s", names[j]);
                break;
            }
            char csha[65];
            mt_sha256_hex(data, len, sha);
            content_sha(data, len, csha);
            const cJSON *was = entry_of(old_files, folder, base);
            const char *was_sha = was ? str_of(was, "content_sha256") : NULL;
            int same = was_sha && !strcmp(was_sha, csha);
            key_name(base, kn, sizeof kn);
            if (folder[0]) snprintf(key, sizeof key, "%s/%s/%s", dev, folder, kn);
            else snprintf(key, sizeof key, "%s/%s", dev, base);
            if (progress) progress(same ? "unchanged" : "upload", key, ++done, nn, user);
            if (same) {
                /* the bucket's copy stays, and its entry with it */
                st->unchanged++;
                cJSON_AddItemToArray(files, cJSON_Duplicate(was, 1));
            } else {
                rc = mt_bucket_put(b, key, data, len, err, n);
                if (rc == MT_OK) st->uploaded++;
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "name", base);
                if (folder[0]) cJSON_AddStringToObject(e, "folder", folder);
                cJSON_AddStringToObject(e, "sha256", sha);
                cJSON_AddNumberToObject(e, "size", (double)len);
                cJSON_AddStringToObject(e, "content_sha256", csha);
                cJSON_AddItemToArray(files, e);
            }
            free(data);
        }
        /* what another publisher of this device put there, and we did not
         * write, stays named */
        const cJSON *e;
        cJSON_ArrayForEach(e, old_files) {
            const char *nm = str_of(e, "name"), *fo = str_of(e, "folder");
            int fine = fo ? sglang_folder_ok(fo) && sglang_name_ok(nm) : nm && mt_bucket_name_ok(nm);
            if (fine && !entry_of(files, fo ? fo : "", nm)) cJSON_AddItemToArray(files, cJSON_Duplicate(e, 1));
        }
        /* nothing new for this device: its manifest stays as it is */
        int unchanged = old && cJSON_GetArraySize(files) == cJSON_GetArraySize(old_files);
        for (int f = 0; unchanged && f < cJSON_GetArraySize(files); f++) {
            const cJSON *a = cJSON_GetArrayItem(files, f);
            const char *af = str_of(a, "folder");
            const cJSON *was = entry_of(old_files, af ? af : "", str_of(a, "name"));
            unchanged = was && str_of(was, "sha256") && !strcmp(str_of(was, "sha256"), str_of(a, "sha256"));
        }
        if (rc == MT_OK && unchanged) {
            st->devices++;
            cJSON_Delete(man);
            cJSON_Delete(old);
            i = j;
            continue;
        }
        char *text = rc == MT_OK ? cJSON_Print(man) : NULL;
        if (text) {
            char key[600];
            snprintf(key, sizeof key, "%s/%s", dev, MANIFEST);
            /* last: every file it names is there */
            rc = mt_bucket_put(b, key, text, strlen(text), err, n);
            if (rc == MT_OK) st->devices++;
        } else if (rc == MT_OK) {
            rc = MT_ENOMEM;
        }
        free(text);
        cJSON_Delete(man);
        cJSON_Delete(old);
        i = j;
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    free(names);
    rm_tree(stage);
    return rc;
}

void mt_pull_stats_free(mt_pull_stats *st)
{
    for (int i = 0; i < st->n_new; i++) free(st->new_files[i]);
    free(st->new_files);
    st->new_files = NULL;
    st->n_new = 0;
}

struct dev_list { char **v; int n; };
static int add_dev(const char *name, void *u)
{
    struct dev_list *l = u;
    if (!mt_bucket_name_ok(name)) return 0;
    char **nx = realloc(l->v, (size_t)(l->n + 1) * sizeof *nx);
    if (!nx) return 1;
    l->v = nx;
    if ((l->v[l->n] = strdup(name))) l->n++;
    return 0;
}

static int sha_of_file(const char *path, char out[65], size_t *len)
{
    char *data = NULL;
    if (read_file(path, &data, len) != MT_OK) return MT_EIO;
    mt_sha256_hex(data, *len, out);
    free(data);
    return MT_OK;
}

static int is_hex64(const char *s)
{
    if (!s || strlen(s) != 64) return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f'))) return 0;
    return 1;
}

/* Every entry of a device's manifest, checked before anything is fetched:
 * a name that stays inside the cache, is a config file of this device (a
 * device's folder never carries another device's files: they would be
 * served to that device) and appears once; a sha256 and a size within
 * bounds. 0, or a status with err set. */
static int check_manifest(const cJSON *files, const char *dev, char *err, size_t n)
{
    const cJSON *e;
    int i = 0;
    cJSON_ArrayForEach(e, files) {
        const char *name = str_of(e, "name"), *sha = str_of(e, "sha256"), *folder = str_of(e, "folder");
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(e, "size");
        char owner[256];
        i++;
        if (cJSON_GetObjectItemCaseSensitive(e, "folder") && !sglang_folder_ok(folder)) {
            snprintf(err, n, "the manifest of %s puts a file in a folder '%.100s' that is not SGLang's triton_X_Y_Z "
                             "(a path, '..' or an odd character): refused, nothing of %s replaced",
                     dev, folder ? folder : "(not a string)", dev);
            return MT_EINTEGRITY;
        }
        if (!name || !(folder ? sglang_name_ok(name) : mt_bucket_name_ok(name)) || !strcmp(name, MANIFEST)) {
            snprintf(err, n, "the manifest of %s names a file '%.200s' that could escape the cache (a path, '..' or an "
                             "odd character): refused, nothing of %s replaced", dev, name ? name : "(none)", dev);
            return MT_EINTEGRITY;
        }
        if (!device_of(name, owner, sizeof owner) || strcmp(owner, dev)) {
            snprintf(err, n, "the manifest of %s names '%.200s', which is not a config file of %s%s%s: a device's folder "
                             "carries only its own files; refused, nothing of %s replaced",
                     dev, name, dev, owner[0] && device_of(name, owner, sizeof owner) ? " but of " : "",
                     device_of(name, owner, sizeof owner) ? owner : "", dev);
            return MT_EINTEGRITY;
        }
        const cJSON *o;
        int j = 0;
        cJSON_ArrayForEach(o, files) {
            if (++j >= i) break;
            const char *other = str_of(o, "name"), *of = str_of(o, "folder");
            if (other && !strcmp(other, name) && !strcmp(of ? of : "", folder ? folder : "")) {
                snprintf(err, n, "the manifest of %s names %s twice: refused, nothing of %s replaced", dev, name, dev);
                return MT_EINTEGRITY;
            }
        }
        if (!is_hex64(sha) || !cJSON_IsNumber(size) || !(size->valuedouble >= 0)) {
            snprintf(err, n, "the manifest of %s lacks a sha256 or size for %s", dev, name);
            return MT_EPARSE;
        }
        /* the bound before any conversion: 1e300 must not reach a cast */
        if (size->valuedouble > MAX_FILE_BYTES) {
            snprintf(err, n, "the manifest of %s gives %s as %.0f bytes, more than a config file can be (%u): refused, "
                             "nothing of %s replaced", dev, name, size->valuedouble, MAX_FILE_BYTES, dev);
            return MT_EINTEGRITY;
        }
        if (size->valuedouble != (double)(size_t)size->valuedouble) {
            snprintf(err, n, "the manifest of %s gives %s a size that is not a whole number of bytes", dev, name);
            return MT_EPARSE;
        }
    }
    return MT_OK;
}

/* A folder inside the cache, made if missing; a link or a file there is
 * refused (it would carry writes outside the cache). */
static int own_dir(const char *dir, char *err, size_t n)
{
    struct stat sb;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return snprintf(err, n, "cannot create %.800s: %s", dir, strerror(errno)), MT_EIO;
    if (lstat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        snprintf(err, n, "%.800s is not a folder (a link or a file): refused; remove it", dir);
        return MT_EINTEGRITY;
    }
    return MT_OK;
}

/* One device: check its manifest whole, fetch what changed into
 * temporaries, check each against the manifest, then rename them all into
 * place. */
static int pull_device(mt_bucket *b, const char *dev, const char *cache, mt_publish_progress progress, void *user,
                       mt_pull_stats *st, char *err, size_t n)
{
    cJSON *man = NULL;
    int rc = get_manifest(b, dev, &man, err, n);
    if (rc == MT_ENOTFOUND)
        snprintf(err, n, "the bucket has no manifest for %s (is the device name spelled as vLLM does, and was it "
                         "published?)", dev);
    if (rc != MT_OK) return rc;
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(man, "files"), *e;
    int nf = cJSON_GetArraySize(files), k = 0, staged = 0;
    if ((rc = check_manifest(files, dev, err, n)) != MT_OK) {
        cJSON_Delete(man);
        return rc;
    }
    char (*tmp)[4400] = calloc((size_t)nf + 1, sizeof *tmp), (*dst)[4400] = calloc((size_t)nf + 1, sizeof *dst);
    if (!tmp || !dst) rc = MT_ENOMEM;
    cJSON_ArrayForEach(e, files) {
        if (rc != MT_OK) break;
        const char *name = str_of(e, "name"), *sha = str_of(e, "sha256"), *folder = str_of(e, "folder");
        size_t size = (size_t)cJSON_GetObjectItemCaseSensitive(e, "size")->valuedouble;
        k++;
        char path[4400], have[65], dir[4200], kn[300];
        size_t hlen = 0;
        /* SGLang's files into configs/triton_X_Y_Z/ of the cache: SGLang
         * looks there under SGLANG_MOE_CONFIG_DIR, the cache */
        if (folder) snprintf(dir, sizeof dir, "%s/configs", cache);
        if (folder && (rc = own_dir(dir, err, n)) != MT_OK) break;
        if (folder) snprintf(dir, sizeof dir, "%s/configs/%s", cache, folder);
        else snprintf(dir, sizeof dir, "%s", cache);
        if (folder && (rc = own_dir(dir, err, n)) != MT_OK) break;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (sha_of_file(path, have, &hlen) == MT_OK && !strcmp(have, sha)) {
            st->unchanged++;
            if (progress) progress("unchanged", name, k, nf, user);
            continue;
        }
        if (progress) progress("fetch", name, k, nf, user);
        char key[900], *data = NULL, got[65];
        size_t len = 0;
        key_name(name, kn, sizeof kn);
        if (folder) snprintf(key, sizeof key, "%s/%s/%s", dev, folder, kn);
        else snprintf(key, sizeof key, "%s/%s", dev, name);
        /* no more than the manifest says: an endless body stops there */
        rc = mt_bucket_get(b, key, size, &data, &len, NULL, 0, err, n);
        if (rc == MT_ENOTFOUND) {
            snprintf(err, n, "the manifest of %s names %s, which the bucket lacks: nothing of %s replaced", dev, name, dev);
            break;
        }
        if (rc == MT_EINTEGRITY) {
            char e2[1024];
            snprintf(e2, sizeof e2, "%.900s (the size its manifest gives): nothing of %s replaced", err, dev);
            snprintf(err, n, "%s", e2);
            break;
        }
        if (rc != MT_OK) break;
        mt_sha256_hex(data, len, got);
        if (strcmp(got, sha) || len != size) {
            snprintf(err, n, "%.600s does not match its manifest (sha256 %.12s... and %zu bytes, the manifest says %.12s... "
                             "and %zu): refused, nothing of %.200s replaced", key, got, len, sha, size, dev);
            free(data);
            rc = MT_EINTEGRITY;
            break;
        }
        snprintf(dst[staged], sizeof dst[staged], "%s", path);
        snprintf(tmp[staged], sizeof tmp[staged], "%s/.pull.%d.%s", dir, (int)getpid(), name);
        unlink(tmp[staged]);
        /* a failed write leaves nothing; the files staged before go below */
        rc = mt_write_file_new(tmp[staged], data, len, 0, err, n);
        free(data);
        staged++;
    }
    for (int i = 0; i < staged; i++) {
        if (rc == MT_OK && rename(tmp[i], dst[i]) == 0) {
            st->fetched++;
            char **nx = realloc(st->new_files, (size_t)(st->n_new + 1) * sizeof *nx);
            if (nx) {
                st->new_files = nx;
                if ((nx[st->n_new] = strdup(dst[i]))) st->n_new++;
            }
        } else {
            if (rc == MT_OK) {
                snprintf(err, n, "cannot move %s into the cache: %s", dst[i], strerror(errno));
                rc = MT_EIO;
            }
            unlink(tmp[i]);
        }
    }
    if (rc == MT_OK) {
        /* the manifest as pulled, for the next pull and for people */
        char mdir[4400], mpath[4700];
        snprintf(mdir, sizeof mdir, "%s/.manifests", cache);
        snprintf(mpath, sizeof mpath, "%s/%s.json", mdir, dev);
        char *text = cJSON_Print(man);
        if (!text) rc = MT_ENOMEM;
        if (rc == MT_OK) rc = own_dir(mdir, err, n);
        if (rc == MT_OK) rc = mt_write_file_atomic(mpath, text, strlen(text), err, n);
        free(text);
        if (rc == MT_OK) st->devices++;
    }
    free(tmp);
    free(dst);
    cJSON_Delete(man);
    return rc;
}

int mt_pull(mt_bucket *b, const char *const *devices, int n_devices, const char *cache_dir,
            mt_publish_progress progress, void *user, mt_pull_stats *st, char *err, size_t n)
{
    memset(st, 0, sizeof *st);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", cache_dir);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(dir, 0755);
            *p = '/';
        }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, n, "cannot create the cache %s: %s", dir, strerror(errno));
        return MT_EIO;
    }
    struct dev_list l = {NULL, 0};
    int rc = MT_OK;
    if (n_devices) {
        for (int i = 0; i < n_devices; i++) {
            if (!mt_bucket_name_ok(devices[i])) {
                snprintf(err, n, "'%s' is not a device name as vLLM spells it (e.g. NVIDIA_H100_80GB_HBM3)", devices[i]);
                rc = MT_EINVAL;
                break;
            }
            add_dev(devices[i], &l);
        }
    } else {
        rc = mt_bucket_list_dirs(b, add_dev, &l, err, n);
        if (rc == MT_OK && !l.n) {
            snprintf(err, n, "the bucket holds no device folders");
            rc = MT_ENOTFOUND;
        }
    }
    int first = MT_OK;
    for (int i = 0; i < l.n && rc == MT_OK; i++) {
        char e2[1024] = "";
        int r = pull_device(b, l.v[i], dir, progress, user, st, e2, sizeof e2);
        /* a device without a manifest is a folder in the making: skipped
         * when listed, an error when asked for */
        if (r == MT_ENOTFOUND && !n_devices && strstr(e2, "has no manifest")) {
            mt_info("%s has no manifest yet: skipped", l.v[i]);
            continue;
        }
        /* the first failure is the answer; later ones are logged */
        if (r != MT_OK && first == MT_OK) {
            first = r;
            snprintf(err, n, "%s", e2);
        } else if (r != MT_OK) {
            mt_err("%s", e2);
        }
    }
    for (int i = 0; i < l.n; i++) free(l.v[i]);
    free(l.v);
    return rc != MT_OK ? rc : first;
}
