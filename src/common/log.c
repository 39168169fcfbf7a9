/*
 * log.c -- leveled logging to stderr (see log.h).
 *
 * Layer: common. Each line is formatted into one buffer and written with a single write(2)
 * so lines from different threads do not interleave.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static enum log_level cur_level = LOG_INFO;
static int json_mode;

void log_set_level(enum log_level lvl)
{
    cur_level = lvl;
}

enum log_level log_get_level(void)
{
    return cur_level;
}

void log_set_json(int json)
{
    json_mode = json;
}

static const char *level_name(enum log_level l)
{
    switch (l) {
    case LOG_DEBUG:
        return "debug";
    case LOG_INFO:
        return "info";
    case LOG_WARN:
        return "warning";
    default:
        return "error";
    }
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static int env_checked;
    if (!env_checked) {
        env_checked = 1;
        const char *d = getenv("COFFER_DEBUG");
        if (d && *d && strcmp(d, "0") != 0)
            cur_level = LOG_DEBUG;
    }
    if (lvl < cur_level)
        return;
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[8300];
    int n;
    if (json_mode) {
        char esc[8200];
        size_t j = 0;
        for (size_t i = 0; msg[i] && j + 7 < sizeof esc; i++) {
            unsigned char c = (unsigned char)msg[i];
            if (c == '"' || c == '\\') {
                esc[j++] = '\\';
                esc[j++] = (char)c;
            } else if (c < 0x20) {
                j += (size_t)snprintf(esc + j, sizeof esc - j, "\\u%04x", c);
            } else {
                esc[j++] = (char)c;
            }
        }
        esc[j] = 0;
        n = snprintf(line, sizeof line,
                     "{\"message_type\":\"log\",\"level\":\"%s\",\"message\":\"%s\"}\n",
                     level_name(lvl), esc);
    } else {
        n = snprintf(line, sizeof line, "%s%s\n",
                     lvl >= LOG_WARN ? (lvl == LOG_WARN ? "warning: " : "error: ") : "", msg);
    }
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}
