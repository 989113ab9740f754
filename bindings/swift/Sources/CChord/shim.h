/* The header of the CChord module: chord's public header, found through its include path
 * (pkg-config --cflags chord, or -I for a build tree). */
#include <chord.h>
