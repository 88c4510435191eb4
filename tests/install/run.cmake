# The package as a consumer meets it: this build installed, and the other
# kind (static or shared) built by the README's library-only recipe ("Installing") and
# installed; against each, a C and a C++ program built with strict warnings
# as errors through find_package(iowait) and through pkg-config, and run.
# The shared library's SONAME and exported symbols are checked, and an FFI
# user (ctypes) drives it. Last, the source tree vendored by add_subdirectory.
#
# cmake -DSOURCE_DIR=.. -DBUILD_DIR=.. -DWORK_DIR=.. -DGENERATOR=.. -DTHIS_KIND=static|shared
#       -DVERSION=<the project's version> [-DPYTHON=python3] -P run.cmake
file(REMOVE_RECURSE ${WORK_DIR})
set(consumer ${SOURCE_DIR}/tests/install/consumer)  # main.cpp; c_consumer/ has main.c
set(strict_c -std=c11 -Wall -Wextra -Wpedantic -Wconversion -Wshadow -Werror)
set(strict_cxx -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wold-style-cast -Wshadow -Werror)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

# Runs a consumer program; it must say OK.
function(run_consumer program)
  run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir} ${program})
  if(NOT run_output MATCHES "consumer OK")
    message(FATAL_ERROR "${program}: no OK in its output")
  endif()
endfunction()

# Whether a program or library records libiowait as a needed shared object.
function(needs_iowait file out)
  execute_process(COMMAND readelf -d ${file} OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "readelf -d ${file} failed")
  endif()
  string(REGEX MATCH "NEEDED[^\n]*libiowait[^\n]*" needed "${dynamic}")
  set(${out} "${needed}" PARENT_SCOPE)
endfunction()

if(THIS_KIND STREQUAL "shared")
  set(other_kind static)
  set(other_shared OFF)
else()
  set(other_kind shared)
  set(other_shared ON)
endif()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix-${THIS_KIND})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/lib-${other_kind} -G ${GENERATOR} -DBUILD_SHARED_LIBS=${other_shared}
    -DIOWAIT_BUILD_TESTS=OFF -DIOWAIT_BUILD_EXAMPLES=OFF -DIOWAIT_BUILD_BENCH=OFF -DIOWAIT_BUILD_PYTHON=OFF -DIOWAIT_WERROR=ON)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/lib-${other_kind} --parallel 2)
run(${CMAKE_COMMAND} --install ${WORK_DIR}/lib-${other_kind} --prefix ${WORK_DIR}/prefix-${other_kind})

foreach(kind static shared)
  set(prefix ${WORK_DIR}/prefix-${kind})
  file(GLOB libdir LIST_DIRECTORIES true ${prefix}/lib ${prefix}/lib64 ${prefix}/lib/*-linux-gnu)
  list(FILTER libdir EXCLUDE REGEX "(pkgconfig|cmake)$")
  list(GET libdir 0 libdir)
  set(${kind}_libdir ${libdir})
  set(out ${WORK_DIR}/${kind})
  file(MAKE_DIRECTORY ${out})

  # find_package(iowait), from a C++ project and from a C-only one.
  foreach(project consumer c_consumer)
    run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/${project} -B ${out}/${project} -G ${GENERATOR}
        -DCMAKE_PREFIX_PATH=${prefix} -DIOWAIT_VERSION=${VERSION})
    run(${CMAKE_COMMAND} --build ${out}/${project})
    run_consumer(${out}/${project}/${project})
  endforeach()

  # pkg-config with the plain compiler drivers and a plain -I. The C++
  # program asks for a standard after C++20, which the .pc must not undo.
  set(pc "PKG_CONFIG_PATH='${libdir}/pkgconfig' pkg-config --cflags --libs iowait")
  string(REPLACE ";" " " c_flags "${strict_c}")
  string(REPLACE ";" " " cxx_flags "${strict_cxx}")
  run(sh -c "cc ${c_flags} ${SOURCE_DIR}/tests/install/c_consumer/main.c $(${pc}) -o ${out}/pc-c-consumer")
  run(sh -c "c++ -std=c++2b -DIOWAIT_EXPECT_AFTER_CXX20 ${cxx_flags} ${consumer}/main.cpp $(${pc}) -o ${out}/pc-consumer")
  run_consumer(${out}/pc-c-consumer)
  run_consumer(${out}/pc-consumer)

  # Shared: the programs load libiowait at run time, the static ones do not.
  needs_iowait(${out}/pc-c-consumer needed)
  if(kind STREQUAL "shared" AND NOT needed)
    message(FATAL_ERROR "${out}/pc-c-consumer does not load libiowait: linked statically?")
  elseif(kind STREQUAL "static" AND needed)
    message(FATAL_ERROR "${out}/pc-c-consumer loads libiowait (${needed}) from a static-only install")
  endif()
endforeach()

# The shared library: versioned file and SONAME, and only the API exported.
set(libdir ${shared_libdir})
file(GLOB real ${libdir}/libiowait.so.*.*.*)
execute_process(COMMAND readelf -d ${real} OUTPUT_VARIABLE dynamic)
if(NOT dynamic MATCHES "SONAME[^\n]*\\[libiowait\\.so\\.[0-9]+\\.[0-9]+\\]")
  message(FATAL_ERROR "${real}: no SONAME libiowait.so.MAJOR.MINOR:\n${dynamic}")
endif()
execute_process(COMMAND nm -DC --defined-only ${real} OUTPUT_VARIABLE symbols RESULT_VARIABLE rc)
string(REPLACE "\n" ";" symbols "${symbols}")
set(api 0)
foreach(line IN LISTS symbols)
  string(REGEX REPLACE "^[0-9a-f]* *[A-Za-z] " "" name "${line}")
  if(name STREQUAL "")
    continue()
  endif()
  if(name MATCHES "iowait::detail|anonymous namespace")
    message(FATAL_ERROR "${real} exports ${name}, an internal")
  elseif(name MATCHES "^(iowait_|iowait::|typeinfo for iowait::|typeinfo name for iowait::|vtable for iowait::)")
    math(EXPR api "${api} + 1")
  elseif(NOT name MATCHES "^(|[A-Za-z_]+ )std::")
    # (libstdc++'s template instances stay visible: its headers ask for that.)
    message(FATAL_ERROR "${real} exports ${name}, which is not the API")
  endif()
endforeach()
if(api LESS 40)
  message(FATAL_ERROR "${real} exports ${api} API symbols: the C and C++ entry points are missing")
endif()
message("shared library: ${real}, SONAME and ${api} API symbols OK")

if(PYTHON)
  run(${PYTHON} ${SOURCE_DIR}/tests/c/ctypes_smoke.py ${libdir}/libiowait.so)
else()
  message("ctypes on the installed library: not run, no python3 was found")
endif()

# The source tree vendored through add_subdirectory.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/subdir -B ${WORK_DIR}/subdir -G ${GENERATOR}
    -DIOWAIT_SOURCE_DIR=${SOURCE_DIR})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/subdir --parallel 2)
set(libdir "")
run_consumer(${WORK_DIR}/subdir/consumer)
run_consumer(${WORK_DIR}/subdir/c_consumer)
message("install test OK: static and shared, find_package and pkg-config, C and C++, add_subdirectory")
