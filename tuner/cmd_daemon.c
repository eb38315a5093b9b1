/* moetune daemon: serve the job queue of one database with one sweep
 * process per device, all devices busy at once.
 *
 * The daemon holds an exclusive lock on DB.daemon for its life, so a
 * second one refuses to start and names the first one's pid. Each job runs
 * as `moetune sweep ... --job ID` in a child process: the sweep already
 * isolates variants in its worker, commits every measurement as it is
 * taken, skips what is stored when run again, and reports progress and
 * sees cancels through the database. The daemon only decides what runs
 * where, and what a child's exit means: done, queued again, failed, or a
 * device that keeps failing and is taken out of service. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "moetune/moetune.h"
#include "device.h"
#include "hip_rt.h"
#include "bucket.h"
#include "jobs.h"
#include "log.h"
#include "util.h"
#include "workerpool.h"

static const char usage[] =
    "usage: moetune daemon [--db PATH] [--log FILE] [--devices LIST] [--shard I/N]\n"
    "                      [--until-idle] [--poll SEC] [--max-attempts N] [--max-failures N]\n"
    "\n"
    "Serve the job queue of a database ('moetune submit' adds jobs): one sweep\n"
    "process per device, every device of the host busy at once (each CUDA GPU;\n"
    "with none, each AMD GPU, a path never yet run on one; with neither, the\n"
    "CPU). Every measurement is committed as it is taken: a\n"
    "daemon killed at any moment loses none, and on restart its jobs go on\n"
    "from where they stopped. One daemon per database.\n"
    "  --db PATH          the database (default as for sweep)\n"
    "  --log FILE         log there (appending; SIGHUP reopens it), else stderr\n"
    "  --log-level L      error, warning, info (default) or debug\n"
    "  --devices LIST     serve these devices only, e.g. cuda:0,cuda:1, hip:0 or cpu\n"
    "  --shard I/N        run only shard I of N of every job (sweep --shard), for\n"
    "                     Slurm arrays and Kubernetes indexed jobs\n"
    "  --until-idle       exit once nothing this host can run is queued or running\n"
    "  --poll SEC         how often the queue is read (default 1)\n"
    "  --max-attempts N   a job whose sweep fails N times is failed (default 3)\n"
    "  --max-failures N   a device whose sweeps fail N times in a row is taken out\n"
    "                     of service (default 3)\n"
    "  --publish URL      after each job that ends done, publish the database's\n"
    "                     configs there (moetune publish URL; credentials from the\n"
    "                     environment, as for publish)\n"
    "Signals: SIGTERM or SIGINT stop the sweeps after their variant in flight\n"
    "(committed; the jobs go back to the queue) and exit 0; a second one kills\n"
    "them and exits at once; SIGHUP reopens the log.\n";

#define MAX_SLOTS 64

typedef struct slot {
    char dev[32], kind[16];
    pid_t pid;       /* the sweep, 0 when idle */
    int64_t job;
    int failures;    /* sweeps in a row that failed */
    int out;         /* out of service */
    int term_sent;
} slot;

static volatile sig_atomic_t stops, hup;
static FILE *logf;
static const char *log_path;
static int log_level = MT_LOG_INFO;

static void on_stop(int sig)
{
    (void)sig;
    stops++;
}
static void on_hup(int sig)
{
    (void)sig;
    hup = 1;
}

static void daemon_log(int level, const char *msg, void *user)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    (void)user;
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *f = logf ? logf : stderr;
    fprintf(f, "%s moetune daemon[%d] %s: %s\n", ts, (int)getpid(), names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
    fflush(f);
}

static int open_log(void)
{
    if (!log_path) return MT_OK;
    FILE *f = fopen(log_path, "a");
    if (!f) return MT_EIO;
    /* the sweeps write their own messages to the same file */
    setvbuf(f, NULL, _IOLBF, 0);
    if (logf) fclose(logf);
    logf = f;
    return MT_OK;
}

