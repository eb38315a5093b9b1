/* The bucket's transfers. One request at a time, each retried with
 * exponential backoff on connection errors and 5xx answers; 4xx answers
 * are errors at once, with what they most likely mean. */
#define _GNU_SOURCE
#include "bucket.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <dirent.h>

#include "buf.h"
#include "log.h"
#include "moetune/moetune.h"

enum { B_FILE, B_HTTP, B_S3 };

struct mt_bucket {
    int kind;
    char base[2048];  /* file: the folder; http: the URL of the prefix (no trailing /); s3: endpoint/bucket */
    char prefix[1024]; /* s3: the key prefix, "" or ending in '/' */
    char bucket[256];
    char region[64];
    char user[256], secret[256], token[2048]; /* never printed */
    int auth_basic, auth_bearer;
    mt_bucket_opts o;
};

void mt_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(data, len, md, &ml, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
    out[64] = 0;
}

const char *mt_bucket_scheme(const mt_bucket *b) { return b->kind == B_S3 ? "s3" : b->kind == B_HTTP ? "http" : "file"; }

static const char *env(const char *k)
{
    const char *v = getenv(k);
    return v && *v ? v : NULL;
}

/* [profile] of an AWS credentials file: aws_access_key_id and friends */
static int read_aws_file(mt_bucket *b, char *err, size_t n)
{
    char path[1024];
    const char *f = env("AWS_SHARED_CREDENTIALS_FILE"), *home = env("HOME");
    if (f) snprintf(path, sizeof path, "%s", f);
    else if (home) snprintf(path, sizeof path, "%s/.aws/credentials", home);
    else return MT_ENOTFOUND;
    struct stat st;
    if (stat(path, &st) != 0) return MT_ENOTFOUND;
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, n, "the credentials file %s can be read by others (mode %03o): chmod 600 %s", path,
                 (unsigned)(st.st_mode & 0777), path);
        return MT_EDENIED;
    }
    FILE *fp = fopen(path, "r");
    if (!fp) return MT_ENOTFOUND;
    const char *want = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
    char line[2048], section[256] = "";
    while (fgets(line, sizeof line, fp)) {
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, "\r\n")] = 0;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (e) *e = 0;
            snprintf(section, sizeof section, "%s", s + 1);
            continue;
        }
        if (strcmp(section, want)) continue;
        char *eq = strchr(s, '=');
        if (!eq) continue;
        *eq = 0;
        char *k = s, *v = eq + 1;
        for (char *t = k + strlen(k); t > k && (t[-1] == ' ' || t[-1] == '\t'); t--) t[-1] = 0;
        while (*v == ' ' || *v == '\t') v++;
        if (!strcmp(k, "aws_access_key_id")) snprintf(b->user, sizeof b->user, "%s", v);
        else if (!strcmp(k, "aws_secret_access_key")) snprintf(b->secret, sizeof b->secret, "%s", v);
        else if (!strcmp(k, "aws_session_token")) snprintf(b->token, sizeof b->token, "%s", v);
    }
    fclose(fp);
    return b->user[0] && b->secret[0] ? MT_OK : MT_ENOTFOUND;
}

