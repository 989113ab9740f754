/*
 * Compiled both as C99 and as C++17 by tests/pkg/check-header.sh: includes the public header twice
 * (include guard), calls a few functions (in C++ this links only with extern "C" guards) and prints
 * what they return. Exits 1 when the library's ABI differs from the header's.
 */
#include "chord.h"
#include "chord.h"

#include <stdio.h>

int main(void) {
    chord_error *err = NULL;
    chord_model_options *opts = NULL;
    chord_status st = chord_model_options_new(&opts, &err);
    chord_model_options_free(opts);
    chord_error_free(err);
    if (st != CHORD_OK || chord_abi_version() != CHORD_ABI_VERSION) {
        fprintf(stderr, "use_header: status %s, library ABI %u, header ABI %u\n", chord_status_name(st),
                (unsigned)chord_abi_version(), (unsigned)CHORD_ABI_VERSION);
        return 1;
    }
#ifdef __cplusplus
    printf("C++ %ld, ", (long)__cplusplus);
#else
    printf("C %ld, ", (long)__STDC_VERSION__);
#endif
    printf("chord %s, ABI %u\n", chord_version_string(), (unsigned)chord_abi_version());
    return 0;
}
