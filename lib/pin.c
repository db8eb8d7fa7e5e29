/* The pin method in force; see pin.h. */
#include "pin.h"

#include "env.h"

const char *gcp_pin_name(void)
{
    /* Only the lock pin exists so far: GCPOOL_PIN=rseq falls back to it. */
    return "lock";
}
