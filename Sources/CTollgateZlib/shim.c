// Empty: the module is its header (static inline wrappers around zlib's macros).
#include "CTollgateZlib.h"