int mt_bucket_open(mt_bucket **out, const char *url, const mt_bucket_opts *o, char *err, size_t n)
{
    mt_bucket *b = calloc(1, sizeof *b);
    if (!b) return MT_ENOMEM;
    if (o) b->o = *o;
    else b->o.retries = -1;
    if (b->o.connect_timeout_s <= 0) b->o.connect_timeout_s = 10;
    if (b->o.stall_timeout_s <= 0) b->o.stall_timeout_s = 30;
    if (b->o.total_timeout_s <= 0) b->o.total_timeout_s = 300;
    if (b->o.retries < 0) b->o.retries = 4;
    if (b->o.backoff_ms <= 0) b->o.backoff_ms = env("MOETUNE_RETRY_BACKOFF_MS") ? atol(env("MOETUNE_RETRY_BACKOFF_MS")) : 500;
    if (b->o.backoff_ms <= 0) b->o.backoff_ms = 500;
    int rc = MT_OK;
    if (!strncmp(url, "file://", 7)) {
        b->kind = B_FILE;
        if (url[7] != '/') {
            snprintf(err, n, "'%s': a file URL needs an absolute path, as file:///shared/moetune", url);
            rc = MT_EPARSE;
        } else {
            snprintf(b->base, sizeof b->base, "%s", url + 7);
        }
    } else if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)) {
        b->kind = B_HTTP;
        const char *host = strstr(url, "://") + 3;
        const char *slash = strchr(host, '/'), *at = strchr(host, '@');
        if (at && (!slash || at < slash)) {
            snprintf(err, n, "the URL holds credentials, which would show in process lists and shell history: "
                             "set MOETUNE_BUCKET_USER and MOETUNE_BUCKET_PASSWORD, or MOETUNE_BUCKET_TOKEN, or use ~/.netrc");
            rc = MT_EPARSE;
        } else {
            snprintf(b->base, sizeof b->base, "%s", url);
            size_t l = strlen(b->base);
            while (l > 8 && b->base[l - 1] == '/') b->base[--l] = 0;
            const char *tok = env("MOETUNE_BUCKET_TOKEN"), *u = env("MOETUNE_BUCKET_USER"),
                       *p = env("MOETUNE_BUCKET_PASSWORD");
            if (tok) {
                b->auth_bearer = 1;
                snprintf(b->token, sizeof b->token, "%s", tok);
            } else if (u) {
                b->auth_basic = 1;
                snprintf(b->user, sizeof b->user, "%s", u);
                snprintf(b->secret, sizeof b->secret, "%s", p ? p : "");
            }
        }
    } else if (!strncmp(url, "s3://", 5)) {
        b->kind = B_S3;
        const char *bk = url + 5, *slash = strchr(bk, '/');
        size_t bl = slash ? (size_t)(slash - bk) : strlen(bk);
        if (!bl || bl >= sizeof b->bucket) {
            snprintf(err, n, "'%s': expected s3://BUCKET/PREFIX", url);
            rc = MT_EPARSE;
        } else {
            memcpy(b->bucket, bk, bl);
            b->bucket[bl] = 0;
            const char *pre = slash ? slash + 1 : "";
            snprintf(b->prefix, sizeof b->prefix, "%s", pre);
            size_t pl = strlen(b->prefix);
            while (pl && b->prefix[pl - 1] == '/') b->prefix[--pl] = 0;
            if (pl) strcat(b->prefix, "/");
            const char *reg = o && o->region ? o->region : env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
            snprintf(b->region, sizeof b->region, "%s", reg ? reg : "us-east-1");
            const char *ep = o && o->endpoint ? o->endpoint : env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3")
                                                                                         : env("AWS_ENDPOINT_URL");
            char def[256];
            snprintf(def, sizeof def, "https://s3.%s.amazonaws.com", b->region);
            /* path-style requests: every S3-compatible store takes them */
            snprintf(b->base, sizeof b->base, "%s", ep ? ep : def);
            size_t l = strlen(b->base);
            while (l && b->base[l - 1] == '/') b->base[--l] = 0;
            snprintf(b->base + l, sizeof b->base - l, "/%s", b->bucket);
            const char *k = env("AWS_ACCESS_KEY_ID"), *s = env("AWS_SECRET_ACCESS_KEY");
            if (k && s) {
                snprintf(b->user, sizeof b->user, "%s", k);
                snprintf(b->secret, sizeof b->secret, "%s", s);
                if (env("AWS_SESSION_TOKEN")) snprintf(b->token, sizeof b->token, "%s", env("AWS_SESSION_TOKEN"));
            } else {
                int r = read_aws_file(b, err, n);
                if (r == MT_EDENIED) rc = r;
                else if (r != MT_OK) {
                    snprintf(err, n, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them "
                                     "to ~/.aws/credentials (mode 600)");
                    rc = MT_EDENIED;
                }
            }
        }
    } else {
        snprintf(err, n, "'%s': expected s3://BUCKET/PREFIX, http(s)://HOST/PATH or file:///PATH", url);
        rc = MT_EPARSE;
    }
    if (rc != MT_OK) {
        mt_bucket_close(b);
        return rc;
    }
    *out = b;
    return MT_OK;
}

void mt_bucket_close(mt_bucket *b)
{
    if (!b) return;
    /* the secrets do not outlive the handle in freed memory */
    memset(b->secret, 0, sizeof b->secret);
    memset(b->token, 0, sizeof b->token);
    free(b);
}

/* ---- file:// ---- */

static int mkdirs_for(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return -1;
        *s = '/';
    }
    return 0;
}

static int file_put(mt_bucket *b, const char *key, const void *data, size_t len, char *err, size_t n)
{
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/%s", b->base, key);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (mkdirs_for(path) != 0) {
        snprintf(err, n, "cannot create the folder of %s: %s", path, strerror(errno));
        return MT_EIO;
    }
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f) ok = (fflush(f) == 0 && fsync(fileno(f)) == 0) && ok, ok = (fclose(f) == 0) && ok;
    /* the rename makes the file appear whole or not at all */
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, n, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return MT_EIO;
    }
    return MT_OK;
}

