# cmake -DSOURCE_DIR=.. -DBUILD_DIR=.. -DWORK_DIR=.. -DGENERATOR=.. -P run.cmake
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/consumer -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/consumer)

# The same program with the source tree vendored through add_subdirectory.
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/install/subdir -B ${WORK_DIR}/subdir -G ${GENERATOR}
    -DIOWAIT_SOURCE_DIR=${SOURCE_DIR})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/subdir)
run(${WORK_DIR}/subdir/consumer)

# The same program through pkg-config, with the plain compiler driver.
file(GLOB pc_dir ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
run(sh -c "PKG_CONFIG_PATH='${pc_dir}' c++ ${SOURCE_DIR}/tests/install/consumer/main.cpp \
  $(PKG_CONFIG_PATH='${pc_dir}' pkg-config --cflags --libs --static iowait) -o ${WORK_DIR}/pc-consumer")
execute_process(COMMAND ${WORK_DIR}/pc-consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config consumer failed: ${out}")
endif()
message("pkg-config ${out}")