static int parse_level(const char *s)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

/* The lock: held (flock) by this process for its life, the pid written in
 * it for the next one to name. */
static int take_lock(const char *db_path, int *fd_out)
{
    char lock[4200];
    snprintf(lock, sizeof lock, "%s.daemon", db_path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return mt_fail("daemon", "cannot open the lock file '%s': %s", lock, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = "";
        ssize_t k = read(fd, buf, sizeof buf - 1);
        close(fd);
        int pid = k > 0 ? atoi(buf) : 0;
        if (pid > 0)
            return mt_fail("daemon", "another daemon (pid %d) serves '%s': stop it first (kill %d) or pass another --db",
                           pid, db_path, pid);
        return mt_fail("daemon", "another daemon serves '%s' (it holds %s)", db_path, lock);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
        close(fd);
        return mt_fail("daemon", "cannot write the lock file '%s': %s", lock, strerror(errno));
    }
    *fd_out = fd;
    return MT_EXIT_OK;
}

static int alive(int64_t pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

/* A sweep left running by a daemon that was killed: it got SIGTERM when its
 * parent died (PDEATHSIG) and is finishing its variant; make sure, and wait
 * for it, so that two sweeps never run one job. */
static int stop_orphan(const mt_job *j, void *u)
{
    const char *db_path = u;
    if (!alive(j->sweep_pid)) return 0;
    /* the pid stored may have been given to another process since: signal
     * it only while the job's lock is held and its command line is the
     * job's sweep */
    if (!mt_job_lock_held(db_path, j->id) || !mt_sweep_process(j->sweep_pid, j->id)) {
        mt_warn("job %lld: pid %lld is not its sweep any more (no lock of the job, or another command line): "
                "left alone", (long long)j->id, (long long)j->sweep_pid);
        return 0;
    }
    mt_warn("job %lld: its sweep (pid %lld) outlived the daemon that ran it; stopping it", (long long)j->id,
            (long long)j->sweep_pid);
    kill((pid_t)j->sweep_pid, SIGTERM);
    for (int i = 0; i < 1200 && alive(j->sweep_pid); i++) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
        /* a zombie of ours is not ours here: it belonged to the dead daemon */
    }
    if (alive(j->sweep_pid)) {
        mt_warn("job %lld: sweep pid %lld did not stop in 60 s; killing it", (long long)j->id, (long long)j->sweep_pid);
        kill((pid_t)j->sweep_pid, SIGKILL);
    }
    return 0;
}

struct args_out { cJSON *args; };
static int get_args(const mt_job *j, void *u)
{
    ((struct args_out *)u)->args = cJSON_Parse(j->args);
    return 1;
}

static int spawn(mt_db *db, const char *exe, const char *db_path, const char *shard, slot *s, int64_t job)
{
    struct args_out ao = {NULL};
    if (mt_db_job_get(db, job, get_args, &ao) != MT_OK || !cJSON_IsArray(ao.args)) {
        cJSON_Delete(ao.args);
        mt_db_job_finish(db, job, "failed", "the stored job is not a JSON array of arguments", -1);
        mt_err("job %lld: the stored job is not a JSON array of arguments", (long long)job);
        return MT_EINVAL;
    }
    int n = cJSON_GetArraySize(ao.args);
    char **argv = calloc((size_t)n + 16, sizeof *argv);
    char jobtxt[32];
    snprintf(jobtxt, sizeof jobtxt, "%lld", (long long)job);
    if (!argv) {
        cJSON_Delete(ao.args);
        return MT_ENOMEM;
    }
    int k = 0;
    argv[k++] = "moetune";
    argv[k++] = "sweep";
    const cJSON *a;
    cJSON_ArrayForEach(a, ao.args) if (cJSON_IsString(a)) argv[k++] = a->valuestring;
    /* last, so that they win over anything in the job */
    argv[k++] = "--device";
    argv[k++] = s->dev;
    argv[k++] = "--db";
    argv[k++] = (char *)db_path;
    argv[k++] = "--job";
    argv[k++] = jobtxt;
    argv[k++] = "--quiet";
    if (shard) {
        argv[k++] = "--shard";
        argv[k++] = (char *)shard;
    }
    argv[k] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        cJSON_Delete(ao.args);
        mt_err("cannot start a sweep: %s", strerror(errno));
        return MT_EIO;
    }
    if (pid == 0) {
        pid_t parent = getppid();
        /* its own process group: a terminal's Ctrl-C reaches the daemon
         * only, which stops the sweeps in order; and if the daemon dies,
         * the sweep is told (and stops after its variant in flight) */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(130);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
        }
        if (logf) dup2(fileno(logf), 2);
        execv(exe, argv);
        fprintf(stderr, "moetune daemon: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    free(argv);
    cJSON_Delete(ao.args);
    s->pid = pid;
    s->job = job;
    s->term_sent = 0;
    mt_db_job_set_pid(db, job, pid);
    mt_db_daemon_device(db, s->dev, "busy", s->failures, NULL, getpid());
    mt_info("job %lld: started on %s (sweep pid %d)", (long long)job, s->dev, (int)pid);
    return MT_OK;
}

struct opts {
    const char *db, *devices, *shard, *publish;
    int until_idle, max_attempts, max_failures;
    double poll;
};

struct attempts_out { int attempts; char status[16]; };
static int get_attempts(const mt_job *j, void *u)
{
    struct attempts_out *o = u;
    o->attempts = j->attempts;
    snprintf(o->status, sizeof o->status, "%s", j->status);
    return 1;
}

static const char *exe_path, *db_file;

/* moetune publish URL --db DB, waited for: a job's results are in the
 * bucket when the job reads done. A failure is the job's note, not its
 * status: the results are safe in the database, and the next publish
 * carries them. */
static const char *publish(const struct opts *o, int64_t job)
{
    static char note[256];
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) dup2(nul, 1);
        if (logf) dup2(fileno(logf), 2);
        execl(exe_path, "moetune", "publish", o->publish, "--db", db_file, (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
    if (pid > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
        mt_info("job %lld: published to %s", (long long)job, o->publish);
        return "done; published";
    }
    snprintf(note, sizeof note, "done; publishing failed (exit %d): the daemon's log says why",
             pid > 0 && WIFEXITED(ws) ? WEXITSTATUS(ws) : -1);
    mt_err("job %lld: publishing to %s failed", (long long)job, o->publish);
    return note;
}

/* What a sweep's exit means for its job and its device. */
static void reap(mt_db *db, slot *s, int wstatus, const struct opts *o, int stopping)
{
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    struct attempts_out a = {0, ""};
    mt_db_job_get(db, s->job, get_attempts, &a);
    char msg[256];
    if (!strcmp(a.status, "cancelled")) {
        mt_db_job_finish(db, s->job, "cancelled", NULL, code);
        mt_info("job %lld: cancelled; its sweep stopped (exit %d)", (long long)s->job, code);
        s->failures = 0;
    } else if (code == 0) {
        mt_db_job_finish(db, s->job, "done", o->publish ? publish(o, s->job) : "done", 0);
        mt_info("job %lld: done on %s", (long long)s->job, s->dev);
        s->failures = 0;
    } else if (stopping && s->term_sent && (code == MT_EXIT_INTERRUPTED || code == 128 + SIGTERM || code == 128 + SIGKILL)) {
        mt_db_job_finish(db, s->job, "queued", "queued again: the daemon stopped while it ran", code);
        mt_info("job %lld: stopped with the daemon; back in the queue", (long long)s->job);
    } else if (code == MT_EXIT_USAGE) {
        /* the options were checked at submit: this is a moetune of another
         * version, and retrying will not help */
        snprintf(msg, sizeof msg, "the sweep refused the job's options (exit 2); the daemon's log has its message");
        mt_db_job_finish(db, s->job, "failed", msg, code);
        mt_err("job %lld: %s", (long long)s->job, msg);
    } else {
        s->failures++;
        if (a.attempts >= o->max_attempts) {
            snprintf(msg, sizeof msg, "its sweep failed %d times (last on %s, exit %d); the daemon's log has why",
                     a.attempts, s->dev, code);
            mt_db_job_finish(db, s->job, "failed", msg, code);
            mt_err("job %lld: %s", (long long)s->job, msg);
        } else {
            snprintf(msg, sizeof msg, "attempt %d failed on %s (exit %d); queued again", a.attempts, s->dev, code);
            mt_db_job_finish(db, s->job, "queued", msg, code);
            mt_warn("job %lld: %s", (long long)s->job, msg);
        }
        if (s->failures >= o->max_failures) {
            s->out = 1;
            snprintf(msg, sizeof msg, "out of service: %d sweeps in a row failed here (last exit %d); restart the daemon "
                     "once the device is fixed", s->failures, code);
            mt_err("%s: %s", s->dev, msg);
        }
    }
    s->pid = 0;
    s->job = 0;
    mt_db_daemon_device(db, s->dev, s->out ? "out of service" : "idle", s->failures,
                        s->out ? "sweeps kept failing here; restart the daemon once the device is fixed" : NULL, getpid());
}

static slot *slot_of(slot *slots, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (slots[i].pid == pid) return &slots[i];
    return NULL;
}

/* A queued job this host cannot serve waits, with a note saying why. */
struct wait_ctx { mt_db *db; slot *slots; int n; int64_t ids[256]; int nids; };
static int note_waiting(const mt_job *j, void *u)
{
    struct wait_ctx *w = u;
    if (strcmp(j->status, "queued")) return 0;
    for (int i = 0; i < w->n; i++) {
        const slot *s = &w->slots[i];
        if (!s->out && (!strcmp(j->device, "any") || !strcmp(j->device, s->kind) || !strcmp(j->device, s->dev))) return 0;
    }
    if (w->nids < 256) w->ids[w->nids++] = j->id;
    return 0;
}

static void nap(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

int cmd_daemon(int argc, char **argv)
{
    static const struct option lo[] = {{"db", required_argument, 0, 'd'},
                                       {"log", required_argument, 0, 'l'},
                                       {"log-level", required_argument, 0, 'L'},
                                       {"devices", required_argument, 0, 'D'},
                                       {"shard", required_argument, 0, 's'},
                                       {"until-idle", no_argument, 0, 'u'},
                                       {"poll", required_argument, 0, 'p'},
                                       {"max-attempts", required_argument, 0, 'a'},
                                       {"max-failures", required_argument, 0, 'f'},
                                       {"publish", required_argument, 0, 'P'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    struct opts o = {NULL, NULL, NULL, NULL, 0, 3, 3, 1.0};
    int c, status, si, sn;
    int64_t v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        status = MT_EXIT_OK;
        switch (c) {
        case 'd': o.db = optarg; break;
        case 'l': log_path = optarg; break;
        case 'L':
            if ((log_level = parse_level(optarg)) < 0)
                return mt_usage_error("daemon", "--log-level '%s': expected error, warning, info or debug", optarg);
            break;
        case 'D': o.devices = optarg; break;
        case 's':
            if (mt_shard_parse(optarg, &si, &sn) != MT_OK)
                return mt_usage_error("daemon", "--shard '%s': expected I/N with 0 <= I < N, e.g. 0/4", optarg);
            o.shard = optarg;
            break;
        case 'u': o.until_idle = 1; break;
        case 'P': {
            /* checked now, not after the first job */
            mt_bucket *bk = NULL;
            char err[1024];
            int r = mt_bucket_open(&bk, optarg, NULL, err, sizeof err);
            mt_bucket_close(bk);
            if (r == MT_EPARSE) return mt_usage_error("daemon", "--publish: %s", err);
            if (r != MT_OK) return mt_fail("daemon", "--publish: %s", err);
            o.publish = optarg;
            break;
        }
        case 'p': {
            char *end;
            o.poll = strtod(optarg, &end);
            if (*end || !(o.poll >= 0.01 && o.poll <= 3600))
                return mt_usage_error("daemon", "--poll '%s': expected seconds between 0.01 and 3600", optarg);
            break;
        }
        case 'a': status = mt_parse_int_opt("daemon", "--max-attempts", optarg, 1, 1000, &v); o.max_attempts = (int)v; break;
        case 'f': status = mt_parse_int_opt("daemon", "--max-failures", optarg, 1, 1000, &v); o.max_failures = (int)v; break;
        case 'h': return fputs(usage, stdout), mt_cli_finish("daemon", 0);
        default: return mt_usage_error("daemon", "unknown option '%s'", argv[optind - 1]);
        }
        if (status) return status;
    }
    if (optind < argc) return mt_usage_error("daemon", "unexpected argument '%s'", argv[optind]);

    /* the devices: --devices, else every CUDA GPU, else every AMD GPU the
     * amdgpu driver lists (the HIP path: never yet run on one), else the
     * CPU */
    slot slots[MAX_SLOTS];
    int ns = 0;
    memset(slots, 0, sizeof slots);
    if (o.devices) {
        char list[1024];
        snprintf(list, sizeof list, "%s", o.devices);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            mt_device_spec spec;
            if (ns == MAX_SLOTS) return mt_usage_error("daemon", "--devices: at most %d devices", MAX_SLOTS);
            if (mt_device_spec_parse(t, &spec) != MT_OK || spec.auto_pick)
                return mt_usage_error("daemon", "--devices: '%s' is not cpu, cuda:N or hip:N", t);
            for (int i = 0; i < ns; i++)
                if (!strcmp(slots[i].dev, t)) return mt_usage_error("daemon", "--devices: '%s' twice", t);
            snprintf(slots[ns].dev, sizeof slots[ns].dev, "%s", t);
            snprintf(slots[ns].kind, sizeof slots[ns].kind, "%s", mt_backend_name(spec.kind));
            ns++;
        }
        if (!ns) return mt_usage_error("daemon", "--devices: empty list");
    } else {
        char why[256] = "";
        int n = mt_device_cuda_count(why, sizeof why);
        for (int i = 0; i < n && ns < MAX_SLOTS; i++, ns++) {
            snprintf(slots[ns].dev, sizeof slots[ns].dev, "cuda:%d", i);
            snprintf(slots[ns].kind, sizeof slots[ns].kind, "cuda");
        }
        mt_hip_kfd_gpu g[MAX_SLOTS];
        int nh = ns ? 0 : mt_hip_kfd_gpus(NULL, g, MAX_SLOTS, why, sizeof why);
        for (int i = 0; i < nh && ns < MAX_SLOTS; i++, ns++) {
            snprintf(slots[ns].dev, sizeof slots[ns].dev, "hip:%d", i);
            snprintf(slots[ns].kind, sizeof slots[ns].kind, "hip");
        }
        if (!ns) {
            snprintf(slots[0].dev, sizeof slots[0].dev, "cpu");
            snprintf(slots[0].kind, sizeof slots[0].kind, "cpu");
            ns = 1;
        }
    }

    char path[4096], exe[4096];
    if (mt_cli_db_path(o.db, path, sizeof path) != MT_OK)
        return mt_fail("daemon", "cannot find the database (set XDG_DATA_HOME or HOME, or pass --db PATH)");
    if (mt_self_exe(exe, sizeof exe) != MT_OK) return mt_fail("daemon", "cannot find the moetune executable");
    if (open_log() != MT_OK) return mt_fail("daemon", "cannot open the log '%s': %s", log_path, strerror(errno));
    mt_log_set(daemon_log, NULL, log_level);
    exe_path = exe;
    db_file = path;
    mt_db *db = NULL;
    if ((status = mt_cli_open_db("daemon", path, &db)) != 0) return status;
    int lock_fd = -1;
    if ((status = take_lock(path, &lock_fd)) != 0) {
        mt_db_close(db);
        return status;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);

    /* what a daemon that died left running goes back to the queue */
    mt_db_jobs_running(db, stop_orphan, path);
    mt_db_jobs_requeue_running(db);
    char names[MAX_SLOTS * 34] = "";
    for (int i = 0; i < ns; i++) {
        if (i) strcat(names, ",");
        strcat(names, slots[i].dev); /* 64 names of under 32 bytes fit */
        mt_db_daemon_device(db, slots[i].dev, "idle", 0, NULL, getpid());
    }
    mt_info("serving %s on %s%s%s", path, names, o.shard ? ", shard " : "", o.shard ? o.shard : "");

    int stopping = 0, all_out = 0;
    for (;;) {
        if (hup) {
            hup = 0;
            if (open_log() != MT_OK) mt_err("cannot reopen the log '%s': %s", log_path, strerror(errno));
            else mt_info("log reopened");
        }
        /* the children that ended */
        int ws;
        pid_t pid;
        while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
            slot *s = slot_of(slots, ns, pid);
            if (s) reap(db, s, ws, &o, stopping);
        }
        int busy = 0;
        for (int i = 0; i < ns; i++) busy += slots[i].pid != 0;
        if (stops && !stopping) {
            stopping = 1;
            mt_info("stopping: %d sweep(s) finish their variant in flight", busy);
            for (int i = 0; i < ns; i++)
                if (slots[i].pid) {
                    kill(slots[i].pid, SIGTERM);
                    slots[i].term_sent = 1;
                }
        }
        if (stops >= 2 && busy) {
            mt_warn("second signal: killing %d sweep(s)", busy);
            for (int i = 0; i < ns; i++)
                if (slots[i].pid) {
                    kill(-slots[i].pid, SIGKILL);
                    kill(slots[i].pid, SIGKILL);
                }
        }
        if (stopping && !busy) break;
        int started = 0, usable = 0;
        if (!stopping) {
            for (int i = 0; i < ns; i++) {
                slot *s = &slots[i];
                if (s->out) continue;
                usable++;
                if (s->pid) continue;
                int64_t job = 0;
                if (mt_db_job_claim(db, s->dev, s->kind, getpid(), &job) != MT_OK) {
                    mt_err("cannot read the queue: %s", mt_db_errmsg(db));
                    continue;
                }
                if (job && spawn(db, exe, path, o.shard, s, job) == MT_OK) started++, busy++;
            }
            struct wait_ctx w = {db, slots, ns, {0}, 0};
            mt_db_jobs(db, 0, note_waiting, &w);
            for (int i = 0; i < w.nids; i++) {
                char note[MAX_SLOTS * 34 + 128];
                snprintf(note, sizeof note, "waiting: this host serves %s%s", names,
                         usable < ns ? " (some out of service)" : "");
                mt_db_job_note(db, w.ids[i], note);
            }
            if (!usable) {
                mt_err("every device is out of service: stopping");
                all_out = 1;
                break;
            }
            if (o.until_idle && !busy && !started) {
                mt_info("nothing this host can run is queued: exiting (--until-idle)");
                break;
            }
        }
        if (!started) nap(stopping ? 0.05 : o.poll);
    }
    for (int i = 0; i < ns; i++)
        mt_db_daemon_device(db, slots[i].dev, slots[i].out ? "out of service" : "stopped", slots[i].failures,
                            slots[i].out ? "sweeps kept failing here" : NULL, getpid());
    mt_info("stopped");
    mt_db_close(db);
    close(lock_fd); /* the lock goes with it; the file stays (removing it would race a new daemon) */
    if (logf) fclose(logf);
    return mt_cli_finish("daemon", all_out ? MT_EXIT_FAIL : MT_EXIT_OK);
}