static int file_get(mt_bucket *b, const char *key, size_t max, char **data, size_t *len, char *err, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", b->base, key);
    /* a FIFO, a device or an oversized file in a shared folder is refused
     * without blocking, as anything larger than it may be */
    int rc = mt_read_file_max(path, max, data, len, err, n);
    return rc == MT_EINVAL ? MT_EINTEGRITY : rc;
}

/* ---- HTTP and S3 through libcurl ---- */

/* a response body, cut off past max bytes (0: not wanted, dropped) */
struct sink { char *p; size_t n, cap, max; int too_big; };
static size_t on_data(char *ptr, size_t size, size_t nm, void *u)
{
    struct sink *s = u;
    size_t k = size * nm;
    if (!s->max) return k;
    if (k > s->max - s->n || s->n > s->max) {
        /* a body past what the object may be: stop the transfer now */
        s->too_big = 1;
        return 0;
    }
    if (s->n + k + 1 > s->cap) {
        size_t c = s->cap ? s->cap : 4096;
        while (c < s->n + k + 1) c *= 2;
        char *np = realloc(s->p, c);
        if (!np) return 0;
        s->p = np;
        s->cap = c;
    }
    memcpy(s->p + s->n, ptr, k);
    s->n += k;
    s->p[s->n] = 0;
    return k;
}

struct hdrs { char etag[256]; };
static size_t on_header(char *ptr, size_t size, size_t nm, void *u)
{
    struct hdrs *h = u;
    size_t k = size * nm;
    if (k > 5 && !strncasecmp(ptr, "etag:", 5)) {
        const char *v = ptr + 5;
        while (*v == ' ') v++;
        size_t l = (size_t)(ptr + k - v);
        while (l && (v[l - 1] == '\r' || v[l - 1] == '\n')) l--;
        if (l >= sizeof h->etag) l = sizeof h->etag - 1;
        memcpy(h->etag, v, l);
        h->etag[l] = 0;
    }
    return k;
}

struct source { const char *p; size_t n, off; };
static size_t on_read(char *buf, size_t size, size_t nm, void *u)
{
    struct source *s = u;
    size_t k = size * nm, left = s->n - s->off;
    if (k > left) k = left;
    memcpy(buf, s->p + s->off, k);
    s->off += k;
    return k;
}

static int curl_ready;

