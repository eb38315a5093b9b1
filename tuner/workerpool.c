#include "workerpool.h"

#include "measure.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "moetune/moetune.h"

struct mt_worker {
    pid_t pid;
    int to_fd, from_fd;
    char *buf;
    size_t len, cap;
    char exe[4096];
    char device[64];
    char *argv[16]; /* the program's words, when not `moetune worker` */
};

int mt_self_exe(char *out, size_t n)
{
    ssize_t r = readlink("/proc/self/exe", out, n - 1);
    if (r <= 0) return MT_EIO;
    out[r] = 0;
    return MT_OK;
}

static int spawn(mt_worker *w, char *err, size_t n)
{
    int in[2], outp[2];
    if (pipe(in) != 0) goto fail_errno;
    if (pipe(outp) != 0) {
        close(in[0]);
        close(in[1]);
        goto fail_errno;
    }
    /* no other child (another worker) may inherit these ends */
    for (int i = 0; i < 2; i++) {
        fcntl(in[i], F_SETFD, FD_CLOEXEC);
        fcntl(outp[i], F_SETFD, FD_CLOEXEC);
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]); close(in[1]); close(outp[0]); close(outp[1]);
        goto fail_errno;
    }
    if (pid == 0) {
        /* child: stdin from the parent, stdout to the parent, stderr shared
         * so the worker's log lines reach the user */
        /* its own process group: a ^C at the terminal reaches the parent,
         * which decides what to do with the variant in flight */
        setpgid(0, 0);
        dup2(in[0], 0);
        dup2(outp[1], 1);
        if (w->argv[0]) {
            execvp(w->argv[0], w->argv);
            /* said here: the parent sees only the exit status */
            fprintf(stderr, "moetune: cannot run '%s': %s\n", w->argv[0], strerror(errno));
        } else {
            execl(w->exe, w->exe, "worker", "--device", w->device, (char *)NULL);
        }
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    w->pid = pid;
    w->to_fd = in[1];
    w->from_fd = outp[0];
    w->len = 0;
    return MT_OK;
fail_errno:
    snprintf(err, n, "cannot start a worker: %s", strerror(errno));
    return MT_EIO;
}

