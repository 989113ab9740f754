/*
 * The Godot library as if it had been built against the chord.h of another ABI version (999):
 * the same source with CHORD_ABI_VERSION redefined before it is compiled. ChordSession.load() must
 * then refuse with a message naming both versions (project/test_abi.gd checks it).
 */
#include <chord.h>
#undef CHORD_ABI_VERSION
#define CHORD_ABI_VERSION 999

#include "../src/chord_godot.c"