/* One request, retried. method: "GET" or "PUT"; body for PUT. */
static int request(mt_bucket *b, const char *method, const char *url, const void *body, size_t blen, struct sink *out,
                   struct hdrs *hd, const char *what, char *err, size_t n)
{
    if (!curl_ready) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_ready = 1;
    }
    int put = !strcmp(method, "PUT");
    char sha[65];
    mt_sha256_hex(put ? body : "", put ? blen : 0, sha);
    long wait_ms = b->o.backoff_ms;
    for (int attempt = 0;; attempt++) {
        CURL *c = curl_easy_init();
        if (!c) return MT_ENOMEM;
        struct curl_slist *h = NULL;
        char line[2300], sigv4[128], errbuf[CURL_ERROR_SIZE] = "";
        struct source src = {body, blen, 0};
        if (out) out->n = 0, out->too_big = 0;
        if (hd) hd->etag[0] = 0;
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, b->o.connect_timeout_s);
        /* a stall or a trickle: under 1 KiB a second for so long; and a
         * bound on the whole request, however it dribbles */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, b->o.stall_timeout_s);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, b->o.total_timeout_s);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        struct sink discard = {NULL, 0, 0, 0, 0};
        curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &discard);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        struct hdrs ignore;
        curl_easy_setopt(c, CURLOPT_HEADERDATA, hd ? hd : &ignore);
        if (put) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &src);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)blen);
            h = curl_slist_append(h, "Content-Type: application/json");
            h = curl_slist_append(h, "Expect:");
        }
        if (b->kind == B_S3) {
            /* libcurl signs; the payload's hash goes in as S3 wants it */
            snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", b->region);
            curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
            curl_easy_setopt(c, CURLOPT_USERNAME, b->user);
            curl_easy_setopt(c, CURLOPT_PASSWORD, b->secret);
            snprintf(line, sizeof line, "x-amz-content-sha256: %s", sha);
            h = curl_slist_append(h, line);
            if (b->token[0]) {
                snprintf(line, sizeof line, "x-amz-security-token: %s", b->token);
                h = curl_slist_append(h, line);
            }
        } else if (b->auth_bearer) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
            curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, b->token);
        } else if (b->auth_basic) {
            curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
            curl_easy_setopt(c, CURLOPT_USERNAME, b->user);
            curl_easy_setopt(c, CURLOPT_PASSWORD, b->secret);
        } else {
            curl_easy_setopt(c, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        }
        if (!put) h = curl_slist_append(h, "Accept: application/json, */*");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        CURLcode cr = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        free(discard.p);
        int retry = 0;
        if (out && out->too_big) {
            snprintf(err, n, "%s: the answer is larger than the %zu bytes it may be: refused", what, out->max);
            return MT_EINTEGRITY;
        } else if (cr != CURLE_OK) {
            snprintf(err, n, "%s: %s", what, errbuf[0] ? errbuf : curl_easy_strerror(cr));
            retry = 1;
        } else if (code >= 500) {
            snprintf(err, n, "%s: the server answered HTTP %ld", what, code);
            retry = 1;
        } else if (code == 401 || code == 403) {
            snprintf(err, n, "%s: HTTP %ld: the server refused the credentials (%s)", what, code,
                     b->kind == B_S3 ? "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or ~/.aws/credentials, and the "
                                       "bucket's policy"
                                     : "MOETUNE_BUCKET_USER / MOETUNE_BUCKET_PASSWORD, MOETUNE_BUCKET_TOKEN or ~/.netrc");
            return MT_EDENIED;
        } else if (code == 404) {
            snprintf(err, n, "%s: HTTP 404: not there (%s)", what,
                     b->kind == B_S3 ? "no such bucket, prefix or object" : "no such path on the server");
            return MT_ENOTFOUND;
        } else if (code >= 400) {
            snprintf(err, n, "%s: the server refused the request: HTTP %ld", what, code);
            return MT_EIO;
        } else if (code < 200 || code >= 300) {
            /* a redirect's body is not the object: never taken, never followed */
            snprintf(err, n, "%s: the server answered HTTP %ld%s, not the object: give the bucket's final URL "
                             "(moetune follows no redirects)", what, code, code >= 300 ? " (a redirect)" : "");
            return MT_EIO;
        } else {
            return MT_OK;
        }
        if (!retry || attempt >= b->o.retries) return MT_ENET;
        mt_warn("%s; trying again in %ld ms (%d of %d)", err, wait_ms, attempt + 1, b->o.retries);
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        wait_ms *= 2;
    }
}

/* key -> URL, with each byte that is not safe in a path escaped */
static void key_url(const mt_bucket *b, const char *key, char *out, size_t n)
{
    size_t l = (size_t)snprintf(out, n, "%s/%s", b->base, b->kind == B_S3 ? b->prefix : "");
    for (const unsigned char *p = (const unsigned char *)key; *p && l + 4 < n; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~/", *p))
            out[l++] = (char)*p;
        else
            l += (size_t)snprintf(out + l, n - l, "%%%02X", *p);
    }
    out[l < n ? l : n - 1] = 0;
}

int mt_bucket_put(mt_bucket *b, const char *key, const void *data, size_t len, char *err, size_t n)
{
    if (b->kind == B_FILE) return file_put(b, key, data, len, err, n);
    char url[4096], what[512];
    key_url(b, key, url, sizeof url);
    snprintf(what, sizeof what, "PUT %s", key);
    struct hdrs h;
    int rc = request(b, "PUT", url, data, len, NULL, &h, what, err, n);
    if (rc != MT_OK || b->kind != B_S3) return rc;
    /* S3's ETag of a single-part upload is the MD5 of what it stored: a
     * body damaged on the way is caught here, not by the next reader */
    const char *e = h.etag[0] == '"' ? h.etag + 1 : h.etag;
    size_t el = strcspn(e, "\"");
    if (el == 32) {
        unsigned char md[16];
        unsigned int ml = 0;
        char hex[33];
        EVP_Digest(data, len, md, &ml, EVP_md5(), NULL);
        for (int i = 0; i < 16; i++) sprintf(hex + 2 * i, "%02x", md[i]);
        if (strncasecmp(e, hex, 32)) {
            snprintf(err, n, "%s: the store's ETag %.32s is not the MD5 of what was sent (%s): the upload was damaged",
                     what, e, hex);
            return MT_EINTEGRITY;
        }
    }
    return MT_OK;
}

