/* What a fork() does to the pools (fork.c). */
#ifndef GCPOOL_FORK_H
#define GCPOOL_FORK_H

/* Installs the pools' fork handlers, once; called at the first gcpool_create
 * (checked mode's handlers are installed when the library is loaded). */
void gcp_fork_init(void);

#endif
