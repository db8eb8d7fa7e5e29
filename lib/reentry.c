/* Re-entrant calls: what each thread is in the middle of (reentry.h). */
#include "lib/reentry.h"
#include "lib/report.h"

#include <errno.h>

__thread struct gcp_reentry gcp_self __attribute__((tls_model("initial-exec")));

bool gcp_in_call_of(const struct gcpool *p)
{
    for (const struct gcp_frame *f = gcp_self.frames; f; f = f->outer)
        if (f->pool == p)
            return true;
    return false;
}

void gcp_refuse(const char *call, const char *why)
{
    gcp_warn("gcpool: %s: %s; refused (EDEADLK)", call, why);
    errno = EDEADLK;
}
