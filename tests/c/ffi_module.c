/* The C API as a shared module, for the ctypes test when the library is
 * built static: referring to one entry point links src/c_api.cpp's object,
 * and its IOWAIT_API functions are exported from the module as they are
 * from the shared library. */
#include <iowait/iowait.h>

typedef int (*create_fn)(iowait_t**);
IOWAIT_API create_fn iowait_ffi_anchor(void);
create_fn iowait_ffi_anchor(void) { return iowait_create; }