int mt_bucket_get(mt_bucket *b, const char *key, size_t max, char **data, size_t *len, char *etag, size_t etag_n,
                  char *err, size_t n)
{
    if (etag && etag_n) etag[0] = 0;
    if (b->kind == B_FILE) return file_get(b, key, max, data, len, err, n);
    char url[4096], what[512];
    key_url(b, key, url, sizeof url);
    snprintf(what, sizeof what, "GET %s", key);
    struct sink s = {NULL, 0, 0, max, 0};
    struct hdrs h;
    int rc = request(b, "GET", url, NULL, 0, &s, &h, what, err, n);
    if (rc != MT_OK) {
        free(s.p);
        return rc;
    }
    if (!s.p && !(s.p = calloc(1, 1))) return MT_ENOMEM;
    *data = s.p;
    *len = s.n;
    if (etag && etag_n) snprintf(etag, etag_n, "%s", h.etag);
    return MT_OK;
}

/* S3's ListObjectsV2 answer: the text of each <Prefix> inside
 * <CommonPrefixes>, without the bucket prefix and the trailing '/' */
static int s3_dirs(const mt_bucket *b, const char *xml, mt_bucket_dir_cb cb, void *user)
{
    const char *p = xml;
    while ((p = strstr(p, "<CommonPrefixes>"))) {
        const char *s = strstr(p, "<Prefix>"), *e = s ? strstr(s, "</Prefix>") : NULL;
        if (!s || !e) break;
        s += 8;
        size_t pl = strlen(b->prefix);
        if ((size_t)(e - s) > pl && !strncmp(s, b->prefix, pl)) {
            char name[512];
            size_t l = (size_t)(e - s) - pl;
            if (l < sizeof name) {
                memcpy(name, s + pl, l);
                name[l] = 0;
                if (l && name[l - 1] == '/') name[l - 1] = 0;
                if (name[0] && cb(name, user)) return 0;
            }
        }
        p = e;
    }
    return 0;
}

int mt_bucket_list_dirs(mt_bucket *b, mt_bucket_dir_cb cb, void *user, char *err, size_t n)
{
    if (b->kind == B_FILE) {
        DIR *d = opendir(b->base);
        if (!d) {
            snprintf(err, n, "%s: %s", b->base, strerror(errno));
            return errno == ENOENT ? MT_ENOTFOUND : MT_EIO;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
            char path[4400];
            struct stat st;
            if (de->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", b->base, de->d_name);
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) && cb(de->d_name, user)) break;
        }
        closedir(d);
        return MT_OK;
    }
    char url[4096];
    struct sink s = {NULL, 0, 0, MT_BUCKET_MAX_LISTING, 0};
    int rc;
    if (b->kind == B_S3) {
        char pre[1100];
        size_t l = 0;
        for (const unsigned char *p = (const unsigned char *)b->prefix; *p && l + 4 < sizeof pre; p++) {
            if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-_.~", *p))
                pre[l++] = (char)*p;
            else
                l += (size_t)snprintf(pre + l, sizeof pre - l, "%%%02X", *p);
        }
        pre[l] = 0;
        snprintf(url, sizeof url, "%s?list-type=2&delimiter=%%2F&prefix=%s", b->base, pre);
        rc = request(b, "GET", url, NULL, 0, &s, NULL, "list the bucket", err, n);
        if (rc == MT_OK && s.p) s3_dirs(b, s.p, cb, user);
    } else {
        snprintf(url, sizeof url, "%s/", b->base);
        rc = request(b, "GET", url, NULL, 0, &s, NULL, "list the bucket", err, n);
        if (rc == MT_OK) {
            /* a JSON listing (nginx: autoindex_format json): [{"name", "type"}] */
            cJSON *j = s.p ? cJSON_Parse(s.p) : NULL;
            if (!cJSON_IsArray(j)) {
                snprintf(err, n, "the server at %s gives no JSON folder listing: name the devices (--device NAME)", b->base);
                rc = MT_EUNSUPPORTED;
            } else {
                const cJSON *e;
                cJSON_ArrayForEach(e, j) {
                    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"),
                                *ty = cJSON_GetObjectItemCaseSensitive(e, "type");
                    if (cJSON_IsString(nm) && cJSON_IsString(ty) && !strcmp(ty->valuestring, "directory") &&
                        cb(nm->valuestring, user))
                        break;
                }
            }
            cJSON_Delete(j);
        }
    }
    free(s.p);
    return rc;
}
