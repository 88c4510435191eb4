/* IOWAIT_API marks the library's public entry points, C and C++ alike. The
 * library is built with hidden visibility, so only these are exported from
 * the shared library; the internals (iowait::detail, the backends) are not. */
#ifndef IOWAIT_EXPORT_H
#define IOWAIT_EXPORT_H

#if defined(_WIN32) || defined(__CYGWIN__)
/* CMake defines iowait_EXPORTS while it builds the DLL. Consumers need no
 * __declspec(dllimport): the API is functions only, which the import
 * library's stubs reach, so the same header serves the static library too. */
#if defined(iowait_EXPORTS)
#define IOWAIT_API __declspec(dllexport)
#else
#define IOWAIT_API
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define IOWAIT_API __attribute__((visibility("default")))
#else
#define IOWAIT_API
#endif

#endif
