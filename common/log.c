#include "log.h"

#include <stdarg.h>
#include <stdio.h>

/* -1: nothing passes the level check until a callback is installed. */
int mt_log_max_level_ = -1;
static mt_log_fn log_fn;
static void *log_user;

void mt_log_set(mt_log_fn fn, void *user, int max_level)
{
    log_fn = fn;
    log_user = user;
    mt_log_max_level_ = fn ? max_level : -1;
}

void mt_log_emit(int level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    if (!log_fn) return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_fn(level, buf, log_user);
}
