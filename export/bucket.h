/*
 * A shared bucket: an S3-compatible object store (s3://bucket/prefix), any
 * HTTP endpoint that takes PUT (http(s)://host/prefix, e.g. WebDAV), or a
 * shared folder (file:///path). Objects are named by keys relative to the
 * prefix ("NVIDIA_H100_80GB_HBM3/manifest.json"). libcurl does the
 * transfers and signs S3 requests (CURLOPT_AWS_SIGV4).
 *
 * Credentials come from the environment or files, never from the URL or a
 * command line, and are never printed: S3 takes AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, else the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
 * AWS_PROFILE or default), which must not be readable by others; HTTP
 * takes MOETUNE_BUCKET_TOKEN (bearer) or MOETUNE_BUCKET_USER and
 * MOETUNE_BUCKET_PASSWORD (basic), else ~/.netrc.
 */
#ifndef MT_BUCKET_H
#define MT_BUCKET_H

#include <stddef.h>

typedef struct mt_bucket mt_bucket;

typedef struct mt_bucket_opts {
    const char *endpoint;  /* S3: e.g. http://127.0.0.1:9000; NULL: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS */
    const char *region;    /* S3: NULL: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1 */
    long connect_timeout_s; /* 0: 10 */
    long stall_timeout_s;   /* a transfer slower than 1 KiB/s for this long fails (0: 30) */
    long total_timeout_s;   /* one request's whole time, retries apart (0: 300) */
    int retries;            /* extra tries on 5xx and connection errors (-1: 4) */
    long backoff_ms;        /* the first wait, doubled each time (0: 500; MOETUNE_RETRY_BACKOFF_MS) */
} mt_bucket_opts;

/* Parse the URL and find the credentials. MT_EPARSE for a URL of another
 * scheme or with credentials in it, MT_EDENIED for a credentials file that
 * others can read; err says which and what to do. */
int mt_bucket_open(mt_bucket **b, const char *url, const mt_bucket_opts *o, char *err, size_t n);
void mt_bucket_close(mt_bucket *b);
/* "s3", "http" or "file" */
const char *mt_bucket_scheme(const mt_bucket *b);

/* Store data under key (a temporary name and a rename for file://). */
int mt_bucket_put(mt_bucket *b, const char *key, const void *data, size_t len, char *err, size_t n);
/* Fetch key: *data malloc'ed (free it), NUL-terminated beyond len. etag
 * (may be NULL) gets the server's ETag when it sends one. MT_ENOTFOUND for
 * a missing key; MT_EINTEGRITY, at once and without a retry, for a body of
 * more than max bytes (the transfer stops there). A redirect (3xx) is an
 * error, never followed and never taken as the object. */
int mt_bucket_get(mt_bucket *b, const char *key, size_t max, char **data, size_t *len, char *etag, size_t etag_n,
                  char *err, size_t n);
/* The largest listing a bucket may answer with */
#define MT_BUCKET_MAX_LISTING (8u << 20)
/* The folders directly under the prefix (S3: common prefixes; file:
 * directories; HTTP: a JSON directory listing such as nginx's autoindex).
 * MT_EUNSUPPORTED when the server gives no listing. */
typedef int (*mt_bucket_dir_cb)(const char *name, void *user);
int mt_bucket_list_dirs(mt_bucket *b, mt_bucket_dir_cb cb, void *user, char *err, size_t n);

/* The SHA-256 of data as 64 lowercase hex digits. */
void mt_sha256_hex(const void *data, size_t len, char out[65]);

#endif
