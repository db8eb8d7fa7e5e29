/* The two readers of peek.h: this process's memory, and another's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* process_vm_readv */
#endif
#include "lib/peek.h"

#include <errno.h>
#include <sys/uio.h>

static const void *read_self(const struct gcp_peek *pk, const void *addr, size_t n, void *buf)
{
    (void)pk, (void)n, (void)buf;
    return addr;
}

const struct gcp_peek gcp_peek_self = {.read = read_self};

static const void *read_process(const struct gcp_peek *pk, const void *addr, size_t n, void *buf)
{
    if (!addr)
        return NULL;
    struct iovec local = {buf, n}, remote = {(void *)(uintptr_t)addr, n};
    /* One call copies the whole range or part of it: a part means the range
     * ran into memory the process does not map, which is a failure too. */
    ssize_t got = process_vm_readv(pk->pid, &local, 1, &remote, 1, 0);
    if (got != (ssize_t)n) {
        if (got >= 0)
            errno = EFAULT;
        return NULL;
    }
    return buf;
}

struct gcp_peek gcp_peek_process(int pid, const void *no_locals)
{
    return (struct gcp_peek){.read = read_process, .pid = pid, .no_locals = no_locals};
}