int mt_worker_start(mt_worker **out, const char *exe, const char *device, char *err, size_t n)
{
    mt_worker *w = calloc(1, sizeof *w);
    if (!w) return MT_ENOMEM;
    snprintf(w->exe, sizeof w->exe, "%s", exe);
    snprintf(w->device, sizeof w->device, "%s", device);
    int rc = spawn(w, err, n);
    if (rc != MT_OK) {
        free(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

int mt_worker_start_argv(mt_worker **out, const char *const *argv, char *err, size_t n)
{
    mt_worker *w = calloc(1, sizeof *w);
    if (!w) return MT_ENOMEM;
    for (int i = 0; argv[i] && i < 15; i++)
        if (!(w->argv[i] = strdup(argv[i]))) {
            for (int j = 0; j < i; j++) free(w->argv[j]);
            free(w);
            return MT_ENOMEM;
        }
    snprintf(w->device, sizeof w->device, "%s", argv[0] ? argv[0] : "");
    int rc = spawn(w, err, n);
    if (rc != MT_OK) {
        for (int i = 0; w->argv[i]; i++) free(w->argv[i]);
        free(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

static void reap(mt_worker *w, int kill_first, char *why, size_t n)
{
    int st = 0;
    if (w->pid <= 0) return;
    if (kill_first) kill(w->pid, SIGKILL);
    while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR) {}
    if (why && n) {
        if (WIFSIGNALED(st))
            snprintf(why, n, "worker died: killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
        else if (WIFEXITED(st))
            snprintf(why, n, "worker died: exited with status %d without replying", WEXITSTATUS(st));
    }
    w->pid = 0;
}

int mt_worker_failure_transient(int rc, const char *why)
{
    int sig = 0;
    if (rc == MT_ETIMEOUT) return 1;
    if (rc != MT_ECRASH || !why) return 0;
    if (!strcmp(why, "worker is not running")) return 1;
    if (sscanf(why, "worker died: killed by signal %d", &sig) != 1) return 0;
    return sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
}

static void close_fds(mt_worker *w)
{
    if (w->to_fd >= 0) close(w->to_fd);
    if (w->from_fd >= 0) close(w->from_fd);
    w->to_fd = w->from_fd = -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int mt_worker_call(mt_worker *w, const char *req, double timeout_s, char **reply, char *why, size_t n)
{
    size_t len = strlen(req), off = 0;
    *reply = NULL;
    if (w->pid <= 0) {
        snprintf(why, n, "worker is not running");
        return MT_ECRASH;
    }
    while (off < len + 1) {
        const char *p = off < len ? req + off : "\n";
        size_t k = off < len ? len - off : 1;
        ssize_t wr = write(w->to_fd, p, k);
        if (wr < 0 && errno == EINTR) continue;
        if (wr <= 0) {
            close_fds(w);
            reap(w, 1, why, n);
            return MT_ECRASH;
        }
        off += (size_t)wr;
    }
    double deadline = now_s() + timeout_s;
    for (;;) {
        char *nl = w->len ? memchr(w->buf, '\n', w->len) : NULL;
        if (nl) {
            size_t line = (size_t)(nl - w->buf);
            char *r = malloc(line + 1);
            if (!r) return MT_ENOMEM;
            memcpy(r, w->buf, line);
            r[line] = 0;
            memmove(w->buf, nl + 1, w->len - line - 1);
            w->len -= line + 1;
            *reply = r;
            return MT_OK;
        }
        double left = deadline - now_s();
        if (left <= 0) {
            close_fds(w);
            reap(w, 1, NULL, 0);
            snprintf(why, n, "timed out after %.0f s; worker killed", timeout_s);
            return MT_ETIMEOUT;
        }
        struct pollfd pfd = {w->from_fd, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr <= 0) continue;
        if (w->len + 4096 > w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 8192;
            char *b = realloc(w->buf, cap);
            if (!b) return MT_ENOMEM;
            w->buf = b;
            w->cap = cap;
        }
        ssize_t r = read(w->from_fd, w->buf + w->len, w->cap - w->len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            close_fds(w);
            reap(w, 0, why, n);
            return MT_ECRASH;
        }
        w->len += (size_t)r;
    }
}

int mt_worker_restart(mt_worker *w, char *err, size_t n)
{
    close_fds(w);
    reap(w, 1, NULL, 0);
    return spawn(w, err, n);
}

void mt_worker_stop(mt_worker *w)
{
    if (!w) return;
    /* closing stdin asks the worker to exit; give it a moment, then kill */
    if (w->to_fd >= 0) close(w->to_fd);
    w->to_fd = -1;
    if (w->pid > 0) {
        for (int i = 0; i < 200; i++) {
            int st;
            pid_t r = waitpid(w->pid, &st, WNOHANG);
            if (r == w->pid) {
                w->pid = 0;
                break;
            }
            usleep(10000);
        }
        reap(w, 1, NULL, 0);
    }
    close_fds(w);
    for (int i = 0; w->argv[i]; i++) free(w->argv[i]);
    free(w->buf);
    free(w);
}

int mt_measure_request(char *req, size_t n, const char *family, const char *key_json, const int64_t *point, int npoint,
                       int renormalize, const char *params, uint64_t seed, const mt_policy *pol, const char *extra)
{
    char pt[64] = "";
    for (int i = 0; i < npoint; i++) snprintf(pt + strlen(pt), sizeof pt - strlen(pt), "%s%lld", i ? "," : "", (long long)point[i]);
    /* the seed is kept to 48 bits: a JSON number is a double */
    int w = snprintf(req, n,
                     "{\"op\":\"measure\",\"family\":\"%s\",\"key\":%s,\"point\":[%s],\"renormalize\":%d,"
                     "\"params\":%s,\"seed\":%llu,\"abort_us\":%.3f,\"policy\":{\"warmup\":%d,\"min_reps\":%d,"
                     "\"max_reps\":%d,\"min_time_s\":%g,\"cold\":%d,\"check_rows\":%d,\"tolerance\":%g,"
                     "\"max_tokens\":%d,\"routings\":%d}%s%s}",
                     family, key_json, pt, renormalize, params, (unsigned long long)(seed & 0xffffffffffffull),
                     pol->abort_us, pol->warmup, pol->min_reps, pol->max_reps, pol->min_time_s, pol->cold,
                     pol->check_rows, pol->tolerance, pol->max_tokens, pol->routings, extra && *extra ? "," : "",
                     extra ? extra : "");
    return w < 0 || (size_t)w >= n ? MT_EINVAL : MT_OK;
}
