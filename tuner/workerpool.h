/* The parent's side of a worker: a child process started by fork+exec of
 * `moetune worker`, spoken to with one JSON object per line over pipes. A
 * variant that crashes or hangs kills only its worker. */
#ifndef MT_WORKERPOOL_H
#define MT_WORKERPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct mt_worker mt_worker;

/* Start `exe worker --device DEVICE`. */
int mt_worker_start(mt_worker **out, const char *exe, const char *device, char *err, size_t err_len);
/* Start any program that speaks the protocol (the engine worker: python3
 * SCRIPT --engine E --device D): argv NULL-terminated, at most 15 words;
 * argv[0] is looked up on PATH. */
int mt_worker_start_argv(mt_worker **out, const char *const *argv, char *err, size_t err_len);

/* Send one request line and wait up to timeout_s for the reply line.
 * MT_ETIMEOUT: the worker was killed after the timeout; MT_ECRASH: it died
 * (why names the signal or exit status). After either, call
 * mt_worker_restart before the next request. *reply is malloc'ed. */
int mt_worker_call(mt_worker *w, const char *request, double timeout_s, char **reply, char *why, size_t why_len);

int mt_worker_restart(mt_worker *w, char *err, size_t err_len);

/* 1 when a failed call (its status and why) did not come from the variant:
 * a timeout (a loaded machine), a worker gone, or one killed by a signal
 * that a variant does not raise (SIGKILL from the OOM killer or a person,
 * SIGTERM, SIGINT, SIGHUP). A crash of the variant's own (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGABRT) or a reply that it failed is deterministic. */
int mt_worker_failure_transient(int call_rc, const char *why);

/* A measure request, the one form every family's measurement takes
 * (docs/worker.md): {"op":"measure","family":..,"key":{..},"point":[..],
 * "renormalize":..,"params":{..},"seed":..,"abort_us":..,"policy":{..}}.
 * key_json is the family's key, params the config's JSON, extra more
 * members (NULL: none). MT_EINVAL when it does not fit in n. */
struct mt_policy;
int mt_measure_request(char *req, size_t n, const char *family, const char *key_json, const int64_t *point, int npoint,
                       int renormalize, const char *params, uint64_t seed, const struct mt_policy *pol,
                       const char *extra);

/* Close the pipes and reap the child; NULL is a no-op. */
void mt_worker_stop(mt_worker *w);

/* The path of the running executable, for exec'ing workers. */
int mt_self_exe(char *out, size_t n);

#endif
