/* Internal logging: one macro that checks the level before formatting, so a
 * disabled debug message costs a compare. */
#ifndef MT_LOG_H
#define MT_LOG_H

#include "moetune/moetune.h"

extern int mt_log_max_level_;
void mt_log_emit(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mt_log(level, ...)                                        \
    do {                                                          \
        if ((level) <= mt_log_max_level_) mt_log_emit((level), __VA_ARGS__); \
    } while (0)
#define mt_err(...) mt_log(MT_LOG_ERROR, __VA_ARGS__)
#define mt_warn(...) mt_log(MT_LOG_WARN, __VA_ARGS__)
#define mt_info(...) mt_log(MT_LOG_INFO, __VA_ARGS__)
#define mt_debug(...) mt_log(MT_LOG_DEBUG, __VA_ARGS__)

#endif
