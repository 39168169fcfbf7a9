/*
 * log.h -- leveled logging to stderr for commands and daemons.
 *
 * Layer: common. Library layers do not log user-facing output; they return errors. The log is
 * for warnings a run survives (a file that vanished) and for debug tracing (COFFER_DEBUG=1).
 * Never pass secrets to the logger. Thread-safe (one write(2) per line).
 */
#ifndef COFFER_COMMON_LOG_H
#define COFFER_COMMON_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_QUIET = 4 };

void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* When json is set, lines are written as {"level":"warn","message":"..."} objects. */
void log_set_json(int json);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
