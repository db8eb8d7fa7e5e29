/* See report.h. */
#include "lib/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "lib/pool.h"

/* One whole line in one write, so warnings from racing threads do not mix. */
void gcp_warn(const char *fmt, ...)
{
    /* write(2), not stdio: a warning may be printed from a signal handler (a
     * refused call, reentry.h), where stderr's lock may be the interrupted
     * code's.  errno is the caller's to set: kept. */
    int saved = errno;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line - 1 ? (size_t)n : sizeof line - 2;
    line[len++] = '\n';
    for (size_t done = 0; done < len;) {
        ssize_t w = write(STDERR_FILENO, line + done, len - done);
        if (w <= 0 && errno != EINTR)
            break;
        done += w > 0 ? (size_t)w : 0;
    }
    errno = saved;
}

void gcp_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

const char *gcp_pool_name(const struct gcpool *p, char *buf, size_t len)
{
    if (p->name)
        return p->name;
    snprintf(buf, len, "pool#%u", p->index);
    return buf;
}
