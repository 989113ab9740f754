/* Imports the CChord module as Swift's importer does (clang -fmodules with the module map), and
 * calls through it: the module builds from chord.h, and its `link "chord"` names the library.
 * Exit 0 when the loaded library has the header's ABI version. */
#pragma clang module import CChord
#include <stdio.h>

int main(void) {
    printf("CChord: %s, ABI %u (header %u)\n", chord_version_string(), chord_abi_version(), (unsigned)CHORD_ABI_VERSION);
    return chord_abi_version() == CHORD_ABI_VERSION ? 0 : 1;
}
